// SPDX-License-Identifier: BSL-1.0
//! \file
//! Name resolution of `MemoryFsOps`: a relative path beneath a directory,
//! as LinuxFsOps resolves it (openat2 with RESOLVE_BENEATH and
//! RESOLVE_NO_SYMLINKS, or its walk).
#pragma once

#include <file_reflink/detail/memory_inodes.hpp>

#include <cerrno>
#include <string_view>
#include <vector>

namespace file_reflink {
namespace detail {
namespace memfs {

//! Why `name` is not in `dir`, as the kernel's lookup says it: a removed
//! directory has no names (ENOENT), a name longer than NAME_MAX cannot
//! exist (ENAMETOOLONG), anything else is ENOENT.
inline int missing(const Inode& dir, std::string_view name) noexcept {
  if (dead(dir)) return ENOENT;
  return name.size() > name_max ? ENAMETOOLONG : ENOENT;
}

//! `locate_beneath` for a path of plain names, walked in place: no part
//! list, no stack, one reference taken at the end. -1 when `rel` is not
//! such a path (the general walk handles it).
inline int walk_plain(const InodePtr& base, std::string_view rel, InodePtr& dir, std::string_view& name) {
  if (!plain_path(rel)) return -1;
  // openat2 takes the directory part as one string: PATH_MAX counts it all.
  const std::size_t last_slash = rel.rfind('/');
  if (last_slash != std::string_view::npos && last_slash + 1 >= path_max) return ENAMETOOLONG;
  const InodePtr* cur = &base;
  std::size_t i = 0;
  for (;;) {
    const std::size_t j = rel.find('/', i);
    if (j == std::string_view::npos) {
      dir = *cur;
      name = rel.substr(i);
      return 0;
    }
    const Inode& d = **cur;
    const std::string_view part = rel.substr(i, j - i);
    auto it = d.dir->entries.find(part);
    if (it == d.dir->entries.end()) return missing(d, part);
    if (it->second->type == kind::symlink) return ELOOP;
    if (it->second->type != kind::directory) return ENOTDIR;
    cur = &it->second;
    while ((*cur)->type == kind::directory && (*cur)->dir->mounted) cur = &(*cur)->dir->mounted->root;
    i = j + 1;
  }
}

//! Resolve all of `rel` but its last name beneath `base`, as LinuxFsOps
//! does with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) on the text
//! before the last name: a directory part of PATH_MAX bytes or more is
//! ENAMETOOLONG, a symlink met on the way ELOOP, a name too long for a
//! directory ENAMETOOLONG where it is looked up. `name` is empty when `rel`
//! names a directory itself ("", "a/.."); then `dir` is that directory.
inline int locate_beneath(const InodePtr& base, std::string_view rel, InodePtr& dir, std::string_view& name) {
  if (!rel.empty() && rel.find('/') == std::string_view::npos && rel != "." && rel != "..") {
    dir = base;  // the common case, one plain name: nothing to walk
    name = rel;
    return 0;
  }
  if (int err = walk_plain(base, rel, dir, name); err != -1) return err;
  std::vector<std::string_view> parts;
  parts.reserve(8);
  if (int err = split_beneath(rel, parts)) return err;
  std::size_t n = parts.size();
  name = std::string_view();
  std::size_t dir_len = rel.size();
  if (n > 0 && parts.back() != "..") {
    name = parts[--n];
    dir_len = static_cast<std::size_t>(name.data() - rel.data());
  }
  if (n > 0 && dir_len >= path_max) return ENAMETOOLONG;
  std::vector<InodePtr> stack;
  stack.reserve(n + 1);
  stack.push_back(base);
  for (std::size_t k = 0; k < n; ++k) {
    if (parts[k] == "..") {
      stack.pop_back();  // split_beneath let no ".." climb above base
      continue;
    }
    const Inode& cur = *stack.back();
    auto it = cur.dir->entries.find(parts[k]);
    if (it == cur.dir->entries.end()) return missing(cur, parts[k]);
    if (it->second->type == kind::symlink) return ELOOP;
    if (it->second->type != kind::directory) return ENOTDIR;
    stack.push_back(through_mounts(it->second));
  }
  dir = std::move(stack.back());
  return 0;
}

//! Resolve all of `rel` beneath `base` for an operation that opens it
//! (O_NOFOLLOW): a symlink anywhere gives ELOOP; mounts are followed.
inline int open_beneath(const InodePtr& base, std::string_view rel, InodePtr& out) {
  InodePtr dir;
  std::string_view name;
  if (int err = locate_beneath(base, rel, dir, name)) return err;
  if (name.empty()) {
    out = std::move(dir);
    return 0;
  }
  auto it = dir->dir->entries.find(name);
  if (it == dir->dir->entries.end()) return missing(*dir, name);
  if (it->second->type == kind::symlink) return ELOOP;
  out = through_mounts(it->second);
  return 0;
}

}  // namespace memfs
}  // namespace detail
}  // namespace file_reflink
