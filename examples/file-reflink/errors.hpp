// SPDX-License-Identifier: BSL-1.0
//! \file
//! How the command fails: the library's `error` for everything (its own
//! argument errors get a category of their own), one line on stderr, and an
//! exit status a script can tell apart.
#pragma once

#include <file_reflink/error.hpp>

#include <string>
#include <system_error>

namespace file_reflink::cli {

//! Exit statuses, documented in --help and the README.
enum exit_status : int {
  exit_ok = 0,
  exit_failed = 1,      //!< the operation failed (the message says why)
  exit_usage = 2,       //!< bad arguments: nothing was done
  exit_not_found = 3,   //!< no such pool, volume, revision or file
  exit_busy = 4,        //!< a volume was busy: another command held it longer than --wait allowed
  exit_cancelled = 130  //!< Ctrl-C: the copy was cancelled and nothing was left behind
};

//! What --help says about the exit statuses.
inline constexpr const char* exit_status_help =
    "Exit status: 0 ok, 1 operation failed, 2 usage error (nothing done), 3 not found (pool, volume,\n"
    "revision or file), 4 busy (another command held the volume past --wait, or at all with --no-wait;\n"
    "nothing done), 130 cancelled by Ctrl-C (nothing left behind).";

//! An argument the command cannot use: exits with `exit_usage`.
error usage_error(const std::string& what);

//! The exit status for an error: usage for bad arguments (the command's
//! own, and the library's invalid vid, label or config), busy for a volume
//! whose lock the wait policy gave up on, not found for anything that maps
//! to ENOENT, cancelled, else failed.
int exit_status_of(const error& e) noexcept;

//! "file-reflink: <message>" on stderr, on one line.
void print_error(const error& e);

//! "file-reflink: warning: <message>" on stderr.
void print_warning(const std::string& message);

}  // namespace file_reflink::cli
