// SPDX-License-Identifier: BSL-1.0
// Minimal sequences the model-based test shrank from library defects, kept
// as regression tests, on every fixture. A failure of model_test.cpp prints
// such a sequence; paste its body into a SUBCASE here once the library is
// fixed. (The clock steps act on MemoryFsOps only; where two stamps must
// differ on a real filesystem too, an mtime is set.)
#include "world.hpp"

namespace file_reflink::model_test {
namespace {

FILE_REFLINK_FIXTURE_TEST("model: regressions") {
  SUBCASE("an origin-snapshot's revision is not its source's image, which a start with snapshots disabled runs") {
    world<Fx> w(fx, 0);
    w.init("vm-templates/deb12/root", volume_kind::origin, 12288u, "", -1, true);
    w.init("appvms/work/root", volume_kind::origin_snapshot, 12288u, "vm-templates/deb12/root", 3, true);
    w.create("vm-templates/deb12/root");
    w.start("appvms/work/root");
    w.start("vm-templates/deb12/root");
    w.stop("appvms/work/root");
    w.vm_write("vm-templates/deb12/root", 4096u, 8192u, 1647460620u);
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
  SUBCASE("the same, the origin-snapshot stopped before its source starts") {
    world<Fx> w(fx, 1);
    w.init("vm-templates/tpl/root", volume_kind::origin, 8192u, "", -1, true);
    w.create("vm-templates/tpl/root");
    w.init("appvms/personal/root", volume_kind::origin_snapshot, 4096u, "vm-templates/tpl/root", 1, true);
    w.start("appvms/personal/root");
    w.stop("appvms/personal/root");
    w.start("vm-templates/tpl/root");
    w.vm_write("vm-templates/tpl/root", 0u, 4096u, 7u);
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
  SUBCASE("a pin and a revision file with its number and another stamp are two revisions") {
    world<Fx> w(fx, -1);
    w.init("vm-templates/tpl/root", volume_kind::origin, 12288u, "", 0, true);
    w.create("vm-templates/tpl/root");
    w.set_clean_mtime("vm-templates/tpl/root", 1600000000, 0u);
    w.qubes_commit("vm-templates/tpl/root", 3, 8192u, 4096u, 1535546579u);
    w.keep_revision("vm-templates/tpl/root", 1u, "v1.2");
    w.qubes_create("vm-templates/tpl/root");
    w.qubes_commit("vm-templates/tpl/root", 1, 0u, 12288u, 2663166262u);
    w.revert_label("vm-templates/tpl/root", "v1.2");
    w.drop_number("vm-templates/tpl/root", 1u);
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
  SUBCASE("revert(label) reaches the pinned bytes where the Qubes driver reused the number") {
    world<Fx> w(fx, 1);
    w.init("vm-templates/deb12/root", volume_kind::origin, 5000u, "", 3, true);
    w.create("vm-templates/deb12/root");
    w.set_clean_mtime("vm-templates/deb12/root", 1600000000, 0u);
    w.discard("vm-templates/deb12/root", 0u, 4096u);
    w.keep_revision("vm-templates/deb12/root", 1u, "base");
    w.qubes_commit("vm-templates/deb12/root", 1, 0u, 4096u, 115442765u);
    w.qubes_revert("vm-templates/deb12/root", 2u, 1);
    w.qubes_revert("vm-templates/deb12/root", 3u, 0);
    w.qubes_commit("vm-templates/deb12/root", 1, 0u, 4096u, 514322292u);
    w.revert_label("vm-templates/deb12/root", "base");
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
  SUBCASE("a revert prunes nothing") {
    world<Fx> w(fx, 3);
    w.init("vm-templates/tpl/root", volume_kind::origin, 6144u, "", 1, true);
    w.create("vm-templates/tpl/root");
    w.discard("vm-templates/tpl/root", 3827u, 1066u);
    w.qubes_commit("vm-templates/tpl/root", 2, 0u, 4096u, 2881573001u);
    w.revert_number("vm-templates/tpl/root", 2u);
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
  SUBCASE("a revert keeps the committed image as a revision whatever revisions_to_keep is") {
    world<Fx> w(fx, -1);
    w.init("appvms/d1/private", volume_kind::origin, 4096u, "", std::nullopt, true);
    w.create("appvms/d1/private");
    w.qubes_commit("appvms/d1/private", 1, 3515u, 210u, 786868873u);
    w.revert_number("appvms/d1/private", 1u);
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
  SUBCASE("a start with snapshots disabled removes the precache and the unpinned revisions") {
    world<Fx> w(fx, 1);
    w.init("vm-templates/deb12/root", volume_kind::origin, 6144u, "", 1, true);
    w.create("vm-templates/deb12/root");
    w.discard("vm-templates/deb12/root", 5675u, 197u);
    w.start("vm-templates/deb12/root");
    w.restart(-1, {{"vm-templates/deb12/root", -1}});
    w.stop("vm-templates/deb12/root");
    w.start("vm-templates/deb12/root");
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
  SUBCASE("a resize with snapshots disabled does not grow a running snapshot's image") {
    world<Fx> w(fx, -1);
    w.init("appvms/work/root", volume_kind::snapshot, 6144u, "vm-templates/tpl/root", 3, true);
    w.init("vm-templates/tpl/root", volume_kind::origin, 5000u, "", std::nullopt, true);
    w.create("vm-templates/tpl/root");
    w.start("appvms/work/root");
    w.resize("vm-templates/tpl/root", 5512u);
    w.discard("vm-templates/tpl/root", 0u, 4096u);
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
  SUBCASE("Qubes VM names are directory names, and a vid whose files are another's directory is refused") {
    world<Fx> w(fx, 1);
    w.init("appvms/sys-import/private", volume_kind::origin, 4096u, "", std::nullopt, true);
    w.init("appvms/a.img.b/root", volume_kind::origin, 4096u, "", std::nullopt, true);
    w.init("appvms/backup", volume_kind::origin, 4096u, "", std::nullopt, true);
    w.init("appvms/backup.img/private", volume_kind::origin, 4096u, "", std::nullopt, true);
    w.init("appvms/x-precache", volume_kind::origin, 4096u, "", std::nullopt, true);
    w.create("appvms/sys-import/private");
    w.start("appvms/sys-import/private");
    w.stop("appvms/sys-import/private");
    CHECK_MESSAGE(!w.failed(), w.failure());
  }
}

}  // namespace
}  // namespace file_reflink::model_test
