// Choosing what a fault acts on: globs over names, the `pick` of DESIGN §9 (one, all, random,
// {"n": N}, {"percent": P}) drawn from a seeded generator, process identity (pid + start time,
// so a recycled pid is never signalled) and the hard refusals (allowlist.hpp holds the operator's allowlist). Pure functions except the
// /proc readers. Thread-safe.
#pragma once

#include "injectors/allowlist.hpp"

#include <nlohmann/json.hpp>

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::injectors {

// fnmatch-style: `*`, `?` and `[...]`.
bool glob_match(const std::string& pattern, const std::string& name);

// Picks from `candidates` (kept in their order in the result). `pick` is the scenario value or
// null (then `default_pick`: "one" or "all"). "one": the first candidate; "random": one at
// random; {"n": N}: N at random (all when fewer); {"percent": P}: ceil(P% of them), at least
// one, at random. `seed` makes the draw repeatable (the engine derives it from the scenario
// seed, the fault name and the occurrence).
std::vector<std::string> pick_targets(const std::vector<std::string>& candidates, const nlohmann::json& pick,
                                      const std::string& default_pick, std::uint64_t seed);

// A seed for one occurrence of one fault: repeatable for the same scenario seed.
std::uint64_t occurrence_seed(std::uint64_t scenario_seed, const std::string& fault, int occurrence);

// /proc/<pid>/stat: start time in clock ticks since boot (field 22), state letter (field 3),
// process group. nullopt when the process does not exist.
struct proc_info {
  unsigned long long start_time = 0;
  char state = '?';
  pid_t ppid = 0, pgrp = 0;
  std::string comm;
};
std::optional<proc_info> read_proc(pid_t pid);
// Alive and the same process as when recorded (a zombie counts as gone).
bool same_process(pid_t pid, unsigned long long start_time);

// Empty when `pid` may be signalled; else why not: pid 1 and kernel threads, this process and
// its ancestors (the run, its shell, its CI runner), another user's process unless we are root,
// a pid that does not exist.
std::string refuse_pid(pid_t pid);

}  // namespace syncstorm::injectors
