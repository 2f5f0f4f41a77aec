// SPDX-License-Identifier: BSL-1.0
// An embedder's program: names both policies' templates and runs a volume
// through start and stop on the in-memory filesystem.
#include <file_reflink/file_reflink.hpp>
#include <file_reflink/testing.hpp>

#include <cstdio>
#include <string>

namespace fr = file_reflink;

static_assert(fr::is_fs_ops_v<fr::LinuxFsOps>);
static_assert(fr::is_fs_ops_v<fr::MemoryFsOps>);

int main() {
  fr::pool_config cfg;
  cfg.name = "smoke";
  cfg.dir_path = "/pool";
  fr::Pool<fr::MemoryFsOps> pool(cfg);
  fr::Pool<fr::LinuxFsOps> real(cfg);  // declared only: this test does not touch the disk
  (void)real;
  if (auto r = pool.setup(); !r) return std::fprintf(stderr, "setup: %s\n", r.error().message().c_str()), 1;
  auto v = pool.init_volume(fr::volume_config::origin("vm/private", 1 << 20));
  if (!v) return std::fprintf(stderr, "init_volume: %s\n", v.error().message().c_str()), 1;
  fr::Volume<fr::MemoryFsOps> vol = v.value();
  for (auto step : {&fr::Volume<fr::MemoryFsOps>::create, &fr::Volume<fr::MemoryFsOps>::start,
                    &fr::Volume<fr::MemoryFsOps>::stop, &fr::Volume<fr::MemoryFsOps>::start,
                    &fr::Volume<fr::MemoryFsOps>::stop}) {
    if (auto r = (vol.*step)(); !r) return std::fprintf(stderr, "%s\n", r.error().message().c_str()), 1;
  }
  auto revs = vol.revisions();
  if (!revs || revs.value().size() != 1) return std::fprintf(stderr, "expected one revision\n"), 1;
  std::printf("file_reflink %s consumed: %s has revision %llu\n", fr::version_string, vol.vid().c_str(),
              static_cast<unsigned long long>(revs.value().begin()->first));
  return 0;
}
