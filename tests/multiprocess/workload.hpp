// SPDX-License-Identifier: BSL-1.0
//! \file
//! The random workload of the multi-process test, run by each worker
//! process (worker.cpp) on LinuxFsOps and by each thread of its MemoryFsOps
//! variant (tests/sharing.cpp): operations on the shared volume "shared/s"
//! and on the caller's own "p<ROLE>/own", one line per operation:
//!
//!     <ticket> <s|own> <op> <ok|err> <observed>
//!     # <the error's message, after a failed one>
//!
//! The ticket orders the operations on the shared volume across all
//! callers: a counter taken the moment the lock of the shared volume is
//! granted (`ticket_ops`, a policy wrapped around the real one), so that the
//! test replays them in the order they happened against a sequential model
//! (model.hpp). Operations on its own volume carry ticket 0.
#pragma once

#include <file_reflink/file_reflink.hpp>
#include <file_reflink/testing.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace file_reflink::test::mp {

inline constexpr const char* shared_vid = "shared/s";
inline constexpr std::size_t marker_size = 16;

//! The counter every caller takes tickets from (shared memory between
//! processes, or a plain variable between threads).
inline std::uint64_t* ticket_counter = nullptr;
//! The ticket of the operation this thread runs now (0: none yet).
inline thread_local std::uint64_t last_ticket = 0;

//! `Base`, taking a ticket when the shared volume's lock is granted.
template <class Base>
struct ticket_ops : Base {
  using Base::Base;
  result<bool> lock(const typename Base::lock_file& f, std::uint64_t offset, lock_mode mode, bool wait) const noexcept {
    auto r = Base::lock(f, offset, mode, wait);
    if (r && r.value() && offset == ::file_reflink::detail::lock_byte(shared_vid))
      last_ticket = __atomic_add_fetch(ticket_counter, 1, __ATOMIC_SEQ_CST);
    return r;
  }
};

//! A marker of exactly `marker_size` printable bytes, unique per caller and step.
inline std::string marker_of(int role, int i) {
  char buf[marker_size + 1];
  std::snprintf(buf, sizeof buf, "p%d-%013d", role, i);
  return std::string(buf, marker_size);
}

//! `ops` random operations through `pool`; `io` writes a marker at the
//! start of a file and reads a file's first bytes (zeros as '.'), by path
//! relative to the pool directory.
template <class Pool, class IO>
std::vector<std::string> workload(Pool& pool, int role, std::uint32_t seed, int ops, IO& io) {
  std::vector<std::string> out;
  auto shared = pool.get_volume(shared_vid);
  auto own = pool.get_volume("p" + std::to_string(role) + "/own");
  if (!shared || !own) {
    out.push_back("# " + (shared ? own.error() : shared.error()).message());
    return out;
  }
  auto s = shared.value();
  auto o = own.value();
  const std::string own_dirty = "p" + std::to_string(role) + "/own-dirty.img";
  const std::string own_clean = "p" + std::to_string(role) + "/own.img";
  auto line = [&](const char* vol, const char* op, const result<void>& r, const std::string& observed) {
    const bool on_shared = std::string(vol) == "s";
    out.push_back(std::to_string(on_shared ? last_ticket : 0) + " " + vol + " " + op + " " + (r ? "ok" : "err") + " " +
                  (observed.empty() ? "-" : observed));
    if (!r) out.push_back("# " + r.error().message());
  };
  auto as_void = [](const auto& r) { return r ? result<void>(success()) : result<void>(failure(r.error())); };
  bool own_running = false;
  std::uint32_t x = seed;
  for (int i = 0; i < ops; ++i) {
    x = x * 1664525u + 1013904223u;
    const unsigned pick = (x >> 10) % 100;
    last_ticket = 0;
    if (pick < 12) {
      line("s", "start", s.start(), "");
    } else if (pick < 26) {
      line("s", "stop", s.stop(), "");
    } else if (pick < 36) {
      // New data for the shared volume: an import, locked from start to end.
      const std::string mk = marker_of(role, i);
      auto imp = s.import_data(1 << 20);
      result<void> r = as_void(imp);
      if (imp) {
        io.write_marker(std::string(shared_vid) + "-import.img", mk);
        r = s.import_data_end(true);
      }
      line("s", "import", r, mk);
    } else if (pick < 44) {
      line("s", "revert", s.revert(), "");
    } else if (pick < 54) {
      auto revs = s.revisions();
      line("s", "revisions", as_void(revs), revs ? std::to_string(revs.value().size()) : "");
    } else if (pick < 64) {
      // Read the shared volume's committed data at one instant: copy it into
      // its own volume (the copy holds the shared volume's lock).
      if (own_running) {
        line("own", "stop", o.stop(), "");
        own_running = false;
        last_ticket = 0;
      }
      auto r = o.import_volume(s);
      const std::uint64_t t = last_ticket;
      const std::string seen = r ? io.first_bytes(own_clean) : "";
      last_ticket = t;
      line("s", "read", as_void(r), seen);
    } else if (pick < 72) {
      auto r = o.start();
      if (r) own_running = true;
      line("own", "start", r, "");
    } else if (pick < 82) {
      if (own_running) {
        const std::string mk = marker_of(role, i);
        io.write_marker(own_dirty, mk);
        line("own", "write", success(), mk);
      }
    } else if (pick < 90) {
      auto r = o.stop();
      if (r) own_running = false;
      line("own", "stop", r, r ? io.first_bytes(own_clean) : "");
    } else if (pick < 95) {
      auto r = o.revert();
      line("own", "revert", r, r ? io.first_bytes(own_clean) : "");
    } else {
      auto revs = o.revisions();
      line("own", "revisions", as_void(revs), revs ? std::to_string(revs.value().size()) : "");
    }
  }
  if (own_running) line("own", "stop", o.stop(), "");
  return out;
}

}  // namespace file_reflink::test::mp
