// Time series of metric points with coarse per-point histograms.
// Threading: one owner per series; nothing here is shared between threads.
#include "core/series.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <limits>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "core/histogram.hpp"

namespace syncstorm {

namespace coarse {

std::uint16_t index_of(std::int64_t value_us) noexcept {
  const auto v = static_cast<std::uint64_t>(std::clamp(value_us, histogram::lowest_us, histogram::highest_us));
  if (v < 64) return static_cast<std::uint16_t>(v);
  const int e = 63 - std::countl_zero(v);           // 6..31
  const auto sub = static_cast<int>(v >> (e - 5));  // 32..63
  return static_cast<std::uint16_t>(64 + (e - 6) * 32 + (sub - 32));
}

std::int64_t lowest_at(std::uint16_t index) noexcept {
  if (index < 64) return index;
  const int k = index - 64;
  const int e = k / 32 + 6;
  return static_cast<std::int64_t>(k % 32 + 32) << (e - 5);
}

std::int64_t width_at(std::uint16_t index) noexcept {
  if (index < 64) return 1;
  return std::int64_t{1} << ((index - 64) / 32 + 1);
}

}  // namespace coarse

namespace {

std::uint32_t saturating_add(std::uint32_t a, std::uint64_t b) noexcept {
  const std::uint64_t s = a + b;
  return s > std::numeric_limits<std::uint32_t>::max() ? std::numeric_limits<std::uint32_t>::max()
                                                       : static_cast<std::uint32_t>(s);
}

}  // namespace

std::uint64_t series_point::values() const noexcept {
  std::uint64_t n = 0;
  for (const coarse_bucket& b : buckets) n += b.count;
  return n;
}

double series_point::mean() const noexcept {
  const std::uint64_t n = values();
  return n == 0 ? 0.0 : sum / static_cast<double>(n);
}

std::int64_t series_point::percentile(double p) const {
  const std::uint64_t n = values();
  if (n == 0) return 0;
  const std::uint64_t rank = percentile_rank(p, n);
  if (rank >= n) return max;
  if (rank == 1) return min;
  // Buckets are unordered: spread them over the index range [min's, max's] and walk it.
  const std::uint16_t lo = coarse::index_of(min);
  const std::uint16_t hi = coarse::index_of(max);
  std::array<std::uint64_t, coarse::bucket_count> dense;
  std::fill(dense.begin() + lo, dense.begin() + hi + 1, 0);
  for (const coarse_bucket& b : buckets) dense[b.index] += b.count;
  std::uint64_t seen = 0;
  for (std::uint16_t i = lo; i <= hi; ++i) {
    seen += dense[i];
    if (seen >= rank) {
      return std::clamp(coarse::lowest_at(i) + coarse::width_at(i) / 2, min, max);
    }
  }
  return max;
}

void series_point::merge(const series_point& other) {
  if (!other.buckets.empty()) {
    if (buckets.empty()) {
      buckets = other.buckets;
      min = other.min;
      max = other.max;
    } else {
      const std::uint16_t lo = coarse::index_of(std::min(min, other.min));
      const std::uint16_t hi = coarse::index_of(std::max(max, other.max));
      std::array<std::uint64_t, coarse::bucket_count> dense;
      std::fill(dense.begin() + lo, dense.begin() + hi + 1, 0);
      for (const coarse_bucket& b : buckets) dense[b.index] += b.count;
      for (const coarse_bucket& b : other.buckets) dense[b.index] += b.count;
      buckets.clear();
      for (std::uint16_t i = lo; i <= hi; ++i) {
        if (dense[i] != 0) buckets.push_back({i, saturating_add(0, dense[i])});
      }
      min = std::min(min, other.min);
      max = std::max(max, other.max);
    }
  }
  count += other.count;
  errors += other.errors;
  sum += other.sum;
}

bool operator==(const series_point& a, const series_point& b) {
  if (a.count != b.count || a.errors != b.errors || a.sum != b.sum || a.min != b.min || a.max != b.max ||
      a.buckets.size() != b.buckets.size()) {
    return false;
  }
  auto sorted = [](std::vector<coarse_bucket> v) {
    std::sort(v.begin(), v.end(), [](const coarse_bucket& x, const coarse_bucket& y) { return x.index < y.index; });
    return v;
  };
  return sorted(a.buckets) == sorted(b.buckets);
}

bool operator==(const series& a, const series& b) {
  return a.resolution_us_ == b.resolution_us_ && a.steps_ == b.steps_ && a.points_ == b.points_;
}

series::series(std::int64_t resolution_us) : resolution_us_(resolution_us) {
  if (resolution_us <= 0) {
    throw std::invalid_argument("series: found resolution " + std::to_string(resolution_us) +
                                " µs; expected a positive number of µs");
  }
}

series_point& series::touch(std::int64_t step) {
  if (!steps_.empty() && steps_.back() == step) return points_.back();
  if (steps_.empty() || step > steps_.back()) {
    steps_.push_back(step);
    return points_.emplace_back();
  }
  // An earlier step (a late completion recorded at its intended time): rare.
  const auto it = std::lower_bound(steps_.begin(), steps_.end(), step);
  const auto i = it - steps_.begin();
  if (*it != step) {
    steps_.insert(it, step);
    points_.insert(points_.begin() + i, series_point{});
  }
  return points_[static_cast<std::size_t>(i)];
}

coarse_bucket& series::bucket_in_newest(series_point& p, std::uint16_t index) {
  if (slot_step_ != steps_.back()) {
    slots_.assign(coarse::bucket_count, 0);  // allocates on the first use only
    for (std::size_t k = 0; k < p.buckets.size(); ++k) {
      slots_[p.buckets[k].index] = static_cast<std::uint16_t>(k + 1);
    }
    slot_step_ = steps_.back();
    slot_begin_us_ = slot_step_ == 0 ? std::numeric_limits<std::int64_t>::min() : slot_step_ * resolution_us_;
    slot_end_us_ = (slot_step_ + 1) * resolution_us_;
  }
  std::uint16_t& slot = slots_[index];
  if (slot == 0) {
    p.buckets.push_back({index, 0});
    slot = static_cast<std::uint16_t>(p.buckets.size());
  }
  return p.buckets[slot - 1];
}

void series::record(std::int64_t at_us, std::int64_t value_us, bool ok) {
  // The newest step's time range is known once its slot table is built: skip the division.
  const bool in_newest =
      slot_step_ >= 0 && at_us >= slot_begin_us_ && at_us < slot_end_us_ && slot_step_ == steps_.back();
  const std::int64_t step = in_newest ? slot_step_ : step_of(at_us);
  series_point& p = in_newest ? points_.back() : touch(step);
  const std::int64_t v = std::clamp(value_us, histogram::lowest_us, histogram::highest_us);
  if (p.buckets.empty()) {
    p.min = p.max = v;
  } else {
    p.min = std::min(p.min, v);
    p.max = std::max(p.max, v);
  }
  const std::uint16_t index = coarse::index_of(v);
  if (step == steps_.back()) {
    coarse_bucket& b = bucket_in_newest(p, index);
    b.count = saturating_add(b.count, 1);
  } else {
    // A late record for an older step: scan its few hundred buckets at most.
    const auto it =
        std::find_if(p.buckets.begin(), p.buckets.end(), [index](const coarse_bucket& b) { return b.index == index; });
    if (it != p.buckets.end()) {
      it->count = saturating_add(it->count, 1);
    } else {
      p.buckets.push_back({index, 1});
    }
  }
  ++p.count;
  if (!ok) ++p.errors;
  p.sum += static_cast<double>(v);
}

void series::add(std::int64_t at_us, std::uint64_t n, bool ok) {
  if (n == 0) return;
  series_point& p = touch(step_of(at_us));
  p.count += n;
  if (!ok) p.errors += n;
}

void series::merge(const series& other) {
  if (other.resolution_us_ != resolution_us_) {
    throw std::invalid_argument("series::merge: found resolution " + std::to_string(other.resolution_us_) +
                                " µs; expected " + std::to_string(resolution_us_) + " µs");
  }
  if (other.steps_.empty()) return;
  if (&other == this) {  // the loop below moves points out of *this
    const series copy = other;
    merge(copy);
    return;
  }
  slot_step_ = -1;  // the newest point changes
  if (steps_.empty()) {
    steps_ = other.steps_;
    points_ = other.points_;
    return;
  }
  std::vector<std::int64_t> steps;
  std::vector<series_point> points;
  steps.reserve(steps_.size() + other.steps_.size());
  points.reserve(steps_.size() + other.steps_.size());
  std::size_t a = 0;
  std::size_t b = 0;
  while (a < steps_.size() || b < other.steps_.size()) {
    if (b == other.steps_.size() || (a < steps_.size() && steps_[a] < other.steps_[b])) {
      steps.push_back(steps_[a]);
      points.push_back(std::move(points_[a++]));
    } else if (a == steps_.size() || other.steps_[b] < steps_[a]) {
      steps.push_back(other.steps_[b]);
      points.push_back(other.points_[b++]);
    } else {
      steps.push_back(steps_[a]);
      points.push_back(std::move(points_[a++]));
      points.back().merge(other.points_[b++]);
    }
  }
  steps_ = std::move(steps);
  points_ = std::move(points);
}

std::size_t series::size() const noexcept { return steps_.empty() ? 0 : static_cast<std::size_t>(steps_.back()) + 1; }

const series_point* series::at(std::size_t index) const {
  const auto step = static_cast<std::int64_t>(index);
  const auto it = std::lower_bound(steps_.begin(), steps_.end(), step);
  if (it == steps_.end() || *it != step) return nullptr;
  return &points_[static_cast<std::size_t>(it - steps_.begin())];
}

double series::time_s(std::int64_t index) const noexcept {
  // Integer µs first, so 3 × 100 ms is 0.3 and not 0.30000000000000004.
  return static_cast<double>(index * resolution_us_) / 1e6;
}

series series::coarsen(std::int64_t resolution_us) const {
  if (resolution_us <= 0 || resolution_us % resolution_us_ != 0) {
    throw std::invalid_argument("series::coarsen: found resolution " + std::to_string(resolution_us) +
                                " µs; expected a multiple of " + std::to_string(resolution_us_) + " µs");
  }
  const std::int64_t factor = resolution_us / resolution_us_;
  series out(resolution_us);
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    const std::int64_t step = steps_[i] / factor;
    if (out.steps_.empty() || out.steps_.back() != step) {
      out.steps_.push_back(step);
      out.points_.push_back(points_[i]);
    } else {
      out.points_.back().merge(points_[i]);
    }
  }
  return out;
}

series series::copy_since(std::int64_t from_us) const {
  series out(resolution_us_);
  const auto first = std::lower_bound(steps_.begin(), steps_.end(), step_of(from_us));
  const auto offset = first - steps_.begin();
  out.steps_.assign(first, steps_.end());
  out.points_.assign(points_.begin() + offset, points_.end());
  return out;
}

void series::splice(const series& recent, std::int64_t from_us) {
  if (recent.resolution_us_ != resolution_us_) throw std::invalid_argument("series::splice: resolutions differ");
  const std::int64_t from_step = step_of(from_us);
  const auto keep = std::lower_bound(steps_.begin(), steps_.end(), from_step) - steps_.begin();
  steps_.resize(static_cast<std::size_t>(keep));
  points_.resize(static_cast<std::size_t>(keep));
  const auto first = std::lower_bound(recent.steps_.begin(), recent.steps_.end(), from_step);
  const auto offset = first - recent.steps_.begin();
  steps_.insert(steps_.end(), first, recent.steps_.end());
  points_.insert(points_.end(), recent.points_.begin() + offset, recent.points_.end());
  slot_step_ = -1;
}

nlohmann::json series::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    const series_point& p = points_[i];
    rows.push_back(
        nlohmann::json::array({time_s(steps_[i]), p.count, p.errors, p.percentile(50), p.percentile(99), p.max}));
  }
  return rows;
}

nlohmann::json series::to_json_exact() const {
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i < steps_.size(); ++i) {
    const series_point& p = points_[i];
    std::vector<coarse_bucket> sorted = p.buckets;
    std::sort(sorted.begin(), sorted.end(),
              [](const coarse_bucket& x, const coarse_bucket& y) { return x.index < y.index; });
    nlohmann::json buckets = nlohmann::json::array();
    for (const coarse_bucket& b : sorted) {
      buckets.push_back(b.index);
      buckets.push_back(b.count);
    }
    rows.push_back(nlohmann::json::array({steps_[i], p.count, p.errors, p.sum, p.min, p.max, std::move(buckets)}));
  }
  return {{"resolution_us", resolution_us_}, {"points", std::move(rows)}};
}

series series::from_json(const nlohmann::json& j, std::string_view where_view) {
  const std::string base(where_view);
  const std::int64_t resolution =
      detail::json_i64(detail::json_member(j, "resolution_us", base), base + ".resolution_us");
  if (resolution <= 0) {
    detail::json_fail(base + ".resolution_us", j.at("resolution_us"), "a positive number of µs");
  }
  series s(resolution);
  const nlohmann::json& rows = detail::json_member(j, "points", base);
  if (!rows.is_array()) detail::json_fail(base + ".points", rows, "an array of points");
  s.steps_.reserve(rows.size());
  s.points_.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::string where = base + ".points[" + std::to_string(r) + "]";
    const nlohmann::json& row = rows[r];
    if (!row.is_array() || row.size() != 7 || !row[6].is_array() || row[6].size() % 2 != 0) {
      detail::json_fail(where, row, "[step, count, errors, sum, min, max, [index, count, ...]]");
    }
    const std::int64_t step = detail::json_i64(row[0], where + "[0]");
    if (step < 0 || (!s.steps_.empty() && step <= s.steps_.back())) {
      detail::json_fail(where + "[0]", row[0], "a step after the previous point's");
    }
    series_point p;
    p.count = detail::json_u64(row[1], where + "[1]");
    p.errors = detail::json_u64(row[2], where + "[2]");
    p.sum = detail::json_number(row[3], where + "[3]");
    p.min = detail::json_i64(row[4], where + "[4]");
    p.max = detail::json_i64(row[5], where + "[5]");
    const nlohmann::json& flat = row[6];
    std::uint64_t values = 0;
    for (std::size_t k = 0; k < flat.size(); k += 2) {
      const std::string field = where + "[6][" + std::to_string(k) + "]";
      const std::uint64_t index = detail::json_u64(flat[k], field);
      if (index >= coarse::bucket_count || (!p.buckets.empty() && index <= p.buckets.back().index)) {
        detail::json_fail(
            field, flat[k],
            "a coarse bucket index below " + std::to_string(coarse::bucket_count) + ", after the previous one");
      }
      const std::string count_field = where + "[6][" + std::to_string(k + 1) + "]";
      const std::uint64_t n = detail::json_u64(flat[k + 1], count_field);
      if (n == 0 || n > std::numeric_limits<std::uint32_t>::max()) {
        detail::json_fail(count_field, flat[k + 1], "a count from 1 to 2^32-1");
      }
      p.buckets.push_back({static_cast<std::uint16_t>(index), static_cast<std::uint32_t>(n)});
      values += n;
    }
    if (p.errors > p.count || values > p.count) {
      detail::json_fail(where, row, "errors and values no more than count");
    }
    if (p.buckets.empty() ? (p.min != 0 || p.max != 0)
                          : (p.min < histogram::lowest_us || p.max > histogram::highest_us || p.min > p.max ||
                             coarse::index_of(p.min) != p.buckets.front().index ||
                             coarse::index_of(p.max) != p.buckets.back().index)) {
      detail::json_fail(where, row, "min and max inside the first and last buckets");
    }
    s.steps_.push_back(step);
    s.points_.push_back(std::move(p));
  }
  return s;
}

}  // namespace syncstorm
