// The shipped scenarios end to end on the lab (issue #12): every scenario of scenarios/ whose
// load models and fault kinds this build has runs through `syncstorm run --time-scale X
// [--set ...]` (the same reductions tests/unit/scenarios_validate_test.cpp validates) against
// the correct stack and passes (exit 0, outcome pass, every verdict passed and conclusive).
// Four runs against syncd's bug modes must fail (exit 1) on the rule that names the bug:
//   drop-every=50                      → nothing-lost   (pos-steady-state)
//   ack-before-commit + the pod kill   → nothing-lost   (pos-pod-failover)
//   slow-ack=150                       → push-p99       (pos-steady-state)
//   dup-apply with retried pushes      → no-divergence  (pos-steady-state)
// The runs judged on push.e2e keep their journals on tmpfs (journals_on_tmpfs: why in the table).
// Each run's lab must be gone afterwards. The cases and their reductions are
// tests/support/scenario_ci_runs.hpp; each is ~20-40 s of load plus the lab's start, the drain
// and the audit (~10-15 s).
#include "tests/support/scenario_ci_runs.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <iostream>
#include <optional>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

using run_case = t::scenario_ci_run;

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct run_result {
  int exit_code = -1;
  std::string out;
  json report;
};

run_result run(const run_case& c, const t::temp_dir& d) {
  std::string cmd = t::bin() + " run " + (fs::path(t::source_dir()) / "scenarios" / (c.scenario + ".json")).string() +
                    " --time-scale " + std::to_string(c.time_scale) + " --out " + (d.path() / "runs").string();
  for (const auto& s : c.sets) cmd += " --set " + quote(s);
  std::optional<t::temp_dir> journals;
  if (c.journals_on_tmpfs) {
    journals.emplace(t::tmpfs_base());
    cmd += " --set " + quote(t::journal_dir_set(journals->str()));
  }
  run_result r;
  auto x = t::run(cmd + " 2>&1");
  r.exit_code = x.exit_code;
  r.out = x.out;
  if (fs::exists(d.path() / "runs"))
    for (auto& e : fs::directory_iterator(d.path() / "runs"))
      if (fs::exists(e.path() / "report.json"))
        r.report = json::parse(t::read_file(e.path() / "report.json"), nullptr, false);
  return r;
}

std::string lab_id(const json& rep) {
  if (!rep.is_object() || !rep.contains("events")) return {};
  for (const auto& e : rep["events"])
    if (e.value("event", "") == "lab_up" && e.contains("lab") && e["lab"].is_string()) return e["lab"];
  return {};
}

const json* verdict(const json& rep, const std::string& name) {
  for (const auto& v : rep["verdicts"])
    if (v["name"] == name) return &v;
  return nullptr;
}

class scenarios : public ::testing::TestWithParam<run_case> {
 protected:
  void SetUp() override {
    if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  }
};

std::string table(const run_result& r) {
  auto p = r.out.find("RULE ");
  return p == std::string::npos ? r.out : r.out.substr(p);
}

// What a failed run's verdicts rest on, printed once after a failure so that a CI failure can
// be read without the run directory (gone with the test's temp dir): per fault occurrence its
// times, pre-fault band and recovery, the error counts, the generator, and the judged client
// metric's 1 s series (t s, count, errors, p50 ms, p99 ms, max ms).
std::string details(const run_result& r) {
  std::string o;
  const json& rep = r.report;
  if (!rep.is_object()) return o;
  auto field = [&](const char* k) { return rep.contains(k) ? rep[k].dump() : std::string("absent"); };
  if (rep.contains("faults") && rep["faults"].is_array())
    for (const auto& f : rep["faults"]) {
      json brief = json::object();
      for (const char* k : {"name", "occurrence", "applied_at", "reverted_at", "baseline", "recovery_s", "detect_s",
                            "ready_s", "inflight_ops"})
        if (f.contains(k)) brief[k] = f[k];
      o += "fault: " + brief.dump() + "\n";
    }
  o += "errors: " + field("errors") + "\ngenerator: " + field("generator") + "\n";
  if (rep.contains("series") && rep["series"].is_object())
    for (const char* m : {"push.latency", "http.latency"})
      if (rep["series"].contains(m)) {
        o += std::string(m) + " 1 s series: " + rep["series"][m].dump() + "\n";
        break;
      }
  return o;
}

}  // namespace

TEST_P(scenarios, gives_the_right_verdicts) {
  const run_case& c = GetParam();
  t::temp_dir d;
  auto r = run(c, d);
  ASSERT_TRUE(r.report.is_object()) << "no report.json\n" << r.out;
  std::string id = lab_id(r.report);
  EXPECT_FALSE(id.empty()) << "no lab_up event";
  if (!id.empty()) {
    EXPECT_FALSE(fs::exists("/var/tmp/syncstorm/lab-" + id)) << "the run left its lab behind";
    t::run(t::bin() + " lab down --id " + id + " 2>&1");  // a no-op unless the check above failed
  }
  EXPECT_NE(r.out.find("report: "), std::string::npos) << r.out;
  EXPECT_EQ(r.exit_code, c.exit_code) << table(r);
  if (c.exit_code == 0) {
    EXPECT_EQ(r.report["outcome"], "pass") << table(r);
    for (const auto& v : r.report["verdicts"]) {
      EXPECT_TRUE(v["pass"].get<bool>()) << v.dump();
      EXPECT_FALSE(v.value("inconclusive", false)) << v.dump();
    }
    // The correct stack stores what was sent and nothing else, rule or not (issue #25).
    if (const json& a = r.report["audit"]; a.is_object()) {
      EXPECT_EQ(a.value("mismatched", -1), 0) << a.dump();
      EXPECT_EQ(a.value("phantoms", -1), 0) << a.dump();
      if (a.contains("fanout_mismatched")) {
        EXPECT_EQ(a["fanout_mismatched"], 0) << a.dump();
      }
    }
    if (const json& m = r.report["metrics"]; m.is_object() && m.contains("fanout.stale")) {
      EXPECT_EQ(m["fanout.stale"].value("count", -1), 0) << m["fanout.stale"].dump();
    }
  } else {
    EXPECT_EQ(r.report["outcome"], "fail") << table(r);
    const json* v = verdict(r.report, c.failing_rule);
    ASSERT_NE(v, nullptr) << "no verdict " << c.failing_rule;
    EXPECT_FALSE((*v)["pass"].get<bool>()) << v->dump();
    EXPECT_FALSE(v->value("inconclusive", false)) << v->dump();
  }
  if (HasFailure()) std::cout << "what the verdicts rest on:\n" << details(r);
}

INSTANTIATE_TEST_SUITE_P(shipped, scenarios, ::testing::ValuesIn(t::scenario_ci_runs()),
                         [](const ::testing::TestParamInfo<run_case>& i) { return i.param.name; });
