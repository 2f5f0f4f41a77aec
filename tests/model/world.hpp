// SPDX-License-Identifier: BSL-1.0
//! \file
//! A pool on a fixture's filesystem driven in step with the reference model.
//! Each step function does one thing (a library operation, a VM's write,
//! a restart, a clock jump, what a Qubes driver sharing the pool does) to
//! both, then compares everything: the return code, the bytes of every
//! image and revision of every volume, `revisions()`, `size()`,
//! `is_dirty()`, and the exact set of names on disk.
//!
//! A step that does not apply (a write into a volume that is not running,
//! an operation on a vid that is not registered) does nothing, so any
//! subsequence of steps replays: that is what shrinking needs. The first
//! disagreement is kept (`failed()`, `failure()`); later steps do nothing.
//! Every step is logged as the C++ call that repeats it (`calls()`).
#pragma once

#include "../fixtures.hpp"
#include "model.hpp"

#include <file_reflink/pool.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace file_reflink::model_test {

//! "errc::volume_dirty"
inline std::string errc_name(errc e) {
  switch (e) {
    case errc::reflink_unsupported: return "errc::reflink_unsupported";
    case errc::invalid_vid: return "errc::invalid_vid";
    case errc::invalid_config: return "errc::invalid_config";
    case errc::volume_not_found: return "errc::volume_not_found";
    case errc::volume_exists: return "errc::volume_exists";
    case errc::volume_removed: return "errc::volume_removed";
    case errc::source_not_found: return "errc::source_not_found";
    case errc::image_not_found: return "errc::image_not_found";
    case errc::volume_dirty: return "errc::volume_dirty";
    case errc::volume_not_running: return "errc::volume_not_running";
    case errc::revision_not_found: return "errc::revision_not_found";
    case errc::invalid_revision_label: return "errc::invalid_revision_label";
    case errc::shrink_refused: return "errc::shrink_refused";
    case errc::read_only: return "errc::read_only";
    case errc::not_save_on_stop: return "errc::not_save_on_stop";
    case errc::import_in_progress: return "errc::import_in_progress";
    case errc::no_import_in_progress: return "errc::no_import_in_progress";
    case errc::not_exported: return "errc::not_exported";
    case errc::pool_not_set_up: return "errc::pool_not_set_up";
    case errc::pool_directory_replaced: return "errc::pool_directory_replaced";
    case errc::unexpected_file_type: return "errc::unexpected_file_type";
    case errc::cancelled: return "errc::cancelled";
    case errc::out_of_range: return "errc::out_of_range";
    case errc::volume_running: return "errc::volume_running";
    case errc::source_in_use: return "errc::source_in_use";
    case errc::revision_ambiguous: return "errc::revision_ambiguous";
    case errc::volume_busy: return "errc::volume_busy";
    case errc::catalog_invalid: return "errc::catalog_invalid";
    case errc::stream_invalid: return "errc::stream_invalid";
    case errc::stream_base_missing: return "errc::stream_base_missing";
    case errc::stream_already_applied: return "errc::stream_already_applied";
  }
  return "errc(" + std::to_string(static_cast<int>(e)) + ")";
}

//! A C++ string literal.
inline std::string lit(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}
inline std::string lit(std::optional<int> k) { return k ? std::to_string(*k) : std::string("std::nullopt"); }
inline std::string lit(bool b) { return b ? "true" : "false"; }
inline std::string lit(std::int64_t v) {
  // INT64_MIN has no literal of its own.
  if (v == INT64_MIN) return "INT64_MIN";
  return std::to_string(v) + (v > INT32_MAX || v < INT32_MIN ? "ll" : "");
}
inline std::string lit(std::uint64_t v) { return std::to_string(v) + (v > UINT32_MAX ? "ull" : "u"); }
inline std::string lit32(std::uint32_t v) { return std::to_string(v) + "u"; }
inline std::string lit(volume_kind k) {
  switch (k) {
    case volume_kind::volatile_: return "volume_kind::volatile_";
    case volume_kind::snapshot: return "volume_kind::snapshot";
    case volume_kind::origin: return "volume_kind::origin";
    case volume_kind::origin_snapshot: return "volume_kind::origin_snapshot";
  }
  return "?";
}

//! Which checks run after each step (all by default). Turning one off is for
//! showing a defect that an earlier check would report differently.
struct check_options {
  bool revisions_list = true;  //!< compare `revisions()` with the model
};

template <class Fx>
class world {
public:
  using ops_type = typename Fx::ops_type;
  using pool_type = Pool<ops_type>;
  using volume_type = Volume<ops_type>;
  using handle = typename ops_type::dir_handle;
  static constexpr bool memory = std::is_same_v<ops_type, MemoryFsOps>;

  //! A pool in `fx.root/pool`, set up, with `pool_keep` as its revisions_to_keep.
  explicit world(Fx& fx, int pool_keep = 1, check_options checks = {})
      : fx_(fx), dir_(fx.root / "pool"), options_(checks) {
    log_.push_back("world<Fx> w(fx, " + std::to_string(pool_keep) +
                   (checks.revisions_list ? std::string(");") : std::string(", check_options{false});")));
    if constexpr (memory) {
      auto now = now_;
      fx_.ops.set_clock([now] { return *now; });
    }
    model_.pool_keep = pool_keep;
    pool_.emplace(pool_cfg(pool_keep), fx_.ops);
    if (auto r = pool_->setup(); !r) {
      fail("setup", "setup: " + r.error().message());
      return;
    }
    auto opened = fx_.ops.open_dir(dir_, false);
    if (!opened) {
      fail("setup", "open_dir: " + opened.error().message());
      return;
    }
    h_ = opened.value().handle;
  }
  ~world() {
    if constexpr (memory) fx_.ops.set_clock(nullptr);
  }
  world(const world&) = delete;
  world& operator=(const world&) = delete;

  // ---- what the test reads ------------------------------------------------

  bool failed() const { return !failure_.empty(); }
  //! What differed, with the step that showed it.
  const std::string& failure() const { return failure_; }
  //! What kind of check failed at which kind of step ("bytes after vm_write"):
  //! shrinking keeps a failure of the same kind.
  const std::string& signature() const { return signature_; }
  //! Index (from 0) of the step that failed.
  std::size_t failed_step() const { return failed_step_; }
  std::size_t steps() const { return steps_; }
  std::uint64_t checks() const { return checks_; }
  const pool_model& model() const { return model_; }
  //! The steps so far as C++ (the first line makes the world).
  const std::vector<std::string>& calls() const { return log_; }
  bool registered(const std::string& vid) const { return vols_.count(vid) != 0; }

  // ---- volumes -------------------------------------------------------------

  //! init_volume of a volume of `kind` (`source` for the snapshot kinds;
  //! `keep`: its revisions_to_keep, none for the pool's).
  void init(const std::string& vid, volume_kind kind, std::uint64_t size, const std::string& source = "",
            std::optional<int> keep = std::nullopt, bool rw = true) {
    if (!begin("init(" + lit(vid) + ", " + lit(kind) + ", " + lit(size) + ", " + lit(source) + ", " + lit(keep) +
               ", " + lit(rw) + ")"))
      return;
    config c;
    c.kind = kind;
    c.size = size;
    c.rw = rw;
    c.source = source;
    c.keep = keep;
    const outcome want = model_.init(vid, c);
    auto r = pool_->init_volume(library_config(vid, c));
    if (expect(want, r) && r) vols_.insert_or_assign(vid, r.value());
    check();
  }

  void create(const std::string& vid) {
    if (!begin("create(" + lit(vid) + ")") || !on(vid)) return;
    const outcome want = model_.create(model_.at(vid));
    expect(want, vol(vid).create());
    check();
  }

  void start(const std::string& vid) {
    if (!begin("start(" + lit(vid) + ")") || !on(vid)) return;
    const outcome want = model_.start(model_.at(vid));
    expect(want, vol(vid).start());
    check();
  }

  void stop(const std::string& vid) {
    if (!begin("stop(" + lit(vid) + ")") || !on(vid)) return;
    auto st = clean_stamp(vid);
    const outcome want = model_.stop(model_.at(vid), st);
    expect(want, vol(vid).stop());
    check();
  }

  //! The VM writes `len` bytes of pattern `seed` at `offset` of its running image.
  void vm_write(const std::string& vid, std::uint64_t offset, std::uint64_t len, std::uint32_t seed) {
    if (!begin("vm_write(" + lit(vid) + ", " + lit(offset) + ", " + lit(len) + ", " + lit32(seed) + ")"))
      return;
    volume& v = model_.at(vid);
    if (!v.dirty || offset + len > v.dirty->size() || len == 0) return;
    const std::string data = test::pattern(static_cast<std::size_t>(len), seed);
    if (auto r = fx_.ops.write(h_, dirty_name(vid), offset, data.data(), data.size()); !r)
      return fail("write", "the VM's write failed: " + r.error().message());
    v.dirty = written(v.dirty, offset, data);
    check();
  }

  // ---- revisions -------------------------------------------------------------

  void revert(const std::string& vid) { revert_to(vid, selector{}, "revert(" + lit(vid) + ")"); }
  void revert_number(const std::string& vid, std::uint64_t n) {
    revert_to(vid, selector{selector::by::number, n, {}}, "revert_number(" + lit(vid) + ", " + lit(n) + ")");
  }
  void revert_label(const std::string& vid, const std::string& label) {
    revert_to(vid, selector{selector::by::label, 0, label}, "revert_label(" + lit(vid) + ", " + lit(label) + ")");
  }

  void keep_revision(const std::string& vid, std::uint64_t n, const std::string& label) {
    if (!begin("keep_revision(" + lit(vid) + ", " + lit(n) + ", " + lit(label) + ")") || !on(vid)) return;
    const outcome want = model_.keep_revision(model_.at(vid), n, label);
    expect(want, vol(vid).keep_revision(n, label));
    check();
  }

  void unkeep_revision(const std::string& vid, const std::string& label) {
    if (!begin("unkeep_revision(" + lit(vid) + ", " + lit(label) + ")") || !on(vid)) return;
    const outcome want = model_.unkeep_revision(model_.at(vid), label);
    expect(want, vol(vid).unkeep_revision(label));
    check();
  }

  void drop_number(const std::string& vid, std::uint64_t n) {
    if (!begin("drop_number(" + lit(vid) + ", " + lit(n) + ")") || !on(vid)) return;
    const outcome want = model_.drop_revision(model_.at(vid), selector{selector::by::number, n, {}});
    expect(want, vol(vid).drop_revision(n));
    check();
  }

  void drop_label(const std::string& vid, const std::string& label) {
    if (!begin("drop_label(" + lit(vid) + ", " + lit(label) + ")") || !on(vid)) return;
    const outcome want = model_.drop_revision(model_.at(vid), selector{selector::by::label, 0, label});
    expect(want, vol(vid).drop_revision(std::string_view(label)));
    check();
  }

  // ---- resize, discard, sparsify ----------------------------------------------

  void resize(const std::string& vid, std::uint64_t size) {
    if (!begin("resize(" + lit(vid) + ", " + lit(size) + ")") || !on(vid)) return;
    const outcome want = model_.resize(model_.at(vid), size);
    expect(want, vol(vid).resize(size));
    check();
  }

  void discard(const std::string& vid, std::uint64_t offset, std::uint64_t len) {
    if (!begin("discard(" + lit(vid) + ", " + lit(offset) + ", " + lit(len) + ")") || !on(vid)) return;
    auto st = clean_stamp(vid);
    const outcome want = model_.discard(model_.at(vid), offset, len, st);
    expect(want, vol(vid).discard(offset, len));
    check();
  }

  void sparsify(const std::string& vid) {
    if (!begin("sparsify(" + lit(vid) + ")") || !on(vid)) return;
    volume& v = model_.at(vid);
    const outcome want = model_.sparsify(v);
    auto r = vol(vid).sparsify();
    // Where it freed blocks it published a new committed image, and its precache.
    if (expect(want, r) && r && r.value() > 0 && !model_.snapshots_disabled(v)) v.precache_absent = false;
    check();
  }

  // ---- import -------------------------------------------------------------------

  void import_data(const std::string& vid, std::uint64_t size) {
    if (!begin("import_data(" + lit(vid) + ", " + lit(size) + ")") || !on(vid)) return;
    const outcome want = model_.import_data(model_.at(vid), size);
    expect(want, vol(vid).import_data(size));
    check();
  }

  //! The importer writes `len` bytes of pattern `seed` at `offset` of the import file.
  void import_write(const std::string& vid, std::uint64_t offset, std::uint64_t len, std::uint32_t seed) {
    if (!begin("import_write(" + lit(vid) + ", " + lit(offset) + ", " + lit(len) + ", " +
               lit32(seed) + ")"))
      return;
    volume& v = model_.at(vid);
    if (!v.importing || !v.import || offset + len > v.import->size() || len == 0) return;
    const std::string data = test::pattern(static_cast<std::size_t>(len), seed);
    if (auto r = fx_.ops.write(h_, import_name(vid), offset, data.data(), data.size()); !r)
      return fail("write", "the importer's write failed: " + r.error().message());
    v.import = written(v.import, offset, data);
    check();
  }

  void import_end(const std::string& vid, bool ok) {
    if (!begin("import_end(" + lit(vid) + ", " + lit(ok) + ")") || !on(vid)) return;
    auto st = clean_stamp(vid);
    const outcome want = model_.import_data_end(model_.at(vid), ok, st);
    expect(want, vol(vid).import_data_end(ok));
    check();
  }

  void import_volume(const std::string& vid, const std::string& src) {
    if (!begin("import_volume(" + lit(vid) + ", " + lit(src) + ")") || !on(vid) || !on(src) || vid == src) return;
    auto st = clean_stamp(vid);
    const outcome want = model_.import_volume(model_.at(vid), model_.at(src), st);
    expect(want, vol(vid).import_volume(vol(src)));
    check();
  }

  // ---- send / receive -------------------------------------------------------------

  //! Back the volume up into a second pool on the same filesystem: the
  //! changes since its newest revision where the backup has received this
  //! vid before, else the whole image (and the whole image again where the
  //! backup refuses the changes for want of their base). The send changes
  //! nothing here, and the backup's committed image is then the model's
  //! committed bytes.
  void backup(const std::string& vid) {
    if (!begin("backup(" + lit(vid) + ")") || !on(vid)) return;
    const volume& mv = model_.at(vid);
    outcome want;
    if (!saves(mv.reg->kind))
      want = errc::not_save_on_stop;
    else if (!mv.clean)
      want = errc::image_not_found;
    std::optional<image_ref> since;
    if (backed_up_.count(vid) && !mv.revs.empty()) {
      const std::uint64_t n = mv.revs.back().n;
      const auto same = std::count_if(mv.revs.begin(), mv.revs.end(), [n](const revision& r) { return r.n == n; });
      if (same == 1) since = image_ref::revision(n);
    }
    std::string stream;
    auto sink = [&stream](const void* d, std::size_t len) -> result<void> {
      stream.append(static_cast<const char*>(d), len);
      return success();
    };
    std::size_t at = 0;
    auto source = [&stream, &at](void* buf, std::size_t len) -> result<std::size_t> {
      len = std::min(len, stream.size() - at);
      std::memcpy(buf, stream.data() + at, len);
      at += len;
      return len;
    };
    auto sent = vol(vid).send(sink, since);
    if (!expect(want, sent)) return;
    check();
    if (!sent || failed()) return;
    if (!backup_) {
      pool_config c = pool_cfg(1);
      c.name = "backup";
      c.dir_path = fx_.root / "backup";
      backup_.emplace(c, fx_.ops);
      if (auto r = backup_->setup(); !r) return fail("backup", "setup of the backup pool: " + r.error().message());
    }
    auto got = backup_->receive(vid, source);
    if (!got && since && got.error() == errc::stream_base_missing) {
      stream.clear();
      at = 0;
      if (auto again = vol(vid).send(sink); !again) return fail("backup", "full send: " + again.error().message());
      got = backup_->receive(vid, source);
    }
    // The backup keeps volumes this pool has removed since: a new vid whose
    // files would collide with one of those is refused there.
    if (!got && got.error() == errc::invalid_vid && !backed_up_.count(vid)) return;
    if (!got && !(since && got.error() == errc::stream_already_applied))
      return fail("backup", "receive: " + got.error().message());
    backed_up_.insert(vid);
    auto bh = fx_.ops.open_dir(fx_.root / "backup", false);
    if (!bh) return fail("backup", "open the backup pool: " + bh.error().message());
    const path rel = clean_name(vid);
    auto st = fx_.ops.stat(bh.value().handle, rel);
    if (!st) return fail("backup", "stat of the backup's image: " + st.error().message());
    std::string bytes(static_cast<std::size_t>(st.value().size), '\0');
    std::size_t done = 0;
    while (done < bytes.size()) {
      auto n = fx_.ops.read(bh.value().handle, rel, done, bytes.data() + done, bytes.size() - done);
      if (!n) return fail("backup", "read of the backup's image: " + n.error().message());
      if (n.value() == 0) break;
      done += n.value();
    }
    ++checks_;
    if (done != bytes.size() || bytes != *mv.clean)
      fail("bytes of the backup", "the backup's committed image holds " + describe(bytes) +
                                      "; the model's committed image is " + describe(*mv.clean));
  }

  // ---- remove -------------------------------------------------------------------

  void remove(const std::string& vid, bool force) {
    if (!begin("remove(" + lit(vid) + ", " + lit(force) + ")") || !on(vid)) return;
    const outcome want = model_.remove(vid, model_.at(vid), force);
    auto r = vol(vid).remove(force);
    if (expect(want, r) && r) vols_.erase(vid);
    check();
  }

  // ---- the pool -------------------------------------------------------------------

  //! A new Pool object on the same directory (the program restarted):
  //! every registered volume is registered again, with the revisions_to_keep
  //! given in `keeps` where it changes.
  void restart(int pool_keep, const std::vector<std::pair<std::string, std::optional<int>>>& keeps = {}) {
    std::string text = "restart(" + std::to_string(pool_keep) + ", {";
    for (std::size_t i = 0; i < keeps.size(); ++i)
      text += (i ? ", {" : "{") + lit(keeps[i].first) + ", " + lit(keeps[i].second) + "}";
    if (!begin(text + "})")) return;
    vols_.clear();
    pool_.reset();
    pool_.emplace(pool_cfg(pool_keep), fx_.ops);
    model_.restart(pool_keep);
    for (auto& [vid, v] : model_.vols) {
      if (!v.reg) continue;
      for (auto& [kvid, k] : keeps)
        if (kvid == vid) v.reg->keep = k;
      volume_config c = library_config(vid, *v.reg);
      c.size = v.size;
      auto r = pool_->init_volume(c);
      if (!expect(std::nullopt, r)) return;
      vols_.insert_or_assign(vid, r.value());
    }
    check();
  }

  void recover() {
    if (!begin("recover()")) return;
    model_.recover();
    auto r = pool_->recover();
    if (expect(std::nullopt, r) && r) {
      std::set<std::string> dirty(r.value().dirty.begin(), r.value().dirty.end()), want;
      for (auto& [vid, v] : model_.vols)
        if (v.dirty && (!v.reg || saves(v.reg->kind))) want.insert(vid);
      ++checks_;
      if (dirty != want) fail("recover", "recover() reports dirty " + list(dirty) + ", the model " + list(want));
    }
    check();
  }

  // ---- time ---------------------------------------------------------------------------

  //! MemoryFsOps: the clock reads `sec`.`nsec` now and moves on by
  //! `advance_ns` at each step (0: frozen). Elsewhere it does nothing.
  void clock(std::int64_t sec, std::uint32_t nsec, std::int64_t advance_ns) {
    if (!begin("clock(" + lit(sec) + ", " + lit32(nsec) + ", " + lit(advance_ns) + ")")) return;
    if constexpr (memory) {
      *now_ = file_time{sec, nsec % 1000000000u};
      advance_ns_ = advance_ns;
    }
  }

  //! Another program sets the mtime of the committed image (the kernel
  //! clamps it to what the filesystem stores; the stamp is read back).
  void set_clean_mtime(const std::string& vid, std::int64_t sec, std::uint32_t nsec) {
    if (!begin("set_clean_mtime(" + lit(vid) + ", " + lit(sec) + ", " + lit32(nsec) + ")")) return;
    if (!model_.at(vid).clean) return;
    (void)fx_.ops.set_mtime(h_, clean_name(vid), file_time{sec, nsec % 1000000000u});
    check();
  }

  //! The VM's last write was at `sec`.`nsec` (the running image's mtime).
  void set_dirty_mtime(const std::string& vid, std::int64_t sec, std::uint32_t nsec) {
    if (!begin("set_dirty_mtime(" + lit(vid) + ", " + lit(sec) + ", " + lit32(nsec) + ")")) return;
    if (!model_.at(vid).dirty) return;
    (void)fx_.ops.set_mtime(h_, dirty_name(vid), file_time{sec, nsec % 1000000000u});
    check();
  }

  // ---- a Qubes file-reflink driver on the same directory ------------------------------
  //
  // What its reflink.py does to a volume's files, through the policy. It
  // runs only while the library's volume is stopped and has no open import.
  // Its revision glob ("V.img.*@*Z") sees revision files only, never this
  // library's pins.

  //! Its remove: temporaries, the import, every revision file, the
  //! images, and the directory if that became empty. Pins stay.
  void qubes_remove(const std::string& vid) {
    if (!begin("qubes_remove(" + lit(vid) + ")") || !qubes_may(vid)) return;
    if (!qubes_remove_files(vid)) return;
    check();
  }

  //! Its create: the same removal, then for an origin a sparse image (a
  //! temporary renamed into place) and a precache with the image's mtime.
  void qubes_create(const std::string& vid) {
    if (!begin("qubes_create(" + lit(vid) + ")") || !qubes_may(vid)) return;
    if (!qubes_remove_files(vid)) return;
    volume& v = model_.at(vid);
    if (v.reg && v.reg->kind == volume_kind::origin) {
      if (!mkdirs(split_vid(vid).first)) return;
      const std::string tmp = clean_name(vid) + "~qubes" + std::to_string(steps_);
      if (!actor(fx_.ops.create(h_, tmp, v.size, create_mode::exclusive), "create") ||
          !actor(fx_.ops.rename(h_, tmp, clean_name(vid)), "rename") || !qubes_precache(vid))
        return;
      v.clean = zeros(v.size);
      v.precache_absent = false;
    }
    check();
  }

  //! Its commit of a VM's session (its image with `len` bytes of pattern
  //! `seed` at `offset`): a revision file that is a clone of the committed
  //! image, numbered after the highest revision FILE (pins unseen, so their
  //! numbers come again); revision files beyond its `keep` pruned (pinned
  //! or not: it cannot tell); the new image renamed over; the precache.
  void qubes_commit(const std::string& vid, int keep, std::uint64_t offset, std::uint64_t len, std::uint32_t seed) {
    if (!begin("qubes_commit(" + lit(vid) + ", " + std::to_string(keep) + ", " + lit(offset) + ", " + lit(len) +
               ", " + lit32(seed) + ")") ||
        !qubes_may(vid))
      return;
    volume& v = model_.at(vid);
    if (!v.clean || offset + len > v.clean->size() || len == 0) return;
    if (keep > 0 && !qubes_add_revision(vid)) return;
    if (failed()) return;
    qubes_prune(vid, keep);
    const std::string data = test::pattern(static_cast<std::size_t>(len), seed);
    const std::string tmp = clean_name(vid) + "~qubes" + std::to_string(steps_);
    if (!actor(file_reflink::detail::copy_file(fx_.ops, h_, clean_name(vid), h_, tmp, copy_options{}), "copy") ||
        !actor(fx_.ops.write(h_, tmp, offset, data.data(), data.size()), "write") ||
        !actor(fx_.ops.rename(h_, tmp, clean_name(vid)), "rename") || !qubes_precache(vid))
      return;
    v.clean = written(v.clean, offset, data);
    v.precache_absent = false;
    check();
  }

  //! Its revert to revision file `n` (0: the highest): a revision of the
  //! committed image (when it keeps any), then the revision file renamed
  //! over the committed image (pins of it stay, now sharing its inode).
  void qubes_revert(const std::string& vid, std::uint64_t n, int keep) {
    if (!begin("qubes_revert(" + lit(vid) + ", " + lit(n) + ", " + std::to_string(keep) + ")") || !qubes_may(vid))
      return;
    volume& v = model_.at(vid);
    if (!v.clean) return;
    if (n == 0) n = pool_model::highest_file(v);
    auto target = std::find_if(v.revs.begin(), v.revs.end(), [&](const revision& r) { return r.file && r.n == n; });
    if (target == v.revs.end()) return;
    const std::string from = revision_name(vid, target->n, target->stamp);
    if (keep > 0 && !qubes_add_revision(vid)) return;
    if (failed()) return;
    target = std::find_if(v.revs.begin(), v.revs.end(), [&](const revision& r) { return r.file && r.n == n; });
    if (!actor(fx_.ops.rename(h_, from, clean_name(vid)), "rename")) return;
    v.clean = target->data;
    if (target->labels.empty())
      v.revs.erase(target);
    else
      target->file = false;
    if (!qubes_precache(vid)) return;
    v.precache_absent = false;
    check();
  }

  //! A crash left a temporary behind: "V.img~SUFFIX" (`dirty`: "V-dirty.img~SUFFIX").
  void plant_temp(const std::string& vid, bool dirty, const std::string& suffix) {
    if (!begin("plant_temp(" + lit(vid) + ", " + lit(dirty) + ", " + lit(suffix) + ")") || !qubes_may(vid)) return;
    const std::string name = (dirty ? dirty_name(vid) : clean_name(vid)) + "~" + suffix;
    volume& v = model_.at(vid);
    if (v.temps.count(name) || !mkdirs(split_vid(vid).first)) return;
    if (!actor(fx_.ops.create(h_, name, 0, create_mode::exclusive), "create") ||
        !actor(fx_.ops.write(h_, name, 0, "partial", 7), "write"))
      return;
    v.temps.insert(name);
    check();
  }

private:
  // ---- plumbing ------------------------------------------------------------------------

  pool_config pool_cfg(int pool_keep) const {
    pool_config c;
    c.name = "model";
    c.dir_path = dir_;
    c.revisions_to_keep = pool_keep;
    c.setup_check = Fx::reflinks;
    return c;
  }

  static volume_config library_config(const std::string& vid, const config& c) {
    volume_config v;
    v.vid = vid;
    v.size = c.size;
    v.rw = c.rw;
    v.save_on_stop = saves(c.kind);
    v.snap_on_start = snaps(c.kind);
    if (snaps(c.kind)) v.source = c.source;
    v.revisions_to_keep = c.keep;
    return v;
  }

  //! Start a step; false once a step has failed (nothing runs after that).
  bool begin(std::string call) {
    log_.push_back("w." + call + ";");
    if (failed()) return false;
    what_ = std::move(call);
    ++steps_;
    if constexpr (memory) {
      // The clock moves on at each step (a frozen clock puts two commits in one second).
      std::int64_t ns = static_cast<std::int64_t>(now_->nsec) + advance_ns_ % 1000000000;
      std::int64_t sec = sat_add(now_->sec, advance_ns_ / 1000000000);
      if (ns >= 1000000000) ns -= 1000000000, sec = sat_add(sec, 1);
      *now_ = file_time{sec, static_cast<std::uint32_t>(ns)};
    }
    return true;
  }
  static std::int64_t sat_add(std::int64_t a, std::int64_t b) {
    if (b > 0 && a > INT64_MAX - b) return INT64_MAX;
    if (b < 0 && a < INT64_MIN - b) return INT64_MIN;
    return a + b;
  }

  //! A library operation needs a registered vid; a step on another does nothing.
  bool on(const std::string& vid) const { return vols_.count(vid) != 0; }
  volume_type& vol(const std::string& vid) { return vols_.at(vid); }

  //! What a file of the pool is, by its name: for failure signatures.
  static std::string role(const std::string& rel) {
    const std::string name = split_vid(rel).second;
    if (name.find('~') != std::string::npos) return "temporary";
    if (ends_with(name, ".pin")) return "pin";
    if (name.find(".img.") != std::string::npos) return "revision";
    if (ends_with(name, "-dirty.img")) return "running image";
    if (ends_with(name, "-precache.img")) return "precache";
    if (ends_with(name, "-import.img")) return "import";
    return "committed image";
  }

  void fail(const std::string& kind, const std::string& what) {
    if (failed()) return;
    failed_step_ = steps_ ? steps_ - 1 : 0;
    const std::string op = what_.substr(0, what_.find('('));
    signature_ = kind + " after " + (op.empty() ? std::string("setup") : op);
    failure_ = "step " + std::to_string(failed_step_) + ", w." + what_ + ": " + what;
  }

  //! The library's result against the model's: success, or that very code.
  template <class R>
  bool expect(const outcome& want, const R& r) {
    ++checks_;
    if (want && r) {
      fail("success instead of " + errc_name(*want), "succeeded; the model expects " + errc_name(*want));
      return false;
    }
    if (want && r.error().code() != make_error_code(*want)) {
      fail(code_text(r.error().code()) + " instead of " + errc_name(*want),
           "failed with " + code_text(r.error().code()) + " (" + r.error().message() + "); the model expects " +
               errc_name(*want));
      return false;
    }
    if (!want && !r) {
      fail(code_text(r.error().code()) + " instead of success",
           "failed with " + code_text(r.error().code()) + " (" + r.error().message() + "); the model expects success");
      return false;
    }
    return true;
  }
  static std::string code_text(const std::error_code& c) {
    if (c.category() == error_category()) return errc_name(static_cast<errc>(c.value()));
    return std::string(c.category().name()) + ":" + std::to_string(c.value());
  }
  static std::string list(const std::set<std::string>& s) {
    std::string out = "{";
    for (auto& x : s) out += (out.size() > 1 ? ", " : "") + x;
    return out + "}";
  }

  //! The stamp a revision of the committed image would get now: its mtime,
  //! read back from the filesystem.
  std::optional<stamp_info> clean_stamp(const std::string& vid) {
    if (!model_.at(vid).clean) return std::nullopt;
    auto st = fx_.ops.stat(h_, clean_name(vid));
    if (!st) {
      fail("files", "stat of " + clean_name(vid) + ": " + st.error().message());
      return stamp_info{};
    }
    return stamp_info::of_seconds(st.value().mtime.sec);
  }

  void revert_to(const std::string& vid, const selector& sel, std::string call) {
    if (!begin(std::move(call)) || !on(vid)) return;
    auto st = clean_stamp(vid);
    const outcome want = model_.revert(model_.at(vid), sel, st);
    switch (sel.how) {
      case selector::by::newest: expect(want, vol(vid).revert()); break;
      case selector::by::number: expect(want, vol(vid).revert(sel.n)); break;
      case selector::by::label: expect(want, vol(vid).revert(std::string_view(sel.label))); break;
    }
    check();
  }

  // ---- the other program's calls ---------------------------------------------------------

  bool qubes_may(const std::string& vid) const {
    const volume* v = model_.find(vid);
    return v && v->reg && !v->dirty && !v->importing;
  }

  template <class R>
  bool actor(const R& r, const char* what) {
    if (r) return true;
    fail("actor", std::string("the other program's ") + what + " failed: " + r.error().message());
    return false;
  }

  bool mkdirs(const std::string& dir) {
    if (dir.empty()) return true;
    std::string sofar;
    for (std::size_t start = 0;;) {
      const std::size_t slash = dir.find('/', start);
      sofar = dir.substr(0, slash);
      auto r = fx_.ops.mkdir(h_, sofar);
      if (!r && r.error().code() != std::errc::file_exists) return actor(r, "mkdir");
      if (slash == std::string::npos) return true;
      start = slash + 1;
    }
  }

  //! Does `name` (in the vid's directory) match the driver's glob "BASE*.img*~*"?
  static bool qubes_temp_glob(const std::string& base, const std::string& name) {
    if (name.compare(0, base.size(), base) != 0) return false;
    const std::size_t img = name.find(".img", base.size());
    return img != std::string::npos && name.find('~', img + 4) != std::string::npos;
  }
  //! ... and its revision glob "BASE.img.*@*Z"?
  static bool qubes_revision_glob(const std::string& base, const std::string& name) {
    const std::string prefix = base + ".img.";
    if (name.compare(0, prefix.size(), prefix) != 0) return false;
    const std::size_t at = name.find('@', prefix.size());
    return at != std::string::npos && name.size() > at + 1 && name.back() == 'Z';
  }

  bool qubes_remove_files(const std::string& vid) {
    const auto [dir, base] = split_vid(vid);
    auto entries = fx_.ops.list(h_, dir);
    if (entries) {
      for (const dir_entry& e : entries.value()) {
        if (e.type == file_type::directory) continue;
        if (qubes_temp_glob(base, e.name) || qubes_revision_glob(base, e.name))
          if (!actor(fx_.ops.remove(h_, in_dir(dir, e.name)), "remove")) return false;
      }
    }
    for (const std::string& f : {import_name(vid), clean_name(vid), precache_name(vid), dirty_name(vid)}) {
      auto r = fx_.ops.remove(h_, f);
      if (!r && r.error().code() != std::errc::no_such_file_or_directory) return actor(r, "remove");
    }
    if (!dir.empty()) (void)fx_.ops.rmdir(h_, dir);
    // The model: every vid's planted temporaries in that directory that the glob matches.
    for (auto& [other, o] : model_.vols) {
      for (auto it = o.temps.begin(); it != o.temps.end();) {
        const auto [tdir, tname] = split_vid(*it);
        it = tdir == dir && qubes_temp_glob(base, tname) ? o.temps.erase(it) : std::next(it);
      }
    }
    volume& v = model_.at(vid);
    v.import = v.clean = v.dirty = nullptr;
    v.precache_absent = true;
    std::vector<revision> left;
    for (auto& r : v.revs) {
      if (r.labels.empty()) continue;
      r.file = false;
      left.push_back(r);
    }
    v.revs = std::move(left);
    return true;
  }

  //! A clone of the committed image as revision FILE highest+1, stamped with
  //! its mtime. False (nothing done) where that revision would be a pin's
  //! very number and stamp: two different images under one identity is
  //! something no program could sort out, and this test does not make it.
  bool qubes_add_revision(const std::string& vid) {
    volume& v = model_.at(vid);
    const std::uint64_t n = pool_model::highest_file(v) + 1;
    const stamp_info st = *clean_stamp(vid);
    if (failed()) return false;
    for (auto& r : v.revs)
      if (r.n == n && r.stamp == st.stamp) return false;
    const std::string name = revision_name(vid, n, st.stamp), tmp = name + "~qubes" + std::to_string(steps_);
    if (!actor(file_reflink::detail::copy_file(fx_.ops, h_, clean_name(vid), h_, tmp, copy_options{}), "copy") ||
        !actor(fx_.ops.rename(h_, tmp, name), "rename"))
      return false;
    revision r;
    r.n = n;
    r.stamp = st.stamp;
    r.time = st.time;
    r.file = true;
    r.data = v.clean;
    v.revs.push_back(std::move(r));
    v.sort_revs();
    return true;
  }

  //! Revision files beyond `keep`, lowest numbers first; pins unseen.
  void qubes_prune(const std::string& vid, int keep) {
    volume& v = model_.at(vid);
    std::vector<std::uint64_t> numbers;
    for (auto& r : v.revs)
      if (r.file) numbers.push_back(r.n);
    std::sort(numbers.begin(), numbers.end());
    const std::size_t k = keep > 0 ? static_cast<std::size_t>(keep) : 0;
    if (numbers.size() <= k) return;
    numbers.resize(numbers.size() - k);
    std::vector<revision> left;
    for (auto& r : v.revs) {
      if (r.file && std::count(numbers.begin(), numbers.end(), r.n)) {
        if (!actor(fx_.ops.remove(h_, revision_name(vid, r.n, r.stamp)), "remove")) return;
        if (r.labels.empty()) continue;
        r.file = false;
      }
      left.push_back(r);
    }
    v.revs = std::move(left);
  }

  //! A clone of the committed image with its mtime, renamed into place.
  bool qubes_precache(const std::string& vid) {
    const std::string tmp = precache_name(vid) + "~qubes" + std::to_string(steps_);
    auto st = fx_.ops.stat(h_, clean_name(vid));
    return actor(st, "stat") && actor(file_reflink::detail::copy_file(fx_.ops, h_, clean_name(vid), h_, tmp, copy_options{}), "copy") &&
           actor(fx_.ops.set_mtime(h_, tmp, st.value().mtime), "set_mtime") &&
           actor(fx_.ops.rename(h_, tmp, precache_name(vid)), "rename");
  }

  // ---- the comparison ------------------------------------------------------------------------

  //! Every name below the pool directory that is not a directory, and the
  //! pool's own marker excepted.
  bool list_files(std::set<std::string>& out) {
    std::vector<std::string> todo{std::string()};
    while (!todo.empty()) {
      const std::string dir = todo.back();
      todo.pop_back();
      auto entries = fx_.ops.list(h_, dir);
      if (!entries) {
        fail("files", "list '" + dir + "': " + entries.error().message());
        return false;
      }
      for (const dir_entry& e : entries.value()) {
        if (dir.empty() && e.name.compare(0, 13, ".file-reflink") == 0) continue;
        const std::string rel = in_dir(dir, e.name);
        if (e.type == file_type::directory)
          todo.push_back(rel);
        else
          out.insert(rel);
      }
    }
    return true;
  }

  bool read_file(const std::string& rel, std::string& out) {
    auto st = fx_.ops.stat(h_, rel);
    if (!st) return fail("files", "stat " + rel + ": " + st.error().message()), false;
    out.assign(static_cast<std::size_t>(st.value().size), '\0');
    std::size_t done = 0;
    while (done < out.size()) {
      auto n = fx_.ops.read(h_, rel, done, out.data() + done, out.size() - done);
      if (!n) return fail("files", "read " + rel + ": " + n.error().message()), false;
      if (n.value() == 0) break;
      done += n.value();
    }
    out.resize(done);
    return true;
  }

  void check() {
    if (failed()) return;
    // Names on disk: exactly the model's, and a precache where it may be.
    std::set<std::string> disk;
    if (!list_files(disk)) return;
    std::map<std::string, const std::string*> want;  // name -> bytes (null: any)
    std::set<std::string> may;
    for (auto& [vid, v] : model_.vols) {
      if (v.clean) want[clean_name(vid)] = v.clean.get();
      if (v.dirty) want[dirty_name(vid)] = v.dirty.get();
      if (v.import) want[import_name(vid)] = v.import.get();
      for (auto& r : v.revs) {
        if (r.file) want[revision_name(vid, r.n, r.stamp)] = r.data.get();
        for (auto& l : r.labels) want[pin_name(vid, r.n, r.stamp, l)] = r.data.get();
      }
      for (auto& t : v.temps) want[t] = nullptr;
      if (!v.precache_absent) may.insert(precache_name(vid));
    }
    ++checks_;
    std::set<std::string> missing, extra;
    for (auto& [name, b] : want)
      if (!disk.count(name)) missing.insert(name);
    for (auto& name : disk)
      if (!want.count(name) && !may.count(name)) extra.insert(name);
    if (!missing.empty() || !extra.empty())
      return fail(missing.empty() ? "unexpected " + role(*extra.begin()) : "missing " + role(*missing.begin()),
                  "missing on disk " + list(missing) + ", unexpected on disk " + list(extra));
    // Bytes of every image, revision and pin of every volume.
    std::string got;
    for (auto& [name, b] : want) {
      if (!b) continue;
      if (!read_file(name, got)) return;
      ++checks_;
      if (got != *b)
        return fail("bytes of a " + role(name), name + " holds " + describe(got) + "; the model expects " + describe(*b) +
                                 first_difference(got, *b));
    }
    // What the library reports of each registered volume.
    for (auto& [vid, handle] : vols_) {
      const volume& v = model_.at(vid);
      if (options_.revisions_list) {
        auto revs = handle.revisions();
        ++checks_;
        if (!revs) return fail("revisions", "revisions() of " + vid + " failed: " + revs.error().message());
        const std::string have = revisions_text(revs.value()), expected = revisions_text(v.revs);
        if (have != expected)
          return fail("revisions", "revisions() of " + vid + " is " + have + "; the model expects " + expected);
      }
      auto size = handle.size();
      ++checks_;
      if (!size) return fail("size", "size() of " + vid + " failed: " + size.error().message());
      if (size.value() != model_.current_size(v))
        return fail("size", "size() of " + vid + " is " + std::to_string(size.value()) + "; the model expects " +
                                std::to_string(model_.current_size(v)));
      auto dirty = handle.is_dirty();
      ++checks_;
      const bool want_dirty = saves(v.reg->kind) && v.dirty;
      if (!dirty || dirty.value() != want_dirty)
        return fail("is_dirty", "is_dirty() of " + vid + " is " +
                                    (dirty ? lit(dirty.value()) : "an error: " + dirty.error().message()) +
                                    "; the model expects " + lit(want_dirty));
    }
  }

  static std::string first_difference(const std::string& a, const std::string& b) {
    const std::size_t n = std::min(a.size(), b.size());
    for (std::size_t i = 0; i < n; ++i)
      if (a[i] != b[i]) return " (they differ first at byte " + std::to_string(i) + ")";
    return a.size() == b.size() ? std::string() : " (one is a prefix of the other)";
  }

  static std::string revision_text(std::uint64_t n, const std::string& stamp, std::int64_t time,
                                   std::vector<std::string> labels) {
    std::sort(labels.begin(), labels.end());
    std::string s = std::to_string(n) + "@" + stamp + "(" + std::to_string(time) + ")";
    for (auto& l : labels) s += "[" + l + "]";
    return s;
  }
  static std::string revisions_text(const revision_map& m) {
    std::string s = "{";
    for (auto& [n, info] : m)
      s += (s.size() > 1 ? " " : "") + revision_text(n == info.number ? n : ~0ull, info.timestamp, info.time,
                                                      info.labels);
    return s + "}";
  }
  static std::string revisions_text(const std::vector<revision>& revs) {
    std::string s = "{";
    for (auto& r : revs)
      s += (s.size() > 1 ? " " : "") +
           revision_text(r.n, r.stamp, r.time, std::vector<std::string>(r.labels.begin(), r.labels.end()));
    return s + "}";
  }

  Fx& fx_;
  path dir_;
  check_options options_;
  std::optional<pool_type> pool_;
  handle h_;
  std::map<std::string, volume_type> vols_;
  std::optional<pool_type> backup_;   //!< the second pool `backup` sends to
  std::set<std::string> backed_up_;   //!< vids the backup has received
  pool_model model_;
  std::shared_ptr<file_time> now_ = std::make_shared<file_time>(file_time{1709294400, 250000000});
  std::int64_t advance_ns_ = 1000000000;
  std::vector<std::string> log_;
  std::string what_, failure_, signature_;
  std::size_t steps_ = 0, failed_step_ = 0;
  std::uint64_t checks_ = 0;
};

}  // namespace file_reflink::model_test
