// SPDX-License-Identifier: BSL-1.0
// Every public member function of Pool and Volume, on LinuxFsOps: what an
// embedder's program costs to compile at most. Only compiled (by
// tests/bench/compile_cost.sh, -O2 -c), never run; it is still valid code.
#include <file_reflink/fs_ops/linux.hpp>
#include <file_reflink/pool.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace fr = file_reflink;

using pool_type = fr::Pool<fr::LinuxFsOps>;
using volume_type = fr::Volume<fr::LinuxFsOps>;

namespace {

int failures = 0;

template <class R>
void check(const R& r) {
  if (!r) ++failures;
}

void every_volume_operation(volume_type& v, volume_type& other) {
  const std::string vid = v.vid();
  const std::string name = v.name();
  const fr::volume_config cfg = v.config();
  (void)vid, (void)name, (void)cfg;
  (void)v.kind();
  (void)v.rw();
  (void)v.ephemeral();
  (void)v.snapshots_disabled();
  (void)(v == other), (void)(v != other);

  check(v.create());
  check(v.verify());
  check(v.start());
  check(v.state());
  check(v.is_running());
  check(v.is_dirty());
  check(v.is_outdated());
  check(v.block_device());
  check(v.stop());
  check(v.revisions());
  check(v.size());
  check(v.usage());
  check(v.space());
  fr::volume_update u;
  u.revisions_to_keep = 3;
  check(v.update(u));
  check(v.keep_revision(1, "good"));
  check(v.unkeep_revision("good"));
  check(v.revert());
  check(v.revert(std::uint64_t(1)));
  check(v.revert(std::string_view("good")));
  check(v.drop_revision(std::uint64_t(1)));
  check(v.drop_revision(std::string_view("good")));
  check(v.resize(std::uint64_t(128) << 20));
  auto exported = v.export_();
  check(exported);
  if (exported) check(v.export_end(exported.value()));
  check(v.import_data(std::uint64_t(64) << 20));
  check(v.import_data_end(true));
  check(v.import_volume(other));
  check(v.import_volume(other, [](std::uint64_t, std::uint64_t) { return true; }));
  check(v.discard(0, 4096));
  check(v.sparsify());
  check(v.remove());
  check(v.remove(true));
}

}  // namespace

int main(int argc, char** argv) {
  fr::pool_config cfg;
  cfg.dir_path = argc > 1 ? argv[1] : "/var/lib/file-reflink-pool";
  pool_type pool(cfg);
  (void)pool.config();
  (void)pool.name();
  (void)pool.dir_path();
  (void)pool.fs_ops();
  check(pool.setup());
  check(pool.reflinks_supported());
  check(pool.size());
  check(pool.usage());
  auto a = pool.init_volume(fr::volume_config::origin("vm/root", std::uint64_t(64) << 20));
  auto b = pool.init_volume(fr::volume_config::snapshot("vm2/root", "vm/root"), fr::existing_volume::refuse);
  check(a), check(b);
  check(pool.get_volume("vm/root"));
  std::vector<volume_type> all = pool.list_volumes();
  check(pool.read_catalog());
  check(pool.adopt());
  check(pool.scan());
  check(pool.recover());
  if (a && b) every_volume_operation(a.value(), b.value());
  check(pool.destroy());
  (void)argv;
  return failures == 0 && !all.empty() ? 0 : 1;
}
