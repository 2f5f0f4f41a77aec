// SPDX-License-Identifier: BSL-1.0
//! \file
//! `Volume::changed_ranges`: the images a caller names (the committed one,
//! a revision by number or label), and the ranges in which two of them may
//! differ (see `detail/changed_ranges.hpp`). Included by
//! `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/changes.hpp>
#include <file_reflink/detail/changed_ranges.hpp>
#include <file_reflink/detail/volume_step.hpp>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {

//! One image of the volume, found: its file, its stat, and what to call it.
struct image_found {
  path file;
  file_stat st;
  std::string text;                  //!< "the committed image" or "revision N (STAMP)"
  std::optional<rev_entry> revision;  //!< set for a revision
};

//! The image `ref` names, which must exist.
template <class FsOps>
result<image_found> find_image(volume_step<FsOps>& s, const image_ref& ref) {
  FILE_REFLINK_TRYV(s.require_save_on_stop());
  image_found out;
  if (ref.how == image_ref::by::committed) {
    FILE_REFLINK_TRY(auto st, s.core.stat_image(s.h, s.p().clean()));
    if (!st) return failure(errc::image_not_found, "missing image file " + s.core.abs(s.h, s.p().clean()));
    out.file = s.p().clean();
    out.st = *st;
    out.text = "the committed image";
    return out;
  }
  FILE_REFLINK_TRY(auto revs, s.list_revisions());
  selector sel = ref.how == image_ref::by::number ? selector::number(ref.number) : selector::label_of(ref.label);
  if (ref.how == image_ref::by::label) FILE_REFLINK_TRYV(layout::validate_label(ref.label));
  FILE_REFLINK_TRY(const rev_entry* e, find_revision(revs, sel));
  out.file = e->file(s.p());
  FILE_REFLINK_TRY(auto st, s.core.stat_image(s.h, out.file));
  if (!st) return failure(errc::revision_not_found, "missing revision file " + s.core.abs(s.h, out.file));
  out.st = *st;
  out.text = "revision " + e->name();
  out.revision = *e;
  return out;
}

//! The ranges in which `a` and `b` may differ: the extent maps first; where
//! the files share no storage and both hold data, the data is compared in
//! the ranges the maps could not vouch for.
template <class FsOps>
result<changed_ranges_result> changed_between(volume_step<FsOps>& s, const image_found& a, const image_found& b,
                                              const progress_callback& progress) {
  changed_ranges_result out;
  out.from_size = a.st.size;
  out.to_size = b.st.size;
  const std::uint64_t end = std::max(a.st.size, b.st.size);
  auto read_a = [&](std::uint64_t off, void* buf, std::size_t len) { return s.core.read_at(s.h, a.file, off, buf, len); };
  auto read_b = [&](std::uint64_t off, void* buf, std::size_t len) { return s.core.read_at(s.h, b.file, off, buf, len); };
  auto xa = s.core.storage_extents_of(s.h, a.file);
  auto xb = xa ? s.core.storage_extents_of(s.h, b.file) : result<std::vector<extent>>(std::vector<extent>());
  if ((!xa && xa.error() == std::errc::operation_not_supported) ||
      (!xb && xb.error() == std::errc::operation_not_supported)) {
    // No extent map here (tmpfs): the data segments say where either file
    // has data, and the data is compared there.
    FILE_REFLINK_TRY(auto sa, s.core.data_segments_of(s.h, a.file, a.st.size));
    FILE_REFLINK_TRY(auto sb, s.core.data_segments_of(s.h, b.file, b.st.size));
    std::vector<byte_range> all;
    for (const auto& x : sa) all.push_back(byte_range{x.offset, x.length});
    for (const auto& x : sb) all.push_back(byte_range{x.offset, x.length});
    std::sort(all.begin(), all.end(), [](const byte_range& x, const byte_range& y) { return x.offset < y.offset; });
    range_builder in_either;
    for (const auto& x : all) in_either.add(x.offset, x.offset + x.length);
    out.method = change_method::data_comparison;
    FILE_REFLINK_TRY(out.ranges, compare_data(in_either.take(), a.st.size, b.st.size, read_a, read_b, progress));
    return out;
  }
  FILE_REFLINK_TRYV(xa);
  FILE_REFLINK_TRYV(xb);
  std::vector<extent> ea = extents_within(std::move(xa).value(), a.st.size);
  // One file under two names (a pin, a revision linked to its image): one map.
  std::vector<extent> eb =
      a.st.ino == b.st.ino && a.st.dev == b.st.dev ? ea : extents_within(std::move(xb).value(), b.st.size);
  bool same_storage = false;
  std::vector<byte_range> candidates = extent_map_changes(ea, eb, end, &same_storage);
  out.method = change_method::extent_map;
  // Storage at one offset in both is shared; only without any is the rest
  // of the maps searched for storage the two files share elsewhere.
  if (!ea.empty() && !eb.empty() && !candidates.empty() && !same_storage && !share_storage(ea, eb)) {
    out.method = change_method::data_comparison;
    FILE_REFLINK_TRY(candidates, compare_data(candidates, a.st.size, b.st.size, read_a, read_b, progress));
  }
  out.ranges = std::move(candidates);
  return out;
}

template <class FsOps>
result<changed_ranges_result> changed_ranges(volume_step<FsOps>& s, const image_ref& from, const image_ref& to,
                                             progress_callback progress) {
  FILE_REFLINK_TRY(auto a, find_image(s, from));
  FILE_REFLINK_TRY(auto b, find_image(s, to));
  if (!progress) progress = s.copy_opts().progress;
  return changed_between(s, a, b, progress);
}

}  // namespace detail
}  // namespace file_reflink
