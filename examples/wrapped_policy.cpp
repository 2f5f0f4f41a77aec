// SPDX-License-Identifier: BSL-1.0
// A Pool over a policy of your own (wrapped_policy.hpp): LinuxFsOps with an
// audit log of every rename and removal. Usage: example_wrapped_policy DIR
// (a pool is made in DIR/pool, used, and removed again).
#include "wrapped_policy.hpp"

#include <cstdio>
#include <string>
#include <vector>

namespace fr = file_reflink;

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: %s DIR\n", argv[0]), 2;
  std::vector<std::string> log;
  audited_fs_ops<> ops;
  ops.audit = [&](const std::string& line) { log.push_back(line); };

  fr::pool_config cfg;
  cfg.dir_path = fr::path(argv[1]) / "pool";
  cfg.setup_check = false;  // run on any filesystem: without reflinks, copies are full copies
  fr::Pool<audited_fs_ops<>> pool(cfg, ops);
  auto run = [&]() -> fr::result<void> {
    if (auto r = pool.setup(); !r) return r;
    auto vol = pool.init_volume(fr::volume_config::origin("vm/private", 1 << 20));
    if (!vol) return fr::failure(vol.error());
    for (auto step : {&fr::Volume<audited_fs_ops<>>::create, &fr::Volume<audited_fs_ops<>>::start,
                      &fr::Volume<audited_fs_ops<>>::stop})  // the stop keeps the old image as revision 1
      if (auto r = (vol.value().*step)(); !r) return r;
    if (auto r = vol.value().remove(); !r) return r;
    return pool.destroy();
  };
  if (auto r = run(); !r) return std::fprintf(stderr, "%s\n", r.error().message().c_str()), 1;
  for (const auto& line : log) std::printf("%s\n", line.c_str());
  // A stop renames the running image into place; remove deletes the image.
  return log.empty() ? 1 : 0;
}
