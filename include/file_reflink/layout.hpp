// SPDX-License-Identifier: BSL-1.0
//! \file
//! File names on disk, drop-in compatible with Qubes file-reflink pools:
//! which names belong to a volume, how a vid and a revision label are
//! validated, and how a name found in the pool is classified. Pure functions:
//! no filesystem access here.
#pragma once

#include <file_reflink/detail/decl.hpp>
#include <file_reflink/error.hpp>

#include <boost/filesystem/path.hpp>


#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace file_reflink {
namespace layout {

using path = boost::filesystem::path;

//! Longest vid in bytes: a pool path plus a vid must stay far below PATH_MAX.
inline constexpr std::size_t max_vid_bytes = 1024;
//! Longest directory component of a vid (NAME_MAX).
inline constexpr std::size_t max_component_bytes = 255;
//! Longest last component: its longest derived name (a pinned revision,
//! "<name>.img.<20 digits>@<stamp>.<64-byte label>.pin") must fit NAME_MAX.
inline constexpr std::size_t max_name_bytes = 128;
//! Longest revision label.
inline constexpr std::size_t max_label_bytes = 64;

//! Suffixes of a volume's files (after the vid's last component).
inline constexpr std::string_view clean_suffix = ".img";
inline constexpr std::string_view dirty_suffix = "-dirty.img";
inline constexpr std::string_view precache_suffix = "-precache.img";
inline constexpr std::string_view import_suffix = "-import.img";
inline constexpr std::string_view pin_suffix = ".pin";
//! Names starting with this are the library's or its tools' own metadata
//! (the pool marker, a CLI's volume list); a vid never starts with a dot.
inline constexpr std::string_view reserved_prefix = ".file-reflink";
//! The marker that setup writes: an empty pool directory without it is
//! suspicious (an unmounted filesystem leaves an empty mount point behind).
inline constexpr std::string_view pool_marker = ".file-reflink-pool";
//! The file whose bytes are the locks of the pool (byte 0) and of its
//! volumes, taken by every process that works on the pool.
inline constexpr std::string_view lock_file_name = ".file-reflink.lock";
//! The catalog of the volumes' configurations, when the pool keeps one.
inline constexpr std::string_view catalog_name = ".file-reflink-catalog";

namespace detail {
FILE_REFLINK_DECL bool ends_with(std::string_view s, std::string_view suffix) noexcept;
FILE_REFLINK_DECL bool starts_with(std::string_view s, std::string_view prefix) noexcept;
FILE_REFLINK_DECL bool all_digits(std::string_view s) noexcept;
FILE_REFLINK_DECL std::string quoted(std::string_view s);
}  // namespace detail

namespace detail {
//! What every component of a vid must be: a plain file name that can name
//! nothing but itself, whatever the directory.
FILE_REFLINK_DECL std::optional<std::string> component_problem(std::string_view c, std::size_t max_bytes);
}  // namespace detail

//! Why `name` cannot be the last component of a vid (the one that names the
//! volume's files), or nothing. Its files are "<name>.img",
//! "<name>-dirty.img", "<name>.img.N@STAMP", ...: a name ending in ".img" or
//! containing ".img." would read as another volume's file, one ending in
//! "-dirty", "-precache" or "-import" as another volume's running image,
//! precache or import.
FILE_REFLINK_DECL std::optional<std::string> name_problem(std::string_view name);

//! Why `name` cannot be a directory component of a vid, or nothing. Only
//! the last component names files, so a directory accepts every name the
//! Qubes driver accepts for a VM ("sys-import", "work-dirty", "backup.img",
//! "a.img.b"); a directory that collides with a volume's file is refused
//! when that volume is registered (see `vid_collision`).
FILE_REFLINK_DECL std::optional<std::string> dir_component_problem(std::string_view name);

//! Why a vid is refused, or an empty optional when it is valid. A valid vid
//! names files strictly inside the pool that no other valid vid's files can
//! be mistaken for (by this library or by a Qubes driver sharing the pool);
//! what remains is a directory of one vid that has the name of another's
//! file, which `vid_collision` finds among the registered volumes.
FILE_REFLINK_DECL std::optional<std::string> vid_problem(std::string_view vid);

//! Whether `name` is one of the names of the files of a volume whose last
//! component is `base` that a directory could also have (the others hold
//! '@' or '~', which no component has).
FILE_REFLINK_DECL bool is_file_name_of(std::string_view name, std::string_view base);

//! Where a directory of vid `a` would be a file of vid `b` (or the other way
//! round): "<dir> is a directory of 'a' and a file of 'b'", or nothing. Both
//! vids must be valid.
FILE_REFLINK_DECL std::optional<std::string> vid_collision(std::string_view a, std::string_view b);

//! `errc::invalid_vid` with the reason, or success.
FILE_REFLINK_DECL result<void> validate_vid(std::string_view vid);

//! Why a revision label is refused, or nothing. Labels are plain names that
//! cannot be mistaken for a revision number.
FILE_REFLINK_DECL std::optional<std::string> label_problem(std::string_view label);

//! `errc::invalid_revision_label` with the reason, or success.
FILE_REFLINK_DECL result<void> validate_label(std::string_view label);

//! The range of a revision stamp: 0000-01-01T00:00:00Z to
//! 9999-12-31T23:59:59Z (proleptic Gregorian calendar, UTC), in seconds
//! since the epoch. Every mtime in it round-trips through a stamp.
inline constexpr std::int64_t min_stamp_seconds = -62167219200;
inline constexpr std::int64_t max_stamp_seconds = 253402300799;

namespace detail {
//! Days since 1970-01-01 of a date of the proleptic Gregorian calendar
//! (valid for every year of a stamp). Eras of 400 years repeat exactly.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);                   // [0, 399]
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;     // [0, 365]
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;              // [0, 146096]
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}
struct civil_date {
  std::int64_t year;
  unsigned month, day;
};
//! The date of a day counted from 1970-01-01 (the inverse of days_from_civil).
constexpr civil_date civil_from_days(std::int64_t z) noexcept {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);                      // [0, 146096]
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;    // [0, 399]
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                  // [0, 365]
  const unsigned mp = (5 * doy + 2) / 153;                                       // [0, 11]
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;                               // [1, 31]
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;                                  // [1, 12]
  return {static_cast<std::int64_t>(yoe) + era * 400 + (m <= 2), m, d};
}
constexpr bool is_leap(std::int64_t y) noexcept { return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0); }
constexpr unsigned days_in_month(std::int64_t y, unsigned m) noexcept {
  constexpr unsigned days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : days[m - 1];
}
}  // namespace detail

//! Whether a time (seconds since the epoch) has a stamp of its own, or is
//! clamped to the first or last one.
constexpr bool stamp_in_range(std::int64_t seconds) noexcept {
  return seconds >= min_stamp_seconds && seconds <= max_stamp_seconds;
}

//! "YYYY-MM-DDTHH:MM:SSZ" for a time in seconds since the epoch (UTC), for
//! every year 0000-9999; earlier and later times are clamped to the first
//! and the last stamp (callers warn: see `stamp_in_range`).
FILE_REFLINK_DECL std::string format_timestamp(std::int64_t seconds);

//! Seconds since the epoch for "YYYY-MM-DDTHH:MM:SSZ", or nothing when the
//! text is not exactly such a stamp of a date and time that exist (no
//! February 30th, no second 60: a stamp is made from an mtime, and no mtime
//! formats to a leap second).
FILE_REFLINK_DECL std::optional<std::int64_t> parse_timestamp(std::string_view s);

//! The files of one volume, relative to the pool directory.
struct volume_paths {
  path dir;           //!< the directory that holds them ("" for the pool's top level)
  std::string base;   //!< the vid's last component
  path clean() const { return dir / (base + std::string(clean_suffix)); }
  path dirty() const { return dir / (base + std::string(dirty_suffix)); }
  path precache() const { return dir / (base + std::string(precache_suffix)); }
  path import() const { return dir / (base + std::string(import_suffix)); }
  //! "V.img.N@STAMP"
  path revision(std::uint64_t n, std::string_view stamp) const {
    return dir / (base + ".img." + std::to_string(n) + "@" + std::string(stamp));
  }
  //! "V.img.N@STAMP.LABEL.pin": a hard link that keeps revision N under a
  //! label. A Qubes driver's revision glob ("V.img.*@<stamp>Z") never matches it.
  path pin(std::uint64_t n, std::string_view stamp, std::string_view label) const {
    return dir / (base + ".img." + std::to_string(n) + "@" + std::string(stamp) + "." + std::string(label) +
                  std::string(pin_suffix));
  }
};

//! The paths of a vid (which must be valid).
FILE_REFLINK_DECL volume_paths paths_of(std::string_view vid);

namespace detail {
//! 64 random bits for temporary names: splitmix64 over a per-thread state
//! seeded from getrandom, the clock, the thread and the process; seeded
//! again in a child after fork, so parent and child never draw alike.
FILE_REFLINK_DECL std::uint64_t temp_name_bits() noexcept;
}  // namespace detail

//! A temporary name for `final_name`: "<final>~<random>". It is renamed over
//! its final name only once complete; any left behind is garbage to remove.
FILE_REFLINK_DECL path temp_name(const path& final_name);

//! What a file name in a pool directory is.
enum class file_kind : std::uint8_t { clean, dirty, precache, import, revision, pin, temporary, foreign };

//! A classified file name. For a temporary file, `final_kind` is what it
//! would have become; `base` is the vid's last component it belongs to.
struct name_info {
  file_kind kind = file_kind::foreign;
  file_kind final_kind = file_kind::foreign;
  std::string base;
  std::uint64_t revision = 0;
  std::string stamp;
  std::string label;
};

namespace detail {
FILE_REFLINK_DECL bool valid_base(std::string_view base);
//! "N@STAMP" (nothing else) → N and STAMP.
FILE_REFLINK_DECL bool parse_revision_tail(std::string_view tail, std::uint64_t& n, std::string& stamp);
FILE_REFLINK_DECL name_info classify_final(std::string_view name);
}  // namespace detail

//! Classify one file name found in a pool directory.
FILE_REFLINK_DECL name_info classify(std::string_view name);

}  // namespace layout
}  // namespace file_reflink

#if !defined(FILE_REFLINK_SEPARATE_COMPILATION)
#include <file_reflink/impl/layout.ipp>
#endif
