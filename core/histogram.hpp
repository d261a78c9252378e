// A log-linear latency histogram in the manner of HdrHistogram: 3 significant digits from
// 1 µs to 1 h, in a fixed array of counters allocated once at construction. Recording is a
// few arithmetic operations and one increment; it never allocates, throws or locks. Histograms
// merge exactly (counter by counter), so per-worker and per-shard histograms add up to the same
// histogram one would have had from a single recorder, and to_json/from_json carry them between
// processes without loss.
//
// Layout: values below 2048 µs have a counter each (exact). Above, each power of two
// [2^k, 2^(k+1)) is cut into 1024 equal sub-buckets, so a sub-bucket's width is at most 1/1024
// of its lowest value. Percentiles report the middle of the sub-bucket (clamped to the exact
// min and max), which keeps the relative error at or below 1/2048 (< 0.05%).
//
// Threading: not thread-safe. A histogram has one owner (a worker thread); other threads see
// it only through a copy or a merge done by that owner or after it stopped.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace syncstorm {

// The 1-based rank that percentile p (clamped to [0, 100]) names among n sorted values:
// max(1, ceil(p/100·n)), with p/100·n that is an integer up to floating-point noise taken as
// that integer (so p99.9 of 1,000,000 values is rank 999,000, not 999,001). 0 when n is 0.
// Histograms and series use it; tests use it to compute exact percentiles the same way.
std::uint64_t percentile_rank(double p, std::uint64_t n) noexcept;

class histogram {
 public:
  static constexpr std::int64_t lowest_us = 1;
  static constexpr std::int64_t highest_us = 3'600'000'000;  // 1 h

  // Allocates the whole counter array (bucket_count() counters, ~190 KB) once.
  histogram();

  // Values below 1 are recorded as 1 and above 1 h as 1 h; clamped() counts both.
  void record(std::int64_t value_us, std::uint64_t count = 1) noexcept {
    if (count == 0) return;
    if (value_us < lowest_us || value_us > highest_us) {
      clamped_ += count;
      value_us = value_us < lowest_us ? lowest_us : highest_us;
    }
    counts_[index_of(value_us)] += count;
    if (total_ == 0 || value_us < min_) min_ = value_us;
    if (value_us > max_) max_ = value_us;
    total_ += count;
    sum_ += static_cast<double>(value_us) * static_cast<double>(count);
  }

  // Adds every counter of `other`; afterwards *this equals one histogram fed both inputs.
  void merge(const histogram& other);

  std::uint64_t count() const noexcept { return total_; }
  // Values that were outside [1 µs, 1 h] and were recorded at the nearest bound.
  std::uint64_t clamped() const noexcept { return clamped_; }
  std::int64_t min() const noexcept { return total_ == 0 ? 0 : min_; }  // 0 when empty
  std::int64_t max() const noexcept { return total_ == 0 ? 0 : max_; }  // 0 when empty
  // Exact mean of the recorded (clamped) values while their sum stays below 2^53 µs
  // (~285 years of summed latency); 0 when empty.
  double mean() const noexcept;
  // Sum of the recorded (clamped) values, in µs.
  double sum() const noexcept { return sum_; }

  // The value at percentile p (clamped to [0, 100]): the value of rank max(1, ceil(p/100·n))
  // in sorted order, within 0.05% (exact below 2048 µs, and at p = 100 where it is max()).
  // 0 when empty. Walks the counter array: meant for reports and rules, not per request.
  std::int64_t percentile(double p) const noexcept;

  // How many values lie above value_us. Exact below 2048 µs; above, values that share
  // value_us's sub-bucket count as not above (they are equal at this resolution).
  std::uint64_t count_above(std::int64_t value_us) const noexcept;

  void reset() noexcept;

  // Same counters, bounds, sum and clamped count.
  friend bool operator==(const histogram&, const histogram&) = default;

  // {"count", "min", "max", "sum", "clamped", "buckets": {"<index>": count, ...}} with only the
  // non-zero counters. from_json(to_json()) reproduces the histogram exactly; it throws
  // std::invalid_argument naming the field (under `where`) when the JSON is not such a histogram.
  nlohmann::json to_json() const;
  static histogram from_json(const nlohmann::json& j, std::string_view where = "histogram");

  // The fixed layout, for tests, merges and readers of the JSON.
  static constexpr std::size_t sub_bucket_count = 2048;
  static constexpr std::size_t sub_bucket_half_count = sub_bucket_count / 2;
  static constexpr int sub_bucket_half_count_magnitude = 10;  // log2(1024)
  static constexpr std::size_t index_of(std::int64_t value_us) noexcept {
    const auto v = static_cast<std::uint64_t>(value_us);
    const int bucket = 64 - std::countl_zero(v | (sub_bucket_count - 1)) - 11;
    const auto sub = static_cast<std::size_t>(v >> bucket);
    return (static_cast<std::size_t>(bucket + 1) << sub_bucket_half_count_magnitude) + sub - sub_bucket_half_count;
  }
  // Lowest value of the counter at `index`, and the width of the values it holds.
  static constexpr std::int64_t lowest_at(std::size_t index) noexcept {
    int bucket = static_cast<int>(index >> sub_bucket_half_count_magnitude) - 1;
    std::size_t sub = (index & (sub_bucket_half_count - 1)) + sub_bucket_half_count;
    if (bucket < 0) {
      sub -= sub_bucket_half_count;
      bucket = 0;
    }
    return static_cast<std::int64_t>(sub) << bucket;
  }
  static constexpr std::int64_t width_at(std::size_t index) noexcept {
    const int bucket = static_cast<int>(index >> sub_bucket_half_count_magnitude) - 1;
    return std::int64_t{1} << (bucket < 0 ? 0 : bucket);
  }
  // Number of counters: the same for every histogram, whatever it recorded.
  static constexpr std::size_t bucket_count() noexcept { return index_of(highest_us) + 1; }
  // Bytes this histogram holds, itself and its counter array: constant over its life.
  std::size_t memory_bytes() const noexcept { return sizeof(*this) + counts_.capacity() * sizeof(std::uint64_t); }

 private:
  // Sized bucket_count() at construction and never resized (a moved-from histogram may only
  // be assigned to or destroyed).
  std::vector<std::uint64_t> counts_;
  std::uint64_t total_ = 0;
  std::uint64_t clamped_ = 0;
  std::int64_t min_ = 0;
  std::int64_t max_ = 0;
  double sum_ = 0;
};

namespace detail {
// Readers shared by the metrics JSON forms (histogram, series, metrics). Each throws
// std::invalid_argument in the DESIGN §9 shape: "<where>: found <json>; expected <what>".
[[noreturn]] void json_fail(std::string_view where, const nlohmann::json& found, std::string_view expected);
const nlohmann::json& json_member(const nlohmann::json& object, const char* key, std::string_view where);
std::uint64_t json_u64(const nlohmann::json& value, std::string_view where);
std::int64_t json_i64(const nlohmann::json& value, std::string_view where);
double json_number(const nlohmann::json& value, std::string_view where);
}  // namespace detail

}  // namespace syncstorm
