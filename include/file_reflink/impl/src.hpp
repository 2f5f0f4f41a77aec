// SPDX-License-Identifier: BSL-1.0
//! \file
//! Separate compilation: include this file in exactly one source file of the
//! program, and define FILE_REFLINK_SEPARATE_COMPILATION for every source
//! file (this one too), as Asio's `asio/impl/src.hpp`. It instantiates
//! `Pool`, `Volume` and their core for `LinuxFsOps` and `MemoryFsOps`, and
//! defines the non-template functions (`FILE_REFLINK_DECL`); the other
//! source files then parse the declarations only. The CMake target
//! `file_reflink::compiled` (option FILE_REFLINK_BUILD_COMPILED) is such a
//! library. Without the macro, the library is header-only and this file is
//! not needed.
#pragma once

#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#error "<file_reflink/impl/src.hpp> is for separate compilation: define FILE_REFLINK_SEPARATE_COMPILATION for every source file of the program (the header-only default needs no source file)"
#endif

#include <file_reflink/impl/catalog.ipp>
#include <file_reflink/impl/layout.ipp>
#include <file_reflink/fs_ops/linux.hpp>
#include <file_reflink/fs_ops/linux/data_ops.hpp>
#include <file_reflink/fs_ops/linux/dir_ops.hpp>
#include <file_reflink/fs_ops/linux/file_ops.hpp>
#include <file_reflink/fs_ops/memory.hpp>
#include <file_reflink/impl/pool.ipp>
#include <file_reflink/impl/volume.ipp>
#include <file_reflink/pool.hpp>
#include <file_reflink/volume.hpp>

namespace file_reflink {
namespace detail {
template class pool_core<LinuxFsOps>;
template class pool_core<MemoryFsOps>;
}  // namespace detail
template class Volume<LinuxFsOps>;
template class Volume<MemoryFsOps>;
template class Pool<LinuxFsOps>;
template class Pool<MemoryFsOps>;
}  // namespace file_reflink
