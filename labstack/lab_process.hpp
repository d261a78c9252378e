// Starting and finding the lab's processes: fork/exec with everything a lab process needs set up
// between fork and exec (own process group, network namespace, user, RLIMIT_NOFILE, log file,
// an explicit environment carrying the lab's marker, every other fd closed), one-shot commands
// with captured output, and a /proc sweep that finds a lab's processes by their marker even when
// no pid was recorded (a `lab up` killed halfway).
//
// Threading: every function may be called from any thread. Between fork and exec the child only
// makes async-signal-safe calls; everything it needs (argv, envp, fds, uid) is prepared before
// the fork, so spawning from a multithreaded process is safe. Callers reap what they spawn
// (`run_command` reaps its own command; `spawn` returns a pid the caller must wait for).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::lab {

// The environment variable set in every process the lab execs: SYNCSTORM_LAB=<lab id>. `lab down`
// finds leftovers by it (/proc/<pid>/environ), so it is never removed by the lab's children.
inline constexpr const char* lab_marker_env = "SYNCSTORM_LAB";

struct spawn_options {
  std::vector<std::string> argv;          // argv[0] is looked up in PATH when it has no '/'
  std::vector<std::string> extra_env;     // "K=V" added to (or replacing in) the inherited env
  std::string lab_id;                     // non-empty: SYNCSTORM_LAB=<lab_id> is set
  std::string netns;                      // non-empty: setns() into /run/netns/<netns> first
  std::optional<std::string> user;        // run as this user (needs root); its primary group
  std::string cwd;                        // non-empty: chdir here
  std::string log_path;                   // stdout+stderr appended here; empty: /dev/null
  std::optional<std::uint64_t> nofile;    // raise RLIMIT_NOFILE (soft and hard) to this, or
                                          // as far as the hard limit allows without privilege
  bool new_session = false;               // setsid() instead of only a new process group
  int parent_death_signal = 0;            // non-zero: the child gets it when the forking thread
                                          // dies (PR_SET_PDEATHSIG), e.g. its controller's SIGKILL
};

// Forks and execs `o.argv` in its own process group. Returns the pid; the caller reaps it.
// Throws std::runtime_error naming the program when the setup before exec fails (the child
// reports exec errors through a close-on-exec pipe, so "no such file" is an exception here,
// not a silent exit 127).
pid_t spawn(const spawn_options& o);

struct run_result {
  int exit_code = -1;      // -1 when killed by a signal
  int signal = 0;
  std::string output;      // stdout and stderr, interleaved
  bool timed_out = false;
};

// Runs a command to completion (bounded by `timeout`; on expiry its process group gets SIGKILL)
// and reaps it. Output is captured (first 1 MiB). Never throws for a non-zero exit.
run_result run_command(spawn_options o, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// run_command() that throws std::runtime_error("<what>: `cmd args` exited N: <output>") unless it exits 0.
std::string run_command_checked(const std::string& what, spawn_options o,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Shell-like rendering of argv for messages and dry runs.
std::string render_argv(const std::vector<std::string>& argv);

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
std::vector<pid_t> find_lab_processes(const std::string& lab_id,
                                      const std::vector<std::string>& comms = {},
                                      const std::string& path_hint = {},
                                      const std::vector<std::string>& hint_comms = {});

// Sets this process's comm (first 15 bytes), as shown by ps and /proc/<pid>/comm.
void set_process_name(const std::string& name);

// Sends `sig` to each pid's process group (and the pid itself), then waits up to `grace` for all
// to be gone; what is left then gets SIGKILL and another wait. Returns the pids still alive.
// Reaps those that are this process's children.
std::vector<pid_t> terminate_processes(const std::vector<pid_t>& pids, int sig,
                                       std::chrono::milliseconds grace);

// Microseconds since the Unix epoch (CLOCK_REALTIME) and since boot (CLOCK_MONOTONIC; the same
// clock in every process on the machine, so events from the lab line up with the engine clock).
std::int64_t unix_us();
std::int64_t mono_us();

}  // namespace syncstorm::lab
