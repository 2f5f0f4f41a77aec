// SPDX-License-Identifier: BSL-1.0
//! \file
//! Separate compilation (FILE_REFLINK_SEPARATE_COMPILATION): the explicit
//! instantiation declarations of the class templates for the two shipped
//! policies, whose definitions `<file_reflink/impl/src.hpp>` provides in one
//! source file of the program. In that mode the headers declare the member
//! functions of `Pool` and `Volume` without defining them, and these
//! declarations say that nothing else is to be instantiated either. The
//! pool's core (`detail::pool_core`) is only declared there:
//! `pool.hpp` and `volume.hpp` name it only through pointers.
//!
//! Included at the end of `pool.hpp`, `fs_ops/linux.hpp` and
//! `fs_ops/memory.hpp`, each of which defines its FILE_REFLINK_DETAIL_HAVE_*
//! marker first: the declarations for a policy come once both its header and
//! `pool.hpp` are in, whichever came last. No include guard, on purpose.
#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#error "file_reflink/detail/extern_templates.hpp is for FILE_REFLINK_SEPARATE_COMPILATION only"
#endif

#if defined(FILE_REFLINK_DETAIL_HAVE_POOL) && defined(FILE_REFLINK_DETAIL_HAVE_LINUX_FS_OPS) && \
    !defined(FILE_REFLINK_DETAIL_EXTERN_LINUX_FS_OPS)
#define FILE_REFLINK_DETAIL_EXTERN_LINUX_FS_OPS
namespace file_reflink {
extern template class Volume<LinuxFsOps>;
extern template class Pool<LinuxFsOps>;
}  // namespace file_reflink
#endif

#if defined(FILE_REFLINK_DETAIL_HAVE_POOL) && defined(FILE_REFLINK_DETAIL_HAVE_MEMORY_FS_OPS) && \
    !defined(FILE_REFLINK_DETAIL_EXTERN_MEMORY_FS_OPS)
#define FILE_REFLINK_DETAIL_EXTERN_MEMORY_FS_OPS
namespace file_reflink {
extern template class Volume<MemoryFsOps>;
extern template class Pool<MemoryFsOps>;
}  // namespace file_reflink
#endif
