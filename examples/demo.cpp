// SPDX-License-Identifier: BSL-1.0
// A short tour: a pool in a temporary directory, a template with data, a VM
// volume that snapshots it, a commit with a revision and a revert. Exits 0
// only if every step did what it says.
#include <file_reflink/file_reflink.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace fr = file_reflink;
using clock_type = std::chrono::steady_clock;

static double ms_since(clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(clock_type::now() - t).count();
}

#define STEP(what, expr)                                                              \
  do {                                                                                \
    auto t0_ = clock_type::now();                                                     \
    auto r_ = (expr);                                                                 \
    if (!r_) {                                                                        \
      std::fprintf(stderr, "FAILED: %s: %s\n", what, r_.error().message().c_str());  \
      return 1;                                                                       \
    }                                                                                 \
    std::printf("  %-44s %8.2f ms\n", what, ms_since(t0_));                           \
  } while (0)

int main() {
  char tmpl[] = "/var/tmp/file-reflink-demo.XXXXXX";
  if (!mkdtemp(tmpl)) return std::perror("mkdtemp"), 1;
  std::string dir = std::string(tmpl) + "/pool";
  fr::pool_config cfg;
  cfg.name = "demo";
  cfg.dir_path = dir;
  fr::Pool<fr::LinuxFsOps> pool(cfg);
  std::printf("pool in %s\n", dir.c_str());
  if (auto r = pool.setup(); !r) {
    std::printf("  %s\n  -> using the full-copy fallback (setup_check=false)\n", r.error().message().c_str());
    cfg.setup_check = false;
    pool = fr::Pool<fr::LinuxFsOps>(cfg);
    STEP("setup (fallback)", pool.setup());
  }
  auto tpl = pool.init_volume(fr::volume_config::origin("vm-templates/debian/root", 256 << 20)).value();
  auto root = pool.init_volume(fr::volume_config::snapshot("appvms/work/root", "vm-templates/debian/root")).value();
  auto priv = pool.init_volume(fr::volume_config::origin("appvms/work/private", 64 << 20)).value();
  STEP("create template (256 MiB, sparse)", tpl.create());
  STEP("create private volume (64 MiB)", priv.create());

  STEP("start template", tpl.start());
  {
    std::string block(1 << 20, 'T');
    auto dev = tpl.block_device().value().device_path;
    FILE* f = std::fopen(dev.c_str(), "r+b");
    if (!f) return std::perror("open template image"), 1;
    for (int i = 0; i < 64; ++i) std::fwrite(block.data(), 1, block.size(), f);
    std::fclose(f);
    std::printf("  wrote 64 MiB into the template\n");
  }
  STEP("stop template (commit)", tpl.stop());
  STEP("start VM root (snapshot of the template)", root.start());
  STEP("stop VM root (discarded)", root.stop());
  STEP("start private", priv.start());
  STEP("stop private (commit, revision 1)", priv.stop());
  auto revs = priv.revisions();
  if (!revs || revs.value().size() != 1) return std::fprintf(stderr, "FAILED: expected one revision\n"), 1;
  STEP("revert private to revision 1", priv.revert(1));
  STEP("remove everything", [&]() -> fr::result<void> {
    for (auto& v : pool.list_volumes()) FILE_REFLINK_TRYV(v.remove());
    return pool.destroy();
  }());
  rmdir(tmpl);
  std::printf("done\n");
  return 0;
}
