// SPDX-License-Identifier: BSL-1.0
//! \file
//! The volume file of earlier versions of the command: the pool's settings
//! and every volume's config, in one JSON file at the top of the pool. The
//! library's catalog has replaced it; a pool that still has one is
//! converted once (see `PoolSession::open`), and the file renamed aside.
//!
//! Both names start with ".file-reflink", a prefix the library reserves for
//! tools: `Pool::scan` skips them, no vid can start with a dot, and a Qubes
//! driver sharing the pool only ever looks at its own volumes' image names.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/error.hpp>

#include <map>
#include <string>

namespace file_reflink::cli {

//! The volume configs of earlier versions, next to the images they describe.
inline constexpr const char* volume_file_name = ".file-reflink-volumes.json";
//! What it is renamed to once its contents are in the catalog: kept for the
//! operator to look at (a reserved name: the library's scan skips it).
inline constexpr const char* converted_volume_file_name = ".file-reflink-volumes.json.converted";

//! The pool's own settings, as `pool init` chose them.
struct pool_settings {
  int revisions_to_keep = 1;  //!< the default of its volumes
  bool setup_check = true;    //!< false: made on a filesystem without reflinks, on purpose
};

//! The whole file.
struct VolumeFile {
  bool exists = false;
  pool_settings pool;
  std::map<std::string, volume_config> volumes;  //!< by vid
};

//! The file of the pool in `dir`; `exists` false when there is none.
result<VolumeFile> read_volume_file(const path& dir);

//! Rename the file to `converted_volume_file_name`, durably. Done already
//! (by another command converting at the same time) is success.
result<void> retire_volume_file(const path& dir);

}  // namespace file_reflink::cli
