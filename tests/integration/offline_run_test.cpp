// The offline model end to end through `syncstorm run` on the lab (issue #7): clients go
// offline in windows, keep journaling and queueing, and drain on reconnect.
//   100 clients offline 5 s → 25 s, 50 transactions each → every op acked and present, nothing
//     lost or duplicated, 100 drain and resume times in the report, the peak queue shows the
//     backlog
//   random duty cycle (seeded) → the same windows on a second run with the same seed
//   --time-scale scales the windows (dry run)
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <set>
#include <tuple>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

// 100 clients × 1.25/s × 40 s = 5,000 transactions, 50 per client (the schedule is exact).
json windows_scenario() {
  return json::parse(R"({
    "name": "offline-window", "duration": "40s", "seed": 7,
    "target": {"lab": {"pods": 2}},
    "load": [{"name": "off", "model": "offline", "clients": 100, "rate": 1.25,
              "offline": [{"at": "5s", "for": "20s"}], "drain": "30s",
              "phases": [{"name": "steady", "for": "40s"}]}],
    "slas": [
      {"name": "nothing-lost", "metric": "audit.lost", "stat": "max", "max": 0},
      {"name": "no-duplicates", "metric": "audit.duplicates", "stat": "max", "max": 0},
      {"name": "all-acked", "metric": "availability.ops", "stat": "ratio", "min": "100%"}
    ]})");
}

json random_scenario() {
  return json::parse(R"({
    "name": "offline-random", "duration": "12s", "seed": 11,
    "target": {"lab": {"pods": 1}},
    "load": [{"name": "flaky", "model": "offline", "clients": 10, "rate": 2,
              "random": {"duty_cycle": "40%", "period": "4s"}, "drain": "20s",
              "phases": [{"name": "steady", "for": "12s"}]}],
    "slas": [{"name": "nothing-lost", "metric": "audit.lost", "stat": "max", "max": 0}]})");
}

struct run_result {
  int exit_code = -1;
  std::string out;
  json report;
};

run_result run(const t::temp_dir& d, const json& sc, const std::string& extra = "") {
  fs::path file = d.path() / "scenario.json";
  t::write_file(file, sc.dump(2));
  fs::path out = d.path() / "runs";
  run_result r;
  auto c = t::run(t::bin() + " run " + file.string() + " --out " + out.string() + " " + extra + " 2>&1");
  r.exit_code = c.exit_code;
  r.out = c.out;
  if (extra.find("--dry-run") != std::string::npos) return r;
  fs::path dir;
  for (auto& e : fs::directory_iterator(out)) dir = e.path();
  r.report = json::parse(t::read_file(dir / "report.json"));
  return r;
}

const json& metric(const json& rep, const std::string& name) {
  const json& m = rep["metrics"];
  if (!m.contains(name)) throw std::runtime_error("no metric " + name + " in the report");
  return m[name];
}

std::set<std::tuple<std::string, double, double>> planned_windows(const json& rep) {
  std::set<std::tuple<std::string, double, double>> out;
  for (const auto& e : rep["events"])
    if (e["event"] == "client_offline")
      out.emplace(e["terminal"].get<std::string>(), e["window_start_s"].get<double>(), e["window_end_s"].get<double>());
  return out;
}

}  // namespace

class offline_run : public ::testing::Test {
 protected:
  void SetUp() override {
    if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  }
};

TEST(offline_dry_run, time_scale_scales_the_windows) {
  t::temp_dir d;
  auto r = run(d, windows_scenario(), "--dry-run");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("100 clients offline in [5s, 25s)"), std::string::npos) << r.out;
  r = run(d, windows_scenario(), "--dry-run --time-scale 0.5");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("100 clients offline in [2.5s, 12.5s)"), std::string::npos) << r.out;
}

TEST(offline_dry_run, a_bad_period_is_named) {
  t::temp_dir d;
  json sc = random_scenario();
  sc["load"][0]["random"]["period"] = "200ms";
  auto r = run(d, sc, "--dry-run");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario.load[0].random.period: found \"200ms\"; expected a duration >= 1s"), std::string::npos)
      << r.out;
}

TEST_F(offline_run, hundred_clients_offline_20s_recover_every_transaction) {
  t::temp_dir d;
  auto r = run(d, windows_scenario());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  const json& rep = r.report;
  const json& a = rep["audit"];
  ASSERT_TRUE(a.is_object()) << r.out;
  EXPECT_EQ(a["ops"], 5000);
  EXPECT_EQ(a["acked"], 5000);
  EXPECT_EQ(a["present"], 5000);
  EXPECT_EQ(a["lost"], 0);
  EXPECT_EQ(a["duplicates"], 0);
  EXPECT_EQ(a["diverged"], 0);
  EXPECT_EQ(a["order_violations"], 0);
  const json& ops = metric(rep, "availability.ops@off");
  EXPECT_EQ(ops["ok"], 5000);
  EXPECT_EQ(ops["errors"], 0);
  // One drain and one resume per client, all finished; sync resumed well within 30 s.
  const json& drain = metric(rep, "offline.drain_time@off");
  const json& resume = metric(rep, "offline.resume_time@off");
  EXPECT_EQ(drain["count"], 100);
  EXPECT_EQ(drain["errors"], 0);
  EXPECT_EQ(resume["count"], 100);
  EXPECT_GT(resume["max"].get<double>(), 0);
  EXPECT_LT(resume["max"].get<double>(), 30'000);  // ms
  EXPECT_GE(drain["min"].get<double>(), resume["min"].get<double>());
  EXPECT_TRUE(metric(rep, "offline.drain_time").is_object());  // the plain name too
  // The backlog: 25 transactions per client queued during the window (1.25/s × 20 s).
  EXPECT_EQ(metric(rep, "offline.peak_queue@off")["count"], 100);
  const double peak = metric(rep, "queue.depth@off")["peak"].get<double>();
  EXPECT_GE(peak, 2400);
  EXPECT_LE(peak, 2600);
  // No push went out during the window: 100 clients went offline at 5 s and came back at 25 s.
  int offline = 0, online = 0;
  for (const auto& e : rep["events"]) {
    if (e["event"] == "client_offline") {
      ++offline;
      EXPECT_EQ(e["window_start_s"], 5.0);
      EXPECT_NEAR(e["at_s"].get<double>(), 5.0, 0.5);
    } else if (e["event"] == "client_online") {
      ++online;
      EXPECT_EQ(e["reason"], "window_end");
      EXPECT_NEAR(e["at_s"].get<double>(), 25.0, 0.5);
      EXPECT_GE(e["queued"].get<int>(), 24);
    }
  }
  EXPECT_EQ(offline, 100);
  EXPECT_EQ(online, 100);
}

TEST_F(offline_run, random_duty_cycle_is_reproducible_by_seed) {
  t::temp_dir d1, d2;
  auto r1 = run(d1, random_scenario());
  auto r2 = run(d2, random_scenario());
  ASSERT_EQ(r1.exit_code, 0) << r1.out;
  ASSERT_EQ(r2.exit_code, 0) << r2.out;
  auto w1 = planned_windows(r1.report), w2 = planned_windows(r2.report);
  EXPECT_GE(w1.size(), 10u);  // 40% of 12 s in cycles of about 4 s: several windows per client
  EXPECT_EQ(w1, w2);
  std::set<std::string> clients;
  for (const auto& [c, from, to] : w1) {
    clients.insert(c);
    EXPECT_LT(from, to);
  }
  EXPECT_GE(clients.size(), 8u);  // clients go offline at their own times
  EXPECT_GT(std::set<double>([&] {
              std::set<double> s;
              for (const auto& w : w1) s.insert(std::get<1>(w));
              return s;
            }())
                .size(),
            3u);
  for (const auto* r : {&r1, &r2}) {
    EXPECT_EQ(r->report["audit"]["lost"], 0);
    const json& ops = metric(r->report, "availability.ops@flaky");
    EXPECT_EQ(ops["errors"], 0);
    EXPECT_GT(ops["ok"].get<int>(), 200);
    EXPECT_GT(metric(r->report, "offline.drain_time@flaky")["count"].get<int>(), 0);
  }
}
