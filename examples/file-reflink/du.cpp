// SPDX-License-Identifier: BSL-1.0
#include "du.hpp"

#include "output.hpp"
#include "sizes.hpp"

#include <langinfo.h>

#include <algorithm>
#include <clocale>
#include <cmath>
#include <cstring>

namespace file_reflink::cli {

namespace {

std::string repeat(const char* cell, int n) {
  std::string s;
  for (int i = 0; i < n; ++i) s += cell;
  return s;
}

std::string pad_right(const std::string& s, std::size_t width) {
  std::size_t w = display_width(s);
  return w >= width ? s : s + std::string(width - w, ' ');
}

std::string pad_left(const std::string& s, std::size_t width) {
  std::size_t w = display_width(s);
  return w >= width ? s : std::string(width - w, ' ') + s;
}

//! Cells for `bytes` at `scale` bytes per cell; anything non-zero shows.
int cells(std::uint64_t bytes, double scale) {
  if (bytes == 0 || scale <= 0) return 0;
  return std::max(1, static_cast<int>(std::lround(static_cast<double>(bytes) / scale)));
}

}  // namespace

std::vector<space_usage> volume_distinct_space(const std::vector<std::vector<device_range>>& per_volume,
                                               space_usage& total) {
  // A sweep over range boundaries: between two boundaries the same volumes
  // cover the device; one of them alone makes the bytes its exclusive ones.
  struct edge {
    std::uint64_t at;
    bool opens;
    std::size_t volume;
  };
  std::vector<edge> edges;
  for (std::size_t v = 0; v < per_volume.size(); ++v)
    for (const device_range& r : per_volume[v])
      if (r.end > r.start) edges.push_back({r.start, true, v}), edges.push_back({r.end, false, v});
  std::sort(edges.begin(), edges.end(), [](const edge& a, const edge& b) { return a.at < b.at; });
  std::vector<space_usage> out(per_volume.size());
  std::vector<unsigned> depth(per_volume.size(), 0);  // a volume's files may overlap each other
  std::size_t covering = 0;                           // volumes with depth > 0
  total = {};
  std::uint64_t previous = 0;
  for (const edge& e : edges) {
    std::uint64_t length = e.at - previous;
    if (length && covering) {
      total.allocated += length;
      for (std::size_t v = 0; v < depth.size(); ++v) {
        if (!depth[v]) continue;
        out[v].allocated += length;
        (covering == 1 ? out[v].exclusive : out[v].shared) += length;
      }
      (covering == 1 ? total.exclusive : total.shared) += length;
    }
    previous = e.at;
    if (e.opens) {
      if (depth[e.volume]++ == 0) ++covering;
    } else if (--depth[e.volume] == 0) {
      --covering;
    }
  }
  return out;
}

bool locale_is_utf8() {
  std::setlocale(LC_CTYPE, "");
  const char* cs = nl_langinfo(CODESET);
  return cs && (std::strcmp(cs, "UTF-8") == 0 || std::strcmp(cs, "utf8") == 0);
}

std::vector<std::string> draw_du(const std::vector<du_row>& rows, const space_usage& total, bool unicode,
                                 int bar_width) {
  const char* excl_cell = unicode ? "\u2588" : "#";
  const char* shared_cell = unicode ? "\u2592" : "=";
  std::size_t label_width = std::string("total").size();
  std::uint64_t largest = 0;
  for (auto& r : rows) {
    label_width = std::max(label_width, display_width(r.label) + 2 * static_cast<std::size_t>(r.depth));
    largest = std::max(largest, r.usage.exclusive + r.usage.shared);
  }
  label_width = std::min<std::size_t>(label_width, 48);
  double scale = largest ? static_cast<double>(largest) / bar_width : 0;
  constexpr std::size_t num = 11;
  auto numbers = [&](const space_usage& u) {
    return pad_left(format_size(u.allocated), num) + pad_left(format_size(u.exclusive), num) +
           pad_left(format_size(u.shared), num);
  };

  std::vector<std::string> out;
  out.push_back(pad_right("", label_width) + "  " + pad_right("", static_cast<std::size_t>(bar_width)) +
                pad_left("allocated", num) + pad_left("exclusive", num) + pad_left("shared", num));
  for (auto& r : rows) {
    int e = cells(r.usage.exclusive, scale);
    int s = cells(r.usage.shared, scale);
    if (e + s > bar_width) (e >= s ? e : s) -= e + s - bar_width;  // rounding up both can overflow by one
    std::string label = std::string(2 * static_cast<std::size_t>(r.depth), ' ') + r.label;
    std::string bar = repeat(excl_cell, e) + repeat(shared_cell, s) + std::string(bar_width - e - s, ' ');
    out.push_back(pad_right(label, label_width) + "  " + bar + numbers(r.usage));
  }
  out.push_back(pad_right("total", label_width) + "  " + pad_right("", static_cast<std::size_t>(bar_width)) +
                numbers(total));
  out.push_back(std::string(excl_cell) + " exclusive: freed by removing it   " + shared_cell +
                " shared: with another volume (volume lines), another file (file lines)");
  return out;
}

}  // namespace file_reflink::cli
