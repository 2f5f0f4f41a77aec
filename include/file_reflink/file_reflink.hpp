// SPDX-License-Identifier: BSL-1.0
//! \file
//! The umbrella header: everything production code needs, `Pool<LinuxFsOps>`
//! and its volumes. Tests add `<file_reflink/testing.hpp>`: `MemoryFsOps`,
//! the in-memory filesystem, and the decorators that count calls or inject
//! faults over any policy.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/fs_ops/linux.hpp>
#include <file_reflink/layout.hpp>
#include <file_reflink/pool.hpp>
#include <file_reflink/version.hpp>
#include <file_reflink/volume.hpp>
