// The steps a fault is made of. A step is a JSON object {"op": ..., fields} that names
// everything it touches (lab id and unit, pid with its start time, file path, full command
// line), so the reaper and `syncstorm revert` can carry out an undo from the ledger alone, in
// another process, after the controller is gone. Ops:
//   signal {pid, start_time, group, signal, signal_name, what}     kill(2) a recorded process
//   lab_kill {lab, unit, signal, restart}                           through the lab supervisor
//   lab_start_unit {lab, unit, after_pid?, wait_ms}                 bring a unit back (idempotent:
//        waits for the supervisor's own restart first; never starts a fenced database)
//   lab_wait_lb_up {lab, unit, wait_ms}                            HAProxy shows the pod UP
//   lab_promote {lab}                                               db failover
//   marker {path}                                                   create an empty file
//   fill {path, bytes}                                              fallocate a file
//   remove_file {path}
//   command {argv, ok_if?: [substrings of output that mean "already so"], timeout_ms?,
//            verify?: {argv, expect}}                               docker / kubectl
//   client_crash {client} / journal_corrupt {client, bytes, seed}  through client_control
// Every undo op is idempotent. Thread-safe; blocking.
#pragma once

#include "injectors/client_control.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <utility>

namespace syncstorm::injectors {

struct step_result {
  bool ok = true;
  std::string error;  // one line
  std::string did;    // what happened, for the console and the ledger ("SIGCONT pid 123")
  long pid = 0;       // lab_kill: the pid the supervisor signalled
};
inline step_result step_failed(std::string error) { return {false, std::move(error), {}}; }
inline step_result step_done(std::string did) { return {true, {}, std::move(did)}; }

// Runs one step. `undoing`: the step is part of a revert (a process that is already gone is
// then fine). `clients` may be null outside the controller (client steps then fail).
step_result run_step(const nlohmann::json& step, bool undoing, client_control* clients = nullptr);
// verify_reverted for one undo step: is its effect gone (not just the command run)?
step_result check_undone(const nlohmann::json& step);
// One line for --dry-run: the exact command, signal or file.
std::string describe_step(const nlohmann::json& step);

}  // namespace syncstorm::injectors
