// SPDX-License-Identifier: BSL-1.0
// End-to-end tests of the file-reflink command: the built binary, run as a
// subprocess (its stdout, stderr and exit status captured), on a pool on a
// btrfs and an ext4 scratch mount and in a plain temporary directory. Each
// test is written once and runs on the three; a scratch filesystem that
// cannot be made (not root, no loop devices) skips the test (exit 77).
#include "support/patterns.hpp"
#include "support/scratch_fs.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#ifndef FILE_REFLINK_COMMAND
#error "FILE_REFLINK_COMMAND: the path of the built file-reflink command"
#endif

namespace {

using json = nlohmann::json;
namespace stdfs = std::filesystem;
using file_reflink::test::pattern;
constexpr std::uint64_t MiB = std::uint64_t(1) << 20;

// ---- running the command ------------------------------------------------------

struct ran {
  int status = -1;  //!< exit status, or 128 + signal
  std::string out, err;
};

//! A running file-reflink: its pid and the parent's ends of its pipes.
struct Child {
  pid_t pid = -1;
  int in = -1, out = -1, err = -1;
};

Child spawn(const std::vector<std::string>& args, const char* program = FILE_REFLINK_COMMAND) {
  int in[2], out[2], err[2];
  REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  // A signal sent to the child before it runs the command must not run
  // this process's handlers in the child: it is blocked across the fork,
  // and the child takes the default actions before it lets it in.
  sigset_t all, was;
  ::sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &was);
  pid_t pid = ::fork();
  if (pid == 0) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &was, nullptr);
    ::dup2(in[0], 0), ::dup2(out[1], 1), ::dup2(err[1], 2);
    std::vector<char*> argv{const_cast<char*>(program)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::sigprocmask(SIG_SETMASK, &was, nullptr);
  REQUIRE(pid >= 0);
  ::close(in[0]), ::close(out[1]), ::close(err[1]);
  return {pid, in[1], out[0], err[0]};
}

//! Feed `input` (then end of file), collect both outputs, wait for the exit.
ran finish(Child c, const std::string& input = "") {
  ran r;
  std::size_t fed = 0;
  if (input.empty()) ::close(c.in), c.in = -1;
  ::signal(SIGPIPE, SIG_IGN);  // a command that stops reading early is not our death
  while (c.out >= 0 || c.err >= 0) {
    std::vector<pollfd> fds;
    if (c.in >= 0) fds.push_back({c.in, POLLOUT, 0});
    if (c.out >= 0) fds.push_back({c.out, POLLIN, 0});
    if (c.err >= 0) fds.push_back({c.err, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      FAIL("poll: " << std::strerror(errno));
    }
    for (auto& p : fds) {
      if (!p.revents) continue;
      if (p.fd == c.in) {
        ssize_t n = ::write(c.in, input.data() + fed, std::min<std::size_t>(input.size() - fed, 65536));
        if (n > 0) fed += static_cast<std::size_t>(n);
        if (n < 0 || fed == input.size()) ::close(c.in), c.in = -1;
        continue;
      }
      char buf[65536];
      ssize_t n = ::read(p.fd, buf, sizeof buf);
      if (n > 0) {
        (p.fd == c.out ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(p.fd);
        (p.fd == c.out ? c.out : c.err) = -1;
      }
    }
  }
  if (c.in >= 0) ::close(c.in);
  int status = 0;
  while (::waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

ran run(const std::vector<std::string>& args, const std::string& input = "") { return finish(spawn(args), input); }

std::string shown(const std::vector<std::string>& args) {
  std::string s = "file-reflink";
  for (auto& a : args) s += " " + a;
  return s;
}

//! Run, and require success (the command's stderr explains a failure).
std::string ok(const std::vector<std::string>& args, const std::string& input = "") {
  ran r = run(args, input);
  INFO(shown(args) << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  return r.out;
}

json ok_json(const std::vector<std::string>& args) {
  std::string out = ok(args);
  json j = json::parse(out, nullptr, false);
  INFO(shown(args) << "\nstdout: " << out);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

//! Run, and require the exit status `status` with one error line on stderr.
ran fails(int status, const std::vector<std::string>& args, const std::string& input = "") {
  ran r = run(args, input);
  INFO(shown(args) << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == status);
  CHECK(r.err.rfind("file-reflink: ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  return r;
}

// ---- files ---------------------------------------------------------------------

//! The first `max` bytes of a file (all of it by default).
std::string read_file(const std::string& path, std::size_t max = std::string::npos) {
  std::ifstream in(path, std::ios::binary);
  std::string s;
  char buf[65536];
  while (s.size() < max) {
    in.read(buf, static_cast<std::streamsize>(std::min(sizeof buf, max - s.size())));
    if (in.gcount() <= 0) break;
    s.append(buf, static_cast<std::size_t>(in.gcount()));
  }
  return s;
}

//! Write `data` at `offset` of an existing file (as a VM writes to its disk).
void write_at(const std::string& path, std::uint64_t offset, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  REQUIRE_MESSAGE(fd >= 0, "open " << path << ": " << std::strerror(errno));
  REQUIRE(::pwrite(fd, data.data(), data.size(), static_cast<off_t>(offset)) == static_cast<ssize_t>(data.size()));
  ::close(fd);
}

std::uint64_t allocated(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<std::uint64_t>(st.st_blocks) * 512;
}

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

//! A new file holding `data`, and the directories above it.
void write_file(const std::string& path, const std::string& data) {
  stdfs::create_directories(stdfs::path(path).parent_path());
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  f.close();
  REQUIRE_MESSAGE(f.good(), "write " << path);
}

//! The catalog's lines for volume `vid` (key -> value); empty if it has none.
std::map<std::string, std::string> catalog_entry(const std::string& pool, const std::string& vid) {
  std::istringstream in(read_file(pool + "/.file-reflink-catalog"));
  std::map<std::string, std::string> out;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "volume " + vid) {
      inside = true;
    } else if (inside && line == "end") {
      break;
    } else if (inside) {
      std::size_t sp = line.find(' ');
      out[line.substr(0, sp)] = sp == std::string::npos ? "" : line.substr(sp + 1);
    }
  }
  return out;
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

//! The byte of the pool's lock file that stands for volume `vid`, as the
//! library computes it: 1 and 62 bits of the FNV-1a hash of the vid.
std::uint64_t lock_byte(const std::string& vid) {
  std::uint64_t h = 1469598103934665603ull;
  for (char c : vid) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return 1 + (h & ((std::uint64_t(1) << 62) - 1));
}

//! Volume `vid` held by this process the way another command's operation
//! holds it: an OFD write lock on its byte of the pool's lock file.
class HeldVolume {
public:
  HeldVolume(const std::string& pool, const std::string& vid) {
    fd_ = ::open((pool + "/.file-reflink.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    REQUIRE_MESSAGE(fd_ >= 0, "open the lock file: " << std::strerror(errno));
    struct flock fl;
    std::memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = static_cast<off_t>(lock_byte(vid));
    fl.l_len = 1;
    REQUIRE_MESSAGE(::fcntl(fd_, F_OFD_SETLK, &fl) == 0, "lock " << vid << ": " << std::strerror(errno));
  }
  ~HeldVolume() { release(); }
  HeldVolume(const HeldVolume&) = delete;
  HeldVolume& operator=(const HeldVolume&) = delete;
  void release() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

private:
  int fd_ = -1;
};

//! Whether the child is still running. It is not reaped: `finish` still
//! collects its exit status.
bool still_running(const Child& c) {
  siginfo_t info;
  std::memset(&info, 0, sizeof info);
  REQUIRE(::waitid(P_PID, static_cast<id_t>(c.pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0);
  return info.si_pid == 0;
}

//! Every name below `dir`, relative, sorted: what a command left behind.
std::vector<std::string> tree(const std::string& dir) {
  std::vector<std::string> out;
  for (auto& e : stdfs::recursive_directory_iterator(dir)) out.push_back(stdfs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

// ---- fixtures: where the pool lives ---------------------------------------------

//! A pool made with `pool init` in a fresh directory below `base`; on a
//! filesystem without reflinks, with --no-setup-check after checking that
//! the plain init refuses.
class PoolFixture {
public:
  explicit PoolFixture(const std::string& base, bool expect_reflinks) {
    std::string tmpl = base + "/cli.XXXXXX";
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    top_ = tmpl;
    dir_ = top_ + "/pool";
    ran r = run({"pool", "init", dir_});
    if (expect_reflinks) {
      INFO("stderr: " << r.err);
      REQUIRE(r.status == 0);
    } else if (r.status != 0) {
      // Refused with the library's reason, one line, the command's option named.
      CHECK(r.status == 1);
      CHECK(r.err.find("does not support reflinks") != std::string::npos);
      CHECK(r.err.find("--no-setup-check") != std::string::npos);
      ok({"pool", "init", dir_, "--no-setup-check", "--quiet"});
      reflinks_ = false;
    }
  }
  ~PoolFixture() {
    std::error_code ec;
    stdfs::remove_all(top_, ec);
  }
  const std::string& dir() const { return dir_; }
  const std::string& top() const { return top_; }
  bool reflinks() const { return reflinks_; }

private:
  std::string top_, dir_;
  bool reflinks_ = true;
};

struct btrfs_pool : PoolFixture {
  btrfs_pool() : PoolFixture(file_reflink::test::scratch_mount(file_reflink::test::scratch_kind::btrfs), true) {}
};
struct ext4_pool : PoolFixture {
  ext4_pool() : PoolFixture(file_reflink::test::scratch_mount(file_reflink::test::scratch_kind::ext4), false) {}
};
//! A plain temporary directory: reflinks or not, as the machine has it.
struct tmpdir_pool : PoolFixture {
  tmpdir_pool() : PoolFixture("/var/tmp", false) {}
};

}  // namespace

TYPE_TO_STRING_AS("btrfs", btrfs_pool);
TYPE_TO_STRING_AS("ext4", ext4_pool);
TYPE_TO_STRING_AS("tmpdir", tmpdir_pool);

#define CLI_TEST(name) TEST_CASE_TEMPLATE(name, Fx, btrfs_pool, ext4_pool, tmpdir_pool)

CLI_TEST("cli: create, start, write into the dirty image, stop, revisions, revert") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "64M", "--revisions-to-keep", "3"});
  std::string image = ok({"volume", "start", P, "vm/private"});
  REQUIRE(!image.empty());
  image.pop_back();  // the newline
  CHECK(image == P + "/vm/private-dirty.img");
  json running = ok_json({"volume", "info", P, "vm/private", "--json"});
  CHECK(running["state"] == "running");  // its data is committed at stop
  CHECK(running["running"] == true);
  const std::string first = pattern(2 * MiB, 1), second = pattern(MiB, 2);
  write_at(image, 0, first);
  ok({"volume", "stop", P, "vm/private"});
  CHECK_FALSE(exists(image));
  CHECK(read_file(P + "/vm/private.img", first.size()) == first);

  ok({"volume", "start", P, "vm/private"});
  write_at(image, 0, second);
  ok({"volume", "stop", P, "vm/private"});
  json revs = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  REQUIRE(revs.size() == 2);
  CHECK(revs[0]["number"] == 1);  // the empty image create made
  CHECK(revs[1]["number"] == 2);  // the first data

  // Revert by number: the first data is back, the second became revision 3.
  ok({"volume", "revert", P, "vm/private", "2"});
  CHECK(ok({"volume", "export", P, "vm/private", "-"}).substr(0, first.size()) == first);
  revs = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  REQUIRE(revs.size() == 2);
  CHECK(revs[1]["number"] == 3);

  // A pinned revision, reverted to by its label, then dropped by it.
  ok({"volume", "keep", P, "vm/private", "3", "second-data"});
  revs = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  CHECK(revs[1]["labels"] == json::array({"second-data"}));
  ok({"volume", "revert", P, "vm/private", "second-data"});
  CHECK(read_file(P + "/vm/private.img", second.size()) == second);
  ok({"volume", "drop", P, "vm/private", "second-data"});
  for (auto& r : ok_json({"volume", "revisions", P, "vm/private", "--json"})) CHECK(r["labels"].empty());

  // The running image survives a second start (a crashed VM's data is kept).
  ok({"volume", "start", P, "vm/private"});
  write_at(image, 0, "crash");
  ok({"volume", "start", P, "vm/private"});
  CHECK(read_file(image, 5) == "crash");
  ok({"volume", "stop", P, "vm/private"});
  CHECK(read_file(P + "/vm/private.img", 5) == "crash");
}

CLI_TEST("cli: a snapshot starts from its source, shares its extents, and is discarded at stop") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "tpl/root", "--size", "32M"});
  std::string tpl = ok({"volume", "start", P, "tpl/root"});
  tpl.pop_back();
  const std::string data = pattern(8 * MiB, 7);
  write_at(tpl, 0, data);
  ok({"volume", "stop", P, "tpl/root"});
  ok({"volume", "create", P, "vm/root", "--kind", "snapshot", "--source", "tpl/root"});
  ok({"volume", "create", P, "vm/volatile", "--kind", "volatile", "--size", "16M"});
  std::string root = ok({"volume", "start", P, "vm/root"});
  root.pop_back();
  CHECK(read_file(root, data.size()) == data);
  json info = ok_json({"volume", "info", P, "vm/root", "--json"});
  CHECK(info["kind"] == "snapshot");
  CHECK(info["source"] == "tpl/root");
  CHECK(info["size"] == 32 * MiB);
  std::uint64_t shared = info["space"]["running_image"]["shared"];
  if (fx.reflinks())
    CHECK(shared >= data.size());
  else
    CHECK(shared == 0);
  CHECK(ok_json({"volume", "list", P, "--json"}).size() == 3);
  // As whole volumes: the running snapshot's clean name is a hard link to the
  // template's image, so the two share it everywhere; its running image is a
  // clone (shared) or, without reflinks, a copy of its own.
  json du = ok_json({"pool", "du", P, "--json"});
  REQUIRE(du["volumes"].size() == 3);
  json snap, tpl_space;
  for (auto& v : du["volumes"]) {
    if (v["vid"] == "tpl/root") tpl_space = v;
    if (v["vid"] == "vm/root") snap = v;
  }
  CHECK(tpl_space["shared"].get<std::uint64_t>() >= data.size());
  if (fx.reflinks())
    CHECK(snap["exclusive"].get<std::uint64_t>() < MiB);
  else
    CHECK(snap["exclusive"].get<std::uint64_t>() >= data.size());
  // The template committing again makes the running snapshot outdated.
  ok({"volume", "start", P, "tpl/root"});
  ok({"volume", "stop", P, "tpl/root"});
  CHECK(ok_json({"volume", "info", P, "vm/root", "--json"})["outdated"] == true);
  write_at(root, 0, "scratch");
  ok({"volume", "stop", P, "vm/root"});
  CHECK_FALSE(exists(root));
  CHECK(read_file(P + "/tpl/root.img", data.size()) == data);  // the snapshot's writes went nowhere

  std::string vol = ok({"volume", "start", P, "vm/volatile"});
  vol.pop_back();
  CHECK(exists(vol));
  ok({"volume", "stop", P, "vm/volatile"});
  CHECK_FALSE(exists(vol));

  // An origin made from another volume's data: a copy, committed.
  ok({"volume", "create", P, "vm2/private", "--source", "tpl/root"});
  CHECK(read_file(P + "/vm2/private.img", data.size()) == data);
  CHECK(ok_json({"volume", "revisions", P, "vm2/private", "--json"}).empty());
}

CLI_TEST("cli: import and export round-trip, holes kept") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/data", "--size", "4M"});
  // A sparse file: data, a hole, data, a hole at the end.
  std::string in = fx.top() + "/in.img", out = fx.top() + "/out.img";
  {
    std::ofstream f(in, std::ios::binary);
  }
  REQUIRE(::truncate(in.c_str(), 16 * MiB) == 0);
  const std::string a = pattern(MiB, 3), b = pattern(MiB, 4);
  write_at(in, 0, a);
  write_at(in, 8 * MiB, b);
  ok({"volume", "import", P, "vm/data", in});
  json info = ok_json({"volume", "info", P, "vm/data", "--json"});
  CHECK(info["size"] == 16 * MiB);  // the image is the file
  CHECK(allocated(P + "/vm/data.img") < 4 * MiB);

  ok({"volume", "export", P, "vm/data", out});
  CHECK(read_file(out) == read_file(in));
  CHECK(allocated(out) < 4 * MiB);  // holes stay holes
  CHECK(ok({"volume", "export", P, "vm/data", "-"}) == read_file(in));

  // From a pipe: of the volume's size unless --size says otherwise; a pipe
  // shorter than --size only with --allow-short.
  const std::string piped = pattern(3 * MiB, 5);
  ok({"volume", "import", P, "vm/data", "-", "--size", "6M", "--allow-short"}, piped);
  std::string back = ok({"volume", "export", P, "vm/data", "-"});
  REQUIRE(back.size() == 6 * MiB);
  CHECK(back.substr(0, piped.size()) == piped);
  CHECK(back.substr(piped.size()) == std::string(3 * MiB, '\0'));

  // More data than the size: refused, and the committed data is as it was.
  std::size_t revisions = ok_json({"volume", "revisions", P, "vm/data", "--json"}).size();
  fails(1, {"volume", "import", P, "vm/data", "-", "--size", "1M"}, piped);
  CHECK(ok({"volume", "export", P, "vm/data", "-"}) == back);
  CHECK(ok_json({"volume", "revisions", P, "vm/data", "--json"}).size() == revisions);
  CHECK_FALSE(exists(P + "/vm/data-import.img"));
}

CLI_TEST("cli: JSON output parses back") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "a/private", "--size", "1.5G", "--revisions-to-keep", "2"});
  ok({"volume", "create", P, "a/root", "--kind", "snapshot", "--source", "a/private", "--read-only"});
  std::string img = ok({"volume", "start", P, "a/private"});
  img.pop_back();
  write_at(img, 0, pattern(MiB, 9));
  ok({"volume", "stop", P, "a/private"});

  json pool = ok_json({"pool", "info", P, "--json"});
  CHECK(pool["directory"] == P);
  CHECK(pool["volumes"] == 2);
  CHECK(pool["reflinks"] == fx.reflinks());
  CHECK(pool["setup_check"] == fx.reflinks());
  CHECK(pool["filesystem"]["size"].get<std::uint64_t>() >= pool["filesystem"]["used"].get<std::uint64_t>());

  json list = ok_json({"volume", "list", P, "--json"});
  REQUIRE(list.size() == 2);
  CHECK(list[0]["vid"] == "a/private");
  CHECK(list[0]["size"] == 3 * (MiB << 9));  // 1.5G
  CHECK(list[0]["revisions_to_keep"] == 2);
  CHECK(list[1]["rw"] == false);

  json info = ok_json({"volume", "info", P, "a/private", "--json"});
  CHECK(info["state"] == "stopped");
  CHECK(info["image"].is_null());
  CHECK(info["space"]["committed_image"]["allocated"].get<std::uint64_t>() >= MiB);
  CHECK(info["revisions"].size() == 1);

  // Whole volumes count each byte once; what two volumes share counts in both.
  json du = ok_json({"pool", "du", P, "--json"});
  REQUIRE(du["volumes"].size() == 2);
  std::uint64_t allocated = 0, exclusive = 0;
  for (auto& v : du["volumes"]) {
    const json& w = v;
    CHECK(w["allocated"] == w["exclusive"].get<std::uint64_t>() + w["shared"].get<std::uint64_t>());
    std::uint64_t files = 0;
    for (auto& f : v["files"]) files += f["allocated"].get<std::uint64_t>();
    CHECK(w["allocated"].get<std::uint64_t>() <= files);
    allocated += w["allocated"].get<std::uint64_t>();
    exclusive += w["exclusive"].get<std::uint64_t>();
  }
  CHECK(du["total"]["exclusive"] == exclusive);
  CHECK(du["total"]["allocated"].get<std::uint64_t>() <= allocated);
  CHECK(du["total"]["allocated"].get<std::uint64_t>() >= MiB);  // the data written above

  json scan = ok_json({"pool", "scan", P, "--json"});
  CHECK(scan["volumes"].size() == 2);
  CHECK(scan["foreign"].empty());  // the catalog and the lock file are the library's own
  json recover = ok_json({"pool", "recover", P, "--json"});
  CHECK(recover["removed"].empty());

  // Text and JSON agree on what they show.
  std::string du_text = ok({"pool", "du", P});
  CHECK(du_text.find("a/private") != std::string::npos);
  CHECK(du_text.find("revision 1") != std::string::npos);
  CHECK(du_text.find("total") != std::string::npos);
  CHECK(ok({"volume", "list", P}).find("1.5G") != std::string::npos);
}

CLI_TEST("cli: bad arguments and their exit codes") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "8M"});
  std::string before = read_file(P + "/.file-reflink-catalog");
  std::vector<std::string> files = tree(P);

  // Usage errors: 2, and nothing done.
  fails(2, {});
  fails(2, {"frobnicate"});
  fails(2, {"volume", "create", P, "vm/x"});                        // an origin needs a size
  fails(2, {"volume", "create", P, "vm/x", "--size", "10Q"});       // not a size
  fails(2, {"volume", "create", P, "vm/x", "--size", "1G", "--kind", "bogus"});
  fails(2, {"volume", "create", P, "vm/x", "--kind", "snapshot"});  // no source
  fails(2, {"volume", "create", P, "../escape", "--size", "1G"});   // not a vid
  fails(2, {"volume", "create", P, "vm/x.img", "--size", "1G"});
  fails(2, {"volume", "info", P});                                  // no VID
  fails(2, {"volume", "resize", P, "vm/private", "lots"});
  fails(2, {"volume", "keep", P, "vm/private", "1", "bad label"});
  fails(2, {"volume", "keep", P, "vm/private", "one", "label"});
  fails(2, {"--wait", "-1", "volume", "list", P});
  fails(2, {"--wait", "soon", "volume", "list", P});
  fails(2, {"volume", "list", P, "--wait", "1", "--no-wait"});
  CHECK(read_file(P + "/.file-reflink-catalog") == before);
  CHECK(tree(P) == files);

  // Not found: 3.
  fails(3, {"volume", "info", P, "vm/none"});
  fails(3, {"volume", "start", P, "vm/none"});
  fails(3, {"volume", "revert", P, "vm/private", "7"});
  fails(3, {"volume", "revert", P, "vm/private", "no-such-label"});
  fails(3, {"volume", "create", P, "vm/root", "--kind", "snapshot", "--source", "vm/none"});
  fails(3, {"volume", "list", fx.top() + "/no-pool"});
  fails(3, {"volume", "import", P, "vm/private", fx.top() + "/no-such-file"});
  std::string empty = fx.top() + "/empty";
  REQUIRE(::mkdir(empty.c_str(), 0755) == 0);
  // An empty directory is no pool (an unmounted filesystem?).
  CHECK(fails(3, {"pool", "info", empty}).err.find("is the pool's filesystem mounted?") != std::string::npos);

  // Operation errors: 1, with the library's reason.
  CHECK(fails(1, {"volume", "create", P, "vm/private", "--size", "8M"}).err.find("exists") != std::string::npos);
  CHECK(fails(1, {"volume", "resize", P, "vm/private", "4M"}).err.find("shrinking would lose data") !=
        std::string::npos);
  fails(1, {"pool", "init", P});  // a pool already
  ok({"volume", "start", P, "vm/private"});
  CHECK(fails(1, {"volume", "revert", P, "vm/private"}).err.find("running") != std::string::npos);
  CHECK(fails(1, {"volume", "import", P, "vm/private", "-"}, "x").err.find("running") != std::string::npos);
  ok({"volume", "stop", P, "vm/private"});
  ok({"volume", "create", P, "vm/root", "--kind", "snapshot", "--source", "vm/private"});
  ran source = fails(1, {"volume", "remove", P, "vm/private"});
  CHECK(source.err.find("vm/root") != std::string::npos);
  CHECK(source.err.find("--force") != std::string::npos);

  // Help is not an error.
  ran help = run({"--help"});
  CHECK(help.status == 0);
  CHECK(help.out.find("Exit status") != std::string::npos);
  CHECK(help.out.find("4 busy") != std::string::npos);
  CHECK(help.out.find(".file-reflink-catalog") != std::string::npos);
}

CLI_TEST("cli: a cancelled import leaves nothing behind") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "64M"});
  const std::string data = pattern(MiB, 11);
  std::string img = ok({"volume", "start", P, "vm/private"});
  img.pop_back();
  write_at(img, 0, data);
  ok({"volume", "stop", P, "vm/private"});
  json revs_before = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  std::vector<std::string> files = tree(P);

  // An import from a pipe that is half fed, then Ctrl-C.
  Child c = spawn({"volume", "import", P, "vm/private", "-", "--size", "64M"});
  const std::string part = pattern(4 * MiB, 12);
  for (std::size_t off = 0; off < part.size();) {
    ssize_t n = ::write(c.in, part.data() + off, part.size() - off);
    REQUIRE(n > 0);
    off += static_cast<std::size_t>(n);
  }
  const std::string import_file = P + "/vm/private-import.img";
  for (int i = 0; i < 500 && !exists(import_file); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(exists(import_file));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // it reads what it was given, then waits for more
  REQUIRE(::kill(c.pid, SIGINT) == 0);
  ran r = finish(c);
  INFO("stderr: " << r.err);
  CHECK(r.status == 130);
  CHECK(r.err.find("cancelled") != std::string::npos);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);

  CHECK(tree(P) == files);  // no import file, no temporary
  CHECK(ok_json({"volume", "revisions", P, "vm/private", "--json"}) == revs_before);
  CHECK(read_file(P + "/vm/private.img", data.size()) == data);
  json scan = ok_json({"pool", "scan", P, "--json"});
  for (auto& v : scan["volumes"]) {
    CHECK(v["import"] == false);
    CHECK(v["temporary"].empty());
  }
}

CLI_TEST("cli: concurrent invocations do not lose each other's changes") {
  Fx fx;
  const std::string& P = fx.dir();
  // Eighteen creates at once, each a read-modify-write of the catalog.
  constexpr int volumes = 18;
  std::vector<Child> creates;
  for (int i = 0; i < volumes; ++i)
    creates.push_back(spawn({"volume", "create", P, "vm" + std::to_string(i) + "/private", "--size", "1M", "--quiet"}));
  for (auto& c : creates) {
    ran r = finish(c);
    INFO("stderr: " << r.err);
    CHECK(r.status == 0);
  }
  json list = ok_json({"volume", "list", P, "--json"});
  CHECK(list.size() == volumes);
  for (auto& v : list) CHECK(v["state"] == "stopped");
}

CLI_TEST("cli: resize, discard, sparsify and remove") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "8M"});
  ok({"volume", "resize", P, "vm/private", "16M"});
  CHECK(ok_json({"volume", "info", P, "vm/private", "--json"})["size"] == 16 * MiB);
  CHECK(catalog_entry(P, "vm/private")["size"] == std::to_string(16 * MiB));  // remembered for the next run

  std::string img = ok({"volume", "start", P, "vm/private"});
  img.pop_back();
  write_at(img, 0, pattern(2 * MiB, 13));
  write_at(img, 4 * MiB, std::string(2 * MiB, '\0'));  // zeros written, allocated
  ok({"volume", "resize", P, "vm/private", "32M"});    // while running
  ok({"volume", "stop", P, "vm/private"});
  CHECK(ok_json({"volume", "info", P, "vm/private", "--json"})["size"] == 32 * MiB);

  ok({"volume", "discard", P, "vm/private", "0", "1M"});
  CHECK(read_file(P + "/vm/private.img", MiB) == std::string(MiB, '\0'));
  CHECK(ok({"volume", "sparsify", P, "vm/private"}).find("freed") != std::string::npos);
  CHECK(allocated(P + "/vm/private.img") <= 2 * MiB);
  fails(1, {"volume", "discard", P, "vm/private", "31M", "2M"});  // beyond the end

  ok({"volume", "create", P, "vm/volatile", "--kind", "volatile", "--size", "4M"});
  // A running volume: refused, nothing removed, unless --force.
  ok({"volume", "start", P, "vm/private"});
  ok({"volume", "start", P, "vm/volatile"});
  ran refused = fails(1, {"volume", "remove", P, "vm/private"});
  CHECK(refused.err.find("running") != std::string::npos);
  CHECK(refused.err.find("--force") != std::string::npos);
  CHECK(fails(1, {"volume", "remove", P, "vm/volatile"}).err.find("--force") != std::string::npos);
  CHECK(exists(P + "/vm/private-dirty.img"));
  CHECK(ok_json({"volume", "list", P, "--json"}).size() == 2);
  ok({"volume", "remove", P, "vm/private", "--force"});
  ok({"volume", "stop", P, "vm/volatile"});
  ok({"volume", "remove", P, "vm/volatile"});
  CHECK(ok_json({"volume", "list", P, "--json"}).empty());
  CHECK(catalog_entry(P, "vm/private").empty());
  CHECK(tree(P) == std::vector<std::string>{".file-reflink-catalog", ".file-reflink-pool", ".file-reflink.lock"});
}

CLI_TEST("cli: pool adopt registers the volumes the Qubes OS driver left, which then work") {
  Fx fx;
  const std::string clean = pattern(4 * MiB, 31), rev3 = pattern(4 * MiB, 33), rev5 = pattern(4 * MiB, 35),
                    running = pattern(2 * MiB, 37);
  // The same files in a directory that is only that (no marker, no catalog:
  // the library takes a non-empty directory for a pool the driver made) and
  // in the fixture's pool (pool init made it).
  for (const std::string& D : {fx.top() + "/qubes", fx.dir()}) {
    INFO("pool " << D);
    write_file(D + "/vm1/private.img", clean);
    write_file(D + "/vm1/private.img.3@2024-01-02T03:04:05Z", rev3);
    write_file(D + "/vm1/private.img.5@2024-02-03T04:05:06Z", rev5);
    write_file(D + "/vm1/private-precache.img", clean);
    write_file(D + "/vm2/root-dirty.img", running);

    json adopted = ok_json({"pool", "adopt", D, "--json"});
    REQUIRE(adopted["registered"].size() == 2);
    CHECK(adopted["skipped"].empty());
    json priv = adopted["registered"][0], root = adopted["registered"][1];
    CHECK(priv["vid"] == "vm1/private");
    CHECK(priv["kind"] == "origin");
    CHECK(priv["size"] == 4 * MiB);
    CHECK(priv["state"] == "stopped");
    CHECK(priv["revisions"] == 2);
    CHECK(priv["revisions_to_keep"] == 2);  // the retention that kept its revisions (more than the pool's 1)
    CHECK(root["vid"] == "vm2/root");
    CHECK(root["state"] == "running");
    CHECK(root["revisions"] == 0);
    CHECK(root["size"] == 2 * MiB);
    CHECK(catalog_entry(D, "vm1/private")["save_on_stop"] == "1");
    CHECK(catalog_entry(D, "vm2/root")["revisions_to_keep"] == "-1");  // its running image is all it has

    // Twice: nothing more to register.
    json again = ok_json({"pool", "adopt", D, "--json"});
    CHECK(again["registered"].empty());
    CHECK(again["skipped"].empty());
    CHECK(ok({"pool", "adopt", D}).find("no volume to adopt") != std::string::npos);

    json list = ok_json({"volume", "list", D, "--json"});
    REQUIRE(list.size() == 2);
    CHECK(list[0]["vid"] == "vm1/private");
    CHECK(list[0]["state"] == "stopped");
    CHECK(list[0]["revisions"].size() == 2);
    CHECK(list[1]["vid"] == "vm2/root");
    CHECK(list[1]["state"] == "running");
    CHECK(list[1]["image"] == D + "/vm2/root-dirty.img");

    ok({"volume", "stop", D, "vm2/root"});
    CHECK_FALSE(exists(D + "/vm2/root-dirty.img"));
    CHECK(read_file(D + "/vm2/root.img") == running);
    CHECK(ok_json({"volume", "info", D, "vm2/root", "--json"})["state"] == "stopped");

    // A start and a stop commit revision 6, after the highest on disk, and
    // prune down to the 2 revisions it kept: the oldest, 3, goes.
    std::string image = ok({"volume", "start", D, "vm1/private"});
    REQUIRE(image == D + "/vm1/private-dirty.img\n");
    CHECK(read_file(D + "/vm1/private-dirty.img") == clean);
    write_at(D + "/vm1/private-dirty.img", 0, "written by the VM");
    ok({"volume", "stop", D, "vm1/private"});
    CHECK(read_file(D + "/vm1/private.img", 17) == "written by the VM");
    std::vector<std::string> revisions;
    for (auto& name : tree(D + "/vm1"))
      if (name.rfind("private.img.", 0) == 0) revisions.push_back(name);
    CHECK(revisions.size() == 2);
    CHECK_FALSE(exists(D + "/vm1/private.img.3@2024-01-02T03:04:05Z"));
    CHECK(exists(D + "/vm1/private.img.5@2024-02-03T04:05:06Z"));
    REQUIRE_FALSE(revisions.empty());
    CHECK(revisions.back().rfind("private.img.6@", 0) == 0);
    CHECK(read_file(D + "/vm1/" + revisions.back()) == clean);  // what the stop superseded
    json revs = ok_json({"volume", "revisions", D, "vm1/private", "--json"});
    CHECK(revs.size() == 2);
    REQUIRE_FALSE(revs.empty());
    CHECK(revs.front()["number"] == 5);
    CHECK(revs.front()["timestamp"] == "2024-02-03T04:05:06Z");
    CHECK(revs.back()["number"] == 6);

    ok({"volume", "revert", D, "vm1/private", "5"});
    CHECK(read_file(D + "/vm1/private.img") == rev5);
  }
}

CLI_TEST("cli: the volume file of an earlier version is converted into the catalog once") {
  Fx fx;
  const std::string& P = fx.dir();
  // The pool as an earlier version of the command left it: its marker, its
  // volume file, the images; no catalog.
  REQUIRE(::unlink((P + "/.file-reflink-catalog").c_str()) == 0);
  const std::string tpl = pattern(4 * MiB, 41), priv = pattern(2 * MiB, 43);
  write_file(P + "/tpl/root.img", tpl);
  write_file(P + "/vm/private.img", priv);
  json old = {{"about", "Volumes of this pool for the file-reflink command."},
              {"format", 1},
              {"pool", {{"revisions_to_keep", 3}, {"setup_check", fx.reflinks()}}},
              {"volumes",
               {{"tpl/root", {{"kind", "origin"}, {"size", "4M"}, {"rw", true}}},
                {"vm/root", {{"kind", "snapshot"}, {"size", 0}, {"rw", false}, {"source", "tpl/root"}}},
                {"vm/private", {{"kind", "origin"}, {"size", 2 * MiB}, {"rw", true}, {"revisions_to_keep", 2}}},
                {"vm/volatile", {{"kind", "volatile"}, {"size", "1M"}, {"rw", true}}}}}};
  const std::string old_text = old.dump(2) + "\n";
  write_file(P + "/.file-reflink-volumes.json", old_text);

  ran r = run({"volume", "list", P, "--json"});
  INFO("stderr: " << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.find("converted") != std::string::npos);
  CHECK_FALSE(exists(P + "/.file-reflink-volumes.json"));
  CHECK(read_file(P + "/.file-reflink-volumes.json.converted") == old_text);
  REQUIRE(exists(P + "/.file-reflink-catalog"));
  CHECK(catalog_entry(P, "vm/root")["source"] == "tpl/root");
  CHECK(catalog_entry(P, "vm/root")["rw"] == "0");
  CHECK(catalog_entry(P, "vm/private")["revisions_to_keep"] == "2");
  CHECK(catalog_entry(P, "tpl/root")["revisions_to_keep"] == "3");  // the pool's default, as the file had it
  CHECK(catalog_entry(P, "vm/volatile")["size"] == std::to_string(MiB));
  json list = json::parse(r.out);
  REQUIRE(list.size() == 4);
  CHECK(list[0]["vid"] == "tpl/root");
  CHECK(list[0]["size"] == 4 * MiB);
  CHECK(list[1]["vid"] == "vm/private");
  CHECK(list[1]["revisions_to_keep"] == 2);
  CHECK(list[2]["vid"] == "vm/root");
  CHECK(list[2]["kind"] == "snapshot");
  CHECK(list[2]["size"] == 4 * MiB);  // its source's
  CHECK(list[3]["kind"] == "volatile");
  json info = ok_json({"pool", "info", P, "--json"});
  CHECK(info["revisions_to_keep"] == 3);
  CHECK(info["setup_check"] == fx.reflinks());
  CHECK(info["catalog"] == P + "/.file-reflink-catalog");
  CHECK(info["volumes"] == 4);

  // Once: the next command finds nothing to convert, and the same volumes.
  std::string catalog = read_file(P + "/.file-reflink-catalog");
  ran second = run({"volume", "list", P, "--json"});
  CHECK(second.status == 0);
  CHECK(second.err.empty());
  CHECK(json::parse(second.out) == list);
  CHECK(read_file(P + "/.file-reflink-catalog") == catalog);

  // They work: the snapshot starts from its source's data, and a new volume
  // gets the converted pool default.
  std::string root = ok({"volume", "start", P, "vm/root"});
  REQUIRE(root == P + "/vm/root-dirty.img\n");
  CHECK(read_file(P + "/vm/root-dirty.img") == tpl);
  ok({"volume", "stop", P, "vm/root"});
  CHECK(ok({"volume", "export", P, "vm/private", "-"}) == priv);
  ok({"volume", "create", P, "vm2/private", "--size", "1M"});
  CHECK(ok_json({"volume", "info", P, "vm2/private", "--json"})["revisions_to_keep"] == 3);
}

CLI_TEST("cli: volume set changes a config, volume unkeep removes a pin") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "tpl/root", "--size", "2M"});
  ok({"volume", "create", P, "tpl2/root", "--size", "2M"});
  const std::string tpl2 = pattern(2 * MiB, 51);
  ok({"volume", "import", P, "tpl2/root", "-"}, tpl2);
  ok({"volume", "create", P, "vm/root", "--kind", "snapshot", "--source", "tpl/root"});
  ok({"volume", "create", P, "vm/private", "--size", "1M"});

  ok({"volume", "set", P, "vm/private", "revisions_to_keep", "5"});
  CHECK(catalog_entry(P, "vm/private")["revisions_to_keep"] == "5");
  CHECK(ok_json({"volume", "info", P, "vm/private", "--json"})["revisions_to_keep"] == 5);
  ok({"volume", "set", P, "vm/private", "rw", "false"});
  CHECK(catalog_entry(P, "vm/private")["rw"] == "0");
  CHECK(ok_json({"volume", "info", P, "vm/private", "--json"})["rw"] == false);
  CHECK(fails(1, {"volume", "resize", P, "vm/private", "2M"}).err.find("read-only") != std::string::npos);
  ok({"volume", "set", P, "vm/private", "rw", "yes"});
  CHECK(catalog_entry(P, "vm/private")["rw"] == "1");
  ok({"volume", "set", P, "vm/root", "source", "tpl2/root"});
  CHECK(catalog_entry(P, "vm/root")["source"] == "tpl2/root");
  CHECK(ok_json({"volume", "info", P, "vm/root", "--json"})["source"] == "tpl2/root");
  ok({"volume", "start", P, "vm/root"});
  CHECK(read_file(P + "/vm/root-dirty.img") == tpl2);  // it starts from its new source
  ok({"volume", "stop", P, "vm/root"});

  // Refused, and nothing changed.
  const std::string before = read_file(P + "/.file-reflink-catalog");
  fails(2, {"volume", "set", P, "vm/private", "size", "2M"});               // no such key
  fails(2, {"volume", "set", P, "vm/private", "revisions_to_keep", "-2"});  // below -1
  fails(2, {"volume", "set", P, "vm/private", "revisions_to_keep", "many"});
  fails(2, {"volume", "set", P, "vm/private", "rw", "maybe"});
  fails(2, {"volume", "set", P, "vm/root", "source", "../escape"});         // not a vid
  fails(2, {"volume", "set", P, "vm/root", "source", "none"});              // a snapshot needs one
  fails(2, {"volume", "set", P, "vm/private", "source", "tpl/root"});       // an origin has none
  fails(3, {"volume", "set", P, "vm/root", "source", "no/such"});
  fails(3, {"volume", "set", P, "no/such", "rw", "true"});
  ok({"volume", "start", P, "vm/private"});
  CHECK(fails(1, {"volume", "set", P, "vm/private", "rw", "0"}).err.find("running") != std::string::npos);
  ok({"volume", "set", P, "vm/private", "revisions_to_keep", "5"});  // the same value, while running
  CHECK(read_file(P + "/.file-reflink-catalog") == before);
  ok({"volume", "stop", P, "vm/private"});

  // A pin removed: its revision stays, as a plain revision.
  ok({"volume", "keep", P, "vm/private", "1", "before-update"});
  json revs = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  REQUIRE(revs.size() == 1);
  const std::string stamp = revs[0]["timestamp"];
  const std::string pin = P + "/vm/private.img.1@" + stamp + ".before-update.pin";
  CHECK(exists(pin));
  ok({"volume", "unkeep", P, "vm/private", "before-update"});
  CHECK_FALSE(exists(pin));
  CHECK(exists(P + "/vm/private.img.1@" + stamp));
  revs = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  REQUIRE(revs.size() == 1);
  CHECK(revs[0]["labels"].empty());
  fails(3, {"volume", "unkeep", P, "vm/private", "before-update"});
  fails(2, {"volume", "unkeep", P, "vm/private", "bad label"});
}

CLI_TEST("cli: --no-wait and --wait on a volume that another process holds") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/a", "--size", "1M"});
  ok({"volume", "create", P, "vm/b", "--size", "1M"});
  {
    HeldVolume held(P, "vm/a");
    auto t0 = std::chrono::steady_clock::now();
    ran busy = fails(4, {"volume", "start", P, "vm/a", "--no-wait"});
    double no_wait = seconds_since(t0);
    CHECK(busy.err.find("'vm/a'") != std::string::npos);
    CHECK(busy.err.find("busy") != std::string::npos);
    CHECK(no_wait < 0.25);

    t0 = std::chrono::steady_clock::now();
    ran waited = run({"--wait", "0.3", "volume", "start", P, "vm/a"});
    double wait = seconds_since(t0);
    INFO("stderr: " << waited.err);
    CHECK(waited.status == 4);
    // Said once as the wait begins, then the one error line.
    CHECK(waited.err.rfind("file-reflink: waiting for volume 'vm/a'", 0) == 0);
    CHECK(std::count(waited.err.begin(), waited.err.end(), '\n') == 2);
    CHECK(waited.err.find("is busy") != std::string::npos);
    CHECK(wait >= 0.3);
    CHECK(wait < 5);
    MESSAGE("--no-wait failed after " << no_wait << " s, --wait 0.3 after " << wait << " s");
    CHECK_FALSE(exists(P + "/vm/a-dirty.img"));

    // Another volume meanwhile: no wait at all.
    ok({"volume", "start", P, "vm/b", "--no-wait"});
    CHECK(exists(P + "/vm/b-dirty.img"));
    // A list shows what it can, the busy volume as such.
    ran list = run({"volume", "list", P, "--json", "--no-wait"});
    INFO("stderr: " << list.err);
    CHECK(list.status == 0);
    CHECK(list.err.find("'vm/a'") != std::string::npos);
    json l = json::parse(list.out);
    REQUIRE(l.size() == 2);
    CHECK(l[0]["state"] == "busy");
    CHECK(l[1]["state"] == "running");

    // Without either option, a command waits as long as it takes.
    Child start = spawn({"volume", "start", P, "vm/a"});
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(still_running(start));
    CHECK_FALSE(exists(P + "/vm/a-dirty.img"));
    held.release();
    ran started = finish(start);
    INFO("stderr: " << started.err);
    CHECK(started.status == 0);
    CHECK(started.out == P + "/vm/a-dirty.img\n");
  }
  ok({"volume", "stop", P, "vm/a", "--no-wait"});
  ok({"volume", "stop", P, "vm/b", "--no-wait"});
  CHECK_FALSE(exists(P + "/vm/a-dirty.img"));
}

CLI_TEST("cli: an export to a slow reader holds up no other volume") {
  Fx fx;
  const std::string& P = fx.dir();
  // Far more than a pipe holds: the export blocks until the reader reads.
  const std::string data = pattern(64 * MiB, 61);
  const std::string file = fx.top() + "/a.img";
  write_file(file, data);
  ok({"volume", "create", P, "vm/a", "--size", "64M"});
  ok({"volume", "import", P, "vm/a", file});
  ok({"volume", "create", P, "vm/b", "--size", "1M"});

  auto t0 = std::chrono::steady_clock::now();
  Child exporting = spawn({"volume", "export", P, "vm/a", "-"});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // it fills the pipe
  auto timed = [&](const std::vector<std::string>& args) {
    auto t = std::chrono::steady_clock::now();
    ok(args);
    return seconds_since(t);
  };
  double start = timed({"volume", "start", P, "vm/b", "--no-wait"});
  double stop = timed({"volume", "stop", P, "vm/b", "--no-wait"});
  double list = timed({"volume", "list", P, "--no-wait"});
  double info = timed({"volume", "info", P, "vm/a", "--no-wait"});
  MESSAGE("while the export waits for its reader: start " << start << " s, stop " << stop << " s, list " << list
                                                         << " s, info of the exported volume " << info << " s");
  CHECK(start < 1);
  CHECK(stop < 1);
  CHECK(list < 1);
  CHECK(info < 1);
  while (seconds_since(t0) < 2) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  CHECK(still_running(exporting));  // it was blocked on the pipe all along
  ran exported = finish(exporting);
  INFO("stderr: " << exported.err);
  CHECK(exported.status == 0);
  CHECK(exported.out.size() == data.size());
  CHECK(exported.out == data);
  CHECK_FALSE(exists(P + "/vm/b-dirty.img"));
}

// ---- bash completion -------------------------------------------------------------

#ifndef FILE_REFLINK_COMPLETION
#error "FILE_REFLINK_COMPLETION: the path of the bash completion script"
#endif

//! What the bash completion script offers when the command line is
//! `file-reflink WORDS` and the cursor ends the last word: COMPREPLY, set by
//! its function in a bash that read no startup file.
std::vector<std::string> completions(const std::vector<std::string>& words) {
  std::vector<std::string> args{"--norc", "-c",
                                "source \"$0\" || exit 9\n"
                                "COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1))\n"
                                "_file_reflink || exit 8\n"
                                "for w in \"${COMPREPLY[@]}\"; do printf '%s\\n' \"$w\"; done",
                                FILE_REFLINK_COMPLETION, FILE_REFLINK_COMMAND};
  args.insert(args.end(), words.begin(), words.end());
  ran r = finish(spawn(args, "/bin/bash"));
  INFO("completing: " << shown(words) << "\nstderr: " << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.err.empty());
  std::vector<std::string> out;
  std::istringstream in(r.out);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

std::vector<std::string> sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

bool offers(const std::vector<std::string>& offered, const std::string& word) {
  return std::find(offered.begin(), offered.end(), word) != offered.end();
}

CLI_TEST("cli: bash completion offers commands, options, volume ids and revisions") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "16M", "--revisions-to-keep", "3"});
  ok({"volume", "create", P, "vm/root", "--size", "16M"});
  ok({"volume", "create", P, "vm/snap", "--kind", "snapshot", "--source", "vm/root"});
  for (int i = 0; i < 2; ++i) {
    ok({"volume", "start", P, "vm/private"});
    ok({"volume", "stop", P, "vm/private"});
  }
  std::vector<std::string> numbers;
  for (auto& r : ok_json({"volume", "revisions", P, "vm/private", "--json"}))
    numbers.push_back(std::to_string(r["number"].get<int>()));
  REQUIRE(numbers.size() >= 2);
  ok({"volume", "keep", P, "vm/private", numbers[1], "golden"});

  // The commands and subcommands, from the command's own definition.
  CHECK(completions({""}) == std::vector<std::string>{"pool", "volume", "help"});
  CHECK(completions({"vol"}) == std::vector<std::string>{"volume"});
  CHECK(completions({"--quiet", "volume", "st"}) == std::vector<std::string>{"start", "stop"});
  CHECK(completions({"pool", ""}) == std::vector<std::string>{"init", "info", "du", "scan", "recover", "adopt"});
  CHECK(completions({"help", "volume", "im"}) == std::vector<std::string>{"import"});
  CHECK(completions({"volume", "frobnicate", ""}).empty());

  // Options: the command's own, and those of the top, accepted after it.
  auto options = completions({"volume", "create", P, "vm/x", "--"});
  for (const char* o : {"--size", "--kind", "--source", "--read-only", "--revisions-to-keep", "--quiet", "--wait"})
    CHECK_MESSAGE(offers(options, o), o);
  CHECK_FALSE(offers(options, "--force"));  // remove's, not create's
  CHECK(completions({"volume", "create", P, "vm/x", "--re"}) ==
        std::vector<std::string>{"--read-only", "--revisions-to-keep"});
  CHECK(completions({"volume", "create", P, "vm/x", "--kind", ""}) ==
        std::vector<std::string>{"origin", "volatile", "snapshot", "origin-snapshot"});

  // Volume ids of the pool the command line names, for an operand and for --source.
  CHECK(sorted(completions({"volume", "start", P, ""})) ==
        std::vector<std::string>{"vm/private", "vm/root", "vm/snap"});
  CHECK(completions({"--no-wait", "volume", "info", P, "vm/p"}) == std::vector<std::string>{"vm/private"});
  CHECK(completions({"volume", "create", P, "vm/new", "--source", "vm/r"}) == std::vector<std::string>{"vm/root"});

  // Revisions: numbers where a number is asked, labels too where a label is.
  std::vector<std::string> with_label = numbers;
  with_label.insert(with_label.begin() + 2, "golden");
  CHECK(completions({"volume", "revert", P, "vm/private", ""}) == with_label);
  CHECK(completions({"volume", "keep", P, "vm/private", ""}) == numbers);
  CHECK(completions({"volume", "unkeep", P, "vm/private", ""}) == std::vector<std::string>{"golden"});
  // send --since and changes FROM TO: revisions, labels, and the committed image.
  CHECK(completions({"volume", "send", P, "vm/private", "--since", ""}) == with_label);
  std::vector<std::string> images = with_label;
  images.insert(images.begin(), "committed");
  CHECK(completions({"volume", "changes", P, "vm/private", ""}) == images);
  CHECK(completions({"volume", "changes", P, "vm/private", numbers[0], "co"}) == std::vector<std::string>{"committed"});
  CHECK(completions({"volume", "set", P, "vm/private", "r"}) == std::vector<std::string>{"revisions_to_keep", "rw"});

  // The pool directory itself: directory names.
  CHECK(completions({"pool", "info", fx.top() + "/po"}) == std::vector<std::string>{P});

  // No pool there: nothing offered, nothing made.
  const std::string missing = fx.top() + "/no-pool";
  CHECK(completions({"volume", "start", missing, ""}).empty());
  CHECK_FALSE(exists(missing));
  // Completion reads; the pool is as it was.
  CHECK(sorted(completions({"volume", "remove", P, ""})).size() == 3);
  CHECK(ok_json({"volume", "list", P, "--json"}).size() == 3);
}

// ---- one vocabulary, in JSON everywhere -------------------------------------------

namespace {

//! Run with --json, and require the exit status `status` with exactly one
//! JSON error object on stderr (nothing else there, nothing on stdout).
json fails_json(int status, const std::vector<std::string>& args, const std::string& input = "") {
  ran r = run(args, input);
  INFO(shown(args) << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.status == status);
  CHECK(r.out.empty());
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  json j = json::parse(r.err, nullptr, false);
  REQUIRE_FALSE(j.is_discarded());
  REQUIRE(j.is_object());
  CHECK(j.size() == 1);
  const json& e = j["error"];
  REQUIRE(e.is_object());
  CHECK(e["code"].is_string());
  CHECK(e["exit_status"] == status);
  CHECK(e["message"].is_string());
  return e;
}

//! The subcommands a command group's --help lists ("pool" -> init, info...).
std::vector<std::string> subcommands_of(const std::string& group) {
  std::istringstream in(ok({group, "--help"}));
  std::vector<std::string> out;
  bool inside = false;
  for (std::string line; std::getline(in, line);) {
    if (line == "Subcommands:") {
      inside = true;
      continue;
    }
    if (!inside) continue;
    if (line.empty()) break;
    std::istringstream words(line);
    std::string name;
    words >> name;
    out.push_back(name);
  }
  return out;
}

//! The library's identifiers that an error message must never show.
const char* const library_identifiers[] = {
    "import_data", "setup_check", "save_on_stop", "snap_on_start", "keep_revision", "drop_revision",
    "unkeep_revision", "open_dir", "init_volume", "setup()", "stat_path", "export_end", "block_device",
    "(dirty)"};

//! "IN CATALOG" -> "in_catalog".
std::string key_of(std::string header) {
  for (char& c : header) c = c == ' ' ? '_' : static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return header;
}

//! The first line of a table, split at runs of two or more spaces.
std::vector<std::string> headers_of(const std::string& table) {
  std::string first = table.substr(0, table.find('\n'));
  std::vector<std::string> out;
  std::string cell;
  for (std::size_t i = 0; i <= first.size(); ++i) {
    bool gap = i == first.size() || (first[i] == ' ' && i + 1 < first.size() && first[i + 1] == ' ');
    if (gap) {
      if (!cell.empty()) out.push_back(cell);
      cell.clear();
      while (i < first.size() && first[i] == ' ') ++i;
      if (i < first.size()) cell += first[i];
    } else {
      cell += first[i];
    }
  }
  // A right-aligned first column starts with spaces: trim each cell.
  for (auto& c : out) {
    while (!c.empty() && c.front() == ' ') c.erase(c.begin());
    while (!c.empty() && c.back() == ' ') c.pop_back();
  }
  out.erase(std::remove(out.begin(), out.end(), std::string()), out.end());
  return out;
}

}  // namespace

CLI_TEST("cli: every command takes --json and prints what it did") {
  Fx fx;
  const std::string& P = fx.dir();
  const std::string file = fx.top() + "/data.img";
  write_file(file, pattern(2 * MiB, 5));
  const std::string fresh = fx.top() + "/fresh";
  const std::string qubes = fx.top() + "/qubes";
  write_file(qubes + "/vm1/private.img", pattern(MiB, 6));

  //! One step: the arguments (with --json), the keys its JSON object has.
  struct step {
    std::string command;
    std::vector<std::string> args;
    std::vector<std::string> keys;
    bool array = false;  //!< a list: an array of objects with `keys`
  };
  const std::vector<step> steps = {
      {"pool init", {"pool", "init", fresh, "--no-setup-check"}, {"pool", "directory", "reflinks", "revisions_to_keep", "setup_check", "catalog"}},
      {"pool info", {"pool", "info", P}, {"pool", "directory", "filesystem", "reflinks", "revisions_to_keep", "setup_check", "catalog", "volumes"}},
      {"volume create", {"volume", "create", P, "vm/private", "--size", "4M"}, {"vid", "kind", "size", "rw", "source", "revisions_to_keep", "state"}},
      {"volume list", {"volume", "list", P}, {"vid", "kind", "size", "state", "revisions", "source"}, true},
      {"volume start", {"volume", "start", P, "vm/private"}, {"vid", "image", "read_only", "kind", "size", "state"}},
      {"volume info", {"volume", "info", P, "vm/private"}, {"vid", "kind", "size", "state", "image", "revisions", "space"}},
      {"volume stop", {"volume", "stop", P, "vm/private"}, {"vid", "committed", "state", "revisions_created", "revisions_pruned"}},
      {"volume revisions", {"volume", "revisions", P, "vm/private"}, {"number", "timestamp", "labels", "allocated", "exclusive", "shared"}, true},
      {"volume keep", {"volume", "keep", P, "vm/private", "1", "good"}, {"vid", "revision", "label"}},
      {"volume unkeep", {"volume", "unkeep", P, "vm/private", "good"}, {"vid", "label"}},
      {"volume revert", {"volume", "revert", P, "vm/private", "1"}, {"vid", "committed_revision", "revisions_created", "revisions_pruned"}},
      {"volume drop", {"volume", "drop", P, "vm/private", "2"}, {"vid", "revisions_created", "revisions_pruned"}},
      {"volume set", {"volume", "set", P, "vm/private", "revisions_to_keep", "2"}, {"vid", "key", "value"}},
      {"volume resize", {"volume", "resize", P, "vm/private", "8M"}, {"vid", "previous_size", "size"}},
      {"volume import", {"volume", "import", P, "vm/private", file}, {"vid", "file", "size", "revisions_created", "revisions_pruned"}},
      {"volume export", {"volume", "export", P, "vm/private", fx.top() + "/out.img"}, {"vid", "file", "size"}},
      {"volume send", {"volume", "send", P, "vm/private", fx.top() + "/out.stream"}, {"vid", "file", "incremental", "base", "size", "bytes", "data_bytes", "hole_bytes", "records"}},
      {"volume receive", {"volume", "receive", P, "vm/private", fx.top() + "/out.stream"}, {"vid", "file", "created", "incremental", "base", "size", "data_bytes", "hole_bytes", "records", "revisions_created", "revisions_pruned"}},
      {"volume changes", {"volume", "changes", P, "vm/private", "committed"}, {"vid", "from", "to", "method", "ranges", "bytes"}},
      {"volume discard", {"volume", "discard", P, "vm/private", "0", "1M"}, {"vid", "offset", "length"}},
      {"volume sparsify", {"volume", "sparsify", P, "vm/private"}, {"vid", "freed"}},
      {"pool du", {"pool", "du", P}, {"volumes", "total", "filesystem"}},
      {"pool scan", {"pool", "scan", P}, {"volumes", "foreign"}},
      {"pool recover", {"pool", "recover", P}, {"removed", "running", "stale_precache", "busy", "foreign"}},
      {"pool adopt", {"pool", "adopt", qubes}, {"registered", "skipped"}},
      {"volume remove", {"volume", "remove", P, "vm/private"}, {"vid", "removed", "forced"}},
  };

  // Every command --help lists has a step: a new command without --json
  // output fails here.
  for (const std::string group : {"pool", "volume"})
    for (const std::string& name : subcommands_of(group)) {
      const std::string command = group + " " + name;
      INFO("command " << command);
      CHECK(std::any_of(steps.begin(), steps.end(), [&](const step& s) { return s.command == command; }));
    }

  for (const step& s : steps) {
    for (bool before : {false, true}) {
      if (before && s.command != "pool info" && s.command != "volume list") continue;  // state-changing: once
      std::vector<std::string> args = s.args;
      if (before)
        args.insert(args.begin(), "--json");
      else
        args.push_back("--json");
      json j = ok_json(args);
      INFO(shown(args) << "\n" << j.dump(2));
      CHECK(j.is_array() == s.array);
      if (s.array) {
        REQUIRE_FALSE(j.empty());
        for (auto& key : s.keys) CHECK(j[0].contains(key));
      } else {
        REQUIRE(j.is_object());
        for (auto& key : s.keys) CHECK(j.contains(key));
      }
      if (s.command == "volume start") {
        CHECK(j["image"] == P + "/vm/private-dirty.img");
        CHECK(j["read_only"] == false);
        CHECK(j["state"] == "running");
        CHECK(exists(P + "/vm/private-dirty.img"));
      }
      if (s.command == "volume stop") CHECK(j["revisions_created"] == json::array({1}));
      if (s.command == "volume revert") CHECK(j["committed_revision"] == 1);
      if (s.command == "volume import") CHECK(j["size"] == 2 * MiB);
      if (s.command == "volume remove") CHECK_FALSE(exists(P + "/vm/private.img"));
    }
  }
  CHECK(read_file(fx.top() + "/out.img") == pattern(2 * MiB, 5));

  // An export to standard output: the data there, the JSON result on stderr.
  ok({"volume", "create", P, "vm/b", "--size", "1M"});
  ran r = run({"volume", "export", P, "vm/b", "-", "--json"});
  REQUIRE(r.status == 0);
  CHECK(r.out == std::string(MiB, '\0'));
  json e = json::parse(r.err, nullptr, false);
  REQUIRE_FALSE(e.is_discarded());
  CHECK(e["size"] == MiB);
  CHECK(e["file"] == "-");
}

CLI_TEST("cli: with --json an error is one JSON object on stderr") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "4M"});
  json e = fails_json(2, {"volume", "info", P, "../escape", "--json"});
  CHECK(e["code"] == "invalid_vid");
  e = fails_json(3, {"--json", "volume", "info", P, "vm/none"});
  CHECK(e["code"] == "volume_not_found");
  CHECK(e["vid"] == "vm/none");
  CHECK(e["path"] == P);
  CHECK(e["operation"] == "volume info");
  CHECK(e["message"].get<std::string>().find("vm/none") != std::string::npos);
  e = fails_json(3, {"volume", "revert", P, "vm/private", "7", "--json"});
  CHECK(e["code"] == "revision_not_found");
  CHECK(e["operation"] == "volume revert");
  const std::string not_pool = fx.top() + "/not-a-pool";
  write_file(not_pool + "/hosts", "127.0.0.1 localhost\n");
  e = fails_json(3, {"volume", "list", not_pool, "--json"});
  CHECK(e["code"] == "not_a_pool");
  CHECK(e["path"] == not_pool);
  e = fails_json(2, {"volume", "resize", P, "vm/private", "lots", "--json"});
  CHECK(e["code"] == "usage");
  e = fails_json(2, {"volume", "frobnicate", P, "--json"});  // the arguments themselves
  CHECK(e["code"] == "usage");
  ok({"volume", "start", P, "vm/private"});
  e = fails_json(1, {"volume", "import", P, "vm/private", "-", "--json"}, "x");
  CHECK(e["code"] == "volume_running");
  CHECK(e["message"].get<std::string>().find("stop it first") != std::string::npos);
}

CLI_TEST("cli: table headers are the JSON keys, and the values the same words") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "4M"});
  ok({"volume", "start", P, "vm/private"});
  ok({"volume", "stop", P, "vm/private"});
  ok({"volume", "start", P, "vm/private"});
  struct listing {
    std::vector<std::string> args;
    std::function<json(const json&)> rows;  //!< the JSON objects the table's rows show
  };
  for (const listing& l : std::vector<listing>{
           {{"volume", "list", P}, [](const json& j) { return j; }},
           {{"volume", "revisions", P, "vm/private"}, [](const json& j) { return j; }},
           {{"pool", "scan", P}, [](const json& j) { return j["volumes"]; }},
       }) {
    std::string text = ok(l.args);
    std::vector<std::string> args = l.args;
    args.push_back("--json");
    json rows = l.rows(ok_json(args));
    REQUIRE_FALSE(rows.empty());
    INFO(text << "\n" << rows.dump(2));
    for (const std::string& h : headers_of(text)) CHECK(rows[0].contains(key_of(h)));
  }
  // The state is one word in both: running.
  CHECK(ok_json({"volume", "list", P, "--json"})[0]["state"] == "running");
  CHECK(ok({"volume", "list", P}).find(" running") != std::string::npos);
  // The info fields are the JSON keys too.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"pool", "info", P}, std::vector<std::string>{"volume", "info", P, "vm/private"}}) {
    std::vector<std::string> with_json = args;
    with_json.push_back("--json");
    json info = ok_json(with_json);
    std::istringstream in(ok(args));
    for (std::string line; std::getline(in, line);) {
      std::string key = line.substr(0, line.find("  "));
      INFO(line);
      CHECK(info.contains(key_of(key)));
    }
  }
  // What pool adopt registered: two pools as the Qubes driver leaves them,
  // one adopted for the table, one for the JSON.
  std::vector<std::string> headers;
  json registered;
  for (const std::string name : {"text", "json"}) {
    const std::string d = fx.top() + "/qubes-" + name;
    write_file(d + "/vm1/private.img", pattern(MiB, 4));
    if (name == "text") {
      std::string text = ok({"pool", "adopt", d});
      REQUIRE(text.find('\n') != std::string::npos);
      headers = headers_of(text.substr(text.find('\n') + 1));  // after "adopted into the catalog:"
    } else {
      registered = ok_json({"pool", "adopt", d, "--json"})["registered"];
    }
  }
  REQUIRE(registered.size() == 1);
  REQUIRE(headers.size() == 7);
  for (const std::string& h : headers) CHECK(registered[0].contains(key_of(h)));
}

CLI_TEST("cli: errors speak the command's words, not the library's") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "4M"});
  ok({"volume", "create", P, "vm/root", "--kind", "snapshot", "--source", "vm/private"});
  ok({"volume", "start", P, "vm/private"});
  const std::string file = fx.top() + "/data";
  write_file(file, "data");
  write_file(fx.top() + "/passwd", "root:x:0:0::/root:/bin/sh\n");
  std::vector<std::pair<int, std::vector<std::string>>> failures = {
      {1, {"volume", "import", P, "vm/private", file}},
      {1, {"volume", "import", P, "vm/root", file}},
      {1, {"volume", "export", P, "vm/root", fx.top() + "/out"}},
      {1, {"volume", "sparsify", P, "vm/root"}},
      {3, {"volume", "keep", P, "vm/private", "9", "label"}},
      {3, {"volume", "drop", P, "vm/private", "label"}},
      {3, {"volume", "unkeep", P, "vm/private", "label"}},
      {1, {"volume", "revert", P, "vm/private"}},
      {1, {"volume", "remove", P, "vm/private"}},
      {2, {"pool", "info", fx.top() + "/passwd"}},
      {3, {"pool", "info", fx.top() + "/none"}},
  };
  for (auto& [status, args] : failures) {
    for (bool as_json : {false, true}) {
      std::vector<std::string> a = args;
      if (as_json) a.push_back("--json");
      std::string message;
      if (as_json) {
        json e = fails_json(status, a);
        message = e["message"].get<std::string>();
      } else {
        message = fails(status, a).err;
        // The command's words first: "volume import: ..." or, naming the
        // volume, "volume import 'vm/a': ...".
        const std::string command = "file-reflink: " + args[0] + " " + args[1];
        CHECK((message.rfind(command + ": ", 0) == 0 || message.rfind(command + " '", 0) == 0));
      }
      INFO(message);
      for (const char* id : library_identifiers) CHECK(message.find(id) == std::string::npos);
      if (args.size() > 3 && args[0] == "volume") CHECK(message.find(args[3]) != std::string::npos);  // the vid
    }
  }
  // A pool without reflinks is refused naming the command's flag.
  if (!fx.reflinks()) {
    std::string dir = fx.top() + "/other";
    ran r = fails(1, {"pool", "init", dir});
    CHECK(r.err.find("--no-setup-check") != std::string::npos);
    for (const char* id : library_identifiers) CHECK(r.err.find(id) == std::string::npos);
  }
}

CLI_TEST("cli: a directory that is not a pool is refused, and left as it was") {
  Fx fx;
  const std::string etc = fx.top() + "/etc";
  write_file(etc + "/hosts", "127.0.0.1 localhost\n");
  write_file(etc + "/ssh/sshd_config", "PermitRootLogin no\n");
  const std::string a_file = etc + "/hosts";
  const std::string missing = fx.top() + "/missing";
  std::vector<std::string> before = tree(etc);
  const std::vector<std::vector<std::string>> commands = {
      {"pool", "info"}, {"pool", "du"}, {"pool", "scan"}, {"pool", "recover"}, {"volume", "list"}};
  for (auto& c : commands) {
    std::vector<std::string> a = c;
    a.push_back(etc);
    CHECK(fails(3, a).err.find("is not a pool (pool init makes one)") != std::string::npos);
    a.back() = a_file;
    CHECK(fails(2, a).err.find("not a directory") != std::string::npos);
    a.back() = missing;
    fails(3, a);
  }
  CHECK(fails(3, {"volume", "create", etc, "vm/x", "--size", "1M"}).err.find("is not a pool") != std::string::npos);
  fails(3, {"volume", "info", etc, "vm/x"});
  fails(2, {"volume", "create", a_file, "vm/x", "--size", "1M"});
  fails(3, {"volume", "create", missing, "vm/x", "--size", "1M"});
  CHECK(tree(etc) == before);
  CHECK_FALSE(exists(missing));

  // A pool the Qubes driver made (no marker, no catalog) is a pool.
  const std::string qubes = fx.top() + "/qubes";
  write_file(qubes + "/appvms/work/private.img", pattern(MiB, 3));
  json scan = ok_json({"pool", "scan", qubes, "--json"});
  REQUIRE(scan["volumes"].size() == 1);
  CHECK(scan["volumes"][0]["vid"] == "appvms/work/private");
  CHECK(scan["volumes"][0]["committed_image"] == true);

  // The directory above a pool holds that pool's volume files: they make it
  // no pool of its own, and nothing is written there.
  const std::string above = fx.top() + "/above";
  write_file(above + "/inner/.file-reflink-pool", "");
  write_file(above + "/inner/appvms/work/private.img", pattern(MiB, 4));
  const std::vector<std::string> above_before = tree(above);
  CHECK(fails(3, {"pool", "info", above}).err.find("is not a pool") != std::string::npos);
  fails(3, {"volume", "create", above, "vm/x", "--size", "1M"});
  CHECK(tree(above) == above_before);
  CHECK(ok_json({"pool", "scan", above + "/inner", "--json"})["volumes"].size() == 1);
}

CLI_TEST("cli: stop, revert and import say which revisions they made and pruned") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "4M", "--revisions-to-keep", "2"});
  for (int i = 0; i < 3; ++i) {
    ok({"volume", "start", P, "vm/private"});
    std::string text = ok({"volume", "stop", P, "vm/private"});
    INFO(text);
    CHECK(text.find("revision " + std::to_string(i + 1) + " made") != std::string::npos);
    if (i == 2)
      CHECK(text.find("revision 1 pruned") != std::string::npos);
    else
      CHECK(text.find("pruned") == std::string::npos);
  }
  // Revisions 2 and 3 are kept; a revert to 2 makes a revision of the committed image.
  json revs = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  REQUIRE(revs.size() == 2);
  json j = ok_json({"volume", "revert", P, "vm/private", "2", "--json"});
  CHECK(j["committed_revision"] == 2);
  REQUIRE(j["revisions_created"].size() == 1);
  const std::uint64_t made = j["revisions_created"][0];
  json after = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  std::vector<std::uint64_t> numbers;
  for (auto& r : after) numbers.push_back(r["number"]);
  CHECK(std::find(numbers.begin(), numbers.end(), made) != numbers.end());
  for (auto& pruned : j["revisions_pruned"])
    CHECK(std::find(numbers.begin(), numbers.end(), pruned.get<std::uint64_t>()) == numbers.end());
  std::string text = ok({"volume", "revert", P, "vm/private"});
  CHECK(text.find("vm/private: revision ") == 0);
  CHECK(text.find("is the committed image") != std::string::npos);

  // A volume that keeps no data: the image is discarded, no revision made.
  ok({"volume", "create", P, "vm/volatile", "--kind", "volatile", "--size", "1M"});
  ok({"volume", "start", P, "vm/volatile"});
  j = ok_json({"volume", "stop", P, "vm/volatile", "--json"});
  CHECK(j["committed"] == false);
  CHECK(j["revisions_created"].empty());

  const std::string file = fx.top() + "/data";
  write_file(file, pattern(MiB, 1));
  j = ok_json({"volume", "import", P, "vm/private", file, "--json"});
  CHECK(j["revisions_created"].size() == 1);
}

CLI_TEST("cli: pool du adds up: every byte of a volume's line is in a file line under it") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "tpl/root", "--size", "8M"});
  std::string img = ok({"volume", "start", P, "tpl/root"});
  img.pop_back();
  write_at(img, 0, pattern(4 * MiB, 2));
  ok({"volume", "stop", P, "tpl/root"});
  ok({"volume", "create", P, "vm/root", "--kind", "snapshot", "--source", "tpl/root"});
  ok({"volume", "start", P, "vm/root"});  // its own committed image: a hard link to its source's

  json du = ok_json({"pool", "du", P, "--json"});
  bool hard_link_listed = false;
  for (auto& v : du["volumes"]) {
    INFO(v.dump(2));
    std::uint64_t files = 0;
    for (auto& f : v["files"]) {
      files += f["allocated"].get<std::uint64_t>();
      CHECK(f["allocated"] == f["exclusive"].get<std::uint64_t>() + f["shared"].get<std::uint64_t>());
      if (v["vid"] == "vm/root" && f["hard_link"] == true) {
        hard_link_listed = true;
        CHECK(f["file"] == "vm/root.img");
        CHECK(f["kind"] == "committed image");
      }
    }
    // The files overlap where they share: their sum covers the volume.
    CHECK(v["allocated"].get<std::uint64_t>() <= files);
    if (v["vid"] == "vm/root") CHECK(v["allocated"].get<std::uint64_t>() >= 4 * MiB);
  }
  CHECK(hard_link_listed);
  std::string text = ok({"pool", "du", P});
  CHECK(text.find("committed image (hard link)") != std::string::npos);
}

// ---- safety: refusals that keep an operator from losing data -----------------------

namespace {

//! The size of the filesystem that holds `dir`.
std::uint64_t filesystem_size(const std::string& dir) {
  struct statvfs fs;
  REQUIRE(::statvfs(dir.c_str(), &fs) == 0);
  return static_cast<std::uint64_t>(fs.f_blocks) * fs.f_frsize;
}

std::uint64_t volume_size(const std::string& pool, const std::string& vid) {
  return ok_json({"volume", "info", pool, vid, "--json"})["size"].get<std::uint64_t>();
}

std::size_t revision_count(const std::string& pool, const std::string& vid) {
  return ok_json({"volume", "revisions", pool, vid, "--json"}).size();
}

//! Feeds `bytes` to the child's standard input as a slow writer does, in
//! 256 KiB pieces 5 ms apart, sends it `sig` once `delay` has passed (while
//! feeding, or after), and closes its input once all of it is written.
void feed_slowly_and_signal(Child& c, const std::string& bytes, std::chrono::milliseconds delay, int sig) {
  const auto t0 = std::chrono::steady_clock::now();
  bool sent = false;
  std::size_t off = 0;
  while (off < bytes.size()) {
    if (!sent && std::chrono::steady_clock::now() - t0 >= delay) {
      REQUIRE(::kill(c.pid, sig) == 0);
      sent = true;
    }
    ssize_t n = ::write(c.in, bytes.data() + off, std::min<std::size_t>(256 * 1024, bytes.size() - off));
    if (n <= 0) break;  // it is gone
    off += static_cast<std::size_t>(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (off == bytes.size()) {
    ::close(c.in);  // the end of the input
    c.in = -1;
  }
  while (!sent && std::chrono::steady_clock::now() - t0 < delay)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (!sent) REQUIRE(::kill(c.pid, sig) == 0);
}

//! `runs` runs of `args` followed by a new FILE in `out_dir` (named
//! `prefix` + the run's number + `suffix`), each sent SIGINT, SIGTERM or
//! SIGHUP in turn after 0-60 ms. Each ends with exit 0 and FILE holding
//! `expected`, or with 128 + N and no FILE; nothing is left beside FILE,
//! and the files of `pool` do not change. Returns how many ran to the end.
std::size_t signal_runs_to_file(const std::vector<std::string>& args, const std::string& out_dir,
                                const std::string& prefix, const std::string& suffix, int runs,
                                const std::string& expected, const std::string& pool, std::mt19937& rng) {
  const int signals[] = {SIGINT, SIGTERM, SIGHUP};
  stdfs::create_directories(out_dir);
  const std::vector<std::string> files = tree(pool);
  std::vector<std::string> complete;
  for (int i = 0; i < runs; ++i) {
    const int sig = signals[i % 3];
    const std::string name = prefix + std::to_string(i) + suffix;
    std::vector<std::string> argv = args;
    argv.push_back(out_dir + "/" + name);
    Child c = spawn(argv);
    std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 60000)(rng)));
    ::kill(c.pid, sig);
    ran r = finish(c);
    INFO(args[1] << " to a file, signal " << sig << "; stderr: " << r.err);
    if (r.status == 0) {
      CHECK(read_file(out_dir + "/" + name) == expected);
      complete.push_back(name);
    } else {
      CHECK(r.status == 128 + sig);
    }
    CHECK(tree(out_dir) == complete);  // no partial FILE, no temporary beside it
    CHECK(tree(pool) == files);
  }
  return complete.size();
}

//! Like `spawn`, with standard input read from `file` (`< file` in a shell).
Child spawn_with_input_file(const std::vector<std::string>& args, const std::string& file) {
  int out[2], err[2];
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  int in = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  REQUIRE(in >= 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in, 0), ::dup2(out[1], 1), ::dup2(err[1], 2);
    std::vector<char*> argv{const_cast<char*>(FILE_REFLINK_COMMAND)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(in), ::close(out[1]), ::close(err[1]);
  return {pid, -1, out[0], err[0]};
}

}  // namespace

CLI_TEST("cli: resize refuses more than the filesystem's size without --force") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "64M"});
  const std::uint64_t fs = filesystem_size(P);
  const std::string too_big = std::to_string(fs + 1024 * MiB);
  auto before = catalog_entry(P, "vm/private");
  ran r = fails(1, {"volume", "resize", P, "vm/private", too_big});
  CHECK(r.err.find("filesystem's size") != std::string::npos);
  CHECK(r.err.find(std::to_string(fs) + " bytes") != std::string::npos);
  CHECK(r.err.find("--force") != std::string::npos);
  CHECK(volume_size(P, "vm/private") == 64 * MiB);
  CHECK(catalog_entry(P, "vm/private") == before);
  // A size the filesystem can hold needs nothing; --force takes the other.
  ok({"volume", "resize", P, "vm/private", "128M"});
  CHECK(volume_size(P, "vm/private") == 128 * MiB);
  ok({"volume", "resize", P, "vm/private", too_big, "--force"});
  CHECK(volume_size(P, "vm/private") == fs + 1024 * MiB);
}

CLI_TEST("cli: resize --shrink makes a stopped volume smaller, volume revert undoes it") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "64M"});
  const std::string head = pattern(MiB, 70), tail = pattern(MiB, 71);
  std::string img = ok({"volume", "start", P, "vm/private"});
  img.pop_back();
  write_at(img, 0, head);
  write_at(img, 48 * MiB, tail);
  ok({"volume", "stop", P, "vm/private"});
  const std::size_t revs = revision_count(P, "vm/private");

  // Without --shrink: today's refusal, naming the flag.
  ran r = fails(1, {"volume", "resize", P, "vm/private", "32M"});
  CHECK(r.err.find("--shrink") != std::string::npos);
  CHECK(volume_size(P, "vm/private") == 64 * MiB);
  // Not while running.
  ok({"volume", "start", P, "vm/private"});
  fails(1, {"volume", "resize", P, "vm/private", "32M", "--shrink"});
  CHECK(volume_size(P, "vm/private") == 64 * MiB);
  ok({"volume", "stop", P, "vm/private"});
  const std::size_t revs_stopped = revision_count(P, "vm/private");
  CHECK(revs_stopped >= revs);

  ok({"volume", "resize", P, "vm/private", "32M", "--shrink"});
  CHECK(volume_size(P, "vm/private") == 32 * MiB);
  struct stat st;
  REQUIRE(::stat((P + "/vm/private.img").c_str(), &st) == 0);
  CHECK(static_cast<std::uint64_t>(st.st_size) == 32 * MiB);
  CHECK(read_file(P + "/vm/private.img", head.size()) == head);
  CHECK(revision_count(P, "vm/private") == revs_stopped + 1);
  CHECK(catalog_entry(P, "vm/private")["size"] == std::to_string(32 * MiB));

  ok({"volume", "revert", P, "vm/private"});
  CHECK(volume_size(P, "vm/private") == 64 * MiB);
  std::string back = read_file(P + "/vm/private.img");
  CHECK(back.substr(0, head.size()) == head);
  CHECK(back.substr(48 * MiB, tail.size()) == tail);
}

CLI_TEST("cli: an import from a pipe refuses empty or short input unless --allow-short") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "8M"});
  const std::string data = pattern(8 * MiB, 72);
  ok({"volume", "import", P, "vm/private", "-"}, data);
  const std::vector<std::string> files = tree(P);
  const json revs = ok_json({"volume", "revisions", P, "vm/private", "--json"});
  auto unchanged = [&] {
    CHECK(tree(P) == files);  // no import file, no temporary
    CHECK(ok_json({"volume", "revisions", P, "vm/private", "--json"}) == revs);
    CHECK(read_file(P + "/vm/private.img") == data);
  };

  ran r = fails(1, {"volume", "import", P, "vm/private", "-"}, "");
  CHECK(r.err.find("no data") != std::string::npos);
  CHECK(r.err.find("--allow-short") != std::string::npos);
  unchanged();
  const std::string part = pattern(MiB, 73);
  r = fails(1, {"volume", "import", P, "vm/private", "-", "--size", "4M"}, part);
  CHECK(r.err.find(std::to_string(part.size()) + " of the " + std::to_string(4 * MiB)) != std::string::npos);
  CHECK(r.err.find("--allow-short") != std::string::npos);
  unchanged();

  // Without --size, a pipe may end before the volume's size.
  ok({"volume", "import", P, "vm/private", "-"}, part);
  CHECK(read_file(P + "/vm/private.img") == part + std::string(7 * MiB, '\0'));
  ok({"volume", "import", P, "vm/private", "-", "--size", "4M", "--allow-short"}, part);
  CHECK(read_file(P + "/vm/private.img") == part + std::string(3 * MiB, '\0'));
  CHECK(volume_size(P, "vm/private") == 4 * MiB);
  ok({"volume", "import", P, "vm/private", "-", "--allow-short"});
  CHECK(read_file(P + "/vm/private.img") == std::string(4 * MiB, '\0'));
}

CLI_TEST("cli: export refuses to overwrite an existing FILE without --force") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "4M"});
  const std::string data = pattern(4 * MiB, 74);
  ok({"volume", "import", P, "vm/private", "-"}, data);
  const std::string out_dir = fx.top() + "/out";
  const std::string file = out_dir + "/backup.img";
  write_file(file, "precious");
  ran r = fails(1, {"volume", "export", P, "vm/private", file});
  CHECK(r.err.find(file) != std::string::npos);
  CHECK(r.err.find("--force") != std::string::npos);
  CHECK(read_file(file) == "precious");
  CHECK(tree(out_dir) == std::vector<std::string>{"backup.img"});
  ok({"volume", "export", P, "vm/private", file, "--force"});
  CHECK(read_file(file) == data);
  ok({"volume", "export", P, "vm/private", out_dir + "/new.img"});
  CHECK(read_file(out_dir + "/new.img") == data);
  CHECK(ok({"volume", "export", P, "vm/private", "-"}) == data);
  CHECK(tree(out_dir) == (std::vector<std::string>{"backup.img", "new.img"}));
}

CLI_TEST("cli: an import of a regular file (named or on standard input) is the library's copy: a clone where it can") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "4M", "--revisions-to-keep", "3"});
  const std::size_t revs = revision_count(P, "vm/private");
  // Beside the pool, on its filesystem: data, a hole, data.
  const std::string file = fx.top() + "/source.img";
  write_file(file, pattern(MiB, 75));
  write_at(file, 12 * MiB, pattern(MiB, 76));
  const std::string expected = read_file(file);
  ran r = run({"volume", "import", P, "vm/private", file, "--verbose"});
  INFO("stderr: " << r.err);
  REQUIRE(r.status == 0);
  const std::string method = fx.reflinks() ? "by clone" : "by copy_file_range";
  CHECK(r.err.find(method) != std::string::npos);
  CHECK(read_file(P + "/vm/private.img") == expected);
  CHECK(allocated(P + "/vm/private.img") <= allocated(file));
  CHECK(volume_size(P, "vm/private") == expected.size());
  CHECK(revision_count(P, "vm/private") == revs + 1);

  write_at(file, 0, pattern(MiB, 77));
  const std::string second = read_file(file);
  ran s = finish(spawn_with_input_file({"volume", "import", P, "vm/private", "-", "--verbose"}, file));
  INFO("stderr: " << s.err);
  REQUIRE(s.status == 0);
  CHECK(s.err.find(method) != std::string::npos);
  CHECK(read_file(P + "/vm/private.img") == second);
  CHECK(revision_count(P, "vm/private") == revs + 2);
  CHECK_FALSE(exists(P + "/vm/private-import.img"));
}

CLI_TEST("cli: SIGINT SIGTERM and SIGHUP end an import or an export with 128 + N and leave nothing behind") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "16M", "--revisions-to-keep", "20"});
  const std::string data = pattern(16 * MiB, 78);
  ok({"volume", "import", P, "vm/private", "-"}, data);
  ::signal(SIGPIPE, SIG_IGN);
  std::mt19937 rng(std::random_device{}());
  const int signals[] = {SIGINT, SIGTERM, SIGHUP};
  int ended_by_signal = 0;
  for (int i = 0; i < 9; ++i) {
    const int sig = signals[i % 3];
    const std::vector<std::string> files = tree(P);
    const std::size_t revs = revision_count(P, "vm/private");
    const std::string committed = read_file(P + "/vm/private.img");
    // An import fed slowly: 16 MiB in 256 KiB pieces, a few ms apart.
    const std::string next = pattern(16 * MiB, 79 + i);
    Child c = spawn({"volume", "import", P, "vm/private", "-", "--size", "16M"});
    // Feeding takes at least 320 ms: every other signal comes while it
    // goes on, the others at any moment, some after the commit (the end of
    // the input commits).
    const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, i % 2 ? 1000 : 250)(rng));
    feed_slowly_and_signal(c, next, delay, sig);
    ran r = finish(c);
    INFO("import, signal " << sig << " after " << delay.count() << " ms; stderr: " << r.err);
    CHECK_FALSE(exists(P + "/vm/private-import.img"));
    if (r.status == 128 + sig) {
      // Cancelled: the volume is exactly as before.
      ++ended_by_signal;
      CHECK(tree(P) == files);
      CHECK(revision_count(P, "vm/private") == revs);
      CHECK(read_file(P + "/vm/private.img") == committed);
    } else {
      // The signal came once the commit had begun: it finished.
      CHECK(r.status == 0);
      CHECK(revision_count(P, "vm/private") == revs + 1);
      CHECK(read_file(P + "/vm/private.img") == next);
    }
  }
  MESSAGE("imports: " << ended_by_signal << " of 9 ended by the signal, the others committed first");
  CHECK(ended_by_signal > 0);

  ended_by_signal = 0;
  const std::vector<std::string> files = tree(P);
  const std::size_t revs = revision_count(P, "vm/private");
  const std::string committed = read_file(P + "/vm/private.img");
  for (int i = 0; i < 9; ++i) {
    const int sig = signals[i % 3];
    // An export read slowly: 64 KiB every 2 ms.
    Child c = spawn({"volume", "export", P, "vm/private", "-"});
    ::close(c.in);
    c.in = -1;
    const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 400)(rng));
    const auto t0 = std::chrono::steady_clock::now();
    std::string got;
    char buf[65536];
    while (std::chrono::steady_clock::now() - t0 < delay) {
      ssize_t n = ::read(c.out, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<std::size_t>(n));
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    REQUIRE(::kill(c.pid, sig) == 0);
    ran r = finish(c);
    got += r.out;
    INFO("export, signal " << sig << " after " << delay.count() << " ms; stderr: " << r.err);
    if (r.status == 128 + sig) {
      ++ended_by_signal;
      CHECK(got.size() <= committed.size());
      CHECK(committed.compare(0, got.size(), got) == 0);
    } else {
      CHECK(r.status == 0);  // all of it was written before the signal
      CHECK(got == committed);
    }
    CHECK(tree(P) == files);
    CHECK(revision_count(P, "vm/private") == revs);
  }
  MESSAGE("exports: " << ended_by_signal << " of 9 ended by the signal, the others wrote everything first");
  CHECK(ended_by_signal > 0);

  // An export to a new regular FILE: complete, or not there at all.
  CHECK(tree(P) == files);
  const std::size_t complete =
      signal_runs_to_file({"volume", "export", P, "vm/private"}, fx.top() + "/exports", "e", ".img", 9, committed, P, rng);
  MESSAGE("exports to a file: " << 9 - complete << " of 9 ended by the signal");
}

CLI_TEST("cli: an export whose reader goes away ends with 141 (SIGPIPE) and leaves nothing behind") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "16M"});
  ok({"volume", "import", P, "vm/private", "-"}, pattern(16 * MiB, 90));
  const std::vector<std::string> files = tree(P);
  Child c = spawn({"volume", "export", P, "vm/private", "-"});
  ::close(c.in);
  c.in = -1;
  char buf[65536];
  REQUIRE(::read(c.out, buf, sizeof buf) > 0);
  ::close(c.out);  // the reader is gone: `export ... | head -c 64K`
  c.out = -1;
  ran r = finish(c);
  INFO("stderr: " << r.err);
  CHECK(r.status == 141);
  CHECK(tree(P) == files);
}

CLI_TEST("cli: remove refuses uncommitted data (running snapshots or a crashed image) and waits for an import") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "tpl/root", "--size", "4M"});
  ok({"volume", "create", P, "vm/root", "--kind", "snapshot", "--source", "tpl/root"});
  ok({"volume", "create", P, "vm/os", "--kind", "origin-snapshot", "--source", "tpl/root"});
  for (const char* vid : {"vm/root", "vm/os"}) {
    ok({"volume", "start", P, vid});
    const std::vector<std::string> files = tree(P);
    ran r = fails(1, {"volume", "remove", P, vid});
    CHECK(r.err.find("running") != std::string::npos);
    CHECK(r.err.find("--force") != std::string::npos);
    CHECK(tree(P) == files);
    ok({"volume", "stop", P, vid});
  }
  // A dirty image that a crash left (the VM's data, not yet committed).
  ok({"volume", "create", P, "vm/private", "--size", "4M"});
  std::string img = ok({"volume", "start", P, "vm/private"});
  img.pop_back();
  write_at(img, 0, pattern(MiB, 80));
  ran crashed = fails(1, {"volume", "remove", P, "vm/private"});
  CHECK(crashed.err.find("not yet committed") != std::string::npos);
  CHECK(read_file(img, MiB) == pattern(MiB, 80));
  ok({"volume", "stop", P, "vm/private"});
  // An import under way holds the volume: remove waits for it, or gives up.
  Child c = spawn({"volume", "import", P, "vm/private", "-", "--size", "4M"});
  const std::string part = pattern(MiB, 81);
  REQUIRE(::write(c.in, part.data(), part.size()) == static_cast<ssize_t>(part.size()));
  for (int i = 0; i < 500 && !exists(P + "/vm/private-import.img"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(exists(P + "/vm/private-import.img"));
  fails(4, {"volume", "remove", P, "vm/private", "--no-wait"});
  CHECK(still_running(c));
  ran imported = finish(c, pattern(3 * MiB, 82));
  INFO("stderr: " << imported.err);
  CHECK(imported.status == 0);
  CHECK(read_file(P + "/vm/private.img", MiB) == part);
  ok({"volume", "remove", P, "vm/private"});
  CHECK(catalog_entry(P, "vm/private").empty());
}

// ---- volume send, volume receive, volume changes ----------------------------------

namespace {

//! Like `spawn`, with standard input and standard output the given ends of a
//! pipe (`send ... | receive ...` in a shell).
Child spawn_piped(const std::vector<std::string>& args, int in_fd, int out_fd) {
  int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2];
  if (in_fd < 0) REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
  if (out_fd < 0) REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  sigset_t all, was;
  ::sigfillset(&all);
  ::sigprocmask(SIG_SETMASK, &all, &was);
  pid_t pid = ::fork();
  if (pid == 0) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &was, nullptr);
    ::dup2(in_fd >= 0 ? in_fd : in[0], 0), ::dup2(out_fd >= 0 ? out_fd : out[1], 1), ::dup2(err[1], 2);
    std::vector<char*> argv{const_cast<char*>(FILE_REFLINK_COMMAND)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::sigprocmask(SIG_SETMASK, &was, nullptr);
  REQUIRE(pid >= 0);
  if (in_fd < 0) ::close(in[0]);
  if (out_fd < 0) ::close(out[1]);
  ::close(err[1]);
  return {pid, in_fd < 0 ? in[1] : -1, out_fd < 0 ? out[0] : -1, err[0]};
}

//! `file-reflink SEND... | file-reflink RECEIVE...`: both results.
std::pair<ran, ran> send_receive(const std::vector<std::string>& send, const std::vector<std::string>& receive) {
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  Child s = spawn_piped(send, -1, p[1]);
  Child r = spawn_piped(receive, p[0], -1);
  ::close(p[0]), ::close(p[1]);
  ran rs = finish(s);
  ran rr = finish(r);
  return {rs, rr};
}

//! A second pool beside the fixture's, on the same filesystem.
std::string second_pool(const PoolFixture& fx) {
  const std::string q = fx.top() + "/pool2";
  ok({"pool", "init", q, "--no-setup-check", "--quiet"});
  return q;
}

//! The committed data of a volume, as export writes it.
std::string committed_data(const std::string& pool, const std::string& vid) {
  return ok({"volume", "export", pool, vid, "-"});
}

//! What a refused receive must leave as it was: the pool's files, and the
//! volume's revisions and data.
struct pool_state {
  std::vector<std::string> files;
  json revisions;
  std::string data;
  bool operator==(const pool_state& o) const { return files == o.files && revisions == o.revisions && data == o.data; }
};
pool_state state_of(const std::string& pool, const std::string& vid) {
  json revs = ok_json({"volume", "revisions", pool, vid, "--json"});
  for (auto& r : revs) r.erase("allocated"), r.erase("exclusive"), r.erase("shared");
  return {tree(pool), revs, committed_data(pool, vid)};
}

//! Start the volume, write `data` at `offset` of its running image (a VM's
//! write), stop it: returns the revision the stop made of the previous
//! committed image.
std::uint64_t write_and_stop(const std::string& pool, const std::string& vid,
                             const std::vector<std::pair<std::uint64_t, std::string>>& writes) {
  json started = ok_json({"volume", "start", pool, vid, "--json"});
  for (auto& [offset, data] : writes) write_at(started["image"].get<std::string>(), offset, data);
  json stopped = ok_json({"volume", "stop", pool, vid, "--json"});
  REQUIRE(stopped["revisions_created"].size() == 1);
  return stopped["revisions_created"][0].get<std::uint64_t>();
}

//! A stream sent to FILE; returns send's JSON result.
json send_to_file(const std::string& pool, const std::string& vid, const std::string& file,
                  const std::vector<std::string>& more = {}) {
  std::vector<std::string> args{"volume", "send", pool, vid, file, "--json"};
  args.insert(args.end(), more.begin(), more.end());
  return ok_json(args);
}

}  // namespace

CLI_TEST("cli: volume send | volume receive copies a volume to a second pool, whole, then its changes") {
  Fx fx;
  const std::string& P = fx.dir();
  const std::string Q = second_pool(fx);
  ok({"volume", "create", P, "vm/private", "--size", "8M", "--revisions-to-keep", "5"});
  // Data, a hole, data.
  const std::string image = fx.top() + "/in.img";
  write_file(image, "");
  REQUIRE(::truncate(image.c_str(), 8 * MiB) == 0);
  write_at(image, 0, pattern(MiB, 11));
  write_at(image, 5 * MiB, pattern(MiB, 12));
  ok({"volume", "import", P, "vm/private", image});

  // Whole: the receiving pool has no such volume, and gets an origin one.
  const auto s0r0 = send_receive({"volume", "send", P, "vm/private", "--json"}, {"volume", "receive", Q, "vm/private"});
  const ran &s0 = s0r0.first, &r0 = s0r0.second;
  INFO("send: " << s0.err << "\nreceive: " << r0.out << r0.err);
  REQUIRE(s0.status == 0);
  REQUIRE(r0.status == 0);
  CHECK(r0.out.find("created") != std::string::npos);
  json sent0 = json::parse(s0.err, nullptr, false);  // the stream on stdout, the result on stderr
  REQUIRE_FALSE(sent0.is_discarded());
  CHECK(sent0["incremental"] == false);
  CHECK(sent0["size"] == 8 * MiB);
  CHECK(sent0["data_bytes"] == 2 * MiB);  // the hole is sent as a hole
  CHECK(s0.out.empty());
  CHECK(ok_json({"volume", "info", Q, "vm/private", "--json"})["kind"] == "origin");
  CHECK(committed_data(Q, "vm/private") == committed_data(P, "vm/private"));

  // 1: a VM writes (in the first block and in the middle); --since by label.
  std::uint64_t base = write_and_stop(P, "vm/private", {{0, pattern(4096, 13)}, {3 * MiB + 5, pattern(70000, 14)}});
  ok({"volume", "keep", P, "vm/private", std::to_string(base), "sent-1"});
  const auto s1r1 = send_receive({"volume", "send", P, "vm/private", "--since", "sent-1", "--json"},
                               {"volume", "receive", Q, "vm/private", "--json"});
  const ran &s1 = s1r1.first, &r1 = s1r1.second;
  INFO("send: " << s1.err << "\nreceive: " << r1.out << r1.err);
  REQUIRE(s1.status == 0);
  REQUIRE(r1.status == 0);
  json sent1 = json::parse(s1.err, nullptr, false);
  REQUIRE_FALSE(sent1.is_discarded());
  CHECK(sent1["incremental"] == true);
  CHECK(sent1["base"] == "sent-1");
  CHECK(sent1["data_bytes"].get<std::uint64_t>() < 2 * MiB);  // the changes, not the image
  json got1 = json::parse(r1.out, nullptr, false);
  REQUIRE_FALSE(got1.is_discarded());
  CHECK(got1["created"] == false);
  CHECK(got1["incremental"] == true);
  CHECK(got1["revisions_created"].size() == 1);
  CHECK(committed_data(Q, "vm/private") == committed_data(P, "vm/private"));

  // 2: revert to the first image: the image just sent becomes a revision.
  json reverted = ok_json({"volume", "revert", P, "vm/private", std::to_string(base), "--json"});
  REQUIRE(reverted["revisions_created"].size() == 1);
  base = reverted["revisions_created"][0].get<std::uint64_t>();
  const auto s2r2 = send_receive({"volume", "send", P, "vm/private", "--since", std::to_string(base)},
                               {"volume", "receive", Q, "vm/private"});
  const ran &s2 = s2r2.first, &r2 = s2r2.second;
  INFO("send: " << s2.err << "\nreceive: " << r2.out << r2.err);
  REQUIRE(s2.status == 0);
  REQUIRE(r2.status == 0);
  CHECK(committed_data(Q, "vm/private") == committed_data(P, "vm/private"));

  // 3: a write at the end, then the image grows (in place: no revision).
  base = write_and_stop(P, "vm/private", {{8 * MiB - 4096, pattern(4096, 15)}});
  ok({"volume", "resize", P, "vm/private", "12M"});
  const std::string held = std::to_string(base);
  const auto s3r3 = send_receive({"volume", "send", P, "vm/private", "--since", held},
                               {"volume", "receive", Q, "vm/private"});
  const ran &s3 = s3r3.first, &r3 = s3r3.second;
  INFO("send: " << s3.err << "\nreceive: " << r3.out << r3.err);
  REQUIRE(s3.status == 0);
  REQUIRE(r3.status == 0);
  CHECK(volume_size(Q, "vm/private") == 12 * MiB);
  CHECK(committed_data(Q, "vm/private") == committed_data(P, "vm/private"));
}

CLI_TEST("cli: volume receive refuses a stream it cannot apply and leaves the volume as it was") {
  Fx fx;
  const std::string& P = fx.dir();
  const std::string Q = second_pool(fx);
  const std::string T = fx.top();
  ok({"volume", "create", P, "vm/private", "--size", "4M", "--revisions-to-keep", "5"});
  ok({"volume", "import", P, "vm/private", "-"}, pattern(4 * MiB, 21));
  send_to_file(P, "vm/private", T + "/full.s");
  ok({"volume", "receive", Q, "vm/private", T + "/full.s"});
  // Changes in the first block: the stream's image differs from its base
  // in a block the fingerprint samples (doc/stream-format.md).
  const std::uint64_t base1 = write_and_stop(P, "vm/private", {{0, pattern(8192, 22)}});
  json inc = send_to_file(P, "vm/private", T + "/inc.s", {"--since", std::to_string(base1)});
  CHECK(inc["incremental"] == true);
  CHECK(inc["file"] == T + "/inc.s");
  CHECK(inc["bytes"].get<std::uint64_t>() == stdfs::file_size(T + "/inc.s"));
  const std::uint64_t base2 = write_and_stop(P, "vm/private", {{0, pattern(8192, 23)}});
  send_to_file(P, "vm/private", T + "/inc2.s", {"--since", std::to_string(base2)});
  const std::string stream = read_file(T + "/inc.s");
  std::string corrupt = stream;
  corrupt[corrupt.size() / 2] ^= 0x20;
  write_file(T + "/corrupt.s", corrupt);
  write_file(T + "/truncated.s", stream.substr(0, stream.size() - 10));
  ok({"volume", "create", Q, "vm/other", "--size", "4M"});

  struct refusal {
    std::string what;
    std::string vid, file;
    int status;
    std::string code;
  };
  for (const refusal& r : std::vector<refusal>{
           {"the receiver never got the base", "vm/private", T + "/inc2.s", 3, "stream_base_missing"},
           {"a corrupt byte", "vm/private", T + "/corrupt.s", 1, "stream_invalid"},
           {"a truncated stream", "vm/private", T + "/truncated.s", 1, "stream_invalid"},
           {"a stream of another volume", "vm/other", T + "/full.s", 1, "stream_invalid"},
       }) {
    INFO(r.what);
    const pool_state before = state_of(Q, r.vid);
    json e = fails_json(r.status, {"volume", "receive", Q, r.vid, r.file, "--json"});
    CHECK(e["code"] == r.code);
    CHECK(e["operation"] == "volume receive");
    CHECK(e["message"].get<std::string>().find(r.vid) != std::string::npos);
    CHECK(state_of(Q, r.vid) == before);
    // From a pipe too, with the error in words.
    ran t = fails(r.status, {"volume", "receive", Q, r.vid}, read_file(r.file));
    CHECK(t.err.find("volume receive '" + r.vid + "'") != std::string::npos);
    CHECK(state_of(Q, r.vid) == before);
  }
  // The stream whose base the receiver holds applies; the same stream again is refused.
  json applied = ok_json({"volume", "receive", Q, "vm/private", T + "/inc.s", "--json"});
  CHECK(applied["incremental"] == true);
  CHECK(applied["created"] == false);
  CHECK(applied["base"] == "the committed image");
  CHECK(applied["revisions_created"].size() == 1);
  const pool_state after = state_of(Q, "vm/private");
  json e = fails_json(1, {"volume", "receive", Q, "vm/private", T + "/inc.s", "--json"});
  CHECK(e["code"] == "stream_already_applied");
  CHECK(state_of(Q, "vm/private") == after);
  // An incremental stream for a volume the pool lacks: no volume is made.
  const std::string R = T + "/pool3";
  ok({"pool", "init", R, "--no-setup-check", "--quiet"});
  const std::vector<std::string> files = tree(R);
  json missing = fails_json(3, {"volume", "receive", R, "vm/private", T + "/inc.s", "--json"});
  CHECK(missing["code"] == "stream_base_missing");
  CHECK(tree(R) == files);
  CHECK(ok_json({"volume", "list", R, "--json"}).empty());
}

CLI_TEST("cli: a signal ends a volume receive from a slow pipe with 128 + N and commits nothing") {
  Fx fx;
  const std::string& P = fx.dir();
  const std::string Q = second_pool(fx);
  ok({"volume", "create", P, "vm/private", "--size", "16M"});
  ok({"volume", "create", Q, "vm/private", "--size", "16M", "--revisions-to-keep", "20"});
  ok({"volume", "import", P, "vm/private", "-"}, pattern(16 * MiB, 31));
  const std::string stream = ok({"volume", "send", P, "vm/private"});
  const std::string data = committed_data(P, "vm/private");
  ::signal(SIGPIPE, SIG_IGN);
  std::mt19937 rng(std::random_device{}());
  const int signals[] = {SIGINT, SIGTERM, SIGHUP};
  int ended_by_signal = 0;
  for (int i = 0; i < 6; ++i) {
    const int sig = signals[i % 3];
    const pool_state before = state_of(Q, "vm/private");
    Child c = spawn({"volume", "receive", Q, "vm/private"});
    // Fed in 256 KiB pieces, 5 ms apart: at least 320 ms.
    const auto delay = std::chrono::milliseconds(std::uniform_int_distribution<int>(0, 250)(rng));
    feed_slowly_and_signal(c, stream, delay, sig);
    ran r = finish(c);
    INFO("signal " << sig << " after " << delay.count() << " ms; stderr: " << r.err);
    CHECK_FALSE(exists(Q + "/vm/private-import.img"));
    if (r.status == 128 + sig) {
      ++ended_by_signal;
      CHECK(state_of(Q, "vm/private") == before);
    } else {
      CHECK(r.status == 0);  // the whole stream had come: committed
      CHECK(committed_data(Q, "vm/private") == data);
    }
  }
  MESSAGE("receives: " << ended_by_signal << " of 6 ended by the signal");
  CHECK(ended_by_signal > 0);

  // A send to a new FILE: complete, or no FILE at all.
  signal_runs_to_file({"volume", "send", P, "vm/private"}, fx.top() + "/streams", "s", "", 6, stream, P, rng);
}

CLI_TEST("cli: a volume send whose reader goes away ends with 141 (SIGPIPE) and leaves nothing behind") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "16M"});
  ok({"volume", "import", P, "vm/private", "-"}, pattern(16 * MiB, 41));
  const std::vector<std::string> files = tree(P);
  Child c = spawn({"volume", "send", P, "vm/private"});
  ::close(c.in);
  c.in = -1;
  char buf[65536];
  REQUIRE(::read(c.out, buf, sizeof buf) > 0);
  CHECK(std::string(buf, 8) == "FRLKSTRM");
  ::close(c.out);  // `send ... | head -c 64K`
  c.out = -1;
  ran r = finish(c);
  INFO("stderr: " << r.err);
  CHECK(r.status == 141);
  CHECK(tree(P) == files);
  // And a send to an existing FILE without --force: refused, FILE kept.
  write_file(fx.top() + "/kept", "x");
  fails(1, {"volume", "send", P, "vm/private", fx.top() + "/kept"});
  CHECK(read_file(fx.top() + "/kept") == "x");
  ok({"volume", "send", P, "vm/private", fx.top() + "/kept", "--force"});
  CHECK(read_file(fx.top() + "/kept", 8) == "FRLKSTRM");
}

CLI_TEST("cli: volume changes reports the ranges written since a revision, and how it found them") {
  Fx fx;
  const std::string& P = fx.dir();
  ok({"volume", "create", P, "vm/private", "--size", "8M", "--revisions-to-keep", "5"});
  ok({"volume", "import", P, "vm/private", "-"}, pattern(8 * MiB, 51));
  const std::uint64_t rev =
      write_and_stop(P, "vm/private", {{MiB, pattern(4096, 52)}, {5 * MiB + 100, pattern(10, 53)}});
  ok({"volume", "keep", P, "vm/private", std::to_string(rev), "before-write"});
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"volume", "changes", P, "vm/private", std::to_string(rev), "--json"},
        std::vector<std::string>{"volume", "changes", P, "vm/private", "before-write", "committed", "--json"},
        std::vector<std::string>{"volume", "changes", P, "vm/private", "committed", "before-write", "--json"}}) {
    json j = ok_json(args);
    INFO(j.dump(2));
    for (const char* key : {"vid", "from", "to", "method", "ranges", "bytes"}) CHECK(j.contains(key));
    CHECK(j["vid"] == "vm/private");
    CHECK((j["method"] == "extent_map" || j["method"] == "data_comparison"));
    // Without reflinks the images share no storage: the data is compared.
    if (!fx.reflinks()) CHECK(j["method"] == "data_comparison");
    auto covered = [&](std::uint64_t at, std::uint64_t len) {
      return std::any_of(j["ranges"].begin(), j["ranges"].end(), [&](const json& r) {
        return r["offset"].get<std::uint64_t>() <= at &&
               at + len <= r["offset"].get<std::uint64_t>() + r["length"].get<std::uint64_t>();
      });
    };
    CHECK(covered(MiB, 4096));
    CHECK(covered(5 * MiB + 100, 10));
    std::uint64_t sum = 0;
    for (auto& r : j["ranges"]) sum += r["length"].get<std::uint64_t>();
    CHECK(j["bytes"] == sum);
    CHECK(sum < 2 * MiB);  // the writes, not the image
  }
  // Text: a table of the ranges and a summary line naming the method.
  const std::string text = ok({"volume", "changes", P, "vm/private", std::to_string(rev)});
  CHECK(text.find("OFFSET") != std::string::npos);
  CHECK(text.find("LENGTH") != std::string::npos);
  CHECK(text.find("1M (1048576)") != std::string::npos);
  CHECK(text.find("found by") != std::string::npos);
  // No change: no range.
  json none = ok_json({"volume", "changes", P, "vm/private", "committed", "--json"});
  CHECK(none["ranges"].empty());
  CHECK(none["bytes"] == 0);
  fails(3, {"volume", "changes", P, "vm/private", "99"});
  fails(2, {"volume", "changes", P, "vm/private"});
}

TEST_CASE("cli: volume send from a btrfs pool, volume receive in an ext4 pool") {
  btrfs_pool a;
  ext4_pool b;
  ok({"volume", "create", a.dir(), "vm/private", "--size", "8M", "--revisions-to-keep", "3"});
  ok({"volume", "import", a.dir(), "vm/private", "-"}, pattern(8 * MiB, 61));
  const auto p0 = send_receive({"volume", "send", a.dir(), "vm/private"}, {"volume", "receive", b.dir(), "vm/private"});
  INFO("send: " << p0.first.err << "\nreceive: " << p0.second.err);
  REQUIRE(p0.first.status == 0);
  REQUIRE(p0.second.status == 0);
  const std::uint64_t base = write_and_stop(a.dir(), "vm/private", {{0, pattern(4096, 62)}, {7 * MiB, pattern(5000, 63)}});
  const auto p1 = send_receive({"volume", "send", a.dir(), "vm/private", "--since", std::to_string(base)},
                               {"volume", "receive", b.dir(), "vm/private"});
  INFO("send: " << p1.first.err << "\nreceive: " << p1.second.err);
  REQUIRE(p1.first.status == 0);
  REQUIRE(p1.second.status == 0);
  CHECK(committed_data(b.dir(), "vm/private") == committed_data(a.dir(), "vm/private"));
}
