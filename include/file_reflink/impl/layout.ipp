// SPDX-License-Identifier: BSL-1.0
//! \file
//! The definitions of `layout.hpp`: included by it (header-only), or by
//! `impl/src.hpp` (FILE_REFLINK_SEPARATE_COMPILATION).
#pragma once

#include <file_reflink/layout.hpp>

#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

namespace file_reflink {
namespace layout {
namespace detail {
FILE_REFLINK_DECL bool ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

FILE_REFLINK_DECL bool starts_with(std::string_view s, std::string_view prefix) noexcept {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

FILE_REFLINK_DECL bool all_digits(std::string_view s) noexcept {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

FILE_REFLINK_DECL std::string quoted(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      static const char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[(static_cast<unsigned char>(c) >> 4) & 0xf];
      out += hex[static_cast<unsigned char>(c) & 0xf];
    } else {
      out += c;
    }
  }
  return out + "'";
}

FILE_REFLINK_DECL std::optional<std::string> component_problem(std::string_view c, std::size_t max_bytes) {
  if (c.empty()) return std::string("it has an empty component");
  if (c == "." || c == "..") return "it has a '" + std::string(c) + "' component";
  if (c.front() == '.') return "component " + quoted(c) + " starts with '.'";
  for (char ch : c) {
    if (ch == '~' || ch == '@') return "it contains '" + std::string(1, ch) + "'";
    if (ch == '\0') return std::string("it contains a NUL byte");
    if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return std::string("it contains a control character");
  }
  if (c.size() > max_bytes)
    return "component " + quoted(c.substr(0, 32)) + "... is longer than " + std::to_string(max_bytes) + " bytes";
  return std::nullopt;
}
}  // namespace detail
}  // namespace layout
}  // namespace file_reflink

namespace file_reflink {
namespace layout {
FILE_REFLINK_DECL std::optional<std::string> name_problem(std::string_view name) {
  if (auto why = detail::component_problem(name, max_name_bytes)) return why;
  if (detail::ends_with(name, ".img") || name.find(".img.") != std::string_view::npos)
    return "its last component " + detail::quoted(name) + " contains '.img' where a volume's file names put it";
  for (std::string_view bad : {std::string_view("-dirty"), std::string_view("-precache"), std::string_view("-import")})
    if (detail::ends_with(name, bad)) return "its last component " + detail::quoted(name) + " ends in '" + std::string(bad) + "'";
  return std::nullopt;
}

FILE_REFLINK_DECL std::optional<std::string> dir_component_problem(std::string_view name) {
  return detail::component_problem(name, max_component_bytes);
}

FILE_REFLINK_DECL std::optional<std::string> vid_problem(std::string_view vid) {
  if (vid.empty()) return std::string("it is empty");
  if (vid.size() > max_vid_bytes) return "it is longer than " + std::to_string(max_vid_bytes) + " bytes";
  if (vid.front() == '/') return std::string("it starts with '/' (a vid is relative to the pool)");
  std::size_t start = 0;
  while (true) {
    std::size_t end = vid.find('/', start);
    if (end == std::string_view::npos) return name_problem(vid.substr(start));
    if (auto why = dir_component_problem(vid.substr(start, end - start))) return why;
    start = end + 1;
  }
}

FILE_REFLINK_DECL bool is_file_name_of(std::string_view name, std::string_view base) {
  if (name.size() <= base.size() || name.compare(0, base.size(), base) != 0) return false;
  const std::string_view rest = name.substr(base.size());
  return rest == ".img" || rest == "-dirty.img" || rest == "-precache.img" || rest == "-import.img";
}

FILE_REFLINK_DECL std::optional<std::string> vid_collision(std::string_view a, std::string_view b) {
  auto one_way = [](std::string_view dirs_of, std::string_view files_of) -> std::optional<std::string> {
    const std::size_t slash = files_of.rfind('/');
    const std::string_view parent = slash == std::string_view::npos ? std::string_view() : files_of.substr(0, slash);
    const std::string_view base = slash == std::string_view::npos ? files_of : files_of.substr(slash + 1);
    // Every directory of `dirs_of`: its parent path and its name.
    std::size_t begin = 0;
    for (std::size_t end = dirs_of.find('/'); end != std::string_view::npos;
         begin = end + 1, end = dirs_of.find('/', begin)) {
      const std::string_view dir_parent = begin == 0 ? std::string_view() : dirs_of.substr(0, begin - 1);
      const std::string_view dir_name = dirs_of.substr(begin, end - begin);
      if (dir_parent == parent && is_file_name_of(dir_name, base))
        return detail::quoted(dirs_of.substr(0, end)) + " would be a directory of vid " + detail::quoted(dirs_of) +
               " and the file of vid " + detail::quoted(files_of) + " of that name";
    }
    return std::nullopt;
  };
  if (auto c = one_way(a, b)) return c;
  return one_way(b, a);
}

FILE_REFLINK_DECL result<void> validate_vid(std::string_view vid) {
  if (auto why = vid_problem(vid)) return failure(errc::invalid_vid, "vid " + detail::quoted(vid) + ": " + *why);
  return success();
}

FILE_REFLINK_DECL std::optional<std::string> label_problem(std::string_view label) {
  if (label.empty()) return std::string("it is empty");
  if (label.size() > max_label_bytes) return "it is longer than " + std::to_string(max_label_bytes) + " bytes";
  if (detail::all_digits(label)) return std::string("it is all digits (that is a revision number)");
  if (label.front() == '.' || label.front() == '-') return std::string("it starts with '.' or '-'");
  for (char c : label) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '.' || c == '+';
    if (!ok) return std::string("only letters, digits and _ - . + are allowed");
  }
  return std::nullopt;
}

FILE_REFLINK_DECL result<void> validate_label(std::string_view label) {
  if (auto why = label_problem(label))
    return failure(errc::invalid_revision_label, "label " + detail::quoted(label) + ": " + *why);
  return success();
}

FILE_REFLINK_DECL std::string format_timestamp(std::int64_t seconds) {
  seconds = std::min(std::max(seconds, min_stamp_seconds), max_stamp_seconds);
  // Floor division: a time before 1970 belongs to the day that starts before it.
  std::int64_t days = seconds / 86400;
  std::int64_t rest = seconds % 86400;
  if (rest < 0) {
    rest += 86400;
    --days;
  }
  const detail::civil_date c = detail::civil_from_days(days);
  const auto h = static_cast<unsigned>(rest / 3600), mi = static_cast<unsigned>(rest / 60 % 60),
             se = static_cast<unsigned>(rest % 60);
  char buf[64];  // 21 bytes, but the compiler cannot tell the fields' ranges
  std::snprintf(buf, sizeof buf, "%04u-%02u-%02uT%02u:%02u:%02uZ", static_cast<unsigned>(c.year), c.month, c.day, h,
                mi, se);
  return buf;
}

FILE_REFLINK_DECL std::optional<std::int64_t> parse_timestamp(std::string_view s) {
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != 'Z')
    return std::nullopt;
  auto num = [&](std::size_t pos, std::size_t len) -> int {
    int v = 0;
    for (std::size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return -1;
      v = v * 10 + (s[i] - '0');
    }
    return v;
  };
  const int y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2), se = num(17, 2);
  if (y < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 || se > 59)
    return std::nullopt;
  if (static_cast<unsigned>(d) > detail::days_in_month(y, static_cast<unsigned>(mo))) return std::nullopt;
  return detail::days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) * 86400 + h * 3600 +
         mi * 60 + se;
}

FILE_REFLINK_DECL volume_paths paths_of(std::string_view vid) {
  volume_paths p;
  std::size_t slash = vid.rfind('/');
  if (slash == std::string_view::npos) {
    p.base = std::string(vid);
  } else {
    p.dir = path(std::string(vid.substr(0, slash)));
    p.base = std::string(vid.substr(slash + 1));
  }
  return p;
}
}  // namespace layout
}  // namespace file_reflink

namespace file_reflink {
namespace layout {
namespace detail {
FILE_REFLINK_DECL std::uint64_t temp_name_bits() noexcept {
  thread_local std::uint64_t state = 0;
  thread_local pid_t owner = 0;
  const pid_t pid = ::getpid();
  if (owner != pid) {
    std::uint64_t seed = 0;
    if (::getrandom(&seed, sizeof seed, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof seed)) seed = 0;
    struct timespec now {};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    seed ^= static_cast<std::uint64_t>(now.tv_sec) * 1000000000u + static_cast<std::uint64_t>(now.tv_nsec);
    seed ^= (static_cast<std::uint64_t>(pid) << 32) ^ static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&state));
    state = seed;
    owner = pid;
  }
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace detail
}  // namespace layout
}  // namespace file_reflink

namespace file_reflink {
namespace layout {
FILE_REFLINK_DECL path temp_name(const path& final_name) {
  static constexpr char alphabet[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::uint64_t bits = detail::temp_name_bits();
  std::string s = final_name.string();
  s += '~';
  for (int i = 0; i < 8; ++i) {
    s += alphabet[bits % (sizeof alphabet - 1)];
    bits /= (sizeof alphabet - 1);
  }
  return path(s);
}
}  // namespace layout
}  // namespace file_reflink

namespace file_reflink {
namespace layout {
namespace detail {
FILE_REFLINK_DECL bool valid_base(std::string_view base) {
  return base.find('/') == std::string_view::npos && !name_problem(base);
}

FILE_REFLINK_DECL bool parse_revision_tail(std::string_view tail, std::uint64_t& n, std::string& stamp) {
  std::size_t at = tail.find('@');
  if (at == std::string_view::npos || at == 0 || at > 20) return false;
  std::string_view num = tail.substr(0, at);
  if (!all_digits(num) || num.front() == '0') return false;
  std::uint64_t v = 0;
  for (char c : num) {
    const auto d = static_cast<std::uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  std::string_view st = tail.substr(at + 1);
  if (!parse_timestamp(st)) return false;
  n = v;
  stamp = std::string(st);
  return true;
}

FILE_REFLINK_DECL name_info classify_final(std::string_view name) {
  name_info info;
  auto take = [&](std::string_view suffix, file_kind kind) {
    if (!ends_with(name, suffix)) return false;
    std::string_view base = name.substr(0, name.size() - suffix.size());
    if (!valid_base(base)) return false;
    info.kind = kind;
    info.base = std::string(base);
    return true;
  };
  if (take(dirty_suffix, file_kind::dirty) || take(precache_suffix, file_kind::precache) ||
      take(import_suffix, file_kind::import))
    return info;
  // Revisions and pins: "<base>.img.<N>@<stamp>[.<label>.pin]". The base never
  // contains ".img.", so the first ".img." ends it.
  std::size_t img = name.find(".img.");
  if (img != std::string_view::npos && valid_base(name.substr(0, img))) {
    std::string_view tail = name.substr(img + 5);
    std::uint64_t n = 0;
    std::string stamp;
    if (parse_revision_tail(tail, n, stamp)) {
      info.kind = file_kind::revision;
      info.base = std::string(name.substr(0, img));
      info.revision = n;
      info.stamp = stamp;
      return info;
    }
    if (ends_with(tail, pin_suffix)) {
      std::string_view body = tail.substr(0, tail.size() - pin_suffix.size());
      std::size_t at = body.find('@');
      // "N@" + 20-byte stamp, then ".LABEL"
      if (at != std::string_view::npos && body.size() > at + 1 + 20 + 1 && body[at + 21] == '.') {
        std::string_view rev = body.substr(0, at + 21);
        std::string_view label = body.substr(at + 22);
        if (parse_revision_tail(rev, n, stamp) && !label_problem(label)) {
          info.kind = file_kind::pin;
          info.base = std::string(name.substr(0, img));
          info.revision = n;
          info.stamp = stamp;
          info.label = std::string(label);
          return info;
        }
      }
    }
    return info;  // foreign: looks like a revision but is malformed
  }
  if (take(clean_suffix, file_kind::clean)) return info;
  return info;
}
}  // namespace detail
}  // namespace layout
}  // namespace file_reflink

namespace file_reflink {
namespace layout {
FILE_REFLINK_DECL name_info classify(std::string_view name) {
  std::size_t tilde = name.find('~');
  if (tilde != std::string_view::npos) {
    name_info final_info = detail::classify_final(name.substr(0, tilde));
    if (final_info.kind == file_kind::foreign || tilde + 1 >= name.size()) return name_info{};
    final_info.final_kind = final_info.kind;
    final_info.kind = file_kind::temporary;
    return final_info;
  }
  return detail::classify_final(name);
}
}  // namespace layout
}  // namespace file_reflink
