// SPDX-License-Identifier: BSL-1.0
#include "errors.hpp"

#include "output.hpp"
#include "progress.hpp"

#include <cstdio>
#include <utility>
#include <vector>

namespace file_reflink::cli {

namespace {

enum class cli_code { usage = 1, not_a_pool, wrong_kind };

class usage_category final : public std::error_category {
public:
  const char* name() const noexcept override { return "file-reflink usage"; }
  std::string message(int c) const override {
    switch (static_cast<cli_code>(c)) {
      case cli_code::usage: return "invalid argument";
      case cli_code::not_a_pool: return "not a pool (pool init makes one)";
      case cli_code::wrong_kind: return "not a directory";
    }
    return "invalid argument";
  }
  std::error_condition default_error_condition(int c) const noexcept override {
    if (static_cast<cli_code>(c) == cli_code::not_a_pool) return std::errc::no_such_file_or_directory;
    if (static_cast<cli_code>(c) == cli_code::wrong_kind) return std::errc::not_a_directory;
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

bool json_errors = false;
std::vector<std::string> kept;  // warnings and notes held back under --json

bool word_char(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

//! Replace the whole word `from` (not part of a longer identifier) by `to`,
//! outside quoted names (a vid or a path is never rewritten).
std::string replace_word(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  bool quoted = false;
  for (std::size_t i = 0; i < s.size();) {
    if (s[i] == '\'') {
      quoted = !quoted;
      out += s[i++];
      continue;
    }
    if (!quoted && s.compare(i, from.size(), from) == 0 && (i == 0 || !word_char(s[i - 1])) &&
        (i + from.size() >= s.size() || !word_char(s[i + from.size()]) || from.back() == ')')) {
      out += to;
      i += from.size();
      continue;
    }
    out += s[i++];
  }
  return out;
}

//! The library's names for what it was doing, as the command says them.
//! Volume operations ("keep_revision volume 'v'") and the file operations
//! under them ("open_dir '/p'").
const std::pair<const char*, const char*> library_words[] = {
    // volume operations: "<op> volume 'vid'"
    {"import_data_end volume", "import into volume"},
    {"import_data volume", "import into volume"},
    {"import_volume volume", "copy a source into volume"},
    {"keep_revision volume", "keep a revision of volume"},
    {"drop_revision volume", "drop a revision of volume"},
    {"unkeep_revision volume", "unkeep a label of volume"},
    {"export_end volume", "export volume"},
    {"block_device volume", "find the image of volume"},
    {"is_outdated volume", "read the state of volume"},
    {"is_dirty volume", "read the state of volume"},
    {"is_running volume", "read the state of volume"},
    {"update volume", "set a setting of volume"},
    {"changed_ranges volume", "compare images of volume"},
    {"init_volume", "register volume"},
    {"size of pool", "read the size of pool"},
    {"usage of pool", "read the usage of pool"},
    {"setup pool", "make pool"},
    // file operations
    {"open_dir", "open directory"},
    {"open_lock", "open the lock file"},
    {"stat_path", "stat"},
    {"read_file", "read"},
    {"write_file", "write"},
    {"remove_dir", "remove directory"},
    {"punch_hole", "punch a hole in"},
    {"copy_range", "copy"},
    {"probe_reflink", "test reflinks in"},
    {"set_mtime", "set the time of"},
    {"attach_loop", "attach a loop device to"},
    {"data_segments", "map the data of"},
    {"notify_resize", "tell the loop device the new size of"},
    {"path_of", "find the path of"},
    {"advise_willneed", "read ahead in"},
    {"storage_extents", "map the data of"},
    // settings and calls named in explanations
    {"pass setup_check=false to use that fallback anyway", "--no-setup-check makes a pool without them"},
    {"setup_check", "--no-setup-check"},
    {"run setup() to make the pool", "pool init makes one"},
    {"run setup() to make a new pool there", "pool init makes a new pool there"},
    {"setup()", "pool init"},
    {"import_data was not called", "no import was started"},
    {"a stopped volume without save_on_stop has no image", "a stopped volume that does not keep its data has no image"},
    {"save_on_stop is off", "it does not keep its data"},
    {"save_on_stop", "keeping its data"},
    {"snap_on_start needs a source volume", "a snapshot volume needs --source"},
    {"snap_on_start is off", "it does not start from a source"},
    {"snap_on_start", "starting from a source"},
    {"volume is running (dirty)", "volume is running"},
};

//! The reason of a library condition, as the command says it, with what to
//! do about it; empty: the library's text is right as it is.
std::string command_reason(const error& e, const error_subject& s) {
  const std::error_code& c = e.code();
  const std::string vid = s.vid.empty() ? "the volume" : s.vid;
  if (c == errc::volume_dirty) return vid + " is running: stop it first";
  if (c == errc::volume_running) return vid + " is running: stop it first (or --force)";
  if (c == errc::volume_not_running) return vid + " is not running: start it first";
  if (c == errc::not_save_on_stop)
    return vid + " does not keep its data (a volatile or snapshot volume): nothing to import, export or sparsify";
  if (c == errc::read_only) return vid + " is read-only (volume set DIR VID rw true changes that)";
  if (c == errc::source_in_use) return vid + " is the source of other volumes (--force removes it anyway)";
  if (c == errc::revision_not_found) return "no such revision (volume revisions lists them)";
  if (c == errc::volume_not_found) return "no such volume (volume list shows them)";
  if (c == errc::pool_not_set_up) return "not a pool (pool init makes one)";
  return {};
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

error refusal(int err, const std::string& what) {
  return error(std::error_code(err, std::system_category()), what);
}

error usage_error(const std::string& what) {
  return error(std::error_code(static_cast<int>(cli_code::usage), usage()), what);
}

error not_a_pool_error(const std::string& dir, bool empty) {
  return error(std::error_code(static_cast<int>(cli_code::not_a_pool), usage()),
               "'" + dir + "' is not a pool (pool init makes one)" +
                   (empty ? ": it is empty (is the pool's filesystem mounted?)" : ""));
}

int exit_status_of(const error& e) noexcept {
  const std::error_code& c = e.code();
  if (c.category() == usage() && c.value() == static_cast<int>(cli_code::not_a_pool)) return exit_not_found;
  if (c.category() == usage() || c == errc::invalid_vid || c == errc::invalid_revision_label ||
      c == errc::invalid_config || c == std::errc::not_a_directory)
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

std::string error_code_of(const error& e) {
  const std::error_code& c = e.code();
  if (c.category() == usage()) {
    if (c.value() == static_cast<int>(cli_code::not_a_pool)) return "not_a_pool";
    if (c.value() == static_cast<int>(cli_code::wrong_kind)) return "not_a_directory";
    return "usage";
  }
  if (c.category() == error_category()) {
    switch (static_cast<errc>(c.value())) {
      case errc::reflink_unsupported: return "no_reflinks";
      case errc::invalid_vid: return "invalid_vid";
      case errc::invalid_config: return "usage";
      case errc::volume_not_found: return "volume_not_found";
      case errc::volume_exists: return "volume_exists";
      case errc::volume_removed: return "volume_not_found";
      case errc::source_not_found: return "source_not_found";
      case errc::image_not_found: return "image_not_found";
      case errc::volume_dirty: return "volume_running";
      case errc::volume_not_running: return "volume_stopped";
      case errc::revision_not_found: return "revision_not_found";
      case errc::invalid_revision_label: return "invalid_label";
      case errc::shrink_refused: return "shrink_refused";
      case errc::read_only: return "read_only";
      case errc::not_save_on_stop: return "keeps_no_data";
      case errc::import_in_progress: return "import_in_progress";
      case errc::no_import_in_progress: return "failed";
      case errc::not_exported: return "failed";
      case errc::pool_not_set_up: return "not_a_pool";
      case errc::pool_directory_replaced: return "pool_replaced";
      case errc::unexpected_file_type: return "unexpected_file_type";
      case errc::cancelled: return "cancelled";
      case errc::out_of_range: return "out_of_range";
      case errc::volume_running: return "volume_running";
      case errc::source_in_use: return "source_in_use";
      case errc::revision_ambiguous: return "revision_ambiguous";
      case errc::volume_busy: return "busy";
      case errc::catalog_invalid: return "catalog_invalid";
      case errc::stream_invalid: return "stream_invalid";
      case errc::stream_base_missing: return "stream_base_missing";
      case errc::stream_already_applied: return "stream_already_applied";
    }
    return "failed";
  }
  if (c == std::errc::no_such_file_or_directory) return "not_found";
  if (c == std::errc::not_a_directory) return "not_a_directory";
  if (c == std::errc::file_exists) return "exists";
  if (c == std::errc::permission_denied || c == std::errc::operation_not_permitted) return "permission_denied";
  if (c == std::errc::no_space_on_device) return "no_space";
  return "failed";
}

std::string command_message(const error& e, const error_subject& s) {
  std::string m = e.message();
  // The library's reason for its own condition ends the message: say it
  // the command's way.
  const std::string reason = command_reason(e, s);
  // A refused removal already says what to do: say it with the flag, once.
  const std::string force_words = "force the removal";
  const bool refused_removal = m.find(force_words) != std::string::npos;
  if (refused_removal || !reason.empty()) {
    const std::string library_reason = e.code().message();
    if (ends_with(m, library_reason)) {
      m.erase(m.size() - library_reason.size());
      while (!m.empty() && (m.back() == ' ' || m.back() == ':')) m.pop_back();
    }
  }
  if (refused_removal)
    m.replace(m.find(force_words), force_words.size(), "--force removes it anyway");
  else if (!reason.empty())
    m += (m.empty() ? "" : ": ") + reason;
  for (auto& [from, to] : library_words) m = replace_word(m, from, to);
  // "revert volume 'v': ..." under "volume revert" says the same thing
  // twice: "volume revert 'v': ...".
  const std::string volume_prefix = "volume ";
  if (!s.vid.empty() && s.operation.rfind(volume_prefix, 0) == 0) {
    const std::string verb = s.operation.substr(volume_prefix.size());
    const std::string subject = " volume '" + s.vid + "'";
    const auto at = m.find(subject);
    if (m.rfind(verb + " ", 0) == 0 && at != std::string::npos && m.find(':') > at)
      m = s.operation + " '" + s.vid + "'" + m.substr(at + subject.size());
  }
  if (!s.operation.empty() && m.rfind(s.operation, 0) != 0) m = s.operation + ": " + m;
  return one_line(m);
}

void set_json_errors(bool on) noexcept { json_errors = on; }

void print_error(const error& e, const error_subject& s) {
  const std::string message = command_message(e, s);
  if (json_errors) {
    json j{{"code", error_code_of(e)}, {"exit_status", exit_status_of(e)}, {"message", message}};
    if (!s.operation.empty()) j["operation"] = s.operation;
    if (!s.vid.empty()) j["vid"] = s.vid;
    if (!s.path.empty()) j["path"] = s.path;
    if (!kept.empty()) j["warnings"] = kept;
    kept.clear();
    std::string text = json{{"error", std::move(j)}}.dump(-1, ' ', false, json::error_handler_t::replace);
    std::fprintf(stderr, "%s\n", text.c_str());
  } else {
    std::fprintf(stderr, "file-reflink: %s\n", message.c_str());
  }
  std::fflush(stderr);
}

namespace {

//! A line on stderr now, or kept for the JSON error object (or for after the
//! JSON result) while --json is on.
void print_or_keep(std::string line) {
  if (json_errors) {
    kept.push_back(std::move(line));
    return;
  }
  std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace

void print_warning(const std::string& message) { print_or_keep("file-reflink: warning: " + one_line(message)); }

void print_note(const std::string& message) { print_or_keep("file-reflink: " + one_line(message)); }

void flush_kept_messages() {
  for (auto& line : kept) std::fprintf(stderr, "%s\n", line.c_str());
  kept.clear();
  std::fflush(stderr);
}

}  // namespace file_reflink::cli
