// SPDX-License-Identifier: BSL-1.0
//! \file
//! The error model: `errc` for the library's own conditions, `error` (a code
//! plus a message that names the operation, the volume, the paths and the OS
//! reason), `result<T>` on Boost.Outcome, and the TRY macros.
#pragma once

#include <boost/outcome/std_result.hpp>
#include <boost/outcome/try.hpp>

#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace file_reflink {

//! Conditions the library itself detects. Each maps to the nearest
//! `std::errc` through `default_error_condition`, so a caller can test
//! `ec == std::errc::no_such_file_or_directory` without knowing this enum.
enum class errc {
  reflink_unsupported = 1,  //!< the pool's filesystem cannot clone files
  invalid_vid,              //!< a vid that could reach outside the pool or collide with another volume's files
  invalid_config,           //!< contradictory or out-of-range options
  volume_not_found,         //!< no volume with this vid is registered
  volume_exists,            //!< a volume with this vid is already registered
  volume_removed,           //!< the volume was removed; the handle is stale
  source_not_found,         //!< the source volume or its committed image is missing
  image_not_found,          //!< a committed image that the operation needs does not exist
  volume_dirty,             //!< refused while the volume is running (has a dirty image)
  volume_not_running,       //!< the operation needs a running volume
  revision_not_found,       //!< no revision with this number or label
  invalid_revision_label,   //!< a label that is not a safe, unambiguous name
  shrink_refused,           //!< resize to a smaller size would lose data
  read_only,                //!< the volume is read-only
  not_save_on_stop,         //!< export/import need a volume that keeps its data
  import_in_progress,       //!< an import is already open on this volume
  no_import_in_progress,    //!< import_data_end without import_data
  not_exported,             //!< export_end of a path that export did not hand out
  pool_not_set_up,          //!< the pool directory does not exist (setup has not run)
  pool_directory_replaced,  //!< the pool directory vanished or is another directory now (an unmounted filesystem?)
  unexpected_file_type,     //!< a symlink, directory or device where an image was expected
  cancelled,                //!< a progress callback asked to stop
  out_of_range,             //!< an offset or length beyond the image
  volume_running,           //!< the volume's image is attached to a VM (remove refuses it unless forced)
  source_in_use,            //!< registered snapshot volumes start from this volume (remove refuses unless forced)
  revision_ambiguous,       //!< a number or label names more than one revision: use the other one
  volume_busy,              //!< another operation (another thread or process) holds the volume, and the wait policy gave up
  catalog_invalid,          //!< the pool's catalog file cannot be read (damaged, or of a newer format)
  stream_invalid,           //!< a send stream that is truncated, corrupt, reordered, of a newer format or for another volume
  stream_base_missing,      //!< an incremental stream whose base image the receiving volume does not hold
  stream_already_applied,   //!< an incremental stream whose result the receiving volume already holds
};

namespace detail {
class errc_category final : public std::error_category {
public:
  const char* name() const noexcept override { return "file_reflink"; }
  std::string message(int c) const override {
    switch (static_cast<errc>(c)) {
      case errc::reflink_unsupported: return "the filesystem does not support reflinks";
      case errc::invalid_vid: return "invalid volume id";
      case errc::invalid_config: return "invalid configuration";
      case errc::volume_not_found: return "no such volume";
      case errc::volume_exists: return "volume already exists";
      case errc::volume_removed: return "volume was removed";
      case errc::source_not_found: return "source volume not found";
      case errc::image_not_found: return "committed image not found";
      case errc::volume_dirty: return "volume is running (dirty)";
      case errc::volume_not_running: return "volume is not running";
      case errc::revision_not_found: return "no such revision";
      case errc::invalid_revision_label: return "invalid revision label";
      case errc::shrink_refused: return "shrinking would lose data";
      case errc::read_only: return "volume is read-only";
      case errc::not_save_on_stop: return "volume does not keep its data (save_on_stop is off)";
      case errc::import_in_progress: return "an import is already in progress";
      case errc::no_import_in_progress: return "no import in progress";
      case errc::not_exported: return "path was not exported";
      case errc::pool_not_set_up: return "pool directory does not exist";
      case errc::pool_directory_replaced: return "pool directory vanished or was replaced";
      case errc::unexpected_file_type: return "unexpected file type";
      case errc::cancelled: return "cancelled";
      case errc::out_of_range: return "offset or length out of range";
      case errc::volume_running: return "volume is running";
      case errc::source_in_use: return "volume is the source of other volumes";
      case errc::revision_ambiguous: return "more than one revision matches";
      case errc::volume_busy: return "volume is busy: another operation holds it";
      case errc::catalog_invalid: return "the pool's catalog cannot be read";
      case errc::stream_invalid: return "invalid send stream";
      case errc::stream_base_missing: return "the volume does not hold the stream's base image";
      case errc::stream_already_applied: return "the volume already holds the stream's image";
    }
    return "unknown file_reflink error";
  }
  std::error_condition default_error_condition(int c) const noexcept override {
    switch (static_cast<errc>(c)) {
      case errc::reflink_unsupported: return std::errc::operation_not_supported;
      case errc::invalid_vid:
      case errc::invalid_config:
      case errc::invalid_revision_label: return std::errc::invalid_argument;
      case errc::volume_not_found:
      case errc::volume_removed:
      case errc::source_not_found:
      case errc::image_not_found:
      case errc::revision_not_found:
      case errc::pool_not_set_up:
      case errc::pool_directory_replaced: return std::errc::no_such_file_or_directory;
      case errc::volume_exists: return std::errc::file_exists;
      case errc::volume_dirty:
      case errc::volume_running:
      case errc::source_in_use:
      case errc::volume_busy:
      case errc::import_in_progress: return std::errc::device_or_resource_busy;
      case errc::revision_ambiguous: return std::errc::invalid_argument;
      case errc::catalog_invalid: return std::errc::io_error;
      case errc::stream_invalid: return std::errc::bad_message;
      case errc::stream_base_missing: return std::errc::no_such_file_or_directory;
      case errc::stream_already_applied: return std::errc::file_exists;
      case errc::volume_not_running:
      case errc::no_import_in_progress:
      case errc::not_exported:
      case errc::not_save_on_stop: return std::errc::invalid_argument;
      case errc::shrink_refused:
      case errc::out_of_range: return std::errc::invalid_argument;
      case errc::read_only: return std::errc::read_only_file_system;
      case errc::unexpected_file_type: return std::errc::too_many_symbolic_link_levels;
      case errc::cancelled: return std::errc::operation_canceled;
    }
    return std::error_condition(c, *this);
  }
};
}  // namespace detail

//! The category of `errc`. A function-local static behind an inline function:
//! one object for the whole program, so codes compare equal across TUs.
inline const std::error_category& error_category() noexcept {
  static const detail::errc_category category;
  return category;
}

inline std::error_code make_error_code(errc e) noexcept {
  return {static_cast<int>(e), error_category()};
}

}  // namespace file_reflink

template <>
struct std::is_error_code_enum<file_reflink::errc> : std::true_type {};

namespace file_reflink {

//! An error: a `std::error_code` (errno values untouched in the system
//! category, library conditions as `errc`) and what a human needs to know:
//! the operation, the volume, the path(s) and the OS reason.
//!
//! An error stores those parts and makes its one-line message only when
//! `message()` is called: an expected failure that is tested and dropped
//! (the `stat` of a name that is not there) never formats a message or asks
//! the OS for its reason. A success costs a code and a null pointer.
class error {
public:
  error() noexcept = default;
  //! An error whose message is `message`, as given (empty: the code's own text).
  error(std::error_code code, std::string message) : code_(code) {
    if (!message.empty()) {
      d_ = std::make_unique<parts>();
      d_->text = std::move(message);
    }
  }
  error(const error& other) : code_(other.code_), d_(other.d_ ? std::make_unique<parts>(*other.d_) : nullptr) {}
  error(error&&) noexcept = default;
  error& operator=(const error& other) {
    if (this != &other) *this = error(other);
    return *this;
  }
  error& operator=(error&&) noexcept = default;
  ~error() = default;

  //! "<what>: <the code's reason>", the reason added when the message is made.
  static error with_reason(std::error_code code, std::string what) {
    error e;
    e.code_ = code;
    e.d_ = std::make_unique<parts>();
    e.d_->text = std::move(what);
    e.d_->reason = true;
    return e;
  }

  //! "<op> '<first>': <reason>", or with `second`
  //! "<op> '<first>' -> '<second>': <reason>". `op` is a string with static
  //! storage duration (an operation's name).
  static error of_operation(std::error_code code, const char* op, std::string first) {
    error e = with_reason(code, std::move(first));
    e.d_->op = op;
    return e;
  }
  static error of_operation(std::error_code code, const char* op, std::string first, std::string second) {
    error e = of_operation(code, op, std::move(first));
    e.d_->second = std::move(second);
    e.d_->two = true;
    return e;
  }

  //! The code: compare with `std::errc::...` or `errc::...`.
  const std::error_code& code() const noexcept { return code_; }

  //! The whole message, made now, e.g.
  //! "start volume 'vm/private': rename '/p/a' -> '/p/b': No space left on device".
  std::string message() const {
    if (!d_) return code_.message();
    std::string m = d_->context;
    const auto add = [&m](const std::string& part) {
      if (part.empty()) return;
      if (!m.empty()) m += ": ";
      m += part;
    };
    if (d_->op) {
      if (!m.empty()) m += ": ";
      m += d_->op;
      m += " '";
      m += d_->text;
      m += '\'';
      if (d_->two) {
        m += " -> '";
        m += d_->second;
        m += '\'';
      }
    } else {
      add(d_->text);
    }
    if (d_->reason) add(code_.message());
    return m;
  }

  //! The same error, its message prefixed with what the caller was doing:
  //! each layer adds its context and the OS reason stays at the end.
  error context(const std::string& what) const& {
    error e(*this);
    return std::move(e).context(what);
  }
  error context(const std::string& what) && {
    if (what.empty()) return std::move(*this);
    if (!d_) {
      d_ = std::make_unique<parts>();
      d_->reason = true;
    }
    d_->context = d_->context.empty() ? what : what + ": " + d_->context;
    return std::move(*this);
  }

  friend bool operator==(const error& e, const std::error_code& c) noexcept { return e.code_ == c; }
  friend bool operator==(const error& e, const std::error_condition& c) noexcept { return e.code_ == c; }
  friend bool operator==(const error& e, errc c) noexcept { return e.code_ == c; }
  friend bool operator==(const error& e, std::errc c) noexcept { return e.code_ == c; }
  template <class T>
  friend bool operator!=(const error& e, const T& c) noexcept { return !(e == c); }

private:
  struct parts {
    std::string context;      //!< what the callers were doing, outermost first, joined by ": "
    std::string text;         //!< the message, or `op`'s first path
    std::string second;       //!< `op`'s second path
    const char* op = nullptr; //!< the operation's name, or null
    bool two = false;         //!< whether `second` is part of the message
    bool reason = false;      //!< whether the code's reason ends the message
  };
  std::error_code code_;
  std::unique_ptr<parts> d_;  //!< null: the message is the code's own text
};

//! Outcome finds the code of an `error` through this (ADL).
inline const std::error_code& make_error_code(const error& e) noexcept { return e.code(); }

//! What `.value()` on a failed result throws: a `std::system_error` whose
//! `what()` is the error's whole message (the OS reason is already in it).
class system_error : public std::system_error {
public:
  explicit system_error(const error& e) : std::system_error(e.code()), message_(e.message()) {}
  const char* what() const noexcept override { return message_.c_str(); }

private:
  std::string message_;
};

//! `.value()` on a failed result throws `file_reflink::system_error`: the
//! escape hatch for callers that prefer exceptions.
[[noreturn]] inline void outcome_throw_as_system_error_with_payload(const error& e) { throw system_error(e); }

//! What every fallible operation returns.
template <class T>
using result = BOOST_OUTCOME_V2_NAMESPACE::std_result<T, error>;

using BOOST_OUTCOME_V2_NAMESPACE::success;

//! An error from an errno value, with what was being done and on which paths.
inline error make_errno_error(int err, std::string what) {
  return error::with_reason(std::error_code(err, std::system_category()), std::move(what));
}

//! An error from a library condition, with the context that explains it.
inline error make_error(errc e, std::string what) {
  return error::with_reason(make_error_code(e), std::move(what));
}

//! A failed result from an errno value (see `make_errno_error`).
inline auto errno_failure(int err, std::string what) {
  return BOOST_OUTCOME_V2_NAMESPACE::failure(make_errno_error(err, std::move(what)));
}

//! A failed result "<op> '<path>': <OS reason>" from an errno value, its
//! message made only when asked for.
inline auto errno_failure(int err, const char* op, std::string path) {
  return BOOST_OUTCOME_V2_NAMESPACE::failure(
      error::of_operation(std::error_code(err, std::system_category()), op, std::move(path)));
}

//! A failed result "<op> '<from>' -> '<to>': <OS reason>" from an errno value.
inline auto errno_failure(int err, const char* op, std::string from, std::string to) {
  return BOOST_OUTCOME_V2_NAMESPACE::failure(
      error::of_operation(std::error_code(err, std::system_category()), op, std::move(from), std::move(to)));
}

//! A failed result from a library condition (see `make_error`).
inline auto failure(errc e, std::string what) {
  return BOOST_OUTCOME_V2_NAMESPACE::failure(make_error(e, std::move(what)));
}

//! A failed result from an existing error.
inline auto failure(error e) { return BOOST_OUTCOME_V2_NAMESPACE::failure(std::move(e)); }

//! A failed result from an errno value for the catch handler of a noexcept
//! function, where memory may be exhausted: the message `what()` + the OS
//! reason if it can be built, else the code alone. Never throws, so a
//! handler that reports std::bad_alloc cannot terminate the process.
//! `what` is a callable returning the description, or a C string.
template <class What>
auto errno_failure_nothrow(int err, const What& what) noexcept {
  const std::error_code ec(err, std::system_category());
  try {
    std::string m;
    if constexpr (std::is_convertible_v<const What&, const char*>)
      m = static_cast<const char*>(what);
    else
      m = what();
    return BOOST_OUTCOME_V2_NAMESPACE::failure(error::with_reason(ec, std::move(m)));
  } catch (...) {
    return BOOST_OUTCOME_V2_NAMESPACE::failure(error(ec, std::string()));
  }
}

namespace detail {

//! The library's one exception boundary. Every `noexcept` operation that
//! can meet an exception (allocation failure, mostly) runs its body through
//! this: an escaping exception becomes an error of the result type `R`,
//! never `std::terminate`:
//! - `std::bad_alloc`: ENOMEM;
//! - `std::system_error`: its own code;
//! - any other exception: EIO, with its `what()` in the message.
//! `what` (a C string, or a callable returning the description) is only
//! evaluated when an exception was caught, and the handler itself never
//! throws: without memory for a message, the error is its code alone.
template <class R, class What, class F>
R exception_boundary(const What& what, F&& body) noexcept {
  const auto describe = [&what]() -> std::string {
    if constexpr (std::is_convertible_v<const What&, const char*>)
      return static_cast<const char*>(what);
    else
      return what();
  };
  const auto caught = [&](std::error_code code, const char* detail) noexcept -> R {
    try {
      std::string m = describe();
      if (detail && *detail) {
        m += ": ";
        m += detail;
        return BOOST_OUTCOME_V2_NAMESPACE::failure(error(code, std::move(m)));
      }
      return BOOST_OUTCOME_V2_NAMESPACE::failure(error::with_reason(code, std::move(m)));
    } catch (...) {
      return BOOST_OUTCOME_V2_NAMESPACE::failure(error(code, std::string()));
    }
  };
  try {
    return body();
  } catch (const std::bad_alloc&) {
    return caught(std::error_code(ENOMEM, std::system_category()), nullptr);
  } catch (const std::system_error& e) {
    return caught(e.code(), nullptr);
  } catch (const std::exception& e) {
    return caught(std::error_code(EIO, std::system_category()), e.what());
  } catch (...) {
    return caught(std::error_code(EIO, std::system_category()), nullptr);
  }
}

}  // namespace detail

}  // namespace file_reflink

namespace BOOST_OUTCOME_V2_NAMESPACE {
namespace trait {
template <>
struct is_error_type<file_reflink::error> {
  static constexpr bool value = true;
};
}  // namespace trait
}  // namespace BOOST_OUTCOME_V2_NAMESPACE

#define FILE_REFLINK_CONCAT_IMPL(a, b) a##b
#define FILE_REFLINK_CONCAT(a, b) FILE_REFLINK_CONCAT_IMPL(a, b)
#define FILE_REFLINK_UNIQUE(name) FILE_REFLINK_CONCAT(name, __LINE__)

//! Evaluate a result-returning expression; on failure return its error.
//! One statement: safe as the body of an `if` or a loop.
#define FILE_REFLINK_TRYV(...)                                                               \
  do {                                                                                       \
    auto&& file_reflink_tryv_r_ = (__VA_ARGS__);                                             \
    if (!file_reflink_tryv_r_)                                                               \
      return ::file_reflink::failure(std::move(file_reflink_tryv_r_).assume_error());        \
  } while (0)

//! `FILE_REFLINK_TRY(auto x, expr)`: declare `x` from a successful result,
//! or return the error. Independent of the Boost version's TRY syntax.
#define FILE_REFLINK_TRY(decl, ...)                                                         \
  auto&& FILE_REFLINK_UNIQUE(file_reflink_try_) = (__VA_ARGS__);                            \
  if (!FILE_REFLINK_UNIQUE(file_reflink_try_))                                              \
    return ::file_reflink::failure(                                                          \
        std::move(FILE_REFLINK_UNIQUE(file_reflink_try_)).assume_error());                  \
  decl = std::move(FILE_REFLINK_UNIQUE(file_reflink_try_)).assume_value()

//! Like `FILE_REFLINK_TRYV`, but prefixes the error's message with `what`
//! (a `std::string` expression evaluated only on failure).
#define FILE_REFLINK_TRYV_CTX(what, ...)                                                     \
  do {                                                                                       \
    auto&& file_reflink_try_r_ = (__VA_ARGS__);                                              \
    if (!file_reflink_try_r_)                                                                \
      return ::file_reflink::failure(std::move(file_reflink_try_r_).assume_error().context(what)); \
  } while (0)

//! Like `FILE_REFLINK_TRY`, but prefixes the error's message with `what`.
#define FILE_REFLINK_TRY_CTX(decl, what, ...)                                               \
  auto&& FILE_REFLINK_UNIQUE(file_reflink_try_) = (__VA_ARGS__);                            \
  if (!FILE_REFLINK_UNIQUE(file_reflink_try_))                                              \
    return ::file_reflink::failure(                                                          \
        std::move(FILE_REFLINK_UNIQUE(file_reflink_try_)).assume_error().context(what));    \
  decl = std::move(FILE_REFLINK_UNIQUE(file_reflink_try_)).assume_value()
