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
  result<void> create() noexcept {
    return run("create", [&](const handle& h) -> result<void> {
      FILE_REFLINK_TRYV(remove_all_files(h));
      if (kind() != volume_kind::origin) return success();
      FILE_REFLINK_TRYV(core_->ensure_dir(h, p().dir));
      path tmp = layout::temp_name(p().clean());
      FILE_REFLINK_TRYV(core_->create_sparse(h, tmp, st_->size, create_mode::exclusive));
      auto undo = [&] { (void)core_->remove_file(h, tmp); };
      // Even an empty image has a size that must survive: flush it before
      // its name, then the name (the commit point).
      if (auto r = core_->sync_file(h, tmp); !r) return undo(), failure(r.error());
      if (auto r = core_->rename_file(h, tmp, p().clean()); !r) return undo(), failure(r.error());
      if (auto r = core_->sync_dir(h, p().dir); !r) {
        (void)core_->remove_file(h, p().clean());
        return failure(r.error());
      }
      refresh_precache(h);
      return success();
    });
  }

  //! The committed image that a start would need exists: the source's for
  //! snap_on_start, its own for save_on_stop.
  result<void> verify() noexcept {
    return query("verify", [&](const handle& h) -> result<void> {
      if (cfg().snap_on_start) {
        FILE_REFLINK_TRYV(source_clean(h));
        return success();
      }
      if (cfg().save_on_stop) {
        FILE_REFLINK_TRY(auto st, core_->stat_image(h, p().clean()));
        if (!st) {
          if (snapshots_disabled()) {
            FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
            if (dirty) return success();  // running: its only image is attached
          }
          return failure(errc::image_not_found, "missing image file " + core_->abs(h, p().clean()));
        }
      }
      return success();
    });
  }

  //! Remove every file of the volume (revisions and pins included),
  //! unregister it, and remove its directory if that became empty. Refused,
  //! unless `force`, while the volume runs (a running image exists: a VM may
  //! have it attached, or crashed with unsaved data: `errc::volume_running`)
  //! and while registered volumes start from it (`errc::source_in_use`).
  result<void> remove(bool force = false) noexcept {
    return run("remove", [&](const handle& h) -> result<void> {
      if (!force) {
        FILE_REFLINK_TRY(auto dirty, core_->stat_if(h, p().dirty()));
        if (dirty)
          return failure(errc::volume_running,
                         "its running image " + core_->abs(h, p().dirty()) +
                             " exists (a VM may have it attached, or crashed with data not yet committed): stop "
                             "the volume first, or force the removal");
        std::string users;
        {
          std::lock_guard<std::mutex> lk(core_->mu);  // after the volume's own lock, as everywhere
          for (auto& [other, st] : core_->volumes)
            if (auto c = st->config(); st != st_ && c->source && *c->source == vid()) users += (users.empty() ? "" : ", ") + detail::q(other);
        }
        if (!users.empty())
          return failure(errc::source_in_use, "volume(s) " + users +
                                                  " start from it: remove them or change their source first, or "
                                                  "force the removal");
      }
      FILE_REFLINK_TRYV(remove_all_files(h));
      (void)core_->remove_empty_dir(h, p().dir);
      // Its files are gone first: a failure here leaves an entry that a
      // second remove takes away, never files that no entry names.
      FILE_REFLINK_TRYV(core_->forget_config(h, vid()));
      st_->removed = true;
      std::lock_guard<std::mutex> lk(core_->mu);
      auto it = core_->volumes.find(vid());
      if (it != core_->volumes.end() && it->second == st_) core_->volumes.erase(it);
      return success();
    });
  }

  // ---- start / stop -----------------------------------------------------------

  //! Give the VM its image (`block_device()`): see the table in the README.
  //! Incomplete files of this vid are removed first; an already dirty
  //! volume is left as it is (a crashed VM's data is kept).
  result<void> start() noexcept {
    // A snapshot's start reads its source's committed image: the source is
    // held (shared) too, so that its own start cannot take that image away.
    std::optional<other_volume> src;
    if (auto c = st_->config(); c->snap_on_start && c->source) src = registered(*core_, *c->source);
    return run_with("start", src ? &*src : nullptr, [&](const handle& h) -> result<void> {
      FILE_REFLINK_TRYV(remove_incomplete(h));
      if (cfg().save_on_stop) {
        FILE_REFLINK_TRY(auto dirty, stat_dirty(h, dirty_use::write));
        if (dirty) return success();
      }
      if (snapshots_disabled()) return start_renaming(h);
      if (cfg().snap_on_start) return start_from_source(h);
      if (cfg().save_on_stop) return start_origin(h);
      return start_volatile(h);
    });
  }

  //! Take the image back: commit it (save_on_stop) or discard it.
  result<void> stop() noexcept {
    return run("stop", [&](const handle& h) -> result<void> {
      if (cfg().save_on_stop) {
        FILE_REFLINK_TRY(auto dirty, stat_dirty(h, dirty_use::take));
        if (!dirty) return success();  // not running
        if (snapshots_disabled()) {
          // The VM's writes are durable before the image is called clean.
          FILE_REFLINK_TRYV(core_->sync_file(h, p().dirty()));
          FILE_REFLINK_TRYV(core_->rename_file(h, p().dirty(), p().clean()));
          if (auto r = core_->sync_dir(h, p().dir); !r) {
            (void)core_->rename_file(h, p().clean(), p().dirty());
            return failure(r.error());
          }
          return success();
        }
        return commit(h, p().dirty(), superseded::rotate);
      }
      // Discarded images: nothing here needs to be durable; after a crash the
      // next start replaces whatever is left.
      if (kind() == volume_kind::volatile_) {
        FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
        if (dirty) st_->size = dirty->size;  // keep a size changed while running
      }
      if (!cfg().snap_on_start) {
        FILE_REFLINK_TRYV(core_->remove_file(h, p().dirty()));
        return success();
      }
      // Two names go: both are renamed aside first, so a failure leaves
      // both (the pair is what is_outdated and the next start read).
      std::vector<std::pair<path, path>> moved;
      for (const path& from : {p().dirty(), p().clean()}) {
        path to = layout::temp_name(from);
        auto r = core_->rename_file(h, from, to);
        if (!r && r.error() == std::errc::no_such_file_or_directory) continue;
        if (!r) {
          for (auto it = moved.rbegin(); it != moved.rend(); ++it) (void)core_->rename_file(h, it->second, it->first);
          return failure(r.error());
        }
        moved.emplace_back(from, to);
      }
      for (auto& m : moved) drop_temporary(h, m.second);
      return success();
    });
  }

  // ---- state ------------------------------------------------------------------

  //! Stopped, running, or running with data that its stop commits (see
  //! `volume_status`). One look at one name: no extent is read.
  result<volume_status> state() noexcept {
    return query("state", [&](const handle& h) -> result<volume_status> {
      FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
      if (!dirty) return volume_status::stopped;
      return cfg().save_on_stop ? volume_status::dirty : volume_status::running;
    });
  }

  //! A running image exists: true for a running snapshot or volatile volume
  //! too, where `is_dirty()` is false.
  result<bool> is_running() noexcept {
    return query("is_running", [&](const handle& h) -> result<bool> {
      FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
      return dirty.has_value();
    });
  }

  //! save_on_stop and a dirty image exists (running, or crashed).
  result<bool> is_dirty() noexcept {
    return query("is_dirty", [&](const handle& h) -> result<bool> {
      if (!cfg().save_on_stop) return false;
      FILE_REFLINK_TRY(auto st, core_->stat_image(h, p().dirty()));
      return st.has_value();
    });
  }

  //! snap_on_start, and the source's clean image is no longer the inode this
  //! volume started from (the source committed since).
  result<bool> is_outdated() noexcept {
    return query("is_outdated", [&](const handle& h) -> result<bool> {
      if (!cfg().snap_on_start) return false;
      FILE_REFLINK_TRY(auto own, core_->stat_if(h, p().clean()));
      if (!own) return false;
      FILE_REFLINK_TRY(auto src, core_->stat_if(h, layout::paths_of(*cfg().source).clean()));
      if (!src) return false;
      return own->ino != src->ino || own->dev != src->dev;
    });
  }

  //! Revisions by number (oldest first), with their timestamps and labels.
  result<revision_map> revisions() noexcept {
    return query("revisions", [&](const handle& h) -> result<revision_map> {
      FILE_REFLINK_TRY(auto revs, list_revisions(h));
      revision_map out;
      for (auto& [key, e] : revs) out.emplace_hint(out.end(), e.n, e.info());  // equal numbers stay in stamp order
      return out;
    });
  }

  //! The size of the image: the running one, else the committed one, else
  //! the configured size.
  result<std::uint64_t> size() noexcept {
    return query("size", [&](const handle& h) -> result<std::uint64_t> { return current_size(h); });
  }

  //! Bytes the image occupies on disk (the running one, else the committed).
  result<std::uint64_t> usage() noexcept {
    return query("usage", [&](const handle& h) -> result<std::uint64_t> {
      FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
      if (dirty) return dirty->allocated;
      // A stopped snapshot or volatile volume has no image of its own.
      if (!cfg().save_on_stop) return std::uint64_t(0);
      FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
      return clean ? clean->allocated : 0;
    });
  }

  //! Allocated, shared and exclusive bytes of each file of the volume and of
  //! each revision: what removing a revision would free is its exclusive
  //! bytes.
  result<volume_space> space() noexcept {
    return query("space", [&](const handle& h) -> result<volume_space> {
      volume_space out;
      auto one = [&](const path& rel, std::optional<space_usage>& slot) -> result<void> {
        FILE_REFLINK_TRY(auto st, core_->stat_image(h, rel));
        if (!st) return success();
        FILE_REFLINK_TRY(auto s, core_->space_of(h, rel, *st));
        slot = s;
        out.total += s;
        return success();
      };
      FILE_REFLINK_TRYV(one(p().dirty(), out.dirty));
      if (cfg().save_on_stop) {
        FILE_REFLINK_TRYV(one(p().clean(), out.clean));
        FILE_REFLINK_TRYV(one(p().precache(), out.precache));
      }
      FILE_REFLINK_TRY(auto revs, list_revisions(h));
      for (auto& [key, e] : revs) {
        std::optional<space_usage> s;
        FILE_REFLINK_TRYV(one(e.file(p()), s));
        if (s) out.revisions.emplace_hint(out.revisions.end(), e.n, *s);
      }
      return out;
    });
  }

  //! What a VM manager attaches: the running image, read-only or not, the
  //! name. Refused for a stopped volume (`errc::volume_not_running`): its
  //! running image does not exist until `start`.
  result<block_device_info> block_device() noexcept {
    return query("block_device", [&](const handle& h) -> result<block_device_info> {
      FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
      if (!dirty)
        return failure(errc::volume_not_running, "it is stopped: its running image " + core_->abs(h, p().dirty()) +
                                                     " exists once it is started");
      block_device_info b;
      FILE_REFLINK_TRY(b.device_path, core_->absolute(h, p().dirty()));
      b.read_only = !cfg().rw;
      b.name = name();
      return b;
    });
  }

  // ---- configuration ------------------------------------------------------------

  //! Change the configuration: each field of `u` that holds a value.
  //! Validated as `init_volume` validates; with the pool's catalog on, the
  //! catalog is rewritten (durably) before the change is seen here. Refused
  //! (`errc::volume_running`) while a running image exists for anything but
  //! retention within snapshots enabled; refused (`errc::invalid_config`)
  //! where the new kind would throw away committed data (save_on_stop off,
  //! or snap_on_start on, over a committed image of its own: remove the
  //! volume instead).
  result<void> update(const volume_update& u) noexcept {
    return run("update", [&](const handle& h) -> result<void> {
      const volume_config& was = cfg();
      volume_config next = was;
      if (u.revisions_to_keep) next.revisions_to_keep = *u.revisions_to_keep;
      if (u.rw) next.rw = *u.rw;
      if (u.save_on_stop) next.save_on_stop = *u.save_on_stop;
      if (u.snap_on_start) next.snap_on_start = *u.snap_on_start;
      if (u.source) next.source = *u.source;
      if (u.ephemeral) next.ephemeral = *u.ephemeral;
      FILE_REFLINK_TRYV(detail::validate_config(next, core_->cfg));
      auto disabled = [](const volume_config& c) {
        return c.revisions_to_keep.value_or(0) == -1 && c.kind() == volume_kind::origin;
      };
      const bool kind_changes = next.save_on_stop != was.save_on_stop || next.snap_on_start != was.snap_on_start;
      FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
      if (dirty || st_->importing) {
        const char* what = kind_changes               ? "its kind"
                           : next.source != was.source ? "its source"
                           : next.rw != was.rw         ? "rw"
                           : disabled(next) != disabled(was) ? "whether snapshots are disabled"
                                                             : nullptr;
        if (what)
          return failure(errc::volume_running,
                         std::string("cannot change ") + what + " while " +
                             (dirty ? "its running image " + core_->abs(h, p().dirty()) + " exists" : "an import is open") +
                             ": stop the volume first");
      }
      if (kind_changes && was.save_on_stop && (!next.save_on_stop || (next.snap_on_start && !was.snap_on_start))) {
        FILE_REFLINK_TRY(auto clean, core_->stat_if(h, p().clean()));
        FILE_REFLINK_TRY(auto revs, list_revisions(h));
        if (clean || !revs.empty())
          return failure(errc::invalid_config,
                         std::string("as ") + to_string(next.kind()) + " it would no longer keep its committed image " +
                             core_->abs(h, p().clean()) + " and revisions: remove the volume instead");
      }
      next.size = st_->size;
      FILE_REFLINK_TRYV(core_->persist_config(h, next));
      st_->set_config(std::move(next));
      return success();
    });
  }

  // ---- revisions ----------------------------------------------------------------
  //
  // A revision is its number and its stamp together: "V.img.N@STAMP" and
  // its pins "V.img.N@STAMP.LABEL.pin". A number alone names the revision
  // file with that number (where a Qubes driver reused the number, a pin of
  // another stamp is reached by its label); a label names the pinned bytes.

  //! Make the newest revision (the highest number) the committed image; the
  //! current one becomes a new revision. Refused while dirty. A revert
  //! never removes a revision.
  result<void> revert() noexcept {
    return run("revert", [&](const handle& h) -> result<void> { return revert_to(h, selector{}); });
  }
  //! Revert to revision `n`.
  result<void> revert(std::uint64_t n) noexcept {
    return run("revert", [&](const handle& h) -> result<void> { return revert_to(h, selector::number(n)); });
  }
  //! Revert to the revision pinned under `label`.
  result<void> revert(std::string_view label) noexcept {
    return run("revert", [&](const handle& h) -> result<void> {
      FILE_REFLINK_TRYV(layout::validate_label(label));
      return revert_to(h, selector::label_of(label));
    });
  }
  //! `revert(nullptr)` does not compile (a null label is no label), while
  //! `revert(0)` is revision 0, never a null pointer.
  template <class T, std::enable_if_t<std::is_null_pointer_v<T>, int> = 0>
  result<void> revert(T) = delete;

  //! Pin revision `n` under `label`: rotation never prunes it, and revert
  //! accepts the label. Stored as a hard link "V.img.N@STAMP.LABEL.pin" that
  //! another process sees and a Qubes driver's revision glob ignores (and
  //! which keeps the data even if such a driver prunes the revision).
  result<void> keep_revision(std::uint64_t n, std::string_view label) noexcept {
    return run("keep_revision", [&](const handle& h) -> result<void> {
      FILE_REFLINK_TRYV(layout::validate_label(label));
      FILE_REFLINK_TRY(auto revs, list_revisions(h));
      FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, selector::number(n)));
      if (const rev_entry* other = find_label(revs, label)) {
        if (other == e) return success();
        return failure(errc::invalid_revision_label,
                       "label " + detail::q(std::string(label)) + " already pins revision " + other->name());
      }
      path pin = p().pin(e->n, e->stamp, label);
      FILE_REFLINK_TRYV(core_->link_file(h, e->file(p()), pin));
      // A pin protects a revision from rotation: make it durable at once.
      if (auto r = core_->sync_dir(h, p().dir); !r) {
        (void)core_->remove_file(h, pin);
        return failure(r.error());
      }
      return success();
    });
  }
  template <class T, std::enable_if_t<std::is_null_pointer_v<T>, int> = 0>
  result<void> keep_revision(std::uint64_t, T) = delete;

  //! Remove the pin `label` (the revision stays, and rotates normally; a
  //! revision whose file is gone goes with its last pin).
  result<void> unkeep_revision(std::string_view label) noexcept {
    return run("unkeep_revision", [&](const handle& h) -> result<void> {
      FILE_REFLINK_TRYV(layout::validate_label(label));
      FILE_REFLINK_TRY(auto revs, list_revisions(h));
      FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, selector::label_of(label)));
      for (auto& pin : e->pins)
        if (pin.first == label) return remove_names(h, {pin.second});
      return failure(errc::revision_not_found, "label " + detail::q(std::string(label)));
    });
  }
  template <class T, std::enable_if_t<std::is_null_pointer_v<T>, int> = 0>
  result<void> unkeep_revision(T) = delete;

  //! Remove revision `n` and its pins.
  result<void> drop_revision(std::uint64_t n) noexcept {
    return run("drop_revision", [&](const handle& h) -> result<void> { return drop(h, selector::number(n)); });
  }

  //! Remove the revision pinned under `label`, and its pins.
  result<void> drop_revision(std::string_view label) noexcept {
    return run("drop_revision", [&](const handle& h) -> result<void> {
      FILE_REFLINK_TRYV(layout::validate_label(label));
      return drop(h, selector::label_of(label));
    });
  }
  template <class T, std::enable_if_t<std::is_null_pointer_v<T>, int> = 0>
  result<void> drop_revision(T) = delete;

  // ---- resize -----------------------------------------------------------------

  //! Grow the image: the running one (and tell the loop devices backed by
  //! it), or the committed one when stopped. Refused for a read-only volume
  //! and for shrinking, which would lose data.
  result<void> resize(std::uint64_t new_size) noexcept {
    return run("resize", [&](const handle& h) -> result<void> {
      if (!cfg().rw) return failure(errc::read_only, "");
      FILE_REFLINK_TRY(auto current, current_size(h));
      if (new_size < current)
        return failure(errc::shrink_refused, detail::bytes_text(new_size) + " is smaller than the image's " +
                                                 detail::bytes_text(current));
      FILE_REFLINK_TRY(auto dirty, stat_dirty(h, dirty_use::write));
      if (dirty) {
        if (new_size != dirty->size) {
          FILE_REFLINK_TRYV(core_->ops.resize(h, p().dirty(), new_size));
          core_->log(log_level::info, "Resized file: " + core_->abs(h, p().dirty()) + " to " +
                                          detail::bytes_text(new_size));
          if (cfg().save_on_stop) {
            // The VM will write beyond the old end: its size must be durable.
            if (auto r = core_->sync_file(h, p().dirty()); !r) {
              (void)core_->ops.resize(h, p().dirty(), dirty->size);
              return failure(r.error());
            }
          }
          auto notified = core_->ops.notify_resize(h, p().dirty());
          if (!notified) {
            // No loop device saw the new size, so no VM wrote beyond the old one.
            (void)core_->ops.resize(h, p().dirty(), dirty->size);
            return failure(notified.error());
          }
          unsigned told = notified.value();
          if (told) core_->log(log_level::info, "Told " + std::to_string(told) + " loop device(s) the new size of " +
                                                    core_->abs(h, p().dirty()));
        }
      } else if (kind() == volume_kind::origin) {
        FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
        if (clean && clean->size != new_size) {
          if (snapshots_disabled() && clean->nlink == 1) {
            // No clone is ever made: grow the one image in place (only
            // when no other name shares it: that name would grow too).
            FILE_REFLINK_TRYV(drop_precache(h));
            FILE_REFLINK_TRYV(core_->ops.resize(h, p().clean(), new_size));
            core_->log(log_level::info, "Resized file: " + core_->abs(h, p().clean()) + " to " +
                                            detail::bytes_text(new_size));
            if (auto r = core_->sync_file(h, p().clean()); !r) {
              (void)core_->ops.resize(h, p().clean(), clean->size);
              return failure(r.error());
            }
          } else {
            // The clean inode may be a revision's or a snapshot's too: never
            // change it in place; publish a resized clone instead.
            // (Snapshots disabled too, where another name shares it.)
            path tmp = layout::temp_name(p().clean());
            copy_options o = copy_opts();
            o.size = new_size;
            FILE_REFLINK_TRYV(core_->copy_file(h, p().clean(), h, tmp, o));
            FILE_REFLINK_TRYV(publish(h, tmp));
          }
        }
      }
      if (st_->size != new_size) {
        volume_config next = cfg();
        next.size = new_size;
        FILE_REFLINK_TRYV(core_->persist_config(h, next));
        st_->size = new_size;
      }
      return success();
    });
  }

  // ---- export / import -------------------------------------------------------

  //! A path to read the committed data from (the clean image). Committed
  //! images are replaced, never modified, so a reader that opened it keeps
  //! reading one consistent image. Pair with `export_end`. (`export` is a
  //! C++ keyword.)
  result<path> export_() noexcept {
    return run("export", [&](const handle& h) -> result<path> {
      FILE_REFLINK_TRYV(require_save_on_stop());
      FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
      if (!clean) return failure(errc::image_not_found, "missing image file " + core_->abs(h, p().clean()));
      FILE_REFLINK_TRY(path out, core_->absolute(h, p().clean()));
      st_->exports.insert(out.string());
      return out;
    });
  }

  //! The reader of an exported path is done.
  result<void> export_end(const path& exported) noexcept {
    return run("export_end", [&](const handle&) -> result<void> {
      auto it = st_->exports.find(exported.string());
      if (it == st_->exports.end()) return failure(errc::not_exported, detail::q(exported));
      st_->exports.erase(it);
      return success();
    });
  }

  //! A new sparse import file of `size` to write the volume's new data into;
  //! `import_data_end(true)` commits it, `import_data_end(false)` drops it.
  //! Nothing is flushed here: the import is garbage until its end commits it
  //! (commit flushes its data, then its name); a crash before that leaves an
  //! import file that the next start, remove or recover removes. Until the
  //! import ends, the volume stays locked against other pool objects and
  //! processes (they wait, or fail with `errc::volume_busy`), so that none
  //! takes the open import for an interrupted one.
  result<path> import_data(std::uint64_t size) noexcept {
    return run("import_data", [&](const handle& h) -> result<path> {
      FILE_REFLINK_TRYV(require_importable(h));
      FILE_REFLINK_TRYV(core_->ensure_dir(h, p().dir));
      FILE_REFLINK_TRYV(core_->remove_file(h, p().import()));
      FILE_REFLINK_TRY(path out, core_->absolute(h, p().import()));
      FILE_REFLINK_TRYV(core_->create_sparse(h, p().import(), size, create_mode::exclusive));
      st_->importing = true;
      // Other processes stay away from the volume until the import ends.
      core_->pin_byte(detail::lock_byte(vid()));
      return out;
    });
  }

  //! Commit the import (a new revision is made as at stop) or remove it.
  //! The commit's ordering is `commit`'s; dropping it is not flushed (an
  //! import name that a crash brings back is removed by the next start).
  result<void> import_data_end(bool success_) noexcept {
    return run("import_data_end", [&](const handle& h) -> result<void> {
      if (!st_->importing) return failure(errc::no_import_in_progress, "import_data was not called");
      // On failure the import stays open, its file untouched: the caller
      // can end it again, committing or dropping it.
      if (!success_) {
        FILE_REFLINK_TRYV(core_->remove_file(h, p().import()));
      } else {
        FILE_REFLINK_TRYV(commit(h, p().import(), superseded::rotate));
      }
      st_->importing = false;
      core_->unpin_byte(detail::lock_byte(vid()));
      return success();
    });
  }

  //! Copy another volume's committed data in (a clone where both sit on one
  //! filesystem, a sparse copy otherwise), then commit it. `progress`
  //! (default: the pool's) sees the copy and can cancel it; a cancelled or
  //! failed import leaves nothing behind.
  result<copy_method> import_volume(const Volume& src, progress_callback progress = nullptr) noexcept {
    // The source is held (shared) for the copy: nothing changes or takes
    // away its committed image meanwhile, in this process or another.
    other_volume from{src.core_.get(), src.st_, src.vid()};
    return run_with("import_volume", &from, [&](const handle& h) -> result<copy_method> {
      FILE_REFLINK_TRYV(require_importable(h));
      if (!src.cfg().save_on_stop)
        return failure(errc::not_save_on_stop, "source volume " + detail::q(src.vid()));
      // The source is read through one open of its clean image: a commit of
      // the source meanwhile replaces the name, not the bytes being read.
      FILE_REFLINK_TRY_CTX(auto src_h, "source pool " + detail::q(src.core_->cfg.name), src.core_->dir());
      path src_clean = src.p().clean();
      FILE_REFLINK_TRY(auto sst, src.core_->stat_image(src_h, src_clean));
      if (!sst)
        return failure(errc::source_not_found, "source volume " + detail::q(src.vid()) + " has no image file " +
                                                   src.core_->abs(src_h, src_clean));
      FILE_REFLINK_TRYV(core_->ensure_dir(h, p().dir));
      FILE_REFLINK_TRYV(core_->remove_file(h, p().import()));
      copy_options o = copy_opts();
      if (progress) o.progress = std::move(progress);
      // Not flushed here: commit's first step flushes the copy's data
      // before any name points to it.
      FILE_REFLINK_TRY(auto cr, core_->copy_file(src_h, src_clean, h, p().import(), o));
      auto r = commit(h, p().import(), superseded::rotate);
      if (!r) {
        (void)core_->remove_file(h, p().import());
        return failure(r.error());
      }
      return cr.method;
    });
  }

  // ---- discard / sparsify ----------------------------------------------------

  //! Punch a hole: in the running image, or (stopped) in a new committed
  //! image, the old one becoming a revision as at stop.
  result<void> discard(std::uint64_t offset, std::uint64_t length) noexcept {
    return run("discard", [&](const handle& h) -> result<void> {
      if (!cfg().rw) return failure(errc::read_only, "");
      FILE_REFLINK_TRY(auto current, current_size(h));
      if (offset > current || length > current - offset)
        return failure(errc::out_of_range, "range " + std::to_string(offset) + "+" + std::to_string(length) +
                                               " is beyond the image's " + detail::bytes_text(current));
      if (length == 0) return success();
      FILE_REFLINK_TRY(auto dirty, stat_dirty(h, dirty_use::write));
      if (dirty) return punch(h, p().dirty(), offset, length);
      if (!cfg().save_on_stop) return failure(errc::volume_not_running, "a stopped volume without save_on_stop has no image");
      FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
      if (!clean) return failure(errc::image_not_found, "missing image file " + core_->abs(h, p().clean()));
      if (snapshots_disabled() && clean->nlink == 1) {
        // The committed image itself, in place: flushed as sparsify and
        // resize flush it, or a crash after success brings the data back.
        FILE_REFLINK_TRYV(drop_precache(h));
        FILE_REFLINK_TRYV(punch(h, p().clean(), offset, length));
        return core_->sync_file(h, p().clean());
      }
      path tmp = layout::temp_name(p().clean());
      FILE_REFLINK_TRYV(core_->copy_file(h, p().clean(), h, tmp, copy_opts()));
      if (auto r = punch(h, tmp, offset, length); !r) {
        (void)core_->remove_file(h, tmp);
        return r;
      }
      // Snapshots disabled (the image has another name): the punched copy
      // replaces it, as the in-place punch would, without a revision.
      auto r = commit(h, tmp, snapshots_disabled() ? superseded::drop : superseded::rotate);
      if (!r) (void)core_->remove_file(h, tmp);
      return r;
    });
  }

  //! Punch holes where the committed image's data is all zeros; returns the
  //! bytes deallocated. The bytes read stay the same, so no revision is made.
  //! Refused while running: the VM could write between the read and the punch.
  result<std::uint64_t> sparsify() noexcept {
    return run("sparsify", [&](const handle& h) -> result<std::uint64_t> {
      if (!cfg().save_on_stop) return failure(errc::not_save_on_stop, "");
      FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
      if (dirty) return failure(errc::volume_dirty, "the VM could write between the read and the punch");
      FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
      if (!clean) return failure(errc::image_not_found, "missing image file " + core_->abs(h, p().clean()));
      if (snapshots_disabled() && clean->nlink == 1) {
        FILE_REFLINK_TRYV(drop_precache(h));
        FILE_REFLINK_TRY(auto freed, punch_zeros(h, p().clean()));
        if (freed) FILE_REFLINK_TRYV(core_->sync_file(h, p().clean()));
        return freed;
      }
      path tmp = layout::temp_name(p().clean());
      FILE_REFLINK_TRYV(core_->copy_file(h, p().clean(), h, tmp, copy_opts()));
      auto freed = punch_zeros(h, tmp);
      if (!freed || freed.value() == 0) {
        (void)core_->remove_file(h, tmp);
        return freed;
      }
      if (auto r = publish(h, tmp); !r) return failure(r.error());
      return freed.value();
    });
  }

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
                              lock_mode mode, const detail::deadline& until, hold& out) {
    const auto start = std::chrono::steady_clock::now();
    if (st && !detail::lock_local(st->mu, mode, until, out.local))
      return failure(core_type::busy("volume " + detail::q(vid), std::chrono::steady_clock::now() - start));
    auto held = core.take(h, detail::lock_byte(vid), mode, until, [&] { return "volume " + detail::q(vid); });
    if (!held) return failure(std::move(held).error());
    out.file = std::move(held).value();
    return success();
  }

  //! Another volume an operation reads from (a source), held shared for the
  //! operation's duration so that nothing changes its committed image
  //! meanwhile (a start with snapshots disabled would hand it to a VM).
  struct other_volume {
    core_type* core;
    std::shared_ptr<detail::volume_state> st;  //!< null: not registered in that pool object
    std::string vid;
  };

  //! Volume `vid` of `core`, with its state where that pool object has one.
  static other_volume registered(core_type& core, const std::string& vid) {
    other_volume o{&core, nullptr, vid};
    std::lock_guard<std::mutex> lk(core.mu);
    if (auto it = core.volumes.find(vid); it != core.volumes.end()) o.st = it->second;
    return o;
  }

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
  result<void> follow_catalog(const handle& h, lock_mode mode) {
    if (st_->removed) return failure(errc::volume_removed, "");
    if (!core_->cfg.catalog || mode != lock_mode::exclusive) return success();
    FILE_REFLINK_TRY(auto look, core_->catalog_entry(h, vid()));
    if (look.unchanged) return success();
    if (!look.entry) {
      st_->removed = true;
      std::lock_guard<std::mutex> lk(core_->mu);
      auto it = core_->volumes.find(vid());
      if (it != core_->volumes.end() && it->second == st_) core_->volumes.erase(it);
      return failure(errc::volume_removed, "the pool's catalog no longer has it (removed by another process)");
    }
    volume_config now = cfg();
    now.size = st_->size;
    if (!detail::same_config(now, *look.entry)) {
      st_->size = look.entry->size;
      st_->set_config(std::move(*look.entry));
    }
    return success();
  }

  //! `run` for a query: it shares the volume's lock with other queries.
  template <class F>
  auto query(const char* op, F&& f) noexcept -> decltype(f(std::declval<const handle&>())) {
    return run(op, std::forward<F>(f), lock_mode::shared);
  }

  copy_options copy_opts() const {
    copy_options o;
    if (core_->cfg.progress) {
      auto cb = core_->cfg.progress;
      std::string v = vid();
      o.progress = [cb, v](std::uint64_t done, std::uint64_t total) { return cb(v, done, total); };
    }
    return o;
  }

  result<void> require_save_on_stop() const {
    if (!cfg().save_on_stop)
      return failure(errc::not_save_on_stop, "");
    return success();
  }

  result<void> require_importable(const handle& h) {
    FILE_REFLINK_TRYV(require_save_on_stop());
    if (st_->importing) return failure(errc::import_in_progress, "");
    FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
    if (dirty) return failure(errc::volume_dirty, "");
    return success();
  }

  //! The dirty image, if any. To be written (handed to a VM by start, grown
  //! by resize, punched by discard) it must be a file with one name: a
  //! running image never shares its inode (SPEC "Shared inodes"), and
  //! another name means a file that is not ours, which the write would
  //! change too. Taking it back (stop) writes nothing and is allowed.
  enum class dirty_use : std::uint8_t { write, take };
  result<std::optional<file_stat>> stat_dirty(const handle& h, dirty_use use) {
    FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
    if (dirty && dirty->nlink > 1 && use == dirty_use::write)
      return failure(errc::unexpected_file_type,
                     core_->abs(h, p().dirty()) + " has " + std::to_string(dirty->nlink) +
                         " names: another file shares it, so writing into it would change that file too; "
                         "refusing to use it (stop the volume to commit it, or remove the other name)");
    return dirty;
  }

  result<std::uint64_t> current_size(const handle& h) {
    FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
    if (dirty) return dirty->size;
    if (cfg().save_on_stop) {  // an origin-snapshot commits its own image too
      FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
      if (clean) return clean->size;
    }
    return st_->size;
  }

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
  result<rev_list> list_revisions(const handle& h) {
    FILE_REFLINK_TRY(auto entries, core_->list_if(h, p().dir));
    rev_list out;
    const std::string prefix = p().base + ".img.";  // every revision's and pin's name starts so
    for (const dir_entry& e : entries) {
      if (e.type != file_type::regular || !layout::detail::starts_with(e.name, prefix)) continue;
      layout::name_info info = layout::classify(e.name);
      if (info.base != p().base) continue;
      if (info.kind != layout::file_kind::revision && info.kind != layout::file_kind::pin) continue;
      // A pin belongs to its revision by number and stamp: a Qubes driver
      // that reused the number made another revision.
      rev_entry& r = out[{info.revision, info.stamp}];
      r.n = info.revision;
      r.stamp = info.stamp;
      if (info.kind == layout::file_kind::revision)
        r.has_file = true;
      else
        r.pins.emplace_back(info.label, p().dir / e.name);
    }
    for (auto& [key, r] : out) std::sort(r.pins.begin(), r.pins.end());
    return out;
  }

  //! The revision pinned under `label`, or null.
  static const rev_entry* find_label(const rev_list& revs, std::string_view label) {
    for (auto& [key, r] : revs)
      for (auto& pin : r.pins)
        if (pin.first == label) return &r;
    return nullptr;
  }

  //! The revision `sel` names. A number names the revision file with that
  //! number, or, where no file has it, the one revision with that number
  //! that only pins keep; where two revisions would do, none is guessed.
  result<const rev_entry*> find_revision(const rev_list& revs, const selector& sel) const {
    switch (sel.how) {
      case selector::by::newest:
        if (revs.empty()) return failure(errc::revision_not_found, "the volume has no revisions");
        return &revs.rbegin()->second;
      case selector::by::label: {
        if (const rev_entry* e = find_label(revs, sel.label)) return e;
        return failure(errc::revision_not_found, "label " + detail::q(std::string(sel.label)) + available(revs));
      }
      case selector::by::number: break;
    }
    std::vector<const rev_entry*> all, with_file;
    for (auto it = revs.lower_bound({sel.n, std::string()}); it != revs.end() && it->first.first == sel.n; ++it) {
      all.push_back(&it->second);
      if (it->second.has_file) with_file.push_back(&it->second);
    }
    if (all.empty()) return failure(errc::revision_not_found, "revision " + std::to_string(sel.n) + available(revs));
    if (all.size() == 1) return all.front();
    if (with_file.size() == 1) return with_file.front();
    std::string names;
    for (const rev_entry* e : all) {
      names += names.empty() ? "" : ", ";
      names += e->name();
      for (auto& pin : e->pins) names += " [" + pin.first + "]";
    }
    return failure(errc::revision_ambiguous, "revision " + std::to_string(sel.n) + " names " +
                                                 std::to_string(all.size()) + " revisions: " + names +
                                                 "; name the one you mean by a label");
  }

  //! " (the volume has revisions 1, 2 and 3)" or " (the volume has no revisions)".
  static std::string available(const rev_list& revs) {
    if (revs.empty()) return " (the volume has no revisions)";
    std::string list;
    std::size_t i = 0;
    for (auto& [key, r] : revs) {
      if (i++) list += i == revs.size() ? " and " : ", ";
      list += std::to_string(r.n);
    }
    return std::string(" (the volume has revision") + (revs.size() > 1 ? "s " : " ") + list + ")";
  }

  //! The next revision number: one more than any revision or pin.
  static std::uint64_t next_number(const rev_list& revs) {
    return revs.empty() ? 1 : revs.rbegin()->first.first + 1;
  }

  //! Remove the oldest unpinned revisions beyond revisions_to_keep. Runs after
  //! a commit point and is not flushed: a prune lost in a crash is redone by
  //! the next one, and no revision the policy keeps is ever at risk.
  void prune(const handle& h) {
    auto revs = list_revisions(h);
    if (!revs) {
      core_->log(log_level::warning, "Could not list revisions of " + detail::q(vid()) + ": " + revs.error().message());
      return;
    }
    std::vector<const rev_entry*> unpinned;
    for (auto& [key, e] : revs.value())
      if (e.pins.empty() && e.has_file) unpinned.push_back(&e);
    std::uint64_t k = keep();
    for (std::size_t i = 0; i + k < unpinned.size(); ++i) {
      auto r = core_->remove_file(h, unpinned[i]->file(p()));
      if (!r) core_->log(log_level::warning, "Could not prune a revision: " + r.error().message());
    }
  }

  result<void> drop(const handle& h, const selector& sel) {
    FILE_REFLINK_TRY(auto revs, list_revisions(h));
    FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, sel));
    std::vector<path> names;
    for (auto& pin : e->pins) names.push_back(pin.second);
    if (e->has_file) names.push_back(p().revision(e->n, e->stamp));
    return remove_names(h, names);
  }

  // ---- the steps operations are made of ----------------------------------------

  //! Remove temporaries of this vid ("<its file>~<random>") and an
  //! interrupted import (unless one is open in this process). Returns what
  //! was removed. Not flushed: they are garbage either way.
  result<std::size_t> remove_incomplete(const handle& h) {
    FILE_REFLINK_TRY(auto entries, core_->list_if(h, p().dir));
    std::size_t removed = 0;
    for (const dir_entry& e : entries) {
      if (e.type == file_type::directory) continue;
      // Only a temporary ("<name>~<random>") or an import can be incomplete,
      // and only a name that starts with the vid's last component can be
      // this volume's: the rest are not classified at all.
      const bool candidate =
          e.name.find('~') != std::string::npos || layout::detail::ends_with(e.name, layout::import_suffix);
      if (!candidate || !layout::detail::starts_with(e.name, p().base)) continue;
      layout::name_info info = layout::classify(e.name);
      if (info.base != p().base) continue;
      bool stale_import = info.kind == layout::file_kind::import && !st_->importing;
      if (info.kind == layout::file_kind::temporary || stale_import) {
        FILE_REFLINK_TRY(bool r, core_->remove_file(h, p().dir / e.name));
        removed += r;
      }
    }
    return removed;
  }

  //! Remove every file of the vid (see `remove_names`), an import this
  //! process has open included.
  result<void> remove_all_files(const handle& h) {
    FILE_REFLINK_TRYV(remove_incomplete(h));
    FILE_REFLINK_TRY(auto entries, core_->list_if(h, p().dir));
    std::vector<path> names;
    for (const dir_entry& e : entries) {
      if (e.type == file_type::directory) continue;
      layout::name_info info = layout::classify(e.name);
      if (info.base != p().base || info.kind == layout::file_kind::foreign) continue;
      names.push_back(p().dir / e.name);
    }
    FILE_REFLINK_TRYV(remove_names(h, names));
    if (st_->importing) {  // an import this process had open went with the rest
      st_->importing = false;
      core_->unpin_byte(detail::lock_byte(vid()));
    }
    return success();
  }

  //! Before the committed image changes in place (snapshots disabled): a
  //! precache (another program's, or one from before snapshots were
  //! disabled) goes, durably. Its mtime and size cannot tell it from the
  //! changed image where the clock did not move, and a later start with
  //! snapshots enabled would hand it to the VM.
  result<void> drop_precache(const handle& h) {
    FILE_REFLINK_TRY(auto pre, core_->stat_if(h, p().precache()));
    if (!pre) return success();
    return remove_names(h, {p().precache()});
  }

  //! Remove files of this volume so that a failure loses nothing. Phase 1
  //! renames each to a temporary name and flushes the directory: that flush
  //! is the commit point (the files are gone for good: a temporary is
  //! garbage to every reader and to recover); a failure before it puts every
  //! name back. Phase 2 removes the temporaries, unflushed; a failure there
  //! only warns and leaves a temporary that the next start, remove or
  //! recover of the vid removes.
  result<void> remove_names(const handle& h, const std::vector<path>& names) {
    if (names.empty()) return success();
    std::vector<std::pair<path, path>> moved;
    auto undo = [&] {
      for (auto it = moved.rbegin(); it != moved.rend(); ++it) (void)core_->rename_file(h, it->second, it->first);
    };
    for (const path& from : names) {
      path to = layout::temp_name(from);
      auto r = core_->rename_file(h, from, to);
      if (!r) return undo(), failure(r.error());
      moved.emplace_back(from, to);
    }
    if (auto r = core_->sync_dir(h, p().dir); !r) return undo(), failure(r.error());
    for (auto& m : moved) drop_temporary(h, m.second);
    return success();
  }

  //! Remove a temporary after the commit point of an operation, which has
  //! succeeded whatever happens here: a failure is a warning, and the next
  //! start, remove or recover of the vid removes what is left.
  void drop_temporary(const handle& h, const path& rel) {
    auto r = core_->remove_file(h, rel);
    if (!r)
      core_->log(log_level::warning, "Could not remove temporary file " + core_->abs(h, rel) + " (the next start, "
                                     "remove or recover removes it): " + r.error().message());
  }

  //! The source's clean image, checked: it exists and is a regular file; a
  //! source running with snapshots disabled has only a dirty image.
  result<file_stat> source_clean(const handle& h) {
    layout::volume_paths sp = layout::paths_of(*cfg().source);
    FILE_REFLINK_TRY(auto st, core_->stat_image(h, sp.clean()));
    if (st) return *st;
    FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, sp.dirty()));
    if (dirty)
      return failure(errc::source_not_found,
                     "source volume " + detail::q(*cfg().source) +
                         " is running with snapshots disabled: its only image " + core_->abs(h, sp.dirty()) +
                         " is attached to its VM");
    return failure(errc::source_not_found, "source volume " + detail::q(*cfg().source) + ": missing image file " +
                                               core_->abs(h, sp.clean()));
  }

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
  result<void> start_renaming(const handle& h) {
    FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
    if (!clean) return failure(errc::image_not_found, "missing image file " + core_->abs(h, p().clean()));
    std::vector<path> gone;
    FILE_REFLINK_TRY(auto pre, core_->stat_if(h, p().precache()));
    if (pre) gone.push_back(p().precache());
    FILE_REFLINK_TRY(auto revs, list_revisions(h));
    for (auto& [key, e] : revs)
      if (e.has_file && e.pins.empty()) gone.push_back(p().revision(e.n, e.stamp));
    const bool shared = clean->nlink > 1;
    // The committed image always keeps a name of its own: with a shared
    // image, the copy is the running image before the clean name goes (a
    // crash between the two leaves a running volume with a stale clean
    // image, which its stop replaces).
    path copy;           // the copy, until it is the running image
    bool copied = false; // the running image is the copy
    bool renamed = false;
    std::vector<std::pair<path, path>> moved;
    auto undo = [&] {
      // Names come back first: a committed image is never left with only a
      // temporary name, whatever part of this fails too.
      if (renamed) (void)core_->rename_file(h, p().dirty(), p().clean());
      for (auto it = moved.rbegin(); it != moved.rend(); ++it) (void)core_->rename_file(h, it->second, it->first);
      if (!copy.empty()) (void)core_->remove_file(h, copy);
      if (copied) (void)core_->remove_file(h, p().dirty());
    };
    if (shared) {
      copy = layout::temp_name(p().dirty());
      if (auto r = core_->copy_file(h, p().clean(), h, copy, copy_opts()); !r) return copy.clear(), failure(r.error());
      if (auto r = core_->sync_file(h, copy); !r) return undo(), failure(r.error());
      if (auto r = core_->rename_file(h, copy, p().dirty()); !r) return undo(), failure(r.error());
      copy.clear();
      copied = true;
      gone.push_back(p().clean());
    }
    for (const path& from : gone) {
      path to = layout::temp_name(from);
      if (auto r = core_->rename_file(h, from, to); !r) return undo(), failure(r.error());
      moved.emplace_back(from, to);
    }
    if (!shared) {
      if (auto r = core_->rename_file(h, p().clean(), p().dirty()); !r) return undo(), failure(r.error());
      renamed = true;
    }
    if (auto r = core_->sync_dir(h, p().dir); !r) return undo(), failure(r.error());
    for (auto& m : moved) drop_temporary(h, m.second);
    return success();
  }

  //! snap_on_start: our clean name becomes a hard link to the source's clean
  //! image (is_outdated compares the inodes later), then a clone of it runs.
  result<void> start_from_source(const handle& h) {
    FILE_REFLINK_TRY(auto src_st, source_clean(h));
    layout::volume_paths sp = layout::paths_of(*cfg().source);
    FILE_REFLINK_TRYV(core_->ensure_dir(h, p().dir));
    // An old clean name (an origin-snapshot's committed image, or a link a
    // crash left) keeps a second name until the start succeeded, and is
    // replaced by one rename: the clean name is never missing, even after a
    // crash that kept only some of these steps (it used to be renamed aside,
    // and such a crash lost an origin-snapshot's committed image).
    FILE_REFLINK_TRY(auto old_clean, core_->stat_image(h, p().clean()));
    const bool current = old_clean && old_clean->ino == src_st.ino && old_clean->dev == src_st.dev;
    path saved, link;
    bool replaced = false;
    auto undo = [&] {
      if (replaced) {
        if (!saved.empty()) (void)core_->rename_file(h, saved, p().clean());
        else (void)core_->remove_file(h, p().clean());
      } else {
        if (!saved.empty()) (void)core_->remove_file(h, saved);
        if (!link.empty()) (void)core_->remove_file(h, link);
      }
    };
    if (!current) {
      if (old_clean) {
        saved = layout::temp_name(p().clean());
        FILE_REFLINK_TRYV(core_->link_file(h, p().clean(), saved));
      }
      link = layout::temp_name(p().clean());
      if (auto r = core_->link_file(h, sp.clean(), link); !r) return link.clear(), undo(), failure(r.error());
      if (auto r = core_->rename_file(h, link, p().clean()); !r) return undo(), failure(r.error());
      replaced = true;
    }
    if (cfg().save_on_stop) {
      // origin-snapshot: the VM's data is kept at stop, so the image is made
      // durable before the VM runs.
      if (auto r = clone_durably(h, p().clean(), p().dirty()); !r) return undo(), failure(r.error());
    } else {
      // snapshot: discarded at stop and after a crash; nothing to flush. The
      // clone replaces an old dirty image (a crashed VM's) by a rename, so a
      // failure leaves that as it was.
      path tmp = layout::temp_name(p().dirty());
      if (auto r = core_->copy_file(h, p().clean(), h, tmp, copy_opts()); !r) return undo(), failure(r.error());
      if (auto r = core_->rename_file(h, tmp, p().dirty()); !r) {
        (void)core_->remove_file(h, tmp);
        return undo(), failure(r.error());
      }
    }
    if (!saved.empty()) drop_temporary(h, saved);
    return success();
  }

  //! Copy `src` to a temporary, flush it, rename it to `dst`, flush the
  //! directory: a durable image for a VM whose data is kept.
  result<void> clone_durably(const handle& h, const path& src, const path& dst) {
    path tmp = layout::temp_name(dst);
    FILE_REFLINK_TRYV(core_->copy_file(h, src, h, tmp, copy_opts()));
    auto undo = [&] { (void)core_->remove_file(h, tmp); };
    if (auto r = core_->sync_file(h, tmp); !r) return undo(), failure(r.error());
    if (auto r = core_->rename_file(h, tmp, dst); !r) return undo(), failure(r.error());
    if (auto r = core_->sync_dir(h, p().dir); !r) {
      (void)core_->remove_file(h, dst);
      return failure(r.error());
    }
    return success();
  }

  //! origin: one rename of a current precache, else a clone of the clean image.
  result<void> start_origin(const handle& h) {
    FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
    if (!clean) return failure(errc::image_not_found, "missing image file " + core_->abs(h, p().clean()));
    auto pre = core_->stat_if(h, p().precache());
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
        FILE_REFLINK_TRYV(core_->rename_file(h, p().precache(), p().dirty()));
        if (auto r = core_->sync_dir(h, p().dir); !r) {
          (void)core_->rename_file(h, p().dirty(), p().precache());
          return failure(r.error());
        }
        return success();
      }
    }
    FILE_REFLINK_TRYV(clone_durably(h, p().clean(), p().dirty()));
    if (have_precache) {
      // Removed only now that start succeeded, so a failed start changes nothing.
      if (core_->remove_file(h, p().precache()))
        core_->log(log_level::warning, "Removed stale file: " + core_->abs(h, p().precache()));
    }
    return success();
  }

  //! volatile: a fresh sparse image, renamed over whatever a crash left
  //! (never truncated in place: an old dirty name may be a hard link to a
  //! file that is not this volume's). Discarded at stop and after a crash:
  //! nothing to flush.
  result<void> start_volatile(const handle& h) {
    FILE_REFLINK_TRYV(core_->ensure_dir(h, p().dir));
    path tmp = layout::temp_name(p().dirty());
    FILE_REFLINK_TRYV(core_->create_sparse(h, tmp, st_->size, create_mode::exclusive));
    if (auto r = core_->rename_file(h, tmp, p().dirty()); !r) {
      (void)core_->remove_file(h, tmp);
      return failure(r.error());
    }
    return success();
  }

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
  result<bool> may_link(const handle& h, const file_stat& clean) {
    if (clean.nlink <= 1) return true;
    std::vector<layout::volume_paths> users;
    {
      std::lock_guard<std::mutex> lk(core_->mu);  // after the volume's own lock, as everywhere
      for (auto& [other, st] : core_->volumes)
        if (auto c = st->config(); st != st_ && c->snap_on_start && c->source && *c->source == vid())
          users.push_back(st->paths);
    }
    std::uint64_t known = 1;
    for (const auto& u : users) {
      FILE_REFLINK_TRY(auto st, core_->stat_if(h, u.clean()));
      if (st && st->ino == clean.ino && st->dev == clean.dev) ++known;
    }
    return known == clean.nlink;
  }

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
  result<void> commit(const handle& h, const path& from, superseded what) {
    FILE_REFLINK_TRYV(core_->sync_file(h, from));
    FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
    FILE_REFLINK_TRY(auto pre, core_->stat_if(h, p().precache()));
    path stash;            // the precache, moved aside
    path hold;             // a second name of the old clean image: the revision itself when linked
    bool hold_is_revision = false;
    path copied, cloned;   // a cloned revision: its temporary name, then its name
    auto undo = [&] {
      if (!copied.empty()) (void)core_->remove_file(h, copied);
      if (!cloned.empty()) (void)core_->remove_file(h, cloned);
      if (!hold.empty()) (void)core_->remove_file(h, hold);  // the clean name still holds the image
      if (!stash.empty()) (void)core_->rename_file(h, stash, p().precache());
    };
    if (pre) {
      stash = layout::temp_name(p().precache());
      FILE_REFLINK_TRYV(core_->rename_file(h, p().precache(), stash));
    }
    if (clean) {
      const bool revision = what == superseded::keep || (what == superseded::rotate && keep() > 0);
      path name;
      bool link = true;
      if (revision) {
        auto revs = list_revisions(h);
        if (!revs) return undo(), failure(revs.error());
        if (!revs.value().empty() && revs.value().rbegin()->first.first == UINT64_MAX)
          return undo(), failure(errc::out_of_range, "revision numbers are exhausted (revision " +
                                                         std::to_string(UINT64_MAX) + " exists)");
        if (!layout::stamp_in_range(clean->mtime.sec))
          core_->log(log_level::warning, "The mtime of " + core_->abs(h, p().clean()) + " (" +
                                             std::to_string(clean->mtime.sec) +
                                             " s since 1970) is outside the years 0000-9999 that a revision's "
                                             "name can hold: the revision is stamped with the nearest one");
        name = p().revision(next_number(revs.value()), layout::format_timestamp(clean->mtime.sec));
        auto ok = may_link(h, *clean);
        if (!ok) return undo(), failure(ok.error());
        link = ok.value();
      }
      hold = link && revision ? name : layout::temp_name(p().clean());
      hold_is_revision = link && revision;
      if (auto r = core_->link_file(h, p().clean(), hold); !r) {
        hold.clear();
        return undo(), failure(r.error());
      }
      if (!link) {
        copied = layout::temp_name(name);
        if (auto r = core_->copy_file(h, p().clean(), h, copied, copy_opts()); !r) {
          copied.clear();
          return undo(), failure(r.error());
        }
        if (auto r = core_->sync_file(h, copied); !r) return undo(), failure(r.error());
        if (auto r = core_->rename_file(h, copied, name); !r) return undo(), failure(r.error());
        copied.clear();
        cloned = name;
      }
    }
    if (auto r = core_->rename_file(h, from, p().clean()); !r) return undo(), failure(r.error());
    if (auto r = core_->sync_dir(h, p().dir); !r) {
      // Put the old image back under its name, and `from` under its own.
      (void)core_->rename_file(h, p().clean(), from);
      if (!hold.empty()) (void)core_->rename_file(h, hold, p().clean());
      hold.clear();
      return undo(), failure(r.error());
    }
    if (!stash.empty()) drop_temporary(h, stash);
    if (!hold.empty() && !hold_is_revision) drop_temporary(h, hold);
    if (what == superseded::rotate) prune(h);
    refresh_precache(h);
    return success();
  }

  //! Publish a complete new image `tmp` whose bytes are the same as the
  //! clean image's (resize, sparsify): no revision, same ordering as commit.
  result<void> publish(const handle& h, const path& tmp) {
    auto r = commit(h, tmp, superseded::drop);
    if (!r) (void)core_->remove_file(h, tmp);
    return r;
  }

  //! Revert: the clean image becomes a new revision, the revision `sel`
  //! names becomes clean; a pinned revision is cloned, not consumed.
  result<void> revert_to(const handle& h, const selector& sel) {
    FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
    if (dirty) return failure(errc::volume_dirty, "");
    FILE_REFLINK_TRY(auto revs, list_revisions(h));
    FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, sel));
    path src = e->file(p());
    if (!e->pins.empty()) {
      // Keep the pinned revision: commit a durable clone of it instead.
      path tmp = layout::temp_name(p().clean());
      FILE_REFLINK_TRYV(core_->copy_file(h, src, h, tmp, copy_opts()));
      auto r = commit(h, tmp, superseded::keep);
      if (!r) (void)core_->remove_file(h, tmp);
      return r;
    }
    // The revision's data is durable already: committing it is renaming it.
    // (commit still fsyncs it first; with no dirty data that is a device
    // cache flush on XFS and ext4, nearly nothing on btrfs.)
    return commit(h, src, superseded::keep);
  }

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
  void refresh_precache(const handle& h) {
    if (snapshots_disabled() || !cfg().save_on_stop) return;
    auto clean = core_->stat_image(h, p().clean());
    if (!clean || !clean.value()) return;
    path tmp = layout::temp_name(p().precache());
    auto r = [&]() -> result<void> {
      FILE_REFLINK_TRYV(core_->copy_file(h, p().clean(), h, tmp, copy_opts()));
      FILE_REFLINK_TRYV(core_->ops.set_mtime(h, tmp, clean.value()->mtime));
      FILE_REFLINK_TRYV(core_->sync_file(h, tmp));
      return core_->rename_file(h, tmp, p().precache());
    }();
    if (!r) {
      (void)core_->remove_file(h, tmp);
      core_->log(log_level::warning, "Could not refresh the precache of " + detail::q(vid()) + ": " +
                                         r.error().message());
    }
  }

  result<void> punch(const handle& h, const path& rel, std::uint64_t offset, std::uint64_t length) {
    FILE_REFLINK_TRYV(core_->ops.punch_hole(h, rel, offset, length));
    core_->log(log_level::info, "Punched hole: " + core_->abs(h, rel) + " at " + std::to_string(offset) + "+" +
                                    std::to_string(length));
    return success();
  }

  //! Punch every all-zero 4 KiB block of `rel`'s data extents; returns the
  //! bytes deallocated (as seen by the allocated size).
  result<std::uint64_t> punch_zeros(const handle& h, const path& rel) {
    constexpr std::uint64_t block = 4096;
    constexpr std::size_t chunk = 1 << 20;
    FILE_REFLINK_TRY(auto before, core_->ops.stat(h, rel));
    FILE_REFLINK_TRY(auto ext, core_->ops.extents(h, rel));
    std::vector<char> buf(chunk);
    std::uint64_t run_start = 0, run_len = 0;
    auto flush_run = [&]() -> result<void> {
      if (run_len) FILE_REFLINK_TRYV(core_->ops.punch_hole(h, rel, run_start, run_len));
      run_len = 0;
      return success();
    };
    for (const extent& e : ext) {
      std::uint64_t end = std::min(e.logical + e.length, before.size);
      for (std::uint64_t off = e.logical; off < end;) {
        std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, end - off));
        FILE_REFLINK_TRY(std::size_t got, core_->ops.read(h, rel, off, buf.data(), want));
        if (got == 0) break;
        for (std::size_t b = 0; b < got; b += block) {
          std::size_t len = std::min<std::size_t>(block, got - b);
          bool zero = len == block && std::all_of(buf.data() + b, buf.data() + b + len, [](char c) { return c == 0; });
          std::uint64_t at = off + b;
          if (zero && at % block == 0) {
            if (run_len && run_start + run_len == at) {
              run_len += block;
            } else {
              FILE_REFLINK_TRYV(flush_run());
              run_start = at;
              run_len = block;
            }
          }
        }
        off += got;
      }
    }
    FILE_REFLINK_TRYV(flush_run());
    FILE_REFLINK_TRY(auto after, core_->ops.stat(h, rel));
    std::uint64_t freed = before.allocated > after.allocated ? before.allocated - after.allocated : 0;
    if (freed)
      core_->log(log_level::info, "Sparsified file: " + core_->abs(h, rel) + " (" + detail::bytes_text(freed) +
                                      " deallocated)");
    return freed;
  }


  std::shared_ptr<core_type> core_;
  std::shared_ptr<detail::volume_state> st_;
};

}  // namespace file_reflink
