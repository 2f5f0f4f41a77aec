// SPDX-License-Identifier: BSL-1.0
// A second translation unit for tests/errors.cpp: an error code made here
// must compare equal to one made there (one category object per program).
#include "error_category_tu.hpp"

namespace file_reflink::test {

const std::error_category& category_from_other_tu() noexcept { return error_category(); }

std::error_code code_from_other_tu(errc e) noexcept { return make_error_code(e); }

}  // namespace file_reflink::test
