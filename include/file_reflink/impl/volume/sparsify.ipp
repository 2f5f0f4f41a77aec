// SPDX-License-Identifier: BSL-1.0
//! \file
//! Steps of `Volume<FsOps>` (see `detail::volume_step`): sparsify: holes
//! punched where the committed image's data is all zeros. Included by
//! `<file_reflink/impl/volume.ipp>` only.
#pragma once

#include <file_reflink/detail/volume_step.hpp>

namespace file_reflink {
namespace detail {

template <class FsOps>
auto volume_step<FsOps>::sparsify() -> result<std::uint64_t> {
  if (!cfg().save_on_stop) return failure(errc::not_save_on_stop, "");
  FILE_REFLINK_TRY(auto dirty, core.stat_image(h, p().dirty()));
  if (dirty) return failure(errc::volume_dirty, "the VM could write between the read and the punch");
  FILE_REFLINK_TRY(auto clean, core.stat_image(h, p().clean()));
  if (!clean) return failure(errc::image_not_found, "missing image file " + core.abs(h, p().clean()));
  if (snapshots_disabled() && clean->nlink == 1) {
    FILE_REFLINK_TRYV(drop_precache());
    FILE_REFLINK_TRY(auto freed, punch_zeros(p().clean()));
    if (freed) FILE_REFLINK_TRYV(core.sync_file(h, p().clean()));
    return freed;
  }
  path tmp = layout::temp_name(p().clean());
  FILE_REFLINK_TRYV(core.copy_file(h, p().clean(), h, tmp, copy_opts()));
  undo_stack undo;
  undo.push([&] { (void)core.remove_file(h, tmp); });
  FILE_REFLINK_TRY(auto freed, punch_zeros(tmp));
  if (freed == 0) return freed;  // nothing to publish: the copy goes
  undo.commit();                 // publish removes it on failure
  FILE_REFLINK_TRYV(publish(tmp));
  return freed;
}

template <class FsOps>
auto volume_step<FsOps>::punch_zeros(const path& rel) -> result<std::uint64_t> {
  constexpr std::uint64_t block = 4096;
  constexpr std::size_t chunk = 1 << 20;
  FILE_REFLINK_TRY(auto before, core.stat_file(h, rel));
  FILE_REFLINK_TRY(auto ext, core.extents_of(h, rel));
  std::vector<char> buf(chunk);
  std::uint64_t run_start = 0, run_len = 0;
  auto flush_run = [&]() -> result<void> {
    if (run_len) FILE_REFLINK_TRYV(core.punch_hole(h, rel, run_start, run_len, false));
    run_len = 0;
    return success();
  };
  for (const extent& e : ext) {
    std::uint64_t end = std::min(e.logical + e.length, before.size);
    for (std::uint64_t off = e.logical; off < end;) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, end - off));
      FILE_REFLINK_TRY(std::size_t got, core.read_at(h, rel, off, buf.data(), want));
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
  FILE_REFLINK_TRY(auto after, core.stat_file(h, rel));
  std::uint64_t freed = before.allocated > after.allocated ? before.allocated - after.allocated : 0;
  if (freed)
    core.log(log_level::info, "Sparsified file: " + core.abs(h, rel) + " (" + bytes_text(freed) +
                                  " deallocated)");
  return freed;
}

}  // namespace detail
}  // namespace file_reflink
