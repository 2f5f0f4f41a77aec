// SPDX-License-Identifier: BSL-1.0
#include "progress.hpp"

#include "sizes.hpp"

#include <signal.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>

namespace file_reflink::cli {

namespace {

std::atomic<int> interrupt_flag{0};
static_assert(std::atomic<int>::is_always_lock_free, "the signal handler needs a lock-free flag");

//! The first signal is the one the exit status reports (a SIGPIPE after
//! Ctrl-C, say, when the reader went away too).
extern "C" void on_interrupt(int sig) {
  int none = 0;
  interrupt_flag.compare_exchange_strong(none, sig, std::memory_order_relaxed);
}

//! "1:05:09" or "4:07".
std::string clock_text(double seconds) {
  long s = seconds < 0 ? 0 : static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

int terminal_width() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 40) return ws.ws_col;
  return 80;
}

}  // namespace

void install_interrupt_handler() {
  struct sigaction sa {};
  sa.sa_handler = on_interrupt;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a blocked read or flock returns EINTR
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) {
    // A signal ignored by whoever started the command (nohup, a background
    // job) stays ignored. SIGPIPE is caught all the same: a write to a
    // closed pipe fails with EPIPE either way, and the command stops as it
    // does for the signal.
    struct sigaction old {};
    if (sig != SIGPIPE && ::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    ::sigaction(sig, &sa, nullptr);
  }
}

bool interrupted() noexcept { return interrupt_signal() != 0; }

int interrupt_signal() noexcept { return interrupt_flag.load(std::memory_order_relaxed); }

bool ProgressBar::stderr_is_terminal() noexcept { return ::isatty(STDERR_FILENO) == 1; }

bool ProgressBar::update(std::string_view what, std::uint64_t done, std::uint64_t total) {
  if (interrupted()) return false;
  if (!enabled_) return true;
  auto now = clock::now();
  if (!active_ || what != what_ || done < last_done_) {  // a new copy
    finish();
    active_ = true;
    what_ = std::string(what);
    start_ = now;
  }
  last_done_ = done;
  if (total && done >= total) {
    finish();
    return true;
  }
  // "More than a moment": nothing for the first half second, then at most
  // ten redraws a second.
  if (now - start_ < std::chrono::milliseconds(500)) return true;
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return true;
  draw(what, done, total, now);
  return true;
}

void ProgressBar::draw(std::string_view what, std::uint64_t done, std::uint64_t total, clock::time_point now) {
  last_draw_ = now;
  double elapsed = std::chrono::duration<double>(now - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0;
  std::string left = rate > 0 && total > done ? clock_text(static_cast<double>(total - done) / rate) + " left" : "";
  double fraction = total ? std::min(1.0, static_cast<double>(done) / static_cast<double>(total)) : 1.0;
  char tail[128];
  std::snprintf(tail, sizeof tail, " %3d%% %s/%s %s/s %s", static_cast<int>(fraction * 100), format_size(done).c_str(),
                format_size(total).c_str(), format_size(static_cast<std::uint64_t>(rate)).c_str(), left.c_str());
  std::string label(what.substr(0, 24));
  int width = terminal_width() - 1 - static_cast<int>(label.size()) - static_cast<int>(std::string(tail).size()) - 3;
  width = std::max(10, std::min(width, 50));
  int filled = static_cast<int>(fraction * width);
  std::string bar = label + " [" + std::string(static_cast<std::size_t>(filled), '#') +
                    std::string(static_cast<std::size_t>(width - filled), '-') + "]" + tail;
  std::fprintf(stderr, "\r%s\x1b[K", bar.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (drawn_) {
    std::fprintf(stderr, "\r\x1b[K");
    std::fflush(stderr);
  }
  drawn_ = false;
  active_ = false;
  last_done_ = 0;
  what_.clear();
}

}  // namespace file_reflink::cli
