// CPU clocks, the CPU meter and the saturation verdict.
// Threading: the clock readers are safe from any thread; the meter has one owner.
#include "core/self_monitor.hpp"

#include <sched.h>
#include <sys/resource.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include <nlohmann/json.hpp>

namespace syncstorm {

namespace {

std::int64_t steady_now_us() noexcept {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::int64_t to_us(const timeval& tv) noexcept { return static_cast<std::int64_t>(tv.tv_sec) * 1'000'000 + tv.tv_usec; }

std::string percent(double share) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f%%", share * 100);
  return buf;
}

std::string seconds(std::int64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f s", static_cast<double>(us) / 1e6);
  return buf;
}

std::string millis(std::int64_t us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f ms", static_cast<double>(us) / 1e3);
  return buf;
}

std::string cores_text(double cores) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g core%s", cores, cores == 1 ? "" : "s");
  return buf;
}

}  // namespace

cpu_times process_cpu_times() noexcept {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return {steady_now_us(), to_us(usage.ru_utime) + to_us(usage.ru_stime)};
}

cpu_times thread_cpu_times() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return {steady_now_us(), static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000};
}

unsigned usable_cores() noexcept {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int n = CPU_COUNT(&set);
    if (n > 0) return static_cast<unsigned>(n);
  }
  return 1;
}

cpu_meter::cpu_meter(double cores) : cores_(cores < 1 ? 1.0 : cores) {}

void cpu_meter::sample(const cpu_times& now) {
  if (!started_) {
    started_ = true;
    origin_ = now;
    return;
  }
  const std::int64_t wall = now.wall_us - origin_.wall_us;
  if (wall <= 0) return;
  const std::int64_t cpu = std::max<std::int64_t>(0, now.cpu_us - origin_.cpu_us);
  intervals_.push_back({wall, cpu});
  wall_total_ += wall;
  cpu_total_ += cpu;
  origin_ = now;
}

double cpu_meter::last_core_share() const noexcept {
  if (intervals_.empty()) return 0;
  const interval& last = intervals_.back();
  return static_cast<double>(last.cpu_us) / static_cast<double>(last.wall_us);
}

double cpu_meter::mean_core_share() const noexcept {
  return wall_total_ == 0 ? 0.0 : static_cast<double>(cpu_total_) / static_cast<double>(wall_total_);
}

double cpu_meter::peak_share() const noexcept {
  double peak = 0;
  for (const interval& i : intervals_) {
    peak = std::max(peak, static_cast<double>(i.cpu_us) / static_cast<double>(i.wall_us));
  }
  return peak / cores_;
}

std::int64_t cpu_meter::longest_above_us(double share) const noexcept {
  std::int64_t longest = 0;
  std::int64_t current = 0;
  for (const interval& i : intervals_) {
    const double s = static_cast<double>(i.cpu_us) / static_cast<double>(i.wall_us) / cores_;
    current = s > share ? current + i.wall_us : 0;
    longest = std::max(longest, current);
  }
  return longest;
}

nlohmann::json generator_health::to_json() const {
  return {{"cpu", cpu},
          {"cpu_core", cpu_core},
          {"cpu_peak", cpu_peak},
          {"cpu_busy_s", static_cast<double>(cpu_busy_us) / 1e6},
          {"cores", cores},
          {"lag_p99", static_cast<double>(lag_p99_us) / 1e3},
          {"lag_p99_us", lag_p99_us},
          {"lag_samples", lag_samples},
          {"saturated", saturated},
          {"reason", reason}};
}

generator_health judge_generator(const cpu_meter& cpu, const histogram& lag, const saturation_limits& limits) {
  generator_health h;
  h.cores = cpu.cores();
  h.cpu = cpu.mean_share();
  h.cpu_core = cpu.mean_core_share();
  h.cpu_peak = cpu.peak_share();
  h.cpu_busy_us = cpu.longest_above_us(limits.cpu_share);
  h.lag_samples = lag.count();
  h.lag_p99_us = lag.percentile(99);

  std::vector<std::string> causes;
  if (cpu.intervals() != 0 && h.cpu > limits.cpu_share) {
    causes.push_back("CPU " + percent(h.cpu) + " of " + cores_text(h.cores) + " over " + seconds(cpu.wall_us()) +
                     " (limit: " + percent(limits.cpu_share) + ")");
  } else if (cpu.intervals() != 0 && h.cpu_busy_us >= limits.cpu_for_us) {
    causes.push_back("CPU above " + percent(limits.cpu_share) + " of " + cores_text(h.cores) + " for " +
                     seconds(h.cpu_busy_us) + " in a row (limit: " + seconds(limits.cpu_for_us) + ")");
  }
  if (h.lag_samples != 0 && h.lag_p99_us > limits.lag_p99_us) {
    causes.push_back("generator.lag p99 " + millis(h.lag_p99_us) + " > " + millis(limits.lag_p99_us) +
                     " (arrivals were sent late)");
  }
  h.saturated = !causes.empty();
  for (const std::string& c : causes) {
    if (!h.reason.empty()) h.reason += "; ";
    h.reason += c;
  }
  return h;
}

self_monitor::self_monitor(double cores, saturation_limits limits) : cpu_(cores), limits_(limits) {
  cpu_.sample(process_cpu_times());
}

}  // namespace syncstorm
