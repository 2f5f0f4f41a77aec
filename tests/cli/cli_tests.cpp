// SPDX-License-Identifier: BSL-1.0
// End-to-end tests of the file-reflink command: the built binary, run as a
// subprocess (its stdout, stderr and exit status captured), on a pool on a
// btrfs and an ext4 scratch mount and in a plain temporary directory. Each
// test is written once and runs on the three; a scratch filesystem that
// cannot be made (not root, no loop devices) skips the test (exit 77).
#include "support/scratch_fs.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#ifndef FILE_REFLINK_COMMAND
#error "FILE_REFLINK_COMMAND: the path of the built file-reflink command"
#endif

namespace {

using json = nlohmann::json;
namespace stdfs = std::filesystem;
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

Child spawn(const std::vector<std::string>& args) {
  int in[2], out[2], err[2];
  REQUIRE(::pipe2(in, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(out, O_CLOEXEC) == 0);
  REQUIRE(::pipe2(err, O_CLOEXEC) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::dup2(in[0], 0), ::dup2(out[1], 1), ::dup2(err[1], 2);
    std::vector<char*> argv{const_cast<char*>(FILE_REFLINK_COMMAND)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
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

std::string pattern(std::size_t n, unsigned seed) {
  std::string s(n, '\0');
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& c : s) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  return s;
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
  CHECK(ok_json({"volume", "info", P, "vm/private", "--json"})["state"] == "running");
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
  std::uint64_t shared = info["space"]["dirty"]["shared"];
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
    if (v["vid"] == "tpl/root") tpl_space = v["volume"];
    if (v["vid"] == "vm/root") snap = v["volume"];
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

  // From a pipe: of the volume's size unless --size says otherwise.
  const std::string piped = pattern(3 * MiB, 5);
  ok({"volume", "import", P, "vm/data", "-", "--size", "6M"}, piped);
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
  CHECK(info["space"]["clean"]["allocated"].get<std::uint64_t>() >= MiB);
  CHECK(info["revisions"].size() == 1);

  // Whole volumes count each byte once; what two volumes share counts in both.
  json du = ok_json({"pool", "du", P, "--json"});
  REQUIRE(du["volumes"].size() == 2);
  std::uint64_t allocated = 0, exclusive = 0;
  for (auto& v : du["volumes"]) {
    const json& w = v["volume"];
    CHECK(w["allocated"] == w["exclusive"].get<std::uint64_t>() + w["shared"].get<std::uint64_t>());
    CHECK(w["allocated"].get<std::uint64_t>() <= v["files"]["total"]["allocated"].get<std::uint64_t>());
    allocated += w["allocated"].get<std::uint64_t>();
    exclusive += w["exclusive"].get<std::uint64_t>();
  }
  CHECK(du["total"]["exclusive"] == exclusive);
  CHECK(du["total"]["allocated"].get<std::uint64_t>() <= allocated);
  CHECK(du["total"]["allocated"].get<std::uint64_t>() >= MiB);  // the data written above

  json scan = ok_json({"pool", "scan", P, "--json"});
  CHECK(scan["volumes"].size() == 2);
  CHECK(scan["foreign"].empty());  // the volume file and its lock are the tools' own
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
  std::string before = read_file(P + "/.file-reflink-volumes.json");
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
  CHECK(read_file(P + "/.file-reflink-volumes.json") == before);
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
  fails(3, {"pool", "info", empty});  // an empty directory is no pool (an unmounted filesystem?)

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
  // Eighteen creates at once, each a read-modify-write of the volume file.
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
  json file = json::parse(read_file(P + "/.file-reflink-volumes.json"));
  CHECK(file["volumes"]["vm/private"]["size"] == 16 * MiB);  // remembered for the next run

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
  CHECK(tree(P) == std::vector<std::string>{".file-reflink-pool", ".file-reflink-volumes.json", ".file-reflink.lock"});
}
