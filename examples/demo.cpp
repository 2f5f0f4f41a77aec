// SPDX-License-Identifier: BSL-1.0
// The demo: a narrated session of the file-reflink command. It makes a pool
// on a btrfs image of its own (mounted in a private mount namespace, so it
// vanishes with this process even if it is killed), or, where it cannot, in
// a temporary directory with the full-copy fallback, and says so. Then a
// template with a few hundred MiB of data, a VM whose root snapshots it and
// whose private volume keeps revisions, a commit, a revert, and the pool's
// space picture. Every claim it prints is checked; it exits 0 only if all of
// them held, and cleans up whatever happens.
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <linux/loop.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#ifndef FILE_REFLINK_COMMAND
#error "FILE_REFLINK_COMMAND: the path of the built file-reflink command"
#endif

namespace {

using clock_type = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr std::uint64_t MiB = std::uint64_t(1) << 20;
constexpr std::uint64_t template_data = 384 * MiB;  // what the template VM "installs"
constexpr std::uint64_t vm_writes = 16 * MiB;       // what the VM then writes into its root
constexpr std::uint64_t private_data = 8 * MiB;

double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

std::string errno_text(const std::string& what) { return what + ": " + std::strerror(errno); }

// ---- a scratch btrfs ----------------------------------------------------------

//! A btrfs on a sparse image, attached to a loop device that detaches itself
//! (LO_FLAGS_AUTOCLEAR), mounted where nobody else sees it: in this
//! process's private mount namespace, or, where that cannot be made private
//! (in a chroot, "/" is no mount point), nowhere at all: a detached mount
//! reached through its descriptor, /proc/self/fd/N, which the commands the
//! demo runs inherit. When the process ends, however it ends, the mount, the
//! device and the image's space are gone.
class ScratchBtrfs {
public:
  //! "" on success, else why not.
  std::string make(const std::string& workspace) {
    if (::geteuid() != 0) return "not root";
    std::string image = workspace + "/btrfs.img";
    int fd = ::open(image.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) return errno_text("create " + image);
    int rc = ::ftruncate(fd, off_t(2) << 30);  // sparse: only what the demo writes takes space
    ::close(fd);
    if (rc != 0) return errno_text("truncate " + image);
    if (std::string why = run_quietly({"mkfs.btrfs", "-q", "-f", image}); !why.empty()) return why;
    fd = ::open(image.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return errno_text("open " + image);
    std::string device;
    std::string why = attach_loop(fd, device);
    ::close(fd);
    ::unlink(image.c_str());  // the loop device holds it; its space goes with the device
    if (!why.empty()) return why;
    why = private_namespace() ? mount_in(workspace + "/btrfs", device) : mount_detached(device);
    ::close(loop_fd_);  // the mount holds the device now, or (failed) autoclear detaches it
    loop_fd_ = -1;
    return why;
  }

  const std::string& mount_point() const { return mount_point_; }
  //! Mounted nowhere: reached through /proc/self/fd.
  bool detached() const { return mount_fd_ >= 0; }

  ~ScratchBtrfs() {
    if (mounted_ && ::umount2(mount_point_.c_str(), 0) != 0) ::umount2(mount_point_.c_str(), MNT_DETACH);
    if (mount_fd_ >= 0) ::close(mount_fd_);  // the last reference: the detached mount goes
    if (loop_fd_ >= 0) ::close(loop_fd_);
  }

private:
  //! A mount namespace of our own whose mounts never propagate elsewhere.
  static bool private_namespace() {
    return ::unshare(CLONE_NEWNS) == 0 && ::mount("none", "/", nullptr, MS_REC | MS_PRIVATE, nullptr) == 0;
  }

  std::string mount_in(const std::string& dir, const std::string& device) {
    if (::mkdir(dir.c_str(), 0755) != 0) return errno_text("mkdir " + dir);
    if (::mount(device.c_str(), dir.c_str(), "btrfs", 0, nullptr) != 0) return errno_text("mount " + device);
    mount_point_ = dir;
    mounted_ = true;
    return "";
  }

  std::string mount_detached(const std::string& device) {
    int fs = ::fsopen("btrfs", FSOPEN_CLOEXEC);
    if (fs < 0) return errno_text("fsopen btrfs");
    std::string why;
    if (::fsconfig(fs, FSCONFIG_SET_STRING, "source", device.c_str(), 0) != 0 ||
        ::fsconfig(fs, FSCONFIG_CMD_CREATE, nullptr, nullptr, 0) != 0)
      why = errno_text("fsconfig btrfs on " + device);
    // Not close-on-exec: the commands reach the pool through this descriptor.
    int m = why.empty() ? ::fsmount(fs, 0, 0) : -1;
    if (why.empty() && m < 0) why = errno_text("fsmount");
    ::close(fs);
    if (!why.empty()) return why;
    mount_fd_ = m;
    mount_point_ = "/proc/self/fd/" + std::to_string(m);
    return "";
  }

  static std::string run_quietly(const std::vector<std::string>& argv) {
    pid_t pid = ::fork();
    if (pid < 0) return errno_text("fork");
    if (pid == 0) {
      int null = ::open("/dev/null", O_RDWR);
      ::dup2(null, 0), ::dup2(null, 1), ::dup2(null, 2);
      std::vector<char*> args;
      for (auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return argv[0] + " not found (btrfs-progs)";
    return argv[0] + " failed";
  }

  std::string attach_loop(int backing, std::string& device) {
    int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
    if (ctl < 0) return errno_text("open /dev/loop-control");
    std::string why = "no free loop device";
    for (int attempt = 0; attempt < 16; ++attempt) {  // another process may take the one offered
      int n = ::ioctl(ctl, LOOP_CTL_GET_FREE);
      if (n < 0) {
        why = errno_text("LOOP_CTL_GET_FREE");
        break;
      }
      device = "/dev/loop" + std::to_string(n);
      int fd = ::open(device.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) {
        why = errno_text("open " + device);
        ::usleep(5000);
        continue;
      }
      loop_config config{};
      config.fd = static_cast<std::uint32_t>(backing);
      config.info.lo_flags = LO_FLAGS_AUTOCLEAR;
      if (::ioctl(fd, LOOP_CONFIGURE, &config) == 0) {
        loop_fd_ = fd;
        ::close(ctl);
        return "";
      }
      why = errno_text("LOOP_CONFIGURE " + device);
      ::close(fd);
      if (errno != EBUSY) break;
    }
    ::close(ctl);
    return why;
  }

  std::string mount_point_;
  int loop_fd_ = -1;
  int mount_fd_ = -1;
  bool mounted_ = false;
};

// ---- running the command -------------------------------------------------------

struct ran {
  int status = -1;
  std::string out;
  double ms = 0;
};

//! Set by Ctrl-C (which the command being run sees too, and cancels),
//! SIGTERM or SIGHUP: no further command runs, and the demo cleans up.
volatile std::sig_atomic_t stopping = 0;
extern "C" void on_stop(int) { stopping = 1; }

//! Run file-reflink with `args`, its stdout captured, its stderr shown.
ran file_reflink(const std::vector<std::string>& args) {
  ran r;
  if (stopping) return r;
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return r;
  auto t0 = clock_type::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::signal(SIGPIPE, SIG_DFL);
    ::dup2(pipefd[1], 1);
    std::vector<char*> argv{const_cast<char*>(FILE_REFLINK_COMMAND)};
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "exec %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  ::close(pipefd[1]);
  char buf[65536];
  while (true) {
    ssize_t n = ::read(pipefd[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    r.out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(pipefd[0]);
  int status = 0;
  while (pid > 0 && ::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.ms = ms_since(t0);
  r.status = pid > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// ---- narration -------------------------------------------------------------------

std::string pool_dir;  // printed as $POOL

int failures = 0;

//! Narrate; nothing once stopping (the story has ended).
void say(const char* fmt, ...) {
  if (stopping) return;
  va_list ap;
  va_start(ap, fmt);
  std::vprintf(fmt, ap);
  va_end(ap);
  std::fflush(stdout);
}

void check(bool ok, const std::string& claim) {
  if (stopping) {
    ++failures;
    return;
  }
  say("    %s %s\n", ok ? "ok:    " : "FAILED:", claim.c_str());
  if (!ok) ++failures;
}

std::string shown(const std::vector<std::string>& args) {
  std::string line = "file-reflink";
  for (auto& a : args) line += " " + (a == pool_dir ? std::string("$POOL") : a);
  return line;
}

//! Run a step: show the command and how long it took, and its output
//! indented when `show_output`. A failed command is a failed claim.
ran step(const std::vector<std::string>& args, bool show_output = false) {
  ran r = file_reflink(args);
  if (!stopping) say("  %8.1f ms  $ %s\n", r.ms, shown(args).c_str());
  if (show_output) {
    std::size_t start = 0;
    while (start < r.out.size()) {
      std::size_t end = r.out.find('\n', start);
      if (end == std::string::npos) end = r.out.size();
      say("               %s\n", r.out.substr(start, end - start).c_str());
      start = end + 1;
    }
  }
  if (r.status != 0) check(false, "the command above exited with " + std::to_string(r.status));
  return r;
}

json step_json(const std::vector<std::string>& args) {
  ran r = file_reflink(args);
  if (r.status != 0) {
    check(false, shown(args) + " exited with " + std::to_string(r.status));
    return json::object();
  }
  return json::parse(r.out, nullptr, false);
}

std::string mib(std::uint64_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / MiB);
  return buf;
}

// ---- the data a "VM" writes -------------------------------------------------------

//! Incompressible bytes from a seed, so that a copy is a real copy and a
//! checksum tells one data set from another.
void fill(std::vector<char>& buf, std::uint64_t seed) {
  std::uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (std::size_t i = 0; i + 8 <= buf.size(); i += 8) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    std::memcpy(&buf[i], &x, 8);
  }
}

//! Write `bytes` of seeded data at offset 0 of `file` (as a VM writes to its disk).
bool write_data(const std::string& file, std::uint64_t bytes, std::uint64_t seed) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  std::vector<char> buf(4 * MiB);
  bool ok = true;
  for (std::uint64_t off = 0; ok && off < bytes; off += buf.size()) {
    fill(buf, seed + off / buf.size());
    std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(buf.size(), bytes - off));
    ok = ::pwrite(fd, buf.data(), n, static_cast<off_t>(off)) == static_cast<ssize_t>(n);
  }
  return ::close(fd) == 0 && ok;
}

//! FNV-1a of the first `bytes` of `file`; 0 if it cannot be read.
std::uint64_t checksum(const std::string& file, std::uint64_t bytes) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  std::vector<char> buf(4 * MiB);
  std::uint64_t h = 1469598103934665603ull;
  for (std::uint64_t off = 0; off < bytes;) {
    ssize_t n = ::pread(fd, buf.data(), std::min<std::uint64_t>(buf.size(), bytes - off), static_cast<off_t>(off));
    if (n <= 0) {
      ::close(fd);
      return 0;
    }
    for (ssize_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(buf[static_cast<std::size_t>(i)])) * 1099511628211ull;
    off += static_cast<std::uint64_t>(n);
  }
  ::close(fd);
  return h;
}

//! The time a byte-by-byte copy of `bytes` of `src` takes (what a pool
//! without reflinks does at every snapshot); the copy is removed.
double plain_copy_ms(const std::string& src, const std::string& dst, std::uint64_t bytes) {
  auto t0 = clock_type::now();
  int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  std::vector<char> buf(4 * MiB);
  for (std::uint64_t off = 0; in >= 0 && out >= 0 && off < bytes; off += buf.size()) {
    ssize_t n = ::pread(in, buf.data(), buf.size(), static_cast<off_t>(off));
    if (n <= 0 || ::pwrite(out, buf.data(), static_cast<std::size_t>(n), static_cast<off_t>(off)) != n) break;
  }
  if (out >= 0) ::fsync(out), ::close(out);
  if (in >= 0) ::close(in);
  double ms = ms_since(t0);
  ::unlink(dst.c_str());
  return ms;
}

std::uint64_t get_u64(const json& j, std::initializer_list<const char*> keys) {
  const json* p = &j;
  for (const char* k : keys) {
    if (!p->is_object() || !p->contains(k)) return 0;
    p = &(*p)[k];
  }
  return p->is_number_unsigned() ? p->get<std::uint64_t>() : 0;
}


}  // namespace

int main(int argc, char** argv) {
  // --no-btrfs: show the fallback a machine without btrfs gets.
  bool try_btrfs = !(argc > 1 && std::strcmp(argv[1], "--no-btrfs") == 0);
  // Stopped, the demo still cleans up: a signal only sets `stopping`, and a
  // reader that went away (| head) makes writes fail, not kill.
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  char tmpl[] = "/var/tmp/file-reflink-demo.XXXXXX";
  if (!::mkdtemp(tmpl)) return std::perror("mkdtemp"), 1;
  const std::string workspace = tmpl;
  int status = 1;
  {
    ScratchBtrfs btrfs;
    say("file_reflink demo: VM disk images as reflinked files, run with the file-reflink command.\n\n");
    auto t_all = clock_type::now();
    std::string why = try_btrfs ? btrfs.make(workspace) : "--no-btrfs";
    bool on_btrfs = why.empty();
    std::vector<std::string> init{"pool", "init", ""};
    if (on_btrfs) {
      pool_dir = btrfs.mount_point() + "/pool";
      if (btrfs.detached())
        say("A btrfs of its own: a 2 GiB sparse image on a loop device, mounted nowhere (this looks like a\n"
            "chroot): reached through the demo's descriptor %s, it vanishes with the process.\n",
            btrfs.mount_point().c_str());
      else
        say("A btrfs of its own: a 2 GiB sparse image on a loop device, mounted in a private mount\n"
            "namespace (it vanishes with this process).\n");
    } else {
      pool_dir = workspace + "/pool";
      init.push_back("--no-setup-check");
      say("No btrfs for the demo (%s): the pool goes in a temporary directory,\n"
          "with the full-copy fallback (--no-setup-check). Snapshots there are copies, not clones.\n",
          why.c_str());
    }
    say("POOL=%s\n\n", pool_dir.c_str());
    init[2] = pool_dir;
    step(init);

    const std::string tpl = "vm-templates/debian/root", root = "appvms/work/root", priv = "appvms/work/private";
    say("\n1. A template volume, and %s of data in it (as its VM would install them)\n", mib(template_data).c_str());
    step({"volume", "create", pool_dir, tpl, "--size", "4G"});
    ran started = step({"volume", "start", pool_dir, tpl});
    std::string tpl_image = started.out.substr(0, started.out.find('\n'));
    auto t0 = clock_type::now();
    bool wrote = write_data(tpl_image, template_data, 1);
    double write_ms = ms_since(t0);
    check(wrote, "wrote " + mib(template_data) + " into $POOL/" + tpl_image.substr(pool_dir.size() + 1) + " in " +
                     std::to_string(static_cast<int>(write_ms)) + " ms");
    std::uint64_t tpl_sum = checksum(tpl_image, template_data);
    const std::string tpl_clean = tpl_image.substr(0, tpl_image.size() - std::string("-dirty.img").size()) + ".img";
    step({"volume", "stop", pool_dir, tpl});
    say("    the commit flushed the new data to disk before calling it the template's image\n");

    say("\n2. A VM: its root snapshots the template at every start; its private volume keeps 2 revisions\n");
    step({"volume", "create", pool_dir, root, "--kind", "snapshot", "--source", tpl});
    step({"volume", "create", pool_dir, priv, "--size", "1G", "--revisions-to-keep", "2"});
    ran snap = step({"volume", "start", pool_dir, root});
    std::string root_image = snap.out.substr(0, snap.out.find('\n'));
    if (on_btrfs)
      say("    the snapshot: a 4 GiB image holding %s, ready in %.1f ms (the command's whole run): a clone\n"
          "    shares the template's extents, so its time does not grow with the data\n",
          mib(template_data).c_str(), snap.ms);
    else
      say("    the snapshot: a 4 GiB image holding %s, copied in %.1f ms (no reflinks here)\n",
          mib(template_data).c_str(), snap.ms);
    check(checksum(root_image, template_data) == tpl_sum, "the VM's root reads the template's bytes");
    json info = step_json({"volume", "info", pool_dir, root, "--json"});
    std::uint64_t shared = get_u64(info, {"space", "running_image", "shared"});
    std::uint64_t exclusive = get_u64(info, {"space", "running_image", "exclusive"});
    if (on_btrfs) {
      check(shared >= template_data && exclusive == 0,
            "shared with the template: " + mib(shared) + ", copied: " + mib(exclusive) + " (volume info --json)");
      double copy_ms = plain_copy_ms(tpl_clean, pool_dir + "/plain-copy.tmp", template_data);
      say("    for comparison, copying those %s byte by byte takes %.0f ms, and their space again\n",
          mib(template_data).c_str(), copy_ms);
    } else {
      check(exclusive >= template_data, "copied (no reflinks here): " + mib(exclusive) + ", shared: " + mib(shared));
    }

    say("\n3. Copy-on-write: the VM writes %s into its root\n", mib(vm_writes).c_str());
    check(write_data(root_image, vm_writes, 99), "wrote " + mib(vm_writes) + " at the start of its root");
    info = step_json({"volume", "info", pool_dir, root, "--json"});
    shared = get_u64(info, {"space", "running_image", "shared"});
    exclusive = get_u64(info, {"space", "running_image", "exclusive"});
    if (on_btrfs)
      check(exclusive >= vm_writes && exclusive < 2 * vm_writes && shared >= template_data - vm_writes,
            "only what it wrote is its own: " + mib(exclusive) + " exclusive, " + mib(shared) + " still shared");
    else
      check(exclusive >= template_data, "its own full copy: " + mib(exclusive));
    check(checksum(tpl_clean, template_data) == tpl_sum, "the template's committed image is untouched");

    say("\n4. A commit makes a revision; a revert brings the old bytes back\n");
    ran p = step({"volume", "start", pool_dir, priv});
    std::string priv_image = p.out.substr(0, p.out.find('\n'));
    check(write_data(priv_image, private_data, 1000), "the VM writes its first " + mib(private_data) + " of data");
    std::uint64_t first_sum = checksum(priv_image, private_data);
    step({"volume", "stop", pool_dir, priv});
    p = step({"volume", "start", pool_dir, priv});
    check(write_data(priv_image, private_data, 2000), "it overwrites them with new data");
    ran commit = step({"volume", "stop", pool_dir, priv});
    say("    committed in %.1f ms: the old image became a revision (a hard link, no data moved)\n", commit.ms);
    step({"volume", "revisions", pool_dir, priv}, true);
    json revs = step_json({"volume", "revisions", pool_dir, priv, "--json"});
    check(revs.is_array() && revs.size() == 2, "two revisions: the empty image, and the first data");
    step({"volume", "revert", pool_dir, priv, "2"});
    std::string exported = workspace + "/private.export";
    step({"volume", "export", pool_dir, priv, exported});
    check(checksum(exported, private_data) == first_sum, "after the revert, the volume holds the first data again");
    ::unlink(exported.c_str());

    say("\n5. Where the space goes, before deleting a revision or a VM\n");
    step({"pool", "du", pool_dir}, true);
    step({"volume", "stop", pool_dir, root});
    step({"volume", "list", pool_dir}, true);

    double total_s = ms_since(t_all) / 1000;
    if (stopping)
      std::printf("\nStopped; cleaning up.\n");
    else
      say("\n%s in %.1f s.\n", failures ? "Some claims did not hold" : "Every claim above was checked and held",
          total_s);
    status = stopping ? 130 : failures ? 1 : 0;
  }  // unmounted here (and by the kernel if we were killed)
  std::error_code ec;
  std::filesystem::remove_all(workspace, ec);
  return status;
}
