// SPDX-License-Identifier: BSL-1.0
// Two real processes (fork and exec of worker.cpp) on one pool, each with
// its own Pool object and the catalog on: random operations on a shared
// volume and on a volume of its own. No operation may fail because of the
// other process, and every result, the bytes of every image and revision
// included, must be what a sequential model gives when the operations are
// replayed in the order the kernel granted the shared volume's lock. Then a
// process killed with SIGKILL while it holds a volume's lock (an open
// import) must block nobody. Real filesystems only: MemoryFsOps lives in one
// process (tests/sharing.cpp runs the same with two pool objects on it).
#include "../pool_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <sstream>
#include <thread>

using namespace file_reflink;
using namespace file_reflink::test;
using namespace std::chrono_literals;

namespace {

using real_fixtures = std::tuple<btrfs_fixture, xfs_fixture, ext4_fixture>;

constexpr int keep = 3;
const std::string zeros(16, '.');

//! A temporary file, removed at the end.
struct temp_file {
  std::string path;
  explicit temp_file(const char* tag) {
    std::string t = std::string("/tmp/file_reflink_mp_") + tag + ".XXXXXX";
    int fd = ::mkstemp(t.data());
    REQUIRE(fd >= 0);
    REQUIRE(::ftruncate(fd, 8) == 0);
    ::close(fd);
    path = t;
  }
  ~temp_file() { ::unlink(path.c_str()); }
};

pid_t spawn(const std::vector<std::string>& args, int stdout_fd = -1) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (stdout_fd >= 0) ::dup2(stdout_fd, 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(FILE_REFLINK_WORKER, argv.data());
    std::_Exit(127);
  }
  return pid;
}

//! Wait for `pid` up to `limit`; kill it (and fail) past that.
int wait_exit(pid_t pid, std::chrono::seconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  int status = 0;
  for (;;) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (std::chrono::steady_clock::now() > end) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      FAIL_CHECK("worker " << pid << " did not finish in time (a deadlock?)");
      return -1;
    }
    std::this_thread::sleep_for(20ms);
  }
}

struct entry {
  std::uint64_t ticket = 0;
  std::string vol, op, result, observed, message;
  int role = 0;
};

std::vector<entry> read_log(const std::string& file, int role) {
  std::vector<entry> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
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

template <class Fx>
typename pool_env<Fx>::pool_type catalog_pool(pool_env<Fx>& env, std::optional<std::chrono::milliseconds> timeout) {
  pool_config c = pool_env<Fx>::config_for(env.fx, env.dir, keep, Fx::reflinks, env.log_mu, env.log);
  c.catalog = true;
  c.lock_timeout = timeout;
  return typename pool_env<Fx>::pool_type(c, env.fx.ops);
}

}  // namespace

FILE_REFLINK_FIXTURE_TEST_ON("multiprocess: two processes on one pool, each 400 random operations, match a sequential model",
                             real_fixtures) {
  pool_env<Fx> env(fx, keep);
  auto pool = catalog_pool(env, std::nullopt);
  for (const char* vid : {"shared/s", "p1/own", "p2/own"}) {
    auto v = REQUIRE_VALUE(pool.init_volume(volume_config::origin(vid, MiB)));
    REQUIRE_OK(v.create());
  }
  const char* seed_env = std::getenv("FILE_REFLINK_MP_SEED");
  const unsigned seed = seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10)) : 20261202u;
  const int ops = 400;
  temp_file tickets("tickets"), log1("log1"), log2("log2");
  const auto t0 = std::chrono::steady_clock::now();
  pid_t w1 = spawn({"worker", env.dir.string(), tickets.path, "1", std::to_string(seed), std::to_string(ops), log1.path});
  pid_t w2 = spawn({"worker", env.dir.string(), tickets.path, "2", std::to_string(seed + 1), std::to_string(ops), log2.path});
  CHECK(wait_exit(w1, 600s) == 0);
  CHECK(wait_exit(w2, 600s) == 0);
  MESSAGE("seed " << seed << ": 2 x " << ops << " operations in "
                  << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s");

  auto l1 = read_log(log1.path, 1), l2 = read_log(log2.path, 2);
  CHECK(l1.size() >= 300);
  CHECK(l2.size() >= 300);
  // The shared volume, in ticket order; each process's own, in its order.
  std::vector<entry> shared;
  std::size_t failed = 0;
  for (auto* l : {&l1, &l2})
    for (auto& e : *l)
      if (e.vol == "s") shared.push_back(e);
  std::sort(shared.begin(), shared.end(), [](const entry& a, const entry& b) { return a.ticket < b.ticket; });
  model s;
  for (auto& e : shared) {
    if (e.ticket == 0) {
      ++failed;
      MESSAGE("process " << e.role << ": " << e.op << " of shared/s never got its lock: " << e.message);
      continue;
    }
    if (auto why = s.apply(e); !why.empty()) {
      ++failed;
      MESSAGE("ticket " << e.ticket << ", process " << e.role << ", " << e.op << " of shared/s: " << why);
    }
  }
  model own[2];
  for (int r = 0; r < 2; ++r)
    for (auto& e : r == 0 ? l1 : l2) {
      if (e.vol != "own" && e.op != "read") continue;
      // A read of the shared volume is an import into its own volume.
      std::string why = e.vol == "own" ? own[r].apply(e) : "";
      if (e.vol == "s" && e.result == "ok") own[r].commit(e.observed);
      if (!why.empty()) {
        ++failed;
        MESSAGE("process " << e.role << ", " << e.op << " of its own volume: " << why);
      }
    }
  CHECK(failed == 0);
  MESSAGE("shared/s: " << shared.size() << " operations; p1/own: " << l1.size() - std::count_if(l1.begin(), l1.end(), [](const entry& e) { return e.vol == "s"; })
                       << ", p2/own: " << l2.size() - std::count_if(l2.begin(), l2.end(), [](const entry& e) { return e.vol == "s"; }));

  // The files on disk are the model's.
  auto check = catalog_pool(env, std::nullopt);
  auto sv = REQUIRE_VALUE(check.get_volume("shared/s"));
  REQUIRE_OK(sv.stop());
  if (s.running) s.commit(*s.running), s.running.reset();
  check_disk(env, sv, s);
  for (int r = 0; r < 2; ++r) {
    auto v = REQUIRE_VALUE(check.get_volume("p" + std::to_string(r + 1) + "/own"));
    check_disk(env, v, own[r]);
  }
  auto rep = REQUIRE_VALUE(check.recover());
  CHECK(rep.removed.empty());
  CHECK(rep.busy.empty());
  CHECK(rep.foreign.empty());
}

FILE_REFLINK_FIXTURE_TEST_ON("multiprocess: a process killed while it holds a volume's lock blocks nobody", real_fixtures) {
  pool_env<Fx> env(fx, keep);
  auto pool = catalog_pool(env, std::nullopt);
  auto v = REQUIRE_VALUE(pool.init_volume(volume_config::origin("shared/s", MiB)));
  REQUIRE_OK(v.create());
  temp_file tickets("tickets");
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t holder = spawn({"worker", env.dir.string(), tickets.path, "hold"}, fds[1]);
  ::close(fds[1]);
  char buf[8] = {};
  REQUIRE(::read(fds[0], buf, 5) == 5);  // "held\n": its import is open, the lock held
  ::close(fds[0]);
  CHECK(std::string(buf, 4) == "held");
  auto impatient = catalog_pool(env, 0ms);
  auto iv = REQUIRE_VALUE(impatient.get_volume("shared/s"));
  CHECK_ERR(iv.start(), errc::volume_busy);
  CHECK(REQUIRE_VALUE(impatient.recover()).busy == std::vector<std::string>{"shared/s"});

  ::kill(holder, SIGKILL);
  CHECK(wait_exit(holder, 30s) == 128 + SIGKILL);
  // The kernel released its lock: at once, nobody waits.
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE_OK(iv.start());
  MESSAGE("start after the holder was killed: "
          << std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() << " ms");
  CHECK_FALSE(env.has(env.import("shared/s")));  // its interrupted import went at that start
  REQUIRE_OK(iv.stop());
  auto rep = REQUIRE_VALUE(impatient.recover());
  CHECK(rep.busy.empty());
  CHECK(rep.removed.empty());
}
