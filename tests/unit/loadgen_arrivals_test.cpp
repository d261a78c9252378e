// Unit tests of the open-model arrival schedule (loadgen/arrivals.hpp): exact counts and spacing
// for constant rates, the closed-form times of a ramp, and the round-robin split across workers.
#include "loadgen/arrivals.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace {

using syncstorm::loadgen::arrival_schedule;
using syncstorm::loadgen::phase_spec;
using syncstorm::loadgen::split_count;

constexpr std::int64_t s = 1'000'000;

phase_spec rate(double r, std::int64_t for_us) { return {"p", for_us, r, std::nullopt}; }
phase_spec ramp(double to, std::int64_t for_us) { return {"p", for_us, std::nullopt, to}; }

std::vector<std::int64_t> drain(arrival_schedule a) {
  std::vector<std::int64_t> out;
  while (auto t = a.next()) out.push_back(*t);
  return out;
}

TEST(arrivals, constant_rate_has_exact_count_and_spacing) {
  auto t = drain(arrival_schedule({rate(200, 1 * s)}));
  ASSERT_EQ(t.size(), 200u);
  for (std::size_t k = 0; k < t.size(); ++k) EXPECT_EQ(t[k], static_cast<std::int64_t>(k) * 5000);
}

TEST(arrivals, non_integral_spacing_rounds_to_the_nearest_microsecond) {
  auto t = drain(arrival_schedule({rate(3, 2 * s)}));
  ASSERT_EQ(t.size(), 6u);
  for (std::size_t k = 0; k < t.size(); ++k) EXPECT_EQ(t[k], std::llround(static_cast<double>(k) * 1e6 / 3));
}

TEST(arrivals, consecutive_constant_phases_start_at_their_boundary) {
  auto t = drain(arrival_schedule({rate(100, 1 * s), rate(200, 1 * s)}));
  ASSERT_EQ(t.size(), 300u);
  for (std::size_t k = 0; k < 100; ++k) EXPECT_EQ(t[k], static_cast<std::int64_t>(k) * 10'000);
  for (std::size_t k = 0; k < 200; ++k) EXPECT_EQ(t[100 + k], 1 * s + static_cast<std::int64_t>(k) * 5000);
}

TEST(arrivals, ramp_up_from_zero_follows_the_integral) {
  // r(t) = 50 t per second over 2 s: N(t) = 25 t², so arrival k is due at 0.2·sqrt(k) s.
  auto t = drain(arrival_schedule({ramp(100, 2 * s)}));
  ASSERT_EQ(t.size(), 100u);
  for (std::size_t k = 0; k < t.size(); ++k) EXPECT_NEAR(t[k], 0.2e6 * std::sqrt(static_cast<double>(k)), 1.0) << k;
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
}

TEST(arrivals, ramp_starts_from_the_previous_phase_rate) {
  // 100/s for 1 s, then 100 → 0 over 2 s: 100 + 100 arrivals; the ramp's spacing widens.
  auto t = drain(arrival_schedule({rate(100, 1 * s), ramp(0, 2 * s)}));
  ASSERT_EQ(t.size(), 200u);
  EXPECT_EQ(t[100], 1 * s);
  // N(τ) = 100τ − 25τ², so arrival j of the ramp is due at τ = 2 − sqrt(4 − j/25).
  for (std::size_t j = 0; j < 100; ++j)
    EXPECT_NEAR(t[100 + j], 1e6 + 1e6 * (2 - std::sqrt(4 - static_cast<double>(j) / 25)), 1.0) << j;
  EXPECT_GT(t[199] - t[198], t[101] - t[100]);
}

TEST(arrivals, zero_rate_phase_is_a_pause) {
  auto t = drain(arrival_schedule({rate(10, 1 * s), rate(0, 1 * s), rate(10, 1 * s)}));
  ASSERT_EQ(t.size(), 20u);
  EXPECT_EQ(t[9], 900'000);
  EXPECT_EQ(t[10], 2 * s);
}

TEST(arrivals, workers_split_the_single_schedule_round_robin) {
  const std::vector<phase_spec> phases{rate(200, 1 * s), ramp(400, 1 * s)};
  auto all = drain(arrival_schedule(phases));
  ASSERT_EQ(all.size(), 200u + 300u);
  std::vector<std::int64_t> merged;
  for (std::size_t w = 0; w < 3; ++w) {
    auto part = drain(arrival_schedule(phases, w, 3));
    EXPECT_EQ(part.size(), split_count(all.size(), w, 3)) << w;
    for (std::size_t j = 0; j < part.size(); ++j) EXPECT_EQ(part[j], all[w + 3 * j]) << w << " " << j;
    merged.insert(merged.end(), part.begin(), part.end());
  }
  std::sort(merged.begin(), merged.end());
  EXPECT_EQ(merged, all);
}

TEST(arrivals, total_before_counts_due_arrivals) {
  arrival_schedule a({rate(200, 1 * s), ramp(0, 1 * s)});
  EXPECT_EQ(a.total_before(0), 0u);
  EXPECT_EQ(a.total_before(1), 1u);
  EXPECT_EQ(a.total_before(5000), 1u);
  EXPECT_EQ(a.total_before(5001), 2u);
  EXPECT_EQ(a.total_before(1 * s), 200u);
  EXPECT_EQ(a.total_before(2 * s), 300u);
  EXPECT_EQ(a.total_before(10 * s), 300u);
  EXPECT_EQ(a.end_us(), 2 * s);
  EXPECT_EQ(drain(a).size(), 300u);
}

TEST(arrivals, split_count_sums_to_total) {
  EXPECT_EQ(split_count(64, 0, 3), 22u);
  EXPECT_EQ(split_count(64, 1, 3), 21u);
  EXPECT_EQ(split_count(64, 2, 3), 21u);
  EXPECT_EQ(split_count(1, 1, 2), 0u);
  EXPECT_EQ(split_count(5, 0, 0), 0u);
}

TEST(arrivals, invalid_phases_are_rejected) {
  EXPECT_THROW(arrival_schedule({phase_spec{"p", s, std::nullopt, std::nullopt}}), std::invalid_argument);
  EXPECT_THROW(arrival_schedule({phase_spec{"p", s, 1.0, 2.0}}), std::invalid_argument);
  EXPECT_THROW(arrival_schedule({rate(-1, s)}), std::invalid_argument);
  EXPECT_THROW(arrival_schedule({rate(1, 0)}), std::invalid_argument);
  EXPECT_THROW(arrival_schedule({rate(1, s)}, 2, 2), std::invalid_argument);
}

TEST(arrivals, no_phases_no_arrivals) { EXPECT_TRUE(drain(arrival_schedule({})).empty()); }

}  // namespace
