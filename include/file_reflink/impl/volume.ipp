// SPDX-License-Identifier: BSL-1.0
//! \file
//! The definitions of `Volume<FsOps>`'s member functions, declared in
//! `<file_reflink/volume.hpp>`: facades that take the volume (`run`) and
//! hand the operation's body, a step of `detail::volume_step`, its context.
//! The steps are defined in `impl/volume/*.ipp`, included here.
//! `<file_reflink/volume.hpp>` includes this file, unless
//! FILE_REFLINK_SEPARATE_COMPILATION is defined: then one source file of the
//! program includes `<file_reflink/impl/src.hpp>`, which includes this file
//! and instantiates `Volume` for `LinuxFsOps` and `MemoryFsOps` (a program
//! with a policy of its own includes this file where it uses that policy).
#pragma once

#include <file_reflink/detail/volume_step.hpp>
#include <file_reflink/impl/volume/changes.ipp>
#include <file_reflink/impl/volume/commit.ipp>
#include <file_reflink/impl/volume/import_export.ipp>
#include <file_reflink/impl/volume/lifecycle.ipp>
#include <file_reflink/impl/volume/resize.ipp>
#include <file_reflink/impl/volume/revisions.ipp>
#include <file_reflink/impl/volume/run.ipp>
#include <file_reflink/impl/volume/scan.ipp>
#include <file_reflink/impl/volume/send_receive.ipp>
#include <file_reflink/impl/volume/space.ipp>
#include <file_reflink/impl/volume/sparsify.ipp>
#include <file_reflink/impl/volume/start.ipp>
#include <file_reflink/volume.hpp>

namespace file_reflink {

template <class FsOps>
auto Volume<FsOps>::create() noexcept -> result<void> {
  return run("create", [&](step& s) { return s.create(); });
}

template <class FsOps>
auto Volume<FsOps>::verify() noexcept -> result<void> {
  return query("verify", [&](step& s) { return s.verify(); });
}

template <class FsOps>
auto Volume<FsOps>::remove(bool force) noexcept -> result<void> {
  return run("remove", [&](step& s) { return s.remove(force); });
}

template <class FsOps>
auto Volume<FsOps>::start() noexcept -> result<void> {
  // A snapshot's start reads its source's committed image: the source is
  // held (shared) too, so that its own start cannot take that image away.
  std::optional<other_volume> src;
  if (auto c = st_->config(); c->snap_on_start && c->source) src = registered(*core_, *c->source);
  return run_with("start", src ? &*src : nullptr, [&](step& s) { return s.start(); });
}

template <class FsOps>
auto Volume<FsOps>::stop() noexcept -> result<void> {
  return run("stop", [&](step& s) { return s.stop(); });
}

template <class FsOps>
auto Volume<FsOps>::state() noexcept -> result<volume_status> {
  return query("state", [&](step& s) { return s.state(); });
}

template <class FsOps>
auto Volume<FsOps>::is_running() noexcept -> result<bool> {
  return query("is_running", [&](step& s) { return s.is_running(); });
}

template <class FsOps>
auto Volume<FsOps>::is_dirty() noexcept -> result<bool> {
  return query("is_dirty", [&](step& s) { return s.is_dirty(); });
}

template <class FsOps>
auto Volume<FsOps>::is_outdated() noexcept -> result<bool> {
  return query("is_outdated", [&](step& s) { return s.is_outdated(); });
}

template <class FsOps>
auto Volume<FsOps>::revisions() noexcept -> result<revision_map> {
  return query("revisions", [&](step& s) { return s.revisions(); });
}

template <class FsOps>
auto Volume<FsOps>::size() noexcept -> result<std::uint64_t> {
  return query("size", [&](step& s) { return s.size(); });
}

template <class FsOps>
auto Volume<FsOps>::usage() noexcept -> result<std::uint64_t> {
  return query("usage", [&](step& s) { return s.usage(); });
}

template <class FsOps>
auto Volume<FsOps>::space() noexcept -> result<volume_space> {
  return query("space", [&](step& s) { return s.space(); });
}

template <class FsOps>
auto Volume<FsOps>::block_device() noexcept -> result<block_device_info> {
  return query("block_device", [&](step& s) { return s.block_device(); });
}

template <class FsOps>
auto Volume<FsOps>::update(const volume_update& u) noexcept -> result<void> {
  return run("update", [&](step& s) { return s.update(u); });
}

template <class FsOps>
auto Volume<FsOps>::revert() noexcept -> result<void> {
  return run("revert", [&](step& s) { return s.revert_to(detail::selector{}); });
}

template <class FsOps>
auto Volume<FsOps>::revert(std::uint64_t n) noexcept -> result<void> {
  return run("revert", [&](step& s) { return s.revert_to(detail::selector::number(n)); });
}

template <class FsOps>
auto Volume<FsOps>::revert(std::string_view label) noexcept -> result<void> {
  return run("revert", [&](step& s) -> result<void> {
    FILE_REFLINK_TRYV(layout::validate_label(label));
    return s.revert_to(detail::selector::label_of(label));
  });
}

template <class FsOps>
auto Volume<FsOps>::keep_revision(std::uint64_t n, std::string_view label) noexcept -> result<void> {
  return run("keep_revision", [&](step& s) { return s.keep_revision(n, label); });
}

template <class FsOps>
auto Volume<FsOps>::unkeep_revision(std::string_view label) noexcept -> result<void> {
  return run("unkeep_revision", [&](step& s) { return s.unkeep_revision(label); });
}

template <class FsOps>
auto Volume<FsOps>::drop_revision(std::uint64_t n) noexcept -> result<void> {
  return run("drop_revision", [&](step& s) { return s.drop(detail::selector::number(n)); });
}

template <class FsOps>
auto Volume<FsOps>::drop_revision(std::string_view label) noexcept -> result<void> {
  return run("drop_revision", [&](step& s) -> result<void> {
    FILE_REFLINK_TRYV(layout::validate_label(label));
    return s.drop(detail::selector::label_of(label));
  });
}

template <class FsOps>
auto Volume<FsOps>::resize(std::uint64_t new_size) noexcept -> result<void> {
  return run("resize", [&](step& s) { return s.resize(new_size); });
}

template <class FsOps>
auto Volume<FsOps>::shrink(std::uint64_t new_size) noexcept -> result<void> {
  return run("shrink", [&](step& s) { return s.shrink(new_size); });
}

template <class FsOps>
auto Volume<FsOps>::import_file(const path& file, progress_callback progress) noexcept -> result<copy_method> {
  return run("import_file", [&](step& s) { return s.import_file(file, std::move(progress)); });
}

template <class FsOps>
auto Volume<FsOps>::export_() noexcept -> result<path> {
  return run("export", [&](step& s) { return s.export_(); });
}

template <class FsOps>
auto Volume<FsOps>::export_end(const path& exported) noexcept -> result<void> {
  return run("export_end", [&](step& s) { return s.export_end(exported); });
}

template <class FsOps>
auto Volume<FsOps>::import_data(std::uint64_t size) noexcept -> result<path> {
  return run("import_data", [&](step& s) { return s.import_data(size); });
}

template <class FsOps>
auto Volume<FsOps>::import_data_end(bool success_) noexcept -> result<void> {
  return run("import_data_end", [&](step& s) { return s.import_data_end(success_); });
}

template <class FsOps>
auto Volume<FsOps>::import_volume(const Volume& src, progress_callback progress) noexcept -> result<copy_method> {
  // The source is held (shared) for the copy: nothing changes or takes
  // away its committed image meanwhile, in this process or another.
  other_volume from{src.core_.get(), src.st_, src.vid()};
  return run_with("import_volume", &from,
                  [&](step& s) { return s.import_volume(*src.core_, *src.st_, std::move(progress)); });
}

template <class FsOps>
auto Volume<FsOps>::changed_ranges(const image_ref& from, const image_ref& to, progress_callback progress) noexcept
    -> result<changed_ranges_result> {
  return query("changed_ranges", [&](step& s) { return detail::changed_ranges(s, from, to, std::move(progress)); });
}

template <class FsOps>
auto Volume<FsOps>::send(const stream_sink& sink, const std::optional<image_ref>& since,
                         progress_callback progress) noexcept -> result<send_result> {
  return query("send", [&](step& s) { return detail::send(s, sink, since, std::move(progress)); });
}

template <class FsOps>
auto Volume<FsOps>::receive(const stream_source& source, progress_callback progress) noexcept
    -> result<receive_result> {
  return run("receive", [&](step& s) { return detail::receive(s, source, std::move(progress)); });
}

template <class FsOps>
auto Volume<FsOps>::discard(std::uint64_t offset, std::uint64_t length) noexcept -> result<void> {
  return run("discard", [&](step& s) { return s.discard(offset, length); });
}

template <class FsOps>
auto Volume<FsOps>::sparsify() noexcept -> result<std::uint64_t> {
  return run("sparsify", [&](step& s) { return s.sparsify(); });
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

}  // namespace file_reflink
