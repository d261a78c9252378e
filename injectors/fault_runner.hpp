// Runs a scenario's fault timeline beside the load (DESIGN §6): each planned occurrence fires on
// the run clock in its own thread (a slow apply such as a rolling restart never blocks the
// clock, the load or another fault; overlapping faults overlap), is prepared (targets resolved
// when it fires), applied and verified, and reverted at its `for` end, right away when its
// effect ends by itself (a kill with restart, a rolling restart, a failover), or when the run
// stops. Every step goes to the ledger first. The reaper is started before the first fault.
//
// Threading: start() and stop_and_revert() from the controller thread; records() after
// stop_and_revert(). The on_event callback is called from the fault threads (must be
// thread-safe).
#pragma once

#include "core/plan.hpp"
#include "core/scenario.hpp"
#include "injectors/client_control.hpp"
#include "injectors/faults.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace syncstorm::injectors {

// One fault occurrence as it happened; times are µs on the run clock (since the load started).
// The SLA windows read it: during:<name> = [applied_us, reverted_us) of each occurrence,
// after:<name> = [reverted_us, run end).
struct fault_record {
  std::string id, name, kind;
  int occurrence = 0;
  nlohmann::json targets = nlohmann::json::array();
  std::int64_t scheduled_us = 0;
  std::optional<std::int64_t> applied_us, reverted_us;
  std::string error;  // apply, verify or revert failure (one line); empty when fine
  bool failed = false;
  nlohmann::json to_report() const;  // report.json faults[] entry (seconds)
};

struct fault_runner_config {
  const scenario* s = nullptr;
  const plan* p = nullptr;
  std::string run_dir;
  fault_env env;       // lab facts are refreshed from `lab_id` at each firing
  std::string lab_id;  // empty: no lab
  std::function<void(const std::string& event, nlohmann::json fields)> on_event;
  std::function<void(const std::string& line)> log;  // console lines (stderr)
  bool start_reaper = true;
  // The run already wrote the controller record and started the reaper (start_run_ledger), for
  // something it recorded before the load (its proxy): start() then does neither.
  bool ledger_started = false;
  // Write run_end once everything is reverted. False when the run still has something in the
  // ledger to stop after the faults (its proxy): the run writes run_end itself (end_run_ledger).
  bool end_ledger = true;
};

// The ledger's controller record (this process) and the reaper, before anything is recorded.
void start_run_ledger(const std::string& run_dir);
// run_end, and the refusal index entry removed when nothing is left unreverted.
void end_run_ledger(const std::string& run_dir);

class fault_runner {
 public:
  explicit fault_runner(fault_runner_config c);
  ~fault_runner();
  fault_runner(const fault_runner&) = delete;
  fault_runner& operator=(const fault_runner&) = delete;

  // Writes the controller record, starts the reaper, then the scheduler thread and the reaper's
  // watch (every second, and before each fault is applied: a reaper that died is started again,
  // with a `reaper_restarted` event). Throws when the ledger or the reaper cannot be set up (the
  // run is then an error, nothing was applied).
  void start(std::chrono::steady_clock::time_point run_start);
  // Fires nothing more; reverts every applied occurrence (each in its thread) and joins them.
  // Writes run_end to the ledger when everything was reverted. Idempotent.
  void stop_and_revert();

  std::vector<fault_record> records() const;
  // First failure (apply, verify or revert) as one line, or empty.
  std::string first_error() const;

 private:
  struct occurrence;
  void scheduler();
  void watch_reaper();
  bool ensure_reaper();
  void report_network_preflight();
  void run_occurrence(occurrence& o);
  std::int64_t now_us() const;
  void event(const std::string& name, nlohmann::json fields);

  fault_runner_config c_;
  std::unique_ptr<class ledger> ledger_;
  std::chrono::steady_clock::time_point start_{};
  std::int64_t start_mono_us_ = 0;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false, stopped_ = false, indexed_ = false;
  std::vector<std::unique_ptr<occurrence>> occ_;
  std::thread scheduler_;
  std::thread reaper_watch_;  // while faults may be applied: the reaper is alive, or started again
  int reapers_restarted_ = 0;
};

}  // namespace syncstorm::injectors
