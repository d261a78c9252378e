// The fanout model's pure logic (loadgen/detail/ws_logic.hpp) and the limits preflight
// (loadgen/limits.hpp), with a fake clock: holes, repairs, duplicates, out-of-order frames,
// the resume cursor, frames below it (backwards), missing counts, backoff and connect pacing.
#include "loadgen/detail/ws_logic.hpp"
#include "loadgen/limits.hpp"

#include <gtest/gtest.h>

namespace {

using namespace syncstorm::loadgen;
using namespace syncstorm::loadgen::detail;
using v = delivery_tracker::verdict;

TEST(seq_set, tracks_prefix_and_holes) {
  seq_set s;
  EXPECT_TRUE(s.insert(1, 10));
  EXPECT_TRUE(s.insert(2, 11));
  EXPECT_FALSE(s.has_hole());
  EXPECT_TRUE(s.insert(4, 13));
  EXPECT_TRUE(s.has_hole());
  EXPECT_EQ(s.contiguous(), 2);
  EXPECT_EQ(s.contiguous_cursor(), 11);
  EXPECT_FALSE(s.insert(4, 13));
  EXPECT_FALSE(s.insert(1, 10));
  EXPECT_TRUE(s.insert(3, 12));
  EXPECT_FALSE(s.has_hole());
  EXPECT_EQ(s.contiguous(), 4);
  EXPECT_EQ(s.contiguous_cursor(), 13);
  EXPECT_EQ(s.size(), 4u);
}

TEST(delivery_tracker, in_order_frames_are_fresh_and_resume_from_the_last) {
  delivery_tracker t({100});
  EXPECT_EQ(t.resume_cursor(), 100);
  t.on_connect();
  EXPECT_EQ(t.on_frame(0, 101, 1, 0).v, v::fresh);
  EXPECT_EQ(t.on_frame(0, 105, 0, 0).v, v::fresh);  // another client's change
  EXPECT_EQ(t.on_frame(0, 107, 2, 0).v, v::fresh);
  EXPECT_EQ(t.resume_cursor(), 107);
  EXPECT_FALSE(t.hole_since());
  EXPECT_EQ(t.on_frame(0, 90, 0, 0).v, v::stale);  // below the snapshot
}

TEST(delivery_tracker, a_hole_resumes_before_the_missing_op_and_the_replay_repairs_it) {
  delivery_tracker t({0, 0});
  t.on_connect();
  t.on_frame(0, 1, 1, 0);
  t.on_frame(1, 2, 1, 0);
  t.on_frame(1, 4, 2, 0);        // slot 0's op 2 (cursor 3) was skipped
  EXPECT_FALSE(t.hole_since());  // not visible yet
  t.on_frame(0, 5, 3, 1000);     // now it is: slot 0 jumped from 1 to 3
  ASSERT_TRUE(t.hole_since());
  EXPECT_EQ(*t.hole_since(), 1000);
  EXPECT_EQ(t.resume_cursor(), 1);  // the cursor of slot 0's op 1
  EXPECT_TRUE(t.count_gap());
  EXPECT_FALSE(t.count_gap());  // once per hole
  t.on_connect();               // replay after 1
  EXPECT_EQ(t.on_frame(1, 2, 1, 2000).v, v::replayed);
  EXPECT_EQ(t.on_frame(0, 3, 2, 2000).v, v::repaired);
  EXPECT_EQ(t.on_frame(1, 4, 2, 2000).v, v::replayed);
  EXPECT_EQ(t.on_frame(0, 5, 3, 2000).v, v::replayed);
  EXPECT_FALSE(t.hole_since());
  EXPECT_EQ(t.resume_cursor(), 5);
  EXPECT_EQ(t.on_frame(0, 6, 3, 2000).v, v::duplicate);  // sent again above the replay
}

TEST(delivery_tracker, out_of_order_is_per_connection) {
  delivery_tracker t({0});
  t.on_connect();
  t.on_frame(0, 2, 2, 0);
  auto r = t.on_frame(0, 1, 1, 0);
  EXPECT_TRUE(r.out_of_order);
  EXPECT_EQ(r.v, v::fresh);
  EXPECT_FALSE(t.hole_since());  // filled
  t.on_connect();
  EXPECT_FALSE(t.on_frame(0, 3, 3, 0).out_of_order);
}

TEST(delivery_tracker, a_frame_at_or_below_the_resume_cursor_went_backwards) {
  delivery_tracker t({0});
  t.on_connect();  // after=0
  EXPECT_FALSE(t.on_frame(0, 1, 1, 0).backwards);
  EXPECT_FALSE(t.on_frame(0, 2, 2, 0).backwards);
  EXPECT_FALSE(t.on_frame(0, 3, 3, 0).backwards);
  t.on_connect();  // a reconnect resumes after=3: the server must send only what came after
  auto stale = t.on_frame(0, 1, 1, 0);
  EXPECT_TRUE(stale.backwards);
  EXPECT_EQ(stale.v, v::replayed);                // not counted as a duplicate: fanout.stale names it
  EXPECT_TRUE(t.on_frame(0, 3, 3, 0).backwards);  // at the cursor is not after it either
  EXPECT_FALSE(t.on_frame(0, 4, 4, 0).backwards);
  // A replay that repairs a hole resumes lower: what it sends above that cursor is not stale.
  delivery_tracker h({0});
  h.on_connect();
  h.on_frame(0, 1, 1, 0);
  h.on_frame(0, 3, 3, 0);
  h.on_frame(0, 4, 4, 1000);  // op 2 (cursor 2) is missing
  ASSERT_EQ(h.resume_cursor(), 1);
  h.on_connect();
  EXPECT_FALSE(h.on_frame(0, 2, 2, 2000).backwards);
  EXPECT_FALSE(h.on_frame(0, 3, 3, 2000).backwards);
}

TEST(delivery_tracker, missing_counts_acked_ops_not_received) {
  delivery_tracker t({0});
  t.on_connect();
  t.on_frame(0, 1, 1, 0);
  t.on_frame(0, 3, 3, 0);
  t.on_frame(0, 5, 5, 0);
  // created 6; op 4 never acked (in doubt): not expected.
  auto acked = [](std::int64_t q) { return q != 4; };
  EXPECT_EQ(count_missing(t.received(0), 6, acked), 2u);  // 2 and 6
  EXPECT_EQ(count_missing(t.received(0), 1, acked), 0u);
}

TEST(backoff, full_jitter_within_the_cap) {
  for (int a = 0; a < 20; ++a)
    for (std::uint64_t r : {0ull, 1ull, 12345ull, ~0ull}) {
      const auto d = backoff_us(a, 100'000, 10'000'000, r);
      EXPECT_GE(d, 0);
      EXPECT_LE(d, std::min<std::int64_t>(10'000'000, 100'000LL << std::min(a, 20)));
    }
  EXPECT_EQ(backoff_us(0, 100, 1000, 100), 100);
  EXPECT_EQ(backoff_us(4, 100, 1000, 1000), 1000);  // 100·2^4 capped at 1000
}

TEST(connect_pacer, spaces_connects_at_the_rate_without_banking) {
  connect_pacer p(500);  // one per 2 ms
  EXPECT_EQ(p.reserve(0), 0);
  EXPECT_EQ(p.reserve(0), 2000);
  EXPECT_EQ(p.reserve(100), 4000);
  EXPECT_EQ(p.reserve(1'000'000), 1'000'000);  // idle time is not banked
  EXPECT_EQ(p.reserve(1'000'000), 1'002'000);
}

TEST(limits, names_each_limit_too_low) {
  system_limits l;
  l.nofile_soft = l.nofile_hard = 20000;
  l.nr_open = 1048576;
  l.file_max = 2000000;
  l.port_low = 32768;
  l.port_high = 60999;
  connection_plan p;
  p.connections = 50000;
  p.through_lb = 50000;
  p.lb_maxconn = 9872;
  auto problems = limit_problems(p, l);
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_NE(problems[0].find("limits.nofile: found hard RLIMIT_NOFILE 20000; expected at least 50100"),
            std::string::npos)
      << problems[0];
  EXPECT_NE(problems[1].find("limits.net.ipv4.ip_local_port_range: found \"32768 60999\""), std::string::npos)
      << problems[1];
  EXPECT_NE(problems[2].find("limits.lb.maxconn: found HAProxy maxconn 9872"), std::string::npos) << problems[2];
  p.loopback_spread = true;  // 253 source addresses: ports are plenty
  EXPECT_EQ(limit_problems(p, l).size(), 2u);
  p.connections = p.through_lb = 5000;
  EXPECT_TRUE(limit_problems(p, l).empty());
  auto real = read_system_limits();
  EXPECT_GT(real.nofile_hard, 0u);
  EXPECT_GE(raise_nofile(), real.nofile_soft);
}

}  // namespace
