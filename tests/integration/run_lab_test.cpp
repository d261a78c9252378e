// `syncstorm run` with "target": {"lab": …}: the lab is started for the run and removed after
// it; an http-model run (tests/data/http-lab.json) passes on the correct stack, and `--set target.lab.bug=slow-ack=MS` reaches
// every pod, so the push latency rule fails (exit 1) while the read rule still holds.
#include "core/report_schema.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

const json* verdict(const json& rep, const std::string& name) {
  for (const auto& v : rep["verdicts"])
    if (v["name"] == name) return &v;
  return nullptr;
}

json run_http_lab(const std::string& extra, int& exit_code, std::string& out) {
  t::temp_dir d;
  auto r = t::run(t::bin() + " run " + t::source_dir() + "/tests/data/http-lab.json --time-scale 0.5 --out " +
                  (d.path() / "runs").string() + " " + extra + " 2>&1");
  exit_code = r.exit_code;
  out = r.out;
  json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  std::string id;
  for (const auto& e : rep["events"])
    if (e["event"] == "lab_up" && e.contains("lab") && e["lab"].is_string()) id = e["lab"];
  EXPECT_FALSE(id.empty()) << "no lab_ready event";
  EXPECT_FALSE(fs::exists("/var/tmp/syncstorm/lab-" + id)) << "the run left its lab behind";
  auto status = t::run(t::bin() + " lab status 2>&1");
  EXPECT_EQ(status.out.find(id), std::string::npos) << status.out;
  return rep;
}

}  // namespace

TEST(run_lab, http_lab_passes_on_the_correct_stack) {
  int rc = 0;
  std::string out;
  json rep = run_http_lab("", rc, out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(rep["outcome"], "pass") << out;
  syncstorm::spec::errors errs;
  syncstorm::spec::validate(rep, *syncstorm::report_spec(), "report", errs);
  EXPECT_TRUE(errs.empty()) << (errs.empty() ? "" : errs[0]);
  // Per-load views and their whole.
  EXPECT_GT(rep["metrics"]["http.requests@push"]["count"].get<int>(), 1000);
  EXPECT_GT(rep["metrics"]["http.requests@feed"]["count"].get<int>(), 500);
  EXPECT_EQ(rep["metrics"]["http.requests"]["count"].get<int>(),
            rep["metrics"]["http.requests@push"]["count"].get<int>() +
                rep["metrics"]["http.requests@feed"]["count"].get<int>());
  bool lab_ready = false;
  for (const auto& e : rep["events"]) lab_ready |= e["event"] == "lab_up";
  EXPECT_TRUE(lab_ready);
  EXPECT_NE(out.find("report: "), std::string::npos);
}

TEST(run_lab, a_bug_mode_set_on_the_command_line_reaches_every_pod) {
  int rc = 0;
  std::string out;
  json rep = run_http_lab("--set target.lab.bug=slow-ack=150", rc, out);
  EXPECT_EQ(rc, 1) << out;
  EXPECT_EQ(rep["outcome"], "fail");
  EXPECT_EQ(rep["scenario"]["target"]["lab"]["bug"], "slow-ack=150");  // --set is recorded
  const json* push = verdict(rep, "push-p99");
  ASSERT_NE(push, nullptr);
  EXPECT_FALSE((*push)["pass"].get<bool>());
  EXPECT_GE((*push)["value"].get<double>(), 150.0);  // every push waited (both pods have the bug)
  EXPECT_GE(rep["metrics"]["http.latency@push"]["p50"].get<double>(), 140.0);
  const json* feed = verdict(rep, "feed-p99");
  ASSERT_NE(feed, nullptr);
  EXPECT_TRUE((*feed)["pass"].get<bool>()) << (*feed).dump();  // reads are not slowed
}
