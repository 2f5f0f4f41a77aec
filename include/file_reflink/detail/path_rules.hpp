// SPDX-License-Identifier: BSL-1.0
//! \file
//! The path rules both policies follow, written once: how a path relative
//! to a directory handle is cut into names.
#pragma once

#include <cerrno>
#include <cstddef>
#include <string_view>
#include <vector>

namespace file_reflink::detail {

//! The names of a path relative to a handle: empty and "." parts dropped;
//! EXDEV for an absolute path or a ".." that would climb above the handle
//! (checked lexically, before any lookup). `parts` view `rel`'s characters.
inline int split_beneath(std::string_view rel, std::vector<std::string_view>& parts) {
  if (!rel.empty() && rel.front() == '/') return EXDEV;
  int depth = 0;
  std::size_t begin = 0;
  while (begin <= rel.size()) {
    std::size_t end = rel.find('/', begin);
    if (end == std::string_view::npos) end = rel.size();
    const std::string_view part = rel.substr(begin, end - begin);
    begin = end + 1;
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (depth == 0) return EXDEV;
      --depth;
    } else {
      ++depth;
    }
    parts.push_back(part);
  }
  return 0;
}

}  // namespace file_reflink::detail
