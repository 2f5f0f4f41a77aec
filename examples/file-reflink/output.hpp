// SPDX-License-Identifier: BSL-1.0
//! \file
//! What read commands print: aligned tables for people, JSON for scripts
//! (exact bytes, stable keys), from the library's value types.
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
json to_json(const recover_report& r);

//! "current", "stale" or "none".
const char* to_string(precache_state s) noexcept;

//! The strings, with `sep` between them.
std::string join(const std::vector<std::string>& v, const char* sep);

//! "10G (10737418240 bytes)".
std::string size_and_bytes(std::uint64_t bytes);

}  // namespace file_reflink::cli
