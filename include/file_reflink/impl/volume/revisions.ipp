// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): revisions and pins
//! on disk: listed, pinned, dropped, pruned, reverted to. Included by
//! `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::revisions() -> result<revision_map> {
  FILE_REFLINK_TRY(auto revs, list_revisions());
  revision_map out;
  for (auto& [key, e] : revs) out.emplace_hint(out.end(), e.n, e.info());  // equal numbers stay in stamp order
  return out;
}

template <class FsOps>
auto volume_step<FsOps>::list_revisions() -> result<rev_list> {
  FILE_REFLINK_TRY(auto entries, core.list_if(h, p().dir));
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
auto volume_step<FsOps>::keep_revision(std::uint64_t n, std::string_view label) -> result<void> {
  FILE_REFLINK_TRYV(layout::validate_label(label));
  FILE_REFLINK_TRY(auto revs, list_revisions());
  FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, selector::number(n)));
  if (const rev_entry* other = find_label(revs, label)) {
    if (other == e) return success();
    return failure(errc::invalid_revision_label,
                   "label " + q(std::string(label)) + " already pins revision " + other->name());
  }
  path pin = p().pin(e->n, e->stamp, label);
  FILE_REFLINK_TRYV(core.link_file(h, e->file(p()), pin));
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, pin); });
  // A pin protects a revision from rotation: make it durable at once.
  FILE_REFLINK_TRYV(core.sync_dir(h, p().dir));
  undo.commit();
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::unkeep_revision(std::string_view label) -> result<void> {
  FILE_REFLINK_TRYV(layout::validate_label(label));
  FILE_REFLINK_TRY(auto revs, list_revisions());
  FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, selector::label_of(label)));
  for (auto& pin : e->pins)
    if (pin.first == label) return remove_names({pin.second});
  return failure(errc::revision_not_found, "label " + q(std::string(label)));
}

template <class FsOps>
auto volume_step<FsOps>::drop(const selector& sel) -> result<void> {
  FILE_REFLINK_TRY(auto revs, list_revisions());
  FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, sel));
  std::vector<path> names;
  for (auto& pin : e->pins) names.push_back(pin.second);
  if (e->has_file) names.push_back(p().revision(e->n, e->stamp));
  return remove_names(names);
}

template <class FsOps>
void volume_step<FsOps>::prune() {
  auto revs = list_revisions();
  if (!revs) {
    core.log(log_level::warning, "Could not list revisions of " + q(vid()) + ": " + revs.error().message());
    return;
  }
  std::vector<const rev_entry*> unpinned;
  for (auto& [key, e] : revs.value())
    if (e.pins.empty() && e.has_file) unpinned.push_back(&e);
  std::uint64_t k = keep();
  for (std::size_t i = 0; i + k < unpinned.size(); ++i) {
    auto r = core.remove_file(h, unpinned[i]->file(p()));
    if (!r) core.log(log_level::warning, "Could not prune a revision: " + r.error().message());
  }
}

template <class FsOps>
auto volume_step<FsOps>::revert_to(const selector& sel) -> result<void> {
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (dirty) return failure(errc::volume_dirty, "");
  FILE_REFLINK_TRY(auto revs, list_revisions());
  FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, sel));
  path src = e->file(p());
  if (!e->pins.empty()) {
    // Keep the pinned revision: commit a durable clone of it instead.
    path tmp = layout::temp_name(p().clean());
    FILE_REFLINK_TRYV(core.copy_file(h, src, h, tmp, copy_opts()));
    undo_stack undo;
    undo.push([&] { (void)core.remove_file(h, tmp); });
    FILE_REFLINK_TRYV(commit(tmp, superseded::keep));
    undo.commit();
    return success();
  }
  // The revision's data is durable already: committing it is renaming it.
  // (commit still fsyncs it first; with no dirty data that is a device
  // cache flush on XFS and ext4, nearly nothing on btrfs.)
  return commit(src, superseded::keep);
}

}  // namespace detail
}  // namespace file_reflink
