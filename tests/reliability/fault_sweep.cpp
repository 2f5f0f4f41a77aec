// SPDX-License-Identifier: BSL-1.0
// The fault sweep (see sweep.hpp): ENOSPC, EIO and EPERM at every call of
// every operation, one test per operation, every volume kind.
#include "sweep.hpp"

using namespace file_reflink::reliability;

#define FILE_REFLINK_FAULT_SWEEP(op) \
  TEST_CASE("fault sweep: " op "<memory>") { sweep_all_kinds("fault sweep", operation_named(op), fault_sweep); }

FILE_REFLINK_FAULT_SWEEP("create")
FILE_REFLINK_FAULT_SWEEP("create over leftovers")
FILE_REFLINK_FAULT_SWEEP("verify")
FILE_REFLINK_FAULT_SWEEP("remove")
FILE_REFLINK_FAULT_SWEEP("remove while running (forced)")
FILE_REFLINK_FAULT_SWEEP("start")
FILE_REFLINK_FAULT_SWEEP("start while dirty")
FILE_REFLINK_FAULT_SWEEP("stop")
FILE_REFLINK_FAULT_SWEEP("stop when stopped")
FILE_REFLINK_FAULT_SWEEP("is_dirty")
FILE_REFLINK_FAULT_SWEEP("is_outdated")
FILE_REFLINK_FAULT_SWEEP("revisions")
FILE_REFLINK_FAULT_SWEEP("revert")
FILE_REFLINK_FAULT_SWEEP("revert(1)")
FILE_REFLINK_FAULT_SWEEP("revert(label)")
FILE_REFLINK_FAULT_SWEEP("keep_revision")
FILE_REFLINK_FAULT_SWEEP("unkeep_revision")
FILE_REFLINK_FAULT_SWEEP("drop_revision(n)")
FILE_REFLINK_FAULT_SWEEP("drop_revision(label)")
FILE_REFLINK_FAULT_SWEEP("resize")
FILE_REFLINK_FAULT_SWEEP("resize while running")
FILE_REFLINK_FAULT_SWEEP("export")
FILE_REFLINK_FAULT_SWEEP("export_end")
FILE_REFLINK_FAULT_SWEEP("import_data")
FILE_REFLINK_FAULT_SWEEP("import_data_end(true)")
FILE_REFLINK_FAULT_SWEEP("import_data_end(false)")
FILE_REFLINK_FAULT_SWEEP("import_volume")
FILE_REFLINK_FAULT_SWEEP("size")
FILE_REFLINK_FAULT_SWEEP("usage")
FILE_REFLINK_FAULT_SWEEP("space")
FILE_REFLINK_FAULT_SWEEP("block_device")
FILE_REFLINK_FAULT_SWEEP("discard")
FILE_REFLINK_FAULT_SWEEP("discard while running")
FILE_REFLINK_FAULT_SWEEP("sparsify")
FILE_REFLINK_FAULT_SWEEP("receive (full stream)")
FILE_REFLINK_FAULT_SWEEP("receive (incremental stream)")

TEST_CASE("fault sweep: every operation of the list is swept<memory>") {
  // The macro list above and operations() must not drift apart.
  CHECK(file_reflink::reliability::operations().size() == 36);
}
