// Windows, recovery, readiness, detection and outages on synthetic 100 ms series with known
// answers; sustained (`for`) bounds and window kinds through evaluate().
#include "core/timeline.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

using namespace syncstorm;

namespace {

constexpr std::int64_t s_us = 1'000'000;

// 100 requests a second for `seconds`; `shape(t_us)` gives {latency µs, ok} per request.
metrics_shard run_of(int seconds, const std::function<std::pair<std::int64_t, bool>(std::int64_t)>& shape,
                     const std::string& name = "push.latency") {
  metrics_shard m;
  auto& lat = m.metric(name);
  for (std::int64_t t = 0; t < seconds * s_us; t += 10'000) {
    auto [v, ok] = shape(t);
    lat.record(t, v, ok);
  }
  return m;
}

fault_occurrence fault(std::string name, std::int64_t applied, std::int64_t reverted = -1, bool lasting = false,
                       std::vector<std::string> units = {}) {
  return {std::move(name), "kill", applied, reverted, lasting, std::move(units)};
}

timeline make(const metrics_shard& m, std::vector<fault_occurrence> f, std::int64_t end_us,
              std::vector<timeline_event> ev = {}, std::int64_t warm = 0) {
  timeline_input in;
  in.metrics = &m;
  in.faults = std::move(f);
  in.events = std::move(ev);
  in.run_end_us = end_us;
  in.warmup_end_us = warm;
  return timeline(std::move(in));
}

}  // namespace

TEST(timeline, kill_then_recovery_detect_and_outage) {
  // Normal 10 ms; a kill at 20 s: every request fails for 2 s, then 500 ms latencies for 1 s.
  auto m = run_of(60, [](std::int64_t t) -> std::pair<std::int64_t, bool> {
    if (t >= 20 * s_us && t < 22 * s_us) return {1'000, false};
    if (t >= 22 * s_us && t < 23 * s_us) return {500'000, true};
    return {10'000, true};
  });
  auto tl = make(m, {fault("kill-pod", 20 * s_us)}, 60 * s_us);
  ASSERT_EQ(tl.effects().size(), 1u);
  const auto& e = tl.effects()[0];
  EXPECT_EQ(tl.client_metric(), "push.latency");
  ASSERT_TRUE(e.detect_us);
  EXPECT_EQ(*e.detect_us, 0);
  ASSERT_TRUE(e.recovery_us);
  EXPECT_NEAR(*e.recovery_us, 3.0 * s_us, 100'000);  // back in band from 23 s, held 3 s
  ASSERT_TRUE(tl.outage_max_us());
  EXPECT_NEAR(static_cast<double>(*tl.outage_max_us()), 2.0 * s_us, 100'000);
  auto sc = tl.scalars();
  EXPECT_NEAR(sc.at("recovery.kill-pod"), 3.0 * s_us, 100'000);
  EXPECT_EQ(sc.at("outage.max"), static_cast<double>(*tl.outage_max_us()));
  // during: [20 s, 23 s]; after: the rest; steady: all but during.
  auto d = tl.during("kill-pod");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].from_us, 20 * s_us);
  EXPECT_NEAR(static_cast<double>(d[0].to_us), 23.0 * s_us, 100'000);
  auto a = tl.after("kill-pod");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].from_us, d[0].to_us);
  EXPECT_EQ(a[0].to_us, 60 * s_us);
  auto st = tl.steady();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(st[0].from_us, 0);
  EXPECT_EQ(st[0].to_us, 20 * s_us);
  EXPECT_EQ(st[1].from_us, d[0].to_us);
}

TEST(timeline, never_recovering_is_unbounded) {
  auto m = run_of(60, [](std::int64_t t) -> std::pair<std::int64_t, bool> { return {10'000, t < 40 * s_us}; });
  auto tl = make(m, {fault("kill-db", 40 * s_us)}, 60 * s_us);
  const auto& e = tl.effects().at(0);
  ASSERT_TRUE(e.recovery_us);
  EXPECT_TRUE(std::isinf(*e.recovery_us));
  // The unrecovered fault removes the rest of the run from steady.
  auto st = tl.steady();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].to_us, 40 * s_us);
  EXPECT_NEAR(static_cast<double>(*tl.outage_max_us()), 20.0 * s_us, 100'000);
  // A rule on it fails with the unbounded value.
  rule_entry r;
  r.name = "rec";
  r.metric = "recovery.kill-db";
  r.stat = "max";
  r.max = 5'000'000;
  r.unit = metric_unit::time;
  evaluation_context ctx;
  ctx.metrics = &m;
  ctx.run_end_us = 60 * s_us;
  ctx.scalars = tl.scalars();
  auto v = evaluate(r, ctx);
  EXPECT_FALSE(v.pass);
  EXPECT_FALSE(v.inconclusive);
  EXPECT_NE(v.reason.find("never recovered"), std::string::npos) << v.reason;
}

TEST(timeline, lasting_fault_recovers_from_the_heal) {
  // 200 ms added latency between 10 s and 20 s; normal before and after.
  auto m = run_of(40, [](std::int64_t t) -> std::pair<std::int64_t, bool> {
    return {t >= 10 * s_us && t < 20 * s_us ? 210'000 : 10'000, true};
  });
  auto tl = make(m, {fault("slow", 10 * s_us, 20 * s_us, true)}, 40 * s_us);
  const auto& e = tl.effects().at(0);
  EXPECT_EQ(e.origin_us, 20 * s_us);
  ASSERT_TRUE(e.recovery_us);
  EXPECT_LE(*e.recovery_us, 100'000);  // in band right after the heal
  ASSERT_TRUE(e.detect_us);
  EXPECT_LE(*e.detect_us, 100'000);  // the p99 left the band at once
  auto d = tl.during("slow");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].from_us, 10 * s_us);
  EXPECT_GE(d[0].to_us, 20 * s_us);
  EXPECT_EQ(*tl.outage_max_us(), 0);  // slow is not out
}

TEST(timeline, nothing_noticed_has_no_detect) {
  auto m = run_of(30, [](std::int64_t) -> std::pair<std::int64_t, bool> { return {10'000, true}; });
  auto tl = make(m, {fault("harmless", 10 * s_us)}, 30 * s_us);
  const auto& e = tl.effects().at(0);
  EXPECT_FALSE(e.detect_us);
  ASSERT_TRUE(e.recovery_us);
  EXPECT_EQ(*e.recovery_us, 0);
}

TEST(timeline, ready_from_lab_events) {
  auto m = run_of(60, [](std::int64_t) -> std::pair<std::int64_t, bool> { return {10'000, true}; });
  std::vector<timeline_event> ev = {{20'000'000, "pod_died", "pod-1"},
                                    {21'500'000, "lb_server_down", "pod-1"},
                                    {21'000'000, "pod_ready", "pod-1"},
                                    {25'000'000, "lb_server_up", "pod-1"}};
  std::sort(ev.begin(), ev.end(), [](auto& a, auto& b) { return a.t_us < b.t_us; });
  auto tl = make(m, {fault("kill-pod", 20 * s_us, -1, false, {"pod-1"})}, 60 * s_us, ev);
  ASSERT_TRUE(tl.effects().at(0).ready_us);
  EXPECT_EQ(*tl.effects().at(0).ready_us, 1.0 * s_us);  // the first readiness success after the death
  // A pod that never comes back: unbounded.
  auto tl2 = make(m, {fault("kill-pod", 20 * s_us, -1, false, {"pod-1"})}, 60 * s_us,
                  {{20'000'000, "pod_died", "pod-1"}, {21'500'000, "lb_server_down", "pod-1"}});
  // A paused pod (no death) is ready when its LB server is back up.
  auto tl5 = make(m, {fault("pause", 20 * s_us, 30 * s_us, true, {"pod-1"})}, 60 * s_us,
                  {{23'000'000, "lb_server_down", "pod-1"}, {31'500'000, "lb_server_up", "pod-1"}});
  EXPECT_EQ(*tl5.effects().at(0).ready_us, 11.5 * s_us);
  EXPECT_TRUE(std::isinf(*tl2.effects().at(0).ready_us));
  // A fault on no unit (a partition): the servers that went down must come back after the heal.
  auto tl3 = make(m, {fault("cut", 10 * s_us, 30 * s_us, true)}, 60 * s_us,
                  {{12'000'000, "lb_server_down", "pod-0"}, {33'000'000, "lb_server_up", "pod-0"}});
  EXPECT_EQ(*tl3.effects().at(0).ready_us, 23.0 * s_us);
  auto tl4 = make(m, {fault("cut", 10 * s_us, 30 * s_us, true)}, 60 * s_us);
  EXPECT_EQ(*tl4.effects().at(0).ready_us, 0);
}

TEST(timeline, windows_merge_subtract_and_repeats) {
  EXPECT_EQ(merge_windows({{5, 10}, {0, 6}, {20, 30}, {30, 31}}).size(), 2u);
  auto w = subtract({{0, 100}}, {{10, 20}, {15, 30}, {90, 200}});
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].from_us, 0);
  EXPECT_EQ(w[0].to_us, 10);
  EXPECT_EQ(w[1].from_us, 30);
  EXPECT_EQ(w[1].to_us, 90);
  // A fault every 20 s: during has one range per occurrence, after runs to the next one;
  // warm-up is out of steady.
  auto m = run_of(60, [](std::int64_t t) -> std::pair<std::int64_t, bool> {
    std::int64_t in = t % (20 * s_us);
    return {10'000, !(t >= 10 * s_us && in >= 10 * s_us && in < 11 * s_us)};
  });
  auto tl = make(m, {fault("chaos", 10 * s_us), fault("chaos", 30 * s_us), fault("chaos", 50 * s_us)}, 60 * s_us, {},
                 5 * s_us);
  EXPECT_EQ(tl.during("chaos").size(), 3u);
  auto a = tl.after("chaos");
  ASSERT_EQ(a.size(), 3u);
  EXPECT_EQ(a[0].to_us, 30 * s_us);
  auto st = tl.steady();
  EXPECT_EQ(st.front().from_us, 5 * s_us);
  EXPECT_EQ(st.size(), 4u);  // [5, 10), [11, 30), [31, 50), [51, 60)
  EXPECT_EQ(tl.window("all").at(0).to_us, 60 * s_us);
  EXPECT_TRUE(tl.window("during:other").empty());
  // Each occurrence recovers 1 s after its hit; the fault's value is the worst.
  EXPECT_NEAR(tl.scalars().at("recovery.chaos"), 1.0 * s_us, 100'000);
}

TEST(timeline, sustained_bound_with_for) {
  // 2 s of 500 ms latencies in a 60 s run of 10 ms ones.
  auto m = run_of(60, [](std::int64_t t) -> std::pair<std::int64_t, bool> {
    return {t >= 30 * s_us && t < 32 * s_us ? 500'000 : 10'000, true};
  });
  rule_entry r;
  r.name = "p99";
  r.metric = "push.latency";
  r.stat = "p99";
  r.max = 100'000;
  r.unit = metric_unit::time;
  evaluation_context ctx;
  ctx.metrics = &m;
  ctx.run_end_us = 60 * s_us;
  ctx.resolve_window = [](const std::string&) { return std::vector<time_window>{{0, 60 * s_us}}; };
  EXPECT_FALSE(evaluate(r, ctx).pass);  // 3.3% of requests are slow: p99 is broken
  r.for_us = 5 * s_us;
  auto v = evaluate(r, ctx);
  EXPECT_TRUE(v.pass) << v.reason;  // but never for 5 s in a row
  EXPECT_TRUE(v.warn);
  r.for_us = 1 * s_us;
  v = evaluate(r, ctx);
  EXPECT_FALSE(v.pass);
  EXPECT_NE(v.reason.find("in a row"), std::string::npos) << v.reason;
  // A whole-window pass can still fail a sustained bound: p99 over the run is fine with 0.5 s
  // of slowness, but a 1 s trailing window breaks it for ~0.5 s + 1 s.
  auto m2 = run_of(60, [](std::int64_t t) -> std::pair<std::int64_t, bool> {
    return {t >= 30 * s_us && t < 30'500'000 ? 500'000 : 10'000, true};
  });
  ctx.metrics = &m2;
  r.for_us = 1 * s_us;
  r.max = 100'000;
  EXPECT_FALSE(evaluate(r, ctx).pass);
  r.for_us = 3 * s_us;
  EXPECT_TRUE(evaluate(r, ctx).pass);
}

TEST(timeline, window_kinds_through_evaluate) {
  auto m = run_of(60, [](std::int64_t t) -> std::pair<std::int64_t, bool> {
    if (t >= 20 * s_us && t < 22 * s_us) return {1'000, false};
    return {10'000, true};
  });
  auto tl = make(m, {fault("kill-pod", 20 * s_us)}, 60 * s_us);
  evaluation_context ctx;
  ctx.metrics = &m;
  ctx.run_end_us = 60 * s_us;
  ctx.resolve_window = [&](const std::string& w) { return tl.window(w); };
  rule_entry r;
  r.name = "ok";
  r.metric = "push.latency";
  r.stat = "ratio";
  r.min = 99.0;
  r.unit = metric_unit::time;
  r.window = "steady";
  EXPECT_TRUE(evaluate(r, ctx).pass);  // failures are all inside the fault's window
  r.window = "during:kill-pod";
  auto v = evaluate(r, ctx);
  EXPECT_FALSE(v.pass);
  EXPECT_LT(*v.value, 90.0);
  r.window = "after:kill-pod";
  EXPECT_TRUE(evaluate(r, ctx).pass);
  r.window = "all";
  EXPECT_FALSE(evaluate(r, ctx).pass);  // 2 s of 60 s failed: 96.7%
  r.window = "during:never-fired";
  EXPECT_TRUE(evaluate(r, ctx).inconclusive);
}

TEST(timeline, absent_scalars_and_capture_drops_are_inconclusive) {
  metrics_shard m;
  m.metric("wire.retransmissions").add(0, 3);
  evaluation_context ctx;
  ctx.metrics = &m;
  ctx.run_end_us = 10 * s_us;
  ctx.absent["detect.kill-pod"] = "detect.kill-pod: no client-visible failure followed the fault";
  rule_entry r;
  r.name = "d";
  r.metric = "detect.kill-pod";
  r.stat = "max";
  r.max = 1'000'000;
  auto v = evaluate(r, ctx);
  EXPECT_TRUE(v.inconclusive);
  EXPECT_NE(v.reason.find("no client-visible failure"), std::string::npos);
  ctx.capture_dropped = true;
  ctx.capture_reason = "12 packets dropped";
  r.metric = "wire.retransmissions";
  r.stat = "count";
  r.unit = metric_unit::count;
  v = evaluate(r, ctx);
  EXPECT_TRUE(v.inconclusive);
  EXPECT_NE(v.reason.find("dropped"), std::string::npos);
}

// A rolling restart over three pods: each pod's drops at its own death are the fault's; a drop on
// pod-2 while only pod-0 was down is a bystander, although the roll names pod-2 too.
TEST(ws_drops, a_roll_explains_each_pod_only_at_its_own_death) {
  std::vector<fault_occurrence> faults = {
      {"roll", "rolling_restart", 10 * s_us, 40 * s_us, false, {"pod-0", "pod-1", "pod-2"}}};
  std::vector<timeline_event> ev = {
      {11 * s_us, "pod_died", "pod-0"}, {21 * s_us, "pod_died", "pod-1"}, {31 * s_us, "pod_died", "pod-2"}};
  std::vector<ws_drop> drops = {
      {10'900'000, "pod-0"}, {11'500'000, "pod-0"}, {20'000'000, "pod-1"}, {31'000'000, "pod-2"}, {12 * s_us, "pod-2"}};
  auto c = attribute_ws_drops(drops, faults, ev, 60 * s_us);
  EXPECT_EQ(c.total, 5u);
  EXPECT_EQ(c.faulted, 4u);
  EXPECT_EQ(c.bystanders, 1u);
  EXPECT_EQ(c.unattributed, 0u);
  // Without the death events (a remote stack) the roll's whole window explains its units.
  c = attribute_ws_drops(drops, faults, {}, 60 * s_us);
  EXPECT_EQ(c.bystanders, 0u);
}

// A pause has no death: the occurrence explains drops on its unit until shortly after the
// revert; an LB kill explains none of the pods' drops; a drop with no server is unattributed.
TEST(ws_drops, pause_windows_lb_kills_and_unnamed_servers) {
  std::vector<fault_occurrence> faults = {{"pause-1", "pause", 10 * s_us, 20 * s_us, true, {"pod-1"}},
                                          {"kill-lb", "kill", 30 * s_us, -1, false, {"lb"}}};
  std::vector<timeline_event> ev = {{30 * s_us, "lb_died", "lb"}};
  std::vector<ws_drop> drops = {{15 * s_us, "pod-1"},   // paused: the fault's
                                {21 * s_us, "pod-1"},   // within the grace after the revert
                                {25 * s_us, "pod-1"},   // long after: a bystander
                                {30'100'000, "pod-0"},  // the LB died: pod-0 was not faulted
                                {30'100'000, "pod-1"}, {30'100'000, ""}};
  auto c = attribute_ws_drops(drops, faults, ev, 60 * s_us);
  EXPECT_EQ(c.total, 6u);
  EXPECT_EQ(c.faulted, 2u);
  EXPECT_EQ(c.bystanders, 3u);
  EXPECT_EQ(c.unattributed, 1u);
  // A kill of the pods themselves is explained by their deaths.
  ev = {{30 * s_us, "pod_died", "pod-0"}, {30 * s_us, "pod_died", "pod-1"}};
  c = attribute_ws_drops({{30'100'000, "pod-0"}, {29'000'000, "pod-1"}, {34 * s_us, "pod-1"}}, {}, ev, 60 * s_us);
  EXPECT_EQ(c.faulted, 2u);
  EXPECT_EQ(c.bystanders, 1u) << "4 s after the death is not the death's";
}
