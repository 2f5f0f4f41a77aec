// SPDX-License-Identifier: BSL-1.0
#include "sizes.hpp"

#include <cctype>
#include <cstdio>

namespace file_reflink::cli {

namespace {

//! The multiplier of a unit suffix ("", "B", "K", "KiB", "KB", ...).
std::optional<std::uint64_t> unit_factor(std::string_view unit) {
  if (unit.empty() || unit == "B" || unit == "b") return 1;
  static constexpr char letters[] = "KMGTPE";
  char first = static_cast<char>(std::toupper(static_cast<unsigned char>(unit.front())));
  int power = 0;
  for (; letters[power] && letters[power] != first; ++power) {
  }
  if (!letters[power]) return std::nullopt;
  ++power;
  std::string_view rest = unit.substr(1);
  std::uint64_t base = 1024;
  if (rest == "B") {
    base = 1000;  // coreutils: KB, MB, GB are powers of 1000
  } else if (!(rest.empty() || rest == "i" || rest == "iB")) {
    return std::nullopt;
  }
  std::uint64_t f = 1;
  for (int i = 0; i < power; ++i) f *= base;
  return f;
}

__extension__ typedef unsigned __int128 u128;

//! a * b / c rounded up, or nothing on overflow (c divides a power of 10).
std::optional<std::uint64_t> mul_div_up(std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  u128 p = static_cast<u128>(a) * b;
  u128 q = (p + c - 1) / c;
  if (q > UINT64_MAX) return std::nullopt;
  return static_cast<std::uint64_t>(q);
}

}  // namespace

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::size_t i = 0;
  std::uint64_t whole = 0, frac = 0, scale = 1;
  bool digits = false;
  for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i, digits = true) {
    if (whole > (UINT64_MAX - 9) / 10) return std::nullopt;
    whole = whole * 10 + static_cast<std::uint64_t>(text[i] - '0');
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    for (; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i, digits = true) {
      if (scale >= 1000000000000ull) continue;  // finer than a byte of an exabyte: ignored
      frac = frac * 10 + static_cast<std::uint64_t>(text[i] - '0');
      scale *= 10;
    }
  }
  if (!digits) return std::nullopt;
  auto factor = unit_factor(text.substr(i));
  if (!factor) return std::nullopt;
  auto w = mul_div_up(whole, *factor, 1);
  auto f = mul_div_up(frac, *factor, scale);
  if (!w || !f || *w > UINT64_MAX - *f) return std::nullopt;
  return *w + *f;
}

std::string format_size(std::uint64_t bytes) {
  if (bytes == 0) return "0";
  if (bytes < 1024) return std::to_string(bytes) + "B";
  static constexpr char units[] = "KMGTPE";
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  char buf[32];
  while (true) {
    // Round the way it will be printed, so 1023.96M moves up to 1G.
    double shown = v < 9.95 ? static_cast<double>(static_cast<long long>(v * 10 + 0.5)) / 10
                            : static_cast<double>(static_cast<long long>(v + 0.5));
    if (shown >= 1024 && units[u + 1]) {
      v /= 1024;
      ++u;
      continue;
    }
    if (shown < 10 && shown != static_cast<double>(static_cast<long long>(shown)))
      std::snprintf(buf, sizeof buf, "%.1f%c", shown, units[u]);
    else
      std::snprintf(buf, sizeof buf, "%lld%c", static_cast<long long>(shown), units[u]);
    return buf;
  }
}

}  // namespace file_reflink::cli
