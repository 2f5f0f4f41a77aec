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

//! The exit status after signal `sig` (SIGINT, SIGTERM, SIGHUP, SIGPIPE) ended
//! the command: 128 + its number, as a shell reports a process it killed.
inline constexpr int exit_signalled(int sig) noexcept { return 128 + sig; }

//! What --help says about the exit statuses.
inline constexpr const char* exit_status_help =
    "Exit status: 0 ok, 1 operation failed, 2 usage error (nothing done), 3 not found (pool, volume,\n"
    "revision or file), 4 busy (another command held the volume past --wait, or at all with --no-wait;\n"
    "nothing done); ended by a signal: 128 + its number: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP\n"
    "(terminal or ssh session closed), 141 SIGPIPE (the reader of the output went away). A signal cancels\n"
    "a copy, an import or an export and removes what it started (the import file, a partial FILE); a\n"
    "signal that comes once the import is being committed lets the commit finish (exit status 0).";

//! An argument the command cannot use: exits with `exit_usage`.
error usage_error(const std::string& what);

//! The exit status for an error: usage for bad arguments (the command's
//! own, and the library's invalid vid, label or config), busy for a volume
//! whose lock the wait policy gave up on, not found for anything that maps
//! to ENOENT, 128 + the signal when one of those the command catches came
//! (see `interrupt_signal`) and the operation failed or was cancelled, else
//! failed.
int exit_status_of(const error& e) noexcept;

//! "file-reflink: <message>" on stderr, on one line.
void print_error(const error& e);

//! "file-reflink: warning: <message>" on stderr.
void print_warning(const std::string& message);

}  // namespace file_reflink::cli
