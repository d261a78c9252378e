// histogram: percentiles against the exact ones of random data, exact merges, exact JSON round
// trips, fixed memory and no allocation while recording. Single-threaded.
#include "core/histogram.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

// Counts every allocation of the process, so a test can prove a loop allocates nothing.
namespace {
std::atomic<std::uint64_t> allocations{0};
}  // namespace

void* operator new(std::size_t n) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// GCC cannot see that these frees pair with the malloc above.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#pragma GCC diagnostic pop

namespace syncstorm {
namespace {

constexpr std::size_t sample_size = 1'000'000;

std::int64_t clamp_us(double v) {
  return std::clamp<std::int64_t>(std::llround(v), histogram::lowest_us, histogram::highest_us);
}

std::vector<std::int64_t> uniform_values(std::mt19937_64& rng) {
  std::uniform_int_distribution<std::int64_t> d(1, 10'000'000);  // 1 µs .. 10 s
  std::vector<std::int64_t> v(sample_size);
  for (auto& x : v) x = d(rng);
  return v;
}

// Exponential body with a Pareto tail (1% of values, shape 1.2, up to the 1 h bound).
std::vector<std::int64_t> long_tail_values(std::mt19937_64& rng) {
  std::exponential_distribution<double> body(1.0 / 5'000.0);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<std::int64_t> v(sample_size);
  for (auto& x : v) {
    x = u(rng) < 0.01 ? clamp_us(20'000.0 / std::pow(1.0 - u(rng), 1.0 / 1.2)) : clamp_us(body(rng));
  }
  return v;
}

// Two modes: fast cache hits around 500 µs and slow misses around 200 ms.
std::vector<std::int64_t> bimodal_values(std::mt19937_64& rng) {
  std::normal_distribution<double> fast(500.0, 50.0);
  std::normal_distribution<double> slow(200'000.0, 20'000.0);
  std::bernoulli_distribution is_slow(0.1);
  std::vector<std::int64_t> v(sample_size);
  for (auto& x : v) x = clamp_us(is_slow(rng) ? slow(rng) : fast(rng));
  return v;
}

std::int64_t exact_percentile(const std::vector<std::int64_t>& sorted, double p) {
  return sorted[percentile_rank(p, sorted.size()) - 1];
}

double relative_error(std::int64_t got, std::int64_t want) {
  return std::abs(static_cast<double>(got - want)) / static_cast<double>(want);
}

void expect_percentiles_within(const std::vector<std::int64_t>& values, const char* name) {
  histogram h;
  std::int64_t exact_sum = 0;
  for (std::int64_t v : values) {
    h.record(v);
    exact_sum += v;
  }
  std::vector<std::int64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());

  ASSERT_EQ(h.count(), values.size()) << name;
  EXPECT_EQ(h.min(), sorted.front()) << name;
  EXPECT_EQ(h.max(), sorted.back()) << name;
  EXPECT_EQ(h.sum(), static_cast<double>(exact_sum)) << name;
  EXPECT_DOUBLE_EQ(h.mean(), static_cast<double>(exact_sum) / values.size()) << name;
  for (double p : {0.0, 50.0, 90.0, 99.0, 99.9, 99.99, 100.0}) {
    const std::int64_t want = exact_percentile(sorted, p);
    EXPECT_LE(relative_error(h.percentile(p), want), 0.001)
        << name << " p" << p << ": histogram " << h.percentile(p) << ", exact " << want;
  }
  // The layout's own bound is tighter (half a sub-bucket: 1/2048); hold it over a dense grid.
  for (int tenths = 0; tenths <= 1000; ++tenths) {
    const double p = tenths / 10.0;
    const std::int64_t want = exact_percentile(sorted, p);
    ASSERT_LE(relative_error(h.percentile(p), want), 1.0 / 2048)
        << name << " p" << p << ": histogram " << h.percentile(p) << ", exact " << want;
  }
  EXPECT_EQ(h.percentile(100), sorted.back()) << name;
  EXPECT_EQ(h.percentile(0), sorted.front()) << name;
}

TEST(histogram, percentiles_of_uniform_values_within_a_tenth_of_a_percent) {
  std::mt19937_64 rng(1);
  expect_percentiles_within(uniform_values(rng), "uniform");
}

TEST(histogram, percentiles_of_long_tail_values_within_a_tenth_of_a_percent) {
  std::mt19937_64 rng(2);
  expect_percentiles_within(long_tail_values(rng), "long tail");
}

TEST(histogram, percentiles_of_bimodal_values_within_a_tenth_of_a_percent) {
  std::mt19937_64 rng(3);
  expect_percentiles_within(bimodal_values(rng), "bimodal");
}

TEST(histogram, values_below_2048_us_are_exact) {
  histogram h;
  std::vector<std::int64_t> values;
  for (std::int64_t v = 1; v < 2048; ++v) {
    for (std::int64_t k = 0; k < v % 7 + 1; ++k) {
      h.record(v);
      values.push_back(v);
    }
  }
  for (int p = 0; p <= 100; ++p) {
    EXPECT_EQ(h.percentile(p), exact_percentile(values, p)) << p;
  }
}

TEST(histogram, layout_is_consistent_and_sub_buckets_are_at_most_1_1024_wide) {
  for (std::size_t i = 0; i < histogram::bucket_count(); ++i) {
    const std::int64_t lo = histogram::lowest_at(i);
    const std::int64_t w = histogram::width_at(i);
    ASSERT_EQ(histogram::index_of(lo), i) << i;
    ASSERT_EQ(histogram::index_of(lo + w - 1), i) << i;
    if (i + 1 < histogram::bucket_count()) {
      ASSERT_EQ(histogram::lowest_at(i + 1), lo + w) << i;
    }
    if (lo >= 2048) {
      ASSERT_LE(static_cast<double>(w) / static_cast<double>(lo), 1.0 / 1024) << i;
    }
  }
  EXPECT_EQ(histogram::index_of(histogram::highest_us), histogram::bucket_count() - 1);
}

TEST(histogram, out_of_range_values_are_clamped_and_counted) {
  histogram h;
  h.record(0);
  h.record(-5);
  h.record(7'200'000'000);  // 2 h
  h.record(42);
  EXPECT_EQ(h.count(), 4u);
  EXPECT_EQ(h.clamped(), 3u);
  EXPECT_EQ(h.min(), 1);
  EXPECT_EQ(h.max(), histogram::highest_us);
  EXPECT_EQ(h.percentile(100), histogram::highest_us);
}

TEST(histogram, empty_is_zero) {
  histogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.min(), 0);
  EXPECT_EQ(h.max(), 0);
  EXPECT_EQ(h.mean(), 0.0);
  EXPECT_EQ(h.percentile(50), 0);
  EXPECT_EQ(h.count_above(0), 0u);
  h.record(5, 0);  // a zero count records nothing
  EXPECT_EQ(h.count(), 0u);
}

TEST(histogram, record_with_count_equals_repeated_records) {
  histogram a;
  histogram b;
  a.record(123'456, 1000);
  for (int i = 0; i < 1000; ++i) b.record(123'456);
  EXPECT_EQ(a, b);
}

TEST(histogram, count_above) {
  histogram h;
  for (std::int64_t v = 1; v <= 1000; ++v) h.record(v);
  EXPECT_EQ(h.count_above(500), 500u);
  EXPECT_EQ(h.count_above(0), 1000u);
  EXPECT_EQ(h.count_above(1000), 0u);
  h.record(1'000'000);
  h.record(2'000'000);
  EXPECT_EQ(h.count_above(1'500'000), 1u);
  EXPECT_EQ(h.count_above(999'000), 2u);
  EXPECT_EQ(h.count_above(2'000'000), 0u);
}

TEST(histogram, merging_n_histograms_equals_one_fed_all_values) {
  std::mt19937_64 rng(4);
  std::vector<std::int64_t> values = long_tail_values(rng);
  const std::vector<std::int64_t> more = bimodal_values(rng);
  values.insert(values.end(), more.begin(), more.end());
  values.push_back(0);              // clamped low
  values.push_back(5'000'000'000);  // clamped high

  // Eight parts fed a random partition of the values; the last part stays empty.
  histogram all;
  std::vector<histogram> parts(8);
  std::uniform_int_distribution<std::size_t> pick(0, parts.size() - 2);
  for (std::int64_t v : values) {
    all.record(v);
    parts[pick(rng)].record(v);
  }
  histogram merged;
  merged.merge(histogram{});  // empty into empty
  for (const histogram& part : parts) merged.merge(part);

  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min(), all.min());
  EXPECT_EQ(merged.max(), all.max());
  EXPECT_EQ(merged.sum(), all.sum());
  EXPECT_EQ(merged.clamped(), all.clamped());
  for (int hundredths = 0; hundredths <= 10'000; ++hundredths) {
    ASSERT_EQ(merged.percentile(hundredths / 100.0), all.percentile(hundredths / 100.0)) << hundredths;
  }
  EXPECT_EQ(merged.percentile(99.999), all.percentile(99.999));
  EXPECT_EQ(merged, all);
  EXPECT_EQ(merged.to_json(), all.to_json());

  // Merging the same parts in another order gives the same histogram.
  histogram reversed;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) reversed.merge(*it);
  EXPECT_EQ(reversed, all);
}

TEST(histogram, json_round_trip_is_exact) {
  std::mt19937_64 rng(5);
  histogram h;
  for (std::int64_t v : long_tail_values(rng)) h.record(v);
  h.record(0);
  h.record(9'000'000'000);

  const nlohmann::json j = h.to_json();
  EXPECT_EQ(j.at("count"), h.count());
  EXPECT_EQ(j.at("clamped"), 2u);
  EXPECT_TRUE(j.at("buckets").is_object());
  EXPECT_LT(j.at("buckets").size(), histogram::bucket_count());  // sparse

  const histogram back = histogram::from_json(j);
  EXPECT_EQ(back, h);
  // Through text, as shards exchange it.
  const histogram parsed = histogram::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(parsed, h);
  EXPECT_EQ(parsed.to_json(), j);
  for (double p : {50.0, 99.0, 99.99}) {
    EXPECT_EQ(parsed.percentile(p), h.percentile(p));
  }

  const histogram empty = histogram::from_json(histogram{}.to_json());
  EXPECT_EQ(empty, histogram{});
}

TEST(histogram, from_json_names_the_bad_field) {
  histogram h;
  h.record(100);
  h.record(5000);
  const nlohmann::json good = h.to_json();

  auto message_of = [](const nlohmann::json& j) -> std::string {
    try {
      (void)histogram::from_json(j, "metrics.x.hist");
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(accepted)";
  };

  nlohmann::json wrong_count = good;
  wrong_count["count"] = 3;
  EXPECT_NE(message_of(wrong_count).find("metrics.x.hist.count: found 3"), std::string::npos)
      << message_of(wrong_count);

  nlohmann::json bad_index = good;
  bad_index["buckets"]["99999999"] = 1;
  EXPECT_NE(message_of(bad_index).find("metrics.x.hist.buckets[\"99999999\"]"), std::string::npos)
      << message_of(bad_index);

  nlohmann::json negative = good;
  negative["buckets"]["100"] = -1;
  EXPECT_NE(message_of(negative).find("expected an unsigned integer"), std::string::npos) << message_of(negative);

  nlohmann::json missing = good;
  missing.erase("sum");
  EXPECT_NE(message_of(missing).find("metrics.x.hist.sum: missing"), std::string::npos) << message_of(missing);

  nlohmann::json min_outside = good;
  min_outside["min"] = 7;
  EXPECT_NE(message_of(min_outside).find("metrics.x.hist.min"), std::string::npos) << message_of(min_outside);

  EXPECT_EQ(message_of(good), "(accepted)");
}

TEST(histogram, memory_is_flat_and_recording_never_allocates) {
  static_assert(histogram::bucket_count() == 23221);
  histogram h;
  const std::size_t empty_bytes = h.memory_bytes();
  for (std::int64_t v = 1; v <= 10; ++v) h.record(v);
  const std::size_t bytes_after_10 = h.memory_bytes();

  std::mt19937_64 rng(6);
  std::uniform_int_distribution<std::int64_t> d(-10, 5'000'000'000);
  std::vector<std::int64_t> values(1 << 16);
  for (auto& v : values) v = d(rng);

  const std::uint64_t before = allocations.load();
  for (std::size_t i = 0; i < 10'000'000; ++i) h.record(values[i & 0xffff]);
  const std::uint64_t during = allocations.load() - before;

  EXPECT_EQ(during, 0u);
  EXPECT_EQ(h.count(), 10'000'010u);
  EXPECT_EQ(bytes_after_10, empty_bytes);
  EXPECT_EQ(h.memory_bytes(), bytes_after_10);
  EXPECT_EQ(h.memory_bytes(), sizeof(histogram) + histogram::bucket_count() * 8);
}

TEST(histogram, percentile_rank) {
  EXPECT_EQ(percentile_rank(99.9, 1'000'000), 999'000u);
  EXPECT_EQ(percentile_rank(99.99, 1'000'000), 999'900u);
  EXPECT_EQ(percentile_rank(50, 3), 2u);
  EXPECT_EQ(percentile_rank(0, 10), 1u);
  EXPECT_EQ(percentile_rank(100, 10), 10u);
  EXPECT_EQ(percentile_rank(150, 10), 10u);
  EXPECT_EQ(percentile_rank(-1, 10), 1u);
  EXPECT_EQ(percentile_rank(50, 0), 0u);
}

}  // namespace
}  // namespace syncstorm
