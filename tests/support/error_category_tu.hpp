// SPDX-License-Identifier: BSL-1.0
//! \file
//! Error codes made in another translation unit (tests/support/error_category_tu.cpp),
//! to show the category is one object for the whole program.
#pragma once

#include <file_reflink/error.hpp>

#include <system_error>

namespace file_reflink::test {

//! `file_reflink::error_category()` as seen from another translation unit.
const std::error_category& category_from_other_tu() noexcept;
//! `make_error_code(e)` made in another translation unit.
std::error_code code_from_other_tu(errc e) noexcept;

}  // namespace file_reflink::test
