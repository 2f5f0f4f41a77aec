// SPDX-License-Identifier: BSL-1.0
//! \file
//! The progress meter of a copy, shared by both policies: one report per
//! piece moved and one at the end, and a callback that says stop (or
//! throws) cancels the copy.
#pragma once

#include <file_reflink/fs_types.hpp>

#include <cstdint>

namespace file_reflink::detail {

//! Counts the bytes a copy has moved and tells the caller's callback: after
//! each chunk, and once at the end unless the last report already said it.
class progress_meter {
public:
  progress_meter(const progress_callback& callback, std::uint64_t total) noexcept
      : callback_(callback), total_(total) {}

  //! `n` more bytes are done; false when the callback asks to stop.
  bool advance(std::uint64_t n) {
    done_ += n;
    return report();
  }
  //! The last report; false when the callback asks to stop.
  bool finish() { return reported_ && last_ == done_ ? true : report(); }

  std::uint64_t done() const noexcept { return done_; }
  //! The callback said stop (or threw, which is taken the same way).
  bool cancelled() const noexcept { return cancelled_; }

private:
  bool report() {
    if (!callback_) return true;
    reported_ = true;
    last_ = done_;
    bool go_on = false;
    try {
      go_on = callback_(done_, total_);
    } catch (...) {
      go_on = false;
    }
    cancelled_ = !go_on;
    return go_on;
  }

  const progress_callback& callback_;
  std::uint64_t total_;
  std::uint64_t done_ = 0;
  std::uint64_t last_ = 0;
  bool reported_ = false;
  bool cancelled_ = false;
};

}  // namespace file_reflink::detail
