// SPDX-License-Identifier: BSL-1.0
// libFuzzer target for the parsers of vids, revision labels, timestamps and
// pool file names (see parsers_check.hpp for the rules). Built with clang:
//   cmake -DCMAKE_CXX_COMPILER=clang++ -DFILE_REFLINK_FUZZ=ON ...
//   build/tests/reliability/fuzz/file_reflink_vid_fuzz tests/fuzz/corpus -runs=1000000
// The reliability tests replay the corpus without libFuzzer.
#include "parsers_check.hpp"

#include <cstdio>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string why = file_reflink::fuzz::check_parsers(data, size);
  if (!why.empty()) {
    std::fprintf(stderr, "parser rule broken: %s\n", why.c_str());
    std::abort();
  }
  return 0;
}
