// SPDX-License-Identifier: BSL-1.0
//! \file
//! The bytes of `volume import` and `volume export`: a file or a pipe into
//! an image and back, holes kept as holes wherever the other end can hold
//! them, with progress and Ctrl-C.
#pragma once

#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace file_reflink::cli {

//! A name in single quotes, as messages show it.
inline std::string q(const std::string& s) { return "'" + s + "'"; }

//! A file descriptor closed on every path out; standard input, output and
//! error are never closed (a "-" argument names them).
struct Fd {
  int fd = -1;
  explicit Fd(int f = -1) noexcept : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd > STDERR_FILENO) ::close(fd);
  }
  //! Close now, reporting the error a late write-back may have left.
  int close_checked() {
    const int f = fd;
    fd = -1;
    return f <= STDERR_FILENO || ::close(f) == 0 ? 0 : errno;
  }
};

//! `done` of `total` bytes; false stops the transfer (`errc::cancelled`).
using transfer_progress = std::function<bool(std::uint64_t done, std::uint64_t total)>;

//! Where import data comes from: a file, a block device or a pipe.
struct import_source {
  int fd = -1;
  bool seekable = false;    //!< a regular file or a block device: its size is known
  bool regular = false;     //!< a regular file: its holes can be found with SEEK_DATA
  std::uint64_t size = 0;   //!< known size (seekable only)
  std::string name;         //!< for messages ("standard input" or the path)
};

//! Open FILE, or describe standard input for "-".
result<import_source> open_import_source(const std::string& file);

//! Write `src` into the existing image file `image` (made by import_data,
//! `size` bytes, all a hole), skipping all-zero blocks so holes stay holes.
//! More than `size` bytes is an error: the import would be cut short. A
//! pipe that gives no byte at all, or (`full`: its size was given) fewer
//! than `size`, is an error too unless `allow_short`: the writer may have
//! failed, and the image would be zeros where its data should be.
result<void> stream_into_image(const import_source& src, const path& image, std::uint64_t size, bool full,
                               bool allow_short, const transfer_progress& progress);

//! The path of the regular file that `src` (standard input at its start)
//! is open on, if it still has one: what the library's import_file can
//! clone. Empty for a pipe, a device, or a file whose name is gone.
std::optional<path> path_of_regular_input(const import_source& src);

//! Copy the image at `image` to FILE ("-": all bytes to standard output). A
//! regular FILE is written beside its final name and renamed over it once
//! complete, with holes where the image has holes or zeros; an existing
//! device or pipe gets every byte. A failed or cancelled export leaves
//! nothing behind. An existing regular FILE is refused unless `overwrite`.
result<void> stream_out_of_image(const path& image, const std::string& file, bool overwrite,
                                 const transfer_progress& progress);

}  // namespace file_reflink::cli
