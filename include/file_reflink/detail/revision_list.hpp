// SPDX-License-Identifier: BSL-1.0
//! \file
//! A volume's revisions as its directory lists them, and which one an
//! operation names (the newest, a number, a label).
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/detail/no_throw.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/layout.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {

//! One revision: its number and stamp, whether its own file exists, and
//! its pins (hard links of the same data).
struct rev_entry {
  std::uint64_t n = 0;
  std::string stamp;
  bool has_file = false;                               // "V.img.N@STAMP" exists
  std::vector<std::pair<std::string, path>> pins;      // label, relative path
  //! The file holding the revision's data: its own, or a pin (a hard link).
  path file(const layout::volume_paths& p) const { return has_file ? p.revision(n, stamp) : pins.front().second; }
  //! "N (STAMP)", for messages.
  std::string name() const { return std::to_string(n) + " (" + stamp + ")"; }
  revision_info info() const {
    revision_info i;
    i.number = n;
    i.timestamp = stamp;
    i.time = layout::parse_timestamp(stamp).value_or(0);
    for (auto& pin : pins) i.labels.push_back(pin.first);
    return i;
  }
};
//! Revisions by (number, stamp): the order of `revisions()`, oldest first.
using rev_list = std::map<std::pair<std::uint64_t, std::string>, rev_entry>;

//! Which revision an operation names: the newest, a number, or a label.
struct selector {
  enum class by : std::uint8_t { newest, number, label } how = by::newest;
  std::uint64_t n = 0;
  std::string_view label;
  static selector number(std::uint64_t v) { return selector{by::number, v, {}}; }
  static selector label_of(std::string_view l) { return selector{by::label, 0, l}; }
};

//! The revision pinned under `label`, or null.
inline const rev_entry* find_label(const rev_list& revs, std::string_view label) {
  for (auto& [key, r] : revs)
    for (auto& pin : r.pins)
      if (pin.first == label) return &r;
  return nullptr;
}

//! " (the volume has revisions 1, 2 and 3)" or " (the volume has no revisions)".
inline std::string available(const rev_list& revs) {
  if (revs.empty()) return " (the volume has no revisions)";
  std::string list;
  std::size_t i = 0;
  for (auto& [key, r] : revs) {
    if (i++) list += i == revs.size() ? " and " : ", ";
    list += std::to_string(r.n);
  }
  return std::string(" (the volume has revision") + (revs.size() > 1 ? "s " : " ") + list + ")";
}

//! The revision `sel` names. A number names the revision file with that
//! number, or, where no file has it, the one revision with that number
//! that only pins keep; where two revisions would do, none is guessed.
inline result<const rev_entry*> find_revision(const rev_list& revs, const selector& sel) {
  switch (sel.how) {
    case selector::by::newest:
      if (revs.empty()) return failure(errc::revision_not_found, "the volume has no revisions");
      return &revs.rbegin()->second;
    case selector::by::label: {
      if (const rev_entry* e = find_label(revs, sel.label)) return e;
      return failure(errc::revision_not_found, "label " + detail::q(std::string(sel.label)) + available(revs));
    }
    case selector::by::number: break;
  }
  std::vector<const rev_entry*> all, with_file;
  for (auto it = revs.lower_bound({sel.n, std::string()}); it != revs.end() && it->first.first == sel.n; ++it) {
    all.push_back(&it->second);
    if (it->second.has_file) with_file.push_back(&it->second);
  }
  if (all.empty()) return failure(errc::revision_not_found, "revision " + std::to_string(sel.n) + available(revs));
  if (all.size() == 1) return all.front();
  if (with_file.size() == 1) return with_file.front();
  std::string names;
  for (const rev_entry* e : all) {
    names += names.empty() ? "" : ", ";
    names += e->name();
    for (auto& pin : e->pins) names += " [" + pin.first + "]";
  }
  return failure(errc::revision_ambiguous, "revision " + std::to_string(sel.n) + " names " +
                                               std::to_string(all.size()) + " revisions: " + names +
                                               "; name the one you mean by a label");
}

//! The next revision number: one more than any revision or pin.
inline std::uint64_t next_number(const rev_list& revs) {
  return revs.empty() ? 1 : revs.rbegin()->first.first + 1;
}

}  // namespace detail
}  // namespace file_reflink
