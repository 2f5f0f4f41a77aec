// SPDX-License-Identifier: BSL-1.0
//! \file
//! The definitions of `Volume<FsOps>`'s member functions, declared in
//! `<file_reflink/volume.hpp>`. That header includes this file, unless
//! FILE_REFLINK_SEPARATE_COMPILATION is defined: then one source file of the
//! program includes `<file_reflink/impl/src.hpp>`, which includes this file
//! and instantiates `Volume` for `LinuxFsOps` and `MemoryFsOps` (a program
//! with a policy of its own includes this file where it uses that policy).
#pragma once

#include <file_reflink/volume.hpp>

namespace file_reflink {

template <class FsOps>
auto Volume<FsOps>::create() noexcept -> result<void> {
  return run("create", [&](const handle& h) -> result<void> {
    FILE_REFLINK_TRYV(remove_all_files(h));
    if (kind() != volume_kind::origin) return success();
    FILE_REFLINK_TRYV(core_->ensure_dir(h, p().dir));
    path tmp = layout::temp_name(p().clean());
    FILE_REFLINK_TRYV(core_->create_sparse(h, tmp, st_->size, create_mode::exclusive));
    detail::undo_stack undo;
    undo.push([&] { (void)core_->remove_file(h, tmp); });
    // Even an empty image has a size that must survive: flush it before
    // its name, then the name (the commit point).
    FILE_REFLINK_TRYV(core_->sync_file(h, tmp));
    FILE_REFLINK_TRYV(core_->rename_file(h, tmp, p().clean()));
    undo.pop();
    undo.push([&] { (void)core_->remove_file(h, p().clean()); });
    FILE_REFLINK_TRYV(core_->sync_dir(h, p().dir));
    undo.commit();
    refresh_precache(h);
    return success();
  });
}

template <class FsOps>
auto Volume<FsOps>::verify() noexcept -> result<void> {
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

template <class FsOps>
auto Volume<FsOps>::remove(bool force) noexcept -> result<void> {
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

template <class FsOps>
auto Volume<FsOps>::start() noexcept -> result<void> {
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

template <class FsOps>
auto Volume<FsOps>::stop() noexcept -> result<void> {
  return run("stop", [&](const handle& h) -> result<void> {
    if (cfg().save_on_stop) {
      FILE_REFLINK_TRY(auto dirty, stat_dirty(h, dirty_use::take));
      if (!dirty) return success();  // not running
      if (snapshots_disabled()) {
        // The VM's writes are durable before the image is called clean.
        FILE_REFLINK_TRYV(core_->sync_file(h, p().dirty()));
        FILE_REFLINK_TRYV(core_->rename_file(h, p().dirty(), p().clean()));
        detail::undo_stack undo;
        undo.push([&] { (void)core_->rename_file(h, p().clean(), p().dirty()); });
        FILE_REFLINK_TRYV(core_->sync_dir(h, p().dir));
        undo.commit();
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
    std::vector<path> moved;
    detail::undo_stack undo;
    for (const path& from : {p().dirty(), p().clean()}) {
      path to = layout::temp_name(from);
      auto r = core_->rename_file(h, from, to);
      if (!r && r.error() == std::errc::no_such_file_or_directory) continue;
      if (!r) return failure(r.error());
      undo.push([this, &h, from, to] { (void)core_->rename_file(h, to, from); });
      moved.push_back(to);
    }
    undo.commit();
    for (auto& m : moved) drop_temporary(h, m);
    return success();
  });
}

template <class FsOps>
auto Volume<FsOps>::state() noexcept -> result<volume_status> {
  return query("state", [&](const handle& h) -> result<volume_status> {
    FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
    if (!dirty) return volume_status::stopped;
    return cfg().save_on_stop ? volume_status::dirty : volume_status::running;
  });
}

template <class FsOps>
auto Volume<FsOps>::is_running() noexcept -> result<bool> {
  return query("is_running", [&](const handle& h) -> result<bool> {
    FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
    return dirty.has_value();
  });
}

template <class FsOps>
auto Volume<FsOps>::is_dirty() noexcept -> result<bool> {
  return query("is_dirty", [&](const handle& h) -> result<bool> {
    if (!cfg().save_on_stop) return false;
    FILE_REFLINK_TRY(auto st, core_->stat_image(h, p().dirty()));
    return st.has_value();
  });
}

template <class FsOps>
auto Volume<FsOps>::is_outdated() noexcept -> result<bool> {
  return query("is_outdated", [&](const handle& h) -> result<bool> {
    if (!cfg().snap_on_start) return false;
    FILE_REFLINK_TRY(auto own, core_->stat_if(h, p().clean()));
    if (!own) return false;
    FILE_REFLINK_TRY(auto src, core_->stat_if(h, layout::paths_of(*cfg().source).clean()));
    if (!src) return false;
    return own->ino != src->ino || own->dev != src->dev;
  });
}

template <class FsOps>
auto Volume<FsOps>::revisions() noexcept -> result<revision_map> {
  return query("revisions", [&](const handle& h) -> result<revision_map> {
    FILE_REFLINK_TRY(auto revs, list_revisions(h));
    revision_map out;
    for (auto& [key, e] : revs) out.emplace_hint(out.end(), e.n, e.info());  // equal numbers stay in stamp order
    return out;
  });
}

template <class FsOps>
auto Volume<FsOps>::size() noexcept -> result<std::uint64_t> {
  return query("size", [&](const handle& h) -> result<std::uint64_t> { return current_size(h); });
}

template <class FsOps>
auto Volume<FsOps>::usage() noexcept -> result<std::uint64_t> {
  return query("usage", [&](const handle& h) -> result<std::uint64_t> {
    FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
    if (dirty) return dirty->allocated;
    // A stopped snapshot or volatile volume has no image of its own.
    if (!cfg().save_on_stop) return std::uint64_t(0);
    FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
    return clean ? clean->allocated : 0;
  });
}

template <class FsOps>
auto Volume<FsOps>::space() noexcept -> result<volume_space> {
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

template <class FsOps>
auto Volume<FsOps>::block_device() noexcept -> result<block_device_info> {
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

template <class FsOps>
auto Volume<FsOps>::update(const volume_update& u) noexcept -> result<void> {
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

template <class FsOps>
auto Volume<FsOps>::revert() noexcept -> result<void> {
  return run("revert", [&](const handle& h) -> result<void> { return revert_to(h, selector{}); });
}

template <class FsOps>
auto Volume<FsOps>::revert(std::uint64_t n) noexcept -> result<void> {
  return run("revert", [&](const handle& h) -> result<void> { return revert_to(h, selector::number(n)); });
}

template <class FsOps>
auto Volume<FsOps>::revert(std::string_view label) noexcept -> result<void> {
  return run("revert", [&](const handle& h) -> result<void> {
    FILE_REFLINK_TRYV(layout::validate_label(label));
    return revert_to(h, selector::label_of(label));
  });
}

template <class FsOps>
auto Volume<FsOps>::keep_revision(std::uint64_t n, std::string_view label) noexcept -> result<void> {
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
    detail::undo_stack undo;
    undo.push([&] { (void)core_->remove_file(h, pin); });
    // A pin protects a revision from rotation: make it durable at once.
    FILE_REFLINK_TRYV(core_->sync_dir(h, p().dir));
    undo.commit();
    return success();
  });
}

template <class FsOps>
auto Volume<FsOps>::unkeep_revision(std::string_view label) noexcept -> result<void> {
  return run("unkeep_revision", [&](const handle& h) -> result<void> {
    FILE_REFLINK_TRYV(layout::validate_label(label));
    FILE_REFLINK_TRY(auto revs, list_revisions(h));
    FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, selector::label_of(label)));
    for (auto& pin : e->pins)
      if (pin.first == label) return remove_names(h, {pin.second});
    return failure(errc::revision_not_found, "label " + detail::q(std::string(label)));
  });
}

template <class FsOps>
auto Volume<FsOps>::drop_revision(std::uint64_t n) noexcept -> result<void> {
  return run("drop_revision", [&](const handle& h) -> result<void> { return drop(h, selector::number(n)); });
}

template <class FsOps>
auto Volume<FsOps>::drop_revision(std::string_view label) noexcept -> result<void> {
  return run("drop_revision", [&](const handle& h) -> result<void> {
    FILE_REFLINK_TRYV(layout::validate_label(label));
    return drop(h, selector::label_of(label));
  });
}

template <class FsOps>
auto Volume<FsOps>::resize(std::uint64_t new_size) noexcept -> result<void> {
  return run("resize", [&](const handle& h) -> result<void> {
    if (!cfg().rw) return failure(errc::read_only, "");
    FILE_REFLINK_TRY(auto current, current_size(h));
    if (new_size < current)
      return failure(errc::shrink_refused, detail::bytes_text(new_size) + " is smaller than the image's " +
                                               detail::bytes_text(current));
    FILE_REFLINK_TRY(auto dirty, stat_dirty(h, dirty_use::write));
    if (dirty) {
      if (new_size != dirty->size) {
        FILE_REFLINK_TRYV(core_->resize_file(h, p().dirty(), new_size));
        // Until the loop devices saw the new size, no VM wrote beyond the
        // old one: a failure gives the image its old size back.
        detail::undo_stack undo;
        undo.push([&] { core_->restore_size(h, p().dirty(), dirty->size); });
        // The VM will write beyond the old end: its size must be durable.
        if (cfg().save_on_stop) FILE_REFLINK_TRYV(core_->sync_file(h, p().dirty()));
        FILE_REFLINK_TRYV(core_->notify_resize(h, p().dirty()));
        undo.commit();
      }
    } else if (kind() == volume_kind::origin) {
      FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
      if (clean && clean->size != new_size) {
        if (snapshots_disabled() && clean->nlink == 1) {
          // No clone is ever made: grow the one image in place (only
          // when no other name shares it: that name would grow too).
          FILE_REFLINK_TRYV(drop_precache(h));
          FILE_REFLINK_TRYV(core_->resize_file(h, p().clean(), new_size));
          detail::undo_stack undo;
          undo.push([&] { core_->restore_size(h, p().clean(), clean->size); });
          FILE_REFLINK_TRYV(core_->sync_file(h, p().clean()));
          undo.commit();
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

template <class FsOps>
auto Volume<FsOps>::export_() noexcept -> result<path> {
  return run("export", [&](const handle& h) -> result<path> {
    FILE_REFLINK_TRYV(require_save_on_stop());
    FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
    if (!clean) return failure(errc::image_not_found, "missing image file " + core_->abs(h, p().clean()));
    FILE_REFLINK_TRY(path out, core_->absolute(h, p().clean()));
    st_->exports.insert(out.string());
    return out;
  });
}

template <class FsOps>
auto Volume<FsOps>::export_end(const path& exported) noexcept -> result<void> {
  return run("export_end", [&](const handle&) -> result<void> {
    auto it = st_->exports.find(exported.string());
    if (it == st_->exports.end()) return failure(errc::not_exported, detail::q(exported));
    st_->exports.erase(it);
    return success();
  });
}

template <class FsOps>
auto Volume<FsOps>::import_data(std::uint64_t size) noexcept -> result<path> {
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

template <class FsOps>
auto Volume<FsOps>::import_data_end(bool success_) noexcept -> result<void> {
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

template <class FsOps>
auto Volume<FsOps>::import_volume(const Volume& src, progress_callback progress) noexcept -> result<copy_method> {
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
    detail::undo_stack undo;
    undo.push([&] { (void)core_->remove_file(h, p().import()); });
    FILE_REFLINK_TRYV(commit(h, p().import(), superseded::rotate));
    undo.commit();
    return cr.method;
  });
}

template <class FsOps>
auto Volume<FsOps>::discard(std::uint64_t offset, std::uint64_t length) noexcept -> result<void> {
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
    detail::undo_stack undo;
    undo.push([&] { (void)core_->remove_file(h, tmp); });
    FILE_REFLINK_TRYV(punch(h, tmp, offset, length));
    // Snapshots disabled (the image has another name): the punched copy
    // replaces it, as the in-place punch would, without a revision.
    FILE_REFLINK_TRYV(commit(h, tmp, snapshots_disabled() ? superseded::drop : superseded::rotate));
    undo.commit();
    return success();
  });
}

template <class FsOps>
auto Volume<FsOps>::sparsify() noexcept -> result<std::uint64_t> {
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
    detail::undo_stack undo;
    undo.push([&] { (void)core_->remove_file(h, tmp); });
    FILE_REFLINK_TRY(auto freed, punch_zeros(h, tmp));
    if (freed == 0) return freed;  // nothing to publish: the copy goes
    undo.commit();                 // publish removes it on failure
    FILE_REFLINK_TRYV(publish(h, tmp));
    return freed;
  });
}

template <class FsOps>
auto Volume<FsOps>::acquire(core_type& core, const handle& h, detail::volume_state* st, const std::string& vid,
    lock_mode mode, const detail::deadline& until, hold& out)
    -> result<void> {
  const auto start = std::chrono::steady_clock::now();
  if (st && !detail::lock_local(st->mu, mode, until, out.local))
    return failure(core_type::busy("volume " + detail::q(vid), std::chrono::steady_clock::now() - start));
  auto held = core.take(h, detail::lock_byte(vid), mode, until, [&] { return "volume " + detail::q(vid); });
  if (!held) return failure(std::move(held).error());
  out.file = std::move(held).value();
  return success();
}

template <class FsOps>
auto Volume<FsOps>::registered(core_type& core, const std::string& vid) -> other_volume {
  other_volume o{&core, nullptr, vid};
  std::lock_guard<std::mutex> lk(core.mu);
  if (auto it = core.volumes.find(vid); it != core.volumes.end()) o.st = it->second;
  return o;
}

template <class FsOps>
auto Volume<FsOps>::follow_catalog(const handle& h, lock_mode mode) -> result<void> {
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

template <class FsOps>
auto Volume<FsOps>::copy_opts() const -> copy_options {
  copy_options o;
  if (core_->cfg.progress) {
    auto cb = core_->cfg.progress;
    std::string v = vid();
    o.progress = [cb, v](std::uint64_t done, std::uint64_t total) { return cb(v, done, total); };
  }
  return o;
}

template <class FsOps>
auto Volume<FsOps>::require_save_on_stop() const -> result<void> {
  if (!cfg().save_on_stop)
    return failure(errc::not_save_on_stop, "");
  return success();
}

template <class FsOps>
auto Volume<FsOps>::require_importable(const handle& h) -> result<void> {
  FILE_REFLINK_TRYV(require_save_on_stop());
  if (st_->importing) return failure(errc::import_in_progress, "");
  FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
  if (dirty) return failure(errc::volume_dirty, "");
  return success();
}

template <class FsOps>
auto Volume<FsOps>::stat_dirty(const handle& h, dirty_use use) -> result<std::optional<file_stat>> {
  FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
  if (dirty && dirty->nlink > 1 && use == dirty_use::write)
    return failure(errc::unexpected_file_type,
                   core_->abs(h, p().dirty()) + " has " + std::to_string(dirty->nlink) +
                       " names: another file shares it, so writing into it would change that file too; "
                       "refusing to use it (stop the volume to commit it, or remove the other name)");
  return dirty;
}

template <class FsOps>
auto Volume<FsOps>::current_size(const handle& h) -> result<std::uint64_t> {
  FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
  if (dirty) return dirty->size;
  if (cfg().save_on_stop) {  // an origin-snapshot commits its own image too
    FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
    if (clean) return clean->size;
  }
  return st_->size;
}

template <class FsOps>
auto Volume<FsOps>::list_revisions(const handle& h) -> result<rev_list> {
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

template <class FsOps>
auto Volume<FsOps>::find_label(const rev_list& revs, std::string_view label) -> const rev_entry* {
  for (auto& [key, r] : revs)
    for (auto& pin : r.pins)
      if (pin.first == label) return &r;
  return nullptr;
}

template <class FsOps>
auto Volume<FsOps>::find_revision(const rev_list& revs, const selector& sel) const -> result<const rev_entry*> {
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

template <class FsOps>
auto Volume<FsOps>::available(const rev_list& revs) -> std::string {
  if (revs.empty()) return " (the volume has no revisions)";
  std::string list;
  std::size_t i = 0;
  for (auto& [key, r] : revs) {
    if (i++) list += i == revs.size() ? " and " : ", ";
    list += std::to_string(r.n);
  }
  return std::string(" (the volume has revision") + (revs.size() > 1 ? "s " : " ") + list + ")";
}

template <class FsOps>
auto Volume<FsOps>::next_number(const rev_list& revs) -> std::uint64_t {
  return revs.empty() ? 1 : revs.rbegin()->first.first + 1;
}

template <class FsOps>
void Volume<FsOps>::prune(const handle& h) {
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

template <class FsOps>
auto Volume<FsOps>::drop(const handle& h, const selector& sel) -> result<void> {
  FILE_REFLINK_TRY(auto revs, list_revisions(h));
  FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, sel));
  std::vector<path> names;
  for (auto& pin : e->pins) names.push_back(pin.second);
  if (e->has_file) names.push_back(p().revision(e->n, e->stamp));
  return remove_names(h, names);
}

template <class FsOps>
auto Volume<FsOps>::remove_incomplete(const handle& h) -> result<std::size_t> {
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

template <class FsOps>
auto Volume<FsOps>::remove_all_files(const handle& h) -> result<void> {
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

template <class FsOps>
auto Volume<FsOps>::drop_precache(const handle& h) -> result<void> {
  FILE_REFLINK_TRY(auto pre, core_->stat_if(h, p().precache()));
  if (!pre) return success();
  return remove_names(h, {p().precache()});
}

template <class FsOps>
auto Volume<FsOps>::remove_names(const handle& h, const std::vector<path>& names) -> result<void> {
  if (names.empty()) return success();
  std::vector<path> moved;
  detail::undo_stack undo;
  for (const path& from : names) {
    path to = layout::temp_name(from);
    FILE_REFLINK_TRYV(core_->rename_file(h, from, to));
    undo.push([this, &h, from, to] { (void)core_->rename_file(h, to, from); });
    moved.push_back(to);
  }
  FILE_REFLINK_TRYV(core_->sync_dir(h, p().dir));
  undo.commit();
  for (auto& m : moved) drop_temporary(h, m);
  return success();
}

template <class FsOps>
void Volume<FsOps>::drop_temporary(const handle& h, const path& rel) {
  auto r = core_->remove_file(h, rel);
  if (!r)
    core_->log(log_level::warning, "Could not remove temporary file " + core_->abs(h, rel) + " (the next start, "
                                   "remove or recover removes it): " + r.error().message());
}

template <class FsOps>
auto Volume<FsOps>::source_clean(const handle& h) -> result<file_stat> {
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

template <class FsOps>
auto Volume<FsOps>::start_renaming(const handle& h) -> result<void> {
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
  // Undone newest first: names come back before the copy goes, so a
  // committed image is never left with only a temporary name, whatever part
  // of this fails too.
  path copy;  // the copy, until it is the running image
  std::vector<path> moved;
  detail::undo_stack undo;
  if (shared) {
    copy = layout::temp_name(p().dirty());
    FILE_REFLINK_TRYV(core_->copy_file(h, p().clean(), h, copy, copy_opts()));
    undo.push([&] { (void)core_->remove_file(h, copy); });
    FILE_REFLINK_TRYV(core_->sync_file(h, copy));
    FILE_REFLINK_TRYV(core_->rename_file(h, copy, p().dirty()));
    undo.pop();  // the running image is the copy
    undo.push([&] { (void)core_->remove_file(h, p().dirty()); });
    gone.push_back(p().clean());
  }
  for (const path& from : gone) {
    path to = layout::temp_name(from);
    FILE_REFLINK_TRYV(core_->rename_file(h, from, to));
    undo.push([this, &h, from, to] { (void)core_->rename_file(h, to, from); });
    moved.push_back(to);
  }
  if (!shared) {
    FILE_REFLINK_TRYV(core_->rename_file(h, p().clean(), p().dirty()));
    undo.push([&] { (void)core_->rename_file(h, p().dirty(), p().clean()); });
  }
  FILE_REFLINK_TRYV(core_->sync_dir(h, p().dir));
  undo.commit();
  for (auto& m : moved) drop_temporary(h, m);
  return success();
}

template <class FsOps>
auto Volume<FsOps>::start_from_source(const handle& h) -> result<void> {
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
  path saved, link, tmp;
  detail::undo_stack undo;
  if (!current) {
    if (old_clean) {
      saved = layout::temp_name(p().clean());
      FILE_REFLINK_TRYV(core_->link_file(h, p().clean(), saved));
      undo.push([&] { (void)core_->remove_file(h, saved); });
    }
    link = layout::temp_name(p().clean());
    FILE_REFLINK_TRYV(core_->link_file(h, sp.clean(), link));
    undo.pop();
    undo.push([&] {
      if (!saved.empty()) (void)core_->remove_file(h, saved);
      (void)core_->remove_file(h, link);
    });
    FILE_REFLINK_TRYV(core_->rename_file(h, link, p().clean()));
    undo.pop();  // the clean name is replaced: the old image comes back under it
    undo.push([&] {
      if (!saved.empty()) (void)core_->rename_file(h, saved, p().clean());
      else (void)core_->remove_file(h, p().clean());
    });
  }
  if (cfg().save_on_stop) {
    // origin-snapshot: the VM's data is kept at stop, so the image is made
    // durable before the VM runs.
    FILE_REFLINK_TRYV(clone_durably(h, p().clean(), p().dirty()));
  } else {
    // snapshot: discarded at stop and after a crash; nothing to flush. The
    // clone replaces an old dirty image (a crashed VM's) by a rename, so a
    // failure leaves that as it was.
    tmp = layout::temp_name(p().dirty());
    FILE_REFLINK_TRYV(core_->copy_file(h, p().clean(), h, tmp, copy_opts()));
    undo.push([&] { (void)core_->remove_file(h, tmp); });
    FILE_REFLINK_TRYV(core_->rename_file(h, tmp, p().dirty()));
  }
  undo.commit();
  if (!saved.empty()) drop_temporary(h, saved);
  return success();
}

template <class FsOps>
auto Volume<FsOps>::clone_durably(const handle& h, const path& src, const path& dst) -> result<void> {
  path tmp = layout::temp_name(dst);
  FILE_REFLINK_TRYV(core_->copy_file(h, src, h, tmp, copy_opts()));
  detail::undo_stack undo;
  undo.push([&] { (void)core_->remove_file(h, tmp); });
  FILE_REFLINK_TRYV(core_->sync_file(h, tmp));
  FILE_REFLINK_TRYV(core_->rename_file(h, tmp, dst));
  undo.pop();
  undo.push([&] { (void)core_->remove_file(h, dst); });
  FILE_REFLINK_TRYV(core_->sync_dir(h, p().dir));
  undo.commit();
  return success();
}

template <class FsOps>
auto Volume<FsOps>::start_origin(const handle& h) -> result<void> {
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
      detail::undo_stack undo;
      undo.push([&] { (void)core_->rename_file(h, p().dirty(), p().precache()); });
      FILE_REFLINK_TRYV(core_->sync_dir(h, p().dir));
      undo.commit();
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

template <class FsOps>
auto Volume<FsOps>::start_volatile(const handle& h) -> result<void> {
  FILE_REFLINK_TRYV(core_->ensure_dir(h, p().dir));
  path tmp = layout::temp_name(p().dirty());
  FILE_REFLINK_TRYV(core_->create_sparse(h, tmp, st_->size, create_mode::exclusive));
  detail::undo_stack undo;
  undo.push([&] { (void)core_->remove_file(h, tmp); });
  FILE_REFLINK_TRYV(core_->rename_file(h, tmp, p().dirty()));
  undo.commit();
  return success();
}

template <class FsOps>
auto Volume<FsOps>::may_link(const handle& h, const file_stat& clean) -> result<bool> {
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

template <class FsOps>
auto Volume<FsOps>::commit(const handle& h, const path& from, superseded what) -> result<void> {
  FILE_REFLINK_TRYV(core_->sync_file(h, from));
  FILE_REFLINK_TRY(auto clean, core_->stat_image(h, p().clean()));
  FILE_REFLINK_TRY(auto pre, core_->stat_if(h, p().precache()));
  path stash;            // the precache, moved aside
  path hold;             // a second name of the old clean image: the revision itself when linked
  bool hold_is_revision = false;
  path copied;           // a cloned revision: its temporary name
  path name;             // the new revision's name
  detail::undo_stack undo;
  if (pre) {
    stash = layout::temp_name(p().precache());
    FILE_REFLINK_TRYV(core_->rename_file(h, p().precache(), stash));
    undo.push([&] { (void)core_->rename_file(h, stash, p().precache()); });
  }
  if (clean) {
    const bool revision = what == superseded::keep || (what == superseded::rotate && keep() > 0);
    bool link = true;
    if (revision) {
      FILE_REFLINK_TRY(auto revs, list_revisions(h));
      if (!revs.empty() && revs.rbegin()->first.first == UINT64_MAX)
        return failure(errc::out_of_range, "revision numbers are exhausted (revision " +
                                               std::to_string(UINT64_MAX) + " exists)");
      if (!layout::stamp_in_range(clean->mtime.sec))
        core_->log(log_level::warning, "The mtime of " + core_->abs(h, p().clean()) + " (" +
                                           std::to_string(clean->mtime.sec) +
                                           " s since 1970) is outside the years 0000-9999 that a revision's "
                                           "name can hold: the revision is stamped with the nearest one");
      name = p().revision(next_number(revs), layout::format_timestamp(clean->mtime.sec));
      FILE_REFLINK_TRY(link, may_link(h, *clean));
    }
    hold = link && revision ? name : layout::temp_name(p().clean());
    hold_is_revision = link && revision;
    if (auto r = core_->link_file(h, p().clean(), hold); !r) {
      hold.clear();
      return failure(r.error());
    }
    // The clean name still holds the image (until the sync_dir failure
    // below puts the hold back under it).
    undo.push([&] {
      if (!hold.empty()) (void)core_->remove_file(h, hold);
    });
    if (!link) {
      copied = layout::temp_name(name);
      FILE_REFLINK_TRYV(core_->copy_file(h, p().clean(), h, copied, copy_opts()));
      undo.push([&] { (void)core_->remove_file(h, copied); });
      FILE_REFLINK_TRYV(core_->sync_file(h, copied));
      FILE_REFLINK_TRYV(core_->rename_file(h, copied, name));
      undo.pop();  // the clone is the revision now
      undo.push([&] { (void)core_->remove_file(h, name); });
    }
  }
  FILE_REFLINK_TRYV(core_->rename_file(h, from, p().clean()));
  undo.push([&] {
    // Put the old image back under its name, and `from` under its own.
    (void)core_->rename_file(h, p().clean(), from);
    if (!hold.empty()) (void)core_->rename_file(h, hold, p().clean());
    hold.clear();
  });
  FILE_REFLINK_TRYV(core_->sync_dir(h, p().dir));
  undo.commit();
  if (!stash.empty()) drop_temporary(h, stash);
  if (!hold.empty() && !hold_is_revision) drop_temporary(h, hold);
  if (what == superseded::rotate) prune(h);
  refresh_precache(h);
  return success();
}

template <class FsOps>
auto Volume<FsOps>::publish(const handle& h, const path& tmp) -> result<void> {
  detail::undo_stack undo;
  undo.push([&] { (void)core_->remove_file(h, tmp); });
  FILE_REFLINK_TRYV(commit(h, tmp, superseded::drop));
  undo.commit();
  return success();
}

template <class FsOps>
auto Volume<FsOps>::revert_to(const handle& h, const selector& sel) -> result<void> {
  FILE_REFLINK_TRY(auto dirty, core_->stat_image(h, p().dirty()));
  if (dirty) return failure(errc::volume_dirty, "");
  FILE_REFLINK_TRY(auto revs, list_revisions(h));
  FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, sel));
  path src = e->file(p());
  if (!e->pins.empty()) {
    // Keep the pinned revision: commit a durable clone of it instead.
    path tmp = layout::temp_name(p().clean());
    FILE_REFLINK_TRYV(core_->copy_file(h, src, h, tmp, copy_opts()));
    detail::undo_stack undo;
    undo.push([&] { (void)core_->remove_file(h, tmp); });
    FILE_REFLINK_TRYV(commit(h, tmp, superseded::keep));
    undo.commit();
    return success();
  }
  // The revision's data is durable already: committing it is renaming it.
  // (commit still fsyncs it first; with no dirty data that is a device
  // cache flush on XFS and ext4, nearly nothing on btrfs.)
  return commit(h, src, superseded::keep);
}

template <class FsOps>
void Volume<FsOps>::refresh_precache(const handle& h) {
  if (snapshots_disabled() || !cfg().save_on_stop) return;
  auto clean = core_->stat_image(h, p().clean());
  if (!clean || !clean.value()) return;
  path tmp = layout::temp_name(p().precache());
  auto r = [&]() -> result<void> {
    FILE_REFLINK_TRYV(core_->copy_file(h, p().clean(), h, tmp, copy_opts()));
    FILE_REFLINK_TRYV(core_->set_mtime(h, tmp, clean.value()->mtime));
    FILE_REFLINK_TRYV(core_->sync_file(h, tmp));
    return core_->rename_file(h, tmp, p().precache());
  }();
  if (!r) {
    (void)core_->remove_file(h, tmp);
    core_->log(log_level::warning, "Could not refresh the precache of " + detail::q(vid()) + ": " +
                                       r.error().message());
  }
}

template <class FsOps>
auto Volume<FsOps>::punch(const handle& h, const path& rel, std::uint64_t offset, std::uint64_t length)
    -> result<void> {
  return core_->punch_hole(h, rel, offset, length);
}

template <class FsOps>
auto Volume<FsOps>::punch_zeros(const handle& h, const path& rel) -> result<std::uint64_t> {
  constexpr std::uint64_t block = 4096;
  constexpr std::size_t chunk = 1 << 20;
  FILE_REFLINK_TRY(auto before, core_->stat_file(h, rel));
  FILE_REFLINK_TRY(auto ext, core_->extents_of(h, rel));
  std::vector<char> buf(chunk);
  std::uint64_t run_start = 0, run_len = 0;
  auto flush_run = [&]() -> result<void> {
    if (run_len) FILE_REFLINK_TRYV(core_->punch_hole(h, rel, run_start, run_len, false));
    run_len = 0;
    return success();
  };
  for (const extent& e : ext) {
    std::uint64_t end = std::min(e.logical + e.length, before.size);
    for (std::uint64_t off = e.logical; off < end;) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, end - off));
      FILE_REFLINK_TRY(std::size_t got, core_->read_at(h, rel, off, buf.data(), want));
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
  FILE_REFLINK_TRY(auto after, core_->stat_file(h, rel));
  std::uint64_t freed = before.allocated > after.allocated ? before.allocated - after.allocated : 0;
  if (freed)
    core_->log(log_level::info, "Sparsified file: " + core_->abs(h, rel) + " (" + detail::bytes_text(freed) +
                                    " deallocated)");
  return freed;
}

}  // namespace file_reflink
