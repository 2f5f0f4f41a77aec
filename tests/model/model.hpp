// SPDX-License-Identifier: BSL-1.0
//! \file
//! The reference model of a whole pool: what every volume's files must hold
//! after each operation, written from the behaviour contract alone. It never
//! calls the library to compute an expectation: its file names, stamps, vid
//! rules and revision rules are its own, so that a library bug cannot hide
//! in a shared helper. Only public value types (`errc`, `volume_kind`) are
//! borrowed, to name what an operation returns.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/error.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

namespace file_reflink::model_test {

// ---------------------------------------------------------------------------
// Bytes: immutable images, shared by value (a revision costs a pointer).

using bytes = std::shared_ptr<const std::string>;

inline bytes make_bytes(std::string s) { return std::make_shared<const std::string>(std::move(s)); }
inline bytes zeros(std::uint64_t n) { return make_bytes(std::string(static_cast<std::size_t>(n), '\0')); }

//! `b` with `data` written at `off` (the image grows if the write ends beyond it).
inline bytes written(const bytes& b, std::uint64_t off, std::string_view data) {
  std::string s = *b;
  if (off + data.size() > s.size()) s.resize(static_cast<std::size_t>(off + data.size()), '\0');
  std::copy(data.begin(), data.end(), s.begin() + static_cast<std::ptrdiff_t>(off));
  return make_bytes(std::move(s));
}

//! `b` with `len` bytes from `off` reading as zeros (a punched hole).
inline bytes zeroed(const bytes& b, std::uint64_t off, std::uint64_t len) {
  std::string s = *b;
  const std::uint64_t end = std::min<std::uint64_t>(off + len, s.size());
  for (std::uint64_t i = off; i < end; ++i) s[static_cast<std::size_t>(i)] = '\0';
  return make_bytes(std::move(s));
}

//! `b` truncated or extended with zeros to `n` bytes.
inline bytes resized(const bytes& b, std::uint64_t n) {
  if (b->size() == n) return b;
  std::string s = *b;
  s.resize(static_cast<std::size_t>(n), '\0');
  return make_bytes(std::move(s));
}

//! A few words about an image for failure messages: its size and a digest.
inline std::string describe(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  std::size_t nonzero = 0;
  for (char c : s) {
    h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
    nonzero += c != 0;
  }
  char buf[96];
  std::snprintf(buf, sizeof buf, "%zu bytes, %zu non-zero, fnv %016llx", s.size(), nonzero,
                static_cast<unsigned long long>(h));
  return buf;
}

// ---------------------------------------------------------------------------
// Stamps: "YYYY-MM-DDTHH:MM:SSZ" of an mtime in UTC, whole seconds rounded
// down, years 0000-9999 (proleptic Gregorian), clamped outside.

//! Days from 0000-01-01 to January 1st of year `y` (0 <= y <= 10000); year 0 is a leap year.
constexpr std::int64_t days_before_year(std::int64_t y) {
  return 365 * y + (y + 3) / 4 - (y + 99) / 100 + (y + 399) / 400;
}
constexpr bool leap_year(std::int64_t y) { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }
//! 1970-01-01 counted from 0000-01-01.
constexpr std::int64_t epoch_day = days_before_year(1970);
static_assert(epoch_day == 719528);
//! The first and the last second a stamp can name.
constexpr std::int64_t first_stamp_second = -epoch_day * 86400;
constexpr std::int64_t last_stamp_second = (days_before_year(10000) - epoch_day) * 86400 - 1;

//! Seconds as a stamp will name them (clamped into years 0000-9999).
constexpr std::int64_t clamp_to_stamp(std::int64_t sec) {
  return sec < first_stamp_second ? first_stamp_second : sec > last_stamp_second ? last_stamp_second : sec;
}

//! The stamp of an mtime's whole seconds.
inline std::string stamp_of(std::int64_t sec) {
  sec = clamp_to_stamp(sec);
  std::int64_t day = sec >= 0 ? sec / 86400 : -((-sec + 86399) / 86400);
  std::int64_t rest = sec - day * 86400;  // [0, 86400)
  day += epoch_day;                        // days since 0000-01-01
  std::int64_t y = day / 366;
  while (days_before_year(y + 1) <= day) ++y;
  std::int64_t yday = day - days_before_year(y);
  static const int month_days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int m = 0;
  for (;; ++m) {
    const int len = month_days[m] + (m == 1 && leap_year(y) ? 1 : 0);
    if (yday < len) break;
    yday -= len;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", static_cast<int>(y), m + 1,
                static_cast<int>(yday) + 1, static_cast<int>(rest / 3600), static_cast<int>(rest / 60 % 60),
                static_cast<int>(rest % 60));
  return buf;
}

// ---------------------------------------------------------------------------
// Names

//! The directory of a vid ("" at the top) and its last component.
inline std::pair<std::string, std::string> split_vid(const std::string& vid) {
  const std::size_t slash = vid.rfind('/');
  if (slash == std::string::npos) return {std::string(), vid};
  return {vid.substr(0, slash), vid.substr(slash + 1)};
}
inline std::string in_dir(const std::string& dir, const std::string& name) {
  return dir.empty() ? name : dir + "/" + name;
}
inline std::string clean_name(const std::string& vid) { return vid + ".img"; }
inline std::string dirty_name(const std::string& vid) { return vid + "-dirty.img"; }
inline std::string precache_name(const std::string& vid) { return vid + "-precache.img"; }
inline std::string import_name(const std::string& vid) { return vid + "-import.img"; }
inline std::string revision_name(const std::string& vid, std::uint64_t n, const std::string& stamp) {
  return vid + ".img." + std::to_string(n) + "@" + stamp;
}
inline std::string pin_name(const std::string& vid, std::uint64_t n, const std::string& stamp,
                            const std::string& label) {
  return revision_name(vid, n, stamp) + "." + label + ".pin";
}

inline bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

//! Qubes' rule for a VM name: a letter, then letters, digits, '_', '.', '-'; at most 31.
inline bool qubes_vm_name(std::string_view n) {
  if (n.empty() || n.size() > 31) return false;
  const auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (!letter(n.front())) return false;
  for (char c : n)
    if (!letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '.' && c != '-') return false;
  return true;
}

//! Whether a vid is refused on its own (the vids the tests use are made of
//! Qubes VM names, which every directory component accepts): only the last
//! component names files, so it may not end like one of them.
inline bool vid_refused(const std::string& vid) {
  std::size_t start = 0;
  while (true) {
    const std::size_t end = vid.find('/', start);
    const std::string c = vid.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (c.empty() || c == "." || c == ".." || c.front() == '.') return true;
    if (c.find_first_of("~@") != std::string::npos) return true;
    if (end == std::string::npos) {
      for (std::string_view bad : {"-dirty", "-precache", "-import", ".img"})
        if (ends_with(c, bad)) return true;
      return c.find(".img.") != std::string::npos;
    }
    if (!qubes_vm_name(c) && c != "appvms" && c != "vm-templates") return true;
    start = end + 1;
  }
}

//! Whether the files of `a` would take the name of a directory of `b`:
//! "appvms/backup" has "appvms/backup.img", the directory of
//! "appvms/backup.img/private". (Revision, pin and temporary names contain
//! '@' or '~', which no directory of a valid vid has.)
inline bool files_hit_directory(const std::string& a, const std::string& b) {
  for (std::size_t slash = b.find('/'); slash != std::string::npos; slash = b.find('/', slash + 1)) {
    const std::string dir = b.substr(0, slash);
    for (const std::string& f : {clean_name(a), dirty_name(a), precache_name(a), import_name(a)})
      if (f == dir) return true;
  }
  return false;
}

//! Why a revision label is refused, in the contract's words: empty, longer
//! than 64, all digits (a number), a leading '.' or '-', or a character
//! other than letters, digits, '_', '-', '.', '+'.
inline bool label_refused(std::string_view l) {
  if (l.empty() || l.size() > 64) return true;
  if (std::all_of(l.begin(), l.end(), [](char c) { return c >= '0' && c <= '9'; })) return true;
  if (l.front() == '.' || l.front() == '-') return true;
  for (char c : l) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                    c == '-' || c == '.' || c == '+';
    if (!ok) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------
// The state

//! One revision: its number and stamp together (a number alone is not a
//! revision's identity: a Qubes driver reuses numbers), whether its own file
//! exists, its pins, and its bytes.
struct revision {
  std::uint64_t n = 0;
  std::string stamp;
  std::int64_t time = 0;          //!< the stamp in seconds since the epoch
  bool file = false;              //!< "V.img.N@STAMP" exists
  std::set<std::string> labels;   //!< "V.img.N@STAMP.LABEL.pin"
  bytes data;
};

//! A stamp observed on disk (the mtime of the image a revision supersedes).
struct stamp_info {
  std::string stamp;
  std::int64_t time = 0;
  static stamp_info of_seconds(std::int64_t sec) { return {stamp_of(sec), clamp_to_stamp(sec)}; }
};

//! How a volume is registered.
struct config {
  volume_kind kind = volume_kind::origin;
  std::uint64_t size = 0;
  bool rw = true;
  std::string source;            //!< snapshot kinds only
  std::optional<int> keep;       //!< revisions_to_keep; none: the pool's
};

inline bool saves(volume_kind k) { return k == volume_kind::origin || k == volume_kind::origin_snapshot; }
inline bool snaps(volume_kind k) { return k == volume_kind::snapshot || k == volume_kind::origin_snapshot; }

//! One vid: its registration in the current Pool object, and its files.
struct volume {
  std::optional<config> reg;
  std::uint64_t size = 0;        //!< the size the volume object holds (resize, volatile stop)
  bytes clean, dirty, import;    //!< null: that file is absent
  bool importing = false;        //!< import_data was called by the current Pool object
  bool precache_absent = true;   //!< the precache must not exist (else: it may)
  std::vector<revision> revs;    //!< by (number, stamp)
  std::set<std::string> temps;   //!< planted temporaries, relative to the pool

  bool has_files() const {
    return clean || dirty || import || !revs.empty() || !temps.empty() || !precache_absent;
  }
  void sort_revs() {
    std::sort(revs.begin(), revs.end(),
              [](const revision& a, const revision& b) { return std::tie(a.n, a.stamp) < std::tie(b.n, b.stamp); });
  }
};

//! What an operation returns: success or one code.
using outcome = std::optional<errc>;

//! Which revision an operation names.
struct selector {
  enum class by { newest, number, label } how = by::newest;
  std::uint64_t n = 0;
  std::string label;
};

//! The whole pool.
class pool_model {
public:
  int pool_keep = 1;
  std::map<std::string, volume> vols;

  volume& at(const std::string& vid) { return vols[vid]; }
  const volume* find(const std::string& vid) const {
    auto it = vols.find(vid);
    return it == vols.end() ? nullptr : &it->second;
  }

  int keep_of(const volume& v) const { return v.reg->keep.value_or(pool_keep); }
  //! Revisions a commit keeps: none for 0 and for -1.
  std::uint64_t kept(const volume& v) const {
    const int k = keep_of(v);
    return k > 0 ? static_cast<std::uint64_t>(k) : 0;
  }
  bool snapshots_disabled(const volume& v) const {
    return v.reg && v.reg->kind == volume_kind::origin && keep_of(v) == -1;
  }
  //! The size `size()` reports: the running image's, else the committed
  //! one's (save_on_stop), else the size the volume object holds.
  std::uint64_t current_size(const volume& v) const {
    if (v.dirty) return v.dirty->size();
    if (saves(v.reg->kind) && v.clean) return v.clean->size();
    return v.size;
  }

  static std::uint64_t next_number(const volume& v) {
    std::uint64_t n = 0;
    for (auto& r : v.revs) n = std::max(n, r.n);
    return n + 1;
  }
  //! The highest number of a revision FILE (what a Qubes driver sees).
  static std::uint64_t highest_file(const volume& v) {
    std::uint64_t n = 0;
    for (auto& r : v.revs)
      if (r.file) n = std::max(n, r.n);
    return n;
  }

  //! The revision `sel` names, or the error.
  static std::pair<const revision*, outcome> find_revision(const volume& v, const selector& sel) {
    switch (sel.how) {
      case selector::by::newest:
        if (v.revs.empty()) return {nullptr, errc::revision_not_found};
        return {&v.revs.back(), std::nullopt};
      case selector::by::label:
        for (auto& r : v.revs)
          if (r.labels.count(sel.label)) return {&r, std::nullopt};
        return {nullptr, errc::revision_not_found};
      case selector::by::number: break;
    }
    std::vector<const revision*> all, files;
    for (auto& r : v.revs)
      if (r.n == sel.n) {
        all.push_back(&r);
        if (r.file) files.push_back(&r);
      }
    if (all.empty()) return {nullptr, errc::revision_not_found};
    if (all.size() == 1) return {all.front(), std::nullopt};
    if (files.size() == 1) return {files.front(), std::nullopt};
    return {nullptr, errc::revision_ambiguous};
  }

  //! Remove the oldest unpinned revision files beyond `keep`.
  static void prune(volume& v, std::uint64_t keep) {
    std::vector<std::size_t> unpinned;
    for (std::size_t i = 0; i < v.revs.size(); ++i)
      if (v.revs[i].file && v.revs[i].labels.empty()) unpinned.push_back(i);
    if (unpinned.size() <= keep) return;
    const std::size_t drop = unpinned.size() - static_cast<std::size_t>(keep);
    std::vector<revision> out;
    std::size_t next = 0;
    for (std::size_t i = 0; i < v.revs.size(); ++i) {
      if (next < drop && unpinned[next] == i) {
        ++next;
        continue;
      }
      out.push_back(std::move(v.revs[i]));
    }
    v.revs = std::move(out);
  }
  //! How many unpinned revision files a prune to `keep` would remove.
  static std::size_t prunable(const volume& v, std::uint64_t keep) {
    std::size_t unpinned = 0;
    for (auto& r : v.revs) unpinned += r.file && r.labels.empty();
    return unpinned > keep ? unpinned - static_cast<std::size_t>(keep) : 0;
  }

  //! Commit `image` as the committed image: the old one becomes revision
  //! next (stamped `st`) when it existed and revisions are kept; then prune.
  void commit(volume& v, bytes image, bool with_revision, const std::optional<stamp_info>& st) {
    if (v.clean && with_revision && kept(v) > 0) add_revision(v, v.clean, *st);
    v.clean = std::move(image);
    prune(v, kept(v));
    if (!snapshots_disabled(v)) v.precache_absent = false;
  }

  static void add_revision(volume& v, bytes data, const stamp_info& st) {
    revision r;
    r.n = next_number(v);
    r.stamp = st.stamp;
    r.time = st.time;
    r.file = true;
    r.data = std::move(data);
    v.revs.push_back(std::move(r));
    v.sort_revs();
  }

  //! Every file of `vid` is gone (remove, create's first step), an import
  //! this process has open too (as the Qubes driver's create removes it).
  static void remove_files(volume& v) {
    v.clean = v.dirty = nullptr;
    v.import = nullptr;
    v.importing = false;
    v.revs.clear();
    v.temps.clear();
    v.precache_absent = true;
  }

  //! What start removes first: this vid's temporaries and an import that no
  //! open import_data owns.
  static void remove_incomplete(volume& v) {
    v.temps.clear();
    if (!v.importing) v.import = nullptr;
  }

  // ---- the operations: each returns what the library must return, and
  // ---- changes the state as the library must.

  outcome init(const std::string& vid, const config& c) {
    if (vid_refused(vid)) return errc::invalid_vid;
    if (snaps(c.kind) && vid_refused(c.source)) return errc::invalid_vid;  // a source must be a vid too
    volume& v = at(vid);
    if (v.reg) return errc::volume_exists;
    for (auto& [other, o] : vols)
      if (o.reg && other != vid && (files_hit_directory(vid, other) || files_hit_directory(other, vid)))
        return errc::invalid_vid;
    v.reg = c;
    v.size = c.size;
    return std::nullopt;
  }

  outcome create(volume& v) {
    remove_files(v);
    if (v.reg->kind == volume_kind::origin) {
      v.clean = zeros(v.size);
      v.precache_absent = snapshots_disabled(v);
    }
    return std::nullopt;
  }

  outcome start(volume& v) {
    remove_incomplete(v);
    const config& c = *v.reg;
    if (saves(c.kind) && v.dirty) return std::nullopt;
    if (snapshots_disabled(v)) {
      if (!v.clean) return errc::image_not_found;
      v.precache_absent = true;
      // Every unpinned revision file goes; pinned revisions stay whole.
      std::vector<revision> left;
      for (auto& r : v.revs)
        if (!(r.file && r.labels.empty())) left.push_back(r);
      v.revs = std::move(left);
      v.dirty = std::move(v.clean);
      v.clean = nullptr;
      return std::nullopt;
    }
    if (snaps(c.kind)) {
      const volume* src = find(c.source);
      if (!src || !src->clean) return errc::source_not_found;
      v.clean = src->clean;  // the hard link to the source's committed image
      v.dirty = src->clean;
      return std::nullopt;
    }
    if (saves(c.kind)) {
      if (!v.clean) return errc::image_not_found;
      v.dirty = v.clean;
      return std::nullopt;
    }
    v.dirty = zeros(v.size);
    return std::nullopt;
  }

  outcome stop(volume& v, const std::optional<stamp_info>& st) {
    const config& c = *v.reg;
    if (saves(c.kind)) {
      if (!v.dirty) return std::nullopt;
      if (snapshots_disabled(v)) {
        v.clean = std::move(v.dirty);
        v.dirty = nullptr;
        return std::nullopt;
      }
      bytes image = std::move(v.dirty);
      v.dirty = nullptr;
      commit(v, std::move(image), true, st);
      return std::nullopt;
    }
    if (c.kind == volume_kind::volatile_ && v.dirty) v.size = v.dirty->size();
    v.dirty = nullptr;
    if (snaps(c.kind)) v.clean = nullptr;
    return std::nullopt;
  }

  outcome revert(volume& v, const selector& sel, const std::optional<stamp_info>& st) {
    if (sel.how == selector::by::label && label_refused(sel.label)) return errc::invalid_revision_label;
    if (v.dirty) return errc::volume_dirty;
    auto [target, err] = find_revision(v, sel);
    if (err) return err;
    const revision t = *target;
    if (!t.labels.empty()) {
      // A pinned revision stays; its bytes are cloned.
    } else {
      v.revs.erase(v.revs.begin() + (target - v.revs.data()));
    }
    if (v.clean) {
      // The current committed image always becomes a new revision, numbered
      // after every revision (the target included).
      revision r;
      r.n = std::max(next_number(v), t.n + 1);
      r.stamp = st->stamp;
      r.time = st->time;
      r.file = true;
      r.data = v.clean;
      v.revs.push_back(std::move(r));
      v.sort_revs();
    }
    v.clean = t.data;
    v.precache_absent = false;
    return std::nullopt;
  }

  outcome keep_revision(volume& v, std::uint64_t n, const std::string& label) {
    if (label_refused(label)) return errc::invalid_revision_label;
    auto [target, err] = find_revision(v, selector{selector::by::number, n, {}});
    if (err) return err;
    for (auto& r : v.revs)
      if (r.labels.count(label)) return &r == target ? outcome() : outcome(errc::invalid_revision_label);
    v.revs[static_cast<std::size_t>(target - v.revs.data())].labels.insert(label);
    return std::nullopt;
  }

  outcome unkeep_revision(volume& v, const std::string& label) {
    if (label_refused(label)) return errc::invalid_revision_label;
    auto [target, err] = find_revision(v, selector{selector::by::label, 0, label});
    if (err) return err;
    revision& r = v.revs[static_cast<std::size_t>(target - v.revs.data())];
    r.labels.erase(label);
    if (!r.file && r.labels.empty()) v.revs.erase(v.revs.begin() + (target - v.revs.data()));
    return std::nullopt;
  }

  outcome drop_revision(volume& v, const selector& sel) {
    if (sel.how == selector::by::label && label_refused(sel.label)) return errc::invalid_revision_label;
    auto [target, err] = find_revision(v, sel);
    if (err) return err;
    v.revs.erase(v.revs.begin() + (target - v.revs.data()));
    return std::nullopt;
  }

  //! A stopped origin's committed image grows: a new image of the same
  //! bytes, no revision, and no revision removed.
  outcome resize(volume& v, std::uint64_t size) {
    const config& c = *v.reg;
    if (!c.rw) return errc::read_only;
    if (size < current_size(v)) return errc::shrink_refused;
    if (v.dirty) {
      v.dirty = resized(v.dirty, size);
    } else if (c.kind == volume_kind::origin && v.clean && v.clean->size() != size) {
      v.clean = resized(v.clean, size);
      if (!snapshots_disabled(v)) v.precache_absent = false;
    }
    v.size = size;
    return std::nullopt;
  }

  outcome discard(volume& v, std::uint64_t off, std::uint64_t len, const std::optional<stamp_info>& st) {
    const config& c = *v.reg;
    if (!c.rw) return errc::read_only;
    const std::uint64_t cur = current_size(v);
    if (off > cur || len > cur - off) return errc::out_of_range;
    if (len == 0) return std::nullopt;
    if (v.dirty) {
      v.dirty = zeroed(v.dirty, off, len);
      return std::nullopt;
    }
    if (!saves(c.kind)) return errc::volume_not_running;
    if (!v.clean) return errc::image_not_found;
    if (snapshots_disabled(v)) {
      v.clean = zeroed(v.clean, off, len);
      return std::nullopt;
    }
    commit(v, zeroed(v.clean, off, len), true, st);
    return std::nullopt;
  }

  //! Bytes never change, no revision is made and none removed.
  outcome sparsify(volume& v) {
    const config& c = *v.reg;
    if (!saves(c.kind)) return errc::not_save_on_stop;
    if (v.dirty) return errc::volume_dirty;
    if (!v.clean) return errc::image_not_found;
    return std::nullopt;
  }

  outcome import_data(volume& v, std::uint64_t size) {
    if (!saves(v.reg->kind)) return errc::not_save_on_stop;
    if (v.importing) return errc::import_in_progress;
    if (v.dirty) return errc::volume_dirty;
    v.import = zeros(size);
    v.importing = true;
    return std::nullopt;
  }

  outcome import_data_end(volume& v, bool ok, const std::optional<stamp_info>& st) {
    if (!v.importing) return errc::no_import_in_progress;
    bytes image = std::move(v.import);
    v.import = nullptr;
    v.importing = false;
    if (ok) commit(v, std::move(image), true, st);
    return std::nullopt;
  }

  outcome import_volume(volume& v, const volume& src, const std::optional<stamp_info>& st) {
    if (!saves(v.reg->kind)) return errc::not_save_on_stop;
    if (v.importing) return errc::import_in_progress;
    if (v.dirty) return errc::volume_dirty;
    if (!saves(src.reg->kind)) return errc::not_save_on_stop;
    if (!src.clean) return errc::source_not_found;
    v.import = nullptr;
    commit(v, src.clean, true, st);
    return std::nullopt;
  }

  outcome remove(const std::string& vid, volume& v, bool force) {
    if (!force) {
      if (v.dirty) return errc::volume_running;
      for (auto& [other, o] : vols)
        if (other != vid && o.reg && snaps(o.reg->kind) && o.reg->source == vid) return errc::source_in_use;
    }
    remove_files(v);
    v.importing = false;
    v.reg.reset();
    return std::nullopt;
  }

  //! recover(): every temporary goes, and every import no open import_data owns.
  void recover() {
    for (auto& [vid, v] : vols) remove_incomplete(v);
  }

  //! A new Pool object: registrations are made again (by the caller),
  //! open imports are forgotten (their files stay until cleaned up).
  void restart(int new_pool_keep) {
    pool_keep = new_pool_keep;
    for (auto& [vid, v] : vols) v.importing = false;
  }
};

}  // namespace file_reflink::model_test
