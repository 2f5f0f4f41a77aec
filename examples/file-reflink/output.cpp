// SPDX-License-Identifier: BSL-1.0
#include "output.hpp"

#include "sizes.hpp"

#include <algorithm>
#include <cstdio>

namespace file_reflink::cli {

void print_json(const json& j) {
  std::string text = j.dump(2, ' ', false, json::error_handler_t::replace);
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fputc('\n', stdout);
}

std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

Table::Table(std::vector<std::string> header) {
  for (auto& h : header) {
    bool right = !h.empty() && h.front() == '>';
    right_.push_back(right);
    header_.push_back(right ? h.substr(1) : h);
  }
}

void Table::add(std::vector<std::string> row) {
  row.resize(header_.size());
  rows_.push_back(std::move(row));
}

void Table::print() const {
  std::vector<std::size_t> width(header_.size());
  for (std::size_t c = 0; c < header_.size(); ++c) {
    width[c] = display_width(header_[c]);
    for (auto& r : rows_) width[c] = std::max(width[c], display_width(r[c]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::string out;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      std::string pad(width[c] - display_width(cells[c]), ' ');
      bool last = c + 1 == cells.size();
      if (right_[c])
        out += pad + cells[c];
      else
        out += cells[c] + (last ? "" : pad);
      if (!last) out += "  ";
    }
    while (!out.empty() && out.back() == ' ') out.pop_back();
    std::printf("%s\n", out.c_str());
  };
  line(header_);
  for (auto& r : rows_) line(r);
}

void print_fields(const fields& f) {
  std::size_t width = 0;
  for (auto& [k, v] : f) width = std::max(width, display_width(k));
  for (auto& [k, v] : f) std::printf("%s%s  %s\n", k.c_str(), std::string(width - display_width(k), ' ').c_str(), v.c_str());
}

json to_json(const space_usage& s) {
  return json{{"allocated", s.allocated}, {"exclusive", s.exclusive}, {"shared", s.shared}};
}

json to_json(const volume_space& s) {
  json j;
  j["total"] = to_json(s.total);
  j["running_image"] = s.dirty ? to_json(*s.dirty) : json(nullptr);
  j["committed_image"] = s.clean ? to_json(*s.clean) : json(nullptr);
  j["precache"] = s.precache ? to_json(*s.precache) : json(nullptr);
  json revs = json::object();
  for (auto& [n, u] : s.revisions) revs[std::to_string(n)] = to_json(u);
  j["revisions"] = std::move(revs);
  return j;
}

json to_json(const revision_info& r) {
  return json{{"number", r.number}, {"timestamp", r.timestamp}, {"time", r.time}, {"labels", r.labels}};
}

json to_json(const revision_map& revs) {
  json a = json::array();
  for (auto& [n, r] : revs) a.push_back(to_json(r));
  return a;
}

json to_json(const foreign_file& f) {
  static const char* types[] = {"regular", "directory", "symlink", "other"};
  return json{{"path", f.relative.generic_string()}, {"type", types[static_cast<int>(f.type)]}, {"reason", f.reason}};
}

json to_json(const scan_report& r) {
  json vols = json::array();
  for (auto& v : r.volumes) {
    json t = json::array();
    for (auto& p : v.temporary) t.push_back(p.generic_string());
    vols.push_back(json{{"vid", v.vid},
                        {"in_catalog", v.registered},
                        {"committed_image", v.clean},
                        {"running_image", v.dirty},
                        {"import", v.import},
                        {"precache", to_string(v.precache)},
                        {"revisions", to_json(v.revisions)},
                        {"orphan_pins", v.orphan_pins},
                        {"temporary", std::move(t)},
                        {"notes", scan_notes(v)}});
  }
  json foreign = json::array();
  for (auto& f : r.foreign) foreign.push_back(to_json(f));
  return json{{"volumes", std::move(vols)}, {"foreign", std::move(foreign)}};
}

json to_json(const recover_report& r) {
  json removed = json::array();
  for (auto& p : r.removed) removed.push_back(p.generic_string());
  json foreign = json::array();
  for (auto& f : r.foreign) foreign.push_back(to_json(f));
  return json{{"removed", std::move(removed)},
              {"running", r.dirty},
              {"stale_precache", r.stale_precache},
              {"busy", r.busy},
              {"foreign", std::move(foreign)}};
}

const char* to_string(precache_state s) noexcept {
  switch (s) {
    case precache_state::none: return "none";
    case precache_state::current: return "current";
    case precache_state::stale: return "stale";
  }
  return "?";
}

const char* state_word(volume_status s) noexcept {
  return s == volume_status::stopped ? "stopped" : "running";
}

std::vector<std::string> scan_notes(const volume_scan& v) {
  std::vector<std::string> notes;
  if (!v.orphan_pins.empty()) notes.push_back("pins without their revision: " + join(v.orphan_pins, ", "));
  if (!v.temporary.empty()) notes.push_back(std::to_string(v.temporary.size()) + " incomplete temporary file(s)");
  if (v.import) notes.push_back("an interrupted import (pool recover removes it)");
  return notes;
}

revision_change compare_revisions(const revision_map& before, const revision_map& after) {
  auto has = [](const revision_map& m, const revision_info& r) {
    auto [b, e] = m.equal_range(r.number);
    return std::any_of(b, e, [&](const auto& kv) { return kv.second.timestamp == r.timestamp; });
  };
  revision_change c;
  for (auto& [n, r] : after)
    if (!has(before, r)) c.created.push_back(n);
  for (auto& [n, r] : before)
    if (!has(after, r)) c.pruned.push_back(n);
  return c;
}

void add_to_json(json& j, const revision_change& c) {
  j["revisions_created"] = c.created;
  j["revisions_pruned"] = c.pruned;
}

std::string number_list(const std::vector<std::uint64_t>& v) {
  std::string out;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += i + 1 == v.size() ? " and " : ", ";
    out += std::to_string(v[i]);
  }
  return out;
}

std::string describe(const revision_change& c, const std::string& made) {
  std::string out;
  if (c.created.empty())
    out = "no revision made";
  else
    out = (c.created.size() == 1 ? "revision " : "revisions ") + number_list(c.created) + " made of " + made;
  if (!c.pruned.empty())
    out += (c.pruned.size() == 1 ? "; revision " : "; revisions ") + number_list(c.pruned) + " pruned";
  return out;
}

std::string join(const std::vector<std::string>& v, const char* sep) {
  std::string out;
  for (auto& s : v) out += (out.empty() ? "" : sep) + s;
  return out;
}

std::string size_and_bytes(std::uint64_t bytes) {
  return format_size(bytes) + " (" + std::to_string(bytes) + " bytes)";
}

}  // namespace file_reflink::cli
