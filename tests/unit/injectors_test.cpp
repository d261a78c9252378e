// The fault core without a lab: the schedule (at/for, every/count/jitter with the seed,
// overlap), pick (one, n, percent, all, random with the seed), target resolution on a planned
// lab, the ledger (write, replay, unreverted), the allowlist, the command runner, and a revert
// from the ledger alone of a real stopped process, plus the unreverted-run index; the abort
// probe (plain, and https against a private CA through target.tls, down to `syncstorm run`).
#include "core/plan.hpp"
#include "injectors/abort_watch.hpp"
#include "injectors/command.hpp"
#include "injectors/faults.hpp"
#include "injectors/ledger.hpp"
#include "injectors/reaper.hpp"
#include "injectors/steps.hpp"
#include "injectors/targets.hpp"
#include "labstack/lab_state.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

using json = nlohmann::json;
namespace inj = syncstorm::injectors;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

syncstorm::scenario scenario_of(json faults, json lab = {{"pods", 4}, {"replica", true}}) {
  json doc = {
      {"name", "s"},
      {"duration", "60s"},
      {"seed", 7},
      {"target", {{"lab", lab}}},
      {"load", {{{"name", "l"}, {"model", "http"}, {"phases", {{{"name", "p"}, {"for", "60s"}, {"rate", 10}}}}}}},
      {"faults", faults}};
  auto r = syncstorm::load_scenario(doc, {});
  if (!r.errors.empty()) throw std::runtime_error(r.errors[0]);
  return *r.value;
}

}  // namespace

TEST(fault_schedule, at_and_for_and_every_with_count_and_seeded_jitter) {
  auto s = scenario_of({{{"name", "k"}, {"kind", "kill"}, {"target", {{"pods", "pod-1"}}}, {"at", "5s"}, {"for", "3s"}},
                        {{"name", "p"},
                         {"kind", "pause"},
                         {"target", {{"pods", "pod-*"}}},
                         {"at", "6s"},
                         {"for", "2s"},
                         {"every", "10s"},
                         {"count", 3},
                         {"jitter", "1s"}}});
  auto p = syncstorm::make_plan(s);
  ASSERT_EQ(p.faults.size(), 4u);
  EXPECT_EQ(p.faults[0].name, "k");
  EXPECT_EQ(p.faults[0].at_us, 5'000'000);
  EXPECT_EQ(*p.faults[0].revert_us, 8'000'000);
  // Overlap: the pause at ~6 s fires while the kill (5-8 s) is applied.
  EXPECT_EQ(p.faults[1].name, "p");
  EXPECT_LT(p.faults[1].at_us, *p.faults[0].revert_us);
  for (int i = 0; i < 3; ++i) {
    const auto& f = p.faults[1 + i];
    EXPECT_EQ(f.occurrence, i);
    EXPECT_GE(f.at_us, 6'000'000 + i * 10'000'000 - 1'000'000);
    EXPECT_LE(f.at_us, 6'000'000 + i * 10'000'000 + 1'000'000);
    EXPECT_EQ(*f.revert_us, f.at_us + 2'000'000);
  }
  // The same seed gives the same jitter; another seed another.
  auto again = syncstorm::make_plan(s);
  for (std::size_t i = 0; i < p.faults.size(); ++i) EXPECT_EQ(p.faults[i].at_us, again.faults[i].at_us);
  s.seed = 8;
  auto other = syncstorm::make_plan(s);
  bool differs = false;
  for (std::size_t i = 1; i < p.faults.size(); ++i) differs |= p.faults[i].at_us != other.faults[i].at_us;
  EXPECT_TRUE(differs);
}

TEST(fault_pick, one_all_n_percent_random_seeded) {
  std::vector<std::string> c = {"pod-0", "pod-1", "pod-2", "pod-3", "pod-4",
                                "pod-5", "pod-6", "pod-7", "pod-8", "pod-9"};
  EXPECT_EQ(inj::pick_targets(c, "one", "all", 1), std::vector<std::string>{"pod-0"});
  EXPECT_EQ(inj::pick_targets(c, "all", "one", 1), c);
  EXPECT_EQ(inj::pick_targets(c, nullptr, "all", 1), c);
  EXPECT_EQ(inj::pick_targets(c, nullptr, "one", 1).size(), 1u);
  EXPECT_EQ(inj::pick_targets(c, {{"n", 3}}, "one", 1).size(), 3u);
  EXPECT_EQ(inj::pick_targets(c, {{"n", 30}}, "one", 1), c);
  EXPECT_EQ(inj::pick_targets(c, {{"percent", 25}}, "one", 1).size(), 3u);    // ceil(2.5)
  EXPECT_EQ(inj::pick_targets(c, {{"percent", "1%"}}, "one", 1).size(), 1u);  // at least one
  EXPECT_TRUE(inj::pick_targets({}, "all", "all", 1).empty());
  // Random: repeatable with the seed, spread over the candidates across seeds.
  auto a = inj::pick_targets(c, {{"n", 4}}, "one", 42), b = inj::pick_targets(c, {{"n", 4}}, "one", 42);
  EXPECT_EQ(a, b);
  std::set<std::string> seen;
  for (std::uint64_t seed = 0; seed < 200; ++seed) seen.insert(inj::pick_targets(c, "random", "one", seed)[0]);
  EXPECT_EQ(seen.size(), c.size());
  // Picks keep the candidates' order and have no duplicates.
  auto n = inj::pick_targets(c, {{"n", 5}}, "one", 9);
  EXPECT_TRUE(std::is_sorted(n.begin(), n.end()));
  EXPECT_EQ(std::set<std::string>(n.begin(), n.end()).size(), 5u);
  EXPECT_EQ(inj::occurrence_seed(7, "k", 0), inj::occurrence_seed(7, "k", 0));
  EXPECT_NE(inj::occurrence_seed(7, "k", 0), inj::occurrence_seed(7, "k", 1));
  EXPECT_TRUE(inj::glob_match("pod-*", "pod-12"));
  EXPECT_FALSE(inj::glob_match("pod-?", "pod-12"));
}

TEST(fault_targets, resolved_on_a_planned_lab_with_undo_complete_before_apply) {
  auto s = scenario_of(
      {{{"name", "k"},
        {"kind", "kill"},
        {"target", {{"pods", "pod-*"}, {"pick", {{"n", 2}}}, {"restart", false}}},
        {"at", "5s"}},
       {{"name", "p"}, {"kind", "pause"}, {"target", {{"role", "db-primary"}}}, {"at", "5s"}, {"for", "2s"}},
       {{"name", "r"}, {"kind", "rolling_restart"}, {"target", {{"pods", "pod-*"}}}, {"at", "5s"}},
       {{"name", "d"}, {"kind", "disk_fill"}, {"volume", "db"}, {"leave", "1MiB"}, {"at", "5s"}},
       {{"name", "f"}, {"kind", "db_failover"}, {"at", "5s"}}});
  inj::fault_env env;
  env.lab = inj::lab_facts::from_scenario(s.target["lab"]);
  env.seed = s.seed;
  env.dry_run = true;
  auto k = inj::prepare_fault(s.faults[0], 0, env);
  ASSERT_EQ(k.targets.size(), 2u);
  ASSERT_EQ(k.apply.size(), 2u);
  EXPECT_EQ(k.apply[0]["op"], "lab_kill");
  EXPECT_EQ(k.apply[0]["restart"], false);
  ASSERT_EQ(k.undo.size(), 2u);
  EXPECT_EQ(k.undo[0]["op"], "lab_start_unit");
  EXPECT_FALSE(k.heals);  // no restart: held until revert
  EXPECT_EQ(k.target_keys, std::vector<std::string>{"lab-<lab id>"});
  // The same occurrence picks the same pods; the seed decides.
  EXPECT_EQ(inj::prepare_fault(s.faults[0], 0, env).targets, k.targets);

  auto p = inj::prepare_fault(s.faults[1], 0, env);
  ASSERT_EQ(p.apply.size(), 1u);
  EXPECT_EQ(p.apply[0]["signal_name"], "SIGSTOP");
  EXPECT_EQ(p.apply[0]["group"], true);
  EXPECT_EQ(p.undo[0]["signal_name"], "SIGCONT");
  EXPECT_EQ(p.targets[0]["name"], "db-0");

  auto r = inj::prepare_fault(s.faults[2], 0, env);
  EXPECT_EQ(r.targets.size(), 4u);  // all pods by default
  EXPECT_EQ(r.apply.size(), 12u);   // kill, wait ready, wait LB up per pod
  EXPECT_TRUE(r.heals);

  auto d = inj::prepare_fault(s.faults[3], 0, env);
  EXPECT_EQ(d.apply[0]["op"], "fill");
  EXPECT_NE(d.apply[0]["path"].get<std::string>().find("/db-0/data/.syncstorm-fill-"), std::string::npos);
  EXPECT_EQ(d.undo[0]["op"], "remove_file");
  EXPECT_EQ(d.undo[0]["path"], d.apply[0]["path"]);

  auto f = inj::prepare_fault(s.faults[4], 0, env);
  EXPECT_EQ(f.apply[0]["op"], "lab_promote");
  EXPECT_TRUE(f.irreversible);
  EXPECT_TRUE(f.undo.empty());
  EXPECT_NE(inj::describe_step(p.apply[0]).find("SIGSTOP"), std::string::npos);
}

TEST(fault_targets, a_named_pod_missing_from_the_lab_is_an_error_naming_it) {
  auto s = scenario_of({{{"name", "k"}, {"kind", "kill"}, {"target", {{"pods", {"pod-9"}}}}, {"at", "5s"}}});
  inj::fault_env env;
  env.lab = inj::lab_facts::from_scenario(s.target["lab"]);
  env.dry_run = true;
  try {
    inj::prepare_fault(s.faults[0], 0, env);
    FAIL() << "expected a fault_error";
  } catch (const inj::fault_error& e) {
    EXPECT_NE(std::string(e.what()).find("\"pod-9\""), std::string::npos) << e.what();
  }
}

TEST(fault_validation, cross_checks_name_the_path) {
  json doc = {
      {"name", "s"},
      {"duration", "60s"},
      {"target", {{"lab", {{"pods", 2}}}}},
      {"load", {{{"name", "l"}, {"model", "http"}, {"phases", {{{"name", "p"}, {"for", "60s"}, {"rate", 10}}}}}}},
      {"faults",
       {{{"name", "a"}, {"kind", "pause"}, {"target", {{"role", "clients"}}}, {"at", "1s"}},
        {{"name", "b"},
         {"kind", "kill"},
         {"target", {{"selector", {{"labels", {{"app", "x"}}}}}, {"restart", false}}},
         {"at", "1s"}},
        {{"name", "c"}, {"kind", "disk_fill"}, {"target", {{"container", "web"}}}, {"leave", "1MiB"}, {"at", "1s"}},
        {{"name", "d"}, {"kind", "disk_fill"}, {"volume", "relative"}, {"percent", 90}, {"at", "1s"}}}}};
  auto errs = syncstorm::validate_document(doc);
  std::string all;
  for (auto& e : errs) all += e + "\n";
  EXPECT_NE(all.find("scenario.faults[0].target.role: found \"clients\""), std::string::npos) << all;
  EXPECT_NE(all.find("scenario.faults[1].target.restart: found false"), std::string::npos) << all;
  EXPECT_NE(all.find("scenario.faults[2].volume: found nothing"), std::string::npos) << all;
  EXPECT_NE(all.find("scenario.faults[3].volume: found \"relative\""), std::string::npos) << all;
}

// An empty label selector is `-l ""`: every pod of the namespace (and with rolling_restart, every
// deployment). Refused by validation (exit 2) and again when a fault is prepared.
TEST(fault_validation, an_empty_label_selector_is_refused) {
  json doc = {
      {"name", "s"},
      {"duration", "60s"},
      {"target", {{"endpoints", {{"http", "http://127.0.0.1:1"}}}}},
      {"load", {{{"name", "l"}, {"model", "http"}, {"phases", {{{"name", "p"}, {"for", "60s"}, {"rate", 10}}}}}}},
      {"faults",
       {{{"name", "roll"},
         {"kind", "rolling_restart"},
         {"target", {{"selector", {{"labels", json::object()}}}}},
         {"at", "1s"}}}}};
  auto errs = syncstorm::validate_document(doc);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(
      errs[0],
      "scenario.faults[0].target.selector.labels: found {}; expected at least one label (an empty selector matches every pod of the namespace)");
  syncstorm::fault_entry f;
  f.name = "roll";
  f.kind = "rolling_restart";
  f.target = {{"selector", {{"labels", json::object()}, {"context", "ctx"}}}};
  f.fields = {{"name", "roll"}, {"kind", "rolling_restart"}, {"target", f.target}, {"at", "1s"}};
  inj::fault_env env;
  env.dry_run = true;
  try {
    inj::prepare_fault(f, 0, env);
    ADD_FAILURE() << "an empty selector was prepared";
  } catch (const inj::fault_error& e) {
    EXPECT_NE(std::string(e.what()).find("target.selector.labels: found none"), std::string::npos) << e.what();
  }
}

TEST(fault_ledger, write_replay_and_unreverted) {
  t::temp_dir d;
  std::string path = d.str() + "/ledger.jsonl";
  {
    inj::ledger l(path);
    l.append({{"step", "controller"}, {"pid", 1234}, {"start_time", 99}});
    l.append({{"step", "apply"},
              {"phase", "intent"},
              {"id", "a#0"},
              {"fault", "a"},
              {"kind", "pause"},
              {"undo", {{{"op", "remove_file"}, {"path", "/nonexistent"}}}},
              {"ttl_mono_us", 5}});
    l.append({{"step", "apply"}, {"phase", "done"}, {"id", "a#0"}, {"ok", true}});
    l.append({{"step", "apply"},
              {"phase", "intent"},
              {"id", "b#0"},
              {"fault", "b"},
              {"kind", "kill"},
              {"undo", json::array()}});
    l.append({{"step", "revert"}, {"phase", "intent"}, {"id", "b#0"}});
    l.append({{"step", "revert"}, {"phase", "done"}, {"id", "b#0"}, {"ok", true}});
    l.append({{"step", "apply"},
              {"phase", "intent"},
              {"id", "c#0"},
              {"fault", "c"},
              {"kind", "kill"},
              {"undo", json::array()}});
    l.append({{"step", "revert"}, {"phase", "done"}, {"id", "c#0"}, {"ok", false}, {"error", "boom"}});
  }
  // A torn last line (a crash mid-write) is skipped, not fatal.
  { std::ofstream(path, std::ios::app) << "{\"step\":\"apply\",\"pha"; }
  auto v = inj::read_ledger(path);
  EXPECT_EQ(v.faults.size(), 3u);
  EXPECT_EQ(v.bad_lines.size(), 1u);
  EXPECT_EQ(*v.controller_pid, 1234);
  auto left = v.unreverted();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0]->id, "a#0");
  EXPECT_TRUE(left[0]->apply_ok);
  EXPECT_EQ(left[0]->ttl_mono_us, 5);
  EXPECT_EQ(left[1]->id, "c#0");
  EXPECT_EQ(left[1]->error, "boom");
  auto lines = t::read_file(path);
  EXPECT_NE(lines.find("\"by\":\"controller\""), std::string::npos);
}

TEST(fault_safety, the_allowlist_refuses_init_ourselves_ancestors_and_unlisted_contexts) {
  EXPECT_NE(inj::refuse_pid(1).find("init"), std::string::npos);
  EXPECT_NE(inj::refuse_pid(::getpid()).find("ancestors"), std::string::npos);
  EXPECT_NE(inj::refuse_pid(::getppid()).find("ancestors"), std::string::npos);
  EXPECT_NE(inj::refuse_pid(4'000'000).find("no such process"), std::string::npos);
  pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  EXPECT_EQ(inj::refuse_pid(child), "");
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  inj::safety_policy p;
  EXPECT_NE(inj::refuse_context("prod", p).find("not in the allowlist"), std::string::npos);
  p.kube_contexts = {"kind-lab"};
  EXPECT_EQ(inj::refuse_context("kind-lab", p), "");
  ::setenv("DOCKER_HOST", "tcp://10.1.2.3:2376", 1);
  EXPECT_NE(inj::refuse_docker_host(p).find("refused"), std::string::npos);
  ::setenv("DOCKER_HOST", "unix:///var/run/docker.sock", 1);
  EXPECT_EQ(inj::refuse_docker_host(p), "");
  ::unsetenv("DOCKER_HOST");
}

TEST(fault_command, exit_codes_output_and_missing_programs_in_one_line) {
  auto ok = inj::run_command({"sh", "-c", "echo hello"});
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.output, "hello\n");
  auto bad = inj::run_command({"sh", "-c", "echo first; echo 'it broke' >&2; exit 4"});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.exit_code, 4);
  EXPECT_NE(bad.error.find("exit 4: it broke"), std::string::npos) << bad.error;
  EXPECT_EQ(bad.error.find('\n'), std::string::npos);
  auto missing = inj::run_command({"syncstorm-no-such-program"});
  EXPECT_NE(missing.error.find("cannot run"), std::string::npos) << missing.error;
  auto slow = inj::run_command({"sleep", "10"}, std::chrono::milliseconds(200));
  EXPECT_NE(slow.error.find("no answer within 200 ms"), std::string::npos) << slow.error;
  EXPECT_EQ(inj::command_line({"docker", "exec", "a b", "it's"}), "docker exec 'a b' 'it'\\''s'");
}

TEST(fault_revert, a_stopped_process_is_continued_from_the_ledger_alone) {
  t::temp_dir d;
  ::setenv("SYNCSTORM_LEDGER_INDEX", (d.path() / "index").c_str(), 1);
  std::string run = (d.path() / "run").string();
  std::filesystem::create_directories(run);
  pid_t child = ::fork();
  if (child == 0) {
    for (;;) ::pause();
  }
  ::kill(child, SIGSTOP);
  for (int i = 0; i < 100 && inj::read_proc(child)->state != 'T'; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  auto info = inj::read_proc(child);
  ASSERT_TRUE(info);
  {
    inj::ledger l(run + "/ledger.jsonl");
    l.append({{"step", "controller"}, {"pid", 4'000'000}, {"start_time", 1}});  // long gone
    l.append({{"step", "apply"},
              {"phase", "intent"},
              {"id", "p#0"},
              {"fault", "p"},
              {"kind", "pause"},
              {"targets", {{{"name", "child"}}}},
              {"undo",
               {{{"op", "signal"},
                 {"pid", child},
                 {"start_time", info->start_time},
                 {"group", false},
                 {"signal", SIGCONT},
                 {"signal_name", "SIGCONT"},
                 {"what", "child"}}}}});
    l.append({{"step", "apply"}, {"phase", "done"}, {"id", "p#0"}, {"ok", true}});
  }
  inj::index_add({"pid-" + std::to_string(child)}, run);
  std::string refused = inj::refuse_unreverted({"pid-" + std::to_string(child)});
  EXPECT_NE(refused.find("syncstorm revert " + std::filesystem::absolute(run).string()), std::string::npos) << refused;
  EXPECT_NE(refused.find("pause child"), std::string::npos) << refused;
  EXPECT_EQ(inj::refuse_unreverted({"lab"}), "");
  // The stopped state shows up in /proc (waitpid with WUNTRACED would also see it).
  EXPECT_EQ(inj::read_proc(child)->state, 'T');
  // Issue #24: a ledger whose run the index does not list (planted, or from another host) never
  // gets its undo steps run, by `revert` or by a reaper.
  {
    std::ostringstream o, e;
    EXPECT_EQ(inj::revert_run(run, o, e), 2);
    EXPECT_NE(e.str().find("does not list; expected a run that syncstorm made on this host"), std::string::npos)
        << e.str();
    EXPECT_EQ(inj::read_proc(child)->state, 'T');
    testing::internal::CaptureStderr();
    EXPECT_EQ(inj::reaper_main(run), 2);
    EXPECT_NE(testing::internal::GetCapturedStderr().find("not a run of this host"), std::string::npos);
    EXPECT_EQ(inj::read_proc(child)->state, 'T');
  }
  inj::index_add_run(run);  // what the controller does when it creates the ledger
  std::ostringstream out, err;
  EXPECT_EQ(inj::revert_run(run, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("reverted p#0"), std::string::npos) << out.str();
  auto after = inj::read_proc(child);
  ASSERT_TRUE(after);
  EXPECT_NE(after->state, 'T');
  std::ostringstream out2, err2;
  EXPECT_EQ(inj::revert_run(run, out2, err2), 0);
  EXPECT_EQ(out2.str(), "nothing to revert\n");
  EXPECT_EQ(inj::refuse_unreverted({"pid-" + std::to_string(child)}), "");
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::unsetenv("SYNCSTORM_LEDGER_INDEX");
}

// Network faults on the run's proxy (target.proxy) and on a lab's pods-db through tc: the steps
// name everything a revert needs (the proxy's control socket; namespace, device and handle).
TEST(fault_targets, network_faults_on_the_runs_proxy_and_through_tc) {
  json doc = {
      {"name", "s"},
      {"duration", "60s"},
      {"seed", 7},
      {"target",
       {{"endpoints", {{"http", "http://127.0.0.1:8080"}, {"ws", "ws://127.0.0.1:8081"}}}, {"proxy", json::object()}}},
      {"load", {{{"name", "l"}, {"model", "http"}, {"phases", {{{"name", "p"}, {"for", "60s"}, {"rate", 10}}}}}}},
      {"faults",
       {{{"name", "lat"}, {"kind", "latency"}, {"latency", "200ms"}, {"at", "5s"}},
        {{"name", "err"}, {"kind", "http_error"}, {"percent", 10}, {"at", "5s"}}}}};
  auto r = syncstorm::load_scenario(doc, {});
  ASSERT_TRUE(r.errors.empty()) << r.errors[0];
  inj::fault_env env;
  env.proxy = inj::proxy_facts{"/run/x/proxy/control.sock", {"http", "ws"}, {"http"}};
  env.run_tag = "run1";
  auto lat = inj::prepare_fault(r.value->faults[0], 0, env);
  ASSERT_EQ(lat.apply.size(), 2u);  // both paths
  EXPECT_EQ(lat.apply[0]["op"], "proxy_fault");
  EXPECT_EQ(lat.apply[0]["control"], "/run/x/proxy/control.sock");
  EXPECT_EQ(lat.apply[0]["fault"]["latency_us"], 200000);
  ASSERT_EQ(lat.undo.size(), 2u);
  EXPECT_EQ(lat.undo[1]["op"], "proxy_clear");
  EXPECT_EQ(lat.undo[1]["path"], "ws");
  EXPECT_TRUE(lat.target_keys.empty());  // the proxy is the run's own: nothing to refuse on
  auto err = inj::prepare_fault(r.value->faults[1], 0, env);
  ASSERT_EQ(err.apply.size(), 1u);  // http only
  EXPECT_EQ(err.apply[0]["path"], "http");
  // Without the run's proxy there is nowhere to put it.
  inj::fault_env none;
  EXPECT_THROW(inj::prepare_fault(r.value->faults[0], 0, none), inj::fault_error);

  auto s = scenario_of(
      {{{"name", "bw"}, {"kind", "bandwidth"}, {"path", "pods-db"}, {"rate", "4Mbit/s"}, {"via", "tc"}, {"at", "5s"}}},
      {{"pods", 2}});
  inj::fault_env lab_env;
  lab_env.lab = inj::lab_facts::from_scenario(s.target["lab"]);
  lab_env.dry_run = true;
  auto bw = inj::prepare_fault(s.faults[0], 0, lab_env);
  ASSERT_EQ(bw.apply.size(), 4u);  // per pod: eth0 (up) and its host veth (down)
  EXPECT_EQ(bw.apply[0]["op"], "tc_shape");
  EXPECT_EQ(bw.apply[0]["dev"], "eth0");
  EXPECT_EQ(bw.apply[0]["rate"], "4000000bit");
  EXPECT_EQ(bw.undo[0]["op"], "tc_unshape");
  EXPECT_EQ(bw.undo[0]["handle"], bw.apply[0]["handle"]);
  EXPECT_NE(inj::describe_step(bw.apply[0]).find("u32 match ip dst"), std::string::npos)
      << inj::describe_step(bw.apply[0]);
}

namespace {

// Sets (or unsets, for nullptr) an environment variable for the scope.
struct scoped_env {
  std::string name;
  std::optional<std::string> old;
  scoped_env(const std::string& n, const char* v) : name(n) {
    if (const char* o = std::getenv(n.c_str())) old = o;
    if (v)
      ::setenv(n.c_str(), v, 1);
    else
      ::unsetenv(n.c_str());
  }
  ~scoped_env() {
    if (old)
      ::setenv(name.c_str(), old->c_str(), 1);
    else
      ::unsetenv(name.c_str());
  }
};

// No allow file from the machine (/etc/syncstorm/allow.json) leaks into these tests.
struct no_machine_allowlist {
  scoped_env file{"SYNCSTORM_ALLOW_FILE", nullptr};
  scoped_env pids{"SYNCSTORM_ALLOW_PIDS", nullptr};
  scoped_env contexts{"SYNCSTORM_ALLOW_CONTEXTS", nullptr};
  scoped_env cap{"SYNCSTORM_MAX_FAULT_TARGETS", nullptr};
};

}  // namespace

TEST(allowlist, nothing_outside_the_runs_own_parts_is_allowed_by_default) {
  inj::safety_policy p;
  EXPECT_NE(inj::refuse_pid_target("4242", p).find("--allow-pid 4242"), std::string::npos);
  EXPECT_NE(inj::refuse_pidfile("/run/sshd.pid", p).find("--allow-pidfile /run/sshd.pid"), std::string::npos);
  EXPECT_NE(inj::refuse_container("web-1", p).find("--allow-container web-1"), std::string::npos);
  EXPECT_NE(inj::refuse_container("*", p).find("--allow-container '*'"), std::string::npos);
  EXPECT_NE(inj::refuse_namespace("kind-lab", "shop", p).find("--allow-namespace kind-lab/shop"), std::string::npos);
  EXPECT_NE(inj::refuse_path("/", p).find("--allow-path /"), std::string::npos);
  EXPECT_NE(inj::refuse_interface("eth0", p).find("--allow-interface eth0"), std::string::npos);
  EXPECT_EQ(inj::refuse_interface("lo", p), "");
  EXPECT_EQ(inj::refuse_target_count(10, p), "");
  EXPECT_NE(inj::refuse_target_count(11, p).find("cap of 10"), std::string::npos);
}

TEST(allowlist, globs_paths_below_an_allowed_directory_and_no_escape_through_a_link) {
  t::temp_dir d;
  fs::create_directories(d.path() / "scratch" / "deep");
  fs::create_directories(d.path() / "elsewhere");
  fs::create_directory_symlink(d.path() / "elsewhere", d.path() / "scratch" / "link");
  inj::safety_policy p;
  p.paths = {(d.path() / "scratch").string()};
  p.containers = {"web-*"};
  p.namespaces = {"shop", "kind-lab/pay*"};
  p.pids = {"42*"};
  EXPECT_EQ(inj::refuse_path((d.path() / "scratch").string(), p), "");
  EXPECT_EQ(inj::refuse_path((d.path() / "scratch" / "deep").string(), p), "");
  EXPECT_NE(inj::refuse_path((d.path() / "scratch" / "link").string(), p), "") << "a link out of the allowed directory";
  EXPECT_NE(inj::refuse_path((d.path() / "scratch" / ".." / "elsewhere").string(), p), "");
  EXPECT_NE(inj::refuse_path((d.path() / "scratchpad").string(), p), "") << "a sibling sharing the prefix";
  EXPECT_EQ(inj::refuse_container("web-1", p), "");
  EXPECT_NE(inj::refuse_container("db", p), "");
  EXPECT_EQ(inj::refuse_namespace("any", "shop", p), "");
  EXPECT_EQ(inj::refuse_namespace("kind-lab", "payments", p), "");
  EXPECT_NE(inj::refuse_namespace("prod", "payments", p), "");
  EXPECT_EQ(inj::refuse_pid_target("4242", p), "");
  EXPECT_NE(inj::refuse_pid_target("1", p), "");
}

TEST(allowlist, the_operator_gives_it_by_flags_environment_and_a_trusted_file) {
  no_machine_allowlist clean;
  t::temp_dir d;
  inj::allow_flags f;
  f.pids = {"100,200"};
  f.containers = {"web-*"};
  f.max_targets = 3;
  scoped_env ctx("SYNCSTORM_ALLOW_CONTEXTS", "kind-lab, staging");
  std::vector<std::string> errors;
  auto p = inj::operator_policy(f, errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(p.pids, (std::vector<std::string>{"100", "200"}));
  EXPECT_EQ(p.kube_contexts, (std::vector<std::string>{"kind-lab", "staging"}));
  EXPECT_EQ(p.max_targets, 3u);
  json j = p.to_json();
  EXPECT_EQ(j["allow"]["containers"], json::array({"web-*"}));
  EXPECT_EQ(j["max_fault_targets"], 3);
  EXPECT_EQ(j["sources"], json::array({"flags", "$SYNCSTORM_ALLOW_CONTEXTS"}));

  // The file: merged; a bad entry, an unknown key, a link, a group-writable file are refused.
  fs::path file = d.path() / "allow.json";
  t::write_file(file, R"({"pids": [300], "paths": ["/mnt/scratch/"], "interfaces": ["eth1"], "max_fault_targets": 5})");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  inj::allow_flags ff;
  ff.file = file.string();
  errors.clear();
  auto pf = inj::operator_policy(ff, errors);
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(pf.pids, (std::vector<std::string>{"300"}));
  EXPECT_EQ(pf.paths, (std::vector<std::string>{"/mnt/scratch"}));
  EXPECT_EQ(pf.max_targets, 5u);
  auto refused = [&](const std::string& text, const std::string& expect) {
    t::write_file(file, text);
    fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
    std::vector<std::string> e;
    inj::operator_policy(ff, e);
    ASSERT_EQ(e.size(), 1u) << text;
    EXPECT_NE(e[0].find(expect), std::string::npos) << e[0];
  };
  refused(R"({"pid": [1]})", "pid: found an unknown key");
  refused(R"({"paths": ["relative/dir"]})", "paths[0]: found \"relative/dir\"; expected an absolute path");
  refused(R"({"pids": ["1; rm -rf /"]})", "expected a process id");
  refused(R"({"containers": "web"})", "containers: found string; expected an array");
  refused(R"({"max_fault_targets": 0})", "max_fault_targets: found 0");
  refused("not json", "found no JSON object");
  t::write_file(file, "{}");
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_write);
  errors.clear();
  inj::operator_policy(ff, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("writable by group or others"), std::string::npos) << errors[0];
  fs::permissions(file, fs::perms::owner_read | fs::perms::owner_write);
  fs::create_symlink(file, d.path() / "link.json");
  ff.file = (d.path() / "link.json").string();
  errors.clear();
  inj::operator_policy(ff, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("a symbolic link"), std::string::npos) << errors[0];
  ff.file = (d.path() / "missing.json").string();
  errors.clear();
  inj::operator_policy(ff, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("found nothing"), std::string::npos) << errors[0];

  inj::allow_flags bad;
  bad.paths = {"tmp"};
  errors.clear();
  inj::operator_policy(bad, errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].find("--allow-path: found \"tmp\"; expected an absolute path"), std::string::npos) << errors[0];
}

TEST(allowlist, a_scenarios_safety_keys_only_narrow) {
  inj::safety_policy p;
  p.kube_contexts = {"kind-*"};
  std::vector<std::string> errors;
  auto narrowed = p;
  inj::narrow_by_scenario(narrowed, {{"safety", {{"allow_contexts", {"kind-lab"}}}}}, errors);
  EXPECT_TRUE(errors.empty());
  EXPECT_EQ(narrowed.kube_contexts, (std::vector<std::string>{"kind-lab"}));
  EXPECT_NE(inj::refuse_context("kind-other", narrowed), "");
  EXPECT_TRUE(narrowed.narrowed);
  auto widened = p;
  inj::narrow_by_scenario(
      widened, {{"safety", {{"allow_contexts", {"prod-eu"}}, {"allow_docker_hosts", {"tcp://10.0.0.1:2376"}}}}},
      errors);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("safety.allow_contexts[0]: found \"prod-eu\", which the operator has not allowed"),
            std::string::npos)
      << errors[0];
  EXPECT_NE(errors[0].find("--allow-context"), std::string::npos) << errors[0];
  EXPECT_NE(errors[1].find("--allow-docker-host"), std::string::npos) << errors[1];
  EXPECT_NE(inj::refuse_context("prod-eu", widened), "");
}

namespace {

// A one-connection TCP server on loopback that answers with `reply(request)`: each returned piece
// is sent after `gap` (a drip feed when many). Stops by itself after `limit`.
class scripted_server {
 public:
  using script = std::function<std::vector<std::string>(const std::string& request)>;
  scripted_server(script s, std::chrono::milliseconds gap, std::chrono::milliseconds limit) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    ::listen(fd_, 4);
    th_ = std::thread([this, s, gap, limit] {
      const auto until = std::chrono::steady_clock::now() + limit;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(limit.count())) != 1) return;
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      char buf[4096];
      std::string req;
      while (req.find("\r\n\r\n") == std::string::npos && std::chrono::steady_clock::now() < until) {
        pollfd q{c, POLLIN, 0};
        if (::poll(&q, 1, 100) != 1) continue;
        auto n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        req.append(buf, static_cast<std::size_t>(n));
      }
      {
        std::lock_guard lock(mu_);
        request_ = req;
      }
      for (const auto& piece : s(req)) {
        if (std::chrono::steady_clock::now() >= until || stop_) break;
        if (::send(c, piece.data(), piece.size(), MSG_NOSIGNAL) < 0) break;
        std::this_thread::sleep_for(gap);
      }
      ::close(c);
    });
  }
  ~scripted_server() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    th_.join();
    ::close(fd_);
  }
  int port() const { return port_; }
  std::string request() {
    std::lock_guard lock(mu_);
    return request_;
  }

 private:
  int fd_ = -1, port_ = 0;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string request_;
  std::thread th_;
};

}  // namespace

TEST(abort_probe, userinfo_is_sent_as_basic_credentials_and_never_shown) {
  scripted_server srv(
      [](const std::string&) { return std::vector<std::string>{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"}; },
      std::chrono::milliseconds(0), std::chrono::seconds(10));
  std::string url = "http://probe:p%40ss@127.0.0.1:" + std::to_string(srv.port()) + "/healthz?deep=1";
  EXPECT_EQ(inj::http_probe(url, 3000), "");
  // base64("probe:p@ss")
  EXPECT_NE(srv.request().find("Authorization: Basic cHJvYmU6cEBzcw==\r\n"), std::string::npos) << srv.request();
  EXPECT_NE(srv.request().find("GET /healthz?deep=1 HTTP/1.1\r\n"), std::string::npos) << srv.request();
  EXPECT_EQ(inj::without_userinfo(url), "http://127.0.0.1:" + std::to_string(srv.port()) + "/healthz?deep=1");
  EXPECT_EQ(inj::without_userinfo("https://h/x@y"), "https://h/x@y");
  EXPECT_EQ(inj::http_probe("http://u:secret@[bad", 100).find("secret"), std::string::npos);
}

TEST(abort_probe, a_reply_drip_fed_or_without_a_status_line_fails_within_its_timeout) {
  // One byte every 200 ms: the 1 s timeout holds for the whole status line.
  scripted_server drip([](const std::string&) { return std::vector<std::string>(100, "H"); },
                       std::chrono::milliseconds(200), std::chrono::seconds(20));
  auto t0 = std::chrono::steady_clock::now();
  std::string why = inj::http_probe("http://127.0.0.1:" + std::to_string(drip.port()) + "/", 1000);
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(why.find("no status line within 1000 ms"), std::string::npos) << why;
  EXPECT_LT(took, std::chrono::milliseconds(2500));
  // 64 KiB without a line end: refused after 8 KiB, not read to the end.
  scripted_server flood([](const std::string&) { return std::vector<std::string>(64, std::string(1024, 'A')); },
                        std::chrono::milliseconds(0), std::chrono::seconds(20));
  why = inj::http_probe("http://127.0.0.1:" + std::to_string(flood.port()) + "/", 5000);
  EXPECT_NE(why.find("no status line in the first 8 KiB"), std::string::npos) << why;
  // A status line with control bytes is shown with them replaced, at most 200 bytes.
  scripted_server odd(
      [](const std::string&) {
        return std::vector<std::string>{"HTTP/1.1 503 \x1b[31mdown" + std::string(500, 'x') + "\r\n\r\n"};
      },
      std::chrono::milliseconds(0), std::chrono::seconds(20));
  why = inj::http_probe("http://127.0.0.1:" + std::to_string(odd.port()) + "/", 5000);
  EXPECT_NE(why.find("status line \"HTTP/1.1 503 ?[31mdown"), std::string::npos) << why;
  EXPECT_LT(why.size(), 260u) << why;
}

// Issue #20: https probes and target.tls. A private CA (a self-signed certificate for localhost
// and 127.0.0.1, made here with the openssl CLI) and an HTTPS server on 127.0.0.1 (Python's ssl
// module; at most 120 s, killed with the object) that answers 200 and logs each request's path.
namespace {

class https_server {
 public:
  explicit https_server(const fs::path& dir)
      : cert_((dir / "ca.pem").string()),
        other_((dir / "other-ca.pem").string()),
        log_(dir / "requests.log"),
        port_(t::free_port()) {
    for (const auto& [pem, cn] :
         {std::pair{cert_, std::string("localhost")}, std::pair{other_, std::string("other")}}) {
      auto r =
          t::run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + cn +
                 " -addext subjectAltName=IP:127.0.0.1,DNS:" + cn + " -keyout " + pem + ".key -out " + pem + " 2>&1");
      if (r.exit_code != 0) {
        why_ = "openssl req failed (exit " + std::to_string(r.exit_code) + "): " + r.out;
        return;
      }
    }
    const fs::path script = dir / "https_server.py";
    t::write_file(script, R"PY(import socket, ssl, sys, http.server
socket.setdefaulttimeout(5)  # a client that never finishes its handshake does not hold accept()
log = open(sys.argv[4], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        log.write(self.path + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H)
c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
c.load_cert_chain(sys.argv[2], sys.argv[3])
s.socket = c.wrap_socket(s.socket, server_side=True)
s.serve_forever()
)PY");
    proc_ = std::make_unique<t::child>("exec timeout 120 python3 " + script.string() + " " + std::to_string(port_) +
                                       " " + cert_ + " " + cert_ + ".key " + log_.string());
    if (!t::wait_port(port_)) why_ = "the python3 HTTPS server did not start on 127.0.0.1:" + std::to_string(port_);
  }
  const std::string& why_not() const { return why_; }          // empty when it runs
  const std::string& ca_file() const { return cert_; }         // the server's certificate, its own CA
  const std::string& other_ca_file() const { return other_; }  // a CA that did not sign it
  int port() const { return port_; }
  std::string url(const std::string& host, const std::string& path) const {
    return "https://" + host + ":" + std::to_string(port_) + path;
  }
  std::string requests() const { return t::read_file(log_); }

 private:
  std::string cert_, other_;
  fs::path log_;
  int port_;
  std::string why_;
  std::unique_ptr<t::child> proc_;
};

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST(abort_probe_tls, a_private_ca_verifies_through_the_ca_file_added_to_the_default_store) {
  t::temp_dir d;
  https_server srv(d.path());
  if (!srv.why_not().empty()) SYNCSTORM_SKIP_OR_FAIL(srv.why_not());
  const std::string url = srv.url("127.0.0.1", "/healthz");
  // Without the CA file: the handshake fails on the certificate, and the reason says so.
  std::string why = inj::http_probe(url, 3000);
  EXPECT_TRUE(contains(why, "TLS handshake with 127.0.0.1: certificate verify failed (self-signed certificate)"))
      << why;
  EXPECT_FALSE(contains(why, "\n")) << why;
  EXPECT_TRUE(contains(inj::http_probe(url, 3000, {srv.other_ca_file(), ""}), "certificate verify failed"));
  // With it, by address and by name.
  EXPECT_EQ(inj::http_probe(url, 3000, {srv.ca_file(), ""}), "");
  EXPECT_EQ(inj::http_probe(srv.url("localhost", "/healthz?deep=1"), 3000, {srv.ca_file(), ""}), "");
  EXPECT_TRUE(contains(srv.requests(), "/healthz?deep=1\n")) << srv.requests();
  // The file is added to the default store, not put in its place: with the server's CA as the
  // "system" store (SSL_CERT_FILE), an unrelated CA file leaves it trusted.
  ::setenv("SSL_CERT_FILE", srv.ca_file().c_str(), 1);
  why = inj::http_probe(url, 3000, {srv.other_ca_file(), ""});
  ::unsetenv("SSL_CERT_FILE");
  EXPECT_EQ(why, "");
  // server_name is the name verified; verify false verifies nothing.
  EXPECT_EQ(inj::http_probe(url, 3000, {srv.ca_file(), "localhost"}), "");
  why = inj::http_probe(url, 3000, {srv.ca_file(), "sync.example.internal"});
  EXPECT_TRUE(contains(why, "certificate verify failed (hostname mismatch)")) << why;
  EXPECT_EQ(inj::http_probe(url, 3000, {"", "", false}), "");
}

TEST(abort_probe_tls, a_ca_file_that_cannot_be_read_is_the_one_line_reason) {
  t::temp_dir d;
  // Nothing listens there: the CA file is refused before any connection.
  const std::string url = "https://127.0.0.1:" + std::to_string(t::free_port()) + "/healthz";
  const std::string missing = (d.path() / "missing.pem").string();
  EXPECT_EQ(inj::http_probe(url, 1000, {missing, ""}),
            "scenario.target.tls.ca_file: found \"" + missing +
                "\"; expected a readable PEM file (No such file or directory)");
  EXPECT_EQ(inj::http_probe(url, 1000, {d.str(), ""}),
            "scenario.target.tls.ca_file: found \"" + d.str() + "\"; expected a readable PEM file (a directory)");
  const std::string junk = (d.path() / "junk.pem").string();
  t::write_file(junk, "not a certificate\n");
  std::string why = inj::http_probe(url, 1000, {junk, ""});
  EXPECT_TRUE(why.starts_with("scenario.target.tls.ca_file: found \"" + junk + "\"; expected a readable PEM file ("))
      << why;
  EXPECT_FALSE(contains(why, "\n")) << why;
  // An http URL has no use for it.
  EXPECT_TRUE(contains(inj::http_probe("http://127.0.0.1:" + std::to_string(t::free_port()) + "/", 1000, {missing, ""}),
                       "connect "));
}

TEST(abort_probe_tls, server_name_and_verify_go_only_to_probes_of_the_targets_endpoints) {
  inj::probe_target target{{"/etc/ca.pem", "sync.internal", false},
                           {"https://10.0.0.5:8443/api", "wss://Sync.Example"}};
  auto is = [](const inj::probe_tls& got, const std::string& name, bool verify) {
    return got.ca_file == "/etc/ca.pem" && got.server_name == name && got.verify == verify;
  };
  EXPECT_TRUE(is(inj::probe_tls_for("https://10.0.0.5:8443/healthz", target), "sync.internal", false));
  EXPECT_TRUE(is(inj::probe_tls_for("https://u:p@10.0.0.5:8443", target), "sync.internal", false));
  EXPECT_TRUE(
      is(inj::probe_tls_for("https://sync.example:443/x", target), "sync.internal", false));  // wss's default port
  EXPECT_TRUE(is(inj::probe_tls_for("https://10.0.0.5/healthz", target), "", true));          // another port
  EXPECT_TRUE(is(inj::probe_tls_for("https://status.example.com/healthz", target), "", true));
  EXPECT_TRUE(is(inj::probe_tls_for("not a url", target), "", true));
}

TEST(abort_probe_tls, the_watch_gives_its_probes_the_targets_tls) {
  t::temp_dir d;
  https_server srv(d.path());
  if (!srv.why_not().empty()) SYNCSTORM_SKIP_OR_FAIL(srv.why_not());
  const std::vector<syncstorm::abort_entry> probe = {
      {"health", std::nullopt, {{"url", srv.url("localhost", "/healthz")}, {"every", "100ms"}, {"fail_after", 1}}}};
  auto wait_fired = [](const inj::abort_watch& w) {
    for (int i = 0; i < 30 && !w.fired(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    return w.fired();
  };
  {
    inj::abort_watch w(probe, nullptr);
    w.start();
    ASSERT_TRUE(wait_fired(w));
    EXPECT_TRUE(contains(w.reason(), "certificate verify failed")) << w.reason();
  }
  {
    inj::abort_watch w(probe, nullptr, {{srv.ca_file(), "", true}, {}});
    w.start();
    EXPECT_FALSE(wait_fired(w)) << w.reason();
    w.stop();
    const std::string requests = srv.requests();
    EXPECT_GE(std::count(requests.begin(), requests.end(), '\n'), 10) << requests;
  }
  {
    inj::abort_watch w(probe, nullptr, {{d.str() + "/missing.pem", "", true}, {}});
    w.start();
    ASSERT_TRUE(wait_fired(w));
    EXPECT_EQ(w.reason(), "probe " + srv.url("localhost", "/healthz") +
                              " failed 1 times in a row (last: scenario.target.tls.ca_file: found \"" + d.str() +
                              "/missing.pem\"; expected a readable PEM file (No such file or directory))");
  }
}

// The engine hands the scenario's target.tls to the watch: a run whose probe needs the CA file
// (a host the endpoints do not name) and one whose probe needs verify false (the endpoint itself).
TEST(abort_probe_tls, syncstorm_run_probes_with_the_scenarios_target_tls) {
  t::temp_dir d;
  https_server srv(d.path());
  if (!srv.why_not().empty()) SYNCSTORM_SKIP_OR_FAIL(srv.why_not());
  auto run = [&](const std::string& name, json tls, const std::string& probe_host) {
    json doc = {
        {"name", name},
        {"duration", "2s"},
        {"target", {{"endpoints", {{"http", srv.url("127.0.0.1", "")}}}, {"tls", tls}}},
        {"load",
         {{{"name", "api"},
           {"model", "http"},
           {"connections", 2},
           {"request", {{"path", "/load"}}},
           {"phases", {{{"name", "steady"}, {"for", "2s"}, {"rate", 5}}}}}}},
        {"abort",
         {{{"name", "health"},
           {"probe", {{"url", srv.url(probe_host, "/healthz-" + name)}, {"every", "200ms"}, {"fail_after", 2}}}}}}};
    t::write_file(d.path() / (name + ".json"), doc.dump());
    auto out = d.path() / ("runs-" + name);
    auto r = t::run("timeout 60 " + t::bin() + " run " + (d.path() / (name + ".json")).string() + " --out " +
                    out.string() + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << name << ": " << r.out;
    EXPECT_TRUE(contains(srv.requests(), "/healthz-" + name + "\n")) << name;
  };
  run("ca", {{"ca_file", srv.ca_file()}}, "localhost");
  run("noverify", {{"verify", false}}, "127.0.0.1");
}

// Issue #24: the ledger keeps space reserved past its end, is never opened through a link and
// never adopted by the controller; fill and marker steps never follow or adopt what is there; the
// state directory is trusted only when it is this user's alone.
TEST(own_files, the_ledger_reserves_space_and_refuses_links_and_planted_files) {
  t::temp_dir d;
  const std::string path = (d.path() / "ledger.jsonl").string();
  {
    auto l = inj::ledger::create(path);
    l.append({{"step", "controller"}, {"pid", 1}});
    struct stat st {};
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_GE(static_cast<std::int64_t>(st.st_blocks) * 512 - st.st_size, inj::ledger::reserve_bytes / 2)
        << "blocks " << st.st_blocks << " size " << st.st_size;
    for (int i = 0; i < 2000; ++i)
      l.append({{"step", "verify"}, {"id", "f#" + std::to_string(i)}, {"ok", true}, {"pad", std::string(400, 'x')}});
    ASSERT_EQ(::stat(path.c_str(), &st), 0);
    EXPECT_GE(static_cast<std::int64_t>(st.st_blocks) * 512 - st.st_size, inj::ledger::reserve_bytes / 2)
        << "the reserve is topped up";
  }
  EXPECT_EQ(inj::read_ledger(path).bad_lines.size(), 0u);
  try {
    inj::ledger::create(path);
    ADD_FAILURE() << "created over an existing ledger";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("a ledger is never adopted"), std::string::npos) << e.what();
  }
  fs::create_symlink(d.path() / "elsewhere", d.path() / "link.jsonl");
  try {
    inj::ledger l((d.path() / "link.jsonl").string());
    ADD_FAILURE() << "opened through a symbolic link";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("symbolic link"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(d.path() / "elsewhere"));
}

TEST(own_files, fill_and_marker_steps_never_follow_or_adopt) {
  t::temp_dir d;
  t::write_file(d.path() / "precious", "keep me");
  fs::create_symlink(d.path() / "precious", d.path() / ".syncstorm-fill-x");
  auto r = inj::run_step({{"op", "fill"}, {"path", (d.path() / ".syncstorm-fill-x").string()}, {"bytes", 4096}}, false);
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("found something already there"), std::string::npos) << r.error;
  EXPECT_EQ(t::read_file(d.path() / "precious"), "keep me");
  auto ok =
      inj::run_step({{"op", "fill"}, {"path", (d.path() / ".syncstorm-fill-y").string()}, {"bytes", 4096}}, false);
  EXPECT_TRUE(ok.ok) << ok.error;
  fs::create_symlink(d.path() / "precious", d.path() / "marker");
  auto m = inj::run_step({{"op", "marker"}, {"path", (d.path() / "marker").string()}}, false);
  EXPECT_FALSE(m.ok);
  EXPECT_EQ(t::read_file(d.path() / "precious"), "keep me");
}

TEST(own_files, the_state_directory_is_trusted_only_when_it_is_ours_alone) {
  t::temp_dir d;
  struct root_env {
    std::string old;
    explicit root_env(const std::string& v) {
      if (const char* o = std::getenv("SYNCSTORM_LAB_ROOT")) old = o;
      ::setenv("SYNCSTORM_LAB_ROOT", v.c_str(), 1);
    }
    ~root_env() {
      if (old.empty())
        ::unsetenv("SYNCSTORM_LAB_ROOT");
      else
        ::setenv("SYNCSTORM_LAB_ROOT", old.c_str(), 1);
    }
  };
  {
    root_env e((d.path() / "fresh").string());
    EXPECT_EQ(syncstorm::lab::secure_labs_root(), "");
    struct stat st {};
    ASSERT_EQ(::stat((d.path() / "fresh").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0711u);
  }
  {
    fs::create_directory(d.path() / "open");
    ::chmod((d.path() / "open").c_str(), 0777);
    root_env e((d.path() / "open").string());
    EXPECT_NE(syncstorm::lab::secure_labs_root().find("writable by others; expected 0711"), std::string::npos);
  }
  {
    fs::create_directory(d.path() / "real");
    fs::create_directory_symlink(d.path() / "real", d.path() / "link");
    root_env e((d.path() / "link").string());
    EXPECT_NE(syncstorm::lab::secure_labs_root().find("symbolic link"), std::string::npos);
  }
  {
    fs::create_directory(d.path() / "theirs");
    ASSERT_EQ(::chown((d.path() / "theirs").c_str(), 65534, 65534), 0);
    root_env e((d.path() / "theirs").string());
    EXPECT_NE(syncstorm::lab::secure_labs_root().find("owned by uid 65534"), std::string::npos);
  }
}
