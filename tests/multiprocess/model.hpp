// SPDX-License-Identifier: BSL-1.0
//! \file
//! The sequential model that the multi-process test replays the workload's
//! lines against (workload.hpp), and the check of the files on disk.
#pragma once

#include "../pool_support.hpp"

#include <algorithm>
#include <deque>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace file_reflink::test::mp {

inline constexpr int keep = 3;
inline const std::string zeros(16, '.');

struct entry {
  std::uint64_t ticket = 0;
  std::string vol, op, result, observed, message;
  int role = 0;
};

//! The sequential model of one origin volume (the revisions' bytes, oldest
//! first, and the committed and running bytes), as the library's README
//! describes it: a commit keeps the old image as the newest revision and
//! prunes the oldest beyond `keep`; a revert to the newest (unpinned)
//! renames it in and keeps the old bytes as a new revision, pruning nothing;
//! a running volume refuses imports and reverts.
struct model {
  std::string committed = zeros;
  std::optional<std::string> running;
  std::deque<std::string> revisions;

  void commit(const std::string& bytes) {
    revisions.push_back(committed);
    committed = bytes;
    while (revisions.size() > static_cast<std::size_t>(keep)) revisions.pop_front();
  }
  //! Apply `e`; what went wrong, or empty.
  std::string apply(const entry& e) {
    const bool ok = e.result == "ok";
    auto expect = [&](bool should) -> std::string {
      if (ok == should) return "";
      return should ? "failed, the model says it succeeds: " + e.message : "succeeded, the model says it fails";
    };
    if (e.op == "start") {
      if (auto w = expect(true); !w.empty()) return w;
      if (!running) running = committed;
    } else if (e.op == "stop") {
      if (auto w = expect(true); !w.empty()) return w;
      if (running) commit(*running);
      running.reset();
      if (e.observed != "-" && e.observed != committed) return "committed bytes " + e.observed + ", model " + committed;
    } else if (e.op == "write") {
      if (!running) return "wrote a volume the model has stopped";
      running = e.observed;
    } else if (e.op == "import") {
      if (auto w = expect(!running); !w.empty()) return w;
      if (ok) commit(e.observed);
    } else if (e.op == "revert") {
      if (auto w = expect(!running && !revisions.empty()); !w.empty()) return w;
      if (ok) {
        std::string back = revisions.back();
        revisions.back() = committed;  // it is renamed in; the old bytes are a new revision
        committed = back;
        if (e.observed != "-" && e.observed != committed) return "reverted to " + e.observed + ", model " + committed;
      }
    } else if (e.op == "revisions") {
      if (auto w = expect(true); !w.empty()) return w;
      if (e.observed != std::to_string(revisions.size()))
        return e.observed + " revisions, model " + std::to_string(revisions.size());
    } else if (e.op == "read") {
      if (auto w = expect(true); !w.empty()) return w;
      if (e.observed != committed) return "read " + e.observed + ", model " + committed;
    } else {
      return "unknown operation " + e.op;
    }
    return "";
  }
};

template <class Env>
std::string first16(Env& env, const path& rel) {
  std::string s = env.read(rel, 0, 16);
  for (char& c : s)
    if (c == '\0') c = '.';
  return s;
}

//! The volume's files on disk against the model: committed bytes and each
//! revision's, in number order.
template <class Env, class Vol>
void check_disk(Env& env, Vol& v, const model& m) {
  CAPTURE(v.vid());
  CHECK(first16(env, env.clean(v.vid())) == m.committed);
  const auto revs = REQUIRE_VALUE(v.revisions());
  std::vector<std::string> seen;
  for (auto& [n, info] : revs)
    seen.push_back(first16(env, path(v.vid() + ".img." + std::to_string(n) + "@" + info.timestamp)));
  CHECK(seen == std::vector<std::string>(m.revisions.begin(), m.revisions.end()));
}

//! The lines of one caller (role 1 or 2).
inline std::vector<entry> parse_lines(const std::vector<std::string>& lines, int role) {
  std::vector<entry> out;
  for (const std::string& line : lines) {
    if (line.rfind("# ", 0) == 0) {
      if (!out.empty()) out.back().message = line.substr(2);
      continue;
    }
    std::istringstream ls(line);
    entry e;
    e.role = role;
    ls >> e.ticket >> e.vol >> e.op >> e.result >> e.observed;
    out.push_back(e);
  }
  return out;
}

//! Both callers' lines replayed: the shared volume in ticket order, each
//! one's own volume in its order. Every disagreement is a MESSAGE and
//! counts in `failed`.
struct replayed {
  model shared;
  model own[2];
  std::size_t failed = 0;
  std::size_t shared_ops = 0, own_ops[2] = {0, 0};
};

inline replayed replay(const std::vector<std::string>& lines1, const std::vector<std::string>& lines2) {
  replayed out;
  const std::vector<entry> l[2] = {parse_lines(lines1, 1), parse_lines(lines2, 2)};
  std::vector<entry> shared;
  for (const auto& one : l)
    for (const auto& e : one)
      if (e.vol == "s") shared.push_back(e);
  std::sort(shared.begin(), shared.end(), [](const entry& a, const entry& b) { return a.ticket < b.ticket; });
  out.shared_ops = shared.size();
  for (auto& e : shared) {
    if (e.ticket == 0) {
      ++out.failed;
      MESSAGE("process " << e.role << ": " << e.op << " of shared/s never got its lock: " << e.message);
      continue;
    }
    if (auto why = out.shared.apply(e); !why.empty()) {
      ++out.failed;
      MESSAGE("ticket " << e.ticket << ", process " << e.role << ", " << e.op << " of shared/s: " << why);
    }
  }
  for (int r = 0; r < 2; ++r)
    for (const auto& e : l[r]) {
      if (e.vol != "own" && e.op != "read") continue;
      // A read of the shared volume is an import into its own volume.
      std::string why;
      if (e.vol == "own") {
        ++out.own_ops[r];
        why = out.own[r].apply(e);
      } else if (e.result == "ok") {
        out.own[r].commit(e.observed);
      }
      if (!why.empty()) {
        ++out.failed;
        MESSAGE("process " << e.role << ", " << e.op << " of its own volume: " << why);
      }
    }
  return out;
}

//! The files on disk against the replayed models (the shared volume is
//! stopped first, as the model is).
template <class Env, class Pool>
void check_files(Env& env, Pool& pool, replayed& r) {
  auto sv = REQUIRE_VALUE(pool.get_volume("shared/s"));
  REQUIRE_OK(sv.stop());
  if (r.shared.running) r.shared.commit(*r.shared.running), r.shared.running.reset();
  check_disk(env, sv, r.shared);
  for (int i = 0; i < 2; ++i) {
    auto v = REQUIRE_VALUE(pool.get_volume("p" + std::to_string(i + 1) + "/own"));
    check_disk(env, v, r.own[i]);
  }
}

}  // namespace file_reflink::test::mp
