// Log-linear histogram: the parts off the recording path (merge, percentiles, JSON).
// Threading: as the header says, one owner; nothing here is shared between threads.
#include "core/histogram.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

namespace syncstorm {

namespace detail {

void json_fail(std::string_view where, const nlohmann::json& found, std::string_view expected) {
  std::string shown = found.dump();
  if (shown.size() > 60) shown = shown.substr(0, 57) + "...";
  throw std::invalid_argument(std::string(where) + ": found " + shown + "; expected " + std::string(expected));
}

const nlohmann::json& json_member(const nlohmann::json& object, const char* key, std::string_view where) {
  if (!object.is_object()) json_fail(where, object, "an object");
  const auto it = object.find(key);
  if (it == object.end()) {
    throw std::invalid_argument(std::string(where) + "." + key + ": missing; expected a value");
  }
  return *it;
}

std::uint64_t json_u64(const nlohmann::json& value, std::string_view where) {
  if (value.is_number_unsigned()) return value.get<std::uint64_t>();
  if (value.is_number_integer() && value.get<std::int64_t>() >= 0) {
    return static_cast<std::uint64_t>(value.get<std::int64_t>());
  }
  json_fail(where, value, "an unsigned integer");
}

std::int64_t json_i64(const nlohmann::json& value, std::string_view where) {
  if (value.is_number_unsigned()) {
    const auto u = value.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      json_fail(where, value, "a 64-bit signed integer");
    }
    return static_cast<std::int64_t>(u);
  }
  if (value.is_number_integer()) return value.get<std::int64_t>();
  json_fail(where, value, "an integer");
}

double json_number(const nlohmann::json& value, std::string_view where) {
  if (!value.is_number()) json_fail(where, value, "a number");
  return value.get<double>();
}

}  // namespace detail

std::uint64_t percentile_rank(double p, std::uint64_t n) noexcept {
  if (n == 0) return 0;
  if (!(p > 0)) return 1;  // also NaN
  if (p >= 100) return n;
  double r = p / 100.0 * static_cast<double>(n);
  const double nearest = std::round(r);
  if (std::abs(r - nearest) <= 1e-9 * std::max(1.0, r)) r = nearest;
  const auto rank = static_cast<std::uint64_t>(std::ceil(r));
  return std::clamp<std::uint64_t>(rank, 1, n);
}

histogram::histogram() : counts_(bucket_count(), 0) {}

void histogram::merge(const histogram& other) {
  if (other.total_ == 0) return;
  const std::size_t first = index_of(other.min_);
  const std::size_t last = index_of(other.max_);
  for (std::size_t i = first; i <= last; ++i) counts_[i] += other.counts_[i];
  if (total_ == 0 || other.min_ < min_) min_ = other.min_;
  if (other.max_ > max_) max_ = other.max_;
  total_ += other.total_;
  clamped_ += other.clamped_;
  sum_ += other.sum_;
}

double histogram::mean() const noexcept { return total_ == 0 ? 0.0 : sum_ / static_cast<double>(total_); }

std::int64_t histogram::percentile(double p) const noexcept {
  if (total_ == 0) return 0;
  const std::uint64_t rank = percentile_rank(p, total_);
  if (rank >= total_) return max_;
  if (rank == 1) return min_;
  std::uint64_t seen = 0;
  const std::size_t last = index_of(max_);
  for (std::size_t i = index_of(min_); i <= last; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const std::int64_t middle = lowest_at(i) + width_at(i) / 2;
      return std::clamp(middle, min_, max_);
    }
  }
  return max_;  // unreachable while counts_ and total_ agree
}

std::uint64_t histogram::count_above(std::int64_t value_us) const noexcept {
  if (total_ == 0 || value_us >= max_) return 0;
  if (value_us < min_) return total_;
  std::uint64_t above = 0;
  const std::size_t last = index_of(max_);
  for (std::size_t i = index_of(value_us) + 1; i <= last; ++i) above += counts_[i];
  return above;
}

void histogram::reset() noexcept {
  std::fill(counts_.begin(), counts_.end(), 0);
  total_ = clamped_ = 0;
  min_ = max_ = 0;
  sum_ = 0;
}

nlohmann::json histogram::to_json() const {
  nlohmann::json buckets = nlohmann::json::object();
  if (total_ != 0) {
    const std::size_t last = index_of(max_);
    for (std::size_t i = index_of(min_); i <= last; ++i) {
      if (counts_[i] != 0) buckets[std::to_string(i)] = counts_[i];
    }
  }
  return {{"count", total_}, {"min", min()},        {"max", max()},
          {"sum", sum_},     {"clamped", clamped_}, {"buckets", std::move(buckets)}};
}

histogram histogram::from_json(const nlohmann::json& j, std::string_view where_view) {
  using detail::json_member;
  const std::string where(where_view);
  histogram h;
  h.total_ = detail::json_u64(json_member(j, "count", where), where + ".count");
  h.clamped_ = detail::json_u64(json_member(j, "clamped", where), where + ".clamped");
  h.min_ = detail::json_i64(json_member(j, "min", where), where + ".min");
  h.max_ = detail::json_i64(json_member(j, "max", where), where + ".max");
  h.sum_ = detail::json_number(json_member(j, "sum", where), where + ".sum");
  const nlohmann::json& buckets = json_member(j, "buckets", where);
  if (!buckets.is_object()) detail::json_fail(where + ".buckets", buckets, "an object");

  std::uint64_t sum_of_counts = 0;
  std::size_t lowest = bucket_count();
  std::size_t highest = 0;
  for (const auto& [key, value] : buckets.items()) {
    const std::string field = where + ".buckets[\"" + key + "\"]";
    std::size_t index = 0;
    const auto [end, ec] = std::from_chars(key.data(), key.data() + key.size(), index);
    if (ec != std::errc{} || end != key.data() + key.size() || index >= bucket_count()) {
      detail::json_fail(field, nlohmann::json(key), "a bucket index from 0 to " + std::to_string(bucket_count() - 1));
    }
    const std::uint64_t n = detail::json_u64(value, field);
    if (n == 0) detail::json_fail(field, value, "a count above 0 (empty buckets are omitted)");
    h.counts_[index] = n;
    sum_of_counts += n;
    lowest = std::min(lowest, index);
    highest = std::max(highest, index);
  }

  if (sum_of_counts != h.total_) {
    detail::json_fail(where + ".count", j.at("count"),
                      "the sum of the bucket counts, " + std::to_string(sum_of_counts));
  }
  if (h.clamped_ > h.total_) {
    detail::json_fail(where + ".clamped", j.at("clamped"), "at most the count");
  }
  if (h.total_ == 0) {
    if (h.min_ != 0 || h.max_ != 0) {
      detail::json_fail(where + ".min", j.at("min"), "0 and max 0 in an empty histogram");
    }
    return h;
  }
  if (h.min_ < lowest_us || h.min_ > highest_us || index_of(h.min_) != lowest) {
    detail::json_fail(where + ".min", j.at("min"), "a value in the lowest non-empty bucket");
  }
  if (h.max_ < h.min_ || h.max_ > highest_us || index_of(h.max_) != highest) {
    detail::json_fail(where + ".max", j.at("max"), "a value in the highest non-empty bucket");
  }
  return h;
}

}  // namespace syncstorm
