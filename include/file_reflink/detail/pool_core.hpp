// SPDX-License-Identifier: BSL-1.0
//! \file
//! What a Pool and its Volumes share: the configuration, the policy, the open
//! pool directory and its identity, the registry of volumes, and the file
//! primitives every operation is made of, each logged the way an operator
//! follows the driver in a journal.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/detail/catalog.hpp>
#include <file_reflink/detail/space_cache.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/layout.hpp>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {

//! "'text'", for messages.
inline std::string q(const std::string& s) { return layout::detail::quoted(s); }
inline std::string q(const path& p) { return layout::detail::quoted(p.string()); }

//! Human-readable bytes for messages ("1.5 GiB (1610612736 bytes)").
inline std::string bytes_text(std::uint64_t n) {
  static const char* units[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  if (u == 0) return std::to_string(n) + " bytes";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1f %s (%llu bytes)", v, units[u], static_cast<unsigned long long>(n));
  return buf;
}

//! An error with `code` and the message `what()` + `detail`, or with the
//! code alone when even that message cannot be built (memory exhausted):
//! it never throws, so a `noexcept` operation never terminates the process.
template <class What>
error error_nothrow(std::error_code code, What& what, const char* detail = nullptr) noexcept {
  try {
    std::string m = what();
    m += ": ";
    m += detail ? detail : code.message();
    return error(code, std::move(m));
  } catch (...) {
    return error(code, std::string());
  }
}

//! Run `f` and turn an escaping exception (only allocation failure is
//! expected) into an error, so that no exception leaves the library.
//! `what` makes the operation's description, only when it is needed:
//! nothing is allocated outside the `try`.
template <class R, class What, class F>
R no_throw(What&& what, F&& f) noexcept {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return failure(error_nothrow(std::error_code(ENOMEM, std::system_category()), what));
  } catch (const std::exception& e) {
    return failure(error_nothrow(std::make_error_code(std::errc::io_error), what, e.what()));
  } catch (...) {
    return failure(error_nothrow(std::error_code(EIO, std::system_category()), what));
  }
}

//! When a wait for a lock gives up (empty: never).
using deadline = std::optional<std::chrono::steady_clock::time_point>;

//! The deadline of a wait that starts now, under the pool's policy.
inline deadline deadline_of(const pool_config& cfg) {
  if (!cfg.lock_timeout) return std::nullopt;
  return std::chrono::steady_clock::now() + *cfg.lock_timeout;
}

//! The byte of the pool's lock file that stands for a volume: 1 and 62 bits
//! of a hash (FNV-1a) of its vid, so that two processes find the same byte
//! without a table (byte 0 is the pool's own: its catalog). Two vids sharing
//! a byte would only wait for each other.
inline std::uint64_t lock_byte(std::string_view vid) noexcept {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : vid) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return 1 + (h & ((std::uint64_t(1) << 62) - 1));
}
inline constexpr std::uint64_t pool_lock_byte = 0;

//! A volume's lock in this process: shared by queries, exclusive by changes.
struct local_lock {
  std::unique_lock<std::shared_timed_mutex> exclusive;
  std::shared_lock<std::shared_timed_mutex> shared;
};

//! Take `m` in `mode` before `until` (or however long it takes); false when
//! the deadline passed first.
inline bool lock_local(std::shared_timed_mutex& m, lock_mode mode, const deadline& until, local_lock& out) {
  if (mode == lock_mode::exclusive) {
    out.exclusive = std::unique_lock<std::shared_timed_mutex>(m, std::defer_lock);
    if (!until) return out.exclusive.lock(), true;
    return out.exclusive.try_lock_until(*until);
  }
  out.shared = std::shared_lock<std::shared_timed_mutex>(m, std::defer_lock);
  if (!until) return out.shared.lock(), true;
  return out.shared.try_lock_until(*until);
}

//! A volume's configuration, checked as `init_volume` and `update` check it.
inline result<void> validate_config(const volume_config& cfg, const pool_config& pool) {
  FILE_REFLINK_TRYV(layout::validate_vid(cfg.vid));
  if (cfg.snap_on_start && !cfg.source) return failure(errc::invalid_config, "snap_on_start needs a source volume");
  if (cfg.source && !cfg.snap_on_start)
    return failure(errc::invalid_config, "source " + q(*cfg.source) + " is given but snap_on_start is off");
  if (cfg.source) {
    if (auto r = layout::validate_vid(*cfg.source); !r) return failure(std::move(r).error().context("source"));
    if (*cfg.source == cfg.vid) return failure(errc::invalid_config, "a volume cannot be its own source");
  }
  if (cfg.revisions_to_keep && *cfg.revisions_to_keep < -1)
    return failure(errc::invalid_config, "revisions_to_keep must be -1 (snapshots disabled), 0 or more, not " +
                                             std::to_string(*cfg.revisions_to_keep));
  if (!cfg.revisions_to_keep && pool.revisions_to_keep < -1)
    return failure(errc::invalid_config, "the pool's revisions_to_keep must be -1, 0 or more");
  if (!catalog_safe(cfg.name)) return failure(errc::invalid_config, "the name holds a line break or a NUL");
  return success();
}

//! The mutable part of one registered volume, behind its own lock: each
//! operation on a volume excludes the others that change it (queries share
//! it), on that volume only.
struct volume_state {
  explicit volume_state(volume_config c)
      : vid(c.vid), name(c.name), paths(layout::paths_of(c.vid)), size(c.size),
        cfg_(std::make_shared<const volume_config>(std::move(c))) {}
  std::shared_timed_mutex mu;
  const std::string vid;
  const std::string name;
  const layout::volume_paths paths;
  std::uint64_t size;       //!< configured size; resize and a volatile stop update it
  bool removed = false;
  bool importing = false;
  std::multiset<std::string> exports;

  //! The configuration (revisions_to_keep resolved): a snapshot of it, for
  //! anyone; it changes only under `mu` held exclusively (an update).
  std::shared_ptr<const volume_config> config() const {
    std::lock_guard<std::mutex> lk(cfg_mu_);
    return cfg_;
  }
  //! The configuration, for an operation that holds `mu` (shared or not).
  const volume_config& held_config() const noexcept { return *cfg_; }
  //! Replace it; the caller holds `mu` exclusively.
  void set_config(volume_config c) {
    auto next = std::make_shared<const volume_config>(std::move(c));
    std::lock_guard<std::mutex> lk(cfg_mu_);
    cfg_ = std::move(next);
  }

private:
  mutable std::mutex cfg_mu_;
  std::shared_ptr<const volume_config> cfg_;
};

template <class FsOps>
class pool_core {
public:
  using handle = typename FsOps::dir_handle;

  pool_core(pool_config c, FsOps o) : cfg(std::move(c)), ops(std::move(o)) {}

  const pool_config cfg;
  FsOps ops;
  mutable std::mutex mu;  //!< guards volumes, dir_ and identity_
  std::map<std::string, std::shared_ptr<volume_state>> volumes;
  //! What extent walks found; the primitives below that can change sharing
  //! retire it (after their call, so a walk that raced them is not kept).
  space_cache spaces;

  // ---- the pool directory -------------------------------------------------

  //! Remember an opened pool directory and what it is (device, inode).
  result<void> adopt(const handle& h) {
    FILE_REFLINK_TRY(auto st, ops.stat(h, path()));
    std::lock_guard<std::mutex> lk(mu);
    dir_ = h;
    identity_ = st;
    return success();
  }

  //! The open pool directory, opened on first use (never created: only
  //! `setup` creates it), and checked on every use to still be the
  //! directory found at `dir_path`, so that a pool whose filesystem was
  //! unmounted refuses to work on the empty mount point left behind.
  result<handle> dir() {
    std::unique_lock<std::mutex> lk(mu);
    if (!dir_) {
      lk.unlock();
      FILE_REFLINK_TRYV(open_existing());
      lk.lock();
      return *dir_;  // just checked by open_existing
    }
    handle h = *dir_;
    const file_stat ident = identity_;
    lk.unlock();
    auto st = ops.stat_path(cfg.dir_path);
    if (!st) {
      if (st.error() == std::errc::no_such_file_or_directory)
        return failure(errc::pool_directory_replaced,
                       "pool directory " + q(cfg.dir_path) + " vanished (was its filesystem unmounted?)");
      return failure(st.error());
    }
    if (st.value().dev != ident.dev || st.value().ino != ident.ino)
      return failure(errc::pool_directory_replaced,
                     "pool directory " + q(cfg.dir_path) +
                         " is no longer the directory the pool was opened on (was its filesystem unmounted or "
                         "replaced?); refusing to work on the wrong filesystem");
    return h;
  }

  //! Open `dir_path` for use without creating anything. An empty directory
  //! without the pool marker is refused: it is what an unmounted filesystem
  //! leaves behind, and writing there would fill the wrong filesystem.
  result<void> open_existing() {
    auto o = ops.open_dir(cfg.dir_path, false);
    if (!o) {
      if (o.error() == std::errc::no_such_file_or_directory)
        return failure(errc::pool_not_set_up, "pool directory " + q(cfg.dir_path) +
                                                  " does not exist: run setup() to make the pool, or mount its "
                                                  "filesystem");
      return failure(o.error());
    }
    handle h = o.value().handle;
    auto marker = ops.stat(h, path(std::string(layout::pool_marker)));
    if (!marker) {
      if (marker.error() != std::errc::no_such_file_or_directory) return failure(marker.error());
      // A pool the Qubes driver made has no marker but is not empty.
      FILE_REFLINK_TRY(auto entries, ops.list(h, path()));
      if (entries.empty())
        return failure(errc::pool_not_set_up,
                       "pool directory " + q(cfg.dir_path) +
                           " is empty and carries no pool marker: is its filesystem mounted? (run setup() to make a "
                           "new pool there)");
    }
    return adopt(h);
  }

  //! What the pool directory is (device, inode), once opened.
  file_stat identity() const {
    std::lock_guard<std::mutex> lk(mu);
    return identity_;
  }

  //! Forget the open directory (after destroy), and its lock file.
  void forget_dir() {
    std::lock_guard<std::mutex> lk(mu);
    dir_.reset();
    locks_.reset();
  }

  // ---- locks between processes ----------------------------------------------

  using lock_file = typename FsOps::lock_file;

  //! A byte of the lock file held through this pool object; released when
  //! destroyed.
  class held_lock {
  public:
    held_lock() = default;
    held_lock(pool_core* core, std::uint64_t byte) : core_(core), byte_(byte) {}
    held_lock(held_lock&& o) noexcept : core_(o.core_), byte_(o.byte_) { o.core_ = nullptr; }
    held_lock& operator=(held_lock&& o) noexcept {
      if (this != &o) {
        release();
        core_ = o.core_;
        byte_ = o.byte_;
        o.core_ = nullptr;
      }
      return *this;
    }
    held_lock(const held_lock&) = delete;
    held_lock& operator=(const held_lock&) = delete;
    ~held_lock() { release(); }
    //! Release it now (a failure to unlock cannot undo the operation; the
    //! lock goes with the pool object or its process anyway).
    void release() noexcept {
      if (core_) core_->release_byte(byte_);
      core_ = nullptr;
    }

  private:
    pool_core* core_ = nullptr;
    std::uint64_t byte_ = 0;
  };

  //! The pool's lock file, opened once per pool object (each object is an
  //! open of its own, so two objects exclude each other like two processes).
  //! Empty where it cannot be opened for a reason a reader can live with
  //! (a pool it may only read, on a read-only filesystem).
  result<std::optional<lock_file>> lock_file_of(const handle& h) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (locks_) return std::optional<lock_file>(*locks_);
    }
    auto f = ops.open_lock(h, path(std::string(layout::lock_file_name)));
    if (!f) {
      if (f.error() == std::errc::permission_denied || f.error() == std::errc::read_only_file_system ||
          f.error() == std::errc::operation_not_permitted)
        return std::optional<lock_file>();
      return failure(f.error());
    }
    std::lock_guard<std::mutex> lk(mu);
    if (!locks_) locks_ = std::move(f).value();
    return std::optional<lock_file>(*locks_);
  }

  //! Take byte `byte` of the lock file in `mode`, waiting until `until`.
  //! `who` names what the byte stands for, for the error of a busy one.
  //! A reader of a pool whose lock file it cannot open goes unlocked.
  //!
  //! Record locks belong to the open file, which all threads of this pool
  //! object share: the kernel would let two of them hold one byte at once,
  //! and the first to unlock would release it for both. So this object
  //! counts its own holders of each byte (`bytes_`): the first shared holder
  //! takes the byte from the kernel, the last one gives it back, and an
  //! exclusive holder is alone here before it asks the kernel.
  template <class Who>
  result<held_lock> take(const handle& h, std::uint64_t byte, lock_mode mode, const deadline& until, Who&& who) {
    FILE_REFLINK_TRY(auto f, lock_file_of(h));
    if (!f) {
      if (mode == lock_mode::shared) return held_lock();
      return failure(error(std::make_error_code(std::errc::permission_denied),
                           "the pool's lock file " + abs(h, path(std::string(layout::lock_file_name))) +
                               " cannot be opened for writing"));
    }
    const auto start = std::chrono::steady_clock::now();
    {
      // This object's own holders first.
      std::unique_lock<std::mutex> lk(bytes_mu_);
      // Pinned: this object holds it between operations (an open import),
      // and the volume's own lock here orders its operations.
      if (auto it = bytes_.find(byte); it != bytes_.end() && it->second.pinned) return held_lock(this, byte);
      auto ready = [&] {
        auto it = bytes_.find(byte);
        if (it == bytes_.end()) return true;
        if (it->second.acquiring || it->second.exclusive) return false;
        return mode == lock_mode::shared;
      };
      if (!until) {
        bytes_cv_.wait(lk, ready);
      } else if (!bytes_cv_.wait_until(lk, *until, ready)) {
        return failure(busy(who(), std::chrono::steady_clock::now() - start));
      }
      auto& e = bytes_[byte];
      if (mode == lock_mode::shared && e.shared > 0) {
        ++e.shared;
        return held_lock(this, byte);
      }
      e.acquiring = true;
    }
    // Then the kernel's (other objects, other processes), with no mutex held.
    bool cancelled = false;
    auto got = [&]() -> result<bool> {
      if (!until && !cfg.lock_wait) {
        FILE_REFLINK_TRY(bool ok, ops.lock(*f, byte, mode, true));
        if (ok) return true;
      }
      auto pause = std::chrono::microseconds(200);
      std::optional<std::chrono::steady_clock::time_point> told;
      for (;;) {
        FILE_REFLINK_TRY(bool ok, ops.lock(*f, byte, mode, false));
        if (ok) return true;
        const auto now = std::chrono::steady_clock::now();
        if (until && now >= *until) return false;
        if (cfg.lock_wait && (!told || now - *told >= std::chrono::milliseconds(100))) {
          told = now;
          if (!cfg.lock_wait(who(), std::chrono::duration_cast<std::chrono::milliseconds>(now - start)))
            return cancelled = true, false;
        }
        auto nap = std::chrono::steady_clock::duration(pause);
        if (until) nap = std::min(nap, *until - now);
        std::this_thread::sleep_for(nap);
        pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(20));
      }
    }();
    std::lock_guard<std::mutex> lk(bytes_mu_);
    auto& e = bytes_[byte];
    e.acquiring = false;
    if (got && got.value()) {
      if (mode == lock_mode::shared) e.shared = 1;
      else e.exclusive = true;
    } else {
      bytes_.erase(byte);
    }
    bytes_cv_.notify_all();
    if (!got) return failure(std::move(got).error());
    if (cancelled) return failure(errc::cancelled, "while waiting for " + who());
    if (!got.value()) return failure(busy(who(), std::chrono::steady_clock::now() - start));
    return held_lock(this, byte);
  }

  //! Keep `byte`, held exclusively by the operation running now, after it
  //! ends: an import spans several calls, and no other process may work on
  //! its volume (or take its import for an interrupted one) meanwhile.
  void pin_byte(std::uint64_t byte) {
    std::lock_guard<std::mutex> lk(bytes_mu_);
    if (auto it = bytes_.find(byte); it != bytes_.end() && it->second.exclusive) it->second.pinned = true;
  }
  //! Stop keeping it: the operation running now releases it when it ends.
  void unpin_byte(std::uint64_t byte) {
    std::lock_guard<std::mutex> lk(bytes_mu_);
    if (auto it = bytes_.find(byte); it != bytes_.end()) it->second.pinned = false;
  }

  //! One holder of `byte` is done; the last one gives it back to the kernel.
  void release_byte(std::uint64_t byte) noexcept {
    std::lock_guard<std::mutex> lk(bytes_mu_);
    auto it = bytes_.find(byte);
    if (it == bytes_.end() || it->second.pinned) return;
    if (it->second.shared > 1) {
      --it->second.shared;
      return;
    }
    {
      std::lock_guard<std::mutex> lk2(mu);
      if (locks_) (void)ops.unlock(*locks_, byte);
    }
    bytes_.erase(it);
    bytes_cv_.notify_all();
  }

  // ---- the catalog ---------------------------------------------------------------
  //
  // With `pool_config::catalog` on, the volumes' configurations live in one
  // file at the pool's top, replaced atomically and durably (a temporary,
  // flushed, renamed, the directory flushed) under byte 0 of the lock file
  // held exclusively; readers hold byte 0 shared. Byte 0 is always taken
  // after any volume's byte, never before one.

  //! Serialises this object's own catalog work (registration against it).
  std::mutex catalog_mu;

  //! Take the catalog's lock (byte 0).
  result<held_lock> take_catalog(const handle& h, lock_mode mode) {
    return take(h, pool_lock_byte, mode, deadline_of(cfg), [] { return std::string("the pool's catalog"); });
  }

  //! The catalog file's text; empty when there is none. One read of one
  //! open file: a replacement meanwhile is seen whole or not at all.
  result<std::optional<std::string>> read_catalog_text(const handle& h) {
    const path rel{std::string(layout::catalog_name)};
    for (std::size_t want = 16 * 1024;; want *= 4) {
      FILE_REFLINK_TRY(auto st, stat_if(h, rel));
      if (!st) return std::optional<std::string>();
      if (st->type != file_type::regular)
        return failure(errc::catalog_invalid, abs(h, rel) + " is not a regular file");
      std::string buf(std::max<std::uint64_t>(want, st->size + 4096), '\0');
      auto got = ops.read(h, rel, 0, buf.data(), buf.size());
      if (!got) {
        if (got.error() == std::errc::no_such_file_or_directory) return std::optional<std::string>();
        return failure(got.error());
      }
      if (got.value() < buf.size()) {
        buf.resize(got.value());
        return std::optional<std::string>(std::move(buf));
      }
    }
  }

  //! The catalog (an empty one where there is no file).
  result<catalog_contents> read_catalog(const handle& h) {
    FILE_REFLINK_TRY(auto text, read_catalog_text(h));
    if (!text) return catalog_contents{};
    auto c = parse_catalog(*text);
    if (!c) return failure(std::move(c).error().context(abs(h, path(std::string(layout::catalog_name)))));
    return c;
  }

  //! Replace the catalog, atomically and durably. The caller holds byte 0
  //! exclusively.
  result<void> write_catalog(const handle& h, const catalog_contents& c) {
    const path rel{std::string(layout::catalog_name)};
    const std::string text = format_catalog(c);
    path tmp = layout::temp_name(rel);
    FILE_REFLINK_TRYV(ops.create(h, tmp, 0, create_mode::exclusive));
    auto r = [&]() -> result<void> {
      FILE_REFLINK_TRYV(ops.write(h, tmp, 0, text.data(), text.size()));
      FILE_REFLINK_TRYV(ops.fsync(h, tmp));
      FILE_REFLINK_TRYV(ops.rename(h, tmp, rel));
      return ops.fsync(h, path());
    }();
    if (!r) {
      (void)ops.remove(h, tmp);
      return failure(std::move(r).error().context("write the pool's catalog " + abs(h, rel)));
    }
    log(log_level::info, "Wrote the catalog: " + abs(h, rel) + " (" + std::to_string(c.volumes.size()) + " volumes)");
    return success();
  }

  //! With the catalog on: record `vc` as volume `vc.vid`'s configuration
  //! (nothing to do with it off).
  result<void> persist_config(const handle& h, const volume_config& vc) {
    if (!cfg.catalog) return success();
    std::lock_guard<std::mutex> lk(catalog_mu);
    FILE_REFLINK_TRY(auto held, take_catalog(h, lock_mode::exclusive));
    FILE_REFLINK_TRY(auto c, read_catalog(h));
    c.volumes.insert_or_assign(vc.vid, vc);
    return write_catalog(h, c);
  }

  //! With the catalog on: forget volume `vid`.
  result<void> forget_config(const handle& h, const std::string& vid) {
    if (!cfg.catalog) return success();
    std::lock_guard<std::mutex> lk(catalog_mu);
    FILE_REFLINK_TRY(auto held, take_catalog(h, lock_mode::exclusive));
    FILE_REFLINK_TRY(auto c, read_catalog(h));
    if (!c.volumes.erase(vid)) return success();
    return write_catalog(h, c);
  }

  //! What the catalog says of one volume now.
  struct catalog_lookup {
    bool unchanged = false;              //!< the text this object last applied whole (or no file)
    std::optional<volume_config> entry;  //!< else: its entry, or none (removed)
  };

  //! With the catalog on: volume `vid`'s entry now, read under byte 0 held
  //! shared. For an operation that holds the volume's own lock, since
  //! another process may have changed or removed it.
  result<catalog_lookup> catalog_entry(const handle& h, const std::string& vid) {
    catalog_lookup out;
    FILE_REFLINK_TRY(auto held, take_catalog(h, lock_mode::shared));
    FILE_REFLINK_TRY(auto text, read_catalog_text(h));
    held.release();
    if (!text) return out.unchanged = true, out;
    {
      std::lock_guard<std::mutex> lk(mu);
      if (*text == catalog_seen_) return out.unchanged = true, out;
    }
    auto c = parse_catalog(*text);
    if (!c) return failure(std::move(c).error().context(abs(h, path(std::string(layout::catalog_name)))));
    auto it = c.value().volumes.find(vid);
    if (it != c.value().volumes.end()) out.entry = std::move(it->second);
    return out;
  }

  //! Remember `text` as the catalog this object has applied whole.
  void catalog_applied(std::string text) {
    std::lock_guard<std::mutex> lk(mu);
    catalog_seen_ = std::move(text);
  }

  //! "<who> is busy: another operation holds it (waited 1.2 s)".
  static error busy(const std::string& who, std::chrono::steady_clock::duration waited) {
    const double s = std::chrono::duration<double>(waited).count();
    char buf[64];
    std::snprintf(buf, sizeof buf, s > 0.0005 ? " (waited %.1f s)" : " (the pool does not wait)", s);
    return error(make_error_code(errc::volume_busy),
                 who + " is busy: another operation, in this process or another, holds it" + buf);
  }

  // ---- logging ------------------------------------------------------------

  //! Callers test `cfg.log` first where the message costs something to
  //! build: without a callback an operation builds no message at all.
  void log(log_level level, const std::string& message) const {
    if (cfg.log) {
      try {
        cfg.log(level, message);
      } catch (...) {
        // A logging callback must not break a storage operation.
      }
    }
  }

  //! The absolute path of `rel`, quoted, for a message (`rel` itself if the
  //! policy cannot say).
  std::string abs(const handle& h, const path& rel) const {
    auto p = ops.path_of(h, rel);
    return q(p ? p.value() : rel);
  }

  //! The absolute path of `rel`, to hand to a caller.
  result<path> absolute(const handle& h, const path& rel) const { return ops.path_of(h, rel); }

  //! The fallback is announced once: when setup's probe or the first copy
  //! finds the filesystem without reflinks (later copies do not try again).
  void warn_no_reflinks(const handle& h) const {
    if (cfg.log) log(log_level::warning, "The filesystem of " + abs(h, path()) +
                                " does not support reflinks: volume copies are full copies from now on (slow, and "
                                "they take space)");
  }

  // ---- primitives: one policy call (or a few), logged -----------------------

  //! Stat, mapping "not there" to an empty optional (also where a directory
  //! on the way is a file: ENOTDIR).
  result<std::optional<file_stat>> stat_if(const handle& h, const path& rel) {
    auto st = ops.stat(h, rel);
    if (!st) {
      if (st.error() == std::errc::no_such_file_or_directory || st.error() == std::errc::not_a_directory)
        return std::optional<file_stat>();
      return failure(st.error());
    }
    return std::optional<file_stat>(st.value());
  }

  //! Stat an image that must be a regular file if it exists: a symlink or a
  //! directory planted under an image's name is refused, never followed.
  result<std::optional<file_stat>> stat_image(const handle& h, const path& rel) {
    FILE_REFLINK_TRY(auto st, stat_if(h, rel));
    if (st && st->type != file_type::regular)
      return failure(errc::unexpected_file_type,
                     abs(h, rel) + " is a " + (st->type == file_type::symlink ? "symlink" : "non-regular file") +
                         ", not an image");
    return st;
  }

  //! Remove a file; returns whether it was there.
  result<bool> remove_file(const handle& h, const path& rel) {
    auto r = ops.remove(h, rel);
    spaces.bump();
    if (!r) {
      if (r.error() == std::errc::no_such_file_or_directory) return false;
      return failure(r.error());
    }
    if (cfg.log) log(log_level::info, "Removed file: " + abs(h, rel));
    return true;
  }

  result<void> rename_file(const handle& h, const path& from, const path& to) {
    auto r = ops.rename(h, from, to);
    spaces.bump();
    FILE_REFLINK_TRYV(r);
    if (cfg.log) log(log_level::info, "Renamed file: " + abs(h, from) + " -> " + abs(h, to));
    return success();
  }

  result<void> link_file(const handle& h, const path& from, const path& to) {
    auto r = ops.link(h, from, to);
    spaces.bump();
    FILE_REFLINK_TRYV(r);
    if (cfg.log) log(log_level::info, "Hardlinked file: " + abs(h, from) + " -> " + abs(h, to));
    return success();
  }

  result<void> create_sparse(const handle& h, const path& rel, std::uint64_t size, create_mode mode) {
    auto r = ops.create(h, rel, size, mode);
    spaces.bump();
    FILE_REFLINK_TRYV(r);
    if (cfg.log) log(log_level::info, "Created sparse file: " + abs(h, rel) + " (" + bytes_text(size) + ")");
    return success();
  }

  //! Copy (clone first) into a new file; logs the path taken, and warns once
  //! when this copy found the filesystem without reflinks.
  result<copy_result> copy_file(const handle& src_h, const path& src, const handle& dst_h, const path& dst,
                                copy_options opts) {
    auto copied = detail::copy_file(ops, src_h, src, dst_h, dst, opts);
    spaces.bump();
    FILE_REFLINK_TRY(auto r, std::move(copied));
    if (r.reflink_unsupported_noticed) warn_no_reflinks(dst_h);
    if (!cfg.log) return r;
    if (r.method == copy_method::clone)
      log(log_level::info, "Cloned file: " + abs(src_h, src) + " -> " + abs(dst_h, dst));
    else
      log(log_level::info, std::string("Copied file (") + to_string(r.method) + ", " + bytes_text(r.bytes) +
                               "): " + abs(src_h, src) + " -> " + abs(dst_h, dst));
    return r;
  }

  //! Flush a file's data: new data is durable before its name is.
  result<void> sync_file(const handle& h, const path& rel) {
    FILE_REFLINK_TRYV(ops.fsync(h, rel));
    if (cfg.log) log(log_level::debug, "Synced file: " + abs(h, rel));
    return success();
  }

  //! Flush a directory's entries: a rename is not durable until its
  //! directory is.
  result<void> sync_dir(const handle& h, const path& rel) {
    FILE_REFLINK_TRYV(ops.fsync(h, rel));
    if (cfg.log) log(log_level::debug, "Synced directory: " + abs(h, rel));
    return success();
  }

  //! Make sure `rel` and its parents exist; each new directory is fsynced
  //! into its parent, so files made durable inside it stay reachable.
  result<void> ensure_dir(const handle& h, const path& rel) {
    if (rel.empty()) return success();
    FILE_REFLINK_TRY(auto st, stat_if(h, rel));
    if (st) {
      if (st->type != file_type::directory)
        return failure(errc::unexpected_file_type, abs(h, rel) + " is not a directory");
      return success();
    }
    FILE_REFLINK_TRYV(ensure_dir(h, rel.parent_path()));
    auto r = ops.mkdir(h, rel);
    if (!r) {
      if (r.error() != std::errc::file_exists) return failure(r.error());
      return ensure_dir(h, rel);  // made concurrently: check what it is
    }
    if (cfg.log) log(log_level::info, "Created directory: " + abs(h, rel));
    return sync_dir(h, rel.parent_path());
  }

  //! Remove a directory if it is empty; returns whether it was removed.
  result<bool> remove_empty_dir(const handle& h, const path& rel) {
    if (rel.empty()) return false;
    auto r = ops.rmdir(h, rel);
    if (!r) {
      if (r.error() == std::errc::directory_not_empty || r.error() == std::errc::no_such_file_or_directory ||
          r.error() == std::errc::file_exists)
        return false;
      return failure(r.error());
    }
    if (cfg.log) log(log_level::info, "Removed empty directory: " + abs(h, rel));
    FILE_REFLINK_TRYV(sync_dir(h, rel.parent_path()));
    return true;
  }

  //! Names in a directory of the pool; a missing directory has none.
  result<std::vector<dir_entry>> list_if(const handle& h, const path& rel) {
    auto r = ops.list(h, rel);
    if (!r) {
      if (r.error() == std::errc::no_such_file_or_directory) return std::vector<dir_entry>();
      return failure(r.error());
    }
    return std::move(r).value();
  }

  //! Space of one file from its extent map, walked once per version of the
  //! file (see `space_cache`): `st` is the stat the caller just took.
  result<space_usage> space_of(const handle& h, const path& rel, const file_stat& st) {
    const std::uint64_t generation = spaces.generation();
    if (auto hit = spaces.find(st, generation)) return *hit;
    FILE_REFLINK_TRY(auto ext, ops.extents(h, rel));
    space_usage s;
    s.allocated = st.allocated;
    for (const extent& e : ext) (e.shared ? s.shared : s.exclusive) += e.length;
    spaces.store(st, generation, s);
    return s;
  }

private:
  std::optional<handle> dir_;
  file_stat identity_;
  std::optional<lock_file> locks_;
  std::string catalog_seen_;  //!< the catalog's text as last applied whole (guarded by mu)
  struct byte_holders {
    unsigned shared = 0;     //!< holders in shared mode
    bool exclusive = false;  //!< one holder in exclusive mode
    bool acquiring = false;  //!< a holder is asking the kernel
    bool pinned = false;     //!< held exclusively between operations (an open import)
  };
  std::mutex bytes_mu_;
  std::condition_variable bytes_cv_;
  std::map<std::uint64_t, byte_holders> bytes_;
};

}  // namespace detail
}  // namespace file_reflink
