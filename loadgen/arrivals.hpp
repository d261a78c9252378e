// Arrival scheduling for the load models: when each request is meant to be sent. Pure logic,
// no sockets and no clock: times are microseconds since the run started, so the open model can be
// unit-tested exactly and the coroutine that carries it out stays thin.
//
// Open model: phases `[{name, for, rate} | {name, for, to}]` define a rate curve r(t) (`rate`
// holds a constant rate per second; `to` ramps linearly from the previous phase's rate, or from 0
// for the first phase). The k-th arrival of the whole run (k = 0, 1, ...) is due at the time t_k
// where the integral of r from 0 to t_k equals k. Workers split the arrivals round-robin: worker i
// of W sends k = i, i + W, i + 2W, ... so their union is exactly the single-generator schedule.
// Closed model: no schedule; `split_count` divides the connections among the workers.
//
// Thread-safety: an `arrival_schedule` is a plain value owned by one worker; no sharing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::loadgen {

// One phase of a load entry (scenario `phases[]`). Exactly one of `rate` and `to` is set; the
// core validates the scenario, `arrival_schedule` throws std::invalid_argument on a bad one.
struct phase_spec {
  std::string name;
  std::int64_t for_us = 0;     // duration, > 0
  std::optional<double> rate;  // constant arrivals per second, >= 0
  std::optional<double> to;    // ramp end rate per second, >= 0
};

// The share of `total` items that worker `index` of `count` takes: total / count, plus one for
// the first total % count workers. The shares sum to `total`.
std::size_t split_count(std::size_t total, std::size_t index, std::size_t count);

// The intended send times of one worker's share of an open-model load, in order.
class arrival_schedule {
 public:
  // Throws std::invalid_argument when a phase has neither or both of rate/to, a negative rate,
  // or a non-positive duration, or when worker >= workers.
  arrival_schedule(std::vector<phase_spec> phases, std::size_t worker = 0, std::size_t workers = 1);

  // The next intended send time (µs since run start) of this worker, or nullopt once the phases
  // are over. Each call moves on by one arrival.
  std::optional<std::int64_t> next();

  // The global arrival index of the arrival `next()` returns next (for tests and reports).
  std::uint64_t next_index() const { return k_; }

  // End of the last phase, µs since run start.
  std::int64_t end_us() const { return end_us_; }

  // Arrivals of the whole run (all workers) due before `t_us`: ceil of the integral of r(t).
  std::uint64_t total_before(std::int64_t t_us) const;

 private:
  struct segment {
    std::int64_t begin_us, end_us;
    double r0, r1;   // arrivals per µs at begin and end
    double n_begin;  // arrivals of the run due before begin_us (the integral, not rounded)
    double n_total;  // arrivals due within the segment
  };
  std::vector<segment> segments_;
  std::size_t cursor_ = 0;
  std::uint64_t k_;
  std::uint64_t step_;
  std::int64_t end_us_ = 0;
};

}  // namespace syncstorm::loadgen
