// The one subprocess runner: every process syncstorm starts (the lab's PostgreSQL, HAProxy, syncd
// pods, relays and supervisor; the reaper; one-shot commands such as ip, iptables, psql, docker and
// kubectl) is created here, with one PATH rule, one environment rule and one quoting rule for how
// a command is shown. Between fork and exec the child sets up everything a long-lived process
// needs (its own process group or session, network namespace, user, RLIMIT_NOFILE, log file, an
// explicit environment, every other fd closed) and reports a failed step through a close-on-exec
// pipe, so "no such file" is an exception in the parent, never a silent exit 127.
//
// Threading: every function may be called from any thread. Before exec the child only makes
// async-signal-safe calls; everything it needs (argv, envp, fds, uid) is prepared before the
// fork, so spawning from a multithreaded process is safe. The exception is `child_main`, which
// runs ordinary code in the forked child: only a single-threaded caller may use it (the lab's
// supervisor), or a caller that knows no other thread holds a lock the function needs.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace syncstorm::process {

struct spawn_options {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH when it has no '/'
  // Instead of argv: the forked child runs this and exits with its result, never returning to
  // the caller's code (see the threading note above).
  std::function<int()> child_main;
  std::vector<std::string> extra_env;   // "K=V" added to (or replacing in) the inherited env
                                        // (a child_main's getenv sees it too)
  std::string lab_id;                   // non-empty: SYNCSTORM_LAB=<lab_id> is set
  std::string netns;                    // non-empty: setns() into /run/netns/<netns> first
  std::optional<std::string> user;      // run as this user (needs root); its primary group
  std::string cwd;                      // non-empty: chdir here
  std::string log_path;                 // stdout+stderr appended here; empty: /dev/null
  std::optional<std::uint64_t> nofile;  // raise RLIMIT_NOFILE (soft and hard) to this, or
                                        // as far as the hard limit allows without privilege
  bool new_session = false;             // setsid() instead of only a new process group
  // Detached: forked twice, the process is in a new session that it does not lead (so it can
  // never take a controlling terminal) and is re-parented to init (or the nearest subreaper) at
  // once: it outlives the caller and is never the caller's child to reap. spawn() returns its pid.
  bool daemon = false;
  int parent_death_signal = 0;      // non-zero: the child gets it when the forking thread
                                    // dies (PR_SET_PDEATHSIG), e.g. its controller's SIGKILL
  std::vector<int> ignore_signals;  // set to SIG_IGN in the child (kept across exec); every
                                    // other signal starts at its default
  // Parent fds the child keeps open, each as the given fd number (>= 3), e.g. a readiness pipe.
  std::vector<std::pair<int, int>> pass_fds;
};

// The environment variable set in every process the lab starts: SYNCSTORM_LAB=<lab id>.
inline constexpr const char* lab_marker_env = "SYNCSTORM_LAB";

// Starts `o` in its own process group (or session). Returns the pid; the caller reaps it (not a
// daemon's). Throws std::runtime_error naming the command and the failed step when the setup
// before exec (or the exec) fails.
pid_t spawn(const spawn_options& o);

struct run_result {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string output;  // stdout and stderr, interleaved (first 1 MiB)
  bool timed_out = false;
};

// Runs a command to completion (bounded by `timeout`; on expiry its process group gets SIGKILL)
// and reaps it. Never throws for a non-zero exit; throws as spawn() does when it cannot start.
run_result run(spawn_options o, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// run() that throws std::runtime_error("<what>: `cmd args` exited N; expected exit 0: <output>")
// unless the command exits 0. Returns its output.
std::string run_checked(const std::string& what, spawn_options o,
                        std::chrono::milliseconds timeout = std::chrono::seconds(60));

// `a b 'c d'`: argv as a copy-pasteable POSIX shell line, for messages, --dry-run and the ledger.
// An argument with a shell-special character (or empty) is single-quoted.
std::string render_argv(const std::vector<std::string>& argv);

// The path `program` runs as: itself when it holds a '/', else the first executable of that name
// in PATH (then /usr/sbin, /sbin, /usr/bin, /bin: root's PATH may lack the sbin directories where
// ip and iptables live). Throws std::runtime_error when there is none.
std::string resolve_program(const std::string& program);

}  // namespace syncstorm::process
