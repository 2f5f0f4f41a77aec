// SPDX-License-Identifier: BSL-1.0
// One process of the multi-process test (multiprocess.cpp starts two): it
// opens the pool with the catalog on, finds its volumes there, and runs the
// random workload of workload.hpp, its tickets taken from a counter in a
// file that both processes map.
//
//     worker DIR TICKETS ROLE SEED OPS OUT     the workload, its lines into OUT
//     worker DIR TICKETS hold                  import into shared/s, say "held", wait to be killed
#include "workload.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fr = file_reflink;
namespace mp = file_reflink::test::mp;

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "worker: %s\n", what.c_str());
  std::exit(2);
}

//! Files of the pool by path, as a VM (or a tool) reaches them.
struct linux_io {
  std::string dir;
  void write_marker(const std::string& rel, const std::string& marker) {
    const std::string file = dir + "/" + rel;
    int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) die("open " + file + ": " + std::strerror(errno));
    if (::pwrite(fd, marker.data(), marker.size(), 0) != static_cast<ssize_t>(marker.size())) die("write " + file);
    ::close(fd);
  }
  std::string first_bytes(const std::string& rel) {
    const std::string file = dir + "/" + rel;
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) die("open " + file + ": " + std::strerror(errno));
    std::string out(mp::marker_size, '\0');
    ssize_t n = ::pread(fd, out.data(), out.size(), 0);
    ::close(fd);
    if (n < 0) die("read " + file);
    for (char& c : out)
      if (c == '\0') c = '.';
    return out;
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) die("usage: worker DIR TICKETS ROLE SEED OPS OUT | worker DIR TICKETS hold");
  const std::string dir = argv[1];
  int tfd = ::open(argv[2], O_RDWR | O_CLOEXEC);
  if (tfd < 0) die(std::string("open tickets: ") + std::strerror(errno));
  void* m = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, tfd, 0);
  if (m == MAP_FAILED) die("mmap tickets");
  mp::ticket_counter = static_cast<std::uint64_t*>(m);

  fr::pool_config cfg;
  cfg.name = "shared";
  cfg.dir_path = dir;
  cfg.catalog = true;
  cfg.revisions_to_keep = 3;
  fr::Pool<mp::ticket_ops<fr::LinuxFsOps>> pool(cfg);

  if (std::string(argv[3]) == "hold") {
    auto shared = pool.get_volume(mp::shared_vid);
    if (!shared) die(shared.error().message());
    auto imp = shared.value().import_data(1 << 20);
    if (!imp) die(imp.error().message());
    std::printf("held\n");
    std::fflush(stdout);
    for (;;) ::pause();
  }
  if (argc != 7) die("usage: worker DIR TICKETS ROLE SEED OPS OUT");
  linux_io io{dir};
  const auto lines = mp::workload(pool, std::atoi(argv[3]), static_cast<std::uint32_t>(std::strtoul(argv[4], nullptr, 10)),
                                  std::atoi(argv[5]), io);
  std::FILE* out = std::fopen(argv[6], "w");
  if (!out) die("open output");
  for (auto& l : lines) std::fprintf(out, "%s\n", l.c_str());
  std::fclose(out);
  return 0;
}
