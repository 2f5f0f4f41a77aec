// SPDX-License-Identifier: BSL-1.0
//! \file
//! `Pool::receive`: a stream into the pool's volume of its vid, registering
//! (and creating) that volume first where the pool lacks it and the stream
//! is a full one. Included by `<file_reflink/impl/pool.ipp>` only.
#pragma once

#include <file_reflink/detail/stream_format.hpp>
#include <file_reflink/pool.hpp>
#include <file_reflink/volume.hpp>

#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace file_reflink {

template <class FsOps>
auto Pool<FsOps>::receive(const std::string& vid, const stream_source& source, progress_callback progress) noexcept
    -> result<receive_result> {
  const auto what_of = [&] { return "receive volume " + detail::q(vid); };
  return detail::no_throw<result<receive_result>>(what_of, [&]() -> result<receive_result> {
    if (!source) return failure(make_error(errc::invalid_config, "no stream source").context(what_of()));
    // The header is read here, to learn the image size and kind, and handed
    // to the volume's receive again ahead of the rest of the stream.
    auto head = std::make_shared<std::vector<unsigned char>>();
    auto fill = [&](std::size_t n) -> result<bool> {
      while (head->size() < n) {
        unsigned char buf[4096];
        const std::size_t want = std::min(sizeof buf, n - head->size());
        FILE_REFLINK_TRY(std::size_t got, source(buf, want));
        if (got == 0) return false;
        head->insert(head->end(), buf, buf + std::min(got, want));
      }
      return true;
    };
    auto invalid = [&](error e) { return failure(std::move(e).context(what_of())); };
    FILE_REFLINK_TRY(bool whole, fill(detail::stream::header_fixed));
    if (!whole) return invalid(make_error(errc::stream_invalid, "the stream ended in its header: truncated"));
    auto len = detail::stream::header_length(head->data());
    if (!len) return invalid(std::move(len).error());
    FILE_REFLINK_TRY(whole, fill(len.value()));
    if (!whole) return invalid(make_error(errc::stream_invalid, "the stream ended in its header: truncated"));
    auto hd = detail::stream::decode(head->data(), len.value());
    if (!hd) return invalid(std::move(hd).error());
    if (hd.value().vid != vid)
      return invalid(make_error(errc::stream_invalid, "the stream is of volume " + detail::q(hd.value().vid)));
    std::size_t replayed = 0;
    stream_source replay = [&](void* buf, std::size_t n) -> result<std::size_t> {
      if (replayed < head->size()) {
        const std::size_t k = std::min(n, head->size() - replayed);
        std::memcpy(buf, head->data() + replayed, k);
        replayed += k;
        return k;
      }
      return source(buf, n);
    };
    auto existing = get_volume(vid);
    if (existing) return existing.value().receive(replay, std::move(progress));
    if (existing.error() != errc::volume_not_found) return failure(std::move(existing).error());
    if (hd.value().incremental)
      return invalid(make_error(errc::stream_base_missing, "the pool has no volume " + detail::q(vid) +
                                                               ", and the stream holds the changes since " +
                                                               hd.value().base_text()));
    // A full stream of a volume the pool lacks: an origin volume of its size.
    FILE_REFLINK_TRY(auto v, init_volume(volume_config::origin(vid, hd.value().image_size), existing_volume::refuse));
    if (auto made = v.create(); !made) {
      (void)v.remove(true);
      return failure(std::move(made).error());
    }
    auto r = v.receive(replay, std::move(progress));
    if (!r) (void)v.remove(true);
    return r;
  });
}

}  // namespace file_reflink
