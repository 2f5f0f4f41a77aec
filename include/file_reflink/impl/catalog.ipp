// SPDX-License-Identifier: BSL-1.0
//! \file
//! The definitions of `detail/catalog.hpp`: included by it (header-only), or
//! by `impl/src.hpp` (FILE_REFLINK_SEPARATE_COMPILATION).
#pragma once

#include <file_reflink/detail/catalog.hpp>


namespace file_reflink {
namespace detail {
FILE_REFLINK_DECL bool catalog_safe(std::string_view v) {
  for (char c : v)
    if (c == '\n' || c == '\r' || c == '\0') return false;
  return true;
}

FILE_REFLINK_DECL std::string format_catalog(const catalog_contents& c) {
  std::string out = std::string(catalog_magic) + std::to_string(catalog_version) + "\n";
  if (c.revisions_to_keep) out += "pool revisions_to_keep " + std::to_string(*c.revisions_to_keep) + "\n";
  if (c.setup_check) out += std::string("pool setup_check ") + (*c.setup_check ? "1" : "0") + "\n";
  for (const auto& [vid, v] : c.volumes) {
    out += "volume " + vid + "\n";
    out += "name " + v.name + "\n";
    out += "size " + std::to_string(v.size) + "\n";
    out += std::string("rw ") + (v.rw ? "1" : "0") + "\n";
    out += std::string("save_on_stop ") + (v.save_on_stop ? "1" : "0") + "\n";
    out += std::string("snap_on_start ") + (v.snap_on_start ? "1" : "0") + "\n";
    if (v.source) out += "source " + *v.source + "\n";
    if (v.revisions_to_keep) out += "revisions_to_keep " + std::to_string(*v.revisions_to_keep) + "\n";
    out += std::string("ephemeral ") + (v.ephemeral ? "1" : "0") + "\n";
    out += "end\n";
  }
  return out;
}

FILE_REFLINK_DECL bool same_config(const volume_config& a, const volume_config& b) {
  return a.vid == b.vid && a.name == b.name && a.size == b.size && a.rw == b.rw && a.save_on_stop == b.save_on_stop &&
         a.snap_on_start == b.snap_on_start && a.source == b.source && a.revisions_to_keep == b.revisions_to_keep &&
         a.ephemeral == b.ephemeral;
}

FILE_REFLINK_DECL std::optional<std::uint64_t> catalog_uint(std::string_view v) {
  if (v.empty() || v.size() > 20) return std::nullopt;
  std::uint64_t n = 0;
  for (char ch : v) {
    if (ch < '0' || ch > '9') return std::nullopt;
    const auto d = static_cast<std::uint64_t>(ch - '0');
    if (n > (UINT64_MAX - d) / 10) return std::nullopt;
    n = n * 10 + d;
  }
  return n;
}

FILE_REFLINK_DECL std::optional<std::int64_t> catalog_int(std::string_view v) {
  if (v.size() > 20) return std::nullopt;  // the sign included
  const bool neg = !v.empty() && v.front() == '-';
  if (neg) v.remove_prefix(1);
  const auto n = catalog_uint(v);
  if (!n) return std::nullopt;
  if (neg) return *n <= std::uint64_t(INT64_MAX) + 1 ? std::optional<std::int64_t>(-static_cast<std::int64_t>(*n - 1) - 1)
                                                      : std::nullopt;
  if (*n > std::uint64_t(INT64_MAX)) return std::nullopt;
  return static_cast<std::int64_t>(*n);
}

FILE_REFLINK_DECL result<catalog_contents> parse_catalog(std::string_view text) {
  catalog_contents out;
  std::size_t line_no = 0;
  auto bad = [&](const std::string& why) {
    return failure(errc::catalog_invalid, "line " + std::to_string(line_no) + ": " + why);
  };
  std::optional<volume_config> cur;
  bool first = true;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    if (nl == std::string_view::npos) {
      ++line_no;
      return bad("the file ends in the middle of a line (an interrupted write?)");
    }
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl + 1);
    ++line_no;
    if (first) {
      first = false;
      if (line.substr(0, catalog_magic.size()) != catalog_magic) return bad("not a file_reflink catalog");
      auto v = catalog_int(line.substr(catalog_magic.size()));
      if (!v) return bad("no format version");
      if (*v > catalog_version)
        return bad("format version " + std::to_string(*v) + " is newer than this library's (" +
                   std::to_string(catalog_version) + ")");
      continue;
    }
    if (line.empty()) continue;
    const std::size_t sp = line.find(' ');
    const std::string_view key = line.substr(0, sp);
    const std::string_view value = sp == std::string_view::npos ? std::string_view() : line.substr(sp + 1);
    if (!cur) {
      if (key == "volume") {
        if (auto why = layout::vid_problem(value)) return bad("vid " + layout::detail::quoted(value) + ": " + *why);
        cur.emplace();
        cur->vid = std::string(value);
        cur->name = layout::paths_of(value).base;
        continue;
      }
      if (key == "pool") {
        const std::size_t sp2 = value.find(' ');
        const std::string_view k = value.substr(0, sp2);
        const std::string_view val = sp2 == std::string_view::npos ? std::string_view() : value.substr(sp2 + 1);
        auto n = catalog_int(val);
        if (k == "revisions_to_keep") {
          if (!n || *n < -1 || *n > INT32_MAX) return bad("revisions_to_keep " + std::string(val));
          out.revisions_to_keep = static_cast<int>(*n);
        } else if (k == "setup_check") {
          if (!n || (*n != 0 && *n != 1)) return bad("setup_check " + std::string(val));
          out.setup_check = *n == 1;
        }
        continue;  // a pool setting of a later version: ignored
      }
      return bad("'" + std::string(key) + "' outside a volume");
    }
    if (key == "end") {
      if (out.volumes.count(cur->vid)) return bad("volume " + layout::detail::quoted(cur->vid) + " twice");
      std::string vid = cur->vid;
      out.volumes.emplace(std::move(vid), std::move(*cur));
      cur.reset();
      continue;
    }
    auto flag = [&](bool& to) -> bool {
      if (value != "0" && value != "1") return false;
      to = value == "1";
      return true;
    };
    if (key == "name") {
      cur->name = std::string(value);
    } else if (key == "size") {
      auto n = catalog_uint(value);
      if (!n) return bad("size " + std::string(value));
      cur->size = *n;
    } else if (key == "rw") {
      if (!flag(cur->rw)) return bad("rw " + std::string(value));
    } else if (key == "save_on_stop") {
      if (!flag(cur->save_on_stop)) return bad("save_on_stop " + std::string(value));
    } else if (key == "snap_on_start") {
      if (!flag(cur->snap_on_start)) return bad("snap_on_start " + std::string(value));
    } else if (key == "ephemeral") {
      if (!flag(cur->ephemeral)) return bad("ephemeral " + std::string(value));
    } else if (key == "source") {
      if (auto why = layout::vid_problem(value)) return bad("source " + layout::detail::quoted(value) + ": " + *why);
      cur->source = std::string(value);
    } else if (key == "revisions_to_keep") {
      auto n = catalog_int(value);
      if (!n || *n < -1 || *n > INT32_MAX) return bad("revisions_to_keep " + std::string(value));
      cur->revisions_to_keep = static_cast<int>(*n);
    }
    // Any other key is a setting of a later version: ignored.
  }
  if (first) return failure(errc::catalog_invalid, "the file is empty");
  if (cur) return bad("volume " + layout::detail::quoted(cur->vid) + " has no 'end'");
  return out;
}
}  // namespace detail
}  // namespace file_reflink
