// The live view of a run as OpenMetrics 1.0 text (or the Prometheus text format 0.0.4 for
// scrapers that do not ask for OpenMetrics), what `run --metrics-listen` serves and
// `--prometheus-remote-write` pushes. A pure function of a snapshot, so it is unit-tested
// without a run. The exported families are fixed (docs/metrics.md lists them, with the bucket
// boundaries); a scenario's metrics are told apart by labels, so a new model adds series, never
// a family:
//
//   syncstorm_run_info{scenario,run}                       1
//   syncstorm_run_start_timestamp_seconds, syncstorm_run_elapsed_seconds,
//   syncstorm_run_planned_seconds, syncstorm_run_finished
//   syncstorm_events_total{metric,load,outcome="ok"|"error"}            counter
//   syncstorm_latency_seconds{metric,load} _bucket{le} _count _sum      histogram
//   syncstorm_latency_percentile_seconds{metric,load,quantile}          gauge (whole run)
//   syncstorm_gauge{metric,load}                                        gauge (the level now)
//   syncstorm_fault_active{fault,kind,target}                           gauge 0/1
//   syncstorm_fault_applied_total{fault,kind}                           counter
//   syncstorm_generator_cpu_ratio, syncstorm_generator_cores            gauge
//   syncstorm_rule_state{rule,metric,stat,window,load}                  gauge
//   syncstorm_rule_value{rule,unit}, syncstorm_rule_bound{rule,unit,bound="fail"|"warn"}
//
// `metric` is the scenario's name of the metric (push.latency), `load` the load entry it was
// recorded for ("" for the whole, the merge of every entry). Latencies are in seconds.
// syncstorm_rule_state is 0 ok, 1 warning, 2 breached, -1 pending (not judged yet: too few
// samples, a window that has not happened, a value measured only at the end).
#pragma once

#include "core/metrics.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace syncstorm::reports {

// The histogram's bucket boundaries (`le`, seconds); +Inf follows. From 0.5 ms to 5 min,
// denser where the users' SLAs sit (100-200 ms p99, 5 s failover, 30 s resume).
inline constexpr std::array<double, 30> openmetrics_buckets = {
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,  0.15,  0.2,
    0.3,    0.5,   0.75,  1.0,   1.5,   2.0,    3.0,  5.0,   7.5,  10.0, 15.0, 30.0,  60.0, 120.0, 300.0};

inline constexpr double openmetrics_quantiles[] = {0.5, 0.9, 0.99, 0.999};

struct live_fault {
  std::string name, kind, target;  // target: the scenario's target as one line
  bool active = false;             // an occurrence applied and not yet reverted
  std::uint64_t applied = 0;       // occurrences applied so far
};

struct live_view {
  std::string scenario, run;  // the scenario's name, the run directory's name
  double elapsed_s = 0, planned_s = 0;
  double start_unix_s = 0;                 // the load clock's start on the wall clock (0: not yet)
  bool finished = false;                   // the run ended (the values are final)
  const metrics_shard* metrics = nullptr;  // the live merged snapshot (whole-run histograms)
  std::vector<live_fault> faults;
  // report.json verdicts[] entries, judged on the run so far (or final ones once finished)
  nlohmann::json verdicts = nlohmann::json::array();
  double generator_cpu = 0;  // share of the generator's cores over the last interval, 0..1
  double generator_cores = 0;
};

enum class exposition { openmetrics, prometheus_text };

// The Content-Type header value of each format.
const char* content_type(exposition f);
// OpenMetrics when `accept` (a request's Accept header) names application/openmetrics-text,
// else the Prometheus text format.
exposition negotiate(const std::string& accept);

// One sample of the view: a family's sample name, its labels, its value.
struct live_sample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

// Every sample the text carries, in its order (remote write sends these).
std::vector<live_sample> live_samples(const live_view& v);

// The exposition text, ending with "# EOF\n" in OpenMetrics.
std::string render_metrics(const live_view& v, exposition f);

// The live state of a verdict (verdicts[] entry): 0 ok, 1 warning, 2 breached, -1 pending.
int rule_state(const nlohmann::json& verdict);

// Every family name the exposition may carry (a family's samples add _total, _bucket, _count,
// _sum as OpenMetrics says); the dashboard test checks its queries against these.
std::vector<std::string> exported_families();

}  // namespace syncstorm::reports
