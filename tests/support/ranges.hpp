// SPDX-License-Identifier: BSL-1.0
//! \file
//! Sets of byte ranges, as the tests compare extent maps with them.
#pragma once

#include <file_reflink/fs_types.hpp>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace file_reflink::test {

//! A set of byte ranges [begin, end).
using ranges = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

//! `r` sorted, without empty ranges, and merged where ranges touch or overlap.
inline ranges merged(ranges r) {
  std::sort(r.begin(), r.end());
  ranges out;
  for (const auto& x : r) {
    if (x.first >= x.second) continue;
    if (!out.empty() && x.first <= out.back().second)
      out.back().second = std::max(out.back().second, x.second);
    else
      out.push_back(x);
  }
  return out;
}

//! An extent map as `storage_extents` promises it, as text to compare:
//! sorted, the shared flag dropped, neighbours joined where both are exact
//! and physically adjacent (btrfs's FIEMAP joins some that its tree keeps
//! apart), inexact ones by logical range only ("[logical+length@physical]",
//! "[logical+length~]").
inline std::string storage_text(std::vector<extent> ex) {
  std::sort(ex.begin(), ex.end(), [](const extent& a, const extent& b) { return a.logical < b.logical; });
  std::vector<extent> joined;
  for (extent e : ex) {
    if (!e.exact) e.physical = 0;
    if (!joined.empty()) {
      extent& p = joined.back();
      if (p.exact == e.exact && p.logical + p.length == e.logical && (!e.exact || p.physical + p.length == e.physical)) {
        p.length += e.length;
        continue;
      }
    }
    joined.push_back(e);
  }
  std::string out;
  for (const extent& e : joined) {
    out += '[';
    out += std::to_string(e.logical);
    out += '+';
    out += std::to_string(e.length);
    if (e.exact) {
      out += '@';
      out += std::to_string(e.physical);
    } else {
      out += '~';
    }
    out += ']';
  }
  return out;
}

}  // namespace file_reflink::test
