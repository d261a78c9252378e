// Recovery at 100 ms on the lab (issue #10): a pod kill under POS load. The only pod dies, the
// supervisor restarts it after restart_delay, HAProxy takes it back after `rise` checks. Then
// ready.<fault> (first readiness success after the death) comes no later than recovery.<fault>
// (clients served in their pre-fault band again), both within restart delay plus the
// health-check budget plus the clients' backoff cap; a rule bound below the measured recovery
// fails the run with exit 1, and report.json's faults[] carries the same values.
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

json scenario() {
  return json::parse(R"({
    "name": "recovery-kill",
    "duration": "24s",
    "target": {"lab": {"pods": 1, "restart_delay": "2s", "health": {"interval": "500ms", "fall": 2, "rise": 2}}},
    "load": [{"name": "pos", "model": "terminal", "stores": 2, "terminals_per_store": 4, "rate": 10,
              "ops": {"append": 80, "add": 20, "set": 0}, "timeout": "1s", "drain": "15s",
              "retry": {"base": "50ms", "max": "300ms", "limit": 0},
              "breaker": {"threshold": 50, "open_for": "500ms"},
              "phases": [{"name": "steady", "for": "24s"}]}],
    "faults": [{"name": "kill-pod", "kind": "kill", "target": {"pods": "pod-0"}, "at": "10s"}],
    "slas": [
      {"name": "recovers-fast", "metric": "recovery.kill-pod", "stat": "max", "max": "15s"},
      {"name": "ready-fast", "metric": "ready.kill-pod", "stat": "max", "max": "15s"},
      {"name": "nothing-lost", "metric": "audit.lost", "stat": "max", "max": 0}
    ]})");
}

struct run_result {
  int exit_code = -1;
  std::string out;
  json report;
};

run_result run(const json& sc, const std::string& extra = "") {
  t::temp_dir d;
  fs::path file = d.path() / "scenario.json";
  t::write_file(file, sc.dump(2));
  run_result r;
  auto c =
      t::run(t::bin() + " run " + file.string() + " --out " + (d.path() / "runs").string() + " " + extra + " 2>&1");
  r.exit_code = c.exit_code;
  r.out = c.out;
  r.report = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  return r;
}

const json& verdict(const json& rep, const std::string& name) {
  for (const auto& v : rep["verdicts"])
    if (v["name"] == name) return v;
  throw std::runtime_error("no verdict " + name);
}

}  // namespace

TEST(recovery, pod_kill_ready_before_recovery_within_the_budget) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  auto r = run(scenario());
  ASSERT_EQ(r.exit_code, 0) << r.out;
  ASSERT_EQ(r.report["faults"].size(), 1u) << r.out;
  const json& f = r.report["faults"][0];
  ASSERT_TRUE(f["recovery_s"].is_number()) << f.dump();
  ASSERT_TRUE(f["ready_s"].is_number()) << f.dump();
  ASSERT_TRUE(f["detect_s"].is_number()) << f.dump();
  const double recovery = f["recovery_s"], ready = f["ready_s"], detect = f["detect_s"];
  // The clients notice at once: every push goes to the only pod.
  EXPECT_LT(detect, 1.0) << f.dump();
  // Server side first, then the clients (HAProxy needs `rise` checks after the pod is ready).
  EXPECT_LE(ready, recovery) << f.dump();
  // restart_delay 2 s, then start-up; the LB notices the death within fall × interval and
  // takes the pod back after rise × interval; the clients retry at most every 0.3 s (+1 s slack
  // per step for a loaded 2-core machine).
  EXPECT_GE(ready, 2.0) << f.dump();
  EXPECT_LE(ready, 2.0 + 3.0) << f.dump();
  EXPECT_LE(recovery, 2.0 + 2 * 0.5 + 2 * 0.5 + 0.3 + 4.0) << f.dump();
  // The same numbers as the verdicts' values (ms).
  EXPECT_NEAR(verdict(r.report, "recovers-fast")["value"].get<double>(), recovery * 1000, 1.0);
  EXPECT_NEAR(verdict(r.report, "ready-fast")["value"].get<double>(), ready * 1000, 1.0);
  EXPECT_EQ(r.report["audit"]["lost"], 0);
  // The lab's events the timeline read are in the report.
  bool died = false, pod_ready = false;
  for (const auto& e : r.report["events"]) {
    died = died || e.value("event", "") == "pod_died";
    pod_ready = pod_ready || e.value("event", "") == "pod_ready";
  }
  EXPECT_TRUE(died && pod_ready);

  // A bound below what was measured fails the run (exit 1) and names the value.
  json tight = scenario();
  tight["slas"][0]["max"] = "200ms";
  auto r2 = run(tight);
  EXPECT_EQ(r2.exit_code, 1) << r2.out;
  const json& v = verdict(r2.report, "recovers-fast");
  EXPECT_FALSE(v["pass"].get<bool>());
  EXPECT_FALSE(v["inconclusive"].get<bool>());
  EXPECT_GT(v["value"].get<double>(), 200.0);
}
