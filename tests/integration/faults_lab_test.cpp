// Faults on the real lab through `syncstorm run`: each kind shows its effect in the measured data
// and the effect ends after revert (kill → errors then recovery; pause → stalls that complete;
// disk_fill leaving 1 MiB on the DB volume → pushes fail, then succeed; rolling_restart → no
// errors; db_failover → writes continue and nothing acknowledged is lost), and crash safety:
// the controller SIGKILLed at 10 random moments while a pause, a disk fill and a no-restart kill
// are applied, after which the reaper has restored everything and `revert` finds nothing.
#include "tests/support/run_events.hpp"
#include "tests/support/lab_fixture.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

using t::wait_event;

// POST one op with a fresh id through the LB; returns the HTTP status (0: no answer).
// `pad_bytes` of random hex (incompressible, so PostgreSQL's TOAST cannot shrink it).
int push_unique(const std::string& base, const std::string& id, const std::string& stream = "probe",
                std::size_t pad_bytes = 200) {
  static std::mt19937_64 rng(42);
  std::string pad;
  const char* hex = "0123456789abcdef";
  for (std::size_t i = 0; i < pad_bytes; ++i) pad += hex[rng() % 16];
  std::string body = R"({"client":"t","ops":[{"id":")" + id + R"(","stream":")" + stream +
                     R"(","seq":1,"t_us":1,"kind":"append","body":{"pad":")" + pad + R"("}}]})";
  auto r = t::run("curl -s -o /dev/null -m 5 -w '%{http_code}' -H 'Content-Type: application/json' -d '" + body + "' " +
                  base + "/v1/push");
  return std::atoi(r.out.c_str());
}

// report.json series rows of a metric: [t_s, count, errors, p50_ms, p99_ms, max_ms].
struct window_stats {
  std::uint64_t count = 0, errors = 0;
  double max_ms = 0;
};
window_stats stats(const json& rep, const std::string& metric, double from_s, double to_s) {
  window_stats w;
  for (const auto& row : rep["series"][metric]) {
    double ts = row[0].get<double>();
    if (ts < from_s || ts >= to_s) continue;
    w.count += row[1].get<std::uint64_t>();
    w.errors += row[2].get<std::uint64_t>();
    w.max_ms = std::max(w.max_ms, row[5].get<double>());
  }
  return w;
}

const json* fault(const json& rep, const std::string& name) {
  for (const auto& f : rep["faults"])
    if (f["name"] == name) return &f;
  return nullptr;
}

json push_load(double rate, const std::string& duration) {
  return {{"name", "push"},
          {"model", "http"},
          {"connections", 64},
          {"timeout", "15s"},
          {"request",
           {{"method", "POST"},
            {"path", "/v1/push"},
            {"body",
             {{"client", "faults"},
              {"ops", {{{"id", "f-1"}, {"stream", "s-1"}, {"seq", 1}, {"t_us", 0}, {"kind", "append"}}}}}}}},
          {"phases", {{{"name", "steady"}, {"for", duration}, {"rate", rate}}}}};
}

}  // namespace

TEST(faults_lab, kill_pause_and_disk_fill_show_their_effect_and_end_after_revert) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  // slow-ack keeps ~4 pushes in flight per pod, so a kill has requests to break.
  json doc = {
      {"name", "faults-lab"},
      {"duration", "32s"},
      {"target", {{"lab", {{"pods", 2}, {"db_volume", "96MiB"}, {"bug", "slow-ack=100"}}}}},
      {"load", {push_load(40, "32s")}},
      {"faults",
       {{{"name", "kill-0"}, {"kind", "kill"}, {"target", {{"pods", {"pod-0"}}}}, {"at", "4s"}},
        {{"name", "pause-1"}, {"kind", "pause"}, {"target", {{"pods", {"pod-1"}}}}, {"at", "11s"}, {"for", "4s"}},
        {{"name", "fill-db"},
         {"kind", "disk_fill"},
         {"volume", "db"},
         {"leave", "1MiB"},
         {"at", "19s"},
         {"for", "5s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  fs::path log = d.path() / "run.log";
  t::child run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " > " +
               log.string() + " 2>&1");
  auto ev = [&]() -> fs::path {
    for (int i = 0; i < 600; ++i) {
      try {
        return t::only_run_dir(d.path() / "runs") / "events.jsonl";
      } catch (...) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return {};
  }();
  ASSERT_FALSE(ev.empty());
  auto up = wait_event(
      ev, [](const json& e) { return e["event"] == "lab_up"; }, std::chrono::seconds(180));
  ASSERT_TRUE(up) << t::read_file(log);
  std::string base = (*up)["http"];
  // The disk fill: a fresh push fails while it is applied, then succeeds after revert.
  auto filled = wait_event(
      ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "fill-db"; },
      std::chrono::seconds(60));
  ASSERT_TRUE(filled) << t::read_file(log);
  // 1 MiB left: 100 KB pushes of fresh, incompressible ops must run out of space (507).
  int during = 200, pushed = 0;
  for (; pushed < 40 && during == 200; ++pushed)
    during = push_unique(base, "fill-during-" + std::to_string(pushed), "probe", 100'000);
  EXPECT_NE(during, 200) << pushed << " pushes of 100 KB succeeded with 1 MiB left on the DB volume";
  EXPECT_LT(pushed, 40);
  auto reverted = wait_event(
      ev, [](const json& e) { return e["event"] == "fault_reverted" && e["fault"] == "fill-db"; },
      std::chrono::seconds(30));
  ASSERT_TRUE(reverted) << t::read_file(log);
  int after = 0;
  for (int i = 0; i < 40 && after != 200; ++i) {
    after = push_unique(base, "fill-after-" + std::to_string(i));
    if (after != 200) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_EQ(after, 200) << "pushes did not succeed again after the fill was removed";
  int rc = -1;
  for (int i = 0; i < 1200; ++i) {
    int st = 0;
    if (::waitpid(run.pid(), &st, WNOHANG) == run.pid()) {
      rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::string out = t::read_file(log);
  EXPECT_EQ(rc, 0) << out;
  json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  for (auto name : {"kill-0", "pause-1", "fill-db"}) {
    const json* f = fault(rep, name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_FALSE((*f)["applied_at"].is_null()) << f->dump();
    EXPECT_FALSE((*f)["reverted_at"].is_null()) << f->dump();
    EXPECT_FALSE(f->contains("error")) << f->dump();
  }
  // kill: errors (requests in flight on the killed pod) then recovery (the pod back, ready).
  auto kill_w = stats(rep, "http.requests@push", 4, 7);
  EXPECT_GT(kill_w.errors, 0u) << rep["series"]["http.requests@push"].dump();
  EXPECT_LT((*fault(rep, "kill-0"))["reverted_at"].get<double>(), 12.0);
  // pause: requests on the stopped pod stall for seconds and complete (no timeout at 15 s).
  auto pause_w = stats(rep, "http.latency@push", 11, 17);
  EXPECT_GE(pause_w.max_ms, 2500.0) << rep["series"]["http.latency@push"].dump();
  EXPECT_NEAR((*fault(rep, "pause-1"))["reverted_at"].get<double>(), 15.0, 1.0);
  // After every revert: no errors.
  auto tail = stats(rep, "http.requests@push", 28, 32);
  EXPECT_GT(tail.count, 100u);
  EXPECT_EQ(tail.errors, 0u) << rep["series"]["http.requests@push"].dump();
}

TEST(faults_lab, rolling_restart_without_errors_then_db_failover_keeps_writes_and_acks) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  json doc = {
      {"name", "faults-roll"},
      {"duration", "34s"},
      {"target",
       {{"lab", {{"pods", 3}, {"replica", true}, {"health", {{"interval", "500ms"}, {"fall", 2}, {"rise", 2}}}}}}},
      {"load", {push_load(40, "34s")}},
      {"faults",
       {{{"name", "roll"}, {"kind", "rolling_restart"}, {"target", {{"pods", "pod-*"}}}, {"at", "3s"}},
        {{"name", "failover"}, {"kind", "db_failover"}, {"at", "22s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  fs::path log = d.path() / "run.log";
  t::child run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " > " +
               log.string() + " 2>&1");
  fs::path ev;
  for (int i = 0; i < 600 && ev.empty(); ++i) {
    try {
      ev = t::only_run_dir(d.path() / "runs") / "events.jsonl";
    } catch (...) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  auto up = wait_event(
      ev, [](const json& e) { return e["event"] == "lab_up"; }, std::chrono::seconds(180));
  ASSERT_TRUE(up) << t::read_file(log);
  std::string base = (*up)["http"];
  // Acknowledged before the failover...
  auto rolled = wait_event(
      ev, [](const json& e) { return e["event"] == "fault_reverted" && e["fault"] == "roll"; },
      std::chrono::seconds(90));
  ASSERT_TRUE(rolled) << t::read_file(log);
  std::vector<std::string> acked;
  for (int i = 0; i < 10; ++i)
    if (push_unique(base, "ack-" + std::to_string(i), "audit") == 200) acked.push_back("ack-" + std::to_string(i));
  EXPECT_EQ(acked.size(), 10u);
  auto failed_over = wait_event(
      ev, [](const json& e) { return e["event"] == "fault_reverted" && e["fault"] == "failover"; },
      std::chrono::seconds(90));
  ASSERT_TRUE(failed_over) << t::read_file(log);
  // ...are all on the promoted primary, and new writes are acknowledged there.
  int after = 0;
  for (int i = 0; i < 40 && after != 200; ++i) {
    after = push_unique(base, "after-" + std::to_string(i), "audit");
    if (after != 200) std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_EQ(after, 200);
  auto changes = t::run("curl -s -m 5 '" + base + "/v1/changes?stream=audit&after=0&limit=1000'");
  for (const auto& id : acked)
    EXPECT_NE(changes.out.find("\"" + id + "\""), std::string::npos) << id << " lost: " << changes.out;
  int rc = -1;
  for (int i = 0; i < 1200; ++i) {
    int st = 0;
    if (::waitpid(run.pid(), &st, WNOHANG) == run.pid()) {
      rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(rc, 0) << t::read_file(log);
  json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  const json* roll = fault(rep, "roll");
  ASSERT_NE(roll, nullptr);
  EXPECT_EQ((*roll)["targets"].size(), 3u);
  double a = (*roll)["applied_at"].get<double>(), r = (*roll)["reverted_at"].get<double>();
  EXPECT_GT(r - a, 3.0);  // one pod at a time, each waited for
  auto roll_w = stats(rep, "http.requests@push", a, r + 1);
  EXPECT_GT(roll_w.count, 100u);
  // The http model has no retries: a pod's SIGTERM can break the odd request on a connection it
  // closes (seen: 2 of ~40 per pod). The terminal model's retries turn these into 100%
  // availability.ops; here: at most 2% errors, and none once the roll is over.
  EXPECT_LE(roll_w.errors * 50, roll_w.count) << rep["series"]["http.requests@push"].dump();
  EXPECT_EQ(stats(rep, "http.requests@push", r + 1, 21).errors, 0u) << rep["series"]["http.requests@push"].dump();
  int died = 0;
  for (const auto& e : rep["events"]) died += e.value("event", "") == "pod_died";
  EXPECT_EQ(died, 3);
  const json* fo = fault(rep, "failover");
  ASSERT_NE(fo, nullptr);
  EXPECT_FALSE(fo->contains("error")) << fo->dump();
  auto tail = stats(rep, "http.requests@push", 30, 34);
  EXPECT_GT(tail.count, 100u);
  EXPECT_EQ(tail.errors, 0u);
}

TEST(faults_lab, the_reaper_restores_everything_after_the_controller_is_sigkilled_ten_times) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  const std::string id = "fsafe" + std::to_string(::getpid() % 1000);
  auto up = t::run(t::bin() + " lab up --id " + id + " --pods 2 --db-volume 96MiB 2>&1");
  t::cli_lab_guard guard(id);
  ASSERT_EQ(up.exit_code, 0) << up.out;
  json st = json::parse(t::run(t::bin() + " lab status --json --id " + id).out);
  std::string dir = st["dir"], base = st["lb"]["http_url"];
  std::string data = st["db"]["instances"]["db-0"]["data_dir"];
  json doc = {{"name", "crash"},
              {"duration", "60s"},
              {"target", {{"endpoints", {{"http", base}}}}},
              {"load", {push_load(20, "60s")}},
              {"faults",
               {{{"name", "pause-1"},
                 {"kind", "pause"},
                 {"target", {{"pidfile", dir + "/run/pod-1.pid"}}},
                 {"at", "200ms"},
                 {"for", "50s"}},
                {{"name", "kill-0"},
                 {"kind", "kill"},
                 {"target", {{"pidfile", dir + "/run/pod-0.pid"}, {"restart", false}}},
                 {"at", "200ms"},
                 {"for", "50s"}},
                {{"name", "fill"},
                 {"kind", "disk_fill"},
                 {"volume", data},
                 {"leave", "1MiB"},
                 {"at", "200ms"},
                 {"for", "50s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  std::mt19937 rng(20240611);
  std::uniform_int_distribution<int> delay_ms(300, 2500);
  auto unit = [&](const std::string& u) {
    return json::parse(t::run(t::bin() + " lab status --json --id " + id).out)["units"][u];
  };
  auto pid_of = [&](const std::string& u) { return std::atol(t::read_file(dir + "/run/" + u + ".pid").c_str()); };
  auto state_of = [](long pid) {
    std::string s = t::read_file("/proc/" + std::to_string(pid) + "/stat");
    auto c = s.rfind(')');
    return c == std::string::npos ? '?' : s[c + 2];
  };
  auto fill_files = [&] {
    int n = 0;
    for (auto& e : fs::directory_iterator(data)) n += e.path().filename().string().starts_with(".syncstorm-fill-");
    return n;
  };
  auto healthy = [&] {
    return unit("pod-0").value("status", "") == "ready" && unit("pod-1").value("status", "") == "ready" &&
           unit("db-0").value("status", "") == "ready";
  };
  for (int i = 0; i < 10; ++i) {
    SCOPED_TRACE("iteration " + std::to_string(i));
    for (int w = 0; w < 300 && !healthy(); ++w) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(healthy()) << t::run(t::bin() + " lab status --id " + id + " 2>&1").out;
    fs::path out = d.path() / ("runs-" + std::to_string(i));
    t::child run("exec " + t::bin() + " run " + (d.path() / "s.json").string() + " --out " + out.string() + " > " +
                 (d.path() / "log").string() + " 2>&1");
    int ms = delay_ms(rng);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    ::kill(run.pid(), SIGKILL);
    run.stop();
    fs::path rd;
    try {
      rd = t::only_run_dir(out);
    } catch (...) {
      continue;
    }  // killed before it made its directory
    // The reaper notices and restores: pod-1 running, no fill file, pod-0 back and ready.
    bool restored = false;
    for (int w = 0; w < 600 && !restored; ++w) {
      restored = state_of(pid_of("pod-1")) != 'T' && fill_files() == 0 && unit("pod-0").value("status", "") == "ready";
      if (!restored) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(restored) << "killed after " << ms << " ms; ledger:\n"
                          << t::read_file(rd / "ledger.jsonl") << "\nreaper:\n"
                          << t::read_file(rd / "reaper.log");
    auto rv = t::run(t::bin() + " revert " + rd.string() + " 2>&1");
    EXPECT_EQ(rv.exit_code, 0) << rv.out;
    // `revert` first waits for a reaper still at work ("waiting for the run's reaper…"), then reports.
    EXPECT_NE(rv.out.find("nothing to revert"), std::string::npos) << rv.out << "\nreaper:\n"
                                                                   << t::read_file(rd / "reaper.log");
  }
}

namespace {

// Five lanes (terminal model: retries with backoff) and 200 WebSocket subscribers on 20 streams.
json lanes_and_subscribers(const std::string& duration) {
  return {{{"name", "pos"},
           {"model", "terminal"},
           {"stores", 1},
           {"terminals_per_store", 5},
           {"rate", 6},
           {"ops", {{"append", 80}, {"add", 20}, {"set", 0}}},
           {"keys", 8},
           {"batch", {{"max_ops", 50}, {"max_wait", "10ms"}}},
           {"timeout", "3s"},
           {"retry", {{"base", "200ms"}, {"max", "1s"}, {"limit", 0}}},
           {"phases", {{{"name", "steady"}, {"for", duration}, {"rate", 30}}}}},
          {{"name", "subs"},
           {"model", "fanout"},
           {"subscribers", 200},
           {"streams", 20},
           {"rate", 10},
           {"connect_rate", 200},
           {"stream_prefix", "live-"},
           {"views", 10},
           {"reconnect", {{"base", "200ms"}, {"max", "1s"}}},
           {"phases", {{{"name", "steady"}, {"for", duration}, {"rate", 10}}}}}};
}

json ws_rules() {
  return {{{"name", "all-acked"}, {"metric", "availability.ops"}, {"stat", "ratio"}, {"min", "100%"}},
          {{"name", "no-bystander-drops"}, {"metric", "ws.dropped.bystanders"}, {"stat", "max"}, {"max", 0}},
          {{"name", "missing-none"}, {"metric", "fanout.missing"}, {"stat", "max"}, {"max", 0}},
          {{"name", "nothing-lost"}, {"metric", "audit.lost"}, {"stat", "max"}, {"max", 0}}};
}

const json* verdict(const json& rep, const std::string& name) {
  for (const auto& v : rep["verdicts"])
    if (v["name"] == name) return &v;
  return nullptr;
}

struct ws_run {
  int exit_code = -1;
  std::string out;
  json report;
};

// Runs lanes and subscribers for `duration` on a fresh lab with one fault, under ws_rules().
ws_run run_with_subscribers(const std::string& name, const std::string& duration, const json& fault_entry) {
  const json lab = {
      {"pods", 3}, {"restart_delay", "500ms"}, {"health", {{"interval", "300ms"}, {"fall", 2}, {"rise", 2}}}};
  json doc = {{"name", name},
              {"duration", duration},
              {"target", {{"lab", lab}}},
              {"load", lanes_and_subscribers(duration)},
              {"faults", {fault_entry}},
              {"slas", ws_rules()}};
  t::temp_dir d;
  t::write_file(d.path() / "s.json", doc.dump());
  auto r =
      t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " 2>&1");
  return {r.exit_code, r.out, json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"))};
}

}  // namespace

// DESIGN §6 / issue #8: a rolling restart under lanes with retries acknowledges every op, and
// WebSockets drop only on the pod being restarted (each drop attributed by the pod its handshake
// reply named). The detector must fire too: killing the LB drops connections on every pod, none
// of which a fault had down, so they are bystanders and the rule fails.
TEST(faults_lab, rolling_restart_acks_every_op_and_drops_websockets_only_on_the_restarted_pod) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  {
    auto [rc, out, rep] = run_with_subscribers(
        "roll-ws", "24s",
        {{"name", "roll"}, {"kind", "rolling_restart"}, {"target", {{"pods", "pod-*"}}}, {"at", "5s"}});
    EXPECT_EQ(rc, 0) << out;
    ASSERT_TRUE(rep.contains("ws_drops")) << out;
    std::cout << "roll: ws_drops " << rep["ws_drops"].dump() << "\n";
    // Every pod held subscribers (leastconn), so each restart dropped some: the detector saw them
    // and put each on the pod that was down.
    EXPECT_GE(rep["ws_drops"]["total"].get<int>(), 30) << rep["ws_drops"].dump();
    EXPECT_EQ(rep["ws_drops"]["faulted"], rep["ws_drops"]["total"]);
    EXPECT_EQ(rep["ws_drops"]["bystanders"], 0);
    EXPECT_EQ(rep["ws_drops"]["unattributed"], 0);
    const json* roll = fault(rep, "roll");
    ASSERT_NE(roll, nullptr);
    EXPECT_EQ((*roll)["targets"].size(), 3u);
    int died = 0;
    for (const auto& e : rep["events"]) died += e.value("event", "") == "pod_died";
    EXPECT_EQ(died, 3);
    for (const char* rule : {"all-acked", "no-bystander-drops", "missing-none", "nothing-lost"}) {
      const json* v = verdict(rep, rule);
      ASSERT_NE(v, nullptr) << rule;
      EXPECT_TRUE((*v)["pass"].get<bool>()) << v->dump();
    }
  }
  {
    auto [rc, out, rep] = run_with_subscribers(
        "lb-kill-ws", "16s", {{"name", "kill-lb"}, {"kind", "kill"}, {"target", {{"role", "lb"}}}, {"at", "5s"}});
    EXPECT_EQ(rc, 1) << out;
    std::cout << "lb kill: ws_drops " << rep["ws_drops"].dump() << "\n";
    EXPECT_GE(rep["ws_drops"]["bystanders"].get<int>(), 100) << "every connection went with the LB";
    const json* v = verdict(rep, "no-bystander-drops");
    ASSERT_NE(v, nullptr);
    EXPECT_FALSE((*v)["pass"].get<bool>()) << v->dump();
    EXPECT_TRUE(verdict(rep, "all-acked")->at("pass").get<bool>()) << "the lanes retried through the restarted LB";
  }
}
