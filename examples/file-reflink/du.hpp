// SPDX-License-Identifier: BSL-1.0
//! \file
//! The picture `pool du` draws: a bar per volume and per file of it (the
//! running image, the committed one, the precache, each revision), split
//! into exclusive bytes (what removing it frees) and shared bytes (also in a
//! clone, a revision or a snapshot), with totals.
#pragma once

#include <file_reflink/config.hpp>
#include <file_reflink/layout.hpp>

#include <string>
#include <vector>

namespace file_reflink::cli {

//! One bar: a volume (depth 0) or one of its files (depth 1).
struct du_row {
  std::string label;
  int depth = 0;
  space_usage usage;
};

//! The lines of the picture: a header, the rows with bars scaled to the
//! largest row, a total line, and a legend. `unicode` draws blocks (█ ▒),
//! else ASCII (# =) for terminals without UTF-8.
std::vector<std::string> draw_du(const std::vector<du_row>& rows, const space_usage& total, bool unicode,
                                 int bar_width);

//! Bytes on the device, [start, end): where a file's data extents live.
struct device_range {
  std::uint64_t start = 0, end = 0;
};

//! One file of a volume, as `pool du` lists it under the volume's line.
struct volume_file_space {
  std::string path;   //!< relative to the pool directory
  layout::file_kind kind = layout::file_kind::foreign;
  std::uint64_t revision = 0;  //!< a revision's or a pin's
  std::string label;  //!< "committed image", "revision 3", "pin good of revision 3"...
  bool hard_link = false;  //!< it has more than one name (a snapshot's link to its source's image, a pin)
  std::vector<device_range> ranges;
  space_usage usage;  //!< against every other file of the pool
};

//! Space of whole volumes, from the device ranges of all their files. A
//! volume's files share with each other (the precache and the revisions are
//! clones of the committed image), so per-file exclusive bytes add up to
//! nothing useful; what removing a volume frees is the bytes of its files
//! that no other volume's file references. Per volume: `allocated` its
//! distinct bytes, `exclusive` those no other volume references, `shared`
//! the rest; `total` the same over the pool (each byte counted once).
std::vector<space_usage> volume_distinct_space(const std::vector<std::vector<device_range>>& per_volume,
                                               space_usage& total);

//! Whether the terminal's character set is UTF-8 (the locale says so).
bool locale_is_utf8();

}  // namespace file_reflink::cli
