// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): resize and discard:
//! the running image changed in place, the committed one replaced (in place
//! only with snapshots disabled). Included by
//! `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::resize(std::uint64_t new_size) -> result<void> {
  if (!cfg().rw) return failure(errc::read_only, "");
  FILE_REFLINK_TRY(auto current, current_size());
  if (new_size < current)
    return failure(errc::shrink_refused, bytes_text(new_size) + " is smaller than the image's " +
                                             bytes_text(current));
  FILE_REFLINK_TRY(auto dirty, stat_dirty(dirty_use::write));
  if (dirty) {
    if (new_size != dirty->size) {
      FILE_REFLINK_TRYV(core.resize_file(h, p().dirty(), new_size));
      // Until the loop devices saw the new size, no VM wrote beyond the
      // old one: a failure gives the image its old size back.
      undo_stack undo;
      undo.push([&] { core.restore_size(h, p().dirty(), dirty->size); });
      // The VM will write beyond the old end: its size must be durable.
      if (cfg().save_on_stop) FILE_REFLINK_TRYV(core.sync_file(h, p().dirty()));
      FILE_REFLINK_TRYV(core.notify_resize(h, p().dirty()));
      undo.commit();
    }
  } else if (kind() == volume_kind::origin) {
    FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
    if (clean && clean->size != new_size) {
      if (snapshots_disabled() && clean->nlink == 1) {
        // No clone is ever made: grow the one image in place (only
        // when no other name shares it: that name would grow too).
        FILE_REFLINK_TRYV(drop_precache());
        FILE_REFLINK_TRYV(core.resize_file(h, p().clean(), new_size));
        undo_stack undo;
        undo.push([&] { core.restore_size(h, p().clean(), clean->size); });
        FILE_REFLINK_TRYV(core.sync_file(h, p().clean()));
        undo.commit();
      } else {
        // The clean inode may be a revision's or a snapshot's too: never
        // change it in place; publish a resized clone instead.
        // (Snapshots disabled too, where another name shares it.)
        path tmp = layout::temp_name(p().clean());
        copy_options o = copy_opts();
        o.size = new_size;
        FILE_REFLINK_TRYV(core.copy_file(h, p().clean(), h, tmp, o));
        FILE_REFLINK_TRYV(publish(tmp));
      }
    }
  }
  if (vol.size != new_size) {
    volume_config next = cfg();
    next.size = new_size;
    FILE_REFLINK_TRYV(core.persist_config(h, next));
    vol.size = new_size;
  }
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::shrink(std::uint64_t new_size) -> result<void> {
  if (!cfg().rw) return failure(errc::read_only, "");
  if (vol.importing) return failure(errc::import_in_progress, "");
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (dirty) return failure(errc::volume_dirty, "a running volume cannot shrink: stop it first");
  FILE_REFLINK_TRY(auto current, current_size());
  if (new_size > current)
    return failure(errc::out_of_range, bytes_text(new_size) + " is larger than the image's " + bytes_text(current) +
                                           ": resize grows it");
  if (new_size < current && cfg().save_on_stop) {
    FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
    if (clean) {
      // The committed image is never cut in place: a clone of it, cut to
      // the new size, is committed, and the old image stays a revision.
      path tmp = layout::temp_name(p().clean());
      copy_options o = copy_opts();
      o.size = new_size;
      FILE_REFLINK_TRYV(core.copy_file(h, p().clean(), h, tmp, o));
      undo_stack undo;
      undo.push([&] { (void)core.remove_file(h, tmp); });
      FILE_REFLINK_TRYV(commit(tmp, superseded::keep));
      undo.commit();
    }
  }
  if (vol.size != new_size) {
    volume_config next = cfg();
    next.size = new_size;
    FILE_REFLINK_TRYV(core.persist_config(h, next));
    vol.size = new_size;
  }
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::discard(std::uint64_t offset, std::uint64_t length) -> result<void> {
  if (!cfg().rw) return failure(errc::read_only, "");
  FILE_REFLINK_TRY(auto current, current_size());
  if (offset > current || length > current - offset)
    return failure(errc::out_of_range, "range " + std::to_string(offset) + "+" + std::to_string(length) +
                                           " is beyond the image's " + bytes_text(current));
  if (length == 0) return success();
  FILE_REFLINK_TRY(auto dirty, stat_dirty(dirty_use::write));
  if (dirty) return punch(p().dirty(), offset, length);
  if (!cfg().save_on_stop) return failure(errc::volume_not_running, "a stopped volume without save_on_stop has no image");
  FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
  if (!clean) return failure(errc::image_not_found, "missing image file " + core.abs(h, p().clean()));
  if (snapshots_disabled() && clean->nlink == 1) {
    // The committed image itself, in place: flushed as sparsify and
    // resize flush it, or a crash after success brings the data back.
    FILE_REFLINK_TRYV(drop_precache());
    FILE_REFLINK_TRYV(punch(p().clean(), offset, length));
    return core.sync_file(h, p().clean());
  }
  path tmp = layout::temp_name(p().clean());
  FILE_REFLINK_TRYV(core.copy_file(h, p().clean(), h, tmp, copy_opts()));
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, tmp); });
  FILE_REFLINK_TRYV(punch(tmp, offset, length));
  // Snapshots disabled (the image has another name): the punched copy
  // replaces it, as the in-place punch would, without a revision.
  FILE_REFLINK_TRYV(commit(tmp, snapshots_disabled() ? superseded::drop : superseded::rotate));
  undo.commit();
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::punch(const path& rel, std::uint64_t offset, std::uint64_t length)
    -> result<void> {
  return core.punch_hole(h, rel, offset, length);
}

}  // namespace detail
}  // namespace file_reflink
