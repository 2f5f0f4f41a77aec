// SPDX-License-Identifier: BSL-1.0
//! \file
//! The values shell completion reads from a pool (see `complete` in help.hpp).
#pragma once

#include <string>
#include <vector>

namespace file_reflink::cli {

//! The values of the metavariable `kind` in the pool `dir`: VID its volume
//! ids, REV the revision numbers of volume `vid` (with its labels if the
//! operand's `description` mentions labels), LABEL its labels, KEY the
//! settings volume set changes. Nothing when the pool cannot be read.
std::vector<std::string> pool_values(const std::string& kind, const std::string& description, const std::string& dir,
                                     const std::string& vid);

}  // namespace file_reflink::cli
