// SPDX-License-Identifier: BSL-1.0
//! \file
//! The machinery of the differential test: contract calls as plain values
//! (so a sequence can be generated, printed, replayed and shrunk), the
//! generator of random sequences and starting trees, one executor for both
//! policies, snapshots of a whole tree through the contract, and the
//! comparison of two sides call by call.
//!
//! A sequence runs on two sides from the same starting tree: `MemoryFsOps`,
//! mounted to match the real filesystem (`memory_mount_for`), and
//! `LinuxFsOps` on a real btrfs, XFS or ext4. After every call both results
//! are compared (success or the exact error, and every value returned), and
//! then both trees: names and types, size, link count, allocation, whether
//! mtime and ctime moved (the exact mtime where one was set), which ranges
//! hold data and which are shared, the bytes, and which files share storage.
//!
//! Where the mock keeps a documented difference (memory.hpp), the comparison
//! takes exactly that much slack, and no more: btrfs's shared flags are
//! checked to cover the mock's (`shared_flags`), btrfs's inline files are
//! left out of the sharing comparison (`inline_files`), allocation on XFS
//! and ext4 is compared on the data extents st_blocks must cover
//! (`allocation`), a btrfs punch_hole without data may move the times or
//! write zeroed end blocks (`reconcile_punch`), and the real side is read
//! again after syncfs, with longer and longer pauses, before a difference
//! counts (`settle`).
#pragma once

#include "../support/patterns.hpp"
#include "../support/ranges.hpp"
#include "../support/scratch_fs.hpp"

#include <file_reflink/detail/changed_ranges.hpp>
#include <file_reflink/detail/copy.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/fs_ops/linux.hpp>
#include <file_reflink/fs_ops/memory.hpp>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace file_reflink::differential {

using test::scratch_kind;

constexpr std::uint64_t KiB = 1024;
//! The largest file ext4 keeps with 4 KiB blocks (`s_maxbytes`).
constexpr std::uint64_t ext4_max_file = (std::uint64_t(1) << 44) - 4096;
constexpr std::uint64_t i64_max = static_cast<std::uint64_t>(INT64_MAX);

// ---------------------------------------------------------------------------
// What the memory side mounts to stand for a real filesystem

//! The mount options that make a `MemoryFsOps` filesystem behave like `kind`
//! as the test's mkfs makes it (4 KiB blocks; XFS with reflink=1 and
//! bigtime; ext4 with 256-byte inodes).
inline mount_options memory_mount_for(scratch_kind kind) {
  switch (kind) {
    case scratch_kind::btrfs: return mount_options::btrfs();
    case scratch_kind::xfs: return mount_options::xfs();
    case scratch_kind::ext4: return mount_options::ext4();
  }
  return mount_options{};
}

//! The filesystem the copies and clones of a run cross to: one without
//! reflinks for btrfs and XFS, one with them for ext4.
inline scratch_kind other_kind_for(scratch_kind kind) {
  return kind == scratch_kind::ext4 ? scratch_kind::xfs : scratch_kind::ext4;
}

// ---------------------------------------------------------------------------
// Random choices

//! A seeded generator with the few helpers the generator needs.
class rng {
public:
  explicit rng(std::uint64_t seed) : g_(seed * 0x9E3779B97F4A7C15ull + 0x5851F42D4C957F2Dull) {}
  std::uint64_t next() { return g_(); }
  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : g_() % n; }
  bool chance(unsigned percent) { return below(100) < percent; }
  template <class T, std::size_t N>
  const T& pick(const T (&a)[N]) {
    return a[below(N)];
  }

private:
  std::mt19937_64 g_;
};

// ---------------------------------------------------------------------------
// Calls as values

enum class op : std::uint8_t {
  open_dir, stat_path, remove_dir, path_of, mkdir, rmdir, create, read, write, resize, punch_hole, rename,
  link, remove, fsync, stat, set_mtime, list, statvfs, extents, clone, copy, notify_resize, probe_reflink,
};
constexpr std::size_t op_count = static_cast<std::size_t>(op::probe_reflink) + 1;

inline const char* name_of(op o) {
  static const char* const names[] = {
      "open_dir", "stat_path", "remove_dir", "path_of", "mkdir", "rmdir", "create", "read",
      "write", "resize", "punch_hole", "rename", "link", "remove", "fsync", "stat",
      "set_mtime", "list", "statvfs", "extents", "clone", "copy", "notify_resize", "probe_reflink"};
  return names[static_cast<std::size_t>(o)];
}

//! How a copy reports progress: not at all, recorded, cancelled (the
//! callback says false) or thrown out of at its `stop_at`-th report.
enum class progress_mode : std::uint8_t { none, record, cancel, thrown };

//! One contract call. Handles are slots: 0 the run's directory, 1 a second
//! handle (its subdirectory "d" at first, the last directory `open_dir`
//! opened after), 2 a directory on the other filesystem, 3 no directory (a
//! default-constructed handle). `p1`/`p2` are relative to the handle; for
//! open_dir, stat_path and remove_dir `p1` is appended to the run's
//! absolute directory.
struct call {
  op kind = op::stat;
  int h1 = 0;
  int h2 = 0;
  std::string p1;
  std::string p2;
  std::uint64_t a = 0;  //!< offset or size
  std::uint64_t b = 0;  //!< length
  bool flag = false;    //!< open_dir: create; create: truncate
  file_time t;          //!< set_mtime
  std::uint32_t data = 0;  //!< what a write writes: 0 zeros, else a pattern seed
  bool has_size = false;   //!< copy: a size was given
  std::uint64_t size = 0;
  bool try_clone = true;
  bool try_copy_file_range = true;
  progress_mode progress = progress_mode::none;
  unsigned stop_at = 0;
};

//! A C-string literal of `s`, escaped, shortened when long.
inline std::string quoted(const std::string& s) {
  std::string out = "\"";
  if (s.size() > 40) {
    // Long names are runs of one letter: say how long.
    std::size_t i = 0;
    while (i < s.size()) {
      std::size_t j = i;
      while (j < s.size() && s[j] == s[i]) ++j;
      if (j - i > 8)
        out += "\" + std::string(" + std::to_string(j - i) + ", '" + std::string(1, s[i]) + "') + \"";
      else
        out.append(s, i, j - i);
      i = j;
    }
  } else {
    out += s;
  }
  return out + "\"";
}

inline std::string num(std::uint64_t v) {
  if (v == UINT64_MAX) return "UINT64_MAX";
  if (v == i64_max) return "INT64_MAX";
  if (v >= (std::uint64_t(1) << 40)) {
    // Huge values read better near a power of two.
    for (int p = 40; p < 64; ++p) {
      const std::uint64_t base = std::uint64_t(1) << p;
      if (v >= base - 65536 && v <= base + 65536) {
        const std::int64_t d = static_cast<std::int64_t>(v - base);
        return "2^" + std::to_string(p) + (d == 0 ? "" : (d > 0 ? "+" : "") + std::to_string(d));
      }
    }
  }
  return std::to_string(v);
}

inline std::string time_text(file_time t) { return std::to_string(t.sec) + "." + std::to_string(t.nsec); }

//! One line that says the call, e.g. `write h0 "d/f" off=4096 len=5000 data=17`.
inline std::string to_string(const call& c) {
  std::string s = name_of(c.kind);
  const auto h = [](int slot) { return " h" + std::to_string(slot); };
  switch (c.kind) {
    case op::open_dir: return s + " <run>/" + quoted(c.p1) + (c.flag ? " create" : "");
    case op::stat_path:
    case op::remove_dir: return s + " <run>/" + quoted(c.p1);
    case op::statvfs:
    case op::probe_reflink: return s + h(c.h1);
    case op::create:
      return s + h(c.h1) + " " + quoted(c.p1) + " size=" + num(c.a) + (c.flag ? " truncate" : " exclusive");
    case op::read: return s + h(c.h1) + " " + quoted(c.p1) + " off=" + num(c.a) + " len=" + num(c.b);
    case op::write:
      return s + h(c.h1) + " " + quoted(c.p1) + " off=" + num(c.a) + " len=" + num(c.b) +
             " data=" + std::to_string(c.data);
    case op::resize: return s + h(c.h1) + " " + quoted(c.p1) + " size=" + num(c.a);
    case op::punch_hole: return s + h(c.h1) + " " + quoted(c.p1) + " off=" + num(c.a) + " len=" + num(c.b);
    case op::rename:
    case op::link: return s + h(c.h1) + " " + quoted(c.p1) + " " + quoted(c.p2);
    case op::set_mtime: return s + h(c.h1) + " " + quoted(c.p1) + " " + time_text(c.t);
    case op::clone: return s + h(c.h1) + " " + quoted(c.p1) + h(c.h2) + " " + quoted(c.p2);
    case op::copy: {
      s += h(c.h1) + " " + quoted(c.p1) + h(c.h2) + " " + quoted(c.p2);
      if (c.has_size) s += " size=" + num(c.size);
      if (!c.try_clone) s += " no-clone";
      if (!c.try_copy_file_range) s += " no-copy_file_range";
      static const char* const modes[] = {"", " progress", " cancel-at=", " throw-at="};
      s += modes[static_cast<int>(c.progress)];
      if (c.progress == progress_mode::cancel || c.progress == progress_mode::thrown) s += std::to_string(c.stop_at);
      return s;
    }
    default: return s + h(c.h1) + " " + quoted(c.p1);
  }
}

// ---------------------------------------------------------------------------
// The starting tree

//! One step that plants the starting tree, through the test API on the
//! memory side and plain system calls on the real side (never counted as
//! calls under test). `other` puts it on the other filesystem.
struct plant {
  enum kind_t : std::uint8_t { dir, file, truncate, symlink, hardlink, mtime } kind = file;
  bool other = false;
  std::string path;    //!< relative to the run's directory
  std::string target;  //!< symlink target, or the existing name of a hard link
  std::uint64_t offset = 0;
  std::uint64_t length = 0;  //!< file: bytes written; truncate: the size
  std::uint32_t data = 1;
  file_time t;
};

inline std::string to_string(const plant& p) {
  std::string where = p.other ? "other:" : "";
  switch (p.kind) {
    case plant::dir: return "plant dir " + where + quoted(p.path);
    case plant::file:
      return "plant file " + where + quoted(p.path) + " off=" + num(p.offset) + " len=" + num(p.length) +
             " data=" + std::to_string(p.data);
    case plant::truncate: return "plant truncate " + where + quoted(p.path) + " size=" + num(p.length);
    case plant::symlink: return "plant symlink " + where + quoted(p.path) + " -> " + quoted(p.target);
    case plant::hardlink: return "plant link " + where + quoted(p.path) + " = " + quoted(p.target);
    case plant::mtime: return "plant mtime " + where + quoted(p.path) + " " + time_text(p.t);
  }
  return "plant ?";
}

//! `n` bytes of a write: zeros for seed 0, else never-zero bytes from the seed.
inline std::string bytes_of(std::uint32_t seed, std::size_t n) {
  return seed == 0 ? std::string(n, '\0') : test::pattern(n, seed);
}

// ---------------------------------------------------------------------------
// The generator

//! Random starting trees and call sequences. Names come from a small pool
//! so that calls meet each other's files; every kind of hostile argument has
//! a share: missing names, the wrong type, symlinks at every position, ".",
//! "..", empty names, absolute paths, names of 255 and 256 bytes, a path
//! longer than PATH_MAX, offsets and sizes at and past every limit.
class generator {
public:
  explicit generator(std::uint64_t seed) : r_(seed) {}

  static const std::string& long_name(std::size_t n) {
    static const std::string n255(255, 'n'), n256(256, 'm');
    return n == 255 ? n255 : n256;
  }

  std::vector<plant> start_tree(const std::string& run_abs) {
    std::vector<plant> out;
    auto file = [&](const std::string& p, bool other = false) {
      // Some data blocks, a partial last block, holes, or nothing at all.
      const int shape = static_cast<int>(r_.below(6));
      if (shape == 0) {
        out.push_back(trunc(p, size_value(), other));
        return;
      }
      std::uint64_t off = 0;
      const int writes = 1 + static_cast<int>(r_.below(3));
      for (int i = 0; i < writes; ++i) {
        plant w;
        w.kind = plant::file;
        w.other = other;
        w.path = p;
        w.offset = off;
        w.length = r_.pick(plant_lengths);
        w.data = static_cast<std::uint32_t>(1 + r_.below(1000));
        out.push_back(w);
        off += w.length + (r_.chance(50) ? r_.pick(plant_gaps) : 0);
      }
      if (shape == 5) out.push_back(trunc(p, off + r_.pick(plant_gaps) + r_.below(4096), other));
    };
    file("a");
    if (r_.chance(70)) file("b");
    out.push_back(dir("d"));
    if (r_.chance(80)) file("d/f");
    if (r_.chance(60)) out.push_back(dir("d/e"));
    if (r_.chance(40)) out.push_back(dir("e"));
    if (r_.chance(50)) out.push_back(link("h", "a"));
    if (r_.chance(30)) file(long_name(255));
    out.push_back(symlink("L1", "a"));
    out.push_back(symlink("L2", "d"));
    if (r_.chance(70)) out.push_back(symlink("L3", "missing"));
    if (r_.chance(50)) out.push_back(symlink("L4", "L4"));
    if (r_.chance(50)) out.push_back(symlink("L5", run_abs + "/d"));
    if (r_.chance(50)) out.push_back(symlink("d/L6", ".."));
    if (r_.chance(30)) {
      plant m;
      m.kind = plant::mtime;
      m.path = r_.chance(50) ? "a" : "d";
      m.t = mtime_value();
      if (m.t.nsec >= 1000000000u) m.t.nsec = 0;
      out.push_back(m);
    }
    // The other filesystem: a file and a directory to copy to and from.
    if (r_.chance(60)) file("a", true);
    if (r_.chance(50)) {
      plant d = dir("d");
      d.other = true;
      out.push_back(d);
    }
    return out;
  }

  std::vector<call> sequence(std::size_t n) {
    std::vector<call> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) out.push_back(next());
    return out;
  }

  call next() {
    call c;
    // Weights: the operations that change things most often, the rest too.
    static const op weighted[] = {
        op::write, op::write, op::write, op::write, op::read, op::read, op::resize, op::resize, op::resize,
        op::punch_hole, op::punch_hole, op::punch_hole, op::create, op::create, op::create, op::rename,
        op::rename, op::rename, op::link, op::link, op::remove, op::remove, op::mkdir, op::mkdir, op::rmdir,
        op::rmdir, op::clone, op::clone, op::clone, op::copy, op::copy, op::copy, op::stat, op::stat,
        op::set_mtime, op::set_mtime, op::list, op::extents, op::extents, op::fsync, op::open_dir,
        op::stat_path, op::remove_dir, op::path_of, op::statvfs, op::notify_resize, op::probe_reflink};
    c.kind = r_.pick(weighted);
    c.h1 = handle();
    const bool makes = c.kind == op::create || c.kind == op::mkdir;
    c.p1 = r_.chance(40) ? (makes ? fresh(c.h1) : existing(c.h1)) : rel();
    const auto target = [&](int slot) { return r_.chance(40) ? fresh(slot) : rel(); };
    switch (c.kind) {
      case op::open_dir:
        c.p1 = abs_rel();
        c.flag = r_.chance(50);
        break;
      case op::stat_path:
      case op::remove_dir: c.p1 = abs_rel(); break;
      case op::create:
        c.a = r_.chance(60) ? 0 : size_value();
        c.flag = r_.chance(40);
        break;
      case op::read:
        c.a = offset_value();
        c.b = r_.chance(10) ? std::uint64_t(1) << 20 : length_value();
        break;
      case op::write:
        c.a = offset_value();
        c.b = length_value();
        c.data = r_.chance(10) ? 0 : static_cast<std::uint32_t>(1 + r_.below(100000));
        break;
      case op::resize: c.a = size_value(); break;
      case op::punch_hole:
        c.a = offset_value();
        c.b = r_.chance(15) ? huge_value() : length_value();
        break;
      case op::rename:
      case op::link: c.p2 = target(c.h1); break;
      case op::set_mtime: c.t = mtime_value(); break;
      case op::clone:
      case op::copy:
        c.h1 = copy_handle();
        c.h2 = copy_handle();
        if (r_.chance(40)) c.p1 = existing(c.h1);
        c.p2 = target(c.h2);
        if (c.kind == op::copy) {
          c.has_size = r_.chance(40);
          if (c.has_size) c.size = r_.chance(20) ? 0 : size_value();
          c.try_clone = r_.chance(80);
          c.try_copy_file_range = r_.chance(80);
          const unsigned p = static_cast<unsigned>(r_.below(100));
          c.progress = p < 55 ? progress_mode::none
                       : p < 80 ? progress_mode::record
                       : p < 93 ? progress_mode::cancel
                                : progress_mode::thrown;
          c.stop_at = 1 + static_cast<unsigned>(r_.below(3));
        }
        break;
      default: break;
    }
    return c;
  }

private:
  static constexpr std::uint64_t plant_lengths[] = {1, 10, 100, 2048, 4095, 4096, 4097, 5000, 8192, 12289, 20000};
  static constexpr std::uint64_t plant_gaps[] = {1, 100, 4096, 8192, 65536, 1 << 20};

  plant dir(const std::string& p) {
    plant d;
    d.kind = plant::dir;
    d.path = p;
    return d;
  }
  plant trunc(const std::string& p, std::uint64_t size, bool other) {
    plant t;
    t.kind = plant::truncate;
    t.other = other;
    t.path = p;
    t.length = std::min(size, ext4_max_file);
    return t;
  }
  plant symlink(const std::string& p, const std::string& target) {
    plant s;
    s.kind = plant::symlink;
    s.path = p;
    s.target = target;
    return s;
  }
  plant link(const std::string& p, const std::string& existing) {
    plant l;
    l.kind = plant::hardlink;
    l.path = p;
    l.target = existing;
    return l;
  }

  int handle() {
    const unsigned x = static_cast<unsigned>(r_.below(100));
    return x < 72 ? 0 : x < 90 ? 1 : x < 98 ? 2 : 3;
  }
  int copy_handle() {
    const unsigned x = static_cast<unsigned>(r_.below(100));
    return x < 68 ? 0 : x < 82 ? 1 : x < 98 ? 2 : 3;
  }

  //! One name: mostly from the pool of names the tree uses.
  std::string component() {
    static const char* const common[] = {"a", "b", "c", "d", "e", "f", "h", "a", "b", "d", "f"};
    static const char* const links[] = {"L1", "L2", "L3", "L4", "L5", "L6"};
    static const char* const special[] = {".", "..", ""};
    const unsigned x = static_cast<unsigned>(r_.below(100));
    if (x < 70) return r_.pick(common);
    if (x < 86) return r_.pick(links);
    if (x < 95) return r_.pick(special);
    return long_name(r_.chance(60) ? 255 : 256);
  }

  //! A name the starting tree usually has, seen from handle `slot`: so that
  //! calls go through to the data as often as they fail.
  std::string existing(int slot) {
    static const char* const top[] = {"a", "a", "b", "h", "d/f", "d", "e"};
    if (slot == 1) return r_.chance(70) ? "f" : "e";
    if (slot == 2) return r_.chance(80) ? "a" : "d";
    return r_.pick(top);
  }
  //! A name the starting tree does not have, seen from handle `slot`.
  std::string fresh(int slot) {
    static const char* const names[] = {"c", "g", "x", "d/c", "e/x"};
    if (slot != 0) return r_.chance(50) ? "c" : "g";
    return r_.pick(names);
  }

  //! Any path relative to a handle.
  std::string rel() {
    const unsigned x = static_cast<unsigned>(r_.below(1000));
    if (x < 25) return "";
    if (x < 45) return "/" + component();
    if (x < 55) return r_.chance(50) ? "." : "..";
    if (x < 58) {
      // Longer than PATH_MAX, in names that each fit.
      std::string p;
      for (int i = 0; i < 17; ++i) p += long_name(255) + "/";
      return p + component();
    }
    const unsigned depth = x < 700 ? 1 : x < 950 ? 2 : 3;
    std::string p = component();
    for (unsigned i = 1; i < depth; ++i) p += (r_.chance(5) ? "//" : "/") + component();
    if (r_.chance(3)) p += "/";
    return p;
  }

  //! A path below the run's directory for the absolute-path operations:
  //! never more than one "..", so nothing above the filesystem's root is
  //! reached, symlinks followed or not.
  std::string abs_rel() {
    const unsigned depth = 1 + static_cast<unsigned>(r_.below(3));
    std::string p;
    bool climbed = false;
    for (unsigned i = 0; i < depth; ++i) {
      std::string c = component();
      if (c.size() > 255) c = "n";
      if (c == "..") {
        if (climbed || i == 0) c = "d";
        climbed = true;
      }
      p += (i ? "/" : "") + c;
    }
    return r_.chance(5) ? "" : p;
  }

  std::uint64_t offset_value() {
    static const std::uint64_t small[] = {0, 1, 100, 511, 512, 2047, 2048, 4095, 4096, 4097, 5000, 8191, 8192,
                                          12288, 16383, 65535, 65536, 70000, 1 << 20};
    return r_.chance(82) ? r_.pick(small) : huge_value();
  }
  std::uint64_t huge_value() {
    static const std::uint64_t huge[] = {std::uint64_t(1) << 30,
                                         std::uint64_t(1) << 40,
                                         ext4_max_file - 4097,
                                         ext4_max_file - 4096,
                                         ext4_max_file - 1,
                                         ext4_max_file,
                                         ext4_max_file + 1,
                                         ext4_max_file + 4096,
                                         std::uint64_t(1) << 44,
                                         std::uint64_t(1) << 62,
                                         i64_max - 4096,
                                         i64_max - 1,
                                         i64_max,
                                         std::uint64_t(1) << 63,
                                         UINT64_MAX - 1,
                                         UINT64_MAX};
    return r_.pick(huge);
  }
  std::uint64_t length_value() {
    static const std::uint64_t lengths[] = {0, 1, 10, 100, 2048, 4095, 4096, 4097, 5000, 8192, 12300, 65536, 70000};
    return r_.pick(lengths);
  }
  std::uint64_t size_value() {
    static const std::uint64_t sizes[] = {0, 1, 10, 100, 2048, 4095, 4096, 4097, 5000, 8192, 10000, 12288, 65536,
                                          70000, 1 << 20};
    return r_.chance(80) ? r_.pick(sizes) : huge_value();
  }
  file_time mtime_value() {
    static const file_time times[] = {
        {0, 0},
        {0, 1},
        {-1, 999999999},
        {1, 5},
        {1000000000, 999999999},
        {INT32_MAX, 0},
        {std::int64_t(INT32_MAX) + 1, 7},
        {INT32_MIN, 0},
        {INT32_MIN, 5},
        {std::int64_t(INT32_MIN) - 1, 5},
        {std::int64_t(1) << 33, 3},
        {15032385535, 0},
        {15032385535, 9},
        {15032385536, 9},
        {16299260424, 0},
        {16299260424, 9},
        {16299260425, 9},
        {-62167219200, 0},
        {253402300799, 999999999},
        {INT64_MAX, 0},
        {INT64_MAX, 999999999},
        {INT64_MIN, 0},
        {INT64_MIN, 1},
        {5000000000, 1000000000},
        {5000000000, UINT32_MAX},
    };
    return r_.pick(times);
  }

  rng r_;
};

// ---------------------------------------------------------------------------
// Results, normalised so that the two sides compare as strings

//! The name of an errno value, e.g. "ENOENT".
inline std::string errno_name(int e) {
  switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EIO: return "EIO";
    case EBADF: return "EBADF";
    case ENOMEM: return "ENOMEM";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EBUSY: return "EBUSY";
    case EEXIST: return "EEXIST";
    case EXDEV: return "EXDEV";
    case ENOTDIR: return "ENOTDIR";
    case EISDIR: return "EISDIR";
    case EINVAL: return "EINVAL";
    case EFBIG: return "EFBIG";
    case ENOSPC: return "ENOSPC";
    case EMLINK: return "EMLINK";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case ENOTEMPTY: return "ENOTEMPTY";
    case ELOOP: return "ELOOP";
    case EOVERFLOW: return "EOVERFLOW";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENOTTY: return "ENOTTY";
    case ECANCELED: return "ECANCELED";
    case ENOSYS: return "ENOSYS";
    case ETXTBSY: return "ETXTBSY";
    default: return "errno " + std::to_string(e);
  }
}

//! What one call returned on one side: "ok" or the error, and the values.
struct outcome {
  outcome() = default;
  outcome(std::string c, std::string v, std::string m, std::vector<extent> e = {})
      : code(std::move(c)), value(std::move(v)), message(std::move(m)), ex(std::move(e)) {}
  std::string code;
  std::string value;
  std::string message;  //!< the error's message (printed, not compared)
  std::vector<extent> ex;  //!< what `extents` returned (compared as `compare_data` does)
  friend bool operator==(const outcome& a, const outcome& b) { return a.code == b.code && a.value == b.value; }
  friend bool operator!=(const outcome& a, const outcome& b) { return !(a == b); }
  std::string text() const {
    return code + (value.empty() ? "" : " " + value) + (message.empty() ? "" : "  [" + abbreviated(message) + "]");
  }
  //! Runs of one letter (the long names) said as "<256 x m>".
  static std::string abbreviated(const std::string& s) {
    std::string out;
    for (std::size_t i = 0; i < s.size();) {
      std::size_t j = i;
      while (j < s.size() && s[j] == s[i]) ++j;
      if (j - i > 8)
        out += "<" + std::to_string(j - i) + " x " + s[i] + ">";
      else
        out.append(s, i, j - i);
      i = j;
    }
    return out;
  }
};

inline std::string code_of(const std::error_code& ec) {
  if (ec.category() == std::system_category() || ec.category() == std::generic_category()) return errno_name(ec.value());
  return std::string(ec.category().name()) + ":" + std::to_string(ec.value());
}

template <class R>
outcome failed_outcome(const R& r) {
  return outcome{code_of(r.error().code()), "", r.error().message()};
}

//! The times a clock gave during a run: a timestamp outside them was set.
struct time_window {
  file_time lo;
  file_time hi;
  bool from_clock(file_time t) const { return t >= lo && t <= hi; }
};

inline file_time wall_now() {
  using namespace std::chrono;
  return file_time::from_ns(duration_cast<nanoseconds>(system_clock::now().time_since_epoch()).count());
}

inline const char* type_name(file_type t) {
  switch (t) {
    case file_type::regular: return "file";
    case file_type::directory: return "dir";
    case file_type::symlink: return "symlink";
    case file_type::other: return "other";
  }
  return "?";
}

//! A mtime as compared: the exact value when it was set, "clock" otherwise.
inline std::string mtime_class(file_time t, const time_window& w) {
  return w.from_clock(t) ? std::string("clock") : time_text(t);
}

//! What the test compares of a stat. A directory's size is each
//! filesystem's own business (btrfs: bytes of names, XFS: its short form,
//! ext4: blocks), and so is what a directory or a symlink allocates.
//! A call's own result leaves allocation out: the snapshot after the call
//! compares it (as each filesystem allows, see `allocation`).
inline std::string describe(const file_stat& st, const time_window& w, bool with_alloc = true) {
  std::string s = type_name(st.type);
  if (st.type != file_type::directory) s += " size=" + num(st.size);
  s += " nlink=" + std::to_string(st.nlink);
  if (st.type == file_type::regular && with_alloc) s += " alloc=" + num(st.allocated);
  s += " mtime=" + mtime_class(st.mtime, w);
  return s;
}

//! The data ranges of an extent list, merged where they touch and carry the
//! same shared flag: "[0,8192)s [65536,69632)".
inline std::string describe(const std::vector<extent>& ex) {
  std::vector<std::pair<std::pair<std::uint64_t, std::uint64_t>, bool>> r;
  std::vector<extent> sorted = ex;
  std::sort(sorted.begin(), sorted.end(), [](const extent& a, const extent& b) { return a.logical < b.logical; });
  for (const extent& e : sorted) {
    if (!r.empty() && r.back().first.second == e.logical && r.back().second == e.shared)
      r.back().first.second = e.logical + e.length;
    else
      r.push_back({{e.logical, e.logical + e.length}, e.shared});
  }
  std::string s;
  for (const auto& x : r)
    s += (s.empty() ? "" : " ") + std::string("[") + num(x.first.first) + "," + num(x.first.second) + ")" +
         (x.second ? "s" : "");
  return s.empty() ? "none" : s;
}

//! FNV-1a over bytes, for comparing contents without printing them.
inline std::uint64_t fnv(std::uint64_t h, const char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    h ^= static_cast<unsigned char>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}
constexpr std::uint64_t fnv_start = 0xcbf29ce484222325ull;

inline std::string hex(std::uint64_t v) {
  char b[17];
  std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(v));
  return b;
}

//! How a filesystem's allocation is compared. XFS preallocates past the end
//! of a growing file and around a block it copies (speculative
//! preallocation, the COW extent size hint); FIEMAP shows the blocks past
//! the end and st_blocks counts both until XFS trims them. The mock
//! allocates what is written. On XFS both sides are compared on their data
//! extents up to the end of the last block, and st_blocks must cover them.
enum class allocation : std::uint8_t { exact, data_extents };

//! `ex` without what lies past the block that holds the end of file.
inline std::vector<extent> within_eof(std::vector<extent> ex, std::uint64_t size) {
  const std::uint64_t end = size % 4096 ? size - size % 4096 + 4096 : size;
  std::vector<extent> out;
  for (extent e : ex) {
    if (e.logical >= end) continue;
    if (e.logical + e.length > end) e.length = end - e.logical;
    out.push_back(e);
  }
  return out;
}

inline std::uint64_t data_bytes(const std::vector<extent>& ex) {
  std::uint64_t n = 0;
  for (const extent& e : ex) n += e.length;
  return n;
}

// ---------------------------------------------------------------------------
// One side: a policy, its directories and its handles

//! The absolute directories of a run, the same on both sides.
struct run_paths {
  std::string mount;        //!< the filesystem under test
  std::string other_mount;  //!< the other filesystem
  std::string run;          //!< mount + "/s"
  std::string other;        //!< other_mount + "/s"
};

template <class Ops>
struct side {
  using handle = typename Ops::dir_handle;
  Ops ops;
  run_paths paths;
  handle slot[4];    //!< the call slots (see `call`)
  handle tree;       //!< the run's directory, for snapshots
  handle other_tree; //!< the other filesystem's directory, for snapshots
  bool clip[4] = {};  //!< per slot: extents are compared up to the end of file (XFS, see `allocation`)
};

//! Runs one call on one side and says what it returned.
template <class Ops>
outcome execute(side<Ops>& s, const call& c, const time_window& w) {
  Ops& ops = s.ops;
  const auto& h1 = s.slot[c.h1];
  const auto& h2 = s.slot[c.h2];
  const path p1(c.p1), p2(c.p2);
  const std::string abs = s.paths.run + (c.p1.empty() ? "" : "/" + c.p1);
  switch (c.kind) {
    case op::open_dir: {
      auto r = ops.open_dir(path(abs), c.flag);
      if (!r) return failed_outcome(r);
      s.slot[1] = r.value().handle;
      return {"ok", r.value().created ? "created" : "existed", ""};
    }
    case op::stat_path: {
      auto r = ops.stat_path(path(abs));
      if (!r) return failed_outcome(r);
      return {"ok", describe(r.value(), w, false), ""};
    }
    case op::remove_dir: {
      auto r = ops.remove_dir(path(abs));
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::path_of: {
      auto r = ops.path_of(h1, p1);
      if (!r) return failed_outcome(r);
      return {"ok", r.value().string(), ""};
    }
    case op::mkdir:
    case op::rmdir:
    case op::remove:
    case op::fsync: {
      result<void> r = c.kind == op::mkdir   ? ops.mkdir(h1, p1)
                       : c.kind == op::rmdir ? ops.rmdir(h1, p1)
                       : c.kind == op::remove ? ops.remove(h1, p1)
                                              : ops.fsync(h1, p1);
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::create: {
      auto r = ops.create(h1, p1, c.a, c.flag ? create_mode::truncate : create_mode::exclusive);
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::read: {
      std::string buf(static_cast<std::size_t>(c.b), '\x7f');
      auto r = ops.read(h1, p1, c.a, buf.data(), buf.size());
      if (!r) return failed_outcome(r);
      return {"ok", "n=" + std::to_string(r.value()) + " bytes=" + hex(fnv(fnv_start, buf.data(), r.value())), ""};
    }
    case op::write: {
      const std::string data = bytes_of(c.data, static_cast<std::size_t>(c.b));
      auto r = ops.write(h1, p1, c.a, data.data(), data.size());
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::resize: {
      auto r = ops.resize(h1, p1, c.a);
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::punch_hole: {
      auto r = ops.punch_hole(h1, p1, c.a, c.b);
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::rename:
    case op::link: {
      auto r = c.kind == op::rename ? ops.rename(h1, p1, p2) : ops.link(h1, p1, p2);
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::stat: {
      auto r = ops.stat(h1, p1);
      if (!r) return failed_outcome(r);
      return {"ok", describe(r.value(), w, false), ""};
    }
    case op::set_mtime: {
      auto r = ops.set_mtime(h1, p1, c.t);
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::list: {
      auto r = ops.list(h1, p1);
      if (!r) return failed_outcome(r);
      std::string v;
      for (const auto& e : r.value()) v += (v.empty() ? "" : " ") + quoted(e.name) + ":" + type_name(e.type);
      return {"ok", v, ""};
    }
    case op::statvfs: {
      auto r = ops.statvfs(h1);
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::extents: {
      auto r = ops.extents(h1, p1);
      if (!r) return failed_outcome(r);
      std::vector<extent> ex = r.value();
      if (s.clip[c.h1])
        if (auto st = ops.stat(h1, p1); st && st.value().type == file_type::regular) ex = within_eof(ex, st.value().size);
      return {"ok", describe(ex), "", ex};
    }
    case op::clone: {
      auto r = ops.clone(h1, p1, h2, p2);
      if (!r) return failed_outcome(r);
      return {"ok", "", ""};
    }
    case op::copy: {
      copy_options o;
      if (c.has_size) o.size = c.size;
      o.try_clone = c.try_clone;
      o.try_copy_file_range = c.try_copy_file_range;
      std::string reports;
      unsigned n = 0;
      if (c.progress != progress_mode::none) {
        o.progress = [&](std::uint64_t done, std::uint64_t total) -> bool {
          reports += " " + num(done) + "/" + num(total);
          ++n;
          if (n == c.stop_at && c.progress == progress_mode::cancel) return false;
          if (n == c.stop_at && c.progress == progress_mode::thrown) throw std::runtime_error("stop");
          return true;
        };
      }
      auto r = file_reflink::detail::copy_file(ops, h1, p1, h2, p2, o);
      const std::string progress = reports.empty() ? "" : " progress:" + reports;
      if (!r) {
        outcome out = failed_outcome(r);
        out.value = progress;
        return out;
      }
      return {"ok",
              std::string("method=") + to_string(r.value().method) + " bytes=" + num(r.value().bytes) +
                  (r.value().reflink_unsupported_noticed ? " noticed" : "") + progress,
              ""};
    }
    case op::notify_resize: {
      auto r = ops.notify_resize(h1, p1);
      if (!r) return failed_outcome(r);
      return {"ok", std::to_string(r.value()), ""};
    }
    case op::probe_reflink: {
      auto r = ops.probe_reflink(h1);
      if (!r) return failed_outcome(r);
      return {"ok", r.value() ? "true" : "false", ""};
    }
  }
  return {"?", "", ""};
}

// ---------------------------------------------------------------------------
// Snapshots

//! What a snapshot knows of one name.
struct node {
  std::string stat;  //!< `describe` of its stat, without mtime
  file_type type = file_type::other;
  file_time mtime;
  file_time ctime;
  std::uint64_t ino = 0;
  std::uint64_t size = 0;
  std::string data_error;      //!< regular files: why extents or a read failed
  std::vector<extent> ex;      //!< regular files: the extents, by offset
  std::string digest;          //!< regular files: the bytes (see content_digest)
  std::vector<std::pair<std::uint64_t, std::uint64_t>> physical;  //!< where its data lives
  std::string storage_check;   //!< regular files: how `storage_extents` differs from `extents` (empty: agrees)
};

//! What `storage_extents` says of a file against its `extents` (empty when
//! they agree as `storage_text` compares them).
template <class Ops, class H>
std::string check_storage_extents(Ops& ops, const H& h, const path& rel, const std::vector<extent>& ex) {
  auto st = ops.storage_extents(h, rel);
  if (!st) return "storage_extents " + code_of(st.error().code());
  for (const extent& e : st.value())
    if (e.shared) return "storage_extents set a shared flag";
  const std::string a = test::storage_text(ex), b = test::storage_text(st.value());
  return a == b ? std::string() : "storage_extents " + b + " but extents " + a;
}

//! The ranges in which two files may differ, as `changed_ranges` finds
//! them from their extent maps (logical ranges: comparable across sides).
inline std::string map_changes(const node& a, const node& b) {
  const auto ea = file_reflink::detail::extents_within(a.ex, a.size);
  const auto eb = file_reflink::detail::extents_within(b.ex, b.size);
  std::string out;
  for (const auto& r : file_reflink::detail::extent_map_changes(ea, eb, std::max(a.size, b.size)))
    out += "[" + num(r.offset) + "," + num(r.offset + r.length) + ")";
  return out;
}

//! Every name below the run's two directories: "R:<path>" and "O:<path>"
//! ("R:" itself is the run's directory).
struct snapshot {
  std::map<std::string, node> nodes;
  std::vector<std::string> errors;  //!< a walk that failed (compared too)
};

//! The bytes of a file as a digest that does not depend on where the
//! filesystem allocated: each 4 KiB block of its data ranges that is not all
//! zeros, with its offset. Holes read as zeros, so two files with the same
//! bytes get the same digest.
template <class Ops, class H>
std::string content_digest(Ops& ops, const H& h, const path& rel, const std::vector<extent>& ex, std::uint64_t size) {
  std::uint64_t d = fnv_start;
  std::string buf;
  std::uint64_t budget = std::uint64_t(32) << 20;
  for (const extent& e : ex) {
    const std::uint64_t a = e.logical;
    const std::uint64_t b = std::min(size, e.logical + e.length);
    for (std::uint64_t pos = a - a % 4096; pos < b && budget > 0; pos += 4096) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(4096, size - pos));
      buf.assign(n, '\0');
      auto r = ops.read(h, rel, pos, buf.data(), n);
      if (!r) return "read " + code_of(r.error().code());
      buf.resize(r.value());
      budget -= std::min<std::uint64_t>(budget, n);
      if (buf.find_first_not_of('\0') == std::string::npos) continue;
      d = fnv(d, reinterpret_cast<const char*>(&pos), sizeof pos);
      d = fnv(d, buf.data(), buf.size());
    }
  }
  return hex(d);
}

//! Every name below `h`'s directory into `snap`, keyed `prefix` + path; with
//! `data`, the extents and bytes of each regular file. `flush` asks for
//! every file's extents once before any is read (FIEMAP_FLAG_SYNC writes
//! back only the file it maps; a file's shared flags depend on its clones
//! being written back too).
template <class Ops>
void walk(side<Ops>& s, const typename Ops::dir_handle& h, const std::string& prefix, snapshot& snap, bool data,
          const time_window& w, bool flush, allocation alloc) {
  Ops& ops = s.ops;
  std::vector<std::pair<std::string, file_stat>> found;
  std::vector<std::string> todo{""};
  while (!todo.empty()) {
    const std::string dir = todo.back();
    todo.pop_back();
    auto st = ops.stat(h, path(dir));
    if (!st) {
      snap.errors.push_back(prefix + dir + ": stat " + code_of(st.error().code()));
      continue;
    }
    found.emplace_back(dir, st.value());
    if (st.value().type != file_type::directory) continue;
    auto entries = ops.list(h, path(dir));
    if (!entries) {
      snap.errors.push_back(prefix + dir + ": list " + code_of(entries.error().code()));
      continue;
    }
    for (const auto& e : entries.value()) todo.push_back(dir.empty() ? e.name : dir + "/" + e.name);
  }
  if (data && flush)
    for (const auto& f : found)
      if (f.second.type == file_type::regular) (void)ops.extents(h, path(f.first));
  for (const auto& [name, st] : found) {
    node n;
    n.type = st.type;
    n.stat = describe(st, w);
    n.stat = n.stat.substr(0, n.stat.find(" mtime="));
    n.mtime = st.mtime;
    n.ctime = st.ctime;
    n.ino = st.ino;
    n.size = st.size;
    if (n.type == file_type::regular && data) {
      auto ex = ops.extents(h, path(name));
      if (!ex) {
        n.data_error = "extents " + code_of(ex.error().code());
      } else {
        n.ex = ex.value();
        n.storage_check = check_storage_extents(ops, h, path(name), n.ex);
        std::sort(n.ex.begin(), n.ex.end(), [](const extent& a, const extent& b) { return a.logical < b.logical; });
        if (alloc == allocation::data_extents) {
          n.ex = within_eof(std::move(n.ex), n.size);
          file_stat adjusted = st;
          adjusted.allocated = data_bytes(n.ex);
          n.stat = describe(adjusted, w);
          n.stat = n.stat.substr(0, n.stat.find(" mtime="));
          if (st.allocated < adjusted.allocated) n.stat += " (st_blocks below its extents)";
        }
        n.digest = content_digest(ops, h, path(name), n.ex, n.size);
        for (const extent& e : n.ex) n.physical.emplace_back(e.physical, e.physical + e.length);
      }
    }
    snap.nodes[prefix + name] = std::move(n);
  }
}

template <class Ops>
snapshot take_snapshot(side<Ops>& s, bool data, const time_window& w, allocation main, allocation other) {
  snapshot snap;
  const bool flush = std::is_same<Ops, LinuxFsOps>::value;
  walk(s, s.tree, "R:", snap, data, w, flush, main);
  walk(s, s.other_tree, "O:", snap, data, w, flush, other);
  return snap;
}

//! btrfs keeps the data of a file of up to 2 KiB in its metadata (inline):
//! FIEMAP says physical 0, and a clone copies those bytes instead of
//! sharing them. The mock shares them like any block (see memory.hpp); the
//! names whose real file is inline are left out of the sharing comparison.
inline std::set<std::string> inline_files(const snapshot& real) {
  std::set<std::string> out;
  for (const auto& kv : real.nodes)
    for (const extent& e : kv.second.ex)
      if (e.physical == 0) out.insert(kv.first);
  return out;
}

//! Which regular files share storage: pairs of names whose physical ranges
//! overlap (hard links included: one inode shares with itself).
inline std::set<std::pair<std::string, std::string>> sharing(const snapshot& s, const std::set<std::string>& skip) {
  std::set<std::pair<std::string, std::string>> out;
  for (auto a = s.nodes.begin(); a != s.nodes.end(); ++a) {
    if (a->second.physical.empty() || skip.count(a->first)) continue;
    for (auto b = std::next(a); b != s.nodes.end(); ++b) {
      // Two names of one inode share everything: that says nothing. Two
      // filesystems have addresses of their own devices.
      if (b->second.ino == a->second.ino || skip.count(b->first) || b->first.compare(0, 2, a->first, 0, 2) != 0)
        continue;
      bool overlap = false;
      for (const auto& x : a->second.physical) {
        for (const auto& y : b->second.physical)
          if (x.first < y.second && y.first < x.second) {
            overlap = true;
            break;
          }
        if (overlap) break;
      }
      if (overlap) out.emplace(a->first, b->first);
    }
  }
  return out;
}

//! The differences between the two sides' trees, one line each ("" when
//! they agree). `*_prev` are the snapshots before the call: mtime and ctime
//! are compared as "moved or not" unless the mtime was set.
//! Byte ranges [a, b), sorted and merged.
using test::merged;
using test::ranges;

//! The logical ranges of `ex`: all of them, or those with `shared` set.
inline ranges logical(const std::vector<extent>& ex, bool only_shared) {
  ranges r;
  for (const extent& e : ex)
    if (!only_shared || e.shared) r.emplace_back(e.logical, e.logical + e.length);
  return merged(r);
}

//! Whether every byte of `a` is in `b`.
inline bool covered(const ranges& a, const ranges& b) {
  for (const auto& x : a) {
    bool in = false;
    for (const auto& y : b)
      if (y.first <= x.first && x.second <= y.second) in = true;
    if (!in) return false;
  }
  return true;
}

//! How the shared flags of the two sides are compared. XFS flags exactly the
//! blocks another file uses, as the mock does. btrfs flags a whole extent
//! as it sits on disk when any part of it is used elsewhere (a clone cut
//! short, a block rewritten in one of two clones), and merges the writes of
//! one writeback into one extent: there the bytes the mock flags must lie in
//! the ranges btrfs flags.
enum class shared_flags : std::uint8_t { exact, within_extents };

//! Whether two results of one call agree: the same code and values; the
//! extents of `extents` as `shared_flags` says.
inline bool agree(const outcome& m, const outcome& r, shared_flags flags) {
  if (m.code != r.code) return false;
  if (m.ex.empty() || r.ex.empty()) return m == r;
  if (logical(m.ex, false) != logical(r.ex, false)) return false;
  for (const extent& e : r.ex)
    if (e.physical == 0) return true;  // btrfs inline data: see inline_files
  if (flags == shared_flags::exact) return m == r;
  return covered(logical(m.ex, true), logical(r.ex, true));
}

//! The two sides' extents and bytes of one file, or "" when they agree.
inline std::string compare_data(const node& m, const node& r, shared_flags flags, bool skip_flags) {
  if (m.data_error != r.data_error) return "memory " + (m.data_error.empty() ? describe(m.ex) : m.data_error) +
                                           ", real " + (r.data_error.empty() ? describe(r.ex) : r.data_error);
  if (!m.data_error.empty()) return "";
  std::string why;
  if (logical(m.ex, false) != logical(r.ex, false)) why = "data ranges";
  else if (!skip_flags && (flags == shared_flags::exact ? describe(m.ex) != describe(r.ex)
                                                       : !covered(logical(m.ex, true), logical(r.ex, true))))
    why = "shared ranges";
  else if (m.digest != r.digest) why = "bytes";
  if (why.empty()) return "";
  return why + " differ: memory " + describe(m.ex) + " bytes=" + m.digest + ", real " + describe(r.ex) +
         " bytes=" + r.digest;
}

inline std::vector<std::string> compare(const snapshot& mem_prev, const snapshot& mem, const snapshot& real_prev,
                                        const snapshot& real, const time_window& w, bool data,
                                        shared_flags flags, std::uint64_t& comparisons,
                                        std::uint64_t times_may_move = 0) {
  std::vector<std::string> out;
  ++comparisons;
  if (mem.errors != real.errors) {
    std::string a, b;
    for (const auto& e : mem.errors) a += e + "; ";
    for (const auto& e : real.errors) b += e + "; ";
    out.push_back("walk errors: memory {" + a + "} real {" + b + "}");
  }
  const std::set<std::string> inlined = inline_files(real);
  std::set<std::string> keys;
  for (const auto& kv : mem.nodes) keys.insert(kv.first);
  for (const auto& kv : real.nodes) keys.insert(kv.first);
  for (const std::string& k : keys) {
    auto m = mem.nodes.find(k);
    auto r = real.nodes.find(k);
    ++comparisons;
    if (m == mem.nodes.end() || r == real.nodes.end()) {
      out.push_back(quoted(k) + ": only on the " + (m == mem.nodes.end() ? "real" : "memory") + " side");
      continue;
    }
    const node& mn = m->second;
    const node& rn = r->second;
    comparisons += 4;
    if (mn.stat != rn.stat) out.push_back(quoted(k) + ": memory " + mn.stat + ", real " + rn.stat);
    const std::string mc = mtime_class(mn.mtime, w), rc = mtime_class(rn.mtime, w);
    if (mc != rc) {
      out.push_back(quoted(k) + ": mtime memory " + mc + ", real " + rc);
    } else if (mc == "clock") {
      auto mp = mem_prev.nodes.find(k);
      auto rp = real_prev.nodes.find(k);
      // A name that now stands for another inode (a rename over it) is
      // compared as replaced or not; its times are another file's.
      const bool mrep = mp != mem_prev.nodes.end() && mp->second.ino != mn.ino;
      const bool rrep = rp != real_prev.nodes.end() && rp->second.ino != rn.ino;
      if (mrep != rrep)
        out.push_back(quoted(k) + ": " + (mrep ? "replaced" : "kept") + " in memory, " + (rrep ? "replaced" : "kept") +
                      " on the real side");
      if (mp != mem_prev.nodes.end() && rp != real_prev.nodes.end() && !mrep && !rrep) {
        const bool mm = mp->second.mtime != mn.mtime, rm = rp->second.mtime != rn.mtime;
        const bool mct = mp->second.ctime != mn.ctime, rct = rp->second.ctime != rn.ctime;
        // See `times_may_move` in run_once.
        const bool excused = times_may_move != 0 && mn.ino == times_may_move;
        if (mm != rm && !excused)
          out.push_back(quoted(k) + ": mtime " + (mm ? "changed" : "unchanged") + " in memory, " +
                        (rm ? "changed" : "unchanged") + " on the real side");
        if (mct != rct && !excused)
          out.push_back(quoted(k) + ": ctime " + (mct ? "changed" : "unchanged") + " in memory, " +
                        (rct ? "changed" : "unchanged") + " on the real side");
      }
    }
    if (data && mn.type == file_type::regular && rn.type == file_type::regular) {
      const std::string why = compare_data(mn, rn, flags, inlined.count(k) != 0);
      if (!why.empty()) out.push_back(quoted(k) + ": " + why);
      if (!mn.storage_check.empty()) out.push_back(quoted(k) + ": in memory " + mn.storage_check);
      if (!rn.storage_check.empty()) out.push_back(quoted(k) + ": on the real side " + rn.storage_check);
    }
  }
  if (data) {
    ++comparisons;
    const auto ms = sharing(mem, inlined), rs = sharing(real, inlined);
    if (ms != rs) {
      std::string a, b;
      for (const auto& p : ms) a += quoted(p.first) + "~" + quoted(p.second) + " ";
      for (const auto& p : rs) b += quoted(p.first) + "~" + quoted(p.second) + " ";
      out.push_back("sharing: memory {" + a + "} real {" + b + "}");
    } else {
      // Where two files that share storage may differ, as changed_ranges
      // reads it from their maps: the same ranges on both sides.
      for (const auto& p : ms) {
        ++comparisons;
        const std::string mc = map_changes(mem.nodes.at(p.first), mem.nodes.at(p.second));
        const std::string rc = map_changes(real.nodes.at(p.first), real.nodes.at(p.second));
        if (mc != rc)
          out.push_back(quoted(p.first) + "~" + quoted(p.second) + ": may differ in memory " + mc + ", real " + rc);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// Planting the starting tree

inline int plant_real(const run_paths& rp, const plant& p) {
  const std::string abs = (p.other ? rp.other : rp.run) + "/" + p.path;
  switch (p.kind) {
    case plant::dir: return ::mkdir(abs.c_str(), 0755) == 0 ? 0 : errno;
    case plant::file: {
      const int fd = ::open(abs.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) return errno;
      const std::string data = bytes_of(p.data, static_cast<std::size_t>(p.length));
      const int err = detail::pwrite_full(fd, data.data(), data.size(), p.offset);
      ::close(fd);
      return err;
    }
    case plant::truncate: {
      const int fd = ::open(abs.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
      if (fd < 0) return errno;
      const int err = ::ftruncate(fd, static_cast<off_t>(p.length)) == 0 ? 0 : errno;
      ::close(fd);
      return err;
    }
    case plant::symlink: return ::symlink(p.target.c_str(), abs.c_str()) == 0 ? 0 : errno;
    case plant::hardlink: {
      const std::string from = (p.other ? rp.other : rp.run) + "/" + p.target;
      return ::link(from.c_str(), abs.c_str()) == 0 ? 0 : errno;
    }
    case plant::mtime: {
      struct timespec ts[2];
      ts[0].tv_sec = 0;
      ts[0].tv_nsec = UTIME_OMIT;
      ts[1].tv_sec = static_cast<time_t>(p.t.sec);
      ts[1].tv_nsec = static_cast<long>(p.t.nsec);
      return ::utimensat(AT_FDCWD, abs.c_str(), ts, AT_SYMLINK_NOFOLLOW) == 0 ? 0 : errno;
    }
  }
  return EINVAL;
}

inline int plant_memory(const MemoryFsOps& m, const run_paths& rp, const plant& p) {
  const path abs = (p.other ? rp.other : rp.run) + "/" + p.path;
  const auto err = [](const auto& r) { return r ? 0 : r.error().code().value(); };
  switch (p.kind) {
    case plant::dir: {
      if (m.exists(abs)) return EEXIST;
      return err(m.open_dir(abs, true));
    }
    case plant::file: return err(m.write_file(abs, bytes_of(p.data, static_cast<std::size_t>(p.length)), p.offset));
    case plant::truncate: {
      if (!m.exists(abs))
        if (int e = err(m.write_file(abs, ""))) return e;
      return err(m.truncate(abs, p.length));
    }
    case plant::symlink: return err(m.symlink(p.target, abs));
    case plant::hardlink: return err(m.link((p.other ? rp.other : rp.run) + "/" + p.target, abs));
    case plant::mtime: return err(m.set_mtime(abs, p.t));
  }
  return EINVAL;
}

//! Removes everything a run left on a real filesystem, up to its root
//! (a run may reach one level above its directory), but lost+found.
inline void clear_real(const std::string& mount) {
  DIR* d = ::opendir(mount.c_str());
  if (!d) return;
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string n = e->d_name;
    if (n != "." && n != ".." && n != "lost+found") names.push_back(n);
  }
  ::closedir(d);
  for (const auto& n : names) {
    std::error_code ec;
    std::filesystem::remove_all(mount + "/" + n, ec);
  }
}

// ---------------------------------------------------------------------------
// A run: one sequence on both sides

//! Counts of a test: what was run and compared.
struct counts {
  std::uint64_t sequences = 0;
  std::uint64_t calls = 0;
  std::uint64_t succeeded = 0;  //!< calls that succeeded on both sides
  std::uint64_t comparisons = 0;
  std::uint64_t divergences = 0;
};

//! Where a run's sides disagreed first, and what each said.
struct divergence {
  bool found = false;
  bool at_start = false;      //!< the starting trees differ (before any call)
  bool setup_failed = false;  //!< a plant did not take the same way on both sides
  std::size_t call_index = 0;  //!< the call after which they disagreed
  std::vector<std::string> lines;
};

//! A run's configuration: which real filesystem, and the name resolution
//! the Linux policy uses.
struct run_config {
  scratch_kind kind = scratch_kind::btrfs;
  run_paths paths;
  bool component_walk = false;
};

inline run_config config_for(scratch_kind kind) {
  run_config cfg;
  cfg.kind = kind;
  cfg.paths.mount = test::scratch_mount(kind);
  cfg.paths.other_mount = test::scratch_mount(other_kind_for(kind));
  cfg.paths.run = cfg.paths.mount + "/s";
  cfg.paths.other = cfg.paths.other_mount + "/s";
  return cfg;
}

//! After a btrfs punch_hole of [off, end) without data in the file of
//! inode `ino` (memory side): where btrfs wrote zeroed blocks at the range's
//! partial ends and the mock has a hole, and nothing else differs in that
//! file, write those zeros into the mock. Returns whether it did.
inline bool reconcile_punch(side<MemoryFsOps>& mem, const snapshot& m, const snapshot& r, std::uint64_t ino,
                            std::uint64_t off, std::uint64_t end) {
  for (const auto& [key, mn] : m.nodes) {
    if (mn.ino != ino || mn.type != file_type::regular || key.compare(0, 2, "R:") != 0) continue;
    auto rit = r.nodes.find(key);
    if (rit == r.nodes.end() || !rit->second.data_error.empty() || rit->second.digest != mn.digest) return false;
    const std::uint64_t head = off - off % 4096, tail = (end - 1) - (end - 1) % 4096;
    ranges extra;
    const ranges have = logical(mn.ex, false);
    for (const auto& x : logical(rit->second.ex, false))
      for (std::uint64_t b = x.first; b < x.second; b += 4096)
        if (!covered({{b, b + 4096}}, have)) extra.emplace_back(b, b + 4096);
    if (extra.empty()) return false;
    for (const auto& x : extra) {
      const bool at_end = (x.first == head && off % 4096 != 0) || (x.first == tail && end % 4096 != 0);
      if (!at_end || x.first >= mn.size) return false;
    }
    const std::string abs = mem.paths.run + "/" + key.substr(2);
    for (const auto& x : extra) {
      const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(4096, mn.size - x.first));
      if (!mem.ops.write_file(abs, std::string(n, '\0'), x.first, missing_file::fail)) return false;
    }
    return true;
  }
  return false;
}

//! Lets both real filesystems finish their background work: syncfs, which
//! commits btrfs's transaction and XFS's log (and with it the inodes it
//! inactivates), then a moment for the work queued behind it.
//! `pause_us` is that moment: on a loaded machine XFS's inode
//! inactivation worker can take longer than an idle machine's 20 ms.
inline void settle(const run_paths& rp, unsigned pause_us = 20000) {
  for (const std::string& m : {rp.mount, rp.other_mount}) {
    const int fd = ::open(m.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) continue;
    ::syncfs(fd);
    ::close(fd);
  }
  ::usleep(pause_us);
}

//! A clock for the memory side: real time, a nanosecond on at least per
//! reading, so that every change is seen as one (as with the kernel's
//! fine-grained timestamps once a stat has looked).
inline std::function<file_time()> memory_clock() {
  auto last = std::make_shared<file_time>();
  return [last] {
    file_time t = wall_now();
    if (t <= *last) t = last->next();
    *last = t;
    return t;
  };
}

//! Runs `calls` from the starting tree `tree` on both sides, comparing after
//! every call; stops at the first disagreement.
inline divergence run_once(const run_config& cfg, const std::vector<plant>& tree, const std::vector<call>& calls,
                           counts* tally, std::vector<std::string>* trace = nullptr) {
  divergence d;
  const run_paths& rp = cfg.paths;
  clear_real(rp.mount);
  clear_real(rp.other_mount);
  time_window w{wall_now(), wall_now()};
  w.lo.sec -= 2;

  side<MemoryFsOps> mem;
  mem.paths = rp;
  mem.ops.set_clock(memory_clock());
  (void)mem.ops.mount(rp.mount, memory_mount_for(cfg.kind));
  (void)mem.ops.mount(rp.other_mount, memory_mount_for(other_kind_for(cfg.kind)));
  // mkfs.ext4 makes lost+found in the root: a run may reach the root by "..".
  for (const auto& [kind, mount] : {std::pair{cfg.kind, rp.mount}, std::pair{other_kind_for(cfg.kind), rp.other_mount}})
    if (kind == scratch_kind::ext4) (void)mem.ops.open_dir(mount + "/lost+found", true);
  side<LinuxFsOps> real;
  real.paths = rp;
  LinuxFsOps::set_use_openat2(!cfg.component_walk);

  // The starting tree: the two directories, then the plants.
  const auto setup_fail = [&](const std::string& what) {
    d.found = true;
    d.at_start = true;
    d.setup_failed = true;
    d.lines.push_back("setup: " + what);
    return d;
  };
  for (const std::string& dir : {rp.run, rp.other}) {
    if (::mkdir(dir.c_str(), 0755) != 0) return setup_fail("mkdir " + dir + ": " + std::strerror(errno));
    if (auto r = mem.ops.open_dir(dir, true); !r) return setup_fail(r.error().message());
  }
  for (const plant& p : tree) {
    const int e1 = plant_memory(mem.ops, rp, p);
    const int e2 = plant_real(rp, p);
    if (e1 != e2) return setup_fail(to_string(p) + ": memory " + errno_name(e1) + ", real " + errno_name(e2));
  }
  const auto open_both = [&](const std::string& abs, auto& hm, auto& hr) {
    auto a = mem.ops.open_dir(abs, false);
    auto b = real.ops.open_dir(abs, false);
    if (a) hm = a.value().handle;
    if (b) hr = b.value().handle;
    return static_cast<bool>(a) == static_cast<bool>(b);
  };
  if (!open_both(rp.run, mem.tree, real.tree) || !open_both(rp.other, mem.other_tree, real.other_tree))
    return setup_fail("open_dir of the run's directories");
  mem.slot[0] = mem.tree;
  real.slot[0] = real.tree;
  mem.slot[2] = mem.other_tree;
  real.slot[2] = real.other_tree;
  if (!open_both(rp.run + "/d", mem.slot[1], real.slot[1])) return setup_fail("open_dir d");

  std::uint64_t comparisons = 0;
  const shared_flags flags = cfg.kind == scratch_kind::btrfs ? shared_flags::within_extents : shared_flags::exact;
  const auto alloc_of = [](scratch_kind k) {
    return k == scratch_kind::btrfs ? allocation::exact : allocation::data_extents;
  };
  const allocation main_alloc = alloc_of(cfg.kind), other_alloc = alloc_of(other_kind_for(cfg.kind));
  mem.clip[0] = mem.clip[1] = real.clip[0] = real.clip[1] = main_alloc == allocation::data_extents;
  mem.clip[2] = real.clip[2] = other_alloc == allocation::data_extents;
  w.hi = wall_now();
  w.hi.sec += 2;
  snapshot mem_prev = take_snapshot(mem, true, w, main_alloc, other_alloc);
  snapshot real_prev = take_snapshot(real, true, w, main_alloc, other_alloc);
  {
    auto diff = compare(mem_prev, mem_prev, real_prev, real_prev, w, true, flags, comparisons);
    if (!diff.empty()) {
      d.found = true;
      d.at_start = true;
      d.lines = diff;
      d.lines.insert(d.lines.begin(), "the starting trees differ:");
    }
  }
  std::size_t done = 0;
  std::uint64_t succeeded = 0;
  for (std::size_t i = 0; i < calls.size() && !d.found; ++i) {
    const call& c = calls[i];
    // btrfs's punch_hole of a range without data depends on the extent maps
    // btrfs cached on earlier calls, reads included (see in_first_hole in
    // memory.hpp): whether it moves the times, and whether it writes a
    // zeroed block at a partial end of the range. The mock follows the maps
    // btrfs makes as a file grows. For such a punch the times may differ,
    // and zeroed end blocks btrfs wrote are written into the mock too, so
    // that the rest of the run compares exactly.
    std::uint64_t times_may_move = 0;
    if (c.kind == op::punch_hole && cfg.kind == scratch_kind::btrfs && c.h1 != 2 && c.b > 0)
      if (auto st = mem.ops.stat(mem.slot[c.h1], path(c.p1)); st && st.value().type == file_type::regular)
        if (auto ex = mem.ops.extents(mem.slot[c.h1], path(c.p1)); ex) {
          bool meets = false;
          for (const extent& e : ex.value())
            if (e.logical < c.a + std::min(c.b, i64_max) && c.a - c.a % 4096 < e.logical + e.length) meets = true;
          if (!meets) times_may_move = st.value().ino;
        }
    const outcome om = execute(mem, c, w);
    const outcome orl = execute(real, c, w);
    ++done;
    ++comparisons;
    if (om.code == "ok" && orl.code == "ok") ++succeeded;
    w.hi = wall_now();
    w.hi.sec += 2;
    if (trace) trace->push_back(to_string(c) + "  ->  memory: " + om.text() + " | real: " + orl.text());
    if (!agree(om, orl, flags)) {
      d.found = true;
      d.call_index = i;
      d.lines.push_back("result: memory " + om.text());
      d.lines.push_back("        real   " + orl.text());
    }
    snapshot mem_now = take_snapshot(mem, true, w, main_alloc, other_alloc);
    snapshot real_now = take_snapshot(real, true, w, main_alloc, other_alloc);
    auto diff = compare(mem_prev, mem_now, real_prev, real_now, w, true, flags, comparisons, times_may_move);
    if (!diff.empty() && times_may_move != 0 && om.code == "ok" && orl.code == "ok" &&
        reconcile_punch(mem, mem_now, real_now, times_may_move, c.a, c.a + std::min(c.b, i64_max))) {
      mem_now = take_snapshot(mem, true, w, main_alloc, other_alloc);
      diff = compare(mem_prev, mem_now, real_prev, real_now, w, true, flags, comparisons, times_may_move);
    }
    if (!diff.empty()) {
      // What the filesystem finishes in the background (XFS inactivates an
      // unlinked inode later, btrfs drops extent references at its next
      // commit) is not what a call did: look again once it settled. The
      // worker runs when the machine lets it, so the look is repeated with
      // longer pauses (about 2.5 s in all) before the sides are said to differ.
      for (unsigned pause_us = 20000; !diff.empty() && pause_us <= 1280000; pause_us *= 2) {
        settle(rp, pause_us);
        real_now = take_snapshot(real, true, w, main_alloc, other_alloc);
        diff = compare(mem_prev, mem_now, real_prev, real_now, w, true, flags, comparisons, times_may_move);
      }
    }
    if (!diff.empty()) {
      if (!d.found) {
        d.lines.push_back("result (both): " + om.text());
        if (om.message != orl.message) d.lines.push_back("               real: " + orl.text());
      }
      d.found = true;
      d.call_index = i;
      d.lines.insert(d.lines.end(), diff.begin(), diff.end());
    }
    mem_prev = std::move(mem_now);
    real_prev = std::move(real_now);
  }
  if (tally) {
    ++tally->sequences;
    tally->calls += done;
    tally->succeeded += succeeded;
    tally->comparisons += comparisons;
    if (d.found) ++tally->divergences;
  }
  LinuxFsOps::set_use_openat2(true);
  return d;
}

//! A divergent run made small: calls and plants removed while the two
//! sides still disagree.
struct shrunk {
  std::vector<plant> tree;
  std::vector<call> calls;
  divergence d;
};

inline shrunk shrink(const run_config& cfg, std::vector<plant> tree, std::vector<call> calls, divergence d) {
  // Nothing after the first disagreement matters.
  calls.resize(d.at_start ? 0 : d.call_index + 1);
  // A trial counts when it still diverges the same way: at the start, or in
  // a call (never because a plant no longer takes).
  const bool at_start = d.at_start;
  const auto still = [&](const std::vector<plant>& t, const std::vector<call>& c, divergence& out) {
    out = run_once(cfg, t, c, nullptr);
    return out.found && !out.setup_failed && out.at_start == at_start;
  };
  // Calls: chunks of halving size, then one at a time.
  for (std::size_t chunk = std::max<std::size_t>(calls.size() / 2, 1);; chunk /= 2) {
    for (std::size_t i = 0; i + 1 <= calls.size();) {
      if (calls.size() <= 1) break;
      std::vector<call> trial = calls;
      const std::size_t n = std::min(chunk, trial.size() - i);
      trial.erase(trial.begin() + static_cast<std::ptrdiff_t>(i), trial.begin() + static_cast<std::ptrdiff_t>(i + n));
      divergence out;
      if (!trial.empty() && still(tree, trial, out)) {
        calls = std::move(trial);
        d = std::move(out);
        calls.resize(d.call_index + 1);
      } else {
        i += n;
      }
    }
    if (chunk == 1) break;
  }
  // Plants, one at a time (a later plant may need an earlier one: then the
  // setup differs and the trial is kept only if it still diverges in a call).
  for (std::size_t i = 0; i < tree.size();) {
    std::vector<plant> trial = tree;
    trial.erase(trial.begin() + static_cast<std::ptrdiff_t>(i));
    divergence out;
    if (still(trial, calls, out)) {
      tree = std::move(trial);
      d = std::move(out);
    } else {
      ++i;
    }
  }
  return shrunk{std::move(tree), std::move(calls), std::move(d)};
}

//! The report of a divergence: the seed, the shrunk sequence, both results.
inline std::string report(const run_config& cfg, std::uint64_t seed, const shrunk& s) {
  std::string out = "divergence on " + std::string(test::to_string(cfg.kind)) + " (seed " + std::to_string(seed) +
                    (cfg.component_walk ? ", component walk" : "") + "), shrunk to:\n";
  for (const plant& p : s.tree) out += "  " + to_string(p) + "\n";
  for (std::size_t i = 0; i < s.calls.size(); ++i)
    out += "  " + std::string(!s.d.at_start && i == s.d.call_index ? "> " : "  ") + to_string(s.calls[i]) + "\n";
  if (s.d.at_start) out += "  (before any call)\n";
  for (const auto& l : s.d.lines) out += "    " + l + "\n";
  return out;
}

}  // namespace file_reflink::differential
