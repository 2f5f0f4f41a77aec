// SPDX-License-Identifier: BSL-1.0
//! \file
//! How the command fails: the library's `error` for everything (its own
//! argument errors get a category of their own), said in the command's own
//! terms (its verbs and flags, never the library's identifiers), as one
//! line on stderr or, with --json, one JSON object; and an exit status a
//! script can tell apart.
#pragma once

#include <file_reflink/error.hpp>

#include <string>
#include <system_error>

namespace file_reflink::cli {

//! Exit statuses, documented in --help and the README.
enum exit_status : int {
  exit_ok = 0,
  exit_failed = 1,      //!< the operation failed (the message says why)
  exit_usage = 2,       //!< bad arguments (a file where a directory is expected too): nothing was done
  exit_not_found = 3,   //!< no such pool (or a directory that is not one), volume, revision or file
  exit_busy = 4,        //!< a volume was busy: another command held it longer than --wait allowed
  exit_cancelled = 130  //!< Ctrl-C: the copy was cancelled and nothing was left behind
};

//! The exit status after signal `sig` (SIGINT, SIGTERM, SIGHUP, SIGPIPE) ended
//! the command: 128 + its number, as a shell reports a process it killed.
inline constexpr int exit_signalled(int sig) noexcept { return 128 + sig; }

//! What --help says about the exit statuses.
inline constexpr const char* exit_status_help =
    "Exit status: 0 ok, 1 operation failed, 2 usage error (nothing done; a file given where a directory is\n"
    "expected too), 3 not found (pool, volume, revision or file; a directory that is not a pool: pool init\n"
    "makes one), 4 busy (another command held the volume past --wait, or at all with --no-wait; nothing\n"
    "done); ended by a signal: 128 + its number: 130 SIGINT (Ctrl-C), 143 SIGTERM, 129 SIGHUP (terminal or\n"
    "ssh session closed), 141 SIGPIPE (the reader of the output went away). A signal cancels a copy, an\n"
    "import or an export and removes what it started (the import file, a partial FILE); a signal that comes\n"
    "once the import is being committed lets the commit finish (exit status 0).";

//! A refusal whose message says why and what to do (--force, --shrink,
//! --allow-short): `err` gives the exit status and the JSON code; no OS
//! reason is appended to the message ("File exists" after "'out' exists;
//! --force overwrites it" would say it twice).
error refusal(int err, const std::string& what);

//! An argument the command cannot use: exits with `exit_usage`.
error usage_error(const std::string& what);

//! A directory that exists but carries no pool: exits with `exit_not_found`,
//! code "not_a_pool". `empty`: it holds nothing (an unmounted filesystem's
//! mount point?), which the message mentions.
error not_a_pool_error(const std::string& dir, bool empty = false);

//! The exit status for an error: usage for bad arguments (the command's
//! own, and the library's invalid vid, label or config, and a path of the
//! wrong kind), busy for a volume whose lock the wait policy gave up on,
//! not found for anything that maps to ENOENT, 128 + the signal when one of
//! those the command catches came (see `interrupt_signal`) and the operation
//! failed or was cancelled, else failed.
int exit_status_of(const error& e) noexcept;

//! The stable word a script tests in the JSON error object ("usage",
//! "not_a_pool", "volume_not_found", "volume_running", ...).
std::string error_code_of(const error& e);

//! What the failed command was working on, for its error message and its
//! JSON error object: the command's words ("volume import"), and the vid
//! and the pool directory when it has them.
struct error_subject {
  std::string operation;
  std::string vid;
  std::string path;
};

//! The error's message in the command's terms: "<operation>: <what
//! failed>: <why>", the library's operation names and option identifiers
//! replaced by the command's verbs and flags; the volume, the paths and the
//! OS reason kept.
std::string command_message(const error& e, const error_subject& s);

//! Whether errors and warnings are JSON (--json): set once by main().
void set_json_errors(bool on) noexcept;

//! The error, in the command's terms: "file-reflink: <message>" on stderr on
//! one line, or with --json one JSON object
//! {"error": {"code", "exit_status", "message", "operation", "vid", "path",
//! "warnings"}} and nothing else.
void print_error(const error& e, const error_subject& s);

//! "file-reflink: warning: <message>" on stderr; with --json, kept until
//! the command ends (the error object lists them, a success prints them).
void print_warning(const std::string& message);

//! A note ("file-reflink: <message>", not a warning) on stderr; with --json
//! kept as the warnings are.
void print_note(const std::string& message);

//! The warnings and notes kept back under --json, on stderr as text lines:
//! the command succeeded, stderr is free.
void flush_kept_messages();

}  // namespace file_reflink::cli
