// SPDX-License-Identifier: BSL-1.0
//! \file
//! `Volume::send` and `Volume::receive`: the committed image as a stream
//! (doc/stream-format.md), whole or as the changes since a revision, and
//! such a stream applied to a volume as a commit. Included by
//! `<file_reflink/impl/volume.ipp>` only.
//!
//! Receive writes into the volume's import file and commits it only once
//! the trailer has arrived and every checksum, count and order matched:
//! before that nothing is visible, and on any failure the import file goes.
//! A crash meanwhile leaves only the import file, which the next start,
//! remove or recover removes.
#pragma once

#include <file_reflink/changes.hpp>
#include <file_reflink/detail/changed_ranges.hpp>
#include <file_reflink/detail/stream_format.hpp>
#include <file_reflink/detail/volume_step.hpp>
#include <file_reflink/impl/volume/changes.ipp>

#include <exception>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {

//! A caller's callback, its exceptions (but running out of memory) turned
//! into an I/O error that says where it came from.
template <class R, class F>
R call_user(const char* what, F&& f) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    throw;
  } catch (const std::exception& e) {
    return failure(make_errno_error(EIO, std::string(what) + " threw: " + e.what()));
  } catch (...) {
    return failure(make_errno_error(EIO, std::string(what) + " threw"));
  }
}

//! The sending end: every byte goes to the sink; the header and the record
//! heads (which carry their payloads' CRCs) also go into the running
//! checksum that the trailer carries.
class stream_out {
public:
  explicit stream_out(const stream_sink& sink) : sink_(sink) {}
  result<void> put(const void* data, std::size_t len, bool payload = false) {
    if (len == 0) return success();
    if (!payload) crc_.process_bytes(data, len);
    bytes_ += len;
    return call_user<result<void>>("the stream sink", [&] { return sink_(data, len); });
  }
  std::uint32_t crc() const { return crc_.checksum(); }
  std::uint64_t bytes() const { return bytes_; }

private:
  const stream_sink& sink_;
  stream::crc32c crc_;
  std::uint64_t bytes_ = 0;
};

//! The receiving end: exact reads, the running checksum of what was read.
class stream_in {
public:
  explicit stream_in(const stream_source& source) : source_(source) {}
  //! `len` bytes, or `errc::stream_invalid` saying the stream ended `where`;
  //! a payload stays out of the running checksum (its own CRC covers it).
  result<void> get(void* buf, std::size_t len, const char* where, bool payload = false) {
    auto* p = static_cast<unsigned char*>(buf);
    std::size_t got = 0;
    while (got < len) {
      FILE_REFLINK_TRY(std::size_t n, call_user<result<std::size_t>>(
                                          "the stream source", [&] { return source_(p + got, len - got); }));
      if (n == 0)
        return failure(errc::stream_invalid, std::string("the stream ended ") + where + " (after " +
                                                 std::to_string(bytes_ + got) + " bytes): truncated");
      if (n > len - got) return failure(make_errno_error(EINVAL, "the stream source returned more than it was asked"));
      got += n;
    }
    if (!payload) crc_.process_bytes(p, len);
    bytes_ += len;
    return success();
  }
  //! Whether the source has ended (reads one byte past the trailer).
  result<bool> at_end() {
    unsigned char c;
    FILE_REFLINK_TRY(std::size_t n,
                     call_user<result<std::size_t>>("the stream source", [&] { return source_(&c, 1); }));
    return n == 0;
  }
  std::uint32_t crc() const { return crc_.checksum(); }
  std::uint64_t bytes() const { return bytes_; }

private:
  const stream_source& source_;
  stream::crc32c crc_;
  std::uint64_t bytes_ = 0;
};

//! The fingerprint of one of the volume's files.
template <class FsOps>
result<std::uint64_t> fingerprint_of(volume_step<FsOps>& s, const path& file, std::uint64_t size) {
  return stream::fingerprint(size, [&](std::uint64_t off, void* buf, std::size_t len) {
    return s.core.read_at(s.h, file, off, buf, len);
  });
}

template <class FsOps>
result<send_result> send(volume_step<FsOps>& s, const stream_sink& sink, const std::optional<image_ref>& since,
                         progress_callback progress) {
  if (!sink) return failure(errc::invalid_config, "no stream sink");
  if (!progress) progress = s.copy_opts().progress;
  FILE_REFLINK_TRY(auto target, find_image(s, image_ref::committed()));
  const std::uint64_t size = target.st.size;
  stream::header hd;
  hd.image_size = size;
  hd.vid = s.vid();
  FILE_REFLINK_TRY(hd.target_fingerprint, fingerprint_of(s, target.file, size));
  std::vector<byte_range> ranges;
  if (since) {
    FILE_REFLINK_TRY(auto base, find_image(s, *since));
    hd.incremental = true;
    hd.base_number = base.revision ? base.revision->n : 0;
    hd.base_stamp = base.revision ? base.revision->stamp : std::string("committed");
    hd.base_size = base.st.size;
    FILE_REFLINK_TRY(hd.base_fingerprint, fingerprint_of(s, base.file, base.st.size));
    FILE_REFLINK_TRY(auto ch, changed_between(s, base, target, progress));
    for (const auto& r : ch.ranges) {
      if (r.offset >= size) break;
      ranges.push_back(byte_range{r.offset, std::min(r.length, size - r.offset)});
    }
  } else if (size > 0) {
    ranges.push_back(byte_range{0, size});
  }
  FILE_REFLINK_TRY(auto segs, s.core.data_segments_of(s.h, target.file, size));

  send_result out;
  out.incremental = hd.incremental;
  out.image_size = size;
  stream_out w(sink);
  {
    const auto bytes = stream::encode(hd);
    FILE_REFLINK_TRYV(w.put(bytes.data(), bytes.size()));
  }
  std::uint64_t total = 0, done = 0;
  for (const auto& r : ranges) total += r.length;
  if (progress && !progress(0, total)) return failure(errc::cancelled, "send");
  std::uint32_t seq = 0;
  std::unique_ptr<unsigned char[]> buf(new unsigned char[stream::max_payload]);
  auto hole = [&](std::uint64_t off, std::uint64_t len) -> result<void> {
    if (len == 0) return success();
    stream::record rec{stream::record_type::hole, seq++, off, len, 0};
    const auto head = stream::encode(rec);
    FILE_REFLINK_TRYV(w.put(head.data(), head.size()));
    out.hole_bytes += len;
    ++out.records;
    done += len;
    if (progress && !progress(done, total)) return failure(errc::cancelled, "send");
    return success();
  };
  // A cold image is read with the disk kept busy ahead of the stream.
  read_ahead<FsOps> ahead(s.core.ops, s.h, target.file, segs);
  auto data = [&](std::uint64_t off, std::uint64_t len) -> result<void> {
    while (len > 0) {
      ahead.at(off);
      const auto n = static_cast<std::size_t>(std::min(len, stream::max_payload));
      std::size_t got = 0;
      while (got < n) {
        FILE_REFLINK_TRY(std::size_t r, s.core.read_at(s.h, target.file, off + got, buf.get() + got, n - got));
        if (r == 0) return errno_failure(EIO, "read", s.core.abs(s.h, target.file) + " (ended before its size)");
        got += r;
      }
      stream::record rec{stream::record_type::data, seq++, off, n, stream::crc32c_of(buf.get(), n)};
      const auto head = stream::encode(rec);
      FILE_REFLINK_TRYV(w.put(head.data(), head.size()));
      FILE_REFLINK_TRYV(w.put(buf.get(), n, true));
      out.data_bytes += n;
      ++out.records;
      done += n;
      if (progress && !progress(done, total)) return failure(errc::cancelled, "send");
      off += n;
      len -= n;
    }
    return success();
  };
  // Each range: its data segments as data records, the gaps between them
  // as hole records.
  std::size_t k = 0;
  for (const auto& r : ranges) {
    std::uint64_t pos = r.offset;
    const std::uint64_t end = r.offset + r.length;
    while (pos < end) {
      while (k < segs.size() && segs[k].offset + segs[k].length <= pos) ++k;
      if (k == segs.size() || segs[k].offset >= end) {
        FILE_REFLINK_TRYV(hole(pos, end - pos));
        pos = end;
      } else if (segs[k].offset > pos) {
        FILE_REFLINK_TRYV(hole(pos, segs[k].offset - pos));
        pos = segs[k].offset;
      } else {
        const std::uint64_t stop = std::min(end, segs[k].offset + segs[k].length);
        FILE_REFLINK_TRYV(data(pos, stop - pos));
        pos = stop;
      }
    }
  }
  stream::record trailer{stream::record_type::end, seq, out.data_bytes, out.hole_bytes, w.crc()};
  const auto head = stream::encode(trailer);
  FILE_REFLINK_TRYV(w.put(head.data(), head.size()));
  out.stream_bytes = w.bytes();
  return out;
}

//! The receiver's image an incremental stream applies to: the committed
//! image, else the newest revision, whose size and fingerprint match the
//! stream's base. Refused, before anything changes, where none does, and
//! where the committed image already is the stream's result.
template <class FsOps>
result<image_found> find_base(volume_step<FsOps>& s, const stream::header& hd) {
  auto matches = [&](const image_found& img, std::uint64_t size, std::uint64_t fp) -> result<bool> {
    if (img.st.size != size) return false;
    FILE_REFLINK_TRY(std::uint64_t mine, fingerprint_of(s, img.file, img.st.size));
    return mine == fp;
  };
  FILE_REFLINK_TRY(auto clean, s.core.stat_image(s.h, s.p().clean()));
  if (clean) {
    image_found c{s.p().clean(), *clean, "the committed image", std::nullopt};
    FILE_REFLINK_TRY(bool base, matches(c, hd.base_size, hd.base_fingerprint));
    if (base) return c;
    FILE_REFLINK_TRY(bool applied, matches(c, hd.image_size, hd.target_fingerprint));
    if (applied)
      return failure(errc::stream_already_applied,
                     "the committed image already is the stream's image (" + std::to_string(hd.image_size) +
                         " bytes, changes since " + hd.base_text() + ")");
  }
  FILE_REFLINK_TRY(auto revs, s.list_revisions());
  for (auto it = revs.rbegin(); it != revs.rend(); ++it) {
    const rev_entry& e = it->second;
    FILE_REFLINK_TRY(auto st, s.core.stat_image(s.h, e.file(s.p())));
    if (!st) continue;
    image_found r{e.file(s.p()), *st, "revision " + e.name(), e};
    FILE_REFLINK_TRY(bool base, matches(r, hd.base_size, hd.base_fingerprint));
    if (base) return r;
  }
  return failure(errc::stream_base_missing,
                 "the stream holds the changes since " + hd.base_text() +
                     ", and neither the committed image nor any revision of this volume matches it");
}

template <class FsOps>
result<receive_result> receive(volume_step<FsOps>& s, const stream_source& source, progress_callback progress) {
  if (!source) return failure(errc::invalid_config, "no stream source");
  if (!progress) progress = s.copy_opts().progress;
  FILE_REFLINK_TRYV(s.require_importable());
  stream_in in(source);
  stream::header hd;
  {
    std::vector<unsigned char> bytes(stream::header_fixed);
    FILE_REFLINK_TRYV(in.get(bytes.data(), bytes.size(), "in its header"));
    FILE_REFLINK_TRY(std::size_t len, stream::header_length(bytes.data()));
    bytes.resize(len);
    FILE_REFLINK_TRYV(in.get(bytes.data() + stream::header_fixed, len - stream::header_fixed, "in its header"));
    FILE_REFLINK_TRY(hd, stream::decode(bytes.data(), len));
  }
  if (hd.vid != s.vid())
    return failure(errc::stream_invalid, "the stream is of volume " + q(hd.vid) + ", not of this one");
  receive_result out;
  out.incremental = hd.incremental;
  out.image_size = hd.image_size;
  std::optional<image_found> base;
  if (hd.incremental) {
    FILE_REFLINK_TRY(auto b, find_base(s, hd));
    out.base = b.text;
    base = std::move(b);
  }

  const path imp = s.p().import();
  FILE_REFLINK_TRYV(s.core.ensure_dir(s.h, s.p().dir));
  FILE_REFLINK_TRYV(s.core.remove_file(s.h, imp));
  undo_stack undo;
  if (base) {
    copy_options o;
    o.size = hd.image_size;
    // Not flushed here: commit's first step flushes the import's data.
    FILE_REFLINK_TRYV(s.core.copy_file(s.h, base->file, s.h, imp, o));
  } else {
    FILE_REFLINK_TRYV(s.core.create_sparse(s.h, imp, hd.image_size, create_mode::exclusive));
  }
  undo.push([&] { (void)s.core.remove_file(s.h, imp); });

  const std::uint64_t total = hd.image_size;
  std::uint64_t done = 0, next_offset = 0;
  std::uint32_t seq = 0;
  if (progress && !progress(0, total)) return failure(errc::cancelled, "receive");
  std::unique_ptr<unsigned char[]> buf(new unsigned char[stream::max_payload]);
  auto where = [&](const stream::record& r) {
    return "record " + std::to_string(r.sequence) + " (at " + std::to_string(in.bytes()) + " bytes)";
  };
  for (;;) {
    const std::uint32_t before = in.crc();
    unsigned char head[stream::record_head];
    FILE_REFLINK_TRYV(in.get(head, sizeof head, "between records"));
    FILE_REFLINK_TRY(auto rec, stream::decode_record(head));
    if (rec.sequence != seq)
      return failure(errc::stream_invalid, "record " + std::to_string(rec.sequence) + " where record " +
                                               std::to_string(seq) + " was due: records missing or reordered");
    if (rec.type == stream::record_type::end) {
      if (rec.offset != out.data_bytes || rec.length != out.hole_bytes || rec.crc != before)
        return failure(errc::stream_invalid, "the trailer does not match the records received (counts or checksum)");
      FILE_REFLINK_TRY(bool end, in.at_end());
      if (!end) return failure(errc::stream_invalid, "bytes follow the stream's trailer");
      break;
    }
    if (rec.offset < next_offset || rec.length == 0 || rec.offset > hd.image_size ||
        rec.length > hd.image_size - rec.offset)
      return failure(errc::stream_invalid, where(rec) + " covers bytes " + std::to_string(rec.offset) + "+" +
                                               std::to_string(rec.length) +
                                               ": out of order, overlapping or past the image's end");
    if (rec.type == stream::record_type::data) {
      if (rec.length > stream::max_payload)
        return failure(errc::stream_invalid, where(rec) + " is larger than a record may be");
      const auto n = static_cast<std::size_t>(rec.length);
      FILE_REFLINK_TRYV(in.get(buf.get(), n, "inside a data record", true));
      if (stream::crc32c_of(buf.get(), n) != rec.crc)
        return failure(errc::stream_invalid, where(rec) + ": data checksum mismatch");
      FILE_REFLINK_TRYV(s.core.write_at(s.h, imp, rec.offset, buf.get(), n));
      out.data_bytes += rec.length;
    } else {
      if (rec.crc != 0) return failure(errc::stream_invalid, where(rec) + ": a hole record with a checksum");
      // A full stream's file is all holes already; an incremental's clone
      // is punched where the image became a hole.
      if (base) FILE_REFLINK_TRYV(s.core.punch_hole(s.h, imp, rec.offset, rec.length, false));
      out.hole_bytes += rec.length;
    }
    next_offset = rec.offset + rec.length;
    ++seq;
    ++out.records;
    done += rec.length;
    if (progress && !progress(std::min(done, total), total)) return failure(errc::cancelled, "receive");
  }
  using step = volume_step<FsOps>;
  FILE_REFLINK_TRYV(s.commit(imp, step::superseded::rotate));
  undo.commit();
  return out;
}

}  // namespace detail
}  // namespace file_reflink
