// SPDX-License-Identifier: BSL-1.0
//! \file
//! `volume_step<FsOps>`: the context every step of a volume operation runs
//! in, made by `Volume`'s `run` once it holds the volume: the pool's core
//! (its logged primitives over the policy), the volume's state, and the
//! open pool directory. `Volume`'s public member functions are facades over
//! these steps; their bodies live in `impl/volume/*.ipp`, one file per
//! concern (start, commit, revisions, resize, sparsify, scan, space,
//! import and export, lifecycle). The durability rules they keep are
//! stated at the top of `<file_reflink/volume.hpp>`.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/detail/pool_core.hpp>
#include <file_reflink/detail/revision_list.hpp>
#include <file_reflink/detail/undo_stack.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/layout.hpp>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {

template <class FsOps>
class volume_step {
public:
  using handle = typename FsOps::dir_handle;
  using core_type = pool_core<FsOps>;

  //! The context: valid for one operation, which holds the volume's lock.
  volume_step(core_type& c, volume_state& v, const handle& dir) noexcept : core(c), vol(v), h(dir) {}

  core_type& core;    //!< the pool: every policy call goes through its primitives
  volume_state& vol;  //!< the volume operated on
  const handle& h;    //!< the open pool directory

  // ---- the volume, as the operation sees it ----------------------------------

  const std::string& vid() const noexcept { return vol.vid; }
  const std::string& name() const noexcept { return vol.name; }
  //! The configuration (the operation holds the volume's lock).
  const volume_config& cfg() const noexcept { return vol.held_config(); }
  const layout::volume_paths& p() const noexcept { return vol.paths; }
  volume_kind kind() const noexcept { return vol.config()->kind(); }
  //! revisions_to_keep == -1 on an origin volume: no clone is ever made.
  bool snapshots_disabled() const noexcept {
    auto c = vol.config();
    return c->revisions_to_keep.value_or(0) == -1 && c->kind() == volume_kind::origin;
  }
  std::uint64_t keep() const noexcept {
    int k = cfg().revisions_to_keep.value_or(0);
    return k > 0 ? static_cast<std::uint64_t>(k) : 0;
  }
  //! The options of a copy: the pool's progress callback, told the vid.
  copy_options copy_opts() const {
    copy_options o;
    if (core.cfg.progress) {
      auto cb = core.cfg.progress;
      std::string v = vid();
      o.progress = [cb, v](std::uint64_t done, std::uint64_t total) { return cb(v, done, total); };
    }
    return o;
  }

  // ---- the public operations' bodies (documented on `Volume`) -----------------

  result<void> create();                                             // lifecycle.ipp
  result<void> verify();
  result<void> remove(bool force);
  result<void> update(const volume_update& u);
  result<void> start();                                              // start.ipp
  result<void> stop();
  result<volume_status> state();                                     // space.ipp
  result<bool> is_running();
  result<bool> is_dirty();
  result<bool> is_outdated();
  result<std::uint64_t> size();
  result<std::uint64_t> usage();
  result<volume_space> space();
  result<block_device_info> block_device();
  result<revision_map> revisions();                                  // revisions.ipp
  result<void> keep_revision(std::uint64_t n, std::string_view label);
  result<void> unkeep_revision(std::string_view label);
  result<void> resize(std::uint64_t new_size);                       // resize.ipp
  result<void> shrink(std::uint64_t new_size);
  result<void> discard(std::uint64_t offset, std::uint64_t length);
  result<std::uint64_t> sparsify();                                  // sparsify.ipp
  result<path> export_();                                            // import_export.ipp
  result<void> export_end(const path& exported);
  result<path> import_data(std::uint64_t size);
  result<void> import_data_end(bool success_);
  //! Copy `src` (of `src_core`, held shared by the caller) in and commit it.
  result<copy_method> import_volume(core_type& src_core, const volume_state& src, progress_callback progress);
  result<copy_method> import_file(const path& file, progress_callback progress);

  // ---- checks ---------------------------------------------------------------------

  result<void> require_save_on_stop() const;

  result<void> require_importable();

  //! The dirty image, if any. To be written (handed to a VM by start, grown
  //! by resize, punched by discard) it must be a file with one name: a
  //! running image never shares its inode (SPEC "Shared inodes"), and
  //! another name means a file that is not ours, which the write would
  //! change too. Taking it back (stop) writes nothing and is allowed.
  enum class dirty_use : std::uint8_t { write, take };
  result<std::optional<file_stat>> stat_dirty(dirty_use use);

  result<std::uint64_t> current_size();

  // ---- revisions on disk ---------------------------------------------------------

  //! Revisions and pins of this volume, from its directory. Names that are
  //! not regular files are never taken for revisions.
  result<rev_list> list_revisions();

  //! Remove the oldest unpinned revisions beyond revisions_to_keep. Runs after
  //! a commit point and is not flushed: a prune lost in a crash is redone by
  //! the next one, and no revision the policy keeps is ever at risk.
  void prune();

  result<void> drop(const selector& sel);

  // ---- the steps operations are made of ----------------------------------------

  //! Remove temporaries of this vid ("<its file>~<random>") and an
  //! interrupted import (unless one is open in this process). Returns what
  //! was removed. Not flushed: they are garbage either way.
  result<std::size_t> remove_incomplete();

  //! Remove every file of the vid (see `remove_names`), an import this
  //! process has open included.
  result<void> remove_all_files();

  //! Before the committed image changes in place (snapshots disabled): a
  //! precache (another program's, or one from before snapshots were
  //! disabled) goes, durably. Its mtime and size cannot tell it from the
  //! changed image where the clock did not move, and a later start with
  //! snapshots enabled would hand it to the VM.
  result<void> drop_precache();

  //! Remove files of this volume so that a failure loses nothing. Phase 1
  //! renames each to a temporary name and flushes the directory: that flush
  //! is the commit point (the files are gone for good: a temporary is
  //! garbage to every reader and to recover); a failure before it puts every
  //! name back. Phase 2 removes the temporaries, unflushed; a failure there
  //! only warns and leaves a temporary that the next start, remove or
  //! recover of the vid removes.
  result<void> remove_names(const std::vector<path>& names);

  //! Remove a temporary after the commit point of an operation, which has
  //! succeeded whatever happens here: a failure is a warning, and the next
  //! start, remove or recover of the vid removes what is left.
  void drop_temporary(const path& rel);

  //! The source's clean image, checked: it exists and is a regular file; a
  //! source running with snapshots disabled has only a dirty image.
  result<file_stat> source_clean();

  //! Snapshots disabled: the committed image itself becomes the running
  //! one. First, as the Qubes driver does, the precache and every unpinned
  //! revision go (the policy keeps none); they are renamed aside and deleted
  //! only once the start succeeded, so a failed start changes nothing. An
  //! image that another name shares (a snapshot's link, a planted hard
  //! link) is never renamed into place: the VM would write into that name's
  //! file too. It is copied instead (a clone where the filesystem has
  //! reflinks) and flushed, and the clean name goes. The rename is flushed
  //! before the VM runs: its durable writes must belong to a durable dirty
  //! name, and that one flush also makes the removals durable.
  result<void> start_renaming();

  //! snap_on_start: our clean name becomes a hard link to the source's clean
  //! image (is_outdated compares the inodes later), then a clone of it runs.
  result<void> start_from_source();

  //! Copy `src` to a temporary, flush it, rename it to `dst`, flush the
  //! directory: a durable image for a VM whose data is kept.
  result<void> clone_durably(const path& src, const path& dst);

  //! origin: one rename of a current precache, else a clone of the clean image.
  result<void> start_origin();

  //! volatile: a fresh sparse image, renamed over whatever a crash left
  //! (never truncated in place: an old dirty name may be a hard link to a
  //! file that is not this volume's). Discarded at stop and after a crash:
  //! nothing to flush.
  result<void> start_volatile();

  //! What a commit does with the committed image it replaces.
  enum class superseded : std::uint8_t {
    drop,    //!< nothing: the new image holds the same bytes (resize, sparsify)
    rotate,  //!< a revision when revisions_to_keep > 0, then the oldest beyond it are pruned (stop, import, discard)
    keep,    //!< always a revision, and nothing is pruned: a revert never removes a revision
  };

  //! Whether the committed image `clean` may become a revision by a hard
  //! link rather than a clone. A revision's bytes must never change, so its
  //! inode must never become a running image, and no name that can become
  //! one may share it. After the commit the clean name points to the new
  //! image, so the old inode keeps its other names. Each is safe only if we
  //! know what it is:
  //!  - none (nlink 1): the revision is then the inode's only name;
  //!  - the clean name of a registered snapshot or origin-snapshot volume
  //!    of this one (its `is_outdated` link, made at its start): such a
  //!    name is replaced or removed by that volume's start and stop, never
  //!    written through and never renamed into a running image (by this
  //!    library or by the Qubes driver).
  //! Any other name is someone else's, and may be the committed image of a
  //! volume with snapshots disabled, which its start renames into a running
  //! image (this volume's own image, when it is an origin-snapshot, is its
  //! source's committed image after start): the revision is a clone then.
  //! A template that commits while its snapshots run keeps the hard link.
  result<bool> may_link(const file_stat& clean);

  //! Commit `from` (a complete new image) as the clean image.
  //!
  //! Order, and why it is crash-safe:
  //!  1. fsync `from`: its data is durable before any name points to it.
  //!  2. the precache is moved aside (a temporary name): it is a clone of
  //!     the old clean image and must not outlive it.
  //!  3. the old clean image gets a second name: the new revision, else a
  //!     temporary (only for the undo). A revision is a hard link where
  //!     `may_link` proves it safe (the committed image is never modified in
  //!     place, so the revision's bytes are exactly the old image's, and no
  //!     data moves); otherwise a clone, flushed before it is named, since
  //!     after the commit point it is a revision the policy keeps.
  //!  4. rename `from` over the clean image.
  //!  5. fsync the directory: the commit point. 2-4 are one directory's
  //!     entries: after a crash they are all there or none are (on a
  //!     journalling filesystem, a prefix of them, and every prefix keeps
  //!     the old image committed and every kept revision).
  //!  6. after the commit point, unflushed: drop the temporaries, prune
  //!     revisions beyond revisions_to_keep (`rotate` only), refresh the
  //!     precache.
  //! A failure before the commit point undoes 2-4.
  result<void> commit(const path& from, superseded what);

  //! Publish a complete new image `tmp` whose bytes are the same as the
  //! clean image's (resize, sparsify): no revision, same ordering as commit.
  result<void> publish(const path& tmp);

  //! Revert: the clean image becomes a new revision, the revision `sel`
  //! names becomes clean; a pinned revision is cloned, not consumed.
  result<void> revert_to(const selector& sel);

  //! A precache: a clone of the clean image with its mtime, so that the next
  //! start is one rename and one directory flush. Made after a commit point,
  //! so its name is not flushed (lost in a crash, the next start clones),
  //! but its data and mtime are, before the rename that names it: a start
  //! renames it to the running image, and a crash after that start must not
  //! find a durable dirty name over data that never reached the disk (size
  //! and mtime cannot tell such a file from a good one; the next stop would
  //! commit it over the volume's data). Flushing here, at stop, rather than
  //! at start keeps the flush off the path a VM waits on to boot.
  //! Failure only warns: the commit stands.
  void refresh_precache();

  result<void> punch(const path& rel, std::uint64_t offset, std::uint64_t length);

  //! Punch every all-zero 4 KiB block of `rel`'s data extents; returns the
  //! bytes deallocated (as seen by the allocated size).
  result<std::uint64_t> punch_zeros(const path& rel);
};

}  // namespace detail
}  // namespace file_reflink
