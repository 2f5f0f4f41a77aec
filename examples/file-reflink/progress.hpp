// SPDX-License-Identifier: BSL-1.0
//! \file
//! Signals and the progress bar. SIGINT, SIGTERM, SIGHUP and SIGPIPE only
//! record which signal came: a copy in progress sees it at its next progress
//! report (a blocked read or write, at once), returns false, and the library
//! cancels it and removes what it made; the command then exits with 128 + the
//! signal's number. A command never dies half-way through a rename.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace file_reflink::cli {

//! Catch SIGINT, SIGTERM, SIGHUP and SIGPIPE, without SA_RESTART, so that a
//! blocking read, write or lock wait returns EINTR and the command can look
//! at what came. One of the first three that the command was started with
//! ignored (nohup) stays ignored.
void install_interrupt_handler();

//! One of those signals came (Ctrl-C, kill, a closed terminal or ssh
//! session, a reader that closed its pipe).
bool interrupted() noexcept;

//! The first of those signals that came, or 0.
int interrupt_signal() noexcept;

//! A progress bar with rate and time left, on stderr, redrawn in place.
//! It draws only on a terminal, only when not silenced, and only once a copy
//! has taken more than a moment: quick copies print nothing.
class ProgressBar {
public:
  //! `enabled`: stderr is a terminal and --quiet was not given.
  explicit ProgressBar(bool enabled) noexcept : enabled_(enabled) {}
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  ~ProgressBar() { finish(); }

  //! `done` of `total` bytes of `what`; false once Ctrl-C was pressed (the
  //! copy should stop).
  bool update(std::string_view what, std::uint64_t done, std::uint64_t total);

  //! Erase the bar (the next copy starts a new one).
  void finish();

  //! Whether stderr is a terminal.
  static bool stderr_is_terminal() noexcept;

private:
  using clock = std::chrono::steady_clock;
  void draw(std::string_view what, std::uint64_t done, std::uint64_t total, clock::time_point now);

  bool enabled_;
  bool active_ = false;   // a copy is under way
  bool drawn_ = false;    // a bar is on the screen
  std::uint64_t last_done_ = 0;
  std::string what_;
  clock::time_point start_{};
  clock::time_point last_draw_{};
};

}  // namespace file_reflink::cli
