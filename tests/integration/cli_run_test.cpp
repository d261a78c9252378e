// `syncstorm run` end to end against a local HTTP server: dry-run touches nothing; a rule that
// holds exits 0 and one that must fail exits 1; SIGINT stops the load and exits 4 with an
// aborted report; an unreachable target exits 3; an invalid scenario exits 2 and creates
// nothing; a secret passed through the environment is sent but appears in no written file, and
// in no form anywhere (files, console) when the target fails and errors name the URL.
#include "core/redact.hpp"
#include "core/report_schema.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/wait.h>

#include <fstream>
#include <set>
#include <thread>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

json scenario(int port, const std::string& p99_bound, const std::string& dur = "4s") {
  return json::parse(R"({"name": "cli", "duration": ")" + dur + R"(", "seed": 3,
    "target": {"endpoints": {"http": "http://127.0.0.1:)" +
                     std::to_string(port) + R"("},
               "headers": {"Authorization": "Bearer ${env:SYNCSTORM_TEST_SECRET}"}},
    "load": [{"name": "api", "model": "http", "connections": 4, "timeout": "2s",
              "request": {"method": "POST", "path": "/v1/x", "body": {"token": "${env:SYNCSTORM_TEST_SECRET}"}},
              "phases": [{"name": "steady", "for": ")" +
                     dur + R"(", "rate": 50}]}],
    "slas": [{"name": "p90", "metric": "http.latency", "stat": "p90", "max": ")" +
                     p99_bound + R"("},
             {"name": "ok", "metric": "http.requests", "stat": "ratio", "min": "95%"}]})");
}

std::string last_line(const std::string& s) {
  auto end = s.find_last_not_of('\n');
  auto start = s.rfind('\n', end);
  return s.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

class cli_run : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = t::free_port();
    server_ = std::make_unique<t::recording_http_server>(port_, dir_.path());
    setenv("SYNCSTORM_TEST_SECRET", secret_.c_str(), 1);
  }
  t::temp_dir dir_;
  int port_ = 0;
  std::unique_ptr<t::recording_http_server> server_;
  std::string secret_ = "s3cr3t-7f9e2b1c-do-not-leak";
};

}  // namespace

TEST_F(cli_run, dry_run_prints_the_timeline_and_touches_nothing) {
  auto f = dir_.path() / "s.json";
  t::write_file(f, scenario(port_, "1s").dump());
  auto out = dir_.path() / "runs";
  auto r = t::run(t::bin() + " run " + f.string() + " --out " + out.string() + " --dry-run --time-scale 0.5 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("scenario cli: 2s, seed 3, time scale 0.5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("api  steady 0s    2s  50/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("p90  http.latency  p90   all    <= 1s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Authorization=<from environment>"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(secret_), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_EQ(server_->log(), "");  // nothing contacted
}

TEST_F(cli_run, a_rule_that_holds_exits_0_and_the_secret_is_written_nowhere) {
  auto f = dir_.path() / "s.json";
  t::write_file(f, scenario(port_, "2s").dump());
  auto out = dir_.path() / "runs";
  auto r = t::run(t::bin() + " run " + f.string() + " --out " + out.string() + " --threads 2 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  fs::path run = t::only_run_dir(out);
  EXPECT_EQ(last_line(r.out), "report: " + (run / "report.html").string());
  EXPECT_NE(run.filename().string().find("Z-cli"), std::string::npos);
  for (const char* file : {"report.json", "junit.xml", "summary.md", "report.html", "scenario.json", "events.jsonl"}) {
    EXPECT_TRUE(fs::exists(run / file)) << file;
  }
  json rep = json::parse(t::read_file(run / "report.json"));
  syncstorm::spec::errors errs;
  syncstorm::spec::validate(rep, *syncstorm::report_spec(), "report", errs);
  EXPECT_TRUE(errs.empty()) << errs[0];
  EXPECT_EQ(rep["outcome"], "pass");
  EXPECT_EQ(rep["exit_code"], 0);
  EXPECT_GE(rep["metrics"]["http.requests"]["count"].get<int>(), 150);
  // The secret went over the wire...
  EXPECT_NE(server_->log().find("auth=Bearer " + secret_), std::string::npos);
  EXPECT_NE(server_->log().find(secret_ + "\"}"), std::string::npos);
  // ...but no file of the run holds it, and the recorded scenario keeps the reference.
  for (auto& e : fs::recursive_directory_iterator(run)) {
    EXPECT_EQ(t::read_file(e.path()).find(secret_), std::string::npos) << e.path();
  }
  EXPECT_NE(t::read_file(run / "scenario.json").find("${env:SYNCSTORM_TEST_SECRET}"), std::string::npos);
  EXPECT_EQ(r.out.find(secret_), std::string::npos);
}

TEST_F(cli_run, a_rule_that_must_fail_exits_1) {
  auto f = dir_.path() / "s.json";
  t::write_file(f, scenario(port_, "1us", "3s").dump());
  auto out = dir_.path() / "runs";
  auto r = t::run(t::bin() + " run " + f.string() + " --out " + out.string() + " 2>&1");
  ASSERT_EQ(r.exit_code, 1) << r.out;
  json rep = json::parse(t::read_file(t::only_run_dir(out) / "report.json"));
  EXPECT_EQ(rep["outcome"], "fail");
  EXPECT_FALSE(rep["verdicts"][0]["pass"].get<bool>());
  EXPECT_TRUE(rep["verdicts"][1]["pass"].get<bool>());
  auto junit = t::read_file(t::only_run_dir(out) / "junit.xml");
  EXPECT_NE(junit.find("<failure message=\"http.latency p90 over all: value "), std::string::npos) << junit;
}

// ${env:} in the endpoint's URL (its port and its path) is resolved for the preflight and for the
// http model's requests (issue #24); the resolved secret reaches the server and no written file.
// No process of the run (the controller, its reaper) carries the secret on its command line.
TEST_F(cli_run, env_references_in_the_endpoint_url_reach_the_server_resolved) {
  setenv("SYNCSTORM_TEST_PORT", std::to_string(port_).c_str(), 1);
  json doc = scenario(port_, "1s", "3s");
  doc["target"]["endpoints"]["http"] = "http://127.0.0.1:${env:SYNCSTORM_TEST_PORT}/api-${env:SYNCSTORM_TEST_SECRET}";
  // A fault, so that the run starts its reaper too.
  t::child victim("exec sleep 1000");
  doc["faults"] = {
      {{"name", "stop"}, {"kind", "pause"}, {"target", {{"pid", victim.pid()}}}, {"at", "200ms"}, {"for", "2s"}}};
  auto f = dir_.path() / "s.json";
  t::write_file(f, doc.dump());
  auto out = dir_.path() / "runs";
  auto log = dir_.path() / "out.txt";
  t::child run("exec " + t::bin() + " run " + f.string() + " --allow-pid " + std::to_string(victim.pid()) + " --out " +
               out.string() + " > " + log.string() + " 2>&1");
  std::set<std::string> leaking;
  int exit_code = -1, scans = 0;
  for (int i = 0; i < 300; ++i) {
    for (auto& e : fs::directory_iterator("/proc")) {
      std::ifstream in(e.path() / "cmdline");
      std::string cmd((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      if (cmd.find(secret_) != std::string::npos) leaking.insert(e.path().filename().string() + ": " + cmd);
    }
    ++scans;
    int st = 0;
    if (::waitpid(run.pid(), &st, WNOHANG) == run.pid()) {
      exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  unsetenv("SYNCSTORM_TEST_PORT");
  EXPECT_TRUE(leaking.empty()) << *leaking.begin();
  EXPECT_GT(scans, 20);
  EXPECT_EQ(exit_code, 0) << t::read_file(log);
  EXPECT_NE(t::read_file(t::only_run_dir(out) / "reaper.log").find("(pid "), std::string::npos) << "no reaper ran";
  EXPECT_NE(server_->log().find("/api-" + secret_ + "/v1/x"), std::string::npos) << server_->log().substr(0, 2000);
  std::string everything = t::read_file(log);
  for (auto& e : fs::recursive_directory_iterator(out))
    if (e.is_regular_file()) everything += t::read_file(e.path());
  EXPECT_EQ(everything.find(secret_), std::string::npos);
}

TEST_F(cli_run, sigint_stops_the_load_and_exits_4_with_a_report) {
  auto f = dir_.path() / "s.json";
  t::write_file(f, scenario(port_, "2s", "60s").dump());
  auto out = dir_.path() / "runs";
  auto log = dir_.path() / "out.txt";
  t::child run("exec " + t::bin() + " run " + f.string() + " --out " + out.string() + " > " + log.string() + " 2>&1");
  std::this_thread::sleep_for(std::chrono::seconds(3));
  kill(run.pid(), SIGINT);
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  pid_t done = 0;
  while (std::chrono::steady_clock::now() < deadline && (done = waitpid(run.pid(), &status, WNOHANG)) == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(done, run.pid()) << "syncstorm did not stop within 20 s of SIGINT";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 4) << t::read_file(log);
  json rep = json::parse(t::read_file(t::only_run_dir(out) / "report.json"));
  EXPECT_EQ(rep["outcome"], "aborted");
  EXPECT_EQ(rep["exit_code"], 4);
  EXPECT_LT(rep["duration_s"].get<double>(), 20.0);
  EXPECT_NE(t::read_file(log).find("report: "), std::string::npos);
}

TEST_F(cli_run, an_unreachable_target_exits_3) {
  auto f = dir_.path() / "s.json";
  t::write_file(f, scenario(t::free_port(), "2s", "2s").dump());
  auto out = dir_.path() / "runs";
  auto r = t::run(t::bin() + " run " + f.string() + " --out " + out.string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.out.find("target unreachable: connect 127.0.0.1:"), std::string::npos) << r.out;
  json rep = json::parse(t::read_file(t::only_run_dir(out) / "report.json"));
  EXPECT_EQ(rep["outcome"], "error");
}

TEST_F(cli_run, an_invalid_scenario_exits_2_and_creates_nothing) {
  auto s = scenario(port_, "2s");
  s["load"][0]["phases"][0]["for"] = "3x";
  s["slas"][0]["window"] = "during:nothing";
  auto f = dir_.path() / "s.json";
  t::write_file(f, s.dump());
  auto out = dir_.path() / "runs";
  auto r = t::run(t::bin() + " run " + f.string() + " --out " + out.string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_EQ(r.out, "scenario.load[0].phases[0].for: found \"3x\"; expected a duration like \"30s\"\n");
  EXPECT_FALSE(fs::exists(out));
  r = t::run(t::bin() + " run " + f.string() + " --time-scale 0 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "--time-scale: found 0; expected a number above 0 and at most 1000\n");
  r = t::run(t::bin() + " run " + f.string() + " --bogus 2>&1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.out.find("--bogus"), std::string::npos) << r.out;
  EXPECT_EQ(server_->log(), "");
}

TEST_F(cli_run, a_secret_in_the_url_a_header_a_dsn_and_a_probe_url_is_written_in_no_form_when_the_target_fails) {
  // Issue #24: the canary is in the endpoint's path, an Authorization header, the audit's DSN
  // and the abort probe's userinfo; the server answers every push and the changes feed with
  // "ok" (not JSON), the DSN's database and the probe's port are closed. The audit fails (exit
  // 3) with an error that names the endpoint's URL: the canary shows as [redacted] there, and
  // in no form (plain, URL-encoded, JSON-escaped, base64) in any file of the run or on the
  // console.
  const std::string canary = "s3cr3t!CANARY*7f2a9";
  setenv("SYNCSTORM_TEST_SECRET", canary.c_str(), 1);
  const int dead = t::free_port();
  const std::string base = "http://127.0.0.1:" + std::to_string(port_) + "/t/${env:SYNCSTORM_TEST_SECRET}";
  for (const bool via_sql : {false, true}) {
    json doc = json::parse(R"({"name": "canary", "duration": "3s", "seed": 1,
      "target": {"endpoints": {"http": ")" +
                           base + R"("},
                 "headers": {"Authorization": "Bearer ${env:SYNCSTORM_TEST_SECRET}"}},
      "load": [{"name": "pos", "model": "terminal", "stores": 1, "terminals_per_store": 1, "rate": 5,
                "ops": {"append": 100}, "timeout": "1s", "drain": "1s", "phases": [{"name": "steady", "for": "3s"}]}],
      "abort": [{"name": "health", "probe": {"url": "http://u:${env:SYNCSTORM_TEST_SECRET}@127.0.0.1:)" +
                           std::to_string(dead) + R"(/h", "every": "200ms", "timeout": "200ms", "fail_after": 1000}}],
      "slas": [{"name": "lost", "metric": "audit.lost", "stat": "max", "max": 0}]})");
    if (via_sql)
      doc["target"]["audit"] = {
          {"dsn", "postgresql://u:${env:SYNCSTORM_TEST_SECRET}@127.0.0.1:" + std::to_string(dead) + "/db"}};
    t::temp_dir d;
    auto f = d.path() / "s.json";
    t::write_file(f, doc.dump());
    auto out = d.path() / "runs";
    auto r = t::run(t::bin() + " run " + f.string() + " --out " + out.string() + " 2>&1");
    EXPECT_EQ(r.exit_code, 3) << r.out;
    std::string everything = r.out;
    for (auto& e : fs::recursive_directory_iterator(out))
      if (e.is_regular_file()) everything += t::read_file(e.path());
    for (const auto& form : syncstorm::redact::forms_of(canary))
      EXPECT_EQ(everything.find(form), std::string::npos) << (via_sql ? "sql: " : "api: ") << "found the form " << form;
    if (!via_sql) {
      EXPECT_NE(r.out.find("/t/[redacted]"), std::string::npos) << "the audit's error names the URL, redacted:\n"
                                                                << r.out;
    }
  }
  setenv("SYNCSTORM_TEST_SECRET", secret_.c_str(), 1);
}
