// SPDX-License-Identifier: BSL-1.0
// Built as C++20 only (tests/cxx20 is outside the C++17 glob): the policy
// requirements as the `FsOps` concept.
#include "../fixtures.hpp"

#include <file_reflink/fs_ops.hpp>

#include <doctest/doctest.h>

namespace {

using namespace file_reflink;

static_assert(__cplusplus >= 202002L, "this file is the C++20 build");

static_assert(FsOps<LinuxFsOps>);
static_assert(FsOps<MemoryFsOps>);

//! A policy that has every operation but rename.
struct LacksRename : MemoryFsOps {
  void rename() = delete;
};
static_assert(!FsOps<LacksRename>);
static_assert(!has_rename_v<LacksRename>);

//! The optional operations may be missing: still a policy.
struct WithoutOptional : MemoryFsOps {
  void copy_range() = delete;
  void notify_resize() = delete;
};
static_assert(FsOps<WithoutOptional>);
static_assert(!has_copy_range_v<WithoutOptional> && !has_notify_resize_v<WithoutOptional>);
static_assert(has_copy_range_v<MemoryFsOps> && has_notify_resize_v<LinuxFsOps>);

//! An operation that is there but may throw is not good enough.
struct ThrowingStat : MemoryFsOps {
  result<file_stat> stat(const dir_handle&, const path&) { return file_stat{}; }
};
static_assert(!FsOps<ThrowingStat>);

//! Nor is one that returns the wrong type.
struct WrongRead : MemoryFsOps {
  result<int> read(const dir_handle&, const path&, std::uint64_t, void*, std::size_t) noexcept { return 0; }
};
static_assert(!FsOps<WrongRead>);

static_assert(!FsOps<int>);

//! The concept works in a constrained template the way a user writes one.
template <FsOps Ops>
constexpr bool accepts(const Ops&) {
  return true;
}
template <class Ops>
constexpr bool accepts(const Ops&) {
  return false;
}

}  // namespace

TEST_CASE("concepts: FsOps accepts both policies and rejects a policy that lacks an operation") {
  CHECK(accepts(LinuxFsOps{}));
  CHECK(accepts(MemoryFsOps{}));
  CHECK_FALSE(accepts(LacksRename{}));
  CHECK_FALSE(accepts(0));
}
