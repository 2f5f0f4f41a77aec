// SPDX-License-Identifier: BSL-1.0
//! \file
//! `FILE_REFLINK_DECL`: how the library's non-template functions are
//! declared. Header-only (the default), they are `inline` and their
//! definitions (in `impl/*.ipp`) are included by their headers. With
//! FILE_REFLINK_SEPARATE_COMPILATION the headers declare them only, and
//! `<file_reflink/impl/src.hpp>` defines them once, in one source file of
//! the program, as Asio's `ASIO_DECL` does.
#pragma once

#if defined(FILE_REFLINK_SEPARATE_COMPILATION)
#define FILE_REFLINK_DECL
#else
#define FILE_REFLINK_DECL inline
#endif
