// The run's timeline, derived from a typed scenario before anything starts: load phases with
// their start and end, fault occurrences (every/count/jitter expanded with the scenario's seed),
// and the rules. The engine clock walks it; --dry-run prints it. Pure: no I/O, no threads.
#pragma once

#include "core/scenario.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace syncstorm {

struct planned_phase {
  std::string load, phase;
  std::int64_t start_us = 0, end_us = 0;
  std::optional<double> from_rate, to_rate;  // per second; equal when constant
};

struct planned_fault {
  std::string name, kind;
  int occurrence = 0;                     // 0-based, for `every`
  std::int64_t at_us = 0;                 // scheduled apply
  std::optional<std::int64_t> revert_us;  // scheduled revert (at + for), none: instantaneous
};

struct plan {
  std::int64_t duration_us = 0;
  std::vector<planned_phase> phases;
  std::vector<planned_fault> faults;  // sorted by at_us
};

plan make_plan(const scenario& s);

// The dry-run table: phases, faults, rules, one line each, aligned columns.
std::string format_plan(const scenario& s, const plan& p);

}  // namespace syncstorm
