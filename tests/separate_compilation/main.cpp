// SPDX-License-Identifier: BSL-1.0
// Built with FILE_REFLINK_SEPARATE_COMPILATION and linked with the library
// that includes <file_reflink/impl/src.hpp>: the operations below are
// declared here and defined there. A short pool on MemoryFsOps; exits 1 at
// the first thing that is not as expected.
#include <file_reflink/file_reflink.hpp>
#include <file_reflink/testing.hpp>

#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#error "this test is built with FILE_REFLINK_SEPARATE_COMPILATION"
#endif

#include <cstdint>
#include <cstdio>
#include <string>

namespace fr = file_reflink;

namespace {

bool expect(bool ok, const char* what) {
  if (!ok) std::fprintf(stderr, "separate compilation: %s\n", what);
  return ok;
}

template <class R>
bool expect_ok(const R& r, const char* what) {
  if (!r) std::fprintf(stderr, "separate compilation: %s: %s\n", what, r.error().message().c_str());
  return static_cast<bool>(r);
}

}  // namespace

int main() {
  fr::MemoryFsOps fs;
  fr::pool_config cfg;
  cfg.dir_path = "/var/lib/pool";
  fr::Pool<fr::MemoryFsOps> pool(cfg, fs);
  if (!expect_ok(pool.setup(), "setup")) return 1;

  fr::volume_config vc = fr::volume_config::origin("vm/private", std::uint64_t(4) << 20);
  vc.revisions_to_keep = 2;
  auto v = pool.init_volume(vc);
  if (!expect_ok(v, "init_volume")) return 1;
  fr::Volume<fr::MemoryFsOps> vol = v.value();
  if (!expect_ok(vol.create(), "create")) return 1;
  if (!expect_ok(vol.start(), "start")) return 1;
  auto running = vol.is_running();
  if (!expect_ok(running, "is_running") || !expect(running.value(), "not running after start")) return 1;
  auto dev = vol.block_device();
  if (!expect_ok(dev, "block_device")) return 1;
  if (!expect_ok(fs.write_file(dev.value().device_path, std::string("data of the first run")), "write")) return 1;
  if (!expect_ok(vol.stop(), "stop")) return 1;

  auto revs = vol.revisions();
  if (!expect_ok(revs, "revisions") || !expect(revs.value().size() == 1, "not exactly one revision after a commit"))
    return 1;
  auto got = pool.get_volume("vm/private");
  if (!expect_ok(got, "get_volume") || !expect(got.value() == vol, "get_volume found another volume")) return 1;
  if (!expect(pool.list_volumes().size() == 1, "list_volumes")) return 1;
  if (!expect_ok(vol.remove(), "remove")) return 1;
  if (!expect_ok(pool.destroy(), "destroy")) return 1;
  std::puts("separate compilation: ok");
  return 0;
}
