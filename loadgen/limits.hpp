// System limits a load with many connections runs into, and a preflight that names each one too
// low for a scenario before anything starts. One socket is one file descriptor in this process
// (RLIMIT_NOFILE, bounded by fs.nr_open), one ephemeral port per (source address, destination)
// pair (net.ipv4.ip_local_port_range; the fanout model spreads its sockets over 127.0.0.2-254
// when the target is 127.0.0.1, so loopback targets get ~250 times the range), and one slot in
// the load balancer (the lab's HAProxy `maxconn`, in `lab status --json` as limits.haproxy_maxconn,
// and the lb relay in front of it, which holds two descriptors per connection under the same
// RLIMIT_NOFILE hard limit as HAProxy).
//
// Threading: the functions read /proc and getrlimit; raise_nofile() changes the process's limit
// (call it on the controller thread before the workers open sockets).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::loadgen {

struct system_limits {
  std::uint64_t nofile_soft = 0, nofile_hard = 0;    // RLIMIT_NOFILE of this process
  std::optional<std::uint64_t> nr_open;              // fs.nr_open (the ceiling of any hard limit)
  std::optional<std::uint32_t> port_low, port_high;  // net.ipv4.ip_local_port_range
  std::optional<std::uint64_t> file_max;             // fs.file-max (system-wide)
};

// Reads the limits as they are now (a /proc file that cannot be read leaves its field empty).
system_limits read_system_limits();

// Raises the soft RLIMIT_NOFILE to the hard limit (tries to raise the hard one to fs.nr_open
// first, which only works with CAP_SYS_RESOURCE). Returns the soft limit in force afterwards.
std::uint64_t raise_nofile();

// What a scenario plans to hold at once.
struct connection_plan {
  std::uint64_t connections = 0;            // sockets this process holds at the peak (all loads)
  bool loopback_spread = false;             // sockets spread over 127.0.0.2-254 (fanout on 127.0.0.1)
  std::uint64_t through_lb = 0;             // of those, connections through the lab's load balancer
  std::optional<std::uint64_t> lb_maxconn;  // the lab's HAProxy maxconn (lab status limits)
};

// One line per limit too low for the plan, in the §9 error style:
//   "limits.nofile: found hard RLIMIT_NOFILE 20000; expected at least 50100 for 50000 connections
//    (raise it with ulimit -Hn / LimitNOFILE, needs CAP_SYS_RESOURCE)"
// Empty when everything fits. `headroom` descriptors are kept for files, pipes and the lab's own
// control connections.
std::vector<std::string> limit_problems(const connection_plan& plan, const system_limits& limits,
                                        std::uint64_t headroom = 100);

}  // namespace syncstorm::loadgen
