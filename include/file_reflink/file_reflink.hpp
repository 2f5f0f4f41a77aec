// SPDX-License-Identifier: BSL-1.0
//! \file
//! The umbrella header: everything a user needs. `Pool<LinuxFsOps>` in
//! production, `Pool<MemoryFsOps>` in tests.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/fs_ops/linux.hpp>
#include <file_reflink/fs_ops/memory.hpp>
#include <file_reflink/layout.hpp>
#include <file_reflink/pool.hpp>
#include <file_reflink/version.hpp>
#include <file_reflink/volume.hpp>
