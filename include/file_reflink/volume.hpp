// SPDX-License-Identifier: BSL-1.0
//! \file
//! `Volume<FsOps>`: one VM disk image and its files in the pool (clean,
//! dirty, precache, import, revisions, pins), and every operation on it.
//!
//! Durability. Each operation issues exactly the flushes the crash rules
//! need, and says why next to them. The rules it keeps:
//!  - a committed image is never modified in place: a new image is written
//!    beside it, made durable, then renamed over it;
//!  - new data is fsynced before the rename that publishes it, and the
//!    directory is fsynced after it: that fsync is the commit point;
//!  - an image that is discarded at stop and after a crash (volatile,
//!    snapshot) is never flushed;
//!  - work after the commit point (pruning revisions, naming the precache,
//!    removing a temporary) is not flushed: if a crash loses it, the next
//!    commit prunes again, a missing precache or one that does not match the
//!    clean image's mtime and size is ignored (the start clones), and a
//!    temporary ("<name>~<random>") is removed by the next start, remove or
//!    recover. The precache's data is flushed before it is named, because a
//!    start makes it the running image with one rename;
//!  - on failure an operation undoes what it did, so the volume's files are
//!    as before and no temporary file stays behind.
#pragma once

#include <file_reflink/changes.hpp>
#include <file_reflink/config.hpp>
#include <file_reflink/detail/locks.hpp>
#include <file_reflink/detail/volume_state.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/layout.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <tuple>
#include <utility>
#include <vector>

namespace file_reflink {

template <class FsOps>
class Pool;

namespace detail {
template <class FsOps>
class pool_core;
template <class FsOps>
class volume_step;
}  // namespace detail

//! A volume of a `Pool<FsOps>`: a cheap handle (copies refer to the same
//! volume). Thread-safe: operations on one volume exclude each other,
//! operations on different volumes run concurrently.
template <class FsOps>
class Volume {
#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
  static_assert(detail::check_fs_ops<FsOps>::value, "file_reflink::Volume: FsOps is not a filesystem policy");
#endif

public:
  using fs_ops_type = FsOps;

  //! The vid: where the volume's files live, relative to the pool.
  const std::string& vid() const noexcept { return st_->vid; }
  //! The volume's name (defaults to the vid's last component).
  const std::string& name() const noexcept { return st_->name; }
  //! Its configuration now (revisions_to_keep resolved): as registered, or
  //! as `update` last changed it.
  volume_config config() const { return *st_->config(); }
  //! volatile, snapshot, origin or origin-snapshot.
  volume_kind kind() const noexcept { return st_->config()->kind(); }
  //! Read-write (resize allowed, attached writable)?
  bool rw() const noexcept { return st_->config()->rw; }
  //! Ephemeral as configured, or as a volatile volume of an
  //! `ephemeral_volatile` pool: recorded and reported, the encryption is the
  //! embedder's.
  bool ephemeral() const noexcept;
  //! revisions_to_keep == -1 on an origin volume: no clone is ever made.
  bool snapshots_disabled() const noexcept {
    auto c = st_->config();
    return c->revisions_to_keep.value_or(0) == -1 && c->kind() == volume_kind::origin;
  }
  //! Two handles to the same registered volume?
  friend bool operator==(const Volume& a, const Volume& b) noexcept { return a.st_ == b.st_; }
  friend bool operator!=(const Volume& a, const Volume& b) noexcept { return a.st_ != b.st_; }

  // ---- create / verify / remove ---------------------------------------------

  //! Remove any leftover files of this vid; for an origin volume, write a
  //! sparse clean image of `size` (and its precache).
  result<void> create() noexcept;

  //! The committed image that a start would need exists: the source's for
  //! snap_on_start, its own for save_on_stop.
  result<void> verify() noexcept;

  //! Remove every file of the volume (revisions and pins included),
  //! unregister it, and remove its directory if that became empty. Refused,
  //! unless `force`, while the volume runs (a running image exists: a VM may
  //! have it attached, or crashed with unsaved data: `errc::volume_running`)
  //! and while registered volumes start from it (`errc::source_in_use`).
  result<void> remove(bool force = false) noexcept;

  // ---- start / stop -----------------------------------------------------------

  //! Give the VM its image (`block_device()`): see the table in the README.
  //! Incomplete files of this vid are removed first; an already dirty
  //! volume is left as it is (a crashed VM's data is kept).
  result<void> start() noexcept;

  //! Take the image back: commit it (save_on_stop) or discard it.
  result<void> stop() noexcept;

  // ---- state ------------------------------------------------------------------

  //! Stopped, running, or running with data that its stop commits (see
  //! `volume_status`). One look at one name: no extent is read.
  result<volume_status> state() noexcept;

  //! A running image exists: true for a running snapshot or volatile volume
  //! too, where `is_dirty()` is false.
  result<bool> is_running() noexcept;

  //! save_on_stop and a dirty image exists (running, or crashed).
  result<bool> is_dirty() noexcept;

  //! snap_on_start, and the source's clean image is no longer the inode this
  //! volume started from (the source committed since).
  result<bool> is_outdated() noexcept;

  //! Revisions by number (oldest first), with their timestamps and labels.
  result<revision_map> revisions() noexcept;

  //! The size of the image: the running one, else the committed one, else
  //! the configured size.
  result<std::uint64_t> size() noexcept;

  //! Bytes the image occupies on disk (the running one, else the committed).
  result<std::uint64_t> usage() noexcept;

  //! Allocated, shared and exclusive bytes of each file of the volume and of
  //! each revision: what removing a revision would free is its exclusive
  //! bytes.
  result<volume_space> space() noexcept;

  //! What a VM manager attaches: the running image, read-only or not, the
  //! name. Refused for a stopped volume (`errc::volume_not_running`): its
  //! running image does not exist until `start`.
  result<block_device_info> block_device() noexcept;

  // ---- configuration ------------------------------------------------------------

  //! Change the configuration: each field of `u` that holds a value.
  //! Validated as `init_volume` validates; with the pool's catalog on, the
  //! catalog is rewritten (durably) before the change is seen here. Refused
  //! (`errc::volume_running`) while a running image exists for anything but
  //! retention within snapshots enabled; refused (`errc::invalid_config`)
  //! where the new kind would throw away committed data (save_on_stop off,
  //! or snap_on_start on, over a committed image of its own: remove the
  //! volume instead).
  result<void> update(const volume_update& u) noexcept;

  // ---- revisions ----------------------------------------------------------------
  //
  // A revision is its number and its stamp together: "V.img.N@STAMP" and
  // its pins "V.img.N@STAMP.LABEL.pin". A number alone names the revision
  // file with that number (where a Qubes driver reused the number, a pin of
  // another stamp is reached by its label); a label names the pinned bytes.

  //! Make the newest revision (the highest number) the committed image; the
  //! current one becomes a new revision. Refused while dirty. A revert
  //! never removes a revision.
  result<void> revert() noexcept;
  //! Revert to revision `n`.
  result<void> revert(std::uint64_t n) noexcept;
  //! Revert to the revision pinned under `label`.
  result<void> revert(std::string_view label) noexcept;
  //! `revert(nullptr)` does not compile (a null label is no label), while
  //! `revert(0)` is revision 0, never a null pointer.
  template <class T, std::enable_if_t<std::is_null_pointer_v<T>, int> = 0>
  result<void> revert(T) = delete;

  //! Pin revision `n` under `label`: rotation never prunes it, and revert
  //! accepts the label. Stored as a hard link "V.img.N@STAMP.LABEL.pin" that
  //! another process sees and a Qubes driver's revision glob ignores (and
  //! which keeps the data even if such a driver prunes the revision).
  result<void> keep_revision(std::uint64_t n, std::string_view label) noexcept;
  template <class T, std::enable_if_t<std::is_null_pointer_v<T>, int> = 0>
  result<void> keep_revision(std::uint64_t, T) = delete;

  //! Remove the pin `label` (the revision stays, and rotates normally; a
  //! revision whose file is gone goes with its last pin).
  result<void> unkeep_revision(std::string_view label) noexcept;
  template <class T, std::enable_if_t<std::is_null_pointer_v<T>, int> = 0>
  result<void> unkeep_revision(T) = delete;

  //! Remove revision `n` and its pins.
  result<void> drop_revision(std::uint64_t n) noexcept;

  //! Remove the revision pinned under `label`, and its pins.
  result<void> drop_revision(std::string_view label) noexcept;
  template <class T, std::enable_if_t<std::is_null_pointer_v<T>, int> = 0>
  result<void> drop_revision(T) = delete;

  // ---- resize -----------------------------------------------------------------

  //! Grow the image: the running one (and tell the loop devices backed by
  //! it), or the committed one when stopped. Refused for a read-only volume
  //! and for shrinking, which would lose data.
  result<void> resize(std::uint64_t new_size) noexcept;

  //! Shrink a stopped volume to `new_size` (not larger than its size): the
  //! committed image becomes a revision, which is always made and not
  //! pruned by this commit (`revert` brings the data back), and a clone of
  //! it cut to `new_size` is committed, with `commit`'s ordering (the copy
  //! flushed, renamed over the clean image, the directory flushed). Refused
  //! while running (`errc::volume_dirty`), during an import, and for a
  //! read-only volume; a larger size is `errc::out_of_range`. A failure
  //! leaves the volume as it was.
  result<void> shrink(std::uint64_t new_size) noexcept;

  // ---- export / import -------------------------------------------------------

  //! A path to read the committed data from (the clean image). Committed
  //! images are replaced, never modified, so a reader that opened it keeps
  //! reading one consistent image. Pair with `export_end`. (`export` is a
  //! C++ keyword.)
  result<path> export_() noexcept;

  //! The reader of an exported path is done.
  result<void> export_end(const path& exported) noexcept;

  //! A new sparse import file of `size` to write the volume's new data into;
  //! `import_data_end(true)` commits it, `import_data_end(false)` drops it.
  //! Nothing is flushed here: the import is garbage until its end commits it
  //! (commit flushes its data, then its name); a crash before that leaves an
  //! import file that the next start, remove or recover removes. Until the
  //! import ends, the volume stays locked against other pool objects and
  //! processes (they wait, or fail with `errc::volume_busy`), so that none
  //! takes the open import for an interrupted one.
  result<path> import_data(std::uint64_t size) noexcept;

  //! Commit the import (a new revision is made as at stop) or remove it.
  //! The commit's ordering is `commit`'s; dropping it is not flushed (an
  //! import name that a crash brings back is removed by the next start).
  result<void> import_data_end(bool success_) noexcept;

  //! Copy another volume's committed data in (a clone where both sit on one
  //! filesystem, a sparse copy otherwise), then commit it. `progress`
  //! (default: the pool's) sees the copy and can cancel it; a cancelled or
  //! failed import leaves nothing behind.
  result<copy_method> import_volume(const Volume& src, progress_callback progress = nullptr) noexcept;

  //! Copy the regular file at the absolute path `file` in and commit it as
  //! `import_volume` does: the copy is the library's (a clone where the
  //! file sits on the pool's filesystem, else `copy_range`, else a copy of
  //! its data segments; holes stay holes), the image gets the file's size,
  //! and the old committed image becomes a revision as at stop. Returns how
  //! it was copied. `file`'s directory is opened by its path; its last name
  //! is never followed if it is a symlink (`ELOOP`). `progress` (default:
  //! the pool's) sees the copy and can cancel it; a cancelled or failed
  //! import leaves the volume as it was and no import file behind.
  result<copy_method> import_file(const path& file, progress_callback progress = nullptr) noexcept;

  // ---- changes between images, send / receive -----------------------------------

  //! The byte ranges in which image `from` and image `to` may differ (always
  //! every real difference, see `changed_ranges_result`). From the two
  //! files' extent maps where they share storage (no data read: the cost
  //! grows with the extents); where they share none (no reflinks, a copy, a
  //! received image) the data is compared, in the ranges the maps cannot
  //! vouch for, with `progress` (default: the pool's), which can cancel.
  result<changed_ranges_result> changed_ranges(const image_ref& from, const image_ref& to = image_ref::committed(),
                                               progress_callback progress = nullptr) noexcept;

  //! Write the committed image to `sink` as a stream (doc/stream-format.md):
  //! whole, or with `since` only the ranges changed since that image (a
  //! revision the receiver holds). Holes are sent as holes. Reads the image
  //! once, holds at most one record (1 MiB) in memory, writes no file.
  result<send_result> send(const stream_sink& sink, const std::optional<image_ref>& since = std::nullopt,
                           progress_callback progress = nullptr) noexcept;

  //! Apply a stream from `source` as a commit (as `import_data_end(true)`:
  //! the old committed image becomes a revision). Nothing is visible until
  //! the whole stream arrived and verified; a stream that is truncated,
  //! corrupt, reordered or of another vid is refused
  //! (`errc::stream_invalid`) and leaves nothing behind. An incremental
  //! stream applies to the committed image or the newest revision that
  //! matches its base (size and fingerprint); without one it is refused
  //! before anything changes (`errc::stream_base_missing`, naming the base),
  //! and where the committed image already is its result
  //! (`errc::stream_already_applied`). A full stream always applies.
  result<receive_result> receive(const stream_source& source, progress_callback progress = nullptr) noexcept;

  // ---- discard / sparsify ----------------------------------------------------

  //! Punch a hole: in the running image, or (stopped) in a new committed
  //! image, the old one becoming a revision as at stop.
  result<void> discard(std::uint64_t offset, std::uint64_t length) noexcept;

  //! Punch holes where the committed image's data is all zeros; returns the
  //! bytes deallocated. The bytes read stay the same, so no revision is made.
  //! Refused while running: the VM could write between the read and the punch.
  result<std::uint64_t> sparsify() noexcept;

private:
  friend class Pool<FsOps>;
  using handle = typename FsOps::dir_handle;
  using core_type = detail::pool_core<FsOps>;
  //! What an operation's body is given once it holds the volume.
  using step = detail::volume_step<FsOps>;

  Volume(std::shared_ptr<core_type> core, std::shared_ptr<detail::volume_state> st);

  //! The configuration, inside an operation (which holds the volume's lock).
  const volume_config& cfg() const noexcept { return st_->held_config(); }

  //! Every public operation: the volume's lock, the pool directory's check,
  //! the operation's name and vid in front of any error, and no exception;
  //! `f` is the operation's body, run on a `step` (its context).
  //! The description, "<op> volume '<vid>'", is made only for an error.
  //! The volume's lock is taken twice: in this process (its threads), then
  //! its byte of the pool's lock file (other processes, other Pool objects);
  //! exclusive for an operation that changes the volume, shared for a query.
  //! Both waits follow the pool's `lock_timeout`.
  template <class F>
  auto run(const char* op, F&& f, lock_mode mode = lock_mode::exclusive) noexcept
      -> decltype(f(std::declval<step&>()));

  //! What an operation holds of one volume: its lock in this process (when
  //! this pool object registered it), then its byte of the pool's lock file.
  //! Released in the opposite order.
  struct hold;

  //! Take volume `vid` of `core` in `mode` into `out`.
  static result<void> acquire(core_type& core, const handle& h, detail::volume_state* st, const std::string& vid,
                              lock_mode mode, const detail::deadline& until, hold& out);

  //! Another volume an operation reads from (a source), held shared for the
  //! operation's duration so that nothing changes its committed image
  //! meanwhile (a start with snapshots disabled would hand it to a VM).
  struct other_volume {
    core_type* core;
    std::shared_ptr<detail::volume_state> st;  //!< null: not registered in that pool object
    std::string vid;
  };

  //! Volume `vid` of `core`, with its state where that pool object has one.
  static other_volume registered(core_type& core, const std::string& vid);

  //! `run`, holding `other` too (shared). Two volumes are always taken in one
  //! order (pool directory, then vid), so that two such operations in any
  //! processes cannot each hold what the other waits for.
  template <class F>
  auto run_with(const char* op, const other_volume* other, F&& f, lock_mode mode = lock_mode::exclusive) noexcept
      -> decltype(f(std::declval<step&>()));

  //! Inside an operation that holds the volume: refused once it was removed;
  //! with the pool's catalog on and the volume held exclusively, its entry
  //! there is what counts (another process may have changed or removed it).
  result<void> follow_catalog(const handle& h, lock_mode mode);

  //! `run` for a query: it shares the volume's lock with other queries.
  template <class F>
  auto query(const char* op, F&& f) noexcept -> decltype(f(std::declval<step&>()));

  std::shared_ptr<core_type> core_;
  std::shared_ptr<detail::volume_state> st_;
};

}  // namespace file_reflink

// The member functions' definitions: here (header-only, the default), or in
// the one source file that includes <file_reflink/impl/src.hpp>.
#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#include <file_reflink/impl/volume.ipp>
#endif
