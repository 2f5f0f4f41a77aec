// SPDX-License-Identifier: BSL-1.0
//! \file
//! Pool and volume configuration, and the plain value types that pool and
//! volume operations return (revisions, space, scan and recovery reports).
#pragma once

#include <file_reflink/fs_types.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace file_reflink {

//! How much a log message matters.
enum class log_level : std::uint8_t { debug, info, warning, error };

//! A short name for a log level ("debug", "info", ...).
inline const char* to_string(log_level l) noexcept {
  switch (l) {
    case log_level::debug: return "debug";
    case log_level::info: return "info";
    case log_level::warning: return "warning";
    case log_level::error: return "error";
  }
  return "unknown";
}

//! Receives every create, clone, copy, rename and remove with its paths, the
//! way an operator follows the driver in a system journal. Called from the
//! thread doing the operation; it must not call back into the pool.
using log_callback = std::function<void(log_level, const std::string& message)>;

//! A long copy's progress for a volume: return false to cancel it.
using volume_progress_callback =
    std::function<bool(const std::string& vid, std::uint64_t done, std::uint64_t total)>;

//! A pool: one directory holding the images of many volumes.
struct pool_config {
  std::string name;                  //!< the pool's name, for messages
  path dir_path;                     //!< absolute path of the pool directory
  int revisions_to_keep = 1;         //!< default for its volumes (-1: snapshots disabled)
  bool setup_check = true;           //!< refuse a filesystem without reflinks at setup
  bool ephemeral_volatile = false;   //!< recorded and reported; the mapping is the embedder's
  log_callback log;                  //!< optional: every file operation, and warnings
  volume_progress_callback progress; //!< optional: progress (and cancellation) of long copies
  //! How long an operation waits for its volume while another operation
  //! holds it (another thread, or another process working on the pool):
  //! empty waits as long as it takes, zero not at all, anything else up to
  //! that long; a volume still busy then fails with `errc::volume_busy`.
  std::optional<std::chrono::milliseconds> lock_timeout;
  //! Optional: called while an operation waits for a lock that another
  //! `Pool` object or process holds, once as the wait begins (`waited` 0)
  //! and then about every 100 ms, with what it waits for ("volume 'vm/a'")
  //! and how long so far (to say "waiting for ..." or to notice Ctrl-C).
  //! Return false to give up: the operation fails with `errc::cancelled`
  //! and changes nothing. It runs on the waiting thread and must not call
  //! back into the pool.
  std::function<bool(const std::string& what, std::chrono::milliseconds waited)> lock_wait;
  //! Keep the volumes' configurations in the pool directory
  //! (".file-reflink-catalog"), where every process using the pool finds
  //! them: `init_volume`, `Volume::update`, `resize` and `remove` write it,
  //! `get_volume` and `list_volumes` register what other processes wrote,
  //! and an operation that changes a volume reads its entry first. Off: the
  //! embedder keeps them (as Qubes does in qubes.xml).
  bool catalog = false;
};

//! The four kinds of volume, by (snap_on_start, save_on_stop).
enum class volume_kind : std::uint8_t {
  volatile_,        //!< fresh sparse image at start, discarded at stop
  snapshot,         //!< clone of the source's committed image, discarded at stop
  origin,           //!< clone of its own committed image, committed at stop
  origin_snapshot,  //!< clone of the source's committed image, committed at stop
};

//! "volatile", "snapshot", "origin" or "origin-snapshot".
inline const char* to_string(volume_kind k) noexcept {
  switch (k) {
    case volume_kind::volatile_: return "volatile";
    case volume_kind::snapshot: return "snapshot";
    case volume_kind::origin: return "origin";
    case volume_kind::origin_snapshot: return "origin-snapshot";
  }
  return "unknown";
}

//! A volume. Factories below cover the usual kinds.
struct volume_config {
  std::string name;                         //!< e.g. "private"; defaults to the vid's last component
  std::string vid;                          //!< e.g. "appvms/work/private": where its files live in the pool
  std::uint64_t size = 0;                   //!< bytes
  bool rw = true;                           //!< false: read-only (block_device says so; resize refused)
  bool save_on_stop = false;                //!< commit the running image at stop
  bool snap_on_start = false;               //!< start from a clone of `source`'s committed image
  std::optional<std::string> source;        //!< vid of another volume of the same pool
  std::optional<int> revisions_to_keep;     //!< default: the pool's; -1 on an origin: snapshots disabled
  bool ephemeral = false;                   //!< recorded and reported; the encryption is the embedder's

  //! An origin volume: keeps its data, with revisions.
  static volume_config origin(std::string vid, std::uint64_t size) {
    volume_config c;
    c.vid = std::move(vid);
    c.size = size;
    c.save_on_stop = true;
    return c;
  }
  //! A snapshot volume: a throw-away clone of `source` at every start.
  static volume_config snapshot(std::string vid, std::string source, std::uint64_t size = 0) {
    volume_config c;
    c.vid = std::move(vid);
    c.size = size;
    c.snap_on_start = true;
    c.source = std::move(source);
    return c;
  }
  //! A volatile volume: a fresh sparse image at every start.
  static volume_config volatile_volume(std::string vid, std::uint64_t size) {
    volume_config c;
    c.vid = std::move(vid);
    c.size = size;
    return c;
  }
  //! An origin-snapshot volume: starts from `source`, commits its own.
  static volume_config origin_snapshot(std::string vid, std::string source, std::uint64_t size = 0) {
    volume_config c = snapshot(std::move(vid), std::move(source), size);
    c.save_on_stop = true;
    return c;
  }

  //! The kind these flags make.
  volume_kind kind() const noexcept {
    if (snap_on_start) return save_on_stop ? volume_kind::origin_snapshot : volume_kind::snapshot;
    return save_on_stop ? volume_kind::origin : volume_kind::volatile_;
  }
};

//! What `init_volume` does, with the catalog on, with a vid that the
//! catalog already has with the same configuration.
enum class existing_volume : std::uint8_t {
  same_config_ok,  //!< return it: a program registering its volumes again after a restart
  refuse,          //!< `errc::volume_exists`: a tool about to create a new volume (two of them racing)
};

//! Changes to a registered volume's configuration (`Volume::update`): each
//! field that holds a value replaces the current one.
struct volume_update {
  std::optional<int> revisions_to_keep;                //!< -1 on an origin: snapshots disabled
  std::optional<bool> rw;
  std::optional<bool> save_on_stop;
  std::optional<bool> snap_on_start;
  std::optional<std::optional<std::string>> source;    //!< a vid, or none
  std::optional<bool> ephemeral;
};

//! Whether a volume runs, from its running image (`Volume::state`). A crash
//! leaves a running image behind, so "running" means "has a running image":
//! the VM manager knows whether a VM still uses it.
enum class volume_status : std::uint8_t {
  stopped,  //!< no running image
  running,  //!< a running image that stop discards (snapshot, volatile)
  dirty,    //!< save_on_stop: a running image whose data stop commits (or a crashed VM left)
};

//! "stopped", "running" or "dirty".
inline const char* to_string(volume_status s) noexcept {
  switch (s) {
    case volume_status::stopped: return "stopped";
    case volume_status::running: return "running";
    case volume_status::dirty: return "dirty";
  }
  return "unknown";
}

//! One revision of a volume.
struct revision_info {
  std::uint64_t number = 0;         //!< N of "V.img.N@STAMP"
  std::string timestamp;            //!< "YYYY-MM-DDTHH:MM:SSZ": the clean image's mtime when superseded
  std::int64_t time = 0;            //!< the same, in seconds since the epoch
  std::vector<std::string> labels;  //!< pins (keep_revision): rotation never prunes a labelled revision
};

//! Revisions by number, oldest first. A multimap: a revision is its number
//! and its stamp together, and a Qubes driver sharing the pool reuses
//! numbers (its `remove` leaves this library's pins behind, and its next
//! volume numbers from 1 again), so one number may name two revisions with
//! different stamps. Those are ordered by stamp; `find(n)` and `count(n)`
//! work as on a map.
using revision_map = std::multimap<std::uint64_t, revision_info>;

//! Space of one file. `shared` bytes are in extents that another file also
//! references (a clone, a revision, a snapshot); `exclusive` bytes are what
//! removing the file would free.
struct space_usage {
  std::uint64_t allocated = 0;
  std::uint64_t shared = 0;
  std::uint64_t exclusive = 0;
  space_usage& operator+=(const space_usage& o) noexcept {
    allocated += o.allocated;
    shared += o.shared;
    exclusive += o.exclusive;
    return *this;
  }
};

//! Space of a volume: each of its files, each revision, and the total.
struct volume_space {
  std::optional<space_usage> clean;
  std::optional<space_usage> dirty;
  std::optional<space_usage> precache;
  std::multimap<std::uint64_t, space_usage> revisions;  //!< in the order of `revisions()`
  space_usage total;
};

//! What `block_device()` tells a VM manager to attach.
struct block_device_info {
  path device_path;       //!< the dirty image (absolute)
  bool read_only = false;
  std::string name;       //!< the volume's name
};

//! A stale precache is one whose mtime or size differ from the clean image.
enum class precache_state : std::uint8_t { none, current, stale };

//! One volume as found on disk by `Pool::scan`.
struct volume_scan {
  std::string vid;
  bool registered = false;                 //!< init_volume'd in this pool object
  bool clean = false;
  bool dirty = false;                      //!< a running or crashed VM's image
  bool import = false;                     //!< an import in progress (or interrupted)
  precache_state precache = precache_state::none;
  revision_map revisions;
  std::vector<std::string> orphan_pins;    //!< pins whose revision file is gone (their data is kept)
  std::vector<path> temporary;             //!< incomplete files ("<name>~<random>")
};

//! A file or directory in the pool that belongs to no volume.
struct foreign_file {
  path relative;  //!< relative to the pool directory
  file_type type = file_type::other;
  std::string reason;
};

//! What `Pool::scan` found.
struct scan_report {
  std::vector<volume_scan> volumes;  //!< by vid
  std::vector<foreign_file> foreign;
};

//! One volume that `Pool::adopt` registered.
struct adopted_volume {
  volume_config config;                          //!< as inferred (and registered)
  volume_status state = volume_status::stopped;  //!< from its files
  std::size_t revisions = 0;                     //!< revisions found on disk
};

//! What `Pool::adopt` did.
struct adopt_report {
  std::vector<adopted_volume> registered;                    //!< by vid
  std::vector<std::pair<std::string, std::string>> skipped;  //!< vid, why
};

//! What `Pool::recover` did and found. It never deletes committed data.
struct recover_report {
  std::vector<path> removed;               //!< incomplete temporary files and interrupted imports
  std::vector<std::string> dirty;          //!< vids with a dirty image (a crashed or running VM)
  std::vector<std::string> stale_precache; //!< vids whose precache will be replaced at next start
  std::vector<std::string> busy;           //!< vids left alone: an operation (here or in another process) held them
  std::vector<foreign_file> foreign;       //!< left alone
};

}  // namespace file_reflink
