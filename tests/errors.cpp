// SPDX-License-Identifier: BSL-1.0
// The error model: errc and its category, messages, conditions, the TRY
// macros, `.value()` throwing; and what a user actually reads when a policy
// operation fails (a missing file, a cross-device clone, a full disk).
#include "fixtures.hpp"
#include "support/error_category_tu.hpp"

#include <file_reflink/error.hpp>

#include <doctest/doctest.h>

#include <cerrno>
#include <string>
#include <new>
#include <stdexcept>
#include <system_error>
#include <type_traits>

using namespace file_reflink;
using namespace file_reflink::test;

namespace {

result<int> half(int x) {
  if (x % 2 != 0) return failure(errc::invalid_config, "half " + std::to_string(x));
  return x / 2;
}

result<void> check_even(int x) {
  if (x % 2 != 0) return errno_failure(EINVAL, "check_even " + std::to_string(x));
  return success();
}

result<int> quarter(int x) {
  FILE_REFLINK_TRY(int h, half(x));
  FILE_REFLINK_TRY(int q, half(h));
  return q;
}

result<void> both_even(int a, int b) {
  FILE_REFLINK_TRYV(check_even(a));
  FILE_REFLINK_TRYV(check_even(b));
  return success();
}

result<int> quarter_ctx(int x) {
  FILE_REFLINK_TRY_CTX(int h, "quarter " + std::to_string(x), half(x));
  FILE_REFLINK_TRY_CTX(int q, "quarter " + std::to_string(x), half(h));
  return q;
}

result<void> both_even_ctx(int a, int b) {
  FILE_REFLINK_TRYV_CTX("pair", check_even(a));
  FILE_REFLINK_TRYV_CTX("pair", check_even(b));
  return success();
}

}  // namespace

TEST_CASE("errors: errc has its own category named file_reflink") {
  static_assert(std::is_error_code_enum<errc>::value);
  std::error_code ec = errc::volume_not_found;  // implicit, through make_error_code
  CHECK(ec.category() == error_category());
  CHECK(std::string(ec.category().name()) == "file_reflink");
  CHECK(ec.value() == static_cast<int>(errc::volume_not_found));
  CHECK(make_error_code(errc::cancelled) == errc::cancelled);
  CHECK(make_error_code(errc::cancelled) != errc::out_of_range);
  CHECK(make_error_code(errc::cancelled).category() != std::system_category());
}

TEST_CASE("errors: every errc has a message of its own") {
  std::set<std::string> seen;
  for (int c = static_cast<int>(errc::reflink_unsupported); c <= static_cast<int>(errc::out_of_range); ++c) {
    std::string m = make_error_code(static_cast<errc>(c)).message();
    INFO("errc " << c << ": " << m);
    CHECK(!m.empty());
    CHECK(m != "unknown file_reflink error");
    CHECK(seen.insert(m).second);
  }
  CHECK(make_error_code(errc::reflink_unsupported).message() == "the filesystem does not support reflinks");
  CHECK(make_error_code(errc::volume_not_found).message() == "no such volume");
  CHECK(error_category().message(9999) == "unknown file_reflink error");
}

TEST_CASE("errors: library conditions match the nearest std::errc") {
  CHECK(make_error_code(errc::volume_not_found) == std::errc::no_such_file_or_directory);
  CHECK(make_error_code(errc::pool_directory_replaced) == std::errc::no_such_file_or_directory);
  CHECK(make_error_code(errc::volume_exists) == std::errc::file_exists);
  CHECK(make_error_code(errc::reflink_unsupported) == std::errc::operation_not_supported);
  CHECK(make_error_code(errc::invalid_vid) == std::errc::invalid_argument);
  CHECK(make_error_code(errc::volume_dirty) == std::errc::device_or_resource_busy);
  CHECK(make_error_code(errc::read_only) == std::errc::read_only_file_system);
  CHECK(make_error_code(errc::cancelled) == std::errc::operation_canceled);
  CHECK(make_error_code(errc::volume_not_found) != std::errc::file_exists);
  // The condition does not make the codes equal to an errno code.
  CHECK(make_error_code(errc::volume_not_found) != std::error_code(ENOENT, std::system_category()));
  // An error object compares the same way.
  error e = make_error(errc::volume_not_found, "get_volume 'vm'");
  CHECK(e == errc::volume_not_found);
  CHECK(e == std::errc::no_such_file_or_directory);
  CHECK(e != errc::volume_exists);
}

TEST_CASE("errors: the category is one object across translation units") {
  CHECK(&category_from_other_tu() == &error_category());
  CHECK(category_from_other_tu() == error_category());
  CHECK(code_from_other_tu(errc::image_not_found) == make_error_code(errc::image_not_found));
  CHECK(code_from_other_tu(errc::image_not_found) == errc::image_not_found);
  CHECK(code_from_other_tu(errc::image_not_found) == std::errc::no_such_file_or_directory);
}

TEST_CASE("errors: messages carry the operation, the path and the reason") {
  error e = make_errno_error(ENOENT, "read '/p/a.img'");
  CHECK(e.code() == std::error_code(ENOENT, std::system_category()));
  CHECK(e.code().category() == std::system_category());
  CHECK(e.code() == std::errc::no_such_file_or_directory);
  CHECK(e.message() == "read '/p/a.img': No such file or directory");

  error lib = make_error(errc::shrink_refused, "resize volume 'vm/root'");
  CHECK(lib.message() == "resize volume 'vm/root': shrinking would lose data");
  CHECK(make_error(errc::cancelled, "").message() == "cancelled");

  // Each layer adds its context in front; the OS reason stays at the end.
  error outer = e.context("start volume 'vm'");
  CHECK(outer.message() == "start volume 'vm': read '/p/a.img': No such file or directory");
  CHECK(outer.code() == e.code());
  CHECK(e.message() == "read '/p/a.img': No such file or directory");  // the const& overload copies
  CHECK(error(e).context("").message() == e.message());
  error moved = error(e).context("a").context("b");
  CHECK(moved.message() == "b: a: read '/p/a.img': No such file or directory");
}

namespace {
// A category that counts how often it is asked for a reason: an error's
// message must be made only when somebody reads it.
class counting_category final : public std::error_category {
public:
  mutable int asked = 0;
  const char* name() const noexcept override { return "counting"; }
  std::string message(int c) const override {
    ++asked;
    return "reason " + std::to_string(c);
  }
};
}  // namespace

TEST_CASE("errors: the message is made when asked for, from the parts an error stores") {
  counting_category cat;
  const std::error_code code(7, cat);

  error one = error::of_operation(code, "stat", "/p/vm/private.img");
  error two = error::of_operation(code, "rename", "/p/a", "/p/b");
  error ctx = std::move(error::with_reason(code, "import volume 'x'")).context("pool '/p'");
  CHECK(cat.asked == 0);  // built, tested, copied, prefixed: no message yet
  CHECK(one == code);
  const error copy = one;
  CHECK(copy == code);
  CHECK(cat.asked == 0);

  CHECK(one.message() == "stat '/p/vm/private.img': reason 7");
  CHECK(two.message() == "rename '/p/a' -> '/p/b': reason 7");
  CHECK(ctx.message() == "pool '/p': import volume 'x': reason 7");
  CHECK(cat.asked == 3);

  // A context added to a copy leaves the other copy as it was.
  error outer = copy.context("start volume 'vm'");
  CHECK(outer.message() == "start volume 'vm': stat '/p/vm/private.img': reason 7");
  CHECK(copy.message() == "stat '/p/vm/private.img': reason 7");
  CHECK(one.message() == "stat '/p/vm/private.img': reason 7");

  // A code alone speaks with the code's text; a whole message as given.
  CHECK(error(code, "").message() == "reason 7");
  CHECK(error(code, "as given").message() == "as given");
  CHECK(error(code, "").context("open").message() == "open: reason 7");
  CHECK(error().message() == std::error_code().message());

  // A success carries no message: a result is a code and a pointer wide.
  CHECK(sizeof(error) <= sizeof(std::error_code) + sizeof(void*));
}

TEST_CASE("errors: TRY macros pass values through and return errors") {
  auto ok = quarter(8);
  REQUIRE_OK(ok);
  CHECK(ok.value() == 2);

  auto bad = quarter(6);  // 6 -> 3 -> odd
  REQUIRE(!bad);
  CHECK(bad.error() == errc::invalid_config);
  CHECK(bad.error().message() == "half 3: invalid configuration");

  REQUIRE_OK(both_even(2, 4));
  auto odd = both_even(2, 5);
  REQUIRE(!odd);
  CHECK(odd.error().code() == std::errc::invalid_argument);
  CHECK(odd.error().code().category() == std::system_category());
  CHECK(odd.error().message() == "check_even 5: Invalid argument");

  auto ctx = quarter_ctx(6);
  REQUIRE(!ctx);
  CHECK(ctx.error().message() == "quarter 6: half 3: invalid configuration");
  REQUIRE_OK(quarter_ctx(4));
  CHECK(quarter_ctx(4).value() == 1);
  auto ctxv = both_even_ctx(1, 2);
  REQUIRE(!ctxv);
  CHECK(ctxv.error().message() == "pair: check_even 1: Invalid argument");
}

TEST_CASE("errors: value() on a failure throws file_reflink::system_error with the whole message") {
  result<int> r = failure(make_errno_error(EXDEV, "clone '/a' -> '/b'"));
  REQUIRE(!r);
  bool thrown = false;
  try {
    (void)r.value();
  } catch (const file_reflink::system_error& e) {
    thrown = true;
    CHECK(std::string(e.what()) == "clone '/a' -> '/b': Invalid cross-device link");
    CHECK(e.code() == std::errc::cross_device_link);
    CHECK(e.code().category() == std::system_category());
  }
  CHECK(thrown);
  // It is a std::system_error too, for callers that catch that.
  CHECK_THROWS_AS((void)result<void>(failure(errc::cancelled, "copy")).value(), std::system_error);
}

// ---------------------------------------------------------------------------
// What a user sees from a policy

namespace {
template <class R>
void check_system_errno(const R& r, int err) {
  REQUIRE(!r);
  CHECK(r.error().code().category() == std::system_category());
  CHECK(r.error().code().value() == err);
}
}  // namespace

FILE_REFLINK_FIXTURE_TEST("errors: a missing file names the operation and the path") {
  const path missing = fx.root / "vm" / "private.img";
  REQUIRE_OK(fx.ops.mkdir(fx.dir(), "vm"));
  char buf[16];
  auto r = fx.ops.read(fx.dir(), "vm/private.img", 0, buf, sizeof buf);
  check_system_errno(r, ENOENT);
  MESSAGE(r.error().message());
  CHECK(r.error().message() == "read '" + missing.string() + "': No such file or directory");

  auto s = fx.ops.stat(fx.dir(), "vm/private.img");
  check_system_errno(s, ENOENT);
  CHECK(s.error().message() == "stat '" + missing.string() + "': No such file or directory");

  auto ren = fx.ops.rename(fx.dir(), "vm/private.img", "vm/root.img");
  check_system_errno(ren, ENOENT);
  MESSAGE(ren.error().message());
  CHECK(ren.error().message() == "rename '" + missing.string() + "' -> '" + (fx.root / "vm/root.img").string() +
                                     "': No such file or directory");
}

FILE_REFLINK_FIXTURE_TEST("errors: a clone across filesystems names both paths") {
  make_file(fx, fx.dir(), "a.img", 64 * KiB, {{0, pattern(64 * KiB)}});
  auto r = fx.ops.clone(fx.dir(), "a.img", fx.other_dir(), "b.img");
  check_system_errno(r, EXDEV);
  MESSAGE(r.error().message());
  CHECK(r.error().message() == "clone '" + (fx.root / "a.img").string() + "' -> '" +
                                   (fx.other_root / "b.img").string() + "': Invalid cross-device link");
  CHECK_FALSE(exists(fx, fx.other_dir(), "b.img"));
}

FILE_REFLINK_FIXTURE_TEST("errors: a full disk says No space left on device for the file written") {
  REQUIRE_OK(fx.ops.create(fx.dir(), "big.img", 0, create_mode::exclusive));
  fx.fill_to(256 * KiB);
  const std::string data = pattern(8 * MiB);
  auto r = fx.ops.write(fx.dir(), "big.img", 0, data.data(), data.size());
  check_system_errno(r, ENOSPC);
  MESSAGE(r.error().message());
  CHECK(r.error().message() == "write '" + (fx.root / "big.img").string() + "': No space left on device");
  fx.unfill();
}

TEST_CASE("errors: the exception boundary turns every exception into an error") {
  using file_reflink::detail::exception_boundary;
  auto none = exception_boundary<result<int>>("count", [] { return result<int>(3); });
  REQUIRE_OK(none);
  CHECK(none.value() == 3);

  auto oom = exception_boundary<result<int>>("count '/p'", []() -> result<int> { throw std::bad_alloc(); });
  REQUIRE_FALSE(oom);
  CHECK(oom.error() == std::errc::not_enough_memory);
  CHECK(oom.error().message() == "count '/p': " + std::error_code(ENOMEM, std::system_category()).message());

  auto sys = exception_boundary<result<void>>([] { return std::string("lock '/p/x'"); }, []() -> result<void> {
    throw std::system_error(std::make_error_code(std::errc::resource_deadlock_would_occur));
  });
  REQUIRE_FALSE(sys);
  CHECK(sys.error() == std::errc::resource_deadlock_would_occur);
  CHECK(sys.error().message().rfind("lock '/p/x': ", 0) == 0);

  auto other = exception_boundary<result<void>>("parse", []() -> result<void> { throw std::out_of_range("index 9"); });
  REQUIRE_FALSE(other);
  CHECK(other.error() == std::errc::io_error);
  CHECK(other.error().message() == "parse: index 9");

  auto odd = exception_boundary<result<void>>("odd", []() -> result<void> { throw 42; });
  REQUIRE_FALSE(odd);
  CHECK(odd.error() == std::errc::io_error);
  CHECK(odd.error().message().rfind("odd: ", 0) == 0);
}
