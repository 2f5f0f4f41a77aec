// SPDX-License-Identifier: BSL-1.0
// A policy of your own over LinuxFsOps: every name the pool changes on disk,
// reported to a callback (an audit log). The whole policy is the struct
// below; every other operation is forwarded untouched.
#pragma once

#include <file_reflink/file_reflink.hpp>
#include <file_reflink/testing.hpp>

#include <functional>
#include <string>

template <class Inner = file_reflink::LinuxFsOps>
struct audited_fs_ops : file_reflink::forwarding_fs_ops<Inner> {
  using dir_handle = typename Inner::dir_handle;
  using path = file_reflink::path;
  std::function<void(const std::string&)> audit = [](const std::string&) {};

  file_reflink::result<void> rename(const dir_handle& d, const path& from, const path& to) const noexcept {
    auto r = this->inner().rename(d, from, to);
    if (r) try { audit("rename " + from.string() + " -> " + to.string()); } catch (...) {}
    return r;
  }
  file_reflink::result<void> remove(const dir_handle& d, const path& name) const noexcept {
    auto r = this->inner().remove(d, name);
    if (r) try { audit("remove " + name.string()); } catch (...) {}
    return r;
  }
};
