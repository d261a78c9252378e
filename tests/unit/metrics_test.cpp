// metrics_shard and timed_metric (merges, stable references, gauges, JSON), and the
// generator's self-watch (CPU meter and saturation verdict, fed made-up samples).
// Single-threaded.
#include "core/metrics.hpp"
#include "core/self_monitor.hpp"

#include <cmath>
#include <cstdint>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace syncstorm {
namespace {

constexpr std::int64_t ms = 1000;
constexpr std::int64_t s = 1'000'000;

TEST(timed_metric, record_and_add) {
  timed_metric m;
  m.record(10 * ms, 2'000);
  m.record(20 * ms, 5'000'000, false);  // a timeout: its wait counts, and an error
  m.add(1'500 * ms, 3);                 // e.g. conflicts
  m.add(1'600 * ms, 2, false);
  EXPECT_EQ(m.ok_count(), 4u);
  EXPECT_EQ(m.error_count(), 3u);
  EXPECT_EQ(m.count(), 7u);
  EXPECT_EQ(m.hist().count(), 2u);
  EXPECT_EQ(m.hist().max(), 5'000'000);
  EXPECT_EQ(m.fine().size(), 17u);
  EXPECT_EQ(m.fine().at(0)->count, 2u);
  EXPECT_EQ(m.fine().at(15)->count, 3u);
  EXPECT_EQ(m.fine().at(16)->errors, 2u);
  EXPECT_EQ(m.coarse().size(), 2u);
  EXPECT_EQ(m.coarse().at(1)->count, 5u);
  EXPECT_EQ(m.fine().resolution_us(), 100 * ms);
  EXPECT_EQ(m.coarse().resolution_us(), 1 * s);
}

void feed_random(std::mt19937_64& rng, metrics_shard& a, metrics_shard& b, metrics_shard& all, std::size_t n) {
  const std::vector<std::string> names = {"http.latency", "push.e2e", "conflicts"};
  std::uniform_int_distribution<std::size_t> name(0, names.size() - 1);
  std::uniform_int_distribution<std::int64_t> at(0, 20 * s);
  std::exponential_distribution<double> latency(1.0 / 30'000.0);
  std::bernoulli_distribution fails(0.03);
  std::bernoulli_distribution to_a(0.5);
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& nm = names[name(rng)];
    const std::int64_t t = at(rng);
    const bool ok = !fails(rng);
    metrics_shard& part = to_a(rng) ? a : b;
    if (nm == "conflicts") {
      part.metric(nm).add(t, 1, ok);
      all.metric(nm).add(t, 1, ok);
    } else {
      const auto v = static_cast<std::int64_t>(latency(rng));
      part.metric(nm).record(t, v, ok);
      all.metric(nm).record(t, v, ok);
    }
  }
}

TEST(metrics_shard, merge_equals_one_shard_fed_everything) {
  std::mt19937_64 rng(11);
  metrics_shard a, b, all;
  feed_random(rng, a, b, all, 100'000);
  b.metric("only.in.b").record(5 * s, 100);
  all.metric("only.in.b").record(5 * s, 100);

  metrics_shard merged;
  merged.merge(a);
  merged.merge(b);
  EXPECT_EQ(merged, all);
  EXPECT_EQ(merged.names(), all.names());
  const timed_metric* m = merged.find("http.latency");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->hist().percentile(99), all.find("http.latency")->hist().percentile(99));
  EXPECT_EQ(m->fine(), all.find("http.latency")->fine());
  EXPECT_EQ(m->coarse(), all.find("http.latency")->coarse());
}

// The live exporter's view: splicing each later copy_since into the view kept so far gives a
// full copy of the source, step for step, also when ticks fall inside a step and a step is
// recorded into on both sides of a tick.
TEST(metrics_shard, splice_of_successive_copies_equals_a_full_copy) {
  std::mt19937_64 rng(7);
  metrics_shard source, view;
  std::int64_t since = 0, now = 0;
  for (int tick = 1; tick <= 40; ++tick) {
    const std::int64_t until = tick * 137 * ms;  // ticks that do not align with the steps
    for (; now < until; now += 9 * ms) {
      source.metric("push.latency@a").record(now, static_cast<std::int64_t>(rng() % 50'000) + 1, rng() % 10 != 0);
      if (rng() % 3 == 0) source.metric("conflicts").add(now);
      if (rng() % 4 == 0) source.gauge("queue.depth", now, static_cast<double>(rng() % 100));
    }
    view.splice(source.copy_since(since), since);
    since = now - 5 * ms;  // the next copy is taken from inside the last step touched
    ASSERT_EQ(view, source) << "after tick " << tick;
  }
  metrics_shard fresh;
  fresh.splice(source, 0);
  EXPECT_EQ(fresh, source);
}

TEST(metrics_shard, references_stay_valid) {
  metrics_shard shard;
  timed_metric& latency = shard.metric("http.latency");
  gauge_series& depth = shard.gauge("queue.depth");
  latency.record(0, 1234);
  depth.set(0, 7);
  for (int i = 0; i < 2000; ++i) {
    shard.metric("m" + std::to_string(i)).record(i, i + 1);
    shard.gauge("g" + std::to_string(i), i, i);
  }
  metrics_shard other;
  other.metric("http.latency").record(0, 99);
  other.metric("zzz").record(0, 1);
  shard.merge(other);

  EXPECT_EQ(&shard.metric("http.latency"), &latency);
  EXPECT_EQ(&shard.gauge("queue.depth"), &depth);
  EXPECT_EQ(shard.find("http.latency"), &latency);
  EXPECT_EQ(latency.hist().count(), 2u);
  EXPECT_EQ(latency.hist().max(), 1234);
  EXPECT_EQ(depth.last(), 7.0);
  EXPECT_EQ(shard.find("nope"), nullptr);
  EXPECT_EQ(shard.find_gauge("nope"), nullptr);
  EXPECT_EQ(shard.names().size(), 2002u);
  EXPECT_EQ(shard.names().front(), "http.latency");
}

TEST(gauge, last_value_per_step) {
  metrics_shard shard;
  shard.gauge("queue.depth", 10 * ms, 1);
  shard.gauge("queue.depth", 70 * ms, 2);   // same 100 ms step: last wins
  shard.gauge("queue.depth", 350 * ms, 5);  // step 3
  shard.gauge("queue.depth", 1'250 * ms, 9);
  shard.gauge("queue.depth", 1'900 * ms, 4);
  shard.gauge("queue.depth", 120 * ms, 3);  // a late set for step 1
  const gauge_series* g = shard.find_gauge("queue.depth");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->fine(), (std::vector<gauge_point>{{0, 2}, {1, 3}, {3, 5}, {12, 9}, {19, 4}}));
  EXPECT_EQ(g->coarse(), (std::vector<gauge_point>{{0, 5}, {1, 4}}));
  EXPECT_EQ(g->value_at(0), 2.0);
  EXPECT_EQ(g->value_at(250 * ms), 3.0);  // held since step 1
  EXPECT_EQ(g->value_at(1'000 * ms), 5.0);
  EXPECT_EQ(g->last(), 4.0);
  EXPECT_EQ(g->peak(), 9.0);
  EXPECT_EQ(gauge_series{}.value_at(5 * s), 0.0);
  EXPECT_EQ(shard.gauge_names(), std::vector<std::string>{"queue.depth"});
  EXPECT_TRUE(shard.names().empty());  // gauges are not timed metrics
}

TEST(gauge, merge_adds_levels_holding_each_side) {
  // Worker A's queue: 1 from 0 s, 3 from 0.5 s. Worker B's: 10 from 0.2 s, 0 from 0.9 s.
  metrics_shard a, b;
  a.gauge("queue.depth", 0, 1);
  a.gauge("queue.depth", 500 * ms, 3);
  b.gauge("queue.depth", 200 * ms, 10);
  b.gauge("queue.depth", 900 * ms, 0);
  metrics_shard total;
  total.merge(a);
  total.merge(b);
  const gauge_series* g = total.find_gauge("queue.depth");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->fine(), (std::vector<gauge_point>{{0, 1}, {2, 11}, {5, 13}, {9, 3}}));
  // Merge order does not matter.
  metrics_shard total2;
  total2.merge(b);
  total2.merge(a);
  EXPECT_EQ(total2, total);
}

TEST(metrics_shard, json_round_trip_is_exact) {
  std::mt19937_64 rng(12);
  metrics_shard a, b, all;
  feed_random(rng, a, b, all, 30'000);
  all.gauge("ws.connected", 300 * ms, 120);
  all.gauge("ws.connected", 2 * s, 118);

  const nlohmann::json j = all.to_json();
  const metrics_shard back = metrics_shard::from_json(nlohmann::json::parse(j.dump()));
  EXPECT_EQ(back, all);
  EXPECT_EQ(back.to_json(), j);
  // The 1 s series is rebuilt from the 100 ms one and equals the recorded one.
  EXPECT_EQ(back.find("http.latency")->coarse(), all.find("http.latency")->coarse());

  nlohmann::json bad = j;
  bad["metrics"]["http.latency"]["hist"]["count"] = 1;
  try {
    (void)metrics_shard::from_json(bad);
    FAIL() << "accepted a histogram whose count disagrees with its buckets";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("metrics.metrics[\"http.latency\"].hist.count: found 1"), std::string::npos)
        << e.what();
  }
}

TEST(metrics_shard, summary_json_shape) {
  metrics_shard shard;
  for (int i = 1; i <= 1000; ++i) shard.metric("http.latency").record(i * ms, i, i % 100 != 0);
  shard.gauge("queue.depth", 0, 4);
  const nlohmann::json j = shard.to_json_summary();
  const nlohmann::json& m = j.at("metrics").at("http.latency");
  for (const char* key : {"count", "ok", "errors", "values", "clamped", "min", "max", "mean", "p50", "p90", "p99",
                          "p99_9", "p99_99", "fine", "coarse"}) {
    EXPECT_TRUE(m.contains(key)) << key;
  }
  EXPECT_EQ(m.at("count"), 1000);
  EXPECT_EQ(m.at("errors"), 10);
  EXPECT_EQ(m.at("p50"), 500);
  EXPECT_EQ(m.at("fine").size(), 11u);  // 1 ms .. 1000 ms: steps 0 to 10 of 100 ms
  EXPECT_EQ(m.at("coarse").size(), 2u);
  EXPECT_EQ(m.at("coarse")[0].size(), 6u);
  const nlohmann::json& g = j.at("gauges").at("queue.depth");
  EXPECT_EQ(g.at("last"), 4.0);
  EXPECT_EQ(g.at("fine"), nlohmann::json::parse("[[0.0, 4.0]]"));
}

TEST(metrics_shard, copy_since_keeps_whole_run_histograms_and_recent_points) {
  metrics_shard shard;
  timed_metric& m = shard.metric("http.latency");
  for (std::int64_t t = 0; t < 10 * s; t += 10 * ms) m.record(t, 1000 + t / 1000);
  shard.gauge("queue.depth", 1 * s, 5);
  shard.gauge("queue.depth", 9'950 * ms, 6);
  const metrics_shard recent = shard.copy_since(9 * s);
  const timed_metric* r = recent.find("http.latency");
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->hist(), m.hist());
  EXPECT_EQ(r->count(), m.count());
  EXPECT_EQ(r->fine().steps().size(), 10u);
  EXPECT_EQ(r->coarse().steps().size(), 1u);
  // The level in force when the window opens is kept.
  EXPECT_EQ(recent.find_gauge("queue.depth")->value_at(9 * s), 5.0);
  EXPECT_EQ(recent.find_gauge("queue.depth")->fine().size(), 2u);
}

// ---- self_monitor ----

// Samples every second for `seconds`, with `share` of `cores` cores busy.
void feed_cpu(cpu_meter& meter, cpu_times& clock, int seconds, double share, double cores) {
  for (int i = 0; i < seconds; ++i) {
    clock.wall_us += 1 * s;
    clock.cpu_us += std::llround(share * cores * 1e6);
    meter.sample(clock);
  }
}

histogram lag_with_p99(std::int64_t p99_us) {
  histogram lag;
  lag.record(200, 985);  // rank 990 of 1000 is the 5th of the slow ones
  lag.record(p99_us, 15);
  return lag;
}

TEST(self_monitor, cpu_meter_shares) {
  cpu_meter meter(2);
  cpu_times clock{1'000, 50};
  meter.sample(clock);  // the origin
  EXPECT_EQ(meter.intervals(), 0u);
  feed_cpu(meter, clock, 4, 0.5, 2);
  feed_cpu(meter, clock, 1, 1.0, 2);
  EXPECT_EQ(meter.intervals(), 5u);
  EXPECT_DOUBLE_EQ(meter.last_core_share(), 2.0);
  EXPECT_DOUBLE_EQ(meter.last_share(), 1.0);
  EXPECT_DOUBLE_EQ(meter.mean_share(), 0.6);
  EXPECT_DOUBLE_EQ(meter.mean_core_share(), 1.2);
  EXPECT_DOUBLE_EQ(meter.peak_share(), 1.0);
  EXPECT_EQ(meter.longest_above_us(0.9), 1 * s);
  meter.sample(clock);  // no wall time passed: ignored
  EXPECT_EQ(meter.intervals(), 5u);
  EXPECT_EQ(cpu_meter(0.25).cores(), 1.0);
}

TEST(self_monitor, healthy_generator_is_not_saturated) {
  cpu_meter meter(2);
  cpu_times clock{};
  meter.sample(clock);
  feed_cpu(meter, clock, 60, 0.5, 2);
  feed_cpu(meter, clock, 2, 0.97, 2);  // a 2 s burst: shorter than the 3 s that count
  feed_cpu(meter, clock, 10, 0.9, 2);  // at the limit is not above it
  const generator_health h = judge_generator(meter, lag_with_p99(8 * ms));
  EXPECT_FALSE(h.saturated) << h.reason;
  EXPECT_TRUE(h.reason.empty());
  EXPECT_EQ(h.cpu_busy_us, 2 * s);
  EXPECT_NEAR(h.cpu_peak, 0.97, 1e-9);
  EXPECT_EQ(h.lag_p99_us, 8 * ms);

  const generator_health nothing = judge_generator(cpu_meter(4), histogram{});
  EXPECT_FALSE(nothing.saturated);
}

TEST(self_monitor, sustained_cpu_saturates) {
  cpu_meter meter(2);
  cpu_times clock{};
  meter.sample(clock);
  feed_cpu(meter, clock, 30, 0.5, 2);
  feed_cpu(meter, clock, 5, 0.96, 2);
  feed_cpu(meter, clock, 30, 0.5, 2);
  const generator_health h = judge_generator(meter, lag_with_p99(1 * ms));
  EXPECT_TRUE(h.saturated);
  EXPECT_EQ(h.reason, "CPU above 90% of 2 cores for 5.0 s in a row (limit: 3.0 s)");
}

TEST(self_monitor, mean_cpu_above_the_limit_saturates) {
  cpu_meter meter(1);
  cpu_times clock{};
  meter.sample(clock);
  for (int i = 0; i < 20; ++i) {  // alternating so no 3 s stretch, but the mean is 94%
    feed_cpu(meter, clock, 1, 0.99, 1);
    feed_cpu(meter, clock, 1, 0.89, 1);
  }
  const generator_health h = judge_generator(meter, histogram{});
  EXPECT_TRUE(h.saturated);
  EXPECT_EQ(h.reason, "CPU 94% of 1 core over 40.0 s (limit: 90%)");
}

TEST(self_monitor, late_arrivals_saturate) {
  cpu_meter meter(2);
  cpu_times clock{};
  meter.sample(clock);
  feed_cpu(meter, clock, 10, 0.3, 2);
  const generator_health h = judge_generator(meter, lag_with_p99(23'400));
  EXPECT_TRUE(h.saturated);
  EXPECT_EQ(h.reason, "generator.lag p99 23.4 ms > 10.0 ms (arrivals were sent late)");
  EXPECT_FALSE(judge_generator(meter, lag_with_p99(10 * ms)).saturated);  // at the limit

  feed_cpu(meter, clock, 200, 0.99, 2);
  const generator_health both = judge_generator(meter, lag_with_p99(50 * ms));
  EXPECT_TRUE(both.saturated);
  EXPECT_NE(both.reason.find("CPU 96% of 2 cores"), std::string::npos) << both.reason;
  EXPECT_NE(both.reason.find("; generator.lag p99 50.0 ms"), std::string::npos) << both.reason;

  const nlohmann::json j = both.to_json();
  EXPECT_EQ(j.at("saturated"), true);
  EXPECT_EQ(j.at("lag_p99"), 50.0);
  EXPECT_EQ(j.at("reason"), both.reason);
}

TEST(self_monitor, reads_the_process_clock) {
  EXPECT_GE(usable_cores(), 1u);
  self_monitor monitor(1);
  volatile std::uint64_t spin = 0;
  // Spin until the process clock shows 30 ms of CPU (bounded by 5 s of wall time): on a loaded
  // machine the wall time that takes varies, the CPU read back does not.
  const cpu_times start = process_cpu_times();
  for (cpu_times now = start; now.cpu_us - start.cpu_us < 30 * ms && now.wall_us - start.wall_us < 5 * s;
       now = process_cpu_times())
    spin = spin + 1;
  monitor.sample();
  EXPECT_EQ(monitor.cpu().intervals(), 1u);
  EXPECT_GE(monitor.cpu().cpu_us(), 30 * ms);
  EXPECT_GT(monitor.cpu().last_core_share(), 0.0);  // it was spinning
  const cpu_times t = thread_cpu_times();
  EXPECT_GT(t.cpu_us, 0);
}

}  // namespace
}  // namespace syncstorm
