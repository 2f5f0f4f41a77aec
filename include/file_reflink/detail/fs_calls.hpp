// SPDX-License-Identifier: BSL-1.0
//! \file
//! `fs_calls<FsOps>`: the one layer through which the pool and its volumes
//! call their filesystem policy. Each primitive is one policy call (or a
//! few), logged the way an operator follows the driver in a journal, and
//! retires the space cache where it can change which extents are shared.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/detail/copy.hpp>
#include <file_reflink/detail/no_throw.hpp>
#include <file_reflink/detail/space_cache.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/layout.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {

template <class FsOps>
class fs_calls {
public:
  using handle = typename FsOps::dir_handle;

  fs_calls(pool_config c, FsOps o) : cfg(std::move(c)), ops(std::move(o)) {}

  const pool_config cfg;
  FsOps ops;
  //! What extent walks found; the primitives below that can change sharing
  //! retire it (after their call, so a walk that raced them is not kept).
  space_cache spaces;

  // ---- logging ------------------------------------------------------------

  //! Callers test `cfg.log` first where the message costs something to
  //! build: without a callback an operation builds no message at all.
  void log(log_level level, const std::string& message) const {
    if (cfg.log) {
      try {
        cfg.log(level, message);
      } catch (...) {
        // A logging callback must not break a storage operation.
      }
    }
  }

  //! The absolute path of `rel`, quoted, for a message (`rel` itself if the
  //! policy cannot say).
  std::string abs(const handle& h, const path& rel) const {
    auto p = ops.path_of(h, rel);
    return q(p ? p.value() : rel);
  }

  //! The absolute path of `rel`, to hand to a caller.
  result<path> absolute(const handle& h, const path& rel) const { return ops.path_of(h, rel); }

  //! The fallback is announced once: when setup's probe or the first copy
  //! finds the filesystem without reflinks (later copies do not try again).
  void warn_no_reflinks(const handle& h) const {
    if (cfg.log) log(log_level::warning, "The filesystem of " + abs(h, path()) +
                                " does not support reflinks: volume copies are full copies from now on (slow, and "
                                "they take space)");
  }

  // ---- primitives: one policy call (or a few), logged -----------------------

  //! Stat, mapping "not there" to an empty optional (also where a directory
  //! on the way is a file: ENOTDIR).
  result<std::optional<file_stat>> stat_if(const handle& h, const path& rel) {
    auto st = ops.stat(h, rel);
    if (!st) {
      if (st.error() == std::errc::no_such_file_or_directory || st.error() == std::errc::not_a_directory)
        return std::optional<file_stat>();
      return failure(st.error());
    }
    return std::optional<file_stat>(st.value());
  }

  //! Stat an image that must be a regular file if it exists: a symlink or a
  //! directory planted under an image's name is refused, never followed.
  result<std::optional<file_stat>> stat_image(const handle& h, const path& rel) {
    FILE_REFLINK_TRY(auto st, stat_if(h, rel));
    if (st && st->type != file_type::regular)
      return failure(errc::unexpected_file_type,
                     abs(h, rel) + " is a " + (st->type == file_type::symlink ? "symlink" : "non-regular file") +
                         ", not an image");
    return st;
  }

  //! Remove a file; returns whether it was there.
  result<bool> remove_file(const handle& h, const path& rel) {
    auto r = ops.remove(h, rel);
    spaces.bump();
    if (!r) {
      if (r.error() == std::errc::no_such_file_or_directory) return false;
      return failure(r.error());
    }
    if (cfg.log) log(log_level::info, "Removed file: " + abs(h, rel));
    return true;
  }

  result<void> rename_file(const handle& h, const path& from, const path& to) {
    auto r = ops.rename(h, from, to);
    spaces.bump();
    FILE_REFLINK_TRYV(r);
    if (cfg.log) log(log_level::info, "Renamed file: " + abs(h, from) + " -> " + abs(h, to));
    return success();
  }

  result<void> link_file(const handle& h, const path& from, const path& to) {
    auto r = ops.link(h, from, to);
    spaces.bump();
    FILE_REFLINK_TRYV(r);
    if (cfg.log) log(log_level::info, "Hardlinked file: " + abs(h, from) + " -> " + abs(h, to));
    return success();
  }

  result<void> create_sparse(const handle& h, const path& rel, std::uint64_t size, create_mode mode) {
    auto r = ops.create(h, rel, size, mode);
    spaces.bump();
    FILE_REFLINK_TRYV(r);
    if (cfg.log) log(log_level::info, "Created sparse file: " + abs(h, rel) + " (" + bytes_text(size) + ")");
    return success();
  }

  //! Copy (clone first) into a new file; logs the path taken, and warns once
  //! when this copy found the filesystem without reflinks.
  result<copy_result> copy_file(const handle& src_h, const path& src, const handle& dst_h, const path& dst,
                                copy_options opts) {
    auto copied = detail::copy_file(ops, src_h, src, dst_h, dst, opts);
    spaces.bump();
    FILE_REFLINK_TRY(auto r, std::move(copied));
    if (r.reflink_unsupported_noticed) warn_no_reflinks(dst_h);
    if (!cfg.log) return r;
    if (r.method == copy_method::clone)
      log(log_level::info, "Cloned file: " + abs(src_h, src) + " -> " + abs(dst_h, dst));
    else
      log(log_level::info, std::string("Copied file (") + to_string(r.method) + ", " + bytes_text(r.bytes) +
                               "): " + abs(src_h, src) + " -> " + abs(dst_h, dst));
    return r;
  }

  //! Flush a file's data: new data is durable before its name is.
  result<void> sync_file(const handle& h, const path& rel) {
    FILE_REFLINK_TRYV(ops.fsync(h, rel));
    if (cfg.log) log(log_level::debug, "Synced file: " + abs(h, rel));
    return success();
  }

  //! Flush a directory's entries: a rename is not durable until its
  //! directory is.
  result<void> sync_dir(const handle& h, const path& rel) {
    FILE_REFLINK_TRYV(ops.fsync(h, rel));
    if (cfg.log) log(log_level::debug, "Synced directory: " + abs(h, rel));
    return success();
  }

  //! Make sure `rel` and its parents exist; each new directory is fsynced
  //! into its parent, so files made durable inside it stay reachable.
  result<void> ensure_dir(const handle& h, const path& rel) {
    if (rel.empty()) return success();
    FILE_REFLINK_TRY(auto st, stat_if(h, rel));
    if (st) {
      if (st->type != file_type::directory)
        return failure(errc::unexpected_file_type, abs(h, rel) + " is not a directory");
      return success();
    }
    FILE_REFLINK_TRYV(ensure_dir(h, rel.parent_path()));
    auto r = ops.mkdir(h, rel);
    if (!r) {
      if (r.error() != std::errc::file_exists) return failure(r.error());
      return ensure_dir(h, rel);  // made concurrently: check what it is
    }
    if (cfg.log) log(log_level::info, "Created directory: " + abs(h, rel));
    return sync_dir(h, rel.parent_path());
  }

  //! Remove a directory if it is empty; returns whether it was removed.
  result<bool> remove_empty_dir(const handle& h, const path& rel) {
    if (rel.empty()) return false;
    auto r = ops.rmdir(h, rel);
    if (!r) {
      if (r.error() == std::errc::directory_not_empty || r.error() == std::errc::no_such_file_or_directory ||
          r.error() == std::errc::file_exists)
        return false;
      return failure(r.error());
    }
    if (cfg.log) log(log_level::info, "Removed empty directory: " + abs(h, rel));
    FILE_REFLINK_TRYV(sync_dir(h, rel.parent_path()));
    return true;
  }

  //! Names in a directory of the pool; a missing directory has none.
  result<std::vector<dir_entry>> list_if(const handle& h, const path& rel) {
    auto r = ops.list(h, rel);
    if (!r) {
      if (r.error() == std::errc::no_such_file_or_directory) return std::vector<dir_entry>();
      return failure(r.error());
    }
    return std::move(r).value();
  }

  //! Space of one file from its extent map, walked once per version of the
  //! file (see `space_cache`): `st` is the stat the caller just took.
  result<space_usage> space_of(const handle& h, const path& rel, const file_stat& st) {
    const std::uint64_t generation = spaces.generation();
    if (auto hit = spaces.find(st, generation)) return *hit;
    FILE_REFLINK_TRY(auto ext, ops.extents(h, rel));
    space_usage s;
    s.allocated = st.allocated;
    for (const extent& e : ext) (e.shared ? s.shared : s.exclusive) += e.length;
    spaces.store(st, generation, s);
    return s;
  }

  //! Stat a file that must exist.
  result<file_stat> stat_file(const handle& h, const path& rel) { return ops.stat(h, rel); }

  //! The extents of a file's data, for a walk over them.
  result<std::vector<extent>> extents_of(const handle& h, const path& rel) { return ops.extents(h, rel); }

  //! The extents of a file's data where only their storage addresses
  //! matter (no shared flag): the policy's `storage_extents` where it has
  //! one, which may be faster, else `extents`.
  result<std::vector<extent>> storage_extents_of(const handle& h, const path& rel) {
    if constexpr (has_storage_extents_v<FsOps>) {
      auto r = ops.storage_extents(h, rel);
      if (r || r.error() != std::errc::operation_not_supported) return r;
    }
    return ops.extents(h, rel);
  }

  //! Read up to `len` bytes at `offset`.
  result<std::size_t> read_at(const handle& h, const path& rel, std::uint64_t offset, void* buf, std::size_t len) {
    return ops.read(h, rel, offset, buf, len);
  }

  //! Write `len` bytes at `offset` (a received stream's data, into a file
  //! that no name publishes yet: unlogged, the commit that follows is).
  result<void> write_at(const handle& h, const path& rel, std::uint64_t offset, const void* data, std::size_t len) {
    return ops.write(h, rel, offset, data, len);
  }

  //! The data segments of a file below `limit` (SEEK_DATA/SEEK_HOLE).
  result<std::vector<segment>> data_segments_of(const handle& h, const path& rel, std::uint64_t limit) {
    return ops.data_segments(h, rel, limit);
  }

  //! Give a file a new size. The cache needs no bump: the file's own key
  //! (its ctime and size) changes.
  result<void> resize_file(const handle& h, const path& rel, std::uint64_t size) {
    FILE_REFLINK_TRYV(ops.resize(h, rel, size));
    if (cfg.log) log(log_level::info, "Resized file: " + abs(h, rel) + " to " + bytes_text(size));
    return success();
  }

  //! Give a file its old size back, after a step that followed a resize
  //! failed (an undo: not logged, and its own failure is ignored).
  void restore_size(const handle& h, const path& rel, std::uint64_t size) noexcept { (void)ops.resize(h, rel, size); }

  //! Tell the loop devices backed by `rel` its new size; returns how many.
  result<unsigned> notify_resize(const handle& h, const path& rel) {
    FILE_REFLINK_TRY(unsigned told, detail::notify_resize(ops, h, rel));  // 0 where the policy has none
    if (told && cfg.log)
      log(log_level::info, "Told " + std::to_string(told) + " loop device(s) the new size of " + abs(h, rel));
    return told;
  }

  //! Set a file's mtime (a precache carries its clean image's).
  result<void> set_mtime(const handle& h, const path& rel, file_time mtime) { return ops.set_mtime(h, rel, mtime); }

  //! Deallocate `length` bytes at `offset` (they read as zeros). `logged`
  //! off for the many holes of one sparsify, which logs their sum.
  result<void> punch_hole(const handle& h, const path& rel, std::uint64_t offset, std::uint64_t length,
                          bool logged = true) {
    FILE_REFLINK_TRYV(ops.punch_hole(h, rel, offset, length));
    if (logged && cfg.log)
      log(log_level::info, "Punched hole: " + abs(h, rel) + " at " + std::to_string(offset) + "+" +
                               std::to_string(length));
    return success();
  }

  // ---- the pool directory itself, and small files of the pool's own ------------

  //! Open (and with `create`, make) the pool directory at `abs_path`.
  auto open_dir(const path& abs_path, bool create) { return ops.open_dir(abs_path, create); }

  //! Remove the (empty) pool directory; `logged` off for a setup that takes
  //! back the directory it made.
  result<void> remove_dir(const path& abs_path, bool logged = true) {
    FILE_REFLINK_TRYV(ops.remove_dir(abs_path));
    if (logged && cfg.log) log(log_level::info, "Removed empty directory: " + q(abs_path));
    return success();
  }

  //! Whether a clone works in the pool directory.
  result<bool> probe_reflink(const handle& h) { return ops.probe_reflink(h); }

  //! The filesystem's size and free space.
  result<fs_space> statvfs(const handle& h) { return ops.statvfs(h); }

  //! A new file `rel` holding `text`, its data flushed (not its name: the
  //! caller renames it into place). Unlogged: the rename that follows is
  //! what counts. On failure nothing is left behind.
  result<void> write_new_file(const handle& h, const path& rel, std::string_view text) {
    FILE_REFLINK_TRYV(ops.create(h, rel, 0, create_mode::exclusive));
    auto r = [&]() -> result<void> {
      FILE_REFLINK_TRYV(ops.write(h, rel, 0, text.data(), text.size()));
      return ops.fsync(h, rel);
    }();
    if (!r) (void)ops.remove(h, rel);
    return r;
  }

  //! Remove a temporary that never got its name, unlogged (an undo).
  void remove_quietly(const handle& h, const path& rel) noexcept { (void)ops.remove(h, rel); }
};

}  // namespace detail
}  // namespace file_reflink
