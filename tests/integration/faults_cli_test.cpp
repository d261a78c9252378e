// Faults through `syncstorm run` without the lab: a local process paused and continued, the
// refusal to run over another run's unreverted ledger (and `syncstorm revert` clearing it), the
// docker and kubectl backends with fake `docker` and `kubectl` on PATH (dry-run prints the exact
// commands; the real run calls them; failures and refused contexts make the run an error), and
// abort conditions on a metric and on an HTTP probe (revert, exit 1, the condition named), and a
// killed reaper started again by the run.
#include "injectors/ledger.hpp"
#include "tests/support/run_events.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sys/stat.h>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

char proc_state(pid_t pid) {
  std::string s = t::read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = s.rfind(')');
  return close == std::string::npos || close + 2 >= s.size() ? '?' : s[close + 2];
}

// A scenario against a local HTTP server with an http load and the given faults/aborts.
json scenario(int port, const std::string& duration, json faults, json aborts = json::array()) {
  json doc = {{"name", "faults"},
              {"duration", duration},
              {"target", {{"endpoints", {{"http", "http://127.0.0.1:" + std::to_string(port)}}}}},
              {"load",
               {{{"name", "ping"},
                 {"model", "http"},
                 {"request", {{"path", "/ping"}}},
                 {"phases", {{{"name", "p"}, {"for", duration}, {"rate", 50}}}}}}},
              {"faults", faults}};
  if (!aborts.empty()) doc["abort"] = aborts;
  return doc;
}

struct env_guard {
  std::string name;
  env_guard(const std::string& n, const std::string& v) : name(n) { ::setenv(n.c_str(), v.c_str(), 1); }
  ~env_guard() { ::unsetenv(name.c_str()); }
};

// Fake docker/kubectl: append argv to calls.log; answer like the real tools for what the
// injectors ask. FAIL_ON=<word> makes a call containing that word fail.
void write_fakes(const fs::path& bin, const fs::path& calls) {
  fs::create_directories(bin);
  std::string docker = "#!/bin/sh\necho \"docker $*\" >> " + calls.string() + R"(
case "$*" in *"$FAIL_ON"*) if [ -n "$FAIL_ON" ]; then echo "Error response from daemon: simulated failure of $1" >&2; exit 1; fi;; esac
case "$1" in
  inspect) case "$*" in *Paused*) if grep -q "docker pause" )" +
                       calls.string() + R"( && ! grep -q "docker unpause" )" + calls.string() +
                       R"(; then echo true; else echo false; fi;; *) echo true;; esac;;
  ps) echo web-1; echo web-2; echo db;;
esac
exit 0
)";
  std::string kubectl = "#!/bin/sh\necho \"kubectl $*\" >> " + calls.string() + R"(
case "$*" in *"$FAIL_ON"*) if [ -n "$FAIL_ON" ]; then echo "Error from server: simulated failure" >&2; exit 1; fi;; esac
case "$*" in
  *"config current-context"*) echo kind-lab;;
  *"get pods"*) echo "shop-a shop-b shop-c";;
  *"delete pod"*) echo "pod deleted";;
  *wait*) echo "condition met";;
esac
exit 0
)";
  t::write_file(bin / "docker", docker);
  t::write_file(bin / "kubectl", kubectl);
  fs::permissions(bin / "docker", fs::perms::owner_all);
  fs::permissions(bin / "kubectl", fs::perms::owner_all);
}

}  // namespace

TEST(faults_cli, a_local_process_is_paused_for_its_window_and_continued) {
  t::temp_dir d;
  env_guard idx("SYNCSTORM_LEDGER_INDEX", (d.path() / "index").string());
  int port = t::free_port();
  t::recording_http_server server(port, d.path());
  t::child victim("exec sleep 1000");
  json doc = scenario(
      port, "5s",
      {{{"name", "stop-it"}, {"kind", "pause"}, {"target", {{"pid", victim.pid()}}}, {"at", "1s"}, {"for", "2s"}}});
  t::write_file(d.path() / "s.json", doc.dump());
  // Watch the victim's state while the run goes.
  std::atomic<bool> seen_stopped{false}, done{false};
  std::thread watch([&] {
    while (!done) {
      if (proc_state(victim.pid()) == 'T') seen_stopped = true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  });
  // The operator allows the victim (issue #24): without it the run is refused (below).
  auto r = t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --allow-pid " + std::to_string(victim.pid()) +
                  " --out " + (d.path() / "runs").string() + " 2>&1");
  done = true;
  watch.join();
  EXPECT_EQ(r.exit_code, 0) << r.out;
  EXPECT_TRUE(seen_stopped.load()) << r.out;
  EXPECT_NE(proc_state(victim.pid()), 'T');
  auto dir = t::only_run_dir(d.path() / "runs");
  json rep = json::parse(t::read_file(dir / "report.json"));
  ASSERT_EQ(rep["faults"].size(), 1u) << rep["faults"].dump();
  const auto& f = rep["faults"][0];
  EXPECT_EQ(f["name"], "stop-it");
  EXPECT_EQ(f["kind"], "pause");
  EXPECT_NEAR(f["scheduled_at"].get<double>(), 1.0, 0.01);
  EXPECT_NEAR(f["applied_at"].get<double>(), 1.0, 0.5);
  EXPECT_NEAR(f["reverted_at"].get<double>(), 3.0, 0.5);
  EXPECT_EQ(f["targets"][0]["pid"], victim.pid());
  auto ledger = t::read_file(dir / "ledger.jsonl");
  EXPECT_NE(ledger.find("\"phase\":\"intent\""), std::string::npos);
  EXPECT_NE(ledger.find("\"step\":\"run_end\""), std::string::npos);
  auto again = t::run(t::bin() + " revert " + dir.string() + " 2>&1");
  EXPECT_EQ(again.exit_code, 0);
  EXPECT_EQ(again.out, "nothing to revert\n");
  bool applied_event = false, reverted_event = false;
  for (const auto& e : rep["events"]) {
    applied_event |= e["event"] == "fault_applied";
    reverted_event |= e["event"] == "fault_reverted";
  }
  EXPECT_TRUE(applied_event && reverted_event);
  EXPECT_EQ(rep["safety"]["allow"]["pids"], json::array({std::to_string(victim.pid())})) << rep["safety"].dump();
  EXPECT_EQ(rep["safety"]["sources"], json::array({"flags"})) << rep["safety"].dump();
}

// The reaper's liveness is watched (issue #24): killed while a fault is applied, it is started
// again within about a second (a `reaper_restarted` event, a second reaper in reaper.log), and
// that one reverts when the controller is killed afterwards. Without the watch the victim would
// stay stopped.
TEST(faults_cli, a_killed_reaper_is_started_again_and_reverts_after_the_controller_dies) {
  t::temp_dir d;
  env_guard idx("SYNCSTORM_LEDGER_INDEX", (d.path() / "index").string());
  int port = t::free_port();
  t::recording_http_server server(port, d.path());
  t::child victim("exec sleep 1000");
  json doc = scenario(
      port, "40s",
      {{{"name", "stop-it"}, {"kind", "pause"}, {"target", {{"pid", victim.pid()}}}, {"at", "1s"}, {"for", "30s"}}});
  t::write_file(d.path() / "s.json", doc.dump());
  const fs::path out = d.path() / "runs", log = d.path() / "run.log";
  t::child run("exec " + t::bin() + " run " + (d.path() / "s.json").string() + " --allow-pid " +
               std::to_string(victim.pid()) + " --out " + out.string() + " > " + log.string() + " 2>&1");
  const fs::path rd = t::wait_run_dir(out);
  ASSERT_FALSE(rd.empty()) << t::read_file(log);
  ASSERT_TRUE(t::wait_event(
      rd / "events.jsonl", [](const json& e) { return e["event"] == "fault_applied"; }, std::chrono::seconds(30)))
      << t::read_file(log);
  ASSERT_EQ(proc_state(victim.pid()), 'T');
  auto reaper_pids = [&] {
    std::vector<pid_t> pids;
    const std::string rlog = t::read_file(rd / "reaper.log");
    for (auto at = rlog.find("(pid "); at != std::string::npos; at = rlog.find("(pid ", at + 1))
      pids.push_back(static_cast<pid_t>(std::atol(rlog.c_str() + at + 5)));
    return pids;
  };
  ASSERT_EQ(reaper_pids().size(), 1u) << t::read_file(rd / "reaper.log");
  const pid_t first = reaper_pids()[0];
  ASSERT_GT(first, 1);
  ASSERT_EQ(::kill(first, SIGKILL), 0);
  auto restarted = t::wait_event(
      rd / "events.jsonl", [](const json& e) { return e["event"] == "reaper_restarted"; }, std::chrono::seconds(10));
  ASSERT_TRUE(restarted) << t::read_file(log);
  EXPECT_EQ((*restarted)["ok"], true) << restarted->dump();
  std::vector<pid_t> pids;
  for (int i = 0; i < 50 && (pids = reaper_pids()).size() < 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(pids.size(), 2u) << t::read_file(rd / "reaper.log");
  EXPECT_NE(pids[1], first);
  EXPECT_EQ(::kill(pids[1], 0), 0) << "the second reaper is not running";
  EXPECT_NE(t::read_file(log).find("the reaper"), std::string::npos) << t::read_file(log);
  // Still paused: the second reaper waits for the controller, as the first did.
  EXPECT_EQ(proc_state(victim.pid()), 'T');
  ::kill(run.pid(), SIGKILL);
  run.stop();
  char st = 'T';
  for (int i = 0; i < 100 && (st = proc_state(victim.pid())) == 'T'; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_NE(st, 'T') << "the restarted reaper did not continue the victim\nreaper.log:\n"
                     << t::read_file(rd / "reaper.log");
  for (int i = 0; i < 50 && ::kill(pids[1], 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto again = t::run(t::bin() + " revert " + rd.string() + " 2>&1");
  EXPECT_EQ(again.exit_code, 0) << again.out;
  EXPECT_EQ(again.out, "nothing to revert\n");
}

TEST(faults_cli, a_run_over_an_unreverted_ledger_is_refused_with_the_revert_command) {
  t::temp_dir d;
  env_guard idx("SYNCSTORM_LEDGER_INDEX", (d.path() / "index").string());
  int port = t::free_port();
  t::recording_http_server server(port, d.path());
  t::child victim("exec sleep 1000");
  env_guard allow("SYNCSTORM_ALLOW_PIDS", std::to_string(victim.pid()));
  json doc = scenario(
      port, "30s",
      {{{"name", "stop-it"}, {"kind", "pause"}, {"target", {{"pid", victim.pid()}}}, {"at", "1s"}, {"for", "20s"}}});
  t::write_file(d.path() / "s.json", doc.dump());
  // The first run is killed with its reaper while the pause is applied: nothing reverts it.
  t::child first(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() +
                 " >/dev/null 2>&1");
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (proc_state(victim.pid()) != 'T' && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_EQ(proc_state(victim.pid()), 'T');
  auto dir = t::only_run_dir(d.path() / "runs");
  // This run's own reaper, by the pid it logged.
  std::string rlog = t::read_file(dir / "reaper.log");
  auto at = rlog.find("(pid ");
  ASSERT_NE(at, std::string::npos) << rlog;
  pid_t reaper = static_cast<pid_t>(std::stol(rlog.substr(at + 5)));
  ASSERT_GT(reaper, 1);
  ::kill(reaper, SIGKILL);
  first.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  ASSERT_EQ(proc_state(victim.pid()), 'T');
  auto second =
      t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs2").string() + " 2>&1");
  EXPECT_EQ(second.exit_code, 3) << second.out;
  EXPECT_NE(second.out.find("left faults unreverted (pause"), std::string::npos) << second.out;
  EXPECT_NE(second.out.find("run `syncstorm revert " + fs::absolute(dir).string() + "` first"), std::string::npos)
      << second.out;
  EXPECT_FALSE(fs::exists(d.path() / "runs2"));
  auto rv = t::run(t::bin() + " revert " + dir.string() + " 2>&1");
  EXPECT_EQ(rv.exit_code, 0) << rv.out;
  EXPECT_NE(rv.out.find("reverted stop-it#0 (pause)"), std::string::npos) << rv.out;
  EXPECT_NE(proc_state(victim.pid()), 'T');
  auto rv2 = t::run(t::bin() + " revert " + dir.string() + " 2>&1");
  EXPECT_EQ(rv2.out, "nothing to revert\n");
  // Now the run may start (a short one).
  doc["duration"] = "2s";
  doc["load"][0]["phases"][0]["for"] = "2s";
  doc["faults"][0]["for"] = "500ms";
  t::write_file(d.path() / "s.json", doc.dump());
  auto third =
      t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs3").string() + " 2>&1");
  EXPECT_EQ(third.exit_code, 0) << third.out;
}

TEST(faults_cli, docker_and_kubectl_backends_dry_run_real_run_and_failures) {
  t::temp_dir d;
  env_guard idx("SYNCSTORM_LEDGER_INDEX", (d.path() / "index").string());
  fs::path calls = d.path() / "calls.log";
  write_fakes(d.path() / "bin", calls);
  env_guard path("PATH", (d.path() / "bin").string() + ":" + t::env_or("PATH", "/usr/bin:/bin"));
  int port = t::free_port();
  t::recording_http_server server(port, d.path());
  json faults = {
      {{"name", "freeze-web"},
       {"kind", "pause"},
       {"target", {{"container", "web-*"}, {"pick", "all"}}},
       {"at", "500ms"},
       {"for", "1s"}},
      {{"name", "kill-shop"},
       {"kind", "kill"},
       {"target",
        {{"selector", {{"namespace", "shop"}, {"context", "kind-lab"}, {"labels", {{"app", "shop"}}}}},
         {"pick", {{"n", 2}}}}},
       {"at", "1s"}},
      {{"name", "fill-web"},
       {"kind", "disk_fill"},
       {"target", {{"container", "web-1"}}},
       {"volume", "/data"},
       {"leave", "1MiB"},
       {"at", "1s"},
       {"for", "500ms"}},
      {{"name", "roll-shop"},
       {"kind", "rolling_restart"},
       {"target", {{"selector", {{"namespace", "shop"}, {"context", "kind-lab"}, {"labels", {{"app", "shop"}}}}}}},
       {"at", "2s"}}};
  json doc = scenario(port, "4s", faults);
  // The operator's allowlist; the scenario's safety key narrows it to kind-lab.
  env_guard allow_ctx("SYNCSTORM_ALLOW_CONTEXTS", "kind-*");
  env_guard allow_ns("SYNCSTORM_ALLOW_NAMESPACES", "kind-lab/shop");
  env_guard allow_c("SYNCSTORM_ALLOW_CONTAINERS", "web-*");
  doc["safety"] = {{"allow_contexts", {"kind-lab"}}};
  t::write_file(d.path() / "s.json", doc.dump());

  auto dry = t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --dry-run 2>&1");
  EXPECT_EQ(dry.exit_code, 0) << dry.out;
  EXPECT_NE(dry.out.find("apply:  docker pause -- '<containers matching web-*>'"), std::string::npos) << dry.out;
  EXPECT_NE(dry.out.find("revert: docker unpause"), std::string::npos) << dry.out;
  EXPECT_NE(
      dry.out.find(
          "apply:  kubectl --context kind-lab -n shop delete pod --wait=false --grace-period=0 --force -- '<pods matching app=shop>'"),
      std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find(
                "apply:  docker exec -- web-1 fallocate -l '<computed from df at fire time>' /data/.syncstorm-fill-"),
            std::string::npos)
      << dry.out;
  EXPECT_NE(dry.out.find("apply:  kubectl --context kind-lab -n shop rollout restart deployment -l app=shop"),
            std::string::npos)
      << dry.out;
  EXPECT_FALSE(fs::exists(calls)) << "dry-run called a backend: " << t::read_file(calls);

  // The real run: the fakes answer; the ledger and the calls show apply then revert.
  auto r =
      t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " 2>&1");
  std::string log = t::read_file(calls);
  // The fake df prints nothing: disk_fill cannot size its file and fails at resolve (error, exit 3).
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(log.find("docker pause -- web-1"), std::string::npos) << log;
  EXPECT_NE(log.find("docker pause -- web-2"), std::string::npos) << log;
  EXPECT_NE(log.find("docker unpause -- web-1"), std::string::npos) << log;
  EXPECT_NE(log.find("docker unpause -- web-2"), std::string::npos) << log;
  EXPECT_NE(log.find("kubectl --context kind-lab -n shop get pods -l app=shop"), std::string::npos) << log;
  EXPECT_NE(log.find("delete pod --wait=false --grace-period=0 --force -- shop-"), std::string::npos) << log;
  EXPECT_NE(log.find("kubectl --context kind-lab -n shop wait --for=condition=Ready pod -l app=shop"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("rollout restart deployment -l app=shop"), std::string::npos) << log;
  EXPECT_NE(log.find("docker exec -- web-1 df -P -B1 /data"), std::string::npos) << log;
  json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  EXPECT_EQ(rep["outcome"], "error");
  bool fill_error = false;
  for (const auto& f : rep["faults"])
    if (f["name"] == "fill-web") fill_error = f.value("error", "").find("expected df -P output") != std::string::npos;
  EXPECT_TRUE(fill_error) << rep["faults"].dump();

  // A failing unpause: the revert fails, the run is an error naming it, and revert by hand
  // retries it (and succeeds once the daemon answers again).
  fs::remove(calls);
  json only_pause = scenario(port, "3s", json::array({faults[0]}));
  t::write_file(d.path() / "p.json", only_pause.dump());
  std::string r2out;
  {
    env_guard fail("FAIL_ON", "unpause");
    auto r2 = t::run(t::bin() + " run " + (d.path() / "p.json").string() + " --out " + (d.path() / "runs2").string() +
                     " 2>&1");
    EXPECT_EQ(r2.exit_code, 3) << r2.out;
    r2out = r2.out;
  }
  auto dir2 = t::only_run_dir(d.path() / "runs2");
  json rep2 = json::parse(t::read_file(dir2 / "report.json"));
  EXPECT_NE(
      rep2["faults"][0]
          .value("error", "")
          .find("revert: docker unpause -- web-1: exit 1: Error response from daemon: simulated failure of unpause"),
      std::string::npos)
      << rep2["faults"].dump();
  EXPECT_NE(rep2["reason"].get<std::string>().find("freeze-web"), std::string::npos) << rep2["reason"];
  // The reaper retries once the controller is gone; revert by hand as well.
  auto rv = t::run(t::bin() + " revert " + dir2.string() + " 2>&1");
  EXPECT_EQ(rv.exit_code, 0) << rv.out;
  auto rv2 = t::run(t::bin() + " revert " + dir2.string() + " 2>&1");
  EXPECT_EQ(rv2.out, "nothing to revert\n");

  // A context outside the allowlist is refused: nothing is deleted.
  fs::remove(calls);
  json other = scenario(port, "2s", json::array({faults[1]}));
  other["faults"][0]["target"]["selector"]["context"] = "prod-eu";
  t::write_file(d.path() / "k.json", other.dump());
  auto r3 =
      t::run(t::bin() + " run " + (d.path() / "k.json").string() + " --out " + (d.path() / "runs3").string() + " 2>&1");
  EXPECT_EQ(r3.exit_code, 2) << r3.out;
  EXPECT_NE(r3.out.find("faults[0].target.selector.context: kubectl context \"prod-eu\": refused"), std::string::npos)
      << r3.out;
  EXPECT_NE(r3.out.find("--allow-context prod-eu"), std::string::npos) << r3.out;
  EXPECT_FALSE(fs::exists(calls)) << t::read_file(calls);
  EXPECT_FALSE(fs::exists(d.path() / "runs3"));
  auto dry3 = t::run(t::bin() + " run " + (d.path() / "k.json").string() + " --dry-run 2>&1");
  EXPECT_EQ(dry3.exit_code, 2) << dry3.out;
  EXPECT_NE(dry3.out.find("faults[0].target.selector.context: kubectl context \"prod-eu\": refused"), std::string::npos)
      << dry3.out;
  // A scenario that names a context to widen the operator's list is refused the same way.
  other["safety"] = {{"allow_contexts", {"prod-eu"}}};
  t::write_file(d.path() / "k.json", other.dump());
  auto widen = t::run(t::bin() + " run " + (d.path() / "k.json").string() + " --dry-run 2>&1");
  EXPECT_EQ(widen.exit_code, 2) << widen.out;
  EXPECT_NE(widen.out.find("safety.allow_contexts[0]: found \"prod-eu\", which the operator has not allowed"),
            std::string::npos)
      << widen.out;

  // Allowed at preflight, refused when the fault fires: the current context (kind-lab, from the
  // fake) outside the operator's list, and a glob that resolves to more containers than the cap.
  // Both exit 3 with nothing applied.
  json current = scenario(port, "2s", json::array({faults[1]}));
  current["faults"][0]["target"]["selector"].erase("context");
  t::write_file(d.path() / "c.json", current.dump());
  {
    env_guard only("SYNCSTORM_ALLOW_CONTEXTS", "staging");
    auto rc = t::run(t::bin() + " run " + (d.path() / "c.json").string() + " --out " + (d.path() / "runs4").string() +
                     " 2>&1");
    EXPECT_EQ(rc.exit_code, 3) << rc.out;
    EXPECT_NE(rc.out.find("kubectl context \"kind-lab\": refused"), std::string::npos) << rc.out;
  }
  EXPECT_EQ(t::read_file(calls).find("delete"), std::string::npos) << t::read_file(calls);
  json many = scenario(port, "2s", json::array({faults[0]}));
  t::write_file(d.path() / "m.json", many.dump());
  auto rm = t::run(t::bin() + " run " + (d.path() / "m.json").string() + " --max-fault-targets 1 --out " +
                   (d.path() / "runs5").string() + " 2>&1");
  EXPECT_EQ(rm.exit_code, 3) << rm.out;
  EXPECT_NE(rm.out.find("resolved 2 targets: refused: more than the cap of 1"), std::string::npos) << rm.out;
  EXPECT_EQ(t::read_file(calls).find("docker pause"), std::string::npos) << t::read_file(calls);
}

// Issue #24: a pid, a container, a path, a context and an interface outside the operator's
// allowlist are each refused before anything starts (exit 2, one line each naming the scenario
// path and the flag that would allow it), dry run or not; a snapshot of the victim process,
// iptables and qdiscs (in a network namespace of the test's own), the backends' calls and the
// files shows nothing changed.
TEST(faults_cli, targets_outside_the_allowlist_are_refused_and_nothing_changes) {
  t::temp_dir d;
  env_guard idx("SYNCSTORM_LEDGER_INDEX", (d.path() / "index").string());
  fs::path calls = d.path() / "calls.log";
  write_fakes(d.path() / "bin", calls);
  env_guard path("PATH", (d.path() / "bin").string() + ":" + t::env_or("PATH", "/usr/bin:/bin"));
  fs::create_directories(d.path() / "volume");
  int port = t::free_port();
  t::child victim("exec sleep 1000");
  json faults = {
      {{"name", "stop-it"}, {"kind", "pause"}, {"target", {{"pid", victim.pid()}}}, {"at", "200ms"}, {"for", "1s"}},
      {{"name", "every-container"},
       {"kind", "kill"},
       {"target", {{"container", "*"}, {"pick", "all"}}},
       {"at", "200ms"}},
      {{"name", "fill"},
       {"kind", "disk_fill"},
       {"volume", (d.path() / "volume").string()},
       {"percent", "100%"},
       {"at", "200ms"},
       {"for", "1s"}},
      {{"name", "prod"},
       {"kind", "kill"},
       {"target", {{"selector", {{"context", "prod-eu"}, {"namespace", "shop"}, {"labels", {{"app", "shop"}}}}}}},
       {"at", "200ms"}}};
  json doc = scenario(port, "2s", faults);
  doc["capture"] = {{"interfaces", {"lo", "eth9"}}};
  t::write_file(d.path() / "s.json", doc.dump());
  auto files = [&] {
    std::string out;
    for (auto& e : fs::recursive_directory_iterator(d.path()))
      out += e.path().string() + " " + (e.is_regular_file() ? std::to_string(e.file_size()) : "d") + "\n";
    return out;
  };
  const std::string before_files = files();
  // Each run in a network namespace only it sees, which has the interface eth9 (a veth pair):
  // iptables and qdiscs snapshotted there before and after.
  auto in_netns = [&](const std::string& args) {
    std::string script =
        "PATH=\"$PATH:/usr/sbin:/sbin\"; ip link set lo up; ip link add eth9 type veth peer name eth9p || exit 99; "
        "snap() { iptables-save | grep -v '^#'; ip6tables-save | grep -v '^#'; tc qdisc show; }; "
        "snap > " +
        (d.path() / "net-before").string() + "; " + t::bin() + " run " + (d.path() / "s.json").string() + " " + args +
        " 2>&1; rc=$?; snap > " + (d.path() / "net-after").string() + "; exit $rc";
    t::write_file(d.path() / "run.sh", script);
    return t::run("unshare --net sh " + (d.path() / "run.sh").string());
  };
  auto r = in_netns("--out " + (d.path() / "runs").string());
  EXPECT_EQ(r.exit_code, 2) << r.out;
  for (
      const std::string& line :
      {"faults[0].target.pid: pid " + std::to_string(victim.pid()) +
           ": refused: not in the operator's allowlist (allow it with --allow-pid " + std::to_string(victim.pid()),
       std::string(
           "faults[1].target.container: container \"*\": refused: not in the operator's allowlist (allow it with --allow-container '*'"),
       "faults[2].volume: path " + fs::weakly_canonical(d.path() / "volume").string() + ": refused",
       std::string("faults[3].target.selector.context: kubectl context \"prod-eu\": refused"),
       std::string("faults[3].target.selector.namespace: kubectl namespace \"shop\" (context prod-eu): refused"),
       std::string("capture.interfaces[1]: interface \"eth9\": refused")})
    EXPECT_NE(r.out.find(line), std::string::npos) << line << "\n" << r.out;
  EXPECT_EQ(r.out.find("capture.interfaces[0]"), std::string::npos) << "lo is loopback: allowed";
  EXPECT_EQ(t::read_file(d.path() / "net-before"), t::read_file(d.path() / "net-after"));
  EXPECT_FALSE(t::read_file(d.path() / "net-before").empty())
      << "the snapshot saw nothing: iptables-save or tc missing?";
  EXPECT_NE(proc_state(victim.pid()), 'T');
  EXPECT_NE(proc_state(victim.pid()), '?') << "the victim is gone";
  EXPECT_FALSE(fs::exists(calls)) << t::read_file(calls);
  EXPECT_FALSE(fs::exists(d.path() / "runs"));
  std::string after_files = files();
  for (const char* f : {"net-before", "net-after", "run.sh"}) {
    std::string p = (d.path() / f).string();
    auto at = after_files.find(p + " ");
    if (at != std::string::npos) after_files.erase(at, after_files.find('\n', at) - at + 1);
  }
  auto at = before_files.find((d.path() / "run.sh").string() + " ");
  EXPECT_EQ(at, std::string::npos);
  EXPECT_EQ(before_files, after_files);
  EXPECT_TRUE(fs::is_empty(d.path() / "volume"));

  // --dry-run: the same refusals, exit 2.
  auto dry = in_netns("--dry-run");
  EXPECT_EQ(dry.exit_code, 2) << dry.out;
  EXPECT_NE(dry.out.find("faults[0].target.pid: pid " + std::to_string(victim.pid()) + ": refused"), std::string::npos)
      << dry.out;

  // Allowed by the operator, the dry run shows the plan and the allowlist in force.
  auto ok =
      in_netns("--dry-run --allow-pid " + std::to_string(victim.pid()) + " --allow-container '*' --allow-path " +
               (d.path() / "volume").string() +
               " --allow-context prod-eu --allow-namespace prod-eu/shop --allow-interface eth9 --max-fault-targets 3");
  EXPECT_EQ(ok.exit_code, 0) << ok.out;
  EXPECT_NE(ok.out.find("allowlist (beyond the run's own parts): containers *; contexts prod-eu; interfaces eth9; "
                        "namespaces prod-eu/shop; paths " +
                        (d.path() / "volume").string() + "; pids " + std::to_string(victim.pid()) + ";"),
            std::string::npos)
      << ok.out;
  EXPECT_NE(ok.out.find("at most 3 targets a fault (from flags)"), std::string::npos) << ok.out;
  EXPECT_FALSE(fs::exists(calls)) << t::read_file(calls);
}

// Issue #24: a disk_fill of the very filesystem that holds the run directory (a 16 MiB tmpfs here,
// filled to 100%) is still reverted and recorded: the ledger's reserved space takes the revert's
// records, and the run ends with its report.
TEST(faults_cli, a_disk_fill_of_the_run_directorys_own_filesystem_still_reverts) {
  t::temp_dir d;
  env_guard idx("SYNCSTORM_LEDGER_INDEX", (d.path() / "index").string());
  const fs::path mnt = d.path() / "fs";
  fs::create_directories(mnt);
  auto m = t::run("mount -t tmpfs -o size=16m syncstorm-test " + mnt.string() + " 2>&1");
  ASSERT_EQ(m.exit_code, 0) << m.out;
  struct unmount {
    fs::path at;
    ~unmount() { t::run("umount -l " + at.string() + " 2>/dev/null"); }
  } guard{mnt};
  // The fill's directory has a ~3,000-byte path, which the records written while the disk is full
  // (apply done, revert done) each name: together they cross a page of the ledger for certain,
  // so without space reserved beforehand they could not be written.
  fs::path fill = mnt / "fill";
  for (int i = 0; i < 12; ++i) fill /= std::string(240, static_cast<char>('a' + i));
  fs::create_directories(fill);
  int port = t::free_port();
  t::recording_http_server server(port, d.path());
  json doc = scenario(port, "4s",
                      {{{"name", "fill-it"},
                        {"kind", "disk_fill"},
                        {"volume", fill.string()},
                        {"percent", "100%"},
                        {"at", "1s"},
                        {"for", "1500ms"}}});
  t::write_file(d.path() / "s.json", doc.dump());
  auto r = t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --allow-path " + (mnt / "fill").string() +
                  " --out " + (mnt / "runs").string() + " 2>&1");
  EXPECT_TRUE(fs::is_empty(fill)) << "the fill file is still there\n" << r.out;
  auto dir = t::only_run_dir(mnt / "runs");
  auto v = syncstorm::injectors::read_ledger((dir / "ledger.jsonl").string());
  ASSERT_EQ(v.faults.size(), 1u) << t::read_file(dir / "ledger.jsonl");
  EXPECT_TRUE(v.faults[0].apply_ok) << v.faults[0].error;
  EXPECT_TRUE(v.faults[0].reverted) << t::read_file(dir / "ledger.jsonl");
  EXPECT_TRUE(v.run_end);
  EXPECT_TRUE(fs::exists(dir / "report.json")) << r.out;
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST(faults_cli, abort_on_a_metric_and_on_a_probe_revert_and_exit_1) {
  t::temp_dir d;
  env_guard idx("SYNCSTORM_LEDGER_INDEX", (d.path() / "index").string());
  int port = t::free_port();
  t::recording_http_server server(port, d.path());
  t::child victim("exec sleep 1000");
  env_guard allow("SYNCSTORM_ALLOW_PIDS", std::to_string(victim.pid()));
  json pause = {
      {{"name", "stop-it"}, {"kind", "pause"}, {"target", {{"pid", victim.pid()}}}, {"at", "500ms"}, {"for", "20s"}}};
  // Metric: more than 100 requests (at 50/s: about 2 s in).
  json doc = scenario(port, "30s", pause,
                      {{{"name", "too-many"}, {"metric", "http.requests"}, {"stat", "count"}, {"max", 100}}});
  t::write_file(d.path() / "m.json", doc.dump());
  auto t0 = std::chrono::steady_clock::now();
  auto r =
      t::run(t::bin() + " run " + (d.path() / "m.json").string() + " --out " + (d.path() / "runs").string() + " 2>&1");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.exit_code, 1) << r.out;
  EXPECT_LT(took, std::chrono::seconds(15));
  EXPECT_NE(proc_state(victim.pid()), 'T') << "the pause was not reverted";
  json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  EXPECT_EQ(rep["outcome"], "fail");
  bool named = false;
  for (const auto& v : rep["verdicts"]) named |= v["name"] == "too-many" && v["pass"] == false;
  EXPECT_TRUE(named) << rep["verdicts"].dump();
  EXPECT_NE(rep["reason"].get<std::string>().find("too-many"), std::string::npos);
  EXPECT_FALSE(rep["faults"][0]["reverted_at"].is_null());

  // Probe: a port nobody listens on, every 200 ms, two failures.
  int dead = t::free_port();
  json doc2 = scenario(port, "30s", pause,
                       {{{"name", "health"},
                         {"probe",
                          {{"url", "http://127.0.0.1:" + std::to_string(dead) + "/healthz"},
                           {"every", "200ms"},
                           {"timeout", "500ms"},
                           {"fail_after", 2}}}}});
  t::write_file(d.path() / "p.json", doc2.dump());
  t0 = std::chrono::steady_clock::now();
  auto r2 =
      t::run(t::bin() + " run " + (d.path() / "p.json").string() + " --out " + (d.path() / "runs2").string() + " 2>&1");
  EXPECT_EQ(r2.exit_code, 1) << r2.out;
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
  EXPECT_NE(
      r2.out.find("abort: health: probe http://127.0.0.1:" + std::to_string(dead) + "/healthz failed 2 times in a row"),
      std::string::npos)
      << r2.out;
  EXPECT_NE(proc_state(victim.pid()), 'T');
  json rep2 = json::parse(t::read_file(t::only_run_dir(d.path() / "runs2") / "report.json"));
  bool probe_named = false;
  for (const auto& v : rep2["verdicts"]) probe_named |= v["name"] == "health" && v["pass"] == false;
  EXPECT_TRUE(probe_named) << rep2["verdicts"].dump();

  // A healthy probe never fires.
  json doc3 = scenario(port, "2s", json::array(),
                       {{{"name", "health"},
                         {"probe", {{"url", "http://127.0.0.1:" + std::to_string(port) + "/"}, {"every", "200ms"}}}}});
  doc3.erase("faults");
  t::write_file(d.path() / "h.json", doc3.dump());
  auto r3 =
      t::run(t::bin() + " run " + (d.path() / "h.json").string() + " --out " + (d.path() / "runs3").string() + " 2>&1");
  EXPECT_EQ(r3.exit_code, 0) << r3.out;
}
