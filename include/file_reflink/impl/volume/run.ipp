// SPDX-License-Identifier: BSL-1.0
//! \file
//! How every public operation of `Volume` runs (`run`, `query`, `run_with`):
//! the volume's locks, the pool directory's check, the catalog followed, the
//! operation's name and vid in front of any error, no exception out; and
//! `hold`, what an operation holds. Defined here rather than in the class so
//! that `volume.hpp` needs only declarations of the pool's core.
#pragma once

#include <file_reflink/detail/no_throw.hpp>
#include <file_reflink/detail/pool_core.hpp>
#include <file_reflink/detail/volume_step.hpp>
#include <file_reflink/volume.hpp>

#include <string>
#include <string_view>
#include <tuple>
#include <utility>

namespace file_reflink {

//! What an operation holds of one volume: its lock in this process (when
//! this pool object registered it), then its byte of the pool's lock file.
//! Released in the opposite order.
template <class FsOps>
struct Volume<FsOps>::hold {
  detail::local_lock local;
  typename core_type::held_lock file;
};

template <class FsOps>
Volume<FsOps>::Volume(std::shared_ptr<core_type> core, std::shared_ptr<detail::volume_state> st)
    : core_(std::move(core)), st_(std::move(st)) {
#if defined(FILE_REFLINK_SEPARATE_COMPILATION)
  static_assert(detail::check_fs_ops<FsOps>::value, "file_reflink::Volume: FsOps is not a filesystem policy");
#endif
}

template <class FsOps>
bool Volume<FsOps>::ephemeral() const noexcept {
  auto c = st_->config();
  return c->ephemeral || (core_->cfg.ephemeral_volatile && c->kind() == volume_kind::volatile_);
}

template <class FsOps>
template <class F>
auto Volume<FsOps>::run(const char* op, F&& f, lock_mode mode) noexcept -> decltype(f(std::declval<step&>())) {
  return run_with(op, nullptr, std::forward<F>(f), mode);
}

template <class FsOps>
template <class F>
auto Volume<FsOps>::query(const char* op, F&& f) noexcept -> decltype(f(std::declval<step&>())) {
  return run(op, std::forward<F>(f), lock_mode::shared);
}

template <class FsOps>
template <class F>
auto Volume<FsOps>::run_with(const char* op, const other_volume* other, F&& f, lock_mode mode) noexcept
    -> decltype(f(std::declval<step&>())) {
  using R = decltype(f(std::declval<step&>()));
  const auto what = [&] { return std::string(op) + " volume " + detail::q(vid()); };
  return detail::no_throw<R>(what, [&]() -> R {
    const detail::deadline until = detail::deadline_of(core_->cfg);
    auto h = core_->dir();
    if (!h) return failure(std::move(h).error().context(what()));
    hold own, theirs;
    if (!other) {
      if (auto r = acquire(*core_, h.value(), st_.get(), vid(), mode, until, own); !r)
        return failure(std::move(r).error().context(what()));
      if (auto r = follow_catalog(h.value(), mode); !r) return failure(std::move(r).error().context(what()));
      step s(*core_, *st_, h.value());
      auto r = f(s);
      if (!r) return failure(std::move(r).error().context(what()));
      return r;
    }
    handle other_h = h.value();
    if (other->core != core_.get()) {
      auto oh = other->core->dir();
      if (!oh) return failure(std::move(oh).error().context(what()));
      other_h = std::move(oh).value();
    }
    const file_stat a = core_->identity(), b = other->core->identity();
    const auto key_a = std::make_tuple(a.dev, a.ino, std::string_view(vid()));
    const auto key_b = std::make_tuple(b.dev, b.ino, std::string_view(other->vid));
    if (key_a == key_b)
      return failure(error(make_error_code(errc::invalid_config), "the source is the volume itself").context(what()));
    auto own_first = [&]() -> result<void> {
      FILE_REFLINK_TRYV(acquire(*core_, h.value(), st_.get(), vid(), mode, until, own));
      return acquire(*other->core, other_h, other->st.get(), other->vid, lock_mode::shared, until, theirs);
    };
    auto theirs_first = [&]() -> result<void> {
      FILE_REFLINK_TRYV(acquire(*other->core, other_h, other->st.get(), other->vid, lock_mode::shared, until, theirs));
      return acquire(*core_, h.value(), st_.get(), vid(), mode, until, own);
    };
    if (auto r = key_a < key_b ? own_first() : theirs_first(); !r) return failure(std::move(r).error().context(what()));
    if (auto r = follow_catalog(h.value(), mode); !r) return failure(std::move(r).error().context(what()));
    step s(*core_, *st_, h.value());
    auto r = f(s);
    if (!r) return failure(std::move(r).error().context(what()));
    return r;
  });
}

}  // namespace file_reflink
