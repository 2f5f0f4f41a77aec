// SPDX-License-Identifier: BSL-1.0
// One process of the multi-process test (multiprocess.cpp starts two): it
// opens the pool with the catalog on, finds its volumes there, and runs
// random operations on the shared volume "shared/s" and on its own
// "p<ROLE>/own", writing one line per operation:
//
//     <ticket> <s|own> <op> <ok|err> <observed>
//
// The ticket orders the operations on the shared volume across both
// processes: a counter in a shared file, taken the moment the kernel grants
// this process the shared volume's lock (a policy wrapped around
// LinuxFsOps), so that the test replays them in the order they happened,
// against a sequential model. Operations on its own volume carry ticket 0.
//
//     worker DIR TICKETS ROLE SEED OPS OUT     random operations
//     worker DIR TICKETS hold                  import into shared/s, say "held", wait to be killed
#include <file_reflink/file_reflink.hpp>

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fr = file_reflink;

namespace {

constexpr const char* shared_vid = "shared/s";
constexpr std::size_t marker_size = 16;

std::uint64_t* tickets = nullptr;  // the shared counter
std::uint64_t last_ticket = 0;     // taken by the operation running now

//! LinuxFsOps, taking a ticket when the shared volume's lock is granted.
struct TicketOps : fr::LinuxFsOps {
  fr::result<bool> lock(const lock_file& f, std::uint64_t offset, fr::lock_mode mode, bool wait) const noexcept {
    auto r = fr::LinuxFsOps::lock(f, offset, mode, wait);
    if (r && r.value() && offset == fr::detail::lock_byte(shared_vid))
      last_ticket = __atomic_add_fetch(tickets, 1, __ATOMIC_SEQ_CST);
    return r;
  }
};

using pool_type = fr::Pool<TicketOps>;
using volume_type = fr::Volume<TicketOps>;

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "worker: %s\n", what.c_str());
  std::exit(2);
}

std::string first_bytes(const std::string& file) {
  int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("open " + file + ": " + std::strerror(errno));
  std::string out(marker_size, '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), 0);
  ::close(fd);
  if (n < 0) die("read " + file);
  // Shown as text: zeros (never written) as '.'.
  for (char& c : out)
    if (c == '\0') c = '.';
  return out;
}

void write_marker(const std::string& file, const std::string& marker) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) die("open " + file + ": " + std::strerror(errno));
  if (::pwrite(fd, marker.data(), marker.size(), 0) != static_cast<ssize_t>(marker.size())) die("write " + file);
  ::close(fd);
}

std::string marker_of(int role, int i) {
  char buf[marker_size + 1];
  std::snprintf(buf, sizeof buf, "p%d-%013d", role, i);
  return std::string(buf, marker_size);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: worker DIR TICKETS ROLE SEED OPS OUT | worker DIR TICKETS hold");
  const std::string dir = argv[1];
  int tfd = ::open(argv[2], O_RDWR | O_CLOEXEC);
  if (tfd < 0) die(std::string("open tickets: ") + std::strerror(errno));
  void* m = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, tfd, 0);
  if (m == MAP_FAILED) die("mmap tickets");
  tickets = static_cast<std::uint64_t*>(m);

  fr::pool_config cfg;
  cfg.name = "shared";
  cfg.dir_path = dir;
  cfg.catalog = true;
  cfg.revisions_to_keep = 3;
  pool_type pool(cfg);
  auto shared = pool.get_volume(shared_vid);
  if (!shared) die(shared.error().message());

  if (std::string(argv[3]) == "hold") {
    auto imp = shared.value().import_data(1 << 20);
    if (!imp) die(imp.error().message());
    std::printf("held\n");
    std::fflush(stdout);
    for (;;) ::pause();
  }
  if (argc != 7) die("usage: worker DIR TICKETS ROLE SEED OPS OUT");
  const int role = std::atoi(argv[3]);
  std::uint32_t x = static_cast<std::uint32_t>(std::strtoul(argv[4], nullptr, 10));
  const int ops = std::atoi(argv[5]);
  std::FILE* out = std::fopen(argv[6], "w");
  if (!out) die("open output");
  auto own = pool.get_volume("p" + std::to_string(role) + "/own");
  if (!own) die(own.error().message());
  volume_type s = shared.value(), o = own.value();
  const std::string own_dirty = dir + "/p" + std::to_string(role) + "/own-dirty.img";
  const std::string own_clean = dir + "/p" + std::to_string(role) + "/own.img";

  auto line = [&](const char* vol, const char* op, const fr::result<void>& r, const std::string& observed) {
    std::fprintf(out, "%llu %s %s %s %s\n", static_cast<unsigned long long>(std::string(vol) == "s" ? last_ticket : 0),
                 vol, op, r ? "ok" : "err", observed.empty() ? "-" : observed.c_str());
    if (!r) std::fprintf(out, "# %s\n", r.error().message().c_str());
  };
  auto count = [](const fr::result<fr::revision_map>& r) { return r ? std::to_string(r.value().size()) : ""; };
  bool own_running = false;
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
      fr::result<void> r = imp ? fr::result<void>(fr::success()) : fr::result<void>(fr::failure(imp.error()));
      if (imp) {
        write_marker(imp.value().string(), mk);
        r = s.import_data_end(true);
      }
      line("s", "import", r, mk);
    } else if (pick < 44) {
      line("s", "revert", s.revert(), "");
    } else if (pick < 54) {
      auto revs = s.revisions();
      line("s", "revisions", revs ? fr::result<void>(fr::success()) : fr::result<void>(fr::failure(revs.error())),
           count(revs));
    } else if (pick < 64) {
      // Read the shared volume's committed data at one instant: copy it into
      // our own volume (the copy holds the shared volume's lock).
      if (own_running) {
        last_ticket = 0;
        line("own", "stop", o.stop(), "");
        own_running = false;
        last_ticket = 0;
      }
      auto r = o.import_volume(s);
      fr::result<void> rv = r ? fr::result<void>(fr::success()) : fr::result<void>(fr::failure(r.error()));
      const std::uint64_t t = last_ticket;
      std::string seen = r ? first_bytes(own_clean) : "";
      last_ticket = t;
      line("s", "read", rv, seen);
    } else if (pick < 72) {
      auto r = o.start();
      if (r) own_running = true;
      line("own", "start", r, "");
    } else if (pick < 82) {
      if (own_running) {
        const std::string mk = marker_of(role, i);
        write_marker(own_dirty, mk);
        line("own", "write", fr::success(), mk);
      }
    } else if (pick < 90) {
      auto r = o.stop();
      if (r) own_running = false;
      line("own", "stop", r, r ? first_bytes(own_clean) : "");
    } else if (pick < 95) {
      auto r = o.revert();
      line("own", "revert", r, r ? first_bytes(own_clean) : "");
    } else {
      auto revs = o.revisions();
      line("own", "revisions", revs ? fr::result<void>(fr::success()) : fr::result<void>(fr::failure(revs.error())),
           count(revs));
    }
  }
  if (own_running) line("own", "stop", o.stop(), "");
  std::fclose(out);
  return 0;
}
