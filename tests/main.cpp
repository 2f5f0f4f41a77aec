// SPDX-License-Identifier: BSL-1.0
// The doctest main, and nothing else: every test file registers itself.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
