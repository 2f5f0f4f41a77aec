// SPDX-License-Identifier: BSL-1.0
#include "transfer.hpp"

#include "errors.hpp"
#include "progress.hpp"

#include <boost/filesystem/operations.hpp>

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace file_reflink::cli {

namespace {

constexpr std::size_t chunk = std::size_t(1) << 20;  // read and write this much at a time
constexpr std::size_t block = 4096;                   // the granularity of a hole

bool all_zero(const char* p, std::size_t n) {
  static const char zeros[block] = {};
  for (std::size_t off = 0; off < n; off += block) {
    std::size_t len = std::min(block, n - off);
    if (std::memcmp(p + off, zeros, len) != 0) return false;
  }
  return true;
}

//! read(2) until `n` bytes or end of input; Ctrl-C is a cancel. The flag is
//! looked at before each read: a Ctrl-C that lands just before a read that
//! then blocks is seen when that read returns (with data, or the end).
int read_full(int fd, char* buf, std::size_t n, std::optional<std::uint64_t> offset, std::size_t& got) {
  got = 0;
  while (got < n) {
    if (interrupted()) return ECANCELED;
    ssize_t r = offset ? ::pread(fd, buf + got, n - got, static_cast<off_t>(*offset + got))
                       : ::read(fd, buf + got, n - got);
    if (r < 0) {
      if (errno == EINTR) {
        if (interrupted()) return ECANCELED;
        continue;
      }
      return errno;
    }
    if (r == 0) break;
    got += static_cast<std::size_t>(r);
  }
  return 0;
}

int write_full(int fd, const char* buf, std::size_t n, std::optional<std::uint64_t> offset) {
  std::size_t done = 0;
  while (done < n) {
    if (interrupted()) return ECANCELED;  // a partial write to a slow pipe, then a signal
    ssize_t w = offset ? ::pwrite(fd, buf + done, n - done, static_cast<off_t>(*offset + done))
                       : ::write(fd, buf + done, n - done);
    if (w < 0) {
      if (errno == EINTR) {
        if (interrupted()) return ECANCELED;
        continue;
      }
      return errno;
    }
    done += static_cast<std::size_t>(w);
  }
  return 0;
}

//! pwrite the non-zero blocks of buf (at file offset `at`): zeros are left
//! to the hole the target already has there.
int write_sparse(int fd, const char* buf, std::size_t n, std::uint64_t at) {
  std::size_t i = 0;
  while (i < n) {
    std::size_t len = std::min(block, n - i);
    if (all_zero(buf + i, len)) {
      i += len;
      continue;
    }
    std::size_t start = i;
    while (i < n && !all_zero(buf + i, std::min(block, n - i))) i += std::min(block, n - i);
    if (int err = write_full(fd, buf + start, i - start, at + start)) return err;
  }
  return 0;
}

struct segment {
  std::uint64_t offset, length;
};

//! The data segments of a file below `size`, by SEEK_DATA/SEEK_HOLE; the
//! whole range where the filesystem cannot tell.
std::vector<segment> data_segments(int fd, std::uint64_t size) {
  std::vector<segment> out;
  std::uint64_t pos = 0;
  while (pos < size) {
    off_t d = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (d < 0) {
      if (errno == ENXIO) break;  // only a hole from here on
      return {{0, size}};
    }
    off_t h = ::lseek(fd, d, SEEK_HOLE);
    if (h < 0) return {{0, size}};
    std::uint64_t end = std::min<std::uint64_t>(static_cast<std::uint64_t>(h), size);
    if (static_cast<std::uint64_t>(d) >= end) break;
    out.push_back({static_cast<std::uint64_t>(d), end - static_cast<std::uint64_t>(d)});
    pos = end;
  }
  return out;
}

std::uint64_t total_of(const std::vector<segment>& segs) {
  std::uint64_t t = 0;
  for (auto& s : segs) t += s.length;
  return t;
}

auto cancelled(const std::string& what) { return failure(errc::cancelled, what); }

//! The two ends of a transfer, and how each is used.
struct transfer_ends {
  int in = -1;
  bool in_positioned = true;  //!< pread at each segment's offset; else read a stream in order
  std::string in_name;
  int out = -1;
  bool out_sparse = true;     //!< pwrite only non-zero blocks, at the same offsets; else write every byte in order
  std::string out_name;
};

//! Move the bytes of `segs` from one end to the other, with progress over
//! their total; a stream that ends early ends the transfer. Returns the
//! bytes moved.
result<std::uint64_t> transfer(const transfer_ends& e, const std::vector<segment>& segs, const std::string& what,
                               const transfer_progress& progress) {
  std::unique_ptr<char[]> buf(new char[chunk]);
  const std::uint64_t total = total_of(segs);
  std::uint64_t done = 0;
  if (!progress(0, total)) return cancelled(what);
  for (const segment& seg : segs) {
    for (std::uint64_t at = seg.offset, end = seg.offset + seg.length; at < end;) {
      std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, end - at));
      std::size_t got = 0;
      int err = read_full(e.in, buf.get(), want, e.in_positioned ? std::optional<std::uint64_t>(at) : std::nullopt, got);
      if (err == ECANCELED) return cancelled(what);
      if (err) return errno_failure(err, "read " + e.in_name);
      if (got == 0) return done;  // the end of a stream (or of a file that shrank)
      err = e.out_sparse ? write_sparse(e.out, buf.get(), got, at) : write_full(e.out, buf.get(), got, std::nullopt);
      if (err == ECANCELED) return cancelled(what);
      if (err) return errno_failure(err, "write " + e.out_name);
      at += got;
      done += got;
      if (!progress(std::min(done, total), total)) return cancelled(what);
    }
  }
  return done;
}

}  // namespace

result<import_source> open_import_source(const std::string& file) {
  import_source s;
  if (file == "-") {
    s.fd = STDIN_FILENO;
    s.name = "standard input";
  } else {
    s.fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (s.fd < 0) return errno_failure(errno, "open " + q(file));
    s.name = q(file);
  }
  struct stat st;
  if (::fstat(s.fd, &st) != 0) return errno_failure(errno, "stat " + s.name);
  if (S_ISDIR(st.st_mode)) return errno_failure(EISDIR, "import from " + s.name);
  // A regular file read from its start (stdin redirected from a file too):
  // its size is known and its holes can be skipped without reading them.
  bool at_start = file != "-" || ::lseek(s.fd, 0, SEEK_CUR) == 0;
  if (S_ISREG(st.st_mode) && at_start) {
    s.seekable = s.regular = true;
    s.size = static_cast<std::uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode) && at_start) {
    off_t end = ::lseek(s.fd, 0, SEEK_END);
    if (end < 0 || ::lseek(s.fd, 0, SEEK_SET) < 0) return errno_failure(errno, "seek " + s.name);
    s.seekable = true;
    s.size = static_cast<std::uint64_t>(end);
  }
  return s;
}

result<void> stream_into_image(const import_source& src, const path& image, std::uint64_t size, bool full,
                               bool allow_short, const transfer_progress& progress) {
  const std::string what = "import " + src.name + " into " + q(image.string());
  Fd out(::open(image.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW));
  if (out.fd < 0) return errno_failure(errno, "open " + q(image.string()));
  if (src.seekable && src.size > size)
    return failure(refusal(EFBIG, what + ": " + std::to_string(src.size) + " bytes do not fit in " +
                                    std::to_string(size)));
  std::vector<segment> segs = src.regular ? data_segments(src.fd, src.size)
                                          : std::vector<segment>{{0, src.seekable ? src.size : size}};
  FILE_REFLINK_TRY(auto got,
                   transfer({src.fd, src.seekable, src.name, out.fd, true, q(image.string())}, segs, what, progress));
  if (interrupted()) return cancelled(what);  // Ctrl-C during the last read: nothing is committed
  if (!src.seekable && !allow_short) {
    if (got == 0)
      return failure(refusal(ENODATA, what + ": " + src.name + " gave no data; --allow-short imports an image of zeros"));
    if (full && got < size)
      return failure(refusal(ENODATA, what + ": " + src.name + " ended after " + std::to_string(got) + " of the " +
                                        std::to_string(size) + " bytes --size gave; --allow-short imports it anyway "
                                        "(the rest reads as zeros)"));
  }
  if (!src.seekable) {
    // A pipe may hold more than the image: one byte more is an error, not a
    // silently truncated import.
    char extra = 0;
    std::size_t got = 0;
    int err = read_full(src.fd, &extra, 1, std::nullopt, got);
    if (err == ECANCELED) return cancelled(what);
    if (err) return errno_failure(err, "read " + src.name);
    if (got)
      return failure(refusal(EFBIG, what + ": more than " + std::to_string(size) +
                                      " bytes (give the size of the data with --size)"));
  }
  if (int err = out.close_checked()) return errno_failure(err, "close " + q(image.string()));
  if (interrupted()) return cancelled(what);
  return success();
}

std::optional<path> path_of_regular_input(const import_source& src) {
  if (!src.regular) return std::nullopt;
  struct stat fd_st;
  if (::fstat(src.fd, &fd_st) != 0) return std::nullopt;
  char buf[4096];
  std::string link = "/proc/self/fd/" + std::to_string(src.fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf - 1);
  if (n <= 0 || buf[0] != '/') return std::nullopt;
  path p(std::string(buf, static_cast<std::size_t>(n)));
  // The name must still be this file: not deleted, not replaced since.
  struct stat name_st;
  if (::lstat(p.c_str(), &name_st) != 0 || !S_ISREG(name_st.st_mode) || name_st.st_dev != fd_st.st_dev ||
      name_st.st_ino != fd_st.st_ino)
    return std::nullopt;
  return p;
}

result<void> stream_out_of_image(const path& image, const std::string& file, bool overwrite,
                                 const transfer_progress& progress) {
  const std::string target = file == "-" ? "standard output" : q(file);
  const std::string what = "export " + q(image.string()) + " to " + target;
  Fd in(::open(image.c_str(), O_RDONLY | O_CLOEXEC));
  if (in.fd < 0) return errno_failure(errno, "open " + q(image.string()));
  struct stat st;
  if (::fstat(in.fd, &st) != 0) return errno_failure(errno, "stat " + q(image.string()));
  const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
  // Every byte, in order: standard output, or a device or pipe that exists.
  auto every_byte = [&](int out_fd) {
    return transfer({in.fd, true, q(image.string()), out_fd, false, target}, {{0, size}}, what, progress);
  };

  if (file == "-") {
    FILE_REFLINK_TRYV(every_byte(STDOUT_FILENO));
    return success();
  }
  struct stat dst;
  const bool dst_exists = ::stat(file.c_str(), &dst) == 0;
  if (dst_exists && S_ISREG(dst.st_mode) && !overwrite)
    return failure(refusal(EEXIST, what + ": " + target + " exists; --force overwrites it"));
  if (dst_exists && !S_ISREG(dst.st_mode)) {
    if (S_ISDIR(dst.st_mode)) return errno_failure(EISDIR, what);
    Fd out(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (out.fd < 0) return errno_failure(errno, "open " + target);
    FILE_REFLINK_TRYV(every_byte(out.fd));
    if (int err = out.close_checked()) return errno_failure(err, "close " + target);
    return success();
  }

  // A regular file: written under a temporary name beside it, with holes,
  // and renamed over FILE only once complete; nothing stays on failure.
  path final_path = boost::filesystem::absolute(path(file));
  std::string tmp = (final_path.parent_path() / ("." + final_path.filename().string() + ".export~XXXXXX")).string();
  Fd out(::mkostemp(tmp.data(), O_CLOEXEC));
  if (out.fd < 0) return errno_failure(errno, "create " + q(tmp));
  struct Unlink {
    const std::string& p;
    bool armed = true;
    ~Unlink() {
      if (armed) ::unlink(p.c_str());
    }
  } guard{tmp};
  mode_t mask = ::umask(0);
  ::umask(mask);
  if (::fchmod(out.fd, 0666 & ~mask) != 0) return errno_failure(errno, "chmod " + q(tmp));
  if (::ftruncate(out.fd, static_cast<off_t>(size)) != 0) return errno_failure(errno, "truncate " + q(tmp));
  FILE_REFLINK_TRYV(transfer({in.fd, true, q(image.string()), out.fd, true, q(tmp)}, data_segments(in.fd, size),
                             what, progress));
  while (::fsync(out.fd) != 0)
    if (errno != EINTR) return errno_failure(errno, "fsync " + q(tmp));
  if (int err = out.close_checked()) return errno_failure(err, "close " + q(tmp));
  // Without --force, a FILE that appeared meanwhile is not replaced either.
  int renamed = overwrite ? ::rename(tmp.c_str(), final_path.c_str())
                          : ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, final_path.c_str(), RENAME_NOREPLACE);
  if (renamed != 0 && !overwrite && (errno == EINVAL || errno == ENOSYS)) {
    // A filesystem without RENAME_NOREPLACE: a hard link fails on an existing name too.
    renamed = ::link(tmp.c_str(), final_path.c_str());
    if (renamed == 0) ::unlink(tmp.c_str());
  }
  if (renamed != 0) {
    if (errno == EEXIST) return failure(refusal(EEXIST, what + ": " + target + " exists; --force overwrites it"));
    return errno_failure(errno, "rename " + q(tmp) + " -> " + q(final_path.string()));
  }
  guard.armed = false;
  return success();
}

}  // namespace file_reflink::cli
