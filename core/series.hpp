// A metric over time: one point per fixed step (100 ms or 1 s) from the run's start, each with
// count, errors, sum, min, max and a compact coarse histogram so a point's p50/p99 can be
// charted and recovery judged at 100 ms. Points exist only for steps that were touched; a
// point costs ~70 bytes plus 8 per occupied coarse bucket (32 per power of two, so a latency
// spread over one decade occupies at most ~110). Series merge exactly, point by point.
//
// Recording finds the point by step: the newest point first (the usual case, time moves
// forward), else a binary search. Within the newest point a per-series slot table (886 × 2
// bytes) maps a coarse bucket to its place, so recording there is O(1); an older point (a late
// record) is scanned. Recording allocates only when a point or a coarse bucket is first used.
//
// Threading: not thread-safe; one owner, like histogram.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace syncstorm {

// A point's coarse histogram: values below 64 µs exact, above 32 sub-buckets per power of two
// (a sub-bucket spans at most 1/32 of its lowest value; reporting its middle keeps the relative
// error at or below 1/64, ~1.6%), up to 1 h (886 buckets in all; a point stores only the used).
struct coarse_bucket {
  std::uint16_t index = 0;
  std::uint32_t count = 0;  // saturates at 2^32-1 (billions of values in one step)
  friend bool operator==(const coarse_bucket&, const coarse_bucket&) = default;
};

namespace coarse {
inline constexpr std::size_t bucket_count = 886;         // index_of(1 h) + 1
std::uint16_t index_of(std::int64_t value_us) noexcept;  // value clamped to [1 µs, 1 h]
std::int64_t lowest_at(std::uint16_t index) noexcept;
std::int64_t width_at(std::uint16_t index) noexcept;
}  // namespace coarse

struct series_point {
  std::uint64_t count = 0, errors = 0;  // every event of the step; errors among them
  double sum = 0;                       // of the recorded values (clamped to [1 µs, 1 h])
  std::int64_t min = 0, max = 0;        // 0 when the step has no value, only add()s
  std::vector<coarse_bucket> buckets;   // occupied coarse buckets, in no particular order

  // Events that carried a value (record(), not add()).
  std::uint64_t values() const noexcept;
  double mean() const noexcept;  // of the values; 0 without any
  // p in [0, 100] over the values, within ~1.6%, clamped to [min, max]; 0 without values.
  std::int64_t percentile(double p) const;
  std::uint64_t ok() const noexcept { return count - errors; }

  void merge(const series_point& other);
  // Same counts, sum, bounds and buckets (in whatever order).
  friend bool operator==(const series_point& a, const series_point& b);
};

class series {
 public:
  // resolution_us > 0; throws std::invalid_argument otherwise.
  explicit series(std::int64_t resolution_us);

  // at_us is µs since the run's start; times before the start count in step 0.
  // Every value (ok or not) enters the point's statistics; `ok == false` also counts an error.
  void record(std::int64_t at_us, std::int64_t value_us, bool ok = true);
  // A count without a value (e.g. conflicts, dropped messages).
  void add(std::int64_t at_us, std::uint64_t n = 1, bool ok = true);
  // Adds other's points step by step. Both must have the same resolution (else
  // std::invalid_argument).
  void merge(const series& other);

  std::int64_t resolution_us() const noexcept { return resolution_us_; }
  // Number of steps from 0 to the last touched one (0 when nothing was recorded).
  std::size_t size() const noexcept;
  // nullptr when step `index` was never touched. O(log touched).
  const series_point* at(std::size_t index) const;
  // The touched steps in increasing order, and their points (same order, same length).
  const std::vector<std::int64_t>& steps() const noexcept { return steps_; }
  const std::vector<series_point>& points() const noexcept { return points_; }
  // Start of step `index` in seconds since the run's start.
  double time_s(std::int64_t index) const noexcept;

  // The same data at a coarser resolution, a multiple of this one (else
  // std::invalid_argument): e.g. the 1 s series from the 100 ms one, exactly.
  series coarsen(std::int64_t resolution_us) const;

  // A copy holding only the steps from the one that holds from_us on: a recent window whose
  // cost does not grow with the run, for once-a-second live views.
  series copy_since(std::int64_t from_us) const;
  // Replaces the steps from the one holding from_us on with `recent`'s (a copy_since(from_us)
  // of the same source, taken later): a live view kept whole at the cost of the new steps only.
  // Same resolution required (else std::invalid_argument).
  void splice(const series& recent, std::int64_t from_us);

  // For charts: [[t_s, count, errors, p50, p99, max], ...], touched steps only, t_s the start
  // of the step. Lossy: from_json cannot read it back.
  nlohmann::json to_json() const;
  // Exact: {"resolution_us": R, "points": [[step, count, errors, sum, min, max,
  // [index, count, index, count, ...]], ...]}. from_json(to_json_exact()) == *this; from_json
  // throws std::invalid_argument naming the field when the JSON is not that.
  nlohmann::json to_json_exact() const;
  static series from_json(const nlohmann::json& j, std::string_view where = "series");

  // Same resolution, steps and points.
  friend bool operator==(const series& a, const series& b);

 private:
  series_point& touch(std::int64_t step);
  coarse_bucket& bucket_in_newest(series_point& p, std::uint16_t index);
  std::int64_t step_of(std::int64_t at_us) const noexcept { return at_us <= 0 ? 0 : at_us / resolution_us_; }

  std::int64_t resolution_us_;
  std::vector<std::int64_t> steps_;   // increasing
  std::vector<series_point> points_;  // points_[i] is the point of steps_[i]
  // For the point of step slot_step_ (always the newest): slots_[bucket index] is 1 + the
  // bucket's place in its buckets vector, 0 when absent. Anything that changes that point
  // other than record() sets slot_step_ to -1; record() then rebuilds the table.
  std::vector<std::uint16_t> slots_;
  std::int64_t slot_step_ = -1;
  std::int64_t slot_begin_us_ = 0;  // the times that fall in step slot_step_
  std::int64_t slot_end_us_ = 0;
};

}  // namespace syncstorm
