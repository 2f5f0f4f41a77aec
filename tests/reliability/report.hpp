// SPDX-License-Identifier: BSL-1.0
//! \file
//! The figures every reliability check adds to: per operation, how many crash
//! points, second crashes and injected faults were tried and how many broke a
//! rule; per hostile-input check, how many inputs. The tests assert that no
//! rule broke; `file_reflink_reliability --report` runs them and prints the
//! one table tests/reliability/README.md shows.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace file_reflink::reliability {

//! One row of the table.
struct figures {
  std::uint64_t kinds = 0;            //!< volume kinds the operation was swept on
  std::uint64_t calls = 0;            //!< policy calls of the operation, summed over kinds
  std::uint64_t crash_points = 0;     //!< runs crashed before or after one call (both durability models)
  std::uint64_t second_crashes = 0;   //!< runs whose recovery was crashed again
  std::uint64_t faults = 0;           //!< runs with one call failed (ENOSPC, EIO, EPERM)
  std::uint64_t faults_after_commit = 0;  //!< of those, the operation succeeded (the fault hit a step after its commit point)
  std::uint64_t inputs = 0;           //!< hostile inputs, fuzz executions, stress operations
  std::uint64_t violations = 0;
};

//! The process-wide table, filled by whichever checks run.
class ledger {
public:
  static ledger& get() {
    static ledger l;
    return l;
  }
  //! Add to row `name` of section `section` ("crash and faults", "hostile input", ...).
  void add(const std::string& section, const std::string& name, const figures& f) {
    std::lock_guard<std::mutex> lk(mu_);
    auto key = std::make_pair(section_index(section), name);
    figures& r = rows_[key];
    r.kinds += f.kinds;
    r.calls += f.calls;
    r.crash_points += f.crash_points;
    r.second_crashes += f.second_crashes;
    r.faults += f.faults;
    r.faults_after_commit += f.faults_after_commit;
    r.inputs += f.inputs;
    r.violations += f.violations;
  }

  std::uint64_t total_violations() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::uint64_t v = 0;
    for (auto& [k, r] : rows_) v += r.violations;
    return v;
  }

  //! The table, in Markdown.
  std::string table() const {
    std::lock_guard<std::mutex> lk(mu_);
    std::string out;
    char line[512];
    figures sum;
    out += "| check | kinds | policy calls | crash points | second crashes | faults injected (ok after commit) | inputs | violations |\n";
    out += "|---|---:|---:|---:|---:|---:|---:|---:|\n";
    std::size_t last_section = static_cast<std::size_t>(-1);
    for (auto& [key, r] : rows_) {
      if (key.first != last_section) {
        last_section = key.first;
        std::snprintf(line, sizeof line, "| **%s** | | | | | | | |\n", sections_[key.first].c_str());
        out += line;
      }
      auto num = [](std::uint64_t v) { return v ? std::to_string(v) : std::string(); };
      std::string faults = r.faults ? std::to_string(r.faults) + " (" + std::to_string(r.faults_after_commit) + ")" : "";
      std::snprintf(line, sizeof line, "| %s | %s | %s | %s | %s | %s | %s | %llu |\n", key.second.c_str(),
                    num(r.kinds).c_str(), num(r.calls).c_str(), num(r.crash_points).c_str(),
                    num(r.second_crashes).c_str(), faults.c_str(), num(r.inputs).c_str(),
                    static_cast<unsigned long long>(r.violations));
      out += line;
      sum.calls += r.calls;
      sum.crash_points += r.crash_points;
      sum.second_crashes += r.second_crashes;
      sum.faults += r.faults;
      sum.faults_after_commit += r.faults_after_commit;
      sum.inputs += r.inputs;
      sum.violations += r.violations;
    }
    std::snprintf(line, sizeof line, "| **total** | | %llu | %llu | %llu | %llu (%llu) | %llu | %llu |\n",
                  static_cast<unsigned long long>(sum.calls), static_cast<unsigned long long>(sum.crash_points),
                  static_cast<unsigned long long>(sum.second_crashes), static_cast<unsigned long long>(sum.faults),
                  static_cast<unsigned long long>(sum.faults_after_commit), static_cast<unsigned long long>(sum.inputs),
                  static_cast<unsigned long long>(sum.violations));
    out += line;
    return out;
  }

private:
  std::size_t section_index(const std::string& s) {
    for (std::size_t i = 0; i < sections_.size(); ++i)
      if (sections_[i] == s) return i;
    sections_.push_back(s);
    return sections_.size() - 1;
  }
  mutable std::mutex mu_;
  std::vector<std::string> sections_;
  std::map<std::pair<std::size_t, std::string>, figures> rows_;
};

//! Whether this process runs for the report (`--report`): checks then run
//! their full depth even where the tests sample.
inline std::atomic<bool>& report_mode() {
  static std::atomic<bool> on{false};
  return on;
}

}  // namespace file_reflink::reliability
