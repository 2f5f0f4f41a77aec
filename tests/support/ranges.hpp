// SPDX-License-Identifier: BSL-1.0
//! \file
//! Sets of byte ranges, as the tests compare extent maps with them.
#pragma once

#include <algorithm>
#include <cstdint>
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

}  // namespace file_reflink::test
