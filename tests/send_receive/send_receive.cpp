// SPDX-License-Identifier: BSL-1.0
// changed_ranges, send and receive: the ranges checked against the bytes
// themselves after random writes, punches and resizes; streams between
// pools of every pair of filesystems, full and incremental, holes kept;
// every damaged, truncated, reordered or misdirected stream refused with
// the receiving volume exactly as before.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include "pool_support.hpp"

#include <file_reflink/changes.hpp>
#include <file_reflink/detail/changed_ranges.hpp>
#include <file_reflink/detail/stream_format.hpp>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {

const std::string V = "appvms/work/private";

//! The file of revision `n` of volume `vid`.
template <class Vol>
path revision_file(Vol& v, std::uint64_t n) {
  auto revs = REQUIRE_VALUE(v.revisions());
  const auto& info = at(revs, n);
  return path(v.vid() + ".img." + std::to_string(n) + "@" + info.timestamp);
}

//! The newest revision's number.
template <class Vol>
std::uint64_t newest(Vol& v) {
  auto revs = REQUIRE_VALUE(v.revisions());
  REQUIRE_FALSE(revs.empty());
  return revs.rbegin()->first;
}

//! Whether every byte in which `a` and `b` differ (past an end: zeros) lies
//! inside `rs`; the first one outside, otherwise.
inline std::string uncovered_difference(const std::string& a, const std::string& b, const std::vector<byte_range>& rs) {
  const std::size_t n = std::max(a.size(), b.size());
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const char x = i < a.size() ? a[i] : '\0';
    const char y = i < b.size() ? b[i] : '\0';
    if (x == y) continue;
    while (k < rs.size() && rs[k].offset + rs[k].length <= i) ++k;
    if (k == rs.size() || rs[k].offset > i) return "byte " + std::to_string(i) + " differs outside every range";
  }
  return "";
}

//! Ranges sorted, none empty, none touching another.
inline bool well_formed(const std::vector<byte_range>& rs) {
  for (std::size_t i = 0; i < rs.size(); ++i) {
    if (rs[i].length == 0) return false;
    if (i && rs[i - 1].offset + rs[i - 1].length >= rs[i].offset) return false;
  }
  return true;
}

//! A stream in memory: the sink appends, the source hands it out in pieces
//! of varying size.
struct stream_buffer {
  std::string bytes;
  stream_sink sink() {
    return [this](const void* d, std::size_t n) -> result<void> {
      bytes.append(static_cast<const char*>(d), n);
      return success();
    };
  }
};
inline stream_source source_of(std::string bytes, std::uint32_t seed = 1) {
  auto state = std::make_shared<std::pair<std::string, std::size_t>>(std::move(bytes), 0);
  auto rng = std::make_shared<std::mt19937>(seed);
  return [state, rng](void* buf, std::size_t len) -> result<std::size_t> {
    auto& [s, pos] = *state;
    std::size_t n = std::min({len, s.size() - pos, std::size_t(1 + (*rng)() % 200000)});
    std::memcpy(buf, s.data() + pos, n);
    pos += n;
    return n;
  };
}

//! The stream's pieces as the format lays them out (read here with the
//! format document's offsets, not the library's parser): the header's
//! length, then each record's [begin, end).
struct stream_layout {
  std::size_t header = 0;
  std::vector<std::pair<std::size_t, std::size_t>> records;  // the trailer last
};
inline std::uint64_t le(const std::string& s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<std::size_t>(i)]);
  return v;
}
inline stream_layout layout_of(const std::string& s) {
  stream_layout out;
  REQUIRE(s.size() >= 72);
  REQUIRE(s.compare(0, 8, "FRLKSTRM") == 0);
  out.header = static_cast<std::size_t>(le(s, 12, 4));
  std::size_t pos = out.header;
  while (pos < s.size()) {
    const auto type = le(s, pos, 4);
    std::size_t end = pos + 32 + (type == 1 ? static_cast<std::size_t>(le(s, pos + 16, 8)) : 0);
    REQUIRE(end <= s.size());
    out.records.emplace_back(pos, end);
    pos = end;
  }
  return out;
}

//! Random changes to a running volume: writes (some of zeros), punches,
//! and one grow; `changed` sums what they touched, rounded out to blocks.
template <class Env>
void mutate(Env& env, typename Env::volume_type& v, std::mt19937& rng, std::uint64_t& changed, bool grow) {
  REQUIRE_OK(v.start());
  std::uint64_t size = REQUIRE_VALUE(v.size());
  auto block_span = [](std::uint64_t off, std::uint64_t len) {
    return ((off + len + 4095) / 4096 - off / 4096) * 4096;
  };
  for (int i = 0; i < 12; ++i) {
    const std::uint64_t len = 1 + rng() % (48 * KiB);
    const std::uint64_t off = rng() % (size - len);
    switch (rng() % 4) {
      case 0:
        env.vm_write(v.vid(), off, std::string(static_cast<std::size_t>(len), '\0'));
        break;
      case 1: {
        const std::uint64_t a = off / 4096 * 4096, l = std::max<std::uint64_t>(4096, len / 4096 * 4096);
        if (a + l <= size) REQUIRE_OK(v.discard(a, l));
        break;
      }
      default:
        env.vm_write(v.vid(), off, pattern(static_cast<std::size_t>(len), rng()));
    }
    changed += block_span(off, len) + 4096;
  }
  if (grow) {
    REQUIRE_OK(v.resize(size + 256 * KiB));
    env.vm_write(v.vid(), size + 64 * KiB, pattern(8 * KiB, rng()));
    changed += 256 * KiB;
  }
  REQUIRE_OK(v.stop());
}

}  // namespace

TEST_CASE("stream format: CRC-32C is the Castagnoli CRC, in hardware as in Boost.CRC") {
  namespace st = file_reflink::detail::stream;
  CHECK(st::crc32c_of("123456789", 9) == 0xE3069283u);
  std::mt19937 rng(3);
  for (std::size_t len : {0u, 1u, 7u, 8u, 9u, 63u, 4096u, 100003u}) {
    std::string s = pattern(len, static_cast<std::uint32_t>(rng()));
    st::crc32c c;
    c.process_bytes(s.data(), s.size());
    CHECK(st::crc32c_of(s.data(), s.size()) == c.checksum());
  }
}

FILE_REFLINK_FIXTURE_TEST("changed_ranges: every difference after random writes, punches and a resize, and no more") {
  pool_env<Fx> env(fx, 3);
  auto v = env.origin(V, 4 * MiB);
  env.commit_data(v, 0, pattern(3 * MiB, 7));
  std::mt19937 rng(42);
  for (int round = 0; round < 4; ++round) {
    CAPTURE(round);
    std::uint64_t touched = 0;
    mutate(env, v, rng, touched, round == 2);
    const std::uint64_t n = newest(v);
    auto ch = REQUIRE_VALUE(v.changed_ranges(image_ref::revision(n)));
    const std::string before = env.read(revision_file(v, n));
    const std::string after = env.read(env.clean(V));
    CHECK(ch.from_size == before.size());
    CHECK(ch.to_size == after.size());
    CHECK(well_formed(ch.ranges));
    CHECK(uncovered_difference(before, after, ch.ranges) == "");
    // Where the images share storage the maps answer; where they cannot
    // (no reflinks: a start copies the image) the data was compared.
    CHECK(ch.method == (Fx::reflinks ? change_method::extent_map : change_method::data_comparison));
    // Tight: what the changes touched, give or take a block each.
    CHECK(ch.bytes() <= touched);
    CHECK(ch.bytes() > 0);
    // Each direction, and an image against itself.
    auto back = REQUIRE_VALUE(v.changed_ranges(image_ref::committed(), image_ref::revision(n)));
    CHECK(uncovered_difference(after, before, back.ranges) == "");
    CHECK(REQUIRE_VALUE(v.changed_ranges(image_ref::committed(), image_ref::committed())).ranges.empty());
  }
  // A revision by label; an unknown one.
  REQUIRE_OK(v.keep_revision(newest(v), "base"));
  auto by_label = REQUIRE_VALUE(v.changed_ranges(image_ref::labelled("base")));
  CHECK(by_label.ranges == REQUIRE_VALUE(v.changed_ranges(image_ref::revision(newest(v)))).ranges);
  CHECK_ERR(v.changed_ranges(image_ref::revision(99)), errc::revision_not_found);
  CHECK_ERR(v.changed_ranges(image_ref::labelled("nope")), errc::revision_not_found);
}

FILE_REFLINK_FIXTURE_TEST("changed_ranges: images that share no storage are compared by their data, which can be cancelled") {
  pool_env<Fx> env(fx, 2);
  auto v = env.origin(V, 2 * MiB);
  const std::string a = pattern(2 * MiB, 1);
  env.commit_data(v, 0, a);
  // An import is a new file: it shares nothing with the revision it makes.
  REQUIRE_VALUE(v.import_data(2 * MiB));
  std::string b = a;
  std::memcpy(&b[100000], "changed", 7);
  std::memcpy(&b[1500000], "changed too", 11);
  write_bytes(fx, env.h, env.import(V), 0, b);
  REQUIRE_OK(v.import_data_end(true));
  std::vector<std::pair<std::uint64_t, std::uint64_t>> calls;
  auto ch = REQUIRE_VALUE(v.changed_ranges(image_ref::revision(newest(v)), image_ref::committed(),
                                           [&](std::uint64_t done, std::uint64_t total) {
                                             calls.emplace_back(done, total);
                                             return true;
                                           }));
  CHECK(ch.method == change_method::data_comparison);
  REQUIRE(ch.ranges.size() == 2);
  CHECK(ch.ranges[0] == byte_range{100000 / 4096 * 4096, 4096});
  CHECK(ch.ranges[1] == byte_range{1500000 / 4096 * 4096, 4096});
  REQUIRE_FALSE(calls.empty());
  CHECK(calls.back().first == calls.back().second);
  CHECK(calls.back().second == 2 * MiB);
  CHECK_ERR(v.changed_ranges(image_ref::revision(newest(v)), image_ref::committed(),
                             [](std::uint64_t done, std::uint64_t) { return done < MiB; }),
            errc::cancelled);
}

namespace {

//! The data segments of a file, merged.
template <class F, class H>
ranges data_of(F& fx, const H& h, const path& rel) {
  ranges out;
  auto st = stat_of(fx, h, rel);
  const auto segs = REQUIRE_VALUE(fx.ops.data_segments(h, rel, st.size));
  for (const auto& s : segs) out.emplace_back(s.offset, s.offset + s.length);
  return merged(out);
}

//! The data extents of a file (FIEMAP, unwritten extents excluded), merged
//! and cut to its size.
template <class F, class H>
ranges extent_data_of(F& fx, const H& h, const path& rel) {
  ranges out;
  auto st = stat_of(fx, h, rel);
  auto got = fx.ops.extents(h, rel);
  if (!got && got.error() == std::errc::operation_not_supported) return data_of(fx, h, rel);  // tmpfs
  const auto ex = REQUIRE_VALUE(std::move(got));
  for (const auto& e : ex)
    if (e.logical < st.size) out.emplace_back(e.logical, std::min(st.size, e.logical + e.length));
  return merged(out);
}

inline std::string text_of(const ranges& rs) {
  std::string text;
  for (const auto& [b, e] : rs) text += "[" + std::to_string(b) + "," + std::to_string(e) + ")";
  return text;
}

//! Every range of `inner` inside `outer` (both merged).
inline bool within(const ranges& inner, const ranges& outer) {
  std::size_t k = 0;
  for (const auto& [b, e] : inner) {
    while (k < outer.size() && outer[k].second <= b) ++k;
    if (k == outer.size() || outer[k].first > b || outer[k].second < e) return false;
  }
  return true;
}

//! Sender `a` (fixture `FA`) to receiver `b`: a full stream, then three
//! incremental ones with writes, punches, a revert and a resize between
//! them; the receiver's committed image equals the sender's after each,
//! its holes where the sender's are.
template <class EA, class EB>
void round_trip(EA& a, EB& b, const std::string& what) {
  CAPTURE(what);
  auto src = a.origin(V, 3 * MiB);
  std::string base = pattern(1 * MiB, 3);
  a.commit_data(src, 512 * KiB, base);
  auto dst = b.origin(V, 64 * KiB);
  bool full_stream = true;
  auto check_same = [&](const std::string& step) {
    CAPTURE(step);
    CHECK(b.read(b.clean(V)) == a.read(a.clean(V)));
    // Holes stay holes: a full stream reproduces the data segments; an
    // increment found by comparing data sends no zeros that were written
    // over zeros, so the receiver may have a hole where the sender has
    // written zeros, never data where the sender has a hole.
    // The receiver's data as its extent map has it: where XFS wrote into
    // shared storage, SEEK_DATA also reports the blocks it preallocated
    // around the write for copy-on-write, until it trims them.
    const ranges mine = full_stream ? data_of(b.fx, b.h, b.clean(V)) : extent_data_of(b.fx, b.h, b.clean(V));
    const ranges theirs = data_of(a.fx, a.h, a.clean(V));
    INFO("receiver's data " << text_of(mine) << ", sender's " << text_of(theirs));
    if (full_stream)
      CHECK(mine == theirs);
    else
      CHECK(within(mine, theirs));
  };
  stream_buffer full;
  auto sent = REQUIRE_VALUE(src.send(full.sink()));
  CHECK_FALSE(sent.incremental);
  CHECK(sent.stream_bytes == full.bytes.size());
  CHECK(sent.data_bytes == base.size());
  auto got = REQUIRE_VALUE(dst.receive(source_of(full.bytes)));
  CHECK_FALSE(got.incremental);
  CHECK(got.data_bytes == sent.data_bytes);
  check_same("full");
  full_stream = false;
  // Send the changes since the sender's newest revision, which the
  // receiver holds as its committed image.
  auto increment = [&](const std::string& step, std::uint64_t touched) {
    CAPTURE(step);
    stream_buffer inc;
    auto s = REQUIRE_VALUE(src.send(inc.sink(), image_ref::revision(newest(src))));
    CHECK(s.incremental);
    if (touched) CHECK(s.data_bytes <= touched);
    CHECK(inc.bytes.size() < full.bytes.size());
    auto r = REQUIRE_VALUE(dst.receive(source_of(inc.bytes, static_cast<std::uint32_t>(touched))));
    CHECK(r.incremental);
    CHECK(r.base == "the committed image");
    check_same(step);
    CHECK(REQUIRE_VALUE(dst.size()) == REQUIRE_VALUE(src.size()));
  };
  std::mt19937 rng(7);
  std::uint64_t touched = 0;
  mutate(a, src, rng, touched, false);
  increment("writes and punches", touched);
  a.commit_data(src, 0, pattern(64 * KiB, 99));
  increment("one write", 68 * KiB);
  // A revert: the committed image goes back to the one before.
  REQUIRE_OK(src.revert());
  increment("revert", 0);
  touched = 0;
  mutate(a, src, rng, touched, true);
  increment("writes, punches and a resize", touched);
  CHECK(temporaries(b.files()).empty());
  CHECK_FALSE(b.has(b.import(V)));
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST("send/receive: full and incremental streams to a pool on every filesystem") {
  {
    pool_env<Fx> a(fx, 2, fx.root / "pool-a");
    pool_env<Fx> b(fx, 2, fx.root / "pool-b");
    round_trip(a, b, std::string(Fx::name) + " -> " + Fx::name);
  }
  {
    pool_env<Fx> a(fx, 2, fx.root / "pool-a2");
    pool_env<Fx> far(fx, 2, fx.other_root / "pool-far", false);
    round_trip(a, far, std::string(Fx::name) + " -> another filesystem without reflinks");
  }
  {
    pool_env<Fx> far(fx, 2, fx.other_root / "pool-far-sender", false);
    pool_env<Fx> b(fx, 2, fx.root / "pool-b2");
    round_trip(far, b, std::string("another filesystem without reflinks -> ") + Fx::name);
  }
  {
    memory_fixture m;
    pool_env<Fx> a(fx, 2, fx.root / "pool-a3");
    pool_env<memory_fixture> b(m, 2);
    round_trip(a, b, std::string(Fx::name) + " -> memory");
  }
#if !defined(FILE_REFLINK_TEST_MEMORY_ONLY)
  auto to = [&](auto& other) {
    using FO = std::decay_t<decltype(other)>;
    pool_env<Fx> a(fx, 2, fx.root / (std::string("pool-to-") + FO::name));
    pool_env<FO> b(other, 2, path(), FO::reflinks);
    round_trip(a, b, std::string(Fx::name) + " -> " + FO::name);
  };
  {
    btrfs_fixture o;
    to(o);
  }
  {
    xfs_fixture o;
    to(o);
  }
  {
    ext4_fixture o;
    to(o);
  }
#endif
}

FILE_REFLINK_FIXTURE_TEST("send/receive: streams that must not apply are refused and change nothing") {
  pool_env<Fx> a(fx, 3, fx.root / "pool-a");
  pool_env<Fx> b(fx, 2, fx.root / "pool-b");
  auto src = a.origin(V, 2 * MiB);
  a.commit_data(src, 0, pattern(1536 * KiB, 1));
  REQUIRE_OK(src.start());
  REQUIRE_OK(src.discard(256 * KiB, 128 * KiB));
  REQUIRE_OK(src.stop());
  auto dst = b.origin(V, 64 * KiB);
  stream_buffer full;
  REQUIRE_VALUE(src.send(full.sink()));
  REQUIRE_VALUE(dst.receive(source_of(full.bytes)));
  a.commit_data(src, 64 * KiB, pattern(16 * KiB, 2));
  a.commit_data(src, 1200 * KiB, pattern(1100 * KiB, 3));
  stream_buffer inc;
  REQUIRE_VALUE(src.send(inc.sink(), image_ref::revision(newest(src) - 1)));
  const auto lay = layout_of(inc.bytes);
  REQUIRE(lay.records.size() >= 4);  // data, hole, data..., trailer

  const auto before = b.snapshot();
  const auto revs_before = REQUIRE_VALUE(dst.revisions());
  auto unchanged = [&](const std::string& what) {
    CAPTURE(what);
    CHECK(b.snapshot() == before);
    CHECK(REQUIRE_VALUE(dst.revisions()).size() == revs_before.size());
    CHECK_FALSE(b.has(b.import(V)));
    CHECK(temporaries(b.files()).empty());
  };
  auto refused = [&](const std::string& bytes, errc code, const std::string& what) {
    CAPTURE(what);
    auto r = dst.receive(source_of(bytes));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == code);
    CHECK(r.error().message().find("receive volume '" + V + "'") == 0);
    unchanged(what);
    return r.error().message();
  };

  // Truncated: at every record boundary and inside every record and the header.
  refused(std::string(), errc::stream_invalid, "empty");
  refused(inc.bytes.substr(0, 40), errc::stream_invalid, "inside the header");
  refused(inc.bytes.substr(0, lay.header), errc::stream_invalid, "after the header");
  for (const auto& [begin, end] : lay.records) {
    refused(inc.bytes.substr(0, begin + (end - begin) / 2), errc::stream_invalid, "inside a record");
    if (end < inc.bytes.size()) refused(inc.bytes.substr(0, end), errc::stream_invalid, "at a record boundary");
  }
  // One flipped bit: in the header, a record's head, its payload, the trailer.
  auto flipped = [&](std::size_t at) {
    std::string s = inc.bytes;
    s[at] = static_cast<char>(s[at] ^ 0x10);
    return s;
  };
  refused(flipped(20), errc::stream_invalid, "bit in the header");
  refused(flipped(lay.header - 2), errc::stream_invalid, "bit in the header's vid");
  for (const auto& [begin, end] : lay.records) {
    refused(flipped(begin + 9), errc::stream_invalid, "bit in a record's head");
    if (end - begin > 32) refused(flipped(begin + 32 + (end - begin - 32) / 2), errc::stream_invalid, "bit in a payload");
  }
  refused(flipped(inc.bytes.size() - 1), errc::stream_invalid, "bit in the trailer");
  // Records swapped, dropped, or something after the trailer.
  {
    const auto& r0 = lay.records[0];
    const auto& r1 = lay.records[1];
    std::string s = inc.bytes.substr(0, r0.first) + inc.bytes.substr(r1.first, r1.second - r1.first) +
                    inc.bytes.substr(r0.first, r0.second - r0.first) + inc.bytes.substr(r1.second);
    refused(s, errc::stream_invalid, "two records swapped");
    std::string dropped = inc.bytes.substr(0, r0.first) + inc.bytes.substr(r0.second);
    refused(dropped, errc::stream_invalid, "a record dropped");
    refused(inc.bytes + "x", errc::stream_invalid, "bytes after the trailer");
  }
  // A stream of another volume.
  {
    auto other = a.origin("appvms/other/private", 2 * MiB);
    stream_buffer s;
    REQUIRE_VALUE(other.send(s.sink()));
    auto m = refused(s.bytes, errc::stream_invalid, "another vid");
    CHECK(m.find("appvms/other/private") != std::string::npos);
  }
  // A base the receiver lacks: changes since an older revision.
  {
    stream_buffer s;
    REQUIRE_VALUE(src.send(s.sink(), image_ref::revision(newest(src) - 2)));
    auto m = refused(s.bytes, errc::stream_base_missing, "missing base");
    CHECK(m.find("revision " + std::to_string(newest(src) - 2)) != std::string::npos);
  }
  // The right stream applies; the same stream again is refused.
  REQUIRE_VALUE(dst.receive(source_of(inc.bytes)));
  CHECK(b.read(b.clean(V)) == a.read(a.clean(V)));
  {
    const auto applied = b.snapshot();
    auto r = dst.receive(source_of(inc.bytes));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::stream_already_applied);
    CHECK(b.snapshot() == applied);
  }
  // A receiver whose image is another one of the same size: wrong base.
  {
    pool_env<Fx> c(fx, 0, fx.root / "pool-c");
    auto v = c.origin(V, 2 * MiB);
    c.commit_data(v, 0, pattern(1536 * KiB, 77));
    const auto snap = c.snapshot();
    auto r = v.receive(source_of(inc.bytes));
    REQUIRE_FALSE(r);
    CHECK(r.error().code() == errc::stream_base_missing);
    CHECK(c.snapshot() == snap);
  }
  // Cancelled from the progress callback: nothing left.
  {
    stream_buffer s;
    a.commit_data(src, 0, pattern(8 * KiB, 5));
    REQUIRE_VALUE(src.send(s.sink(), image_ref::revision(newest(src))));
    const auto snap = b.snapshot();
    CHECK_ERR(dst.receive(source_of(s.bytes), [](std::uint64_t done, std::uint64_t) { return done == 0; }),
              errc::cancelled);
    CHECK(b.snapshot() == snap);
    CHECK_ERR(src.send(s.sink(), std::nullopt, [](std::uint64_t done, std::uint64_t) { return done == 0; }),
              errc::cancelled);
  }
}

FILE_REFLINK_FIXTURE_TEST("send/receive: Pool::receive makes the volume a full stream is of, and only that") {
  pool_env<Fx> a(fx, 2, fx.root / "pool-a");
  pool_env<Fx> b(fx, 2, fx.root / "pool-b");
  auto src = a.origin(V, 2 * MiB);
  a.commit_data(src, 256 * KiB, pattern(300 * KiB, 4));
  stream_buffer full;
  REQUIRE_VALUE(src.send(full.sink()));
  a.commit_data(src, 0, pattern(4 * KiB, 5));
  stream_buffer inc;
  REQUIRE_VALUE(src.send(inc.sink(), image_ref::revision(newest(src))));

  auto regular_files = [&] {
    std::set<std::string> out;
    for (const auto& n : b.files())
      if (b.st(path(n)).type == file_type::regular) out.insert(n);
    return out;
  };
  const auto empty = regular_files();
  // An incremental stream needs the volume; a truncated full one leaves none.
  CHECK_ERR(b.pool.receive(V, source_of(inc.bytes)), errc::stream_base_missing);
  CHECK_ERR(b.pool.receive(V, source_of(full.bytes.substr(0, full.bytes.size() - 10))), errc::stream_invalid);
  CHECK_ERR(b.pool.receive("appvms/other/private", source_of(full.bytes)), errc::stream_invalid);
  CHECK_ERR(b.pool.get_volume(V), errc::volume_not_found);
  CHECK(regular_files() == empty);

  auto r = REQUIRE_VALUE(b.pool.receive(V, source_of(full.bytes)));
  CHECK_FALSE(r.incremental);
  auto v = REQUIRE_VALUE(b.pool.get_volume(V));
  CHECK(v.kind() == volume_kind::origin);
  CHECK(REQUIRE_VALUE(v.size()) == 2 * MiB);
  CHECK(b.read(b.clean(V), 256 * KiB, 300 * KiB) == pattern(300 * KiB, 4));
  // The volume exists now: the increment applies to it.
  REQUIRE_VALUE(b.pool.receive(V, source_of(inc.bytes)));
  CHECK(b.read(b.clean(V)) == a.read(a.clean(V)));
}

FILE_REFLINK_FIXTURE_TEST("send/receive: a volume Pool::receive makes is in the pool's catalog") {
  pool_env<Fx> a(fx, 2, fx.root / "pool-a");
  auto src = a.origin(V, MiB);
  a.commit_data(src, 0, pattern(64 * KiB, 6));
  stream_buffer full;
  REQUIRE_VALUE(src.send(full.sink()));
  pool_config c;
  c.name = "catalogued";
  c.dir_path = fx.root / "pool-cat";
  c.catalog = true;
  c.setup_check = Fx::reflinks;
  {
    Pool<typename Fx::ops_type> p(c, fx.ops);
    REQUIRE_OK(p.setup());
    REQUIRE_VALUE(p.receive(V, source_of(full.bytes)));
  }
  // Another Pool object (another process) finds it in the catalog.
  Pool<typename Fx::ops_type> q(c, fx.ops);
  auto v = REQUIRE_VALUE(q.get_volume(V));
  CHECK(v.kind() == volume_kind::origin);
  CHECK(REQUIRE_VALUE(v.size()) == MiB);
  auto h = fx.open(c.dir_path);
  CHECK(read_all(fx, h, path(V + ".img")) == a.read(a.clean(V)));
}

FILE_REFLINK_FIXTURE_TEST("changed_ranges: the extents of written data are exact, and an inexact one is never taken as shared") {
  // The filesystems under test store plain data: FIEMAP flags none of it
  // encoded, inline or delayed.
  make_file(fx, fx.dir(), "f", MiB, {{0, pattern(256 * KiB, 1)}, {512 * KiB, pattern(64 * KiB, 2)}});
  const auto ex = REQUIRE_VALUE(fx.ops.extents(fx.dir(), "f"));
  REQUIRE_FALSE(ex.empty());
  for (const auto& e : ex) CHECK(e.exact);
  // Two maps at one address: unchanged when exact, changed when either is not.
  using file_reflink::detail::extent_map_changes;
  std::vector<extent> a{{0, 1 << 20, 64 * KiB, true, true}}, b = a;
  CHECK(extent_map_changes(a, b, 64 * KiB).empty());
  b[0].exact = false;
  REQUIRE(extent_map_changes(a, b, 64 * KiB).size() == 1);
  CHECK(extent_map_changes(a, b, 64 * KiB)[0] == byte_range{0, 64 * KiB});
  // A hole in both is unchanged, data against a hole is changed, and the
  // same storage at another logical offset is not the same bytes.
  std::vector<extent> c{{64 * KiB, 1 << 20, 64 * KiB, true, true}};
  auto r = extent_map_changes(a, c, 256 * KiB);
  REQUIRE(r.size() == 1);
  CHECK(r[0] == byte_range{0, 128 * KiB});
}
