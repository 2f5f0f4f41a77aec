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

#include <file_reflink/config.hpp>
#include <file_reflink/detail/pool_core.hpp>
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

//! A volume of a `Pool<FsOps>`: a cheap handle (copies refer to the same
//! volume). Thread-safe: operations on one volume exclude each other,
//! operations on different volumes run concurrently.
template <class FsOps>
class Volume {
  static_assert(detail::check_fs_ops<FsOps>::value, "file_reflink::Volume: FsOps is not a filesystem policy");

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
  bool ephemeral() const noexcept {
    auto c = st_->config();
    return c->ephemeral || (core_->cfg.ephemeral_volatile && c->kind() == volume_kind::volatile_);
  }
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

  Volume(std::shared_ptr<core_type> core, std::shared_ptr<detail::volume_state> st)
      : core_(std::move(core)), st_(std::move(st)) {}

  //! The configuration, inside an operation (which holds the volume's lock).
  const volume_config& cfg() const noexcept { return st_->held_config(); }
  const layout::volume_paths& p() const noexcept { return st_->paths; }
  std::uint64_t keep() const noexcept {
    int k = cfg().revisions_to_keep.value_or(0);
    return k > 0 ? static_cast<std::uint64_t>(k) : 0;
  }

  //! Every public operation: the volume's lock, the pool directory's check,
  //! the operation's name and vid in front of any error, and no exception.
  //! The description, "<op> volume '<vid>'", is made only for an error.
  //! The volume's lock is taken twice: in this process (its threads), then
  //! its byte of the pool's lock file (other processes, other Pool objects);
  //! exclusive for an operation that changes the volume, shared for a query.
  //! Both waits follow the pool's `lock_timeout`.
  template <class F>
  auto run(const char* op, F&& f, lock_mode mode = lock_mode::exclusive) noexcept
      -> decltype(f(std::declval<const handle&>())) {
    return run_with(op, nullptr, std::forward<F>(f), mode);
  }

  //! What an operation holds of one volume: its lock in this process (when
  //! this pool object registered it), then its byte of the pool's lock file.
  //! Released in the opposite order.
  struct hold {
    detail::local_lock local;
    typename core_type::held_lock file;
  };

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
      -> decltype(f(std::declval<const handle&>())) {
    using R = decltype(f(std::declval<const handle&>()));
    const auto what = [&] { return std::string(op) + " volume " + detail::q(vid()); };
    return detail::no_throw<R>(what, [&]() -> R {
      const detail::deadline until = detail::deadline_of(core_->cfg);
      auto h = core_->dir();
      if (!h) return failure(std::move(h).error().context(what()));
      hold own, theirs;
      if (!other) {
        if (auto r = acquire(*core_, h.value(), st_.get(), vid(), mode, until, own); !r)
          return failure(std::move(r).error().context(what()));
        if (auto r = follow_catalog(h.value(), mode); !r) return failure(std::move(r).error().context(what()));
        auto r = f(h.value());
        if (!r) return failure(std::move(r).error().context(what()));
        return r;
      }
      handle other_h = h.value();
      if (other->core != core_.get()) {
        auto oh = other->core->dir();
        if (!oh) return failure(std::move(oh).error().context(what()));
        other_h = std::move(oh).value();
      }
      const file_stat a = core_->identity(), b = other->core->identity();
      const auto key_a = std::make_tuple(a.dev, a.ino, std::string_view(vid()));
      const auto key_b = std::make_tuple(b.dev, b.ino, std::string_view(other->vid));
      if (key_a == key_b)
        return failure(error(make_error_code(errc::invalid_config), "the source is the volume itself").context(what()));
      auto own_first = [&]() -> result<void> {
        FILE_REFLINK_TRYV(acquire(*core_, h.value(), st_.get(), vid(), mode, until, own));
        return acquire(*other->core, other_h, other->st.get(), other->vid, lock_mode::shared, until, theirs);
      };
      auto theirs_first = [&]() -> result<void> {
        FILE_REFLINK_TRYV(acquire(*other->core, other_h, other->st.get(), other->vid, lock_mode::shared, until, theirs));
        return acquire(*core_, h.value(), st_.get(), vid(), mode, until, own);
      };
      if (auto r = key_a < key_b ? own_first() : theirs_first(); !r) return failure(std::move(r).error().context(what()));
      if (auto r = follow_catalog(h.value(), mode); !r) return failure(std::move(r).error().context(what()));
      auto r = f(h.value());
      if (!r) return failure(std::move(r).error().context(what()));
      return r;
    });
  }

  //! Inside an operation that holds the volume: refused once it was removed;
  //! with the pool's catalog on and the volume held exclusively, its entry
  //! there is what counts (another process may have changed or removed it).
  result<void> follow_catalog(const handle& h, lock_mode mode);

  //! `run` for a query: it shares the volume's lock with other queries.
  template <class F>
  auto query(const char* op, F&& f) noexcept -> decltype(f(std::declval<const handle&>())) {
    return run(op, std::forward<F>(f), lock_mode::shared);
  }

  copy_options copy_opts() const;

  result<void> require_save_on_stop() const;

  result<void> require_importable(const handle& h);

  //! The dirty image, if any. To be written (handed to a VM by start, grown
  //! by resize, punched by discard) it must be a file with one name: a
  //! running image never shares its inode (SPEC "Shared inodes"), and
  //! another name means a file that is not ours, which the write would
  //! change too. Taking it back (stop) writes nothing and is allowed.
  enum class dirty_use : std::uint8_t { write, take };
  result<std::optional<file_stat>> stat_dirty(const handle& h, dirty_use use);

  result<std::uint64_t> current_size(const handle& h);

  // ---- revisions on disk ---------------------------------------------------------

  //! One revision: its number and stamp, whether its own file exists, and
  //! its pins (hard links of the same data).
  struct rev_entry {
    std::uint64_t n = 0;
    std::string stamp;
    bool has_file = false;                               // "V.img.N@STAMP" exists
    std::vector<std::pair<std::string, path>> pins;      // label, relative path
    //! The file holding the revision's data: its own, or a pin (a hard link).
    path file(const layout::volume_paths& p) const { return has_file ? p.revision(n, stamp) : pins.front().second; }
    //! "N (STAMP)", for messages.
    std::string name() const { return std::to_string(n) + " (" + stamp + ")"; }
    revision_info info() const {
      revision_info i;
      i.number = n;
      i.timestamp = stamp;
      i.time = layout::parse_timestamp(stamp).value_or(0);
      for (auto& pin : pins) i.labels.push_back(pin.first);
      return i;
    }
  };
  //! Revisions by (number, stamp): the order of `revisions()`, oldest first.
  using rev_list = std::map<std::pair<std::uint64_t, std::string>, rev_entry>;

  //! Which revision an operation names: the newest, a number, or a label.
  struct selector {
    enum class by : std::uint8_t { newest, number, label } how = by::newest;
    std::uint64_t n = 0;
    std::string_view label;
    static selector number(std::uint64_t v) { return selector{by::number, v, {}}; }
    static selector label_of(std::string_view l) { return selector{by::label, 0, l}; }
  };

  //! Revisions and pins of this volume, from its directory. Names that are
  //! not regular files are never taken for revisions.
  result<rev_list> list_revisions(const handle& h);

  //! The revision pinned under `label`, or null.
  static const rev_entry* find_label(const rev_list& revs, std::string_view label);

  //! The revision `sel` names. A number names the revision file with that
  //! number, or, where no file has it, the one revision with that number
  //! that only pins keep; where two revisions would do, none is guessed.
  result<const rev_entry*> find_revision(const rev_list& revs, const selector& sel) const;

  //! " (the volume has revisions 1, 2 and 3)" or " (the volume has no revisions)".
  static std::string available(const rev_list& revs);

  //! The next revision number: one more than any revision or pin.
  static std::uint64_t next_number(const rev_list& revs);

  //! Remove the oldest unpinned revisions beyond revisions_to_keep. Runs after
  //! a commit point and is not flushed: a prune lost in a crash is redone by
  //! the next one, and no revision the policy keeps is ever at risk.
  void prune(const handle& h);

  result<void> drop(const handle& h, const selector& sel);

  // ---- the steps operations are made of ----------------------------------------

  //! Remove temporaries of this vid ("<its file>~<random>") and an
  //! interrupted import (unless one is open in this process). Returns what
  //! was removed. Not flushed: they are garbage either way.
  result<std::size_t> remove_incomplete(const handle& h);

  //! Remove every file of the vid (see `remove_names`), an import this
  //! process has open included.
  result<void> remove_all_files(const handle& h);

  //! Before the committed image changes in place (snapshots disabled): a
  //! precache (another program's, or one from before snapshots were
  //! disabled) goes, durably. Its mtime and size cannot tell it from the
  //! changed image where the clock did not move, and a later start with
  //! snapshots enabled would hand it to the VM.
  result<void> drop_precache(const handle& h);

  //! Remove files of this volume so that a failure loses nothing. Phase 1
  //! renames each to a temporary name and flushes the directory: that flush
  //! is the commit point (the files are gone for good: a temporary is
  //! garbage to every reader and to recover); a failure before it puts every
  //! name back. Phase 2 removes the temporaries, unflushed; a failure there
  //! only warns and leaves a temporary that the next start, remove or
  //! recover of the vid removes.
  result<void> remove_names(const handle& h, const std::vector<path>& names);

  //! Remove a temporary after the commit point of an operation, which has
  //! succeeded whatever happens here: a failure is a warning, and the next
  //! start, remove or recover of the vid removes what is left.
  void drop_temporary(const handle& h, const path& rel);

  //! The source's clean image, checked: it exists and is a regular file; a
  //! source running with snapshots disabled has only a dirty image.
  result<file_stat> source_clean(const handle& h);

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
  result<void> start_renaming(const handle& h);

  //! snap_on_start: our clean name becomes a hard link to the source's clean
  //! image (is_outdated compares the inodes later), then a clone of it runs.
  result<void> start_from_source(const handle& h);

  //! Copy `src` to a temporary, flush it, rename it to `dst`, flush the
  //! directory: a durable image for a VM whose data is kept.
  result<void> clone_durably(const handle& h, const path& src, const path& dst);

  //! origin: one rename of a current precache, else a clone of the clean image.
  result<void> start_origin(const handle& h);

  //! volatile: a fresh sparse image, renamed over whatever a crash left
  //! (never truncated in place: an old dirty name may be a hard link to a
  //! file that is not this volume's). Discarded at stop and after a crash:
  //! nothing to flush.
  result<void> start_volatile(const handle& h);

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
  result<bool> may_link(const handle& h, const file_stat& clean);

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
  result<void> commit(const handle& h, const path& from, superseded what);

  //! Publish a complete new image `tmp` whose bytes are the same as the
  //! clean image's (resize, sparsify): no revision, same ordering as commit.
  result<void> publish(const handle& h, const path& tmp);

  //! Revert: the clean image becomes a new revision, the revision `sel`
  //! names becomes clean; a pinned revision is cloned, not consumed.
  result<void> revert_to(const handle& h, const selector& sel);

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
  void refresh_precache(const handle& h);

  result<void> punch(const handle& h, const path& rel, std::uint64_t offset, std::uint64_t length);

  //! Punch every all-zero 4 KiB block of `rel`'s data extents; returns the
  //! bytes deallocated (as seen by the allocated size).
  result<std::uint64_t> punch_zeros(const handle& h, const path& rel);


  std::shared_ptr<core_type> core_;
  std::shared_ptr<detail::volume_state> st_;
};

}  // namespace file_reflink

// The member functions' definitions: here (header-only, the default), or in
// the one source file that includes <file_reflink/impl/src.hpp>.
#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#include <file_reflink/impl/volume.ipp>
#endif
