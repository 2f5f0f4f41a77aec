// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): start, per kind of
//! volume (snapshots disabled, snap_on_start, origin, volatile), and stop.
//! Included by `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::start() -> result<void> {
  FILE_REFLINK_TRYV(remove_incomplete());
  if (cfg().save_on_stop) {
    FILE_REFLINK_TRY(auto dirty, stat_dirty(dirty_use::write));
    if (dirty) return success();
  }
  if (snapshots_disabled()) return start_renaming();
  if (cfg().snap_on_start) return start_from_source();
  if (cfg().save_on_stop) return start_origin();
  return start_volatile();
}

template <class FsOps>
auto volume_step<FsOps>::source_clean() -> result<file_stat> {
  layout::volume_paths sp = layout::paths_of(*cfg().source);
  FILE_REFLINK_TRY(auto st, core.stat_image(h, sp.clean()));
  if (st) return *st;
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, sp.dirty()));
  if (dirty)
    return failure(errc::source_not_found,
                   "source volume " + q(*cfg().source) +
                       " is running with snapshots disabled: its only image " + core.abs(h, sp.dirty()) +
                       " is attached to its VM");
  return failure(errc::source_not_found, "source volume " + q(*cfg().source) + ": missing image file " +
                                             core.abs(h, sp.clean()));
}

template <class FsOps>
auto volume_step<FsOps>::start_renaming() -> result<void> {
  FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
  if (!clean) return failure(errc::image_not_found, "missing image file " + core.abs(h, p().clean()));
  std::vector<path> gone;
  FILE_REFLINK_TRY(auto pre, core.stat_if(h, p().precache()));
  if (pre) gone.push_back(p().precache());
  FILE_REFLINK_TRY(auto revs, list_revisions());
  for (auto& [key, e] : revs)
    if (e.has_file && e.pins.empty()) gone.push_back(p().revision(e.n, e.stamp));
  const bool shared = clean->nlink > 1;
  // The committed image always keeps a name of its own: with a shared
  // image, the copy is the running image before the clean name goes (a
  // crash between the two leaves a running volume with a stale clean
  // image, which its stop replaces).
  // Undone newest first: names come back before the copy goes, so a
  // committed image is never left with only a temporary name, whatever part
  // of this fails too.
  path copy;  // the copy, until it is the running image
  std::vector<path> moved;
  undo_stack undo;
  if (shared) {
    copy = layout::temp_name(p().dirty());
    FILE_REFLINK_TRYV(core.copy_file(h, p().clean(), h, copy, copy_opts()));
    undo.push([&] { (void)core.remove_file(h, copy); });
    FILE_REFLINK_TRYV(core.sync_file(h, copy));
    FILE_REFLINK_TRYV(core.rename_file(h, copy, p().dirty()));
    undo.pop();  // the running image is the copy
    undo.push([&] { (void)core.remove_file(h, p().dirty()); });
    gone.push_back(p().clean());
  }
  for (const path& from : gone) {
    path to = layout::temp_name(from);
    FILE_REFLINK_TRYV(core.rename_file(h, from, to));
    undo.push([this, from, to] { (void)core.rename_file(h, to, from); });
    moved.push_back(to);
  }
  if (!shared) {
    FILE_REFLINK_TRYV(core.rename_file(h, p().clean(), p().dirty()));
    undo.push([&] { (void)core.rename_file(h, p().dirty(), p().clean()); });
  }
  FILE_REFLINK_TRYV(core.sync_dir(h, p().dir));
  undo.commit();
  for (auto& m : moved) drop_temporary(m);
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::start_from_source() -> result<void> {
  FILE_REFLINK_TRY(auto src_st, source_clean());
  layout::volume_paths sp = layout::paths_of(*cfg().source);
  FILE_REFLINK_TRYV(core.ensure_dir(h, p().dir));
  // An old clean name (an origin-snapshot's committed image, or a link a
  // crash left) keeps a second name until the start succeeded, and is
  // replaced by one rename: the clean name is never missing, even after a
  // crash that kept only some of these steps (it used to be renamed aside,
  // and such a crash lost an origin-snapshot's committed image).
  FILE_REFLINK_TRY(auto old_clean, core.stat_image(h, p().clean()));
  const bool current = old_clean && old_clean->ino == src_st.ino && old_clean->dev == src_st.dev;
  path saved, link, tmp;
  undo_stack undo;
  if (!current) {
    if (old_clean) {
      saved = layout::temp_name(p().clean());
      FILE_REFLINK_TRYV(core.link_file(h, p().clean(), saved));
      undo.push([&] { (void)core.remove_file(h, saved); });
    }
    link = layout::temp_name(p().clean());
    FILE_REFLINK_TRYV(core.link_file(h, sp.clean(), link));
    undo.pop();
    undo.push([&] {
      if (!saved.empty()) (void)core.remove_file(h, saved);
      (void)core.remove_file(h, link);
    });
    FILE_REFLINK_TRYV(core.rename_file(h, link, p().clean()));
    undo.pop();  // the clean name is replaced: the old image comes back under it
    undo.push([&] {
      if (!saved.empty()) (void)core.rename_file(h, saved, p().clean());
      else (void)core.remove_file(h, p().clean());
    });
  }
  if (cfg().save_on_stop) {
    // origin-snapshot: the VM's data is kept at stop, so the image is made
    // durable before the VM runs.
    FILE_REFLINK_TRYV(clone_durably(p().clean(), p().dirty()));
  } else {
    // snapshot: discarded at stop and after a crash; nothing to flush. The
    // clone replaces an old dirty image (a crashed VM's) by a rename, so a
    // failure leaves that as it was.
    tmp = layout::temp_name(p().dirty());
    FILE_REFLINK_TRYV(core.copy_file(h, p().clean(), h, tmp, copy_opts()));
    undo.push([&] { (void)core.remove_file(h, tmp); });
    FILE_REFLINK_TRYV(core.rename_file(h, tmp, p().dirty()));
  }
  undo.commit();
  if (!saved.empty()) drop_temporary(saved);
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::clone_durably(const path& src, const path& dst) -> result<void> {
  path tmp = layout::temp_name(dst);
  FILE_REFLINK_TRYV(core.copy_file(h, src, h, tmp, copy_opts()));
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, tmp); });
  FILE_REFLINK_TRYV(core.sync_file(h, tmp));
  FILE_REFLINK_TRYV(core.rename_file(h, tmp, dst));
  undo.pop();
  undo.push([&] { (void)core.remove_file(h, dst); });
  FILE_REFLINK_TRYV(core.sync_dir(h, p().dir));
  undo.commit();
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::start_origin() -> result<void> {
  FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
  if (!clean) return failure(errc::image_not_found, "missing image file " + core.abs(h, p().clean()));
  auto pre = core.stat_if(h, p().precache());
  bool have_precache = pre && pre.value();
  if (have_precache) {
    const file_stat& ps = *pre.value();
    // Only a precache with one name: a hard link to another file (another
    // volume's image, a file outside the pool) with a forged mtime would
    // make the VM write into that file.
    if (ps.type == file_type::regular && ps.nlink == 1 && ps.mtime == clean->mtime && ps.size == clean->size) {
      // The precache is a clone of this very clean image: one rename, made
      // durable before the VM runs (its durable writes need a durable name).
      // Its data was flushed when it was made (refresh_precache), before it
      // got its name: a durable dirty name never points at data that did
      // not reach the disk, so the start's only flush is the directory's.
      FILE_REFLINK_TRYV(core.rename_file(h, p().precache(), p().dirty()));
      undo_stack undo;
      undo.push([&] { (void)core.rename_file(h, p().dirty(), p().precache()); });
      FILE_REFLINK_TRYV(core.sync_dir(h, p().dir));
      undo.commit();
      return success();
    }
  }
  FILE_REFLINK_TRYV(clone_durably(p().clean(), p().dirty()));
  if (have_precache) {
    // Removed only now that start succeeded, so a failed start changes nothing.
    if (core.remove_file(h, p().precache()))
      core.log(log_level::warning, "Removed stale file: " + core.abs(h, p().precache()));
  }
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::start_volatile() -> result<void> {
  FILE_REFLINK_TRYV(core.ensure_dir(h, p().dir));
  path tmp = layout::temp_name(p().dirty());
  FILE_REFLINK_TRYV(core.create_sparse(h, tmp, vol.size, create_mode::exclusive));
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, tmp); });
  FILE_REFLINK_TRYV(core.rename_file(h, tmp, p().dirty()));
  undo.commit();
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::stop() -> result<void> {
  if (cfg().save_on_stop) {
    FILE_REFLINK_TRY(auto dirty, stat_dirty(dirty_use::take));
    if (!dirty) return success();  // not running
    if (snapshots_disabled()) {
      // The VM's writes are durable before the image is called clean.
      FILE_REFLINK_TRYV(core.sync_file(h, p().dirty()));
      FILE_REFLINK_TRYV(core.rename_file(h, p().dirty(), p().clean()));
      undo_stack undo;
      undo.push([&] { (void)core.rename_file(h, p().clean(), p().dirty()); });
      FILE_REFLINK_TRYV(core.sync_dir(h, p().dir));
      undo.commit();
      return success();
    }
    return commit(p().dirty(), superseded::rotate);
  }
  // Discarded images: nothing here needs to be durable; after a crash the
  // next start replaces whatever is left.
  if (kind() == volume_kind::volatile_) {
    FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
    if (dirty) vol.size = dirty->size;  // keep a size changed while running
  }
  if (!cfg().snap_on_start) {
    FILE_REFLINK_TRYV(core.remove_file(h, p().dirty()));
    return success();
  }
  // Two names go: both are renamed aside first, so a failure leaves
  // both (the pair is what is_outdated and the next start read).
  std::vector<path> moved;
  undo_stack undo;
  for (const path& from : {p().dirty(), p().clean()}) {
    path to = layout::temp_name(from);
    auto r = core.rename_file(h, from, to);
    if (!r && r.error() == std::errc::no_such_file_or_directory) continue;
    if (!r) return failure(r.error());
    undo.push([this, from, to] { (void)core.rename_file(h, to, from); });
    moved.push_back(to);
  }
  undo.commit();
  for (auto& m : moved) drop_temporary(m);
  return success();
}

}  // namespace detail
}  // namespace file_reflink
