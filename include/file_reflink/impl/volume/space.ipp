// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): queries: state,
//! sizes, space by extent, the block device. Included by
//! `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::state() -> result<volume_status> {
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (!dirty) return volume_status::stopped;
  return cfg().save_on_stop ? volume_status::dirty : volume_status::running;
}

template <class FsOps>
auto volume_step<FsOps>::is_running() -> result<bool> {
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  return dirty.has_value();
}

template <class FsOps>
auto volume_step<FsOps>::is_dirty() -> result<bool> {
  if (!cfg().save_on_stop) return false;
  FILE_REFLINK_TRY(auto st, core.stat_image(h, p().dirty()));
  return st.has_value();
}

template <class FsOps>
auto volume_step<FsOps>::is_outdated() -> result<bool> {
  if (!cfg().snap_on_start) return false;
  FILE_REFLINK_TRY(auto own, core.stat_if(h, p().clean()));
  if (!own) return false;
  FILE_REFLINK_TRY(auto src, core.stat_if(h, layout::paths_of(*cfg().source).clean()));
  if (!src) return false;
  return own->ino != src->ino || own->dev != src->dev;
}

template <class FsOps>
auto volume_step<FsOps>::size() -> result<std::uint64_t> {
  return current_size();
}

template <class FsOps>
auto volume_step<FsOps>::current_size() -> result<std::uint64_t> {
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (dirty) return dirty->size;
  if (cfg().save_on_stop) {  // an origin-snapshot commits its own image too
    FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
    if (clean) return clean->size;
  }
  return vol.size;
}

template <class FsOps>
auto volume_step<FsOps>::stat_dirty(dirty_use use) -> result<std::optional<file_stat>> {
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (dirty && dirty->nlink > 1 && use == dirty_use::write)
    return failure(errc::unexpected_file_type,
                   core.abs(h, p().dirty()) + " has " + std::to_string(dirty->nlink) +
                       " names: another file shares it, so writing into it would change that file too; "
                       "refusing to use it (stop the volume to commit it, or remove the other name)");
  return dirty;
}

template <class FsOps>
auto volume_step<FsOps>::usage() -> result<std::uint64_t> {
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (dirty) return dirty->allocated;
  // A stopped snapshot or volatile volume has no image of its own.
  if (!cfg().save_on_stop) return std::uint64_t(0);
  FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
  return clean ? clean->allocated : 0;
}

template <class FsOps>
auto volume_step<FsOps>::space() -> result<volume_space> {
  volume_space out;
  auto one = [&](const path& rel, std::optional<space_usage>& slot) -> result<void> {
    FILE_REFLINK_TRY(auto st, core.stat_image(h, rel));
    if (!st) return success();
    FILE_REFLINK_TRY(auto s, core.space_of(h, rel, *st));
    slot = s;
    out.total += s;
    return success();
  };
  FILE_REFLINK_TRYV(one(p().dirty(), out.dirty));
  if (cfg().save_on_stop) {
    FILE_REFLINK_TRYV(one(p().clean(), out.clean));
    FILE_REFLINK_TRYV(one(p().precache(), out.precache));
  }
  FILE_REFLINK_TRY(auto revs, list_revisions());
  for (auto& [key, e] : revs) {
    std::optional<space_usage> s;
    FILE_REFLINK_TRYV(one(e.file(p()), s));
    if (s) out.revisions.emplace_hint(out.revisions.end(), e.n, *s);
  }
  return out;
}

template <class FsOps>
auto volume_step<FsOps>::block_device() -> result<block_device_info> {
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (!dirty)
    return failure(errc::volume_not_running, "it is stopped: its running image " + core.abs(h, p().dirty()) +
                                                 " exists once it is started");
  block_device_info b;
  FILE_REFLINK_TRY(b.device_path, core.absolute(h, p().dirty()));
  b.read_only = !cfg().rw;
  b.name = name();
  return b;
}

}  // namespace detail
}  // namespace file_reflink
