// The generator's watch over itself. A load generator that runs out of CPU, or sends its
// arrivals late, measures itself rather than the target; DESIGN §7 then makes latency verdicts
// inconclusive. This file measures the process's CPU share (sampled about once a second) and
// judges saturation from that and from generator.lag: CPU above 90% of the generator's cores
// (over the run, or for 3 s in a row) or generator.lag p99 above 10 ms, with a one-line reason.
//
// cpu_meter and judge_generator are pure (they take samples and return a verdict) so they are
// tested with made-up samples; process_cpu_times() and self_monitor are the thin parts that
// read the clock and getrusage.
//
// Threading: none of these lock. A cpu_meter or self_monitor belongs to one thread (the
// engine's control thread samples the process; a worker may sample itself with
// thread_cpu_times()). The lag histogram passed to judge must be a merged copy, not a worker's.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/histogram.hpp"

namespace syncstorm {

// A reading of a CPU clock beside the wall clock, both in µs.
struct cpu_times {
  std::int64_t wall_us = 0;  // steady clock
  std::int64_t cpu_us = 0;   // user + system CPU time consumed so far
};

cpu_times process_cpu_times() noexcept;  // the whole process (getrusage(RUSAGE_SELF))
cpu_times thread_cpu_times() noexcept;   // the calling thread (CLOCK_THREAD_CPUTIME_ID)
unsigned usable_cores() noexcept;        // cores this process may run on (affinity), >= 1

// CPU share over the intervals between successive samples. Keeps one 16-byte interval per
// sample (~56 KB for an hour at one sample a second).
class cpu_meter {
 public:
  // cores: how many cores the measured CPU time may spread over, e.g. the generator's worker
  // threads capped at usable_cores() (a process on 1 of 8 cores is saturated at 1 core, not 8).
  // Values below 1 are taken as 1.
  explicit cpu_meter(double cores);

  // The first sample sets the origin; each later one closes an interval. Samples whose wall
  // time did not advance are ignored.
  void sample(const cpu_times& now);

  double cores() const noexcept { return cores_; }
  std::size_t intervals() const noexcept { return intervals_.size(); }
  std::int64_t wall_us() const noexcept { return wall_total_; }  // covered by the intervals
  std::int64_t cpu_us() const noexcept { return cpu_total_; }

  // Shares as fractions: of one core (1.5 = one and a half cores busy) and of cores().
  double last_core_share() const noexcept;
  double last_share() const noexcept { return last_core_share() / cores_; }
  double mean_core_share() const noexcept;  // over all intervals
  double mean_share() const noexcept { return mean_core_share() / cores_; }
  double peak_share() const noexcept;  // the busiest interval, of cores()
  // The longest stretch of consecutive intervals whose share of cores() exceeded `share`, in
  // µs of wall time.
  std::int64_t longest_above_us(double share) const noexcept;

 private:
  struct interval {
    std::int64_t wall_us;
    std::int64_t cpu_us;
  };
  double cores_;
  bool started_ = false;
  cpu_times origin_;
  std::vector<interval> intervals_;
  std::int64_t wall_total_ = 0;
  std::int64_t cpu_total_ = 0;
};

struct saturation_limits {
  double cpu_share = 0.90;              // of the generator's cores
  std::int64_t cpu_for_us = 3'000'000;  // above cpu_share this long in a row also counts
  std::int64_t lag_p99_us = 10'000;     // generator.lag p99
};

// The report's `generator` section (DESIGN §9: cpu, lag_p99, saturated) and why.
struct generator_health {
  double cpu = 0;                // mean share of the generator's cores, 0..1
  double cpu_core = 0;           // mean share of one core (may exceed 1)
  double cpu_peak = 0;           // busiest interval, share of the generator's cores
  std::int64_t cpu_busy_us = 0;  // longest stretch above the CPU limit
  double cores = 0;
  std::int64_t lag_p99_us = 0;
  std::uint64_t lag_samples = 0;
  bool saturated = false;
  // Empty when not saturated; else one clause per cause joined by "; ", e.g. "CPU above 90%
  // of 2 cores for 5.0 s in a row (limit: 3.0 s); generator.lag p99 23.4 ms > 10.0 ms (arrivals
  // were sent late)".
  std::string reason;

  // {"cpu", "cpu_core", "cpu_peak", "cpu_busy_s", "cores", "lag_p99" (ms), "lag_p99_us",
  //  "lag_samples", "saturated", "reason"}
  nlohmann::json to_json() const;
};

// Saturated when the mean CPU share exceeds limits.cpu_share, or it stayed above it for
// limits.cpu_for_us in a row, or the p99 of `lag` (generator.lag, merged over workers)
// exceeds limits.lag_p99_us. An empty meter or histogram judges nothing on its side.
generator_health judge_generator(const cpu_meter& cpu, const histogram& lag, const saturation_limits& limits = {});

// The process-wide watch the engine keeps: call sample() about once a second from one thread.
class self_monitor {
 public:
  explicit self_monitor(double cores = usable_cores(), saturation_limits limits = {});

  void sample() { cpu_.sample(process_cpu_times()); }
  const cpu_meter& cpu() const noexcept { return cpu_; }
  const saturation_limits& limits() const noexcept { return limits_; }
  generator_health judge(const histogram& lag) const { return judge_generator(cpu_, lag, limits_); }

 private:
  cpu_meter cpu_;
  saturation_limits limits_;
};

}  // namespace syncstorm
