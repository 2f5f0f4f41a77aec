// SPDX-License-Identifier: BSL-1.0
// The parser rules of tests/fuzz/parsers_check.hpp without libFuzzer: the
// corpus replayed as it is, and a deterministic mutation loop over it (the
// report runs it longer). The libFuzzer target runs the same check.
#include "../fuzz/parsers_check.hpp"
#include "report.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace file_reflink::reliability {

namespace {

std::vector<std::string> load_corpus() {
  std::vector<std::string> out;
  std::vector<std::filesystem::path> files;
  for (auto& e : std::filesystem::directory_iterator(FILE_REFLINK_FUZZ_CORPUS))
    if (e.is_regular_file()) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    out.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return out;
}

std::string check(const std::string& input) {
  return fuzz::check_parsers(reinterpret_cast<const std::uint8_t*>(input.data()), input.size());
}

//! One mutation of `s`: the byte-level moves of a fuzzer, plus the tokens
//! the parsers care about.
void mutate(std::string& s, std::mt19937_64& rng, const std::vector<std::string>& corpus) {
  static const std::vector<std::string> tokens = {
      "/", ".", "..", "~", "@", "\n", std::string(1, '\0'), "-", ".img", ".img.", "-dirty", "-precache", "-import",
      "-dirty.img", ".pin", "@2024-01-01T00:00:00Z", "@2016-12-31T23:59:60Z", "18446744073709551615",
      "18446744073709551616", "0", "1", "99", "\x7f", "\x01", "/./", "//", ".file-reflink", "gold", "."};
  auto pick = [&](std::size_t n) { return n ? static_cast<std::size_t>(rng() % n) : 0; };
  switch (rng() % 7) {
    case 0:
      if (!s.empty()) s[pick(s.size())] ^= static_cast<char>(1u << (rng() % 8));
      break;
    case 1: s.insert(pick(s.size() + 1), 1, static_cast<char>(rng() % 256)); break;
    case 2:
      if (!s.empty()) s.erase(pick(s.size()), 1 + pick(std::min<std::size_t>(8, s.size())));
      break;
    case 3: s.insert(pick(s.size() + 1), tokens[pick(tokens.size())]); break;
    case 4: {  // splice with another input
      const std::string& o = corpus[pick(corpus.size())];
      std::size_t a = pick(s.size() + 1), b = pick(o.size() + 1);
      s = s.substr(0, a) + o.substr(b);
      break;
    }
    case 5:
      if (!s.empty()) {  // duplicate a piece
        std::size_t a = pick(s.size()), n = 1 + pick(std::min<std::size_t>(32, s.size() - a));
        s.insert(pick(s.size() + 1), s.substr(a, n));
      }
      break;
    case 6: s.append(pick(200), static_cast<char>('a' + rng() % 26)); break;
  }
  if (s.size() > 4096) s.resize(4096);
}

}  // namespace

//! Run `executions` mutated inputs; adds them to the ledger; returns violations.
std::uint64_t run_fuzz_loop(std::uint64_t executions) {
  auto corpus = load_corpus();
  std::mt19937_64 rng(20240229);
  figures f;
  std::string first;
  for (std::uint64_t i = 0; i < executions; ++i) {
    std::string s = corpus[rng() % corpus.size()];
    for (int m = 1 + static_cast<int>(rng() % 4); m > 0; --m) mutate(s, rng, corpus);
    ++f.inputs;
    std::string why = check(s);
    if (!why.empty()) {
      ++f.violations;
      if (first.empty()) first = why;
    }
  }
  ledger::get().add("hostile input", "fuzz: vids, labels, names, stamps (mutations)", f);
  if (!first.empty()) MESSAGE("first broken rule: " << first);
  return f.violations;
}

}  // namespace file_reflink::reliability

using namespace file_reflink::reliability;

TEST_CASE("fuzz replay: the parser corpus breaks no rule") {
  auto corpus = load_corpus();
  REQUIRE(corpus.size() >= 10);
  figures f;
  for (auto& input : corpus) {
    ++f.inputs;
    std::string why = check(input);
    if (!why.empty()) ++f.violations;
    CHECK_MESSAGE(why.empty(), why);
  }
  ledger::get().add("hostile input", "fuzz: corpus replay", f);
}

TEST_CASE("fuzz replay: mutations of the corpus break no rule") {
  CHECK(run_fuzz_loop(report_mode() ? 0 : 20000) == 0);
}
