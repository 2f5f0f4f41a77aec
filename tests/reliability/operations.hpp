// SPDX-License-Identifier: BSL-1.0
//! \file
//! Every volume operation of SPEC.md, as the sweeps run it: a name, the word
//! its error messages start with, the state it needs (`prep`: start a VM,
//! pin a revision, open an import) and the call itself. Variants that take
//! another path through the code (a running volume, a label, a failed
//! import) are operations of their own.
#pragma once

#include "world.hpp"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace file_reflink::reliability {

struct operation {
  std::string name;  //!< as the table and the test names say it
  std::string word;  //!< the operation word an error message starts with ("<word> volume 'vm/v'")
  bool fresh = false;  //!< the volume under test is registered but has no files yet
  std::function<result<void>(world&)> prep;
  std::function<result<void>(world&)> run;
  //! Once it returned, its result survives a crash (false: a discard in a
  //! running image, which a VM's TRIM does not need flushed, and the empty
  //! file import_data hands out, which recover removes after a crash).
  bool durable = true;
};

inline result<void> nothing(world&) { return success(); }

//! Start the volume and let its VM write (and flush) new data.
inline result<void> running(world& w) {
  FILE_REFLINK_TRYV(w.vol().start());
  if (w.kind == kind_id::volatile_ || w.kind == kind_id::snapshot) return success();
  return w.vm_write(vid, 21);
}

inline result<void> pinned(world& w) { return w.vol().keep_revision(1, "gold"); }

//! Send the volume's committed image (since revision `since`, if given)
//! into `w.stream`.
inline result<void> send_into(world& w, std::optional<std::uint64_t> since) {
  w.stream.clear();
  auto sink = [&w](const void* d, std::size_t n) -> result<void> {
    w.stream.append(static_cast<const char*>(d), n);
    return success();
  };
  std::optional<image_ref> base;
  if (since) base = image_ref::revision(*since);
  return as_void(w.vol().send(sink, base));
}

//! Receive `w.stream`.
inline result<void> receive_stream(world& w) {
  auto at = std::make_shared<std::size_t>(0);
  auto source = [&w, at](void* buf, std::size_t n) -> result<std::size_t> {
    n = std::min(n, w.stream.size() - *at);
    std::memcpy(buf, w.stream.data() + *at, n);
    *at += n;
    return n;
  };
  return as_void(w.vol().receive(source));
}

inline const std::vector<operation>& operations() {
  static const std::vector<operation> ops = {
      {"create", "create", true, nothing, [](world& w) { return w.vol().create(); }},
      {"create over leftovers", "create", false, nothing, [](world& w) { return w.vol().create(); }},
      {"verify", "verify", false, nothing, [](world& w) { return w.vol().verify(); }},
      {"remove", "remove", false, nothing, [](world& w) { return w.vol().remove(); }},
      {"remove while running (forced)", "remove", false, running, [](world& w) { return w.vol().remove(true); }},
      {"start", "start", false, nothing, [](world& w) { return w.vol().start(); }},
      {"start while dirty", "start", false, running, [](world& w) { return w.vol().start(); }},
      {"stop", "stop", false, running, [](world& w) { return w.vol().stop(); }},
      {"stop when stopped", "stop", false, nothing, [](world& w) { return w.vol().stop(); }},
      {"is_dirty", "is_dirty", false, running, [](world& w) { return as_void(w.vol().is_dirty()); }},
      {"is_outdated", "is_outdated", false,
       [](world& w) -> result<void> {
         FILE_REFLINK_TRYV(w.vol().start());
         return w.session(src_vid, 31);
       },
       [](world& w) { return as_void(w.vol().is_outdated()); }},
      {"revisions", "revisions", false, nothing, [](world& w) { return as_void(w.vol().revisions()); }},
      {"revert", "revert", false, nothing, [](world& w) { return w.vol().revert(); }},
      {"revert(1)", "revert", false, nothing, [](world& w) { return w.vol().revert(std::uint64_t(1)); }},
      {"revert(label)", "revert", false, pinned, [](world& w) { return w.vol().revert("gold"); }},
      {"keep_revision", "keep_revision", false, nothing, [](world& w) { return w.vol().keep_revision(1, "gold"); }},
      {"unkeep_revision", "unkeep_revision", false, pinned, [](world& w) { return w.vol().unkeep_revision("gold"); }},
      {"drop_revision(n)", "drop_revision", false, nothing, [](world& w) { return w.vol().drop_revision(std::uint64_t(1)); }},
      {"drop_revision(label)", "drop_revision", false, pinned, [](world& w) { return w.vol().drop_revision("gold"); }},
      {"resize", "resize", false, nothing, [](world& w) { return w.vol().resize(2 * image_size); }},
      {"resize while running", "resize", false, running, [](world& w) { return w.vol().resize(2 * image_size); }},
      {"export", "export", false, nothing, [](world& w) { return as_void(w.vol().export_()); }},
      {"export_end", "export_end", false,
       [](world& w) -> result<void> {
         FILE_REFLINK_TRY(auto p, w.vol().export_());
         w.exported = p;
         return success();
       },
       [](world& w) { return w.vol().export_end(w.exported ? *w.exported : path("/nowhere")); }},
      {"import_data", "import_data", false, nothing, [](world& w) { return as_void(w.vol().import_data(image_size)); },
       false},
      {"import_data_end(true)", "import_data_end", false,
       [](world& w) -> result<void> {
         FILE_REFLINK_TRYV(w.vol().import_data(image_size));
         std::string data = pattern(8 * KiB, 41);
         // The importer's writes are not flushed: the commit must do it.
         return w.fs.write(w.dir(), path(vid + "-import.img"), 4 * KiB, data.data(), data.size());
       },
       [](world& w) { return w.vol().import_data_end(true); }},
      {"import_data_end(false)", "import_data_end", false,
       [](world& w) { return as_void(w.vol().import_data(image_size)); },
       [](world& w) { return w.vol().import_data_end(false); }},
      {"import_volume", "import_volume", false, nothing,
       [](world& w) { return as_void(w.vol().import_volume(w.vol(src_vid))); }},
      {"size", "size", false, nothing, [](world& w) { return as_void(w.vol().size()); }},
      {"usage", "usage", false, nothing, [](world& w) { return as_void(w.vol().usage()); }},
      {"space", "space", false, nothing, [](world& w) { return as_void(w.vol().space()); }},
      {"block_device", "block_device", false, running, [](world& w) { return as_void(w.vol().block_device()); }},
      {"discard", "discard", false, nothing, [](world& w) { return w.vol().discard(8 * KiB, 8 * KiB); }},
      {"discard while running", "discard", false, running, [](world& w) { return w.vol().discard(8 * KiB, 8 * KiB); },
       false},
      {"sparsify", "sparsify", false, nothing, [](world& w) { return as_void(w.vol().sparsify()); }},
      // A full stream of the committed image, then a commit over it: the
      // receive brings the image back.
      {"receive (full stream)", "receive", false,
       [](world& w) -> result<void> {
         FILE_REFLINK_TRYV(send_into(w, std::nullopt));
         return w.session(vid, 51);
       },
       receive_stream},
      // The changes of a commit, sent; then a revert to the image before it:
      // the receive applies them to the committed image again.
      {"receive (incremental stream)", "receive", false,
       [](world& w) -> result<void> {
         FILE_REFLINK_TRYV(w.session(vid, 52));
         FILE_REFLINK_TRY(auto revs, w.vol().revisions());
         if (revs.empty()) return failure(errc::revision_not_found, "no revision to send the changes since");
         FILE_REFLINK_TRYV(send_into(w, revs.rbegin()->first));
         return w.vol().revert();
       },
       receive_stream},
  };
  return ops;
}

inline const operation& operation_named(const std::string& name) {
  for (auto& op : operations())
    if (op.name == name) return op;
  FAIL("no operation " << name);
  throw 0;
}

}  // namespace file_reflink::reliability
