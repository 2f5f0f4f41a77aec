// SPDX-License-Identifier: BSL-1.0
//! \file
//! Messages (a quoted name, a size in bytes) and `no_throw`, which keeps
//! every exception (memory exhausted, mostly) from leaving the library.
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

//! An error with `code` and the message `what()` + `detail`, or with the
//! code alone when even that message cannot be built (memory exhausted):
//! it never throws, so a `noexcept` operation never terminates the process.
template <class What>
error error_nothrow(std::error_code code, What& what, const char* detail = nullptr) noexcept {
  try {
    std::string m = what();
    m += ": ";
    m += detail ? detail : code.message();
    return error(code, std::move(m));
  } catch (...) {
    return error(code, std::string());
  }
}

//! Run `f` and turn an escaping exception (only allocation failure is
//! expected) into an error, so that no exception leaves the library.
//! `what` makes the operation's description, only when it is needed:
//! nothing is allocated outside the `try`.
template <class R, class What, class F>
R no_throw(What&& what, F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return failure(error_nothrow(std::error_code(ENOMEM, std::system_category()), what));
  } catch (const std::exception& e) {
    return failure(error_nothrow(std::make_error_code(std::errc::io_error), what, e.what()));
  } catch (...) {
    return failure(error_nothrow(std::error_code(EIO, std::system_category()), what));
  }
}

}  // namespace detail
}  // namespace file_reflink
