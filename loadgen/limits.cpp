// System limit reading and the connection preflight (limits.hpp). Only /proc and getrlimit.
#include "loadgen/limits.hpp"

#include <sys/resource.h>

#include <fstream>

namespace syncstorm::loadgen {
namespace {

template <class T>
std::optional<T> read_number(const char* path) {
  std::ifstream f(path);
  T v{};
  if (f >> v) return v;
  return std::nullopt;
}

}  // namespace

system_limits read_system_limits() {
  system_limits l;
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
    l.nofile_soft = r.rlim_cur == RLIM_INFINITY ? UINT64_MAX : r.rlim_cur;
    l.nofile_hard = r.rlim_max == RLIM_INFINITY ? UINT64_MAX : r.rlim_max;
  }
  l.nr_open = read_number<std::uint64_t>("/proc/sys/fs/nr_open");
  l.file_max = read_number<std::uint64_t>("/proc/sys/fs/file-max");
  std::ifstream pr("/proc/sys/net/ipv4/ip_local_port_range");
  std::uint32_t lo = 0, hi = 0;
  if (pr >> lo >> hi) {
    l.port_low = lo;
    l.port_high = hi;
  }
  return l;
}

std::uint64_t raise_nofile() {
  rlimit r{};
  if (getrlimit(RLIMIT_NOFILE, &r) != 0) return 0;
  if (auto nr = read_number<std::uint64_t>("/proc/sys/fs/nr_open");
      nr && r.rlim_max != RLIM_INFINITY && *nr > r.rlim_max) {
    rlimit up{static_cast<rlim_t>(*nr), static_cast<rlim_t>(*nr)};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0) return *nr;  // CAP_SYS_RESOURCE: both raised
  }
  if (r.rlim_cur != r.rlim_max) {
    r.rlim_cur = r.rlim_max;
    setrlimit(RLIMIT_NOFILE, &r);
  }
  getrlimit(RLIMIT_NOFILE, &r);
  return r.rlim_cur == RLIM_INFINITY ? UINT64_MAX : r.rlim_cur;
}

std::vector<std::string> limit_problems(const connection_plan& plan, const system_limits& l, std::uint64_t headroom) {
  std::vector<std::string> out;
  const std::uint64_t n = plan.connections;
  const std::string for_n = " for " + std::to_string(n) + " connections";
  const std::uint64_t need_fds = n + headroom;
  // The soft limit is raised to the hard one at start, so the hard limit is what counts.
  if (l.nofile_hard < need_fds)
    out.push_back("limits.nofile: found hard RLIMIT_NOFILE " + std::to_string(l.nofile_hard) + "; expected at least " +
                  std::to_string(need_fds) + for_n +
                  " (raise it with ulimit -Hn or LimitNOFILE; needs CAP_SYS_RESOURCE)");
  if (l.nr_open && *l.nr_open < need_fds)
    out.push_back("limits.fs.nr_open: found " + std::to_string(*l.nr_open) + "; expected at least " +
                  std::to_string(need_fds) + for_n + " (sysctl -w fs.nr_open=" + std::to_string(need_fds) + ")");
  if (l.file_max && *l.file_max < need_fds)
    out.push_back("limits.fs.file-max: found " + std::to_string(*l.file_max) + "; expected at least " +
                  std::to_string(need_fds) + for_n + " (sysctl -w fs.file-max=" + std::to_string(need_fds) + ")");
  if (l.port_low && l.port_high) {
    const std::uint64_t ports = *l.port_high >= *l.port_low ? *l.port_high - *l.port_low + 1 : 0;
    // One destination (the LB); each source address has its own ports. Loopback spreading
    // uses 253 source addresses.
    const std::uint64_t sources = plan.loopback_spread ? 253 : 1;
    if (ports * sources < n)
      out.push_back("limits.net.ipv4.ip_local_port_range: found \"" + std::to_string(*l.port_low) + " " +
                    std::to_string(*l.port_high) + "\" (" + std::to_string(ports) + " ports" +
                    (sources > 1 ? " per source address" : "") + "); expected at least " +
                    std::to_string((n + sources - 1) / sources) + " ports" + for_n +
                    " (sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\")");
  }
  if (plan.lb_maxconn && plan.through_lb > *plan.lb_maxconn)
    out.push_back(
        "limits.lb.maxconn: found HAProxy maxconn " + std::to_string(*plan.lb_maxconn) + "; expected at least " +
        std::to_string(plan.through_lb) + " for " + std::to_string(plan.through_lb) +
        " connections through the lab's load balancer (its RLIMIT_NOFILE bounds it: see limits in lab status --json)");
  return out;
}

}  // namespace syncstorm::loadgen
