// SPDX-License-Identifier: BSL-1.0
//! \file
//! `pool_core<FsOps>`: what a Pool and its Volumes share.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/detail/catalog.hpp>
#include <file_reflink/detail/fs_calls.hpp>
#include <file_reflink/detail/locks.hpp>
#include <file_reflink/detail/no_throw.hpp>
#include <file_reflink/detail/space_cache.hpp>
#include <file_reflink/detail/undo_stack.hpp>
#include <file_reflink/detail/volume_state.hpp>
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

//! What a Pool and its Volumes share: the configuration, the policy and the
//! logged primitives over it (`fs_calls`), the open pool directory and its
//! identity, the registry of volumes, the locks between processes and the
//! catalog.
template <class FsOps>
class pool_core : public fs_calls<FsOps> {
  using calls = fs_calls<FsOps>;

public:
  using handle = typename FsOps::dir_handle;
  using calls::abs;
  using calls::cfg;
  using calls::log;
  using calls::ops;
  using calls::stat_if;

  pool_core(pool_config c, FsOps o) : calls(std::move(c), std::move(o)) {}

  mutable std::mutex mu;  //!< guards volumes, dir_ and identity_
  std::map<std::string, std::shared_ptr<volume_state>> volumes;

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
