// SPDX-License-Identifier: BSL-1.0
//! \file
//! The command's documentation, read from its CLI11 definition and nothing
//! else: `COMMAND --help`, `help COMMAND`, the man page and the shell
//! completion all walk the same App tree, so an option added to a command
//! shows up in the four at once.
//!
//! A command's help text and its man page section are the same blocks
//! (synopsis, description, operands, options, subcommands), written once as
//! plain text and once as roff.
#pragma once

#include <file_reflink/error.hpp>

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace file_reflink::cli {

//! The plain text of `app`'s help: the top-level help for the root, its
//! man page section for a command.
std::string help_text(const CLI::App& app);

//! Makes CLI11's `--help` print `help_text`. Set on the root before any
//! subcommand is added (subcommands take their parent's formatter).
std::shared_ptr<CLI::FormatterBase> help_formatter();

//! The subcommand that `path` names below `root` ({"volume", "import"}), or
//! nullptr with `unknown` set to the first word that names none.
const CLI::App* find_command(const CLI::App& root, const std::vector<std::string>& path, std::string& unknown);

//! `help COMMAND...`: print the help of the command `path` names (the
//! top-level help for none), or fail with a usage error naming the word
//! that names no command.
result<void> show_help(const CLI::App& root, const std::vector<std::string>& path);

//! The text that opens the man page and closes the top-level help.
struct manual_text {
  std::string summary;      //!< NAME: one line
  std::string description;  //!< DESCRIPTION: paragraphs separated by blank lines
  std::string exit_status;  //!< EXIT STATUS
};

//! file-reflink(1) in roff (man macros).
std::string man_page(const CLI::App& root, const manual_text& text, const std::string& version);

//! What the shell should offer for the last of `words` (the word being
//! typed; the ones before it are the command line after the program's
//! name). The first line says how: "words" (the lines after it, matching
//! the typed prefix), "dirs" or "files" (the shell completes file names).
//! `values(kind, description, dir, vid)` lists what an operand or option
//! value of the metavariable `kind` (VID, REV, LABEL...) can be, in the
//! pool DIR and for the volume VID that the earlier words name (empty if
//! they name none).
using value_lister = std::function<std::vector<std::string>(const std::string& kind, const std::string& description,
                                                            const std::string& dir, const std::string& vid)>;
std::string complete(const CLI::App& root, const std::vector<std::string>& words, const value_lister& values);

}  // namespace file_reflink::cli
