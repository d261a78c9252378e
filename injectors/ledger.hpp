// A run's fault ledger: RUN_DIR/ledger.jsonl, one JSON object per line, appended and fsynced
// before the step it announces is taken (intent) and after it (outcome). Everything a revert
// needs is in the apply intent's `undo` steps (injectors/undo.hpp), so the reaper and
// `syncstorm revert` work from this file alone, after the controller is gone.
//
// Records (every one has `step`, `id` (fault occurrence, "<name>#<n>"), `mono_us`, `at`, `by`):
//   {"step":"apply","phase":"intent","fault","kind","occurrence","targets","undo":[...],
//    "ttl_mono_us","target_keys":[...], "scheduled_at","irreversible"?}
//   {"step":"apply","phase":"done","ok",("error")}           {"step":"verify","ok",("error")}
//   {"step":"revert","phase":"intent"} {"step":"revert","phase":"done","ok",("error")}
//   {"step":"verify_reverted","ok",("error")}
//   {"step":"controller","pid","start_time"}   (who runs the faults; the reaper watches it)
//   {"step":"run_end"}                         (the controller reverted everything and left)
// An occurrence is *unreverted* from its apply intent until a revert done with ok true.
//
// Writers in several processes (controller, reaper, `revert`) append under flock(LOCK_EX);
// each line is one write(2) on an O_APPEND descriptor. Thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::injectors {

std::int64_t mono_now_us();
std::string wall_now_iso();

// Space for the ledger is reserved ahead of what it holds (fallocate with FALLOC_FL_KEEP_SIZE: at
// least `reserve_bytes` beyond the end, topped up after each append), so a disk filled by a fault,
// or by anything else, cannot keep the revert from being recorded (issue #24). The file is never
// opened through a symbolic link.
class ledger {
 public:
  static constexpr std::int64_t reserve_bytes = 1 << 20;

  // Opens the run's existing ledger, or creates it; throws std::runtime_error naming it.
  explicit ledger(std::string path);
  // The controller's first open: the file must not exist yet (O_EXCL), so a planted ledger is
  // never adopted. Throws when it does.
  static ledger create(std::string path);
  ledger(ledger&& other) noexcept;
  ~ledger();
  ledger(const ledger&) = delete;
  ledger& operator=(const ledger&) = delete;

  // Adds mono_us, at and by (unless present), writes one line and fsyncs. Throws on an I/O error.
  void append(nlohmann::json record);
  // append() that reports failure instead of throwing: for the records of a revert, which goes
  // ahead whether or not they can be written (the apply intent already holds the undo steps).
  bool try_append(nlohmann::json record) noexcept;
  const std::string& path() const { return path_; }
  void set_writer(std::string by) { by_ = std::move(by); }

 private:
  ledger(std::string path, int flags);
  void reserve();  // tops the reservation up to reserve_bytes past the end (best effort)
  std::string path_, by_ = "controller";
  int fd_ = -1;
  std::mutex mu_;
};

// One fault occurrence as replayed from the ledger.
struct ledger_fault {
  std::string id, fault, kind;
  nlohmann::json intent;  // the apply intent (undo, targets, ttl)
  bool apply_done = false, apply_ok = false, verified = false;
  bool reverted = false;  // a revert done with ok true
  std::string error;      // last failure recorded
  std::int64_t ttl_mono_us = 0;
};

struct ledger_view {
  std::vector<ledger_fault> faults;  // in apply order
  std::optional<long> controller_pid;
  std::optional<unsigned long long> controller_start;
  bool run_end = false;
  std::vector<std::string> bad_lines;  // lines that did not parse (a torn last write)
  std::vector<const ledger_fault*> unreverted() const;
};

// Replays the file; a missing file is an empty view.
ledger_view read_ledger(const std::string& path);

}  // namespace syncstorm::injectors
