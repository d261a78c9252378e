// Named metrics of one worker: timed metrics (a whole-run histogram, series at 100 ms and 1 s,
// ok and error counts) and gauges (a level, the last value per 100 ms step). Shards merge
// exactly, so the per-worker shards of a process, and the shards of several processes (through
// to_json/from_json, DESIGN §8), add up to what one recorder fed everything would hold.
//
// Threading: a metrics_shard is owned by exactly one thread and never locked. Another thread
// may read a copy (or the result of copy_since) that the owner made, or the shard itself once
// the owner stopped. References returned by metric() and gauge() stay valid for the shard's
// lifetime (the maps are node-based), so workers look a name up once and keep the reference.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "core/histogram.hpp"
#include "core/series.hpp"

namespace syncstorm {

inline constexpr std::int64_t fine_resolution_us = 100'000;      // 100 ms
inline constexpr std::int64_t coarse_resolution_us = 1'000'000;  // 1 s

// A timed metric (http.latency, push.e2e, conflicts, ...). record() is on every request's path:
// one histogram increment and two series updates (O(1) for the newest step), allocating only
// when a step or a point's coarse bucket is first used.
// Every recorded value, ok or not, enters the histogram and the series; `ok == false` also
// counts an error, so error ratios come from the counts and latencies include failed attempts
// (a timeout shows as its wait, a refusal as its quick failure).
class timed_metric {
 public:
  timed_metric();

  // at_us: µs since the run's start (the step the event belongs to); value_us: the measurement.
  void record(std::int64_t at_us, std::int64_t value_us, bool ok = true);
  // Counts without a value (counters such as conflicts, or failures that have no duration).
  void add(std::int64_t at_us, std::uint64_t n = 1, bool ok = true);
  void merge(const timed_metric& other);

  const histogram& hist() const noexcept { return hist_; }
  std::uint64_t ok_count() const noexcept { return ok_; }
  std::uint64_t error_count() const noexcept { return errors_; }
  std::uint64_t count() const noexcept { return ok_ + errors_; }
  const series& fine() const noexcept { return fine_; }      // 100 ms
  const series& coarse() const noexcept { return coarse_; }  // 1 s

  // Whole-run histogram and counts, series from the step holding from_us on.
  timed_metric copy_since(std::int64_t from_us) const;
  // Takes `recent`'s whole-run histogram and counts and splices its series in from from_us on
  // (series::splice): `recent` is a later copy_since(from_us) of the same source.
  void splice(const timed_metric& recent, std::int64_t from_us);

  // Exact: {"ok", "errors", "hist": histogram JSON, "fine": series exact JSON}; the 1 s series
  // is rebuilt from the 100 ms one (it is exactly its coarsening). from_json throws
  // std::invalid_argument naming the field.
  nlohmann::json to_json() const;
  static timed_metric from_json(const nlohmann::json& j, std::string_view where = "metric");
  // For reports: {"count", "ok", "errors", "values", "clamped", "min", "max", "mean", "p50",
  // "p90", "p99", "p99_9", "p99_99", "fine": chart rows, "coarse": chart rows} (series::to_json).
  nlohmann::json to_json_summary() const;

  friend bool operator==(const timed_metric&, const timed_metric&) = default;

 private:
  histogram hist_;
  series fine_{fine_resolution_us};
  series coarse_{coarse_resolution_us};
  std::uint64_t ok_ = 0;
  std::uint64_t errors_ = 0;
};

// A level such as queue.depth or ws.connected: the last value set in each 100 ms step (the
// 1 s view is the last value in each second). Between the steps where it was set, a level
// holds its last value.
struct gauge_point {
  std::int64_t step = 0;  // of fine_resolution_us
  double value = 0;
  friend bool operator==(const gauge_point&, const gauge_point&) = default;
};

class gauge_series {
 public:
  void set(std::int64_t at_us, double value);
  // Adds other's level to this one step by step, each side holding its last value between
  // the steps where it was set (before its first, it is 0): several workers' queue depths or
  // connection counts add up to the process's. Both sides must each cover the run from its
  // start (whole shards or their copies), not disjoint time slices of one source.
  void merge(const gauge_series& other);

  const std::vector<gauge_point>& fine() const noexcept { return points_; }  // 100 ms steps
  std::vector<gauge_point> coarse() const;  // 1 s steps: the last fine value in each second
  bool empty() const noexcept { return points_.empty(); }
  double last() const noexcept { return points_.empty() ? 0.0 : points_.back().value; }
  double peak() const noexcept;  // highest value set; 0 when empty
  // The level at at_us: the value of the latest step at or before it; 0 before the first.
  double value_at(std::int64_t at_us) const noexcept;

  // The steps from the one that holds from_us on, plus the latest earlier point (the level
  // in force when the window opens).
  gauge_series copy_since(std::int64_t from_us) const;
  // Replaces the steps from the one holding from_us on with `recent`'s (a later
  // copy_since(from_us) of the same source).
  void splice(const gauge_series& recent, std::int64_t from_us);

  // Exact: {"points": [[step, value], ...]} (steps of 100 ms). For reports: {"last", "peak",
  // "fine": [[t_s, value], ...], "coarse": [[t_s, value], ...]}.
  nlohmann::json to_json() const;
  static gauge_series from_json(const nlohmann::json& j, std::string_view where = "gauge");
  nlohmann::json to_json_summary() const;

  friend bool operator==(const gauge_series&, const gauge_series&) = default;

 private:
  std::vector<gauge_point> points_;  // increasing steps
};

class metrics_shard {
 public:
  // The timed metric `name`, created empty on first use. The reference lives as long as the
  // shard (it is not invalidated by later names, merges or copies of the shard).
  timed_metric& metric(std::string_view name);
  // Sets gauge `name` to `value` at at_us (the step keeps the last value set in it).
  void gauge(std::string_view name, std::int64_t at_us, double value);
  // The gauge `name`, created empty on first use; a reference to cache like metric()'s.
  gauge_series& gauge(std::string_view name);

  // Adds every metric and gauge of other (names missing here are created).
  void merge(const metrics_shard& other);
  // A copy with whole-run histograms and counts but only the series and gauge points from the
  // step holding from_us on: what a once-a-second live merge needs, at a cost that does not
  // grow with the run (a full copy's series do). Merge these for live views, the shards
  // themselves at the end.
  metrics_shard copy_since(std::int64_t from_us) const;
  // Brings this shard, a whole view of a source as of an earlier copy, up to date with
  // `recent`, a copy_since(from_us) of that source taken later (from_us: when this view's last
  // update was taken; 0 for the first, a full copy). Afterwards *this equals a full copy of the
  // source at `recent`'s time; the cost is that of the new steps. The live exporter keeps the
  // run's whole series this way from the once-a-second snapshots.
  void splice(const metrics_shard& recent, std::int64_t from_us);

  std::vector<std::string> names() const;                       // timed metrics, sorted
  std::vector<std::string> gauge_names() const;                 // gauges, sorted
  const timed_metric* find(std::string_view name) const;        // nullptr when absent
  const gauge_series* find_gauge(std::string_view name) const;  // nullptr when absent

  // Exact: {"metrics": {name: timed_metric JSON}, "gauges": {name: gauge JSON}}; shards of
  // other processes come back through from_json (throws std::invalid_argument naming the
  // field). For reports: the same shape with the summaries.
  nlohmann::json to_json() const;
  static metrics_shard from_json(const nlohmann::json& j, std::string_view where = "metrics");
  nlohmann::json to_json_summary() const;

  friend bool operator==(const metrics_shard&, const metrics_shard&) = default;

 private:
  std::map<std::string, timed_metric, std::less<>> metrics_;
  std::map<std::string, gauge_series, std::less<>> gauges_;
};

}  // namespace syncstorm
