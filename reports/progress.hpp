// The live progress line of `syncstorm run`: elapsed / total, per load the request rate over
// the last interval, the total and its errors, the p99 of the last complete second, and the
// faults active now. A pure function of two merged snapshots, so it is unit-tested without a
// run; the engine prints it once a second on a terminal (one line rewritten in place) and every
// 10 s otherwise (plain lines for CI logs). Safe from any thread (no shared state).
#pragma once

#include "core/metrics.hpp"

#include <string>
#include <vector>

namespace syncstorm::reports {

// A load entry as the progress line names it: its scenario name and model.
struct progress_load {
  std::string name;
  std::string model;
};

struct progress_input {
  const metrics_shard* now = nullptr;   // the merged snapshot at elapsed_s; required
  const metrics_shard* prev = nullptr;  // the one before it (nullptr at the first tick)
  double elapsed_s = 0;
  double prev_elapsed_s = 0;  // when prev was taken
  double total_s = 0;
  std::vector<progress_load> loads;
  std::vector<std::string> active_faults;  // names of the faults applied and not yet reverted
};

// The metric that carries a model's request count and latency (`http` -> http.requests and
// http.latency, `terminal` -> push.latency, ...), per load (`@name`) when the model records it
// so, else the model-wide name. Empty strings when the snapshot holds neither.
struct load_metrics {
  std::string requests;
  std::string latency;
};
load_metrics metrics_of(const metrics_shard& snap, const progress_load& l);

// One line, no newline: `[  12s/60s] api: 50/s total 600 errors 2 (0.3%) p99 3.2ms | faults: kill-a`.
std::string progress_line(const progress_input& in);

}  // namespace syncstorm::reports
