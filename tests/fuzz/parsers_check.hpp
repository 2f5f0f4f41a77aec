// SPDX-License-Identifier: BSL-1.0
//! \file
//! What the vid, label, timestamp and file-name parsers must guarantee for
//! any input, checked on one input: shared by the libFuzzer target
//! (vid_fuzz.cpp) and the plain corpus replay of the reliability tests.
//!
//! The input is split at newlines: two vid candidates, a file name found in
//! a pool, a revision label. For every accepted vid, each file it names lies
//! strictly inside the pool (no empty, "." or ".." component, not absolute,
//! every name within NAME_MAX), classifies back to that vid and role, and no
//! file of another accepted vid is the same path or is classified as the
//! first vid's; where a file of one is a directory on the way to a file of
//! the other (a VM directory named "backup.img" beside a volume "backup"),
//! `vid_collision` says so, and it says so only then. A name classifies the
//! way it is built, and a timestamp parses only if formatting it gives it
//! back.
#pragma once

#include <file_reflink/layout.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace file_reflink::fuzz {

namespace detail {

inline std::vector<std::string_view> split(std::string_view s, char sep, std::size_t max_parts) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_parts) {
    auto i = s.find(sep);
    if (i == std::string_view::npos) break;
    out.push_back(s.substr(0, i));
    s.remove_prefix(i + 1);
  }
  out.push_back(s);
  return out;
}

//! The files of a vid, relative to the pool, with the role each must
//! classify as.
struct named_file {
  std::string rel;
  layout::file_kind kind;
};

inline std::vector<named_file> files_of(std::string_view vid) {
  layout::volume_paths p = layout::paths_of(vid);
  const std::string stamp = "2024-02-29T23:59:59Z";
  return {
      {p.clean().generic_string(), layout::file_kind::clean},
      {p.dirty().generic_string(), layout::file_kind::dirty},
      {p.precache().generic_string(), layout::file_kind::precache},
      {p.import().generic_string(), layout::file_kind::import},
      {p.revision(1, stamp).generic_string(), layout::file_kind::revision},
      {p.revision(UINT64_MAX, stamp).generic_string(), layout::file_kind::revision},
      {p.pin(7, stamp, std::string(layout::max_label_bytes, 'L')).generic_string(), layout::file_kind::pin},
      {layout::temp_name(p.clean()).generic_string(), layout::file_kind::temporary},
  };
}

inline std::string leaf_of(const std::string& rel) {
  auto s = rel.rfind('/');
  return s == std::string::npos ? rel : rel.substr(s + 1);
}
inline std::string dir_of(const std::string& rel) {
  auto s = rel.rfind('/');
  return s == std::string::npos ? std::string() : rel.substr(0, s);
}

//! The vid that owns the file `rel`, by its name alone ("" if none).
inline std::string owner_of(const std::string& rel) {
  layout::name_info info = layout::classify(leaf_of(rel));
  if (info.kind == layout::file_kind::foreign) return std::string();
  std::string d = dir_of(rel);
  return d.empty() ? info.base : d + "/" + info.base;
}

inline std::string check_vid(std::string_view vid) {
  auto problem = layout::vid_problem(vid);
  auto validated = layout::validate_vid(vid);
  if (problem) {
    if (validated || validated.error() != errc::invalid_vid) return "vid_problem refuses, validate_vid does not";
    return std::string();
  }
  if (!validated) return "vid_problem accepts, validate_vid refuses";
  for (const named_file& f : files_of(vid)) {
    if (f.rel.empty() || f.rel.front() == '/') return "file " + f.rel + " is not relative";
    for (std::string_view c : split(f.rel, '/', SIZE_MAX)) {
      if (c.empty() || c == "." || c == "..") return "file " + f.rel + " has a '" + std::string(c) + "' component";
      if (c.size() > 255) return "file " + f.rel + " has a component longer than NAME_MAX";
      if (c.find('\0') != std::string_view::npos) return "file " + f.rel + " has a NUL byte";
    }
    layout::name_info info = layout::classify(leaf_of(f.rel));
    if (info.kind != f.kind) return "file " + f.rel + " does not classify as what it is";
    if (owner_of(f.rel) != vid) return "file " + f.rel + " classifies as volume '" + owner_of(f.rel) + "'";
  }
  return std::string();
}

inline std::string check_two_vids(std::string_view a, std::string_view b) {
  if (a == b || layout::vid_problem(a) || layout::vid_problem(b)) return std::string();
  auto fa = files_of(a), fb = files_of(b);
  bool nested = false;  // a file of one is a directory on the way to a file of the other
  auto is_dir_of = [](const std::string& file, const std::string& other) {
    return other.size() > file.size() && other.compare(0, file.size(), file) == 0 && other[file.size()] == '/';
  };
  for (const named_file& x : fa) {
    for (const named_file& y : fb) {
      if (x.rel == y.rel) return "volumes '" + std::string(a) + "' and '" + std::string(b) + "' share file " + x.rel;
      if (x.kind == layout::file_kind::temporary || y.kind == layout::file_kind::temporary) continue;
      nested = nested || is_dir_of(x.rel, y.rel) || is_dir_of(y.rel, x.rel);
    }
  }
  const bool said = static_cast<bool>(layout::vid_collision(a, b));
  if (nested && !said)
    return "a file of '" + std::string(a) + "' or '" + std::string(b) + "' is a directory of the other, and vid_collision accepts them";
  if (!nested && said) return "vid_collision refuses '" + std::string(a) + "' and '" + std::string(b) + "', which do not collide";
  return std::string();
}

inline std::string check_name(std::string_view name) {
  layout::name_info info = layout::classify(name);
  layout::volume_paths p;
  p.base = info.base;
  std::string rebuilt;
  switch (info.kind) {
    case layout::file_kind::foreign: return std::string();
    case layout::file_kind::clean: rebuilt = p.clean().string(); break;
    case layout::file_kind::dirty: rebuilt = p.dirty().string(); break;
    case layout::file_kind::precache: rebuilt = p.precache().string(); break;
    case layout::file_kind::import: rebuilt = p.import().string(); break;
    case layout::file_kind::revision: rebuilt = p.revision(info.revision, info.stamp).string(); break;
    case layout::file_kind::pin: rebuilt = p.pin(info.revision, info.stamp, info.label).string(); break;
    case layout::file_kind::temporary: {
      auto t = name.find('~');
      if (t == std::string_view::npos || t + 1 >= name.size()) return "a temporary without '~<random>'";
      layout::name_info final_info = layout::classify(name.substr(0, t));
      if (final_info.kind != info.final_kind || final_info.base != info.base) return "a temporary of another file";
      return std::string();
    }
  }
  if (rebuilt != name) return "name '" + std::string(name) + "' classifies as '" + rebuilt + "'";
  if (layout::name_problem(info.base)) return "name '" + std::string(name) + "' has a base no vid can end in";
  return std::string();
}

inline std::string check_label(std::string_view label) {
  if (layout::label_problem(label)) return std::string();
  if (layout::detail::all_digits(label)) return "an all-digit label is accepted";
  layout::volume_paths p;
  p.base = "v";
  std::string pin = p.pin(3, "2001-09-09T01:46:40Z", label).string();
  layout::name_info info = layout::classify(pin);
  if (info.kind != layout::file_kind::pin || info.label != label || info.revision != 3)
    return "a pin with label '" + std::string(label) + "' does not classify back";
  return std::string();
}

inline std::string check_stamp(std::string_view s) {
  auto t = layout::parse_timestamp(s);
  if (!t) return std::string();
  if (layout::format_timestamp(*t) != s) return "timestamp '" + std::string(s) + "' formats as " + layout::format_timestamp(*t);
  return std::string();
}

}  // namespace detail

//! Check one input; returns what is wrong, or "" when every rule holds.
inline std::string check_parsers(const std::uint8_t* data, std::size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  auto parts = detail::split(all, '\n', 4);
  while (parts.size() < 4) parts.push_back(std::string_view());
  std::string why;
  if (!(why = detail::check_vid(parts[0])).empty()) return why;
  if (!(why = detail::check_vid(parts[1])).empty()) return why;
  if (!(why = detail::check_two_vids(parts[0], parts[1])).empty()) return why;
  if (!(why = detail::check_name(parts[2])).empty()) return why;
  if (!(why = detail::check_stamp(parts[2])).empty()) return why;
  if (!(why = detail::check_label(parts[3])).empty()) return why;
  // The whole input as one vid, one name and one label too.
  if (!(why = detail::check_vid(all)).empty()) return why;
  if (!(why = detail::check_name(all)).empty()) return why;
  return detail::check_label(all);
}

}  // namespace file_reflink::fuzz
