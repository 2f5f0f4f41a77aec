// SPDX-License-Identifier: BSL-1.0
//! \file
//! The copy of a file, written once over the contract's operations: clone,
//! else the policy's range copy per data segment, else reads and writes of
//! the data segments; one progress meter, one notice of a filesystem
//! without reflinks. Also how the library calls the optional operations.
#pragma once

#include <file_reflink/detail/progress_meter.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/fs_types.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <vector>

namespace file_reflink {
namespace detail {

//! Bytes per range copy call and per read and write of the in-process copy:
//! large enough for full-speed I/O, small enough that progress is reported
//! (and a cancel noticed) often.
inline constexpr std::uint64_t copy_chunk = std::uint64_t(4) << 20;

//! The errno of a policy's error, 0 when it is not one (a library condition).
inline int errno_of(const error& e) noexcept {
  const std::error_code& c = e.code();
  if (c.category() == std::system_category() || c.category() == std::generic_category()) return c.value();
  return 0;
}

//! Whether an optional operation's error says it is not there for these
//! files: the policy lacks it, or the filesystem cannot do it.
inline bool not_available(int err) noexcept {
  return err == EOPNOTSUPP || err == ENOTSUP || err == ENOSYS || err == EXDEV || err == EINVAL || err == EBADF;
}

//! `notify_resize` where the policy has it; 0 devices told where it has not
//! (or says it cannot).
template <class Ops>
result<unsigned> notify_resize(const Ops& ops, const typename Ops::dir_handle& h, const path& rel) noexcept {
  if constexpr (has_notify_resize_v<Ops>) {
    auto r = ops.notify_resize(h, rel);
    if (!r) {
      const int err = errno_of(r.error());
      if (err == EOPNOTSUPP || err == ENOTSUP || err == ENOSYS) return 0u;
    }
    return r;
  } else {
    (void)ops, (void)h, (void)rel;
    return 0u;
  }
}

//! How far ahead of itself a copy asks for the source's data (the optional
//! `advise_willneed`): a read of a cold image waits for the disk, and asking
//! ahead keeps many reads in flight. A cold 1 GiB image holding 102 MiB in
//! 64 KiB segments copied in 0.25-0.3x the time of `cp --sparse=always`
//! with it, in 0.9-1.1x without it (ext4, on a loop device).
inline constexpr std::uint64_t readahead_window = std::uint64_t(64) << 20;

//! Asks the policy for the source's data segments up to `readahead_window`
//! ahead of the copy, one segment at a time (never a hole: a hole read
//! ahead would fill the page cache with zeros), and again only when half of
//! the window is used, so a file of small segments costs one hint per
//! segment, not one per chunk. A hint's failure changes nothing.
template <class Ops>
class read_ahead {
public:
  read_ahead(const Ops& ops, const typename Ops::dir_handle& h, const path& rel,
             const std::vector<segment>& segments) noexcept
      : ops_(ops), h_(h), rel_(rel), segments_(segments) {}

  //! The copy is at `pos`: keep the next window asked for.
  void at(std::uint64_t pos) noexcept {
    if constexpr (has_advise_willneed_v<Ops>) {
      if (off_ || asked_ > pos + readahead_window / 2 || next_ >= segments_.size()) return;
      const std::uint64_t horizon = pos + readahead_window;
      while (next_ < segments_.size() && segments_[next_].offset < horizon) {
        const segment& seg = segments_[next_];
        const std::uint64_t from = std::max(seg.offset, asked_);
        const std::uint64_t to = std::min(seg.offset + seg.length, horizon);
        if (to > from) {
          auto r = ops_.advise_willneed(h_, rel_, from, to - from);
          if (!r && not_available(errno_of(r.error()))) off_ = true;  // not here: ask no more
        }
        asked_ = std::max(asked_, to);
        if (seg.offset + seg.length > horizon) break;
        ++next_;
      }
    } else {
      (void)pos;
    }
  }

private:
  const Ops& ops_;
  const typename Ops::dir_handle& h_;
  const path& rel_;
  const std::vector<segment>& segments_;
  std::size_t next_ = 0;     //!< the first segment not wholly asked for
  std::uint64_t asked_ = 0;  //!< asked for up to here
  bool off_ = false;         //!< the policy cannot take hints for this file
};

//! A copy under way: the two names, and what the steps share.
template <class Ops>
class file_copy {
 public:
  using handle = typename Ops::dir_handle;

  file_copy(const Ops& ops, const handle& src_h, const path& src, const handle& dst_h, const path& dst,
            const copy_options& opts) noexcept
      : ops_(ops), src_h_(src_h), src_(src), dst_h_(dst_h), dst_(dst), opts_(opts) {}

  result<copy_result> run() {
    auto st = ops_.stat(src_h_, src_);
    if (!st) return failure(st.error());
    // What opening the source would say: a symlink is never followed.
    switch (st.value().type) {
      case file_type::regular: break;
      case file_type::directory: return own_failure(EISDIR);
      case file_type::symlink: return own_failure(ELOOP);
      default: return own_failure(EINVAL);
    }
    src_size_ = st.value().size;
    final_size_ = opts_.size.value_or(src_size_);
    limit_ = std::min(src_size_, final_size_);  // copy only what fits

    copy_result res;
    if (limit_ > 0 && opts_.try_clone && !dst_h_.no_reflinks()) {
      auto cloned = ops_.clone(src_h_, src_, dst_h_, dst_);
      if (cloned) {
        made_ = true;
        auto done = finish_clone();
        if (!done) undo();
        return done;
      }
      const int err = errno_of(cloned.error());
      if (err == EOPNOTSUPP) {
        // This filesystem cannot clone. (EXDEV only says: two filesystems;
        // EINVAL can be about these two files, as btrfs says for a nodatacow
        // file and a datacow one: fall back for this copy, remember nothing.)
        res.reflink_unsupported_noticed = dst_h_.set_no_reflinks();
      } else if (err != EXDEV && err != EBADF && err != EINVAL) {
        return failure(cloned.error());
      }
    }
    // The final size before any data: a write that extends a file lets XFS
    // preallocate beyond its end, and the next segment's write would leave
    // that preallocation allocated inside what should be a hole.
    if (auto made = ops_.create(dst_h_, dst_, final_size_, create_mode::exclusive); !made)
      return failure(made.error());
    made_ = true;
    auto copied = copy_data(res);
    if (!copied) undo();  // the copy's error is the one to report
    return copied;
  }

  //! Removes the destination this copy made, if it made one.
  void undo() noexcept {
    if (made_) (void)ops_.remove(dst_h_, dst_);
    made_ = false;
  }

 private:
  //! The clone is made: its bytes counted from the extent map (the
  //! segment walk, two system calls per segment, can take longer than the
  //! clone), then the final size.
  result<copy_result> finish_clone() {
    std::uint64_t total = 0;
    auto map = ops_.extents(src_h_, src_);
    if (map) {
      for (const extent& e : map.value()) {
        if (e.logical >= limit_) continue;
        total += std::min(limit_, e.logical + e.length) - e.logical;
      }
    } else {
      const int err = errno_of(map.error());
      if (err != EOPNOTSUPP && err != ENOTTY && err != EINVAL) return failure(map.error());
      FILE_REFLINK_TRY(auto segs, ops_.data_segments(src_h_, src_, limit_));
      for (const segment& s : segs) total += s.length;
    }
    progress_meter meter(opts_.progress, total);
    if (!meter.advance(total)) return cancelled();
    // A clone has the source's size; only a copy to another size cuts or extends it.
    if (final_size_ != src_size_) FILE_REFLINK_TRYV(ops_.resize(dst_h_, dst_, final_size_));
    if (!meter.finish()) return cancelled();
    copy_result res;
    res.method = copy_method::clone;
    res.bytes = total;
    return res;
  }

  //! Into the new file of the final size: the data segments, in the kernel
  //! where the policy can, else through a buffer here.
  result<copy_result> copy_data(copy_result res) {
    std::vector<segment> segs;
    if (limit_ > 0) {
      auto found = ops_.data_segments(src_h_, src_, limit_);
      if (!found) return failure(std::move(found).assume_error());
      segs = std::move(found).assume_value();
    }
    std::uint64_t total = 0;
    for (const segment& s : segs) total += s.length;
    progress_meter meter(opts_.progress, total);
    if (limit_ > 0 && opts_.try_copy_file_range) {
      if constexpr (has_copy_range_v<Ops>) {
        FILE_REFLINK_TRY(bool in_kernel, copy_in_kernel(segs, meter));
        if (in_kernel) res.method = copy_method::copy_file_range;
      }
    }
    if (limit_ > 0 && res.method == copy_method::none) {
      FILE_REFLINK_TRYV(copy_buffered(segs, meter));
      res.method = copy_method::sparse_copy;
    }
    if (!meter.finish()) return cancelled();
    res.bytes = meter.done();
    return res;
  }

  //! `copy_range` per chunk of each segment: true when done, false when it
  //! cannot start here (nothing copied yet, the in-process copy follows).
  result<bool> copy_in_kernel(const std::vector<segment>& segs, progress_meter& meter) {
    read_ahead<Ops> ahead(ops_, src_h_, src_, segs);
    for (const segment& s : segs) {
      for (std::uint64_t pos = s.offset, end = s.offset + s.length; pos < end;) {
        ahead.at(pos);
        auto n = ops_.copy_range(src_h_, src_, dst_h_, dst_, pos, std::min(copy_chunk, end - pos));
        if (!n) {
          if (meter.done() == 0 && not_available(errno_of(n.error()))) return false;
          return failure(n.error());
        }
        if (n.value() == 0) return true;  // the source got shorter while we copied
        pos += n.value();
        if (!meter.advance(n.value())) return cancelled();
      }
    }
    return true;
  }

  //! Reads and writes through a buffer in this process: the last resort,
  //! and still sparse, since only data segments are read and written.
  result<void> copy_buffered(const std::vector<segment>& segs, progress_meter& meter) {
    if (segs.empty()) return success();
    const std::unique_ptr<char[]> buffer(new (std::nothrow) char[copy_chunk]);
    if (!buffer) return own_failure(ENOMEM);
    read_ahead<Ops> ahead(ops_, src_h_, src_, segs);
    for (const segment& s : segs) {
      for (std::uint64_t pos = s.offset, end = s.offset + s.length; pos < end;) {
        ahead.at(pos);
        const auto want = static_cast<std::size_t>(std::min(copy_chunk, end - pos));
        FILE_REFLINK_TRY(std::size_t got, ops_.read(src_h_, src_, pos, buffer.get(), want));
        if (got == 0) return success();  // the source got shorter while we copied
        FILE_REFLINK_TRYV(ops_.write(dst_h_, dst_, pos, buffer.get(), got));
        pos += got;
        if (!meter.advance(got)) return cancelled();
      }
    }
    return success();
  }

  //! "copy '<src>' -> '<dst>'".
  std::string what() const {
    const auto abs = [&](const handle& h, const path& rel) {
      auto p = ops_.path_of(h, rel);
      return p ? p.value().string() : rel.string();
    };
    return "copy '" + abs(src_h_, src_) + "' -> '" + abs(dst_h_, dst_) + "'";
  }
  auto cancelled() const { return failure(errc::cancelled, what()); }
  auto own_failure(int err) const { return errno_failure(err, what()); }

  const Ops& ops_;
  const handle& src_h_;
  const path& src_;
  const handle& dst_h_;
  const path& dst_;
  const copy_options& opts_;
  std::uint64_t src_size_ = 0;
  std::uint64_t final_size_ = 0;
  std::uint64_t limit_ = 0;
  bool made_ = false;  //!< the destination exists, made by this copy
};

//! A new file `dst` (exclusive, 0600) with `src`'s bytes, holes kept:
//! clone (unless `opts.try_clone` is false or the handle knows its
//! filesystem has none); where the filesystem cannot clone, the new file at
//! its final size, then `copy_range` per data segment where the policy has
//! it (`opts.try_copy_file_range`), else reads and writes of the data
//! segments. A policy's error is returned as it is (the clone's EOPNOTSUPP,
//! EXDEV, EINVAL, EBADF and the range copy's EOPNOTSUPP, ENOSYS, EXDEV,
//! EINVAL, EBADF before any byte mean: the next way); no failure or cancel
//! (`errc::cancelled`) leaves `dst` behind.
template <class Ops>
result<copy_result> copy_file(const Ops& ops, const typename Ops::dir_handle& src_h, const path& src,
                              const typename Ops::dir_handle& dst_h, const path& dst,
                              const copy_options& opts) noexcept {
  file_copy<Ops> copy(ops, src_h, src, dst_h, dst, opts);
  auto r = exception_boundary<result<copy_result>>("copy", [&] { return copy.run(); });
  if (!r) copy.undo();
  return r;
}

}  // namespace detail
}  // namespace file_reflink
