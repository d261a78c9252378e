// The engine runs a load model and a fault kind that it has never heard of: `pulse`
// (tests/extension/pulse_model.cpp) and `touch` (tests/extension/touch_fault.cpp), each a file of
// its own that registers itself. The scenario validates against their keys, its rules read their
// metrics, the fault goes through the ledger (and the reaper) like a built-in one, and the run is
// judged and reported by the same engine call the CLI makes, in this process, twice.
#include "core/plan.hpp"
#include "core/scenario.hpp"
#include "engine/run.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace syncstorm {
namespace {

// A listening socket on 127.0.0.1 (the endpoints target's preflight connects to it).
class listener {
 public:
  listener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0)
      throw std::runtime_error("listen");
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~listener() { ::close(fd_); }
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

json scenario_doc(int port, const std::string& dir, const std::string& watch) {
  return json::parse(R"({
    "name": "extension", "duration": "3s", "seed": 3,
    "target": {"endpoints": {"http": "http://127.0.0.1:)" +
                     std::to_string(port) + R"("}},
    "load": [{"name": "p", "model": "pulse", "every": "50ms", "watch": ")" +
                     watch + R"(",
              "phases": [{"name": "steady", "for": "3s"}]}],
    "faults": [{"name": "t", "kind": "touch", "at": "1s", "for": "1s", "dir": ")" +
                     dir + R"("}],
    "slas": [{"name": "ticked", "metric": "pulse.tick", "stat": "count", "min": 20},
             {"name": "saw-the-fault", "metric": "pulse.seen", "stat": "count", "min": 5},
             {"name": "tick-p50", "metric": "pulse.tick", "stat": "p50", "max": "10ms"}]
  })");
}

TEST(engine_extension, validates_against_the_registered_keys) {
  auto doc = scenario_doc(1, "/tmp", "/tmp/x");
  doc["load"][0]["evry"] = "1s";
  doc["faults"][0]["dir"] = "relative";
  auto r = load_scenario(doc, {});
  ASSERT_FALSE(r.value);
  std::string all;
  for (const auto& e : r.errors) all += e + "\n";
  EXPECT_NE(all.find("scenario.load[0].evry"), std::string::npos) << all;
  EXPECT_NE(all.find("did you mean \"every\""), std::string::npos) << all;
  // The kind's own check runs once the shape holds.
  doc["load"][0].erase("evry");
  r = load_scenario(doc, {});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], "scenario.faults[0].dir: found \"relative\"; expected an absolute directory path");
}

TEST(engine_extension, runs_a_model_and_a_fault_from_files_of_their_own) {
  test::temp_dir tmp;
  listener target;
  const std::string watch = (tmp.path() / "touched").string();
  auto loaded = load_scenario(scenario_doc(target.port(), tmp.str(), watch), {});
  ASSERT_TRUE(loaded.value) << (loaded.errors.empty() ? "" : loaded.errors[0]);
  const scenario& s = *loaded.value;
  const plan p = make_plan(s);
  engine::run_options o;
  o.out_dir = (tmp.path() / "runs").string();
  o.threads = 2;
  // The engine can run a plan more than once in one process.
  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    const engine::run_result r = engine::run(s, p, o);
    ASSERT_FALSE(r.run_dir.empty());
    const json& rep = r.report;
    EXPECT_EQ(r.exit_code, 0) << rep["verdicts"].dump(2);
    EXPECT_EQ(rep["outcome"], "pass");
    ASSERT_EQ(rep["faults"].size(), 1u);
    const json& f = rep["faults"][0];
    EXPECT_EQ(f["kind"], "touch");
    ASSERT_TRUE(f["applied_at"].is_number()) << f.dump();
    ASSERT_TRUE(f["reverted_at"].is_number()) << f.dump();
    EXPECT_NEAR(f["applied_at"].get<double>(), 1.0, 0.5);
    EXPECT_NEAR(f["reverted_at"].get<double>(), 2.0, 0.5);
    // Ticks saw the file only while the fault held it: about 1 s of 50 ms ticks out of 3 s.
    const double seen = rep["metrics"]["pulse.seen"]["count"].get<double>();
    const double ticks = rep["metrics"]["pulse.tick"]["count"].get<double>();
    EXPECT_GE(seen, 5);
    EXPECT_LT(seen, ticks * 0.6) << "seen " << seen << " of " << ticks;
    EXPECT_FALSE(std::filesystem::exists(watch)) << "the revert removed the file";
    // The ledger holds the fault's intent and outcome, like a built-in kind's.
    const std::string ledger = test::read_file(std::filesystem::path(r.run_dir) / "ledger.jsonl");
    EXPECT_NE(ledger.find("\"remove_file\""), std::string::npos);
    EXPECT_NE(ledger.find("run_end"), std::string::npos);
  }
}

// --dry-run describes both from their own files: the model's line, the fault's exact steps.
TEST(engine_extension, dry_run_shows_what_they_would_do) {
  test::temp_dir tmp;
  listener target;
  const std::string watch = (tmp.path() / "touched").string();
  auto doc = scenario_doc(target.port(), tmp.str(), watch);
  auto loaded = load_scenario(doc, {});
  ASSERT_TRUE(loaded.value);
  engine::run_options o;
  o.out_dir = (tmp.path() / "runs").string();
  o.dry_run = true;
  const std::string dry = engine::dry_run_details(*loaded.value, o);
  EXPECT_NE(dry.find("load p: pulse"), std::string::npos) << dry;
  EXPECT_NE(dry.find("fault t#0 (touch) at 1s:"), std::string::npos) << dry;
  EXPECT_NE(dry.find("apply:  touch " + watch), std::string::npos) << dry;
  EXPECT_NE(dry.find("revert: rm -f " + watch), std::string::npos) << dry;
}

}  // namespace
}  // namespace syncstorm
