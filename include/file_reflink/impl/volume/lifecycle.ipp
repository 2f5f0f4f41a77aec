// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): create, verify,
//! remove and update: a volume's files made, checked and removed, its
//! configuration changed. Included by `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::create() -> result<void> {
  FILE_REFLINK_TRYV(remove_all_files());
  if (kind() != volume_kind::origin) return success();
  FILE_REFLINK_TRYV(core.ensure_dir(h, p().dir));
  path tmp = layout::temp_name(p().clean());
  FILE_REFLINK_TRYV(core.create_sparse(h, tmp, vol.size, create_mode::exclusive));
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, tmp); });
  // Even an empty image has a size that must survive: flush it before
  // its name, then the name (the commit point).
  FILE_REFLINK_TRYV(core.sync_file(h, tmp));
  FILE_REFLINK_TRYV(core.rename_file(h, tmp, p().clean()));
  undo.pop();
  undo.push([&] { (void)core.remove_file(h, p().clean()); });
  FILE_REFLINK_TRYV(core.sync_dir(h, p().dir));
  undo.commit();
  refresh_precache();
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::verify() -> result<void> {
  if (cfg().snap_on_start) {
    FILE_REFLINK_TRYV(source_clean());
    return success();
  }
  if (cfg().save_on_stop) {
    FILE_REFLINK_TRY(auto st, core.stat_image(h, p().clean()));
    if (!st) {
      if (snapshots_disabled()) {
        FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
        if (dirty) return success();  // running: its only image is attached
      }
      return failure(errc::image_not_found, "missing image file " + core.abs(h, p().clean()));
    }
  }
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::remove(bool force) -> result<void> {
  if (!force) {
    FILE_REFLINK_TRY(auto dirty, core.stat_if(h, p().dirty()));
    if (dirty)
      return failure(errc::volume_running,
                     "its running image " + core.abs(h, p().dirty()) +
                         " exists (a VM may have it attached, or crashed with data not yet committed): stop "
                         "the volume first, or force the removal");
    std::string users;
    {
      std::lock_guard<std::mutex> lk(core.mu);  // after the volume's own lock, as everywhere
      for (auto& [other, st] : core.volumes)
        if (auto c = st->config(); st.get() != &vol && c->source && *c->source == vid()) users += (users.empty() ? "" : ", ") + q(other);
    }
    if (!users.empty())
      return failure(errc::source_in_use, "volume(s) " + users +
                                              " start from it: remove them or change their source first, or "
                                              "force the removal");
  }
  FILE_REFLINK_TRYV(remove_all_files());
  (void)core.remove_empty_dir(h, p().dir);
  // Its files are gone first: a failure here leaves an entry that a
  // second remove takes away, never files that no entry names.
  FILE_REFLINK_TRYV(core.forget_config(h, vid()));
  vol.removed = true;
  std::lock_guard<std::mutex> lk(core.mu);
  auto it = core.volumes.find(vid());
  if (it != core.volumes.end() && it->second.get() == &vol) core.volumes.erase(it);
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::update(const volume_update& u) -> result<void> {
  const volume_config& was = cfg();
  volume_config next = was;
  if (u.revisions_to_keep) next.revisions_to_keep = *u.revisions_to_keep;
  if (u.rw) next.rw = *u.rw;
  if (u.save_on_stop) next.save_on_stop = *u.save_on_stop;
  if (u.snap_on_start) next.snap_on_start = *u.snap_on_start;
  if (u.source) next.source = *u.source;
  if (u.ephemeral) next.ephemeral = *u.ephemeral;
  FILE_REFLINK_TRYV(validate_config(next, core.cfg));
  auto disabled = [](const volume_config& c) {
    return c.revisions_to_keep.value_or(0) == -1 && c.kind() == volume_kind::origin;
  };
  const bool kind_changes = next.save_on_stop != was.save_on_stop || next.snap_on_start != was.snap_on_start;
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (dirty || vol.importing) {
    const char* what = kind_changes               ? "its kind"
                       : next.source != was.source ? "its source"
                       : next.rw != was.rw         ? "rw"
                       : disabled(next) != disabled(was) ? "whether snapshots are disabled"
                                                         : nullptr;
    if (what)
      return failure(errc::volume_running,
                     std::string("cannot change ") + what + " while " +
                         (dirty ? "its running image " + core.abs(h, p().dirty()) + " exists" : "an import is open") +
                         ": stop the volume first");
  }
  if (kind_changes && was.save_on_stop && (!next.save_on_stop || (next.snap_on_start && !was.snap_on_start))) {
    FILE_REFLINK_TRY(auto clean, core.stat_if(h, p().clean()));
    FILE_REFLINK_TRY(auto revs, list_revisions());
    if (clean || !revs.empty())
      return failure(errc::invalid_config,
                     std::string("as ") + to_string(next.kind()) + " it would no longer keep its committed image " +
                         core.abs(h, p().clean()) + " and revisions: remove the volume instead");
  }
  next.size = vol.size;
  FILE_REFLINK_TRYV(core.persist_config(h, next));
  vol.set_config(std::move(next));
  return success();
}

}  // namespace detail
}  // namespace file_reflink
