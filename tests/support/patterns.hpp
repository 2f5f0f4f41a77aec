// SPDX-License-Identifier: BSL-1.0
//! \file
//! The data the tests and the benchmark write: deterministic, incompressible,
//! never-zero bytes (xorshift32), so that a copy that lost or moved a block
//! cannot pass by accident, and no copy can skip a block as a hole.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace file_reflink::test {

//! Fill [first, last) with the bytes of the xorshift32 generator started at
//! `state` (never zero).
inline void fill_pattern(char* first, char* last, std::uint32_t state) noexcept {
  std::uint32_t x = state;
  for (char* c = first; c != last; ++c) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *c = static_cast<char>((x & 0xff) | 1);
  }
}

//! `n` pattern bytes of `seed`: the same seed gives the same bytes.
inline std::string pattern(std::size_t n, std::uint32_t seed = 1) {
  std::string s(n, '\0');
  fill_pattern(s.data(), s.data() + s.size(), seed * 2654435761u + 12345u);
  return s;
}

}  // namespace file_reflink::test
