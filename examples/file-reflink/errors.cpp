// SPDX-License-Identifier: BSL-1.0
#include "errors.hpp"

#include "progress.hpp"

#include <cstdio>

namespace file_reflink::cli {

namespace {

class usage_category final : public std::error_category {
public:
  const char* name() const noexcept override { return "file-reflink usage"; }
  std::string message(int) const override { return "invalid argument"; }
  std::error_condition default_error_condition(int) const noexcept override {
    return std::errc::invalid_argument;
  }
};

const std::error_category& usage() noexcept {
  static const usage_category category;
  return category;
}

//! One line: a message never spans lines on stderr, whatever a path holds.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

error usage_error(const std::string& what) { return error(std::error_code(1, usage()), what); }

int exit_status_of(const error& e) noexcept {
  const std::error_code& c = e.code();
  if (c.category() == usage() || c == errc::invalid_vid || c == errc::invalid_revision_label ||
      c == errc::invalid_config)
    return exit_usage;
  // A signal ended it: the cancelled copy, or the write to a closed pipe.
  if (int sig = interrupt_signal()) return exit_signalled(sig);
  if (c == errc::cancelled) return exit_cancelled;
  // A lock wait that gave up (on a volume, or on the catalog): unlike a
  // running volume, worth retrying as it is.
  if (c == errc::volume_busy) return exit_busy;
  if (c == std::errc::no_such_file_or_directory) return exit_not_found;
  return exit_failed;
}

void print_error(const error& e) {
  std::fprintf(stderr, "file-reflink: %s\n", one_line(e.message()).c_str());
  std::fflush(stderr);
}

void print_warning(const std::string& message) {
  std::fprintf(stderr, "file-reflink: warning: %s\n", one_line(message).c_str());
  std::fflush(stderr);
}

}  // namespace file_reflink::cli
