// Finding and ending the lab's processes: a /proc sweep that finds a lab's processes by their
// marker (SYNCSTORM_LAB=<lab id>) even when no pid was recorded (a `lab up` killed halfway),
// liveness and start-time checks that survive pid reuse, and group-wise termination. Starting
// them is process/runner.hpp's (the one subprocess runner), re-exported here under the names the
// lab uses.
//
// Threading: every function may be called from any thread. Callers reap what they spawn
// (`run_command` reaps its own command; `spawn` returns a pid the caller must wait for).
#pragma once

#include "process/runner.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::lab {

// Process creation is process/runner.hpp's (the one runner); the lab uses it under these names.
using process::lab_marker_env;
using process::render_argv;
using process::run_result;
using process::spawn;
using process::spawn_options;

// process::run (captured output, bounded by `timeout`, reaped).
inline run_result run_command(spawn_options o, std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  return process::run(std::move(o), timeout);
}

// process::run_checked: throws unless the command exits 0; returns its output.
inline std::string run_command_checked(const std::string& what, spawn_options o,
                                       std::chrono::milliseconds timeout = std::chrono::seconds(60)) {
  return process::run_checked(what, std::move(o), timeout);
}

// True when `pid` exists and is not a zombie.
bool process_alive(pid_t pid);

// Start time of `pid` (field 22 of /proc/<pid>/stat, clock ticks since boot), or nullopt. With the
// pid it identifies a process across pid reuse.
std::optional<std::uint64_t> process_start_ticks(pid_t pid);

// Pids whose /proc/<pid>/environ holds SYNCSTORM_LAB=<lab_id>, or whose comm equals one of
// `comms` (forked lab processes that never exec'd set their comm, see set_process_name), or
// whose comm is one of `hint_comms` and whose command line mentions `path_hint` (e.g. initdb,
// pg_basebackup or psql on the lab dir, which PostgreSQL tooling starts without the marker; a
// user's `tail -f` on the events file is not matched).
std::vector<pid_t> find_lab_processes(const std::string& lab_id, const std::vector<std::string>& comms = {},
                                      const std::string& path_hint = {},
                                      const std::vector<std::string>& hint_comms = {});

// Sets this process's comm (first 15 bytes), as shown by ps and /proc/<pid>/comm.
void set_process_name(const std::string& name);

// Sends `sig` to each pid's process group (and the pid itself), then waits up to `grace` for all
// to be gone; what is left then gets SIGKILL and another wait. Returns the pids still alive.
// Reaps those that are this process's children.
std::vector<pid_t> terminate_processes(const std::vector<pid_t>& pids, int sig, std::chrono::milliseconds grace);

// Microseconds since the Unix epoch (CLOCK_REALTIME) and since boot (CLOCK_MONOTONIC; the same
// clock in every process on the machine, so events from the lab line up with the engine clock).
std::int64_t unix_us();
std::int64_t mono_us();

}  // namespace syncstorm::lab
