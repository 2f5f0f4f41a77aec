// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): export and import:
//! the committed image handed to a reader, new data imported into a file or
//! from another volume. Included by `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::require_save_on_stop() const -> result<void> {
  if (!cfg().save_on_stop)
    return failure(errc::not_save_on_stop, "");
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::require_importable() -> result<void> {
  FILE_REFLINK_TRYV(require_save_on_stop());
  if (vol.importing) return failure(errc::import_in_progress, "");
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (dirty) return failure(errc::volume_dirty, "");
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::export_() -> result<path> {
  FILE_REFLINK_TRYV(require_save_on_stop());
  FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
  if (!clean) return failure(errc::image_not_found, "missing image file " + core.abs(h, p().clean()));
  FILE_REFLINK_TRY(path out, core.absolute(h, p().clean()));
  vol.exports.insert(out.string());
  return out;
}

template <class FsOps>
auto volume_step<FsOps>::export_end(const path& exported) -> result<void> {
  auto it = vol.exports.find(exported.string());
  if (it == vol.exports.end()) return failure(errc::not_exported, q(exported));
  vol.exports.erase(it);
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::import_data(std::uint64_t size) -> result<path> {
  FILE_REFLINK_TRYV(require_importable());
  FILE_REFLINK_TRYV(core.ensure_dir(h, p().dir));
  FILE_REFLINK_TRYV(core.remove_file(h, p().import()));
  FILE_REFLINK_TRY(path out, core.absolute(h, p().import()));
  FILE_REFLINK_TRYV(core.create_sparse(h, p().import(), size, create_mode::exclusive));
  vol.importing = true;
  // Other processes stay away from the volume until the import ends.
  core.pin_byte(lock_byte(vid()));
  return out;
}

template <class FsOps>
auto volume_step<FsOps>::import_data_end(bool success_) -> result<void> {
  if (!vol.importing) return failure(errc::no_import_in_progress, "import_data was not called");
  // On failure the import stays open, its file untouched: the caller
  // can end it again, committing or dropping it.
  if (!success_) {
    FILE_REFLINK_TRYV(core.remove_file(h, p().import()));
  } else {
    FILE_REFLINK_TRYV(commit(p().import(), superseded::rotate));
  }
  vol.importing = false;
  core.unpin_byte(lock_byte(vid()));
  return success();
}

template <class FsOps>
auto volume_step<FsOps>::import_volume(core_type& src_core, const volume_state& src, progress_callback progress)
    -> result<copy_method> {
  FILE_REFLINK_TRYV(require_importable());
  if (!src.held_config().save_on_stop)
    return failure(errc::not_save_on_stop, "source volume " + q(src.vid));
  // The source is read through one open of its clean image: a commit of
  // the source meanwhile replaces the name, not the bytes being read.
  FILE_REFLINK_TRY_CTX(auto src_h, "source pool " + q(src_core.cfg.name), src_core.dir());
  path src_clean = src.paths.clean();
  FILE_REFLINK_TRY(auto sst, src_core.stat_image(src_h, src_clean));
  if (!sst)
    return failure(errc::source_not_found, "source volume " + q(src.vid) + " has no image file " +
                                               src_core.abs(src_h, src_clean));
  FILE_REFLINK_TRYV(core.ensure_dir(h, p().dir));
  FILE_REFLINK_TRYV(core.remove_file(h, p().import()));
  copy_options o = copy_opts();
  if (progress) o.progress = std::move(progress);
  // Not flushed here: commit's first step flushes the copy's data
  // before any name points to it.
  FILE_REFLINK_TRY(auto cr, core.copy_file(src_h, src_clean, h, p().import(), o));
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, p().import()); });
  FILE_REFLINK_TRYV(commit(p().import(), superseded::rotate));
  undo.commit();
  return cr.method;
}

template <class FsOps>
auto volume_step<FsOps>::import_file(const path& file, progress_callback progress) -> result<copy_method> {
  FILE_REFLINK_TRYV(require_importable());
  if (!file.is_absolute() || !file.has_filename() || file.filename() == "." || file.filename() == "..")
    return errno_failure(EINVAL, "import file " + q(file) + ": not the absolute path of a file");
  // The source is opened through its directory, as the pool's files are:
  // the copy reads it by its last name, never through a symlink.
  FILE_REFLINK_TRY(auto src_dir, core.open_dir(file.parent_path(), false));
  const path name = file.filename();
  FILE_REFLINK_TRYV(core.ensure_dir(h, p().dir));
  FILE_REFLINK_TRY(auto src_st, core.stat_if(src_dir.handle, name));
  FILE_REFLINK_TRY(auto import_st, core.stat_if(h, p().import()));
  if (src_st && import_st && src_st->dev == import_st->dev && src_st->ino == import_st->ino)
    return errno_failure(EINVAL, "import file " + q(file) + ": it is the volume's own import file");
  FILE_REFLINK_TRYV(core.remove_file(h, p().import()));
  copy_options o = copy_opts();
  if (progress) o.progress = std::move(progress);
  // Not flushed here: commit's first step flushes the copy's data before
  // any name points to it.
  FILE_REFLINK_TRY(auto cr, core.copy_file(src_dir.handle, name, h, p().import(), o));
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, p().import()); });
  FILE_REFLINK_TRYV(commit(p().import(), superseded::rotate));
  undo.commit();
  return cr.method;
}

}  // namespace detail
}  // namespace file_reflink
