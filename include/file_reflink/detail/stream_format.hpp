// SPDX-License-Identifier: BSL-1.0
//! \file
//! The send stream, version 1 (doc/stream-format.md): its header, records
//! and trailer as bytes, their checksums (CRC-32C), and the fingerprint
//! that identifies an image without reading all of it (CRC-64 over its size
//! and 64 blocks at fixed positions). Used by `Volume::send` and
//! `Volume::receive`; nothing here touches a file.
#pragma once

#include <file_reflink/detail/no_throw.hpp>
#include <file_reflink/error.hpp>

#include <boost/crc.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace file_reflink {
namespace detail {
namespace stream {

//! CRC-32C (Castagnoli), as iSCSI and ext4 use it.
using crc32c = boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true>;
//! CRC-64/XZ (ECMA-182 polynomial), for fingerprints.
using crc64 = boost::crc_optimal<64, 0x42F0E1EBA9EA3693ULL, ~0ULL, ~0ULL, true, true>;

inline constexpr char magic[8] = {'F', 'R', 'L', 'K', 'S', 'T', 'R', 'M'};
inline constexpr std::uint32_t version = 1;
//! The header's fixed part, before the vid and the base's stamp.
inline constexpr std::size_t header_fixed = 72;
inline constexpr std::size_t max_vid = 4096;
inline constexpr std::size_t max_stamp = 256;
//! Every record starts with this many bytes.
inline constexpr std::size_t record_head = 32;
//! The most payload one data record carries.
inline constexpr std::uint64_t max_payload = 1024 * 1024;
//! Header flag: the stream holds only the changes since its base.
inline constexpr std::uint32_t flag_incremental = 1;

enum class record_type : std::uint32_t { data = 1, hole = 2, end = 3 };

inline void put32(unsigned char* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline void put64(unsigned char* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
inline std::uint32_t get32(const unsigned char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline std::uint64_t get64(const unsigned char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#define FILE_REFLINK_CRC32C_SSE42 1
//! CRC-32C with the SSE 4.2 instruction (the same function as `crc32c`):
//! 8 bytes per instruction instead of a table lookup per byte.
__attribute__((target("sse4.2"))) inline std::uint32_t crc32c_sse42(const unsigned char* p, std::size_t len) {
  std::uint64_t c = 0xFFFFFFFFu;
  for (; len >= 8; p += 8, len -= 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
  }
  auto c32 = static_cast<std::uint32_t>(c);
  for (; len > 0; ++p, --len) c32 = __builtin_ia32_crc32qi(c32, *p);
  return c32 ^ 0xFFFFFFFFu;
}
inline bool have_sse42() noexcept {
  static const bool yes = __builtin_cpu_supports("sse4.2");
  return yes;
}
#endif

//! The CRC-32C of `len` bytes (in hardware where the processor has it).
inline std::uint32_t crc32c_of(const void* data, std::size_t len) {
#if defined(FILE_REFLINK_CRC32C_SSE42)
  if (have_sse42()) return crc32c_sse42(static_cast<const unsigned char*>(data), len);
#endif
  crc32c c;
  c.process_bytes(data, len);
  return c.checksum();
}

//! What the header says.
struct header {
  std::uint64_t image_size = 0;
  bool incremental = false;
  std::string vid;
  std::uint64_t target_fingerprint = 0;  //!< the sent image's fingerprint
  std::uint64_t base_number = 0;         //!< the sender's revision number of the base
  std::uint64_t base_size = 0;
  std::uint64_t base_fingerprint = 0;
  std::string base_stamp;                //!< the sender's stamp of the base revision

  //! "revision N (STAMP) of 'VID', SIZE bytes, fingerprint HEX", for messages.
  std::string base_text() const {
    char fp[17];
    std::snprintf(fp, sizeof fp, "%016llx", static_cast<unsigned long long>(base_fingerprint));
    return "revision " + std::to_string(base_number) + " (" + base_stamp + ") of " + q(vid) + ", " +
           std::to_string(base_size) + " bytes, fingerprint " + fp;
  }
};

//! The header as bytes, its CRC-32C last.
inline std::vector<unsigned char> encode(const header& h) {
  std::vector<unsigned char> out(header_fixed + h.vid.size() + h.base_stamp.size() + 4, 0);
  unsigned char* p = out.data();
  std::memcpy(p, magic, sizeof magic);
  put32(p + 8, version);
  put32(p + 12, static_cast<std::uint32_t>(out.size()));
  put64(p + 16, h.image_size);
  put32(p + 24, h.incremental ? flag_incremental : 0);
  put32(p + 28, static_cast<std::uint32_t>(h.vid.size()));
  put64(p + 32, h.target_fingerprint);
  put64(p + 40, h.base_number);
  put64(p + 48, h.base_size);
  put64(p + 56, h.base_fingerprint);
  put32(p + 64, static_cast<std::uint32_t>(h.base_stamp.size()));
  std::memcpy(p + header_fixed, h.vid.data(), h.vid.size());
  std::memcpy(p + header_fixed + h.vid.size(), h.base_stamp.data(), h.base_stamp.size());
  put32(p + out.size() - 4, crc32c_of(p, out.size() - 4));
  return out;
}

//! From the fixed part: the whole header's length, or why it is no header.
inline result<std::size_t> header_length(const unsigned char* fixed) {
  if (std::memcmp(fixed, magic, sizeof magic) != 0)
    return failure(errc::stream_invalid, "not a file_reflink send stream (bad magic)");
  const std::uint32_t v = get32(fixed + 8);
  if (v != version)
    return failure(errc::stream_invalid, "stream format version " + std::to_string(v) + " (this library reads version " +
                                             std::to_string(version) + ")");
  const std::uint32_t len = get32(fixed + 12);
  const std::uint32_t vid_len = get32(fixed + 28), stamp_len = get32(fixed + 64);
  if (vid_len > max_vid || stamp_len > max_stamp || len != header_fixed + vid_len + stamp_len + 4)
    return failure(errc::stream_invalid, "corrupt stream header (lengths)");
  return static_cast<std::size_t>(len);
}

//! The whole header, checked.
inline result<header> decode(const unsigned char* p, std::size_t len) {
  if (get32(p + len - 4) != crc32c_of(p, len - 4)) return failure(errc::stream_invalid, "stream header checksum mismatch");
  header h;
  h.image_size = get64(p + 16);
  const std::uint32_t flags = get32(p + 24);
  if (flags & ~flag_incremental) return failure(errc::stream_invalid, "stream header has unknown flags");
  h.incremental = (flags & flag_incremental) != 0;
  const std::uint32_t vid_len = get32(p + 28), stamp_len = get32(p + 64);
  h.target_fingerprint = get64(p + 32);
  h.base_number = get64(p + 40);
  h.base_size = get64(p + 48);
  h.base_fingerprint = get64(p + 56);
  h.vid.assign(reinterpret_cast<const char*>(p + header_fixed), vid_len);
  h.base_stamp.assign(reinterpret_cast<const char*>(p + header_fixed + vid_len), stamp_len);
  return h;
}

//! One record's head.
struct record {
  record_type type = record_type::data;
  std::uint32_t sequence = 0;
  std::uint64_t offset = 0;  //!< end: total payload bytes
  std::uint64_t length = 0;  //!< end: total hole bytes
  std::uint32_t crc = 0;     //!< data: the payload's CRC-32C; end: of every byte before the trailer
};

inline std::array<unsigned char, record_head> encode(const record& r) {
  std::array<unsigned char, record_head> out{};
  put32(out.data(), static_cast<std::uint32_t>(r.type));
  put32(out.data() + 4, r.sequence);
  put64(out.data() + 8, r.offset);
  put64(out.data() + 16, r.length);
  put32(out.data() + 24, r.crc);
  put32(out.data() + 28, crc32c_of(out.data(), 28));
  return out;
}

inline result<record> decode_record(const unsigned char* p) {
  if (get32(p + 28) != crc32c_of(p, 28)) return failure(errc::stream_invalid, "record head checksum mismatch");
  record r;
  const std::uint32_t t = get32(p);
  if (t < 1 || t > 3) return failure(errc::stream_invalid, "unknown record type " + std::to_string(t));
  r.type = static_cast<record_type>(t);
  r.sequence = get32(p + 4);
  r.offset = get64(p + 8);
  r.length = get64(p + 16);
  r.crc = get32(p + 24);
  return r;
}

//! Blocks a fingerprint reads, and their size.
inline constexpr std::uint64_t fingerprint_blocks = 64;
inline constexpr std::uint64_t fingerprint_block = 4096;

//! The fingerprint of an image of `size` bytes: CRC-64 over the size (8
//! bytes, little-endian) and 64 blocks of 4 KiB at fixed positions (block
//! k * (n - 1) / 63 of the image's n blocks, every block of a smaller
//! image; the last one cut at the end). `read` is
//! `result<std::size_t>(std::uint64_t offset, void* buf, std::size_t len)`;
//! what it cannot read (past the end) counts as zeros. Independent of the
//! extent map: a hole and written zeros give the same fingerprint.
template <class Read>
result<std::uint64_t> fingerprint(std::uint64_t size, Read&& read) {
  crc64 c;
  unsigned char sz[8];
  put64(sz, size);
  c.process_bytes(sz, sizeof sz);
  const std::uint64_t n = (size + fingerprint_block - 1) / fingerprint_block;
  if (n == 0) return c.checksum();
  std::vector<unsigned char> buf(fingerprint_block);
  std::uint64_t last = ~std::uint64_t(0);
  const std::uint64_t samples = std::min(n, fingerprint_blocks);
  for (std::uint64_t k = 0; k < samples; ++k) {
    const std::uint64_t block = samples == n ? k : k * (n - 1) / (fingerprint_blocks - 1);
    if (block == last) continue;
    last = block;
    const std::uint64_t off = block * fingerprint_block;
    const auto len = static_cast<std::size_t>(std::min(fingerprint_block, size - off));
    std::size_t got = 0;
    while (got < len) {
      FILE_REFLINK_TRY(std::size_t r, read(off + got, buf.data() + got, len - got));
      if (r == 0) break;
      got += r;
    }
    std::fill(buf.begin() + static_cast<std::ptrdiff_t>(got), buf.begin() + static_cast<std::ptrdiff_t>(len), 0);
    c.process_bytes(buf.data(), len);
  }
  return c.checksum();
}

}  // namespace stream
}  // namespace detail
}  // namespace file_reflink
