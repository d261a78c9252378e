// The terminal model's pure state machines with a fake clock (plain integers): the batcher,
// backoff with full jitter, the retry limit that parks a batch, the circuit breaker and the
// conflict policies.
#include "loadgen/terminal_logic.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

using namespace syncstorm::loadgen;

TEST(batcher, waits_for_max_ops_or_max_wait) {
  batch_policy p{10, 100'000};
  auto d = decide_batch(p, 0, 0, 0, false);
  EXPECT_FALSE(d.send);
  EXPECT_EQ(d.wake_at_us, 0);
  d = decide_batch(p, 3, 1'000, 50'000, false);
  EXPECT_FALSE(d.send);
  EXPECT_EQ(d.wake_at_us, 101'000);  // the oldest op's max_wait
  d = decide_batch(p, 3, 1'000, 101'000, false);
  EXPECT_TRUE(d.send);
  EXPECT_EQ(d.ops, 3u);
  d = decide_batch(p, 25, 1'000, 2'000, false);  // full: at once, max_ops of them
  EXPECT_TRUE(d.send);
  EXPECT_EQ(d.ops, 10u);
  d = decide_batch(p, 4, 1'000, 2'000, true);  // flushing (drain, periodic tick)
  EXPECT_TRUE(d.send);
  EXPECT_EQ(d.ops, 4u);
}

TEST(backoff, full_jitter_stays_within_the_exponential_cap) {
  backoff b(100'000, 2'000'000, 42);
  EXPECT_EQ(b.cap(1), 100'000);
  EXPECT_EQ(b.cap(2), 200'000);
  EXPECT_EQ(b.cap(5), 1'600'000);
  EXPECT_EQ(b.cap(6), 2'000'000);
  EXPECT_EQ(b.cap(60), 2'000'000);  // no overflow
  for (int n = 1; n <= 10; ++n)
    for (int i = 0; i < 200; ++i) {
      const auto v = b.next(n);
      EXPECT_GE(v, 0);
      EXPECT_LE(v, b.cap(n));
    }
}

TEST(backoff, full_jitter_is_spread_over_the_whole_range) {
  backoff b(1'000'000, 1'000'000, 7);
  std::vector<int> deciles(10, 0);
  const int n = 20'000;
  for (int i = 0; i < n; ++i) ++deciles[std::min<int>(9, static_cast<int>(b.next(1) / 100'000))];
  // Uniform on [0, cap]: each decile holds ~10% (not "cap/2 ± a little", which equal jitter gives).
  for (int d : deciles) {
    EXPECT_GT(d, n / 10 * 8 / 10);
    EXPECT_LT(d, n / 10 * 12 / 10);
  }
}

TEST(backoff, one_seed_gives_one_sequence) {
  backoff a(100, 100'000, 99), b(100, 100'000, 99), c(100, 100'000, 100);
  bool differs = false;
  for (int i = 1; i < 50; ++i) {
    const auto x = a.next(i % 12 + 1), y = b.next(i % 12 + 1), z = c.next(i % 12 + 1);
    EXPECT_EQ(x, y);
    differs |= x != z;
  }
  EXPECT_TRUE(differs);
}

TEST(retry, parks_after_the_limit_then_starts_over) {
  retry_policy p{100'000, 1'000'000, 3, 30'000'000};
  retry_state r(p, 1);
  auto a = r.on_failure(0);
  EXPECT_FALSE(a.parked);
  EXPECT_LE(a.retry_at_us, 100'000);
  a = r.on_failure(1'000'000);
  EXPECT_FALSE(a.parked);
  EXPECT_LE(a.retry_at_us, 1'200'000);
  a = r.on_failure(2'000'000);
  EXPECT_TRUE(a.parked);
  EXPECT_EQ(a.attempt, 3);
  EXPECT_EQ(a.retry_at_us, 32'000'000);
  // After the park a fresh series: the next failure backs off again, it does not park.
  a = r.on_failure(32'000'000);
  EXPECT_FALSE(a.parked);
  EXPECT_EQ(a.attempt, 1);
  r.on_success();
  EXPECT_EQ(r.failures(), 0);
}

TEST(retry, limit_zero_never_parks) {
  retry_state r({10, 100, 0, 1'000}, 3);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(r.on_failure(i * 1000).parked);
}

TEST(breaker, every_transition_with_a_fake_clock) {
  circuit_breaker b({3, 5'000'000, 2});
  std::optional<breaker_transition> t;
  EXPECT_TRUE(b.allow(0, t));
  EXPECT_FALSE(t);
  EXPECT_FALSE(b.on_failure(10));
  EXPECT_FALSE(b.on_failure(20));
  b.on_success(25);  // a success resets the count of consecutive failures
  EXPECT_FALSE(b.on_failure(30));
  EXPECT_FALSE(b.on_failure(40));
  auto open = b.on_failure(50);
  ASSERT_TRUE(open);
  EXPECT_EQ(open->from, breaker_state::closed);
  EXPECT_EQ(open->to, breaker_state::open);
  EXPECT_EQ(open->at_us, 50);
  EXPECT_EQ(b.retry_at(), 5'000'050);
  EXPECT_FALSE(b.allow(1'000'000, t));
  EXPECT_FALSE(t);
  EXPECT_TRUE(b.allow(5'000'050, t));  // open_for passed: half-open, a probe may go
  ASSERT_TRUE(t);
  EXPECT_EQ(t->to, breaker_state::half_open);
  // A failed probe opens it again for another open_for.
  auto again = b.on_failure(5'100'000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->from, breaker_state::half_open);
  EXPECT_EQ(again->to, breaker_state::open);
  EXPECT_FALSE(b.allow(10'000'000, t));
  EXPECT_TRUE(b.allow(10'100'000, t));
  EXPECT_EQ(b.state(), breaker_state::half_open);
  // Two successful probes close it.
  EXPECT_FALSE(b.on_success(10'200'000));
  auto closed = b.on_success(10'300'000);
  ASSERT_TRUE(closed);
  EXPECT_EQ(closed->from, breaker_state::half_open);
  EXPECT_EQ(closed->to, breaker_state::closed);
  EXPECT_EQ(b.state(), breaker_state::closed);
  // Closed again: it takes `threshold` failures to open.
  EXPECT_FALSE(b.on_failure(11'000'000));
  EXPECT_FALSE(b.on_failure(11'000'001));
  EXPECT_TRUE(b.on_failure(11'000'002));
}

TEST(conflicts, lww_rebases_and_retries_queue_keeps_aside) {
  auto l = on_conflict(conflict_policy::lww, 17);
  EXPECT_TRUE(l.retry);
  EXPECT_EQ(l.base_version, 17);
  EXPECT_FALSE(l.keep_aside);
  auto q = on_conflict(conflict_policy::queue, 17);
  EXPECT_FALSE(q.retry);
  EXPECT_TRUE(q.keep_aside);
}
