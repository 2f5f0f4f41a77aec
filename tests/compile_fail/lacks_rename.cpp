// SPDX-License-Identifier: BSL-1.0
// Must NOT compile: a Pool over a policy that provides every operation but
// rename. The check that Pool and Volume make must say so in words ("lacks
// rename: result<void> rename(const dir_handle& dir, const path& from, ...)"),
// which the ctest entry looks for in the compiler's output.
// Built with FILE_REFLINK_WITH_RENAME it must compile: the control that
// proves nothing else is wrong with this policy or with the way it is used
// (it has none of the optional operations, copy_range and notify_resize).
#include <file_reflink/pool.hpp>

namespace {

using namespace file_reflink;

struct PolicyWithoutRename {
  struct dir_handle {};
  struct lock_file {};
  result<opened_dir<dir_handle>> open_dir(const path&, bool) noexcept;
  result<file_stat> stat_path(const path&) noexcept;
  result<void> remove_dir(const path&) noexcept;
  result<path> path_of(const dir_handle&, const path&) noexcept;
  result<void> mkdir(const dir_handle&, const path&) noexcept;
  result<void> rmdir(const dir_handle&, const path&) noexcept;
  result<void> create(const dir_handle&, const path&, std::uint64_t, create_mode) noexcept;
  result<std::size_t> read(const dir_handle&, const path&, std::uint64_t, void*, std::size_t) noexcept;
  result<void> write(const dir_handle&, const path&, std::uint64_t, const void*, std::size_t) noexcept;
  result<void> resize(const dir_handle&, const path&, std::uint64_t) noexcept;
  result<void> punch_hole(const dir_handle&, const path&, std::uint64_t, std::uint64_t) noexcept;
#ifdef FILE_REFLINK_WITH_RENAME
  result<void> rename(const dir_handle&, const path&, const path&) noexcept;
#endif
  result<void> link(const dir_handle&, const path&, const path&) noexcept;
  result<void> remove(const dir_handle&, const path&) noexcept;
  result<void> fsync(const dir_handle&, const path&) noexcept;
  result<file_stat> stat(const dir_handle&, const path&) noexcept;
  result<void> set_mtime(const dir_handle&, const path&, file_time) noexcept;
  result<std::vector<dir_entry>> list(const dir_handle&, const path&) noexcept;
  result<fs_space> statvfs(const dir_handle&) noexcept;
  result<std::vector<extent>> extents(const dir_handle&, const path&) noexcept;
  result<std::vector<segment>> data_segments(const dir_handle&, const path&, std::uint64_t) noexcept;
  result<void> clone(const dir_handle&, const path&, const dir_handle&, const path&) noexcept;
  result<bool> probe_reflink(const dir_handle&) noexcept;
  result<lock_file> open_lock(const dir_handle&, const path&) noexcept;
  result<bool> lock(const lock_file&, std::uint64_t, lock_mode, bool) noexcept;
  result<void> unlock(const lock_file&, std::uint64_t) noexcept;
};

}  // namespace

// The class Pool<PolicyWithoutRename>, as a program that declares such a
// pool instantiates it.
static_assert(sizeof(file_reflink::Pool<PolicyWithoutRename>) > 0);

#ifdef FILE_REFLINK_WITH_RENAME
static_assert(file_reflink::is_fs_ops_v<PolicyWithoutRename>, "the control policy must be complete");
static_assert(!file_reflink::has_copy_range_v<PolicyWithoutRename> &&
              !file_reflink::has_notify_resize_v<PolicyWithoutRename>);
#else
static_assert(!file_reflink::has_rename_v<PolicyWithoutRename>);
#endif

int main() { return 0; }
