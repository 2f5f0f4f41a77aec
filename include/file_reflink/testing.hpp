// SPDX-License-Identifier: BSL-1.0
//! \file
//! What tests of tooling built on file_reflink use: `MemoryFsOps`, the
//! in-memory copy-on-write filesystem, and decorators that wrap any policy
//! (`LinuxFsOps`, `MemoryFsOps`, your own):
//!
//! - `forwarding_fs_ops<Inner>`: every operation forwarded to `Inner`; derive
//!   from it and redefine only the operations you want to watch or change.
//! - `counting_fs_ops<Inner>`: counts the calls of each operation.
//! - `faulty_fs_ops<Inner>`: fails chosen calls with a chosen error.
//!
//! \code
//! // Every rename a Pool<LinuxFsOps> makes, logged: the whole policy is this.
//! struct logged_ops : file_reflink::forwarding_fs_ops<file_reflink::LinuxFsOps> {
//!   using forwarding_fs_ops::forwarding_fs_ops;
//!   file_reflink::result<void> rename(const dir_handle& d, const file_reflink::path& from,
//!                                     const file_reflink::path& to) const noexcept {
//!     std::fprintf(stderr, "rename %s -> %s\n", from.c_str(), to.c_str());
//!     return inner().rename(d, from, to);
//!   }
//! };
//! file_reflink::Pool<logged_ops> pool(cfg);
//! \endcode
//!
//! Production code includes `file_reflink.hpp`, which has none of this.
#pragma once

#include <file_reflink/detail/copy.hpp>
#include <file_reflink/error.hpp>
#include <file_reflink/fs_op.hpp>
#include <file_reflink/fs_ops.hpp>
#include <file_reflink/fs_ops/memory.hpp>
#include <file_reflink/fs_types.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace file_reflink {

//! What a decorator's hook sees before each call, and how it makes the call
//! fail: a hook is an object with `std::error_code before(fs_op) const
//! noexcept`; a non-zero code fails the call with that code (the policy is
//! not called), zero lets it through.
struct no_hook {
  std::error_code before(fs_op) const noexcept { return {}; }
};

//! A policy that forwards every operation to an `Inner` policy, after asking
//! its `Hook`. Derive from it and redefine an operation (same signature,
//! `noexcept`) to change that one; the others keep forwarding. Copies share
//! what `Inner` and `Hook` share.
template <class Inner, class Hook = no_hook>
class forwarding_fs_ops {
 public:
  using inner_type = Inner;
  using hook_type = Hook;
  using dir_handle = typename Inner::dir_handle;
  using lock_file = typename Inner::lock_file;

  forwarding_fs_ops() = default;
  explicit forwarding_fs_ops(Inner inner, Hook hook = Hook{}) : inner_(std::move(inner)), hook_(std::move(hook)) {}

  //! The wrapped policy.
  Inner& inner() noexcept { return inner_; }
  const Inner& inner() const noexcept { return inner_; }
  //! The hook.
  Hook& hook() noexcept { return hook_; }
  const Hook& hook() const noexcept { return hook_; }

  // One member per operation of the contract, generated from its list: the
  // return type is the contract's, the arguments are passed on untouched.
#define FILE_REFLINK_FORWARD_(name, ret, params)                                                      \
  template <class... A>                                                                               \
  ret name(A&&... a) const noexcept {                                                                 \
    if (const std::error_code ec = hook_.before(fs_op::name)) return injected_failure(fs_op::name, ec, a...); \
    return inner_.name(std::forward<A>(a)...);                                                        \
  }
  FILE_REFLINK_FS_OPERATIONS(FILE_REFLINK_FORWARD_)
#undef FILE_REFLINK_FORWARD_

  // The optional operations: forwarded where `Inner` has them; where it
  // lacks one, the call fails with `std::errc::operation_not_supported`, which
  // the library takes as "not available".
#define FILE_REFLINK_FORWARD_OPTIONAL_(name, ret, params)                                             \
  template <class... A>                                                                               \
  ret name(A&&... a) const noexcept {                                                                 \
    if (const std::error_code ec = hook_.before(fs_op::name)) return injected_failure(fs_op::name, ec, a...); \
    if constexpr (has_##name##_v<Inner> && sizeof...(A) >= 0) {                                       \
      return inner_.name(std::forward<A>(a)...);                                                      \
    } else {                                                                                          \
      return injected_failure(fs_op::name, std::make_error_code(std::errc::operation_not_supported), a..., \
                              not_provided{});                                                        \
    }                                                                                                 \
  }
  FILE_REFLINK_FS_OPTIONAL_OPERATIONS(FILE_REFLINK_FORWARD_OPTIONAL_)
#undef FILE_REFLINK_FORWARD_OPTIONAL_

 private:
  //! Marks a failure as the inner policy's missing operation, not an injection.
  struct not_provided {};
  //! "rename 'a' -> 'b' (injected): reason": the operation and the paths it
  //! was given, as the policy itself would say them.
  template <class... A>
  static auto injected_failure(fs_op op, const std::error_code& ec, const A&... a) noexcept {
    return errno_failure_nothrow(ec.value(), [&] {
      std::string m = to_string(op);
      const char* sep = " ";
      const auto add = [&](const auto& arg) {
        if constexpr (std::is_convertible<decltype(arg), const path&>::value) {
          m += sep;
          m += "'" + path(arg).string() + "'";
          sep = " -> ";
        }
      };
      (add(a), ...);
      return m + ((std::is_same<A, not_provided>::value || ...) ? " (not provided)" : " (injected)");
    });
  }

  Inner inner_;
  Hook hook_;
};

//! Calls of each operation, shared by the copies of a `counting_fs_ops` (so
//! by a Pool's copy and the test's). Thread-safe.
class call_counts {
 public:
  //! Calls of `op` since creation or `reset`.
  std::uint64_t operator[](fs_op op) const noexcept {
    return s_->n[static_cast<std::size_t>(op)].load(std::memory_order_relaxed);
  }
  //! Calls of every operation.
  std::uint64_t total() const noexcept {
    std::uint64_t t = 0;
    for (const auto& c : s_->n) t += c.load(std::memory_order_relaxed);
    return t;
  }
  void reset() noexcept {
    for (auto& c : s_->n) c.store(0, std::memory_order_relaxed);
  }
  //! The hook side: count one call.
  std::error_code before(fs_op op) const noexcept {
    s_->n[static_cast<std::size_t>(op)].fetch_add(1, std::memory_order_relaxed);
    return {};
  }

 private:
  struct state {
    std::array<std::atomic<std::uint64_t>, fs_op_count> n{};
  };
  std::shared_ptr<state> s_ = std::make_shared<state>();
};

//! `Inner` with every call counted: `ops.counts()[fs_op::fsync]`.
template <class Inner>
class counting_fs_ops : public forwarding_fs_ops<Inner, call_counts> {
 public:
  using forwarding_fs_ops<Inner, call_counts>::forwarding_fs_ops;
  //! The counts (shared by every copy of this policy).
  const call_counts& counts() const noexcept { return this->hook(); }
  void reset_counts() noexcept { this->hook().reset(); }
};

//! Which calls fail, shared by the copies of a `faulty_fs_ops`. Thread-safe.
class fault_plan {
 public:
  //! The `nth` call of `op` from now on (1 = the next) fails with `err` (an
  //! errno value), and so do the `times - 1` calls of `op` after it.
  void fail(fs_op op, int err, std::uint64_t nth = 1, std::uint64_t times = 1) {
    std::lock_guard<std::mutex> g(s_->m);
    auto& r = s_->rules[static_cast<std::size_t>(op)];
    r.skip = nth == 0 ? 0 : nth - 1;
    r.left = times;
    r.err = err;
  }
  //! Every call of `op` from now on fails with `err`, until `clear`.
  void fail_always(fs_op op, int err) { fail(op, err, 1, UINT64_MAX); }
  //! No more failures.
  void clear() {
    std::lock_guard<std::mutex> g(s_->m);
    for (auto& r : s_->rules) r = rule{};
  }
  //! How many calls failed on purpose so far.
  std::uint64_t injected() const {
    std::lock_guard<std::mutex> g(s_->m);
    return s_->injected;
  }
  //! The hook side.
  std::error_code before(fs_op op) const noexcept {
    std::lock_guard<std::mutex> g(s_->m);
    auto& r = s_->rules[static_cast<std::size_t>(op)];
    if (r.left == 0) return {};
    if (r.skip > 0) {
      --r.skip;
      return {};
    }
    if (r.left != UINT64_MAX) --r.left;
    ++s_->injected;
    return std::error_code(r.err, std::system_category());
  }

 private:
  struct rule {
    std::uint64_t skip = 0;
    std::uint64_t left = 0;
    int err = 0;
  };
  struct state {
    mutable std::mutex m;
    std::array<rule, fs_op_count> rules{};
    std::uint64_t injected = 0;
  };
  std::shared_ptr<state> s_ = std::make_shared<state>();
};

//! `Inner` with chosen calls failing: `ops.faults().fail(fs_op::fsync, EIO)`.
template <class Inner>
class faulty_fs_ops : public forwarding_fs_ops<Inner, fault_plan> {
 public:
  using forwarding_fs_ops<Inner, fault_plan>::forwarding_fs_ops;
  //! The plan (shared by every copy of this policy).
  fault_plan& faults() noexcept { return this->hook(); }
  const fault_plan& faults() const noexcept { return this->hook(); }
};

}  // namespace file_reflink
