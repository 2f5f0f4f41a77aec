// SPDX-License-Identifier: BSL-1.0
//! \file
//! Messages (a quoted name, a size in bytes) and `no_throw`, the pool's way
//! into the one exception boundary.
#pragma once

#include <file_reflink/error.hpp>
#include <file_reflink/fs_types.hpp>
#include <file_reflink/layout.hpp>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <system_error>
#include <utility>

namespace file_reflink {
namespace detail {

//! "'text'", for messages.
inline std::string q(const std::string& s) { return layout::detail::quoted(s); }
inline std::string q(const path& p) { return layout::detail::quoted(p.string()); }

//! Human-readable bytes for messages ("1.5 GiB (1610612736 bytes)").
inline std::string bytes_text(std::uint64_t n) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return std::to_string(n) + " bytes";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s (%llu bytes)", v, units[u], static_cast<unsigned long long>(n));
  return buf;
}

//! Run `f` through the library's one exception boundary
//! (`exception_boundary`, in `error.hpp`), so that no exception leaves the
//! library. `what` makes the operation's description, only when needed.
template <class R, class What, class F>
R no_throw(const What& what, F&& f) noexcept {
  return exception_boundary<R>(what, std::forward<F>(f));
}

}  // namespace detail
}  // namespace file_reflink
