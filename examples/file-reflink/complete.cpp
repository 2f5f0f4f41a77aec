// SPDX-License-Identifier: BSL-1.0
//! \file
//! What shell completion offers from a pool: its volume ids, a volume's
//! revisions and labels, the keys of volume set. It reads the catalog and
//! the volume's directory, changes nothing, and never waits for a lock.
#include "complete.hpp"

#include "progress.hpp"
#include "session.hpp"

#include <algorithm>

namespace file_reflink::cli {

namespace {

bool mentions_labels(const std::string& description) {
  std::string lower = description;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; });
  return lower.find("label") != std::string::npos;
}

}  // namespace

std::vector<std::string> pool_values(const std::string& kind, const std::string& description, const std::string& dir,
                                     const std::string& vid) {
  std::vector<std::string> out;
  if (kind == "KEY") return {"revisions_to_keep", "rw", "source"};
  // volume changes FROM [TO]: a revision by number or label, or the committed image.
  const bool image = kind == "FROM" || kind == "TO";
  if (image) out.push_back("committed");
  if (dir.empty() || (kind != "VID" && kind != "REV" && kind != "LABEL" && !image)) return out;
  common_options opts;
  opts.quiet = true;
  opts.lock_timeout = std::chrono::milliseconds(0);
  ProgressBar bar(false);
  pool_config cfg = pool_config_for(pool_path(dir), opts, bar, true);
  cfg.log = nullptr;
  pool_type pool(cfg);
  if (kind == "VID") {
    for (auto& v : pool.list_volumes()) out.push_back(v.vid());
    return out;
  }
  if (vid.empty()) return out;
  auto v = pool.get_volume(vid);
  if (!v) return out;
  auto revs = v.value().revisions();
  if (!revs) return out;
  const bool labels = image || mentions_labels(description);
  for (auto& [n, info] : revs.value()) {
    if (kind == "REV" || image) out.push_back(std::to_string(n));
    if (kind == "LABEL" || ((kind == "REV" || image) && labels))
      out.insert(out.end(), info.labels.begin(), info.labels.end());
  }
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace file_reflink::cli
