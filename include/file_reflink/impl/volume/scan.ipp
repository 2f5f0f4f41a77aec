// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): the volume's files
//! in its directory: incomplete ones found and removed, every file of the vid
//! removed, names removed so that a failure loses nothing. Included by
//! `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::remove_incomplete() -> result<std::size_t> {
  FILE_REFLINK_TRY(auto entries, core.list_if(h, p().dir));
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
    bool stale_import = info.kind == layout::file_kind::import && !vol.importing;
    if (info.kind == layout::file_kind::temporary || stale_import) {
      FILE_REFLINK_TRY(bool r, core.remove_file(h, p().dir / e.name));
      removed += r;
    }
  }
  return removed;
}

template <class FsOps>
auto volume_step<FsOps>::remove_all_files() -> result<void> {
  FILE_REFLINK_TRYV(remove_incomplete());
  FILE_REFLINK_TRY(auto entries, core.list_if(h, p().dir));
  std::vector<path> names;
  for (const dir_entry& e : entries) {
    if (e.type == file_type::directory) continue;
    layout::name_info info = layout::classify(e.name);
    if (info.base != p().base || info.kind == layout::file_kind::foreign) continue;
    names.push_back(p().dir / e.name);
  }
  FILE_REFLINK_TRYV(remove_names(names));
  if (vol.importing) {  // an import this process had open went with the rest
    vol.importing = false;
    core.unpin_byte(lock_byte(vid()));
  }
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::drop_precache() -> result<void> {
  FILE_REFLINK_TRY(auto pre, core.stat_if(h, p().precache()));
  if (!pre) return success();
  return remove_names({p().precache()});
}

template <class FsOps>
auto volume_step<FsOps>::remove_names(const std::vector<path>& names) -> result<void> {
  if (names.empty()) return success();
  std::vector<path> moved;
  undo_stack undo;
  for (const path& from : names) {
    path to = layout::temp_name(from);
    FILE_REFLINK_TRYV(core.rename_file(h, from, to));
    undo.push([this, from, to] { (void)core.rename_file(h, to, from); });
    moved.push_back(to);
  }
  FILE_REFLINK_TRYV(core.sync_dir(h, p().dir));
  undo.commit();
  for (auto& m : moved) drop_temporary(m);
  return success();
}

template <class FsOps>
void volume_step<FsOps>::drop_temporary(const path& rel) {
  auto r = core.remove_file(h, rel);
  if (!r)
    core.log(log_level::warning, "Could not remove temporary file " + core.abs(h, rel) + " (the next start, "
                                 "remove or recover removes it): " + r.error().message());
}

}  // namespace detail
}  // namespace file_reflink
