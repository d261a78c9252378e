// The offline model's pure logic with a fake clock: fixed windows, seeded duty-cycle windows,
// the online gate's transitions and the reconnect measurements (resume, drain).
#include "loadgen/offline_logic.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

using namespace syncstorm::loadgen;

namespace {
constexpr std::int64_t s = 1'000'000;
constexpr std::int64_t never = std::numeric_limits<std::int64_t>::max();
}  // namespace

TEST(offline_windows, normalize_sorts_merges_and_drops_empty) {
  auto w = normalize_windows({{20 * s, 30 * s}, {5 * s, 10 * s}, {9 * s, 12 * s}, {40 * s, 40 * s}, {30 * s, 31 * s}});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0], (offline_window{5 * s, 12 * s}));
  EXPECT_EQ(w[1], (offline_window{20 * s, 31 * s}));
}

TEST(online_gate, follows_the_windows_on_a_fake_clock) {
  online_gate g({{5 * s, 25 * s}, {30 * s, 32 * s}});
  EXPECT_TRUE(g.online(0));
  EXPECT_EQ(g.next_change(0), 5 * s);
  EXPECT_TRUE(g.online(5 * s - 1));
  EXPECT_FALSE(g.online(5 * s));  // [start, end)
  EXPECT_EQ(g.next_change(5 * s), 25 * s);
  EXPECT_EQ(g.window_at(12 * s), (offline_window{5 * s, 25 * s}));
  EXPECT_FALSE(g.online(25 * s - 1));
  EXPECT_TRUE(g.online(25 * s));
  EXPECT_EQ(g.next_change(25 * s), 30 * s);
  EXPECT_FALSE(g.online(31 * s));
  EXPECT_EQ(g.next_change(31 * s), 32 * s);
  EXPECT_TRUE(g.online(32 * s));
  EXPECT_EQ(g.next_change(32 * s), never);
  EXPECT_TRUE(online_gate().online(7 * s));
  EXPECT_EQ(online_gate().next_change(7 * s), never);
}

TEST(random_windows, hold_the_duty_cycle_and_are_reproducible) {
  const std::int64_t horizon = 3600 * s, period = 60 * s;
  auto a = random_windows(0.25, period, horizon, 42);
  auto b = random_windows(0.25, period, horizon, 42);
  auto c = random_windows(0.25, period, horizon, 43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  std::int64_t off = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_GE(a[i].start_us, 0);
    EXPECT_LE(a[i].end_us, horizon);
    EXPECT_LT(a[i].start_us, a[i].end_us);
    if (i > 0) {
      EXPECT_GT(a[i].start_us, a[i - 1].end_us);  // online between windows
    }
    off += a[i].end_us - a[i].start_us;
  }
  // About 60 cycles of 0.5-1.5 periods each: 25% offline within a few percent.
  EXPECT_GT(a.size(), 40u);
  EXPECT_LT(a.size(), 90u);
  EXPECT_NEAR(static_cast<double>(off) / static_cast<double>(horizon), 0.25, 0.03);
  // Every window lasts duty × its cycle: between 0.125 and 0.375 periods (the edges may cut).
  for (std::size_t i = 1; i + 1 < a.size(); ++i) {
    EXPECT_GE(a[i].end_us - a[i].start_us, period / 8 - 1);
    EXPECT_LE(a[i].end_us - a[i].start_us, period * 3 / 8 + 1);
  }
}

TEST(random_windows, edge_cases_are_bounded) {
  EXPECT_TRUE(random_windows(0, 60 * s, 3600 * s, 1).empty());
  EXPECT_TRUE(random_windows(0.5, min_offline_period_us - 1, 3600 * s, 1).empty());  // too short a period
  EXPECT_TRUE(random_windows(0.5, 60 * s, 0, 1).empty());
  auto all = random_windows(1.0, 60 * s, 100 * s, 1);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0], (offline_window{0, 100 * s}));
  // A horizon of 72 h at the shortest period stays under the cap.
  EXPECT_LE(random_windows(0.5, min_offline_period_us, 72 * 3600 * s, 9).size(), max_random_windows);
}

TEST(client_windows, clients_differ_and_fixed_windows_are_shared) {
  offline_plan p;
  p.windows = {{5 * s, 25 * s}};
  auto a = client_windows(p, 0, 7, 40 * s);
  auto b = client_windows(p, 1, 7, 40 * s);
  EXPECT_EQ(a, b);  // fixed windows only: every client the same
  ASSERT_EQ(a.size(), 1u);
  p.windows.clear();
  p.duty_cycle = 0.3;
  p.period_us = 10 * s;
  auto c0 = client_windows(p, 0, 7, 600 * s), c1 = client_windows(p, 1, 7, 600 * s);
  EXPECT_NE(c0, c1);                                // each client its own windows
  EXPECT_EQ(c0, client_windows(p, 0, 7, 600 * s));  // reproducible by seed
  EXPECT_NE(c0, client_windows(p, 0, 8, 600 * s));
  // Both: the union.
  p.windows = {{0, 600 * s}};
  auto u = client_windows(p, 3, 7, 600 * s);
  ASSERT_EQ(u.size(), 1u);
  EXPECT_EQ(u[0], (offline_window{0, 600 * s}));
}

TEST(reconnect_tracker, measures_resume_and_drain_once) {
  reconnect_tracker t;
  auto o = t.reconnect(25 * s, true);
  EXPECT_FALSE(o.drain_us);
  EXPECT_TRUE(t.draining());
  o = t.on_ack(25 * s + 300'000);
  ASSERT_TRUE(o.resume_us);
  EXPECT_EQ(*o.resume_us, 300'000);
  EXPECT_FALSE(t.on_ack(25 * s + 400'000).resume_us);  // only the first ack
  o = t.on_drained(25 * s + 900'000);
  ASSERT_TRUE(o.drain_us);
  EXPECT_EQ(*o.drain_us, 900'000);
  EXPECT_TRUE(o.drain_ok);
  EXPECT_FALSE(t.draining());
  EXPECT_FALSE(t.on_drained(26 * s).drain_us);
  EXPECT_FALSE(t.abandon(27 * s).drain_us);
}

TEST(reconnect_tracker, no_backlog_measures_nothing) {
  reconnect_tracker t;
  t.reconnect(10 * s, false);
  EXPECT_FALSE(t.on_ack(11 * s).resume_us);
  EXPECT_FALSE(t.on_drained(11 * s).drain_us);
}

TEST(reconnect_tracker, a_drain_cut_short_fails_with_the_time_so_far) {
  reconnect_tracker t;
  t.reconnect(10 * s, true);
  auto o = t.abandon(14 * s);  // offline again before the backlog was gone
  ASSERT_TRUE(o.drain_us);
  EXPECT_EQ(*o.drain_us, 4 * s);
  EXPECT_FALSE(o.drain_ok);
  EXPECT_FALSE(o.resume_us);
  // A reconnect while draining reports the unfinished drain first.
  t.reconnect(20 * s, true);
  o = t.reconnect(30 * s, true);
  ASSERT_TRUE(o.drain_us);
  EXPECT_EQ(*o.drain_us, 10 * s);
  EXPECT_FALSE(o.drain_ok);
  EXPECT_EQ(t.reconnected_at(), 30 * s);
}
