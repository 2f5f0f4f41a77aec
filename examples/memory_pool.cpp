// SPDX-License-Identifier: BSL-1.0
// Testing your own VM tooling against file_reflink without btrfs and without
// root: the same Pool, on MemoryFsOps, an in-memory copy-on-write filesystem.
#include <file_reflink/file_reflink.hpp>
#include <file_reflink/testing.hpp>

#include <cstdio>
#include <string>

namespace fr = file_reflink;

#define OR_DIE(expr)                                                          \
  do {                                                                        \
    auto r_ = (expr);                                                         \
    if (!r_) {                                                                \
      std::fprintf(stderr, "%s: %s\n", #expr, r_.error().message().c_str()); \
      return 1;                                                               \
    }                                                                         \
  } while (0)

int main() {
  fr::MemoryFsOps fs;  // a fresh in-memory filesystem
  fr::pool_config cfg;
  cfg.dir_path = "/var/lib/pool";
  fr::Pool<fr::MemoryFsOps> pool(cfg, fs);
  OR_DIE(pool.setup());

  auto tpl = pool.init_volume(fr::volume_config::origin("vm-templates/debian/root", 64 << 20)).value();
  auto root = pool.init_volume(fr::volume_config::snapshot("appvms/work/root", "vm-templates/debian/root")).value();
  OR_DIE(tpl.create());  // a sparse image: its holes cost no memory

  // The "VM" writes into the image it was given.
  OR_DIE(tpl.start());
  std::string hello = "hello from the template";
  OR_DIE(fs.write_file(tpl.block_device().value().device_path, hello));
  OR_DIE(tpl.stop());

  OR_DIE(root.start());
  auto seen = fs.read_file(root.block_device().value().device_path);
  if (!seen || seen.value().compare(0, hello.size(), hello) != 0) return std::fprintf(stderr, "wrong data\n"), 1;
  std::printf("snapshot shares the template's data: %s\n",
              fs.shares_extent("/var/lib/pool/appvms/work/root-dirty.img", "/var/lib/pool/vm-templates/debian/root.img")
                  ? "yes"
                  : "no");
  OR_DIE(root.stop());
  for (const auto& line : fs.tree("/var/lib/pool")) std::printf("  %s\n", line.c_str());
  return 0;
}
