// SPDX-License-Identifier: BSL-1.0
//! \file
//! The commands, one function each, on the arguments main() parsed. Each
//! prints what it did (text, or with --json one JSON object on stdout) and
//! returns the library's `result`: main() turns an error into one line on
//! stderr (with --json one JSON object) in the command's terms, and an exit
//! status.
#pragma once

#include "session.hpp"

#include <optional>
#include <string>

namespace file_reflink::cli {

struct pool_init_args {
  std::string dir;
  std::optional<int> revisions_to_keep;
  bool no_setup_check = false;
};

struct volume_create_args {
  std::string dir, vid;
  std::optional<std::string> size;
  std::string kind = "origin";
  std::optional<std::string> source;
  bool read_only = false;
  std::optional<int> revisions_to_keep;
};

//! Every other volume command: the pool, the vid, and its operands.
struct volume_args {
  std::string dir, vid;
  std::string operand1, operand2;  //!< REV|LABEL, SIZE, FILE, OFF and LEN, KEY and VALUE...
  std::optional<std::string> size; //!< import: the size of data on a pipe
  bool force = false;  //!< remove: a running volume, or a source of other volumes; export: overwrite FILE;
                       //!< resize: beyond the filesystem's size
  bool shrink = false;       //!< resize: make a stopped volume smaller
  bool allow_short = false;  //!< import: accept a pipe that is empty or shorter than --size
  std::optional<std::string> since;  //!< send: the revision (number or label) the receiver holds
};

result<void> pool_init(const pool_init_args& a, const common_options& o);
result<void> pool_info(const std::string& dir, const common_options& o);
result<void> pool_du(const std::string& dir, const common_options& o);
result<void> pool_scan(const std::string& dir, const common_options& o);
result<void> pool_recover(const std::string& dir, const common_options& o);
result<void> pool_adopt(const std::string& dir, const common_options& o);

result<void> volume_create(const volume_create_args& a, const common_options& o);
result<void> volume_list(const std::string& dir, const common_options& o);
result<void> volume_info(const volume_args& a, const common_options& o);
result<void> volume_start(const volume_args& a, const common_options& o);
result<void> volume_stop(const volume_args& a, const common_options& o);
result<void> volume_revisions(const volume_args& a, const common_options& o);
result<void> volume_revert(const volume_args& a, const common_options& o);
result<void> volume_keep(const volume_args& a, const common_options& o);
result<void> volume_drop(const volume_args& a, const common_options& o);
result<void> volume_unkeep(const volume_args& a, const common_options& o);
result<void> volume_set(const volume_args& a, const common_options& o);
result<void> volume_resize(const volume_args& a, const common_options& o);
result<void> volume_import(const volume_args& a, const common_options& o);
result<void> volume_export(const volume_args& a, const common_options& o);
result<void> volume_discard(const volume_args& a, const common_options& o);
result<void> volume_sparsify(const volume_args& a, const common_options& o);
result<void> volume_remove(const volume_args& a, const common_options& o);
result<void> volume_send(const volume_args& a, const common_options& o);
result<void> volume_receive(const volume_args& a, const common_options& o);
result<void> volume_changes(const volume_args& a, const common_options& o);

//! A size argument ("10G"), or a usage error naming `what`.
result<std::uint64_t> size_argument(const std::string& what, const std::string& text);

}  // namespace file_reflink::cli
