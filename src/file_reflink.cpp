// SPDX-License-Identifier: BSL-1.0
// The library of file_reflink::compiled (FILE_REFLINK_BUILD_COMPILED): the
// instantiations for LinuxFsOps and MemoryFsOps, compiled once.
#include <file_reflink/impl/src.hpp>
