// SPDX-License-Identifier: BSL-1.0
//! \file
//! `undo_stack`: what an operation undoes when it fails before its commit
//! point. Each step that changed something pushes the action that puts it
//! back; leaving the scope runs the actions, newest first, unless `commit()`
//! said the operation stands. Actions are best-effort (their own failures
//! are ignored: the operation's error is what the caller sees) and must not
//! throw; one that does is stopped there and the rest still run.
#pragma once

#include <exception>
#include <functional>
#include <utility>
#include <vector>

namespace file_reflink {
namespace detail {

class undo_stack {
public:
  undo_stack() noexcept : exceptions_(std::uncaught_exceptions()) {}
  undo_stack(const undo_stack&) = delete;
  undo_stack& operator=(const undo_stack&) = delete;
  //! Runs the actions when the operation returns (an error) without
  //! `commit()`. Not while an exception unwinds it: that is memory exhausted
  //! (the only exception the library meets), the actions would need memory
  //! too, and a half-run undo would leave less than a crash does. The
  //! files are then as a crash at that point leaves them, which the next
  //! operation and `recover` handle (the allocation-failure sweep checks it).
  ~undo_stack() {
    if (std::uncaught_exceptions() > exceptions_) return;
    run();
  }

  //! Undo `f` if the operation fails from now on (remembering it may need
  //! memory: without it, the exception ends the operation as above).
  template <class F>
  void push(F&& f) {
    actions_.emplace_back(std::forward<F>(f));
  }

  //! Forget the newest action without running it: the step it undid was
  //! superseded by one whose own action is pushed next.
  void pop() noexcept {
    if (!actions_.empty()) actions_.pop_back();
  }

  //! The commit point has passed: nothing is undone any more.
  void commit() noexcept { actions_.clear(); }

  //! Run every action now, newest first (as leaving the scope does).
  void run() noexcept {
    while (!actions_.empty()) {
      std::function<void()> f = std::move(actions_.back());
      actions_.pop_back();
      try {
        f();
      } catch (...) {
        // Best-effort: the next action still runs.
      }
    }
  }

private:
  std::vector<std::function<void()>> actions_;
  int exceptions_;  //!< exceptions in flight when the operation began
};

}  // namespace detail
}  // namespace file_reflink
