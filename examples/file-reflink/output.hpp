// SPDX-License-Identifier: BSL-1.0
//! \file
//! What the commands print: aligned tables for people, JSON for scripts
//! (exact bytes, stable keys), from the library's value types. One
//! vocabulary for both: a table's column headers are the JSON keys
//! (upper-cased, '_' shown as a space) and its values are the same words.
#pragma once

#include <file_reflink/config.hpp>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace file_reflink::cli {

//! Keys in the order they were written: the JSON reads like the text.
using json = nlohmann::ordered_json;

//! Pretty JSON and a newline on stdout.
void print_json(const json& j);

//! A table with a header; columns whose header starts with '>' are
//! right-aligned (numbers), the '>' is not printed.
class Table {
public:
  explicit Table(std::vector<std::string> header);
  void add(std::vector<std::string> row);
  void print() const;

private:
  std::vector<std::string> header_;
  std::vector<bool> right_;
  std::vector<std::vector<std::string>> rows_;
};

//! "key   value" lines, the values aligned: what an info command shows.
using fields = std::vector<std::pair<std::string, std::string>>;
void print_fields(const fields& f);

//! Width of a UTF-8 string in terminal columns (one per code point).
std::size_t display_width(const std::string& s);

json to_json(const space_usage& s);
json to_json(const volume_space& s);
json to_json(const revision_info& r);
json to_json(const revision_map& revs);
json to_json(const foreign_file& f);
json to_json(const scan_report& r);
//! What `pool scan` notes of a volume: pins without their revision,
//! temporary files, an interrupted import.
std::vector<std::string> scan_notes(const volume_scan& v);
json to_json(const recover_report& r);

//! "current", "stale" or "none".
const char* to_string(precache_state s) noexcept;

//! A volume's state in the command's words: "stopped" or "running" (an
//! origin's running image is committed at stop, a snapshot's discarded).
const char* state_word(volume_status s) noexcept;

//! What an operation did to a volume's revisions: the revisions (numbers)
//! in the list after it and not before, and the other way round. A
//! revision is its number and its stamp: a number reused by another tool
//! is a new revision.
struct revision_change {
  std::vector<std::uint64_t> created, pruned;
};
revision_change compare_revisions(const revision_map& before, const revision_map& after);

//! {"revisions_created": [N...], "revisions_pruned": [N...]} into `j`.
void add_to_json(json& j, const revision_change& c);

//! "revision 3 made of the previous committed image; revision 1 pruned";
//! `made` says what the new revision was made of.
std::string describe(const revision_change& c, const std::string& made);

//! The numbers as "1, 2 and 3".
std::string number_list(const std::vector<std::uint64_t>& v);

//! The strings, with `sep` between them.
std::string join(const std::vector<std::string>& v, const char* sep);

//! "10G (10737418240 bytes)".
std::string size_and_bytes(std::uint64_t bytes);

}  // namespace file_reflink::cli
