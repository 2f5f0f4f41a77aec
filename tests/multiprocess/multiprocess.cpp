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
#include "model.hpp"

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
using namespace file_reflink::test::mp;
using namespace std::chrono_literals;

namespace {

using real_fixtures = std::tuple<btrfs_fixture, xfs_fixture, ext4_fixture>;


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

  auto lines_of = [](const std::string& file) {
    std::vector<std::string> out;
    std::ifstream in(file);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
  };
  auto r = replay(lines_of(log1.path), lines_of(log2.path));
  CHECK(r.failed == 0);
  CHECK(r.shared_ops + r.own_ops[0] + r.own_ops[1] >= 600);
  MESSAGE("shared/s: " << r.shared_ops << " operations; p1/own: " << r.own_ops[0] << ", p2/own: " << r.own_ops[1]);
  auto check = catalog_pool(env, std::nullopt);
  check_files(env, check, r);
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
