// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): the commit protocol:
//! a new committed image, the old one kept as a revision (a hard link where
//! that is safe, else a clone), the precache refreshed. Included by
//! `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::may_link(const file_stat& clean) -> result<bool> {
  if (clean.nlink <= 1) return true;
  std::vector<layout::volume_paths> users;
  {
    std::lock_guard<std::mutex> lk(core.mu);  // after the volume's own lock, as everywhere
    for (auto& [other, st] : core.volumes)
      if (auto c = st->config(); st.get() != &vol && c->snap_on_start && c->source && *c->source == vid())
        users.push_back(st->paths);
  }
  std::uint64_t known = 1;
  for (const auto& u : users) {
    FILE_REFLINK_TRY(auto st, core.stat_if(h, u.clean()));
    if (st && st->ino == clean.ino && st->dev == clean.dev) ++known;
  }
  return known == clean.nlink;
}

template <class FsOps>
auto volume_step<FsOps>::commit(const path& from, superseded what) -> result<void> {
  FILE_REFLINK_TRYV(core.sync_file(h, from));
  FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
  FILE_REFLINK_TRY(auto pre, core.stat_if(h, p().precache()));
  path stash;            // the precache, moved aside
  path hold;             // a second name of the old clean image: the revision itself when linked
  bool hold_is_revision = false;
  path copied;           // a cloned revision: its temporary name
  path name;             // the new revision's name
  undo_stack undo;
  if (pre) {
    stash = layout::temp_name(p().precache());
    FILE_REFLINK_TRYV(core.rename_file(h, p().precache(), stash));
    undo.push([&] { (void)core.rename_file(h, stash, p().precache()); });
  }
  if (clean) {
    const bool revision = what == superseded::keep || (what == superseded::rotate && keep() > 0);
    bool link = true;
    if (revision) {
      FILE_REFLINK_TRY(auto revs, list_revisions());
      if (!revs.empty() && revs.rbegin()->first.first == UINT64_MAX)
        return failure(errc::out_of_range, "revision numbers are exhausted (revision " +
                                               std::to_string(UINT64_MAX) + " exists)");
      if (!layout::stamp_in_range(clean->mtime.sec))
        core.log(log_level::warning, "The mtime of " + core.abs(h, p().clean()) + " (" +
                                         std::to_string(clean->mtime.sec) +
                                         " s since 1970) is outside the years 0000-9999 that a revision's "
                                         "name can hold: the revision is stamped with the nearest one");
      name = p().revision(next_number(revs), layout::format_timestamp(clean->mtime.sec));
      FILE_REFLINK_TRY(link, may_link(*clean));
    }
    hold = link && revision ? name : layout::temp_name(p().clean());
    hold_is_revision = link && revision;
    if (auto r = core.link_file(h, p().clean(), hold); !r) {
      hold.clear();
      return failure(r.error());
    }
    // The clean name still holds the image (until the sync_dir failure
    // below puts the hold back under it).
    undo.push([&] {
      if (!hold.empty()) (void)core.remove_file(h, hold);
    });
    if (!link) {
      copied = layout::temp_name(name);
      FILE_REFLINK_TRYV(core.copy_file(h, p().clean(), h, copied, copy_opts()));
      undo.push([&] { (void)core.remove_file(h, copied); });
      FILE_REFLINK_TRYV(core.sync_file(h, copied));
      FILE_REFLINK_TRYV(core.rename_file(h, copied, name));
      undo.pop();  // the clone is the revision now
      undo.push([&] { (void)core.remove_file(h, name); });
    }
  }
  FILE_REFLINK_TRYV(core.rename_file(h, from, p().clean()));
  undo.push([&] {
    // Put the old image back under its name, and `from` under its own.
    (void)core.rename_file(h, p().clean(), from);
    if (!hold.empty()) (void)core.rename_file(h, hold, p().clean());
    hold.clear();
  });
  FILE_REFLINK_TRYV(core.sync_dir(h, p().dir));
  undo.commit();
  if (!stash.empty()) drop_temporary(stash);
  if (!hold.empty() && !hold_is_revision) drop_temporary(hold);
  if (what == superseded::rotate) prune();
  refresh_precache();
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::publish(const path& tmp) -> result<void> {
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, tmp); });
  FILE_REFLINK_TRYV(commit(tmp, superseded::drop));
  undo.commit();
  return success();
}

template <class FsOps>
void volume_step<FsOps>::refresh_precache() {
  if (snapshots_disabled() || !cfg().save_on_stop) return;
  auto clean = core.stat_image(h, p().clean());
  if (!clean || !clean.value()) return;
  path tmp = layout::temp_name(p().precache());
  auto r = [&]() -> result<void> {
    FILE_REFLINK_TRYV(core.copy_file(h, p().clean(), h, tmp, copy_opts()));
    FILE_REFLINK_TRYV(core.set_mtime(h, tmp, clean.value()->mtime));
    FILE_REFLINK_TRYV(core.sync_file(h, tmp));
    return core.rename_file(h, tmp, p().precache());
  }();
  if (!r) {
    (void)core.remove_file(h, tmp);
    core.log(log_level::warning, "Could not refresh the precache of " + q(vid()) + ": " +
                                     r.error().message());
  }
}

}  // namespace detail
}  // namespace file_reflink
