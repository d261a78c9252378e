// The lab's files on disk: where a lab lives, its state file and its events file.
//
// state.json is the lab's memory: what `lab up` decided (ports, addresses, units) and every
// thing it created (namespaces, links, rules, mounts, sysctls, processes), each recorded BEFORE
// it is created, so `lab down` can undo a `lab up` that was killed halfway. Several processes
// write it (the CLI or harness that runs `lab up`, the supervisor, `lab down`): every write is a
// read-modify-write under an exclusive flock on state.lock, and lands with rename, so readers
// never see half a file.
//
// events.jsonl is append-only, one JSON object per line, written with one write(2) on an
// O_APPEND fd, so lines from different processes never interleave. Every event carries
// `t_us` (Unix µs) and `mono_us` (CLOCK_MONOTONIC µs, comparable across processes).
//
// Threading: functions are safe to call from any thread and any process; state updates are
// serialized by the lock file.
#pragma once

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace syncstorm::lab {

// Root of all labs: $SYNCSTORM_LAB_ROOT, default /var/tmp/syncstorm (mode 0711: the postgres user
// can reach its data directories, nobody else can list or write it).
std::string labs_root();
// Makes labs_root() (and its parents) if missing, mode 0711, and checks the one that is there: a
// directory, not a link, owned by this user (root, for a root run) and writable by nobody else;
// a 0755 one of ours is tightened to 0711. Empty when it may be trusted, else why not (one line
// saying how to fix it). Issue #24: a planted state directory is never trusted.
std::string secure_labs_root();
// labs_root()/lab-<id>
std::string lab_dir(const std::string& id);
std::string state_path_of(const std::string& id);  // lab_dir(id)/state.json

// Ids of the labs that have a directory under labs_root(), sorted.
std::vector<std::string> list_lab_ids();

// A lab id is 1 to 8 characters of [a-z0-9]: it goes into interface names (15 bytes at most).
bool valid_lab_id(const std::string& id);
std::string random_lab_id();

// The state file of one lab. Cheap to copy; holds only the path.
class state_file {
 public:
  explicit state_file(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  bool exists() const;
  // The current content; throws std::runtime_error naming the file when it is missing or not JSON.
  nlohmann::json read() const;
  // Locks, reads (an empty object when the file does not exist yet), lets `fn` change it, writes
  // it back (temp file, fsync, rename) and unlocks. Returns the new content.
  nlohmann::json update(const std::function<void(nlohmann::json&)>& fn) const;

 private:
  std::string path_;
};

// Appends `event` (an object with at least "event") to `path`, adding t_us and mono_us unless set.
// Never throws: an event that cannot be written is reported on stderr.
void append_event(const std::string& path, nlohmann::json event);

// Reads every event of an events file (skipping a torn last line).
std::vector<nlohmann::json> read_events(const std::string& path);

}  // namespace syncstorm::lab
