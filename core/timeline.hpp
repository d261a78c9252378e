// What happened when, judged at 100 ms (DESIGN §7): the windows rules are judged on (all,
// steady, during:<fault>, after:<fault>) and, per fault occurrence, how long the clients took to
// notice it (detect), to be served normally again (recovery) and the server side to report
// ready (ready), plus the longest client-visible outage of the run.
//
// Definitions (docs/architecture.md "SLA windows and recovery" says the same):
// - The client signal is one timed metric (push.latency when present, else http.latency; a
//   scenario's only load otherwise), its 100 ms series: count, errors, percentiles per step.
// - A fault occurrence has an origin: the revert for a fault that lasts (`for`, network and
//   pause faults), the apply for an instant one (kill, db_failover, client_crash, …).
// - Baseline band: over [applied − baseline, applied) (not before the warm-up's end): the success
//   ratio r0 and p99 q0. In band: ratio ≥ r0 − ratio_slack (points) and p99 ≤ max(q0 × p99_factor,
//   q0 + p99_slack). Without a baseline (no samples before the fault), r0 = 100% and q0 = the
//   run's p50 (a fault at the start is judged against the run's typical latency).
// - recovery: the first 100 ms step t ≥ origin such that every 1 s window starting in
//   [t, t + hold − 1 s] has samples and is in band; the value is t − origin (from the heal for a
//   lasting fault, from the hit for an instant one). None by the run's end: unbounded (+inf),
//   which fails any bound.
// - detect: the first step ≥ applied with a failed sample, or a p99 (over 1 s from that step) out of
//   band; t − applied. Nothing noticed: absent (a rule on it is inconclusive).
// - ready: server side. For a fault on units (pods, db, lb): the latest over its units of the
//   first readiness-probe success (`<role>_ready`, probed every 100 ms by the lab's supervisor)
//   after the unit died; a unit that did not die but left the LB's rotation (paused): its
//   `lb_server_up`; neither: 0. Otherwise (network, disk faults) the last `lb_server_up` /
//   `lb_backend_up` after the origin for servers that went down after the apply; nothing went
//   down: 0. Never: +inf.
// - outage.max: the longest run of 100 ms steps with failures and no success, or no completion at
//   all while a fault is active, after the warm-up (µs).
// - during:<f>: each occurrence's [applied, max(reverted, origin + recovery)] (at least 100 ms; an
//   unrecovered fault lasts to the run's end);
// - steady: [warm-up end, run end) minus every fault's during-ranges.
// - after:<f>: from the end of each during-range to the next occurrence's apply or the run's end.
// Pure: no I/O, no threads.
#pragma once

#include "core/metrics.hpp"
#include "core/sla.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm {

struct fault_occurrence {
  std::string name, kind;
  std::int64_t applied_us = -1;    // -1: never applied (the occurrence is ignored)
  std::int64_t reverted_us = -1;   // -1: never reverted (counts as the run's end)
  bool lasting = false;            // had a duration (`for`) or is reverted to end its effect
  std::vector<std::string> units;  // lab units it acted on (pod-1, db-0, lb), if any
};

struct timeline_event {
  std::int64_t t_us = 0;  // run clock
  std::string event;      // pod_ready, lb_server_up, lb_server_down, …
  std::string subject;    // unit or server name
};

// A WebSocket connection the client had open and lost (the server closed it, a read failed or
// it went idle), and the server it was on as the server named itself in its handshake reply
// (empty: it did not).
struct ws_drop {
  std::int64_t t_us = 0;  // run clock
  std::string server;
};

// Which drops a fault explains. A drop on server S at t is the fault's when
//  - the lab reported S down (`<role>_died` or `<role>_stopped`) at t_e with
//    t_e − before_us ≤ t ≤ t_e + after_us (a SIGTERM closes the pod's sessions while it drains,
//    before it exits; a client notices a kill within moments), or
//  - a fault occurrence named S among its units and no such event of S falls inside the
//    occurrence (a pause, a cut: the whole occurrence, [applied − after_us, reverted + grace_us],
//    explains drops on S; a kill or a rolling restart is explained by its units' own deaths, so a
//    roll over every pod does not excuse a drop on a pod that was not down at the time).
// Every other drop with a named server is a bystander: a connection lost on a server that no
// fault touched at the time (a cascade, an LB that dropped everything). Drops with no server
// are unattributed.
struct ws_drop_counts {
  std::uint64_t total = 0, faulted = 0, bystanders = 0, unattributed = 0;
};
struct ws_drop_options {
  std::int64_t before_us = 3'000'000, after_us = 2'000'000, grace_us = 2'000'000;
};
ws_drop_counts attribute_ws_drops(const std::vector<ws_drop>& drops, const std::vector<fault_occurrence>& faults,
                                  const std::vector<timeline_event>& events, std::int64_t run_end_us,
                                  const ws_drop_options& o = {});

struct recovery_options {
  std::int64_t hold_us = 3'000'000;       // in band this long to count as recovered
  std::int64_t baseline_us = 10'000'000;  // the pre-fault band's window
  std::int64_t window_us = 1'000'000;     // the aggregate judged at each 100 ms step
  double ratio_slack = 1.0;               // percentage points below the baseline ratio
  double p99_factor = 2.0;
  std::int64_t p99_slack_us = 20'000;
};

struct fault_effects {
  std::string name, kind;
  std::int64_t applied_us = 0, origin_us = 0, reverted_us = -1;
  bool lasting = false;
  std::optional<double> recovery_us, ready_us, detect_us;  // +inf: never
  double baseline_ratio = 100, baseline_p99_us = 0;
};

struct timeline_input {
  const metrics_shard* metrics = nullptr;
  std::string client_metric;  // empty: chosen as documented above
  std::vector<fault_occurrence> faults;
  std::vector<timeline_event> events;
  std::int64_t run_end_us = 0, warmup_end_us = 0;
  recovery_options options;
};

class timeline {
 public:
  explicit timeline(timeline_input in);

  const std::vector<fault_effects>& effects() const { return effects_; }
  const std::string& client_metric() const { return client_metric_; }
  std::optional<std::int64_t> outage_max_us() const { return outage_max_us_; }

  // Windows for rules; empty when the window never happened.
  std::vector<time_window> window(const std::string& spec, const std::vector<time_window>& phase = {}) const;
  std::vector<time_window> steady() const;
  std::vector<time_window> during(const std::string& fault) const;
  std::vector<time_window> after(const std::string& fault) const;

  // recovery.<f>, ready.<f>, detect.<f> (the worst over a fault's occurrences) and outage.max,
  // in µs; what was not measured is absent.
  std::map<std::string, double> scalars() const;

 private:
  std::int64_t effect_end(const fault_effects& e) const;
  timeline_input in_;
  std::string client_metric_;
  std::vector<fault_effects> effects_;
  std::optional<std::int64_t> outage_max_us_;
};

// Subtracts `cut` from `base` (both sorted or not); the result is sorted and merged.
std::vector<time_window> subtract(std::vector<time_window> base, std::vector<time_window> cut);
std::vector<time_window> merge_windows(std::vector<time_window> w);

}  // namespace syncstorm
