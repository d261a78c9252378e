// Network faults on the real lab through `syncstorm run` (issue #9): the fault proxy (the lab
// relay) and iptables partitions, each shown in measured data and gone after revert:
//   - 200 ms downstream latency on clients→LB: push.latency p50 rises by 200 ms ± 25%, then returns;
//   - http_error 10%: availability.attempts ≈ 90% ± 3 while every op is acknowledged (retries);
//   - pods→DB partition for 20 s: readyz fails, pushes fail or queue, both recover after the heal;
//   - 10 Mbit/s bandwidth: the path's upstream bytes/s stay ≤ 10 Mbit/s + 10%;
//   - one-way clients→LB and LB→clients cuts: requests stop reaching the LB only in the first;
//   - crash safety: the controller SIGKILLed with a partition, a latency, a pause and a disk fill
//     applied; the reaper leaves no rule, no fill file, no stopped process, the proxy in
//     pass-through.
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

std::optional<json> wait_event(const fs::path& events, const std::function<bool(const json&)>& match, std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    std::ifstream in(events);
    std::string line;
    while (std::getline(in, line)) {
      auto j = json::parse(line, nullptr, false);
      if (!j.is_discarded() && match(j)) return j;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::nullopt;
}

fs::path wait_events_file(const fs::path& out) {
  for (int i = 0; i < 600; ++i) {
    try { return t::only_run_dir(out) / "events.jsonl"; } catch (...) {}
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return {};
}

int wait_exit(t::child& c, int seconds) {
  for (int i = 0; i < seconds * 10; ++i) {
    int st = 0;
    if (::waitpid(c.pid(), &st, WNOHANG) == c.pid()) return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return -1;
}

double verdict(const json& rep, const std::string& name) {
  for (const auto& v : rep["verdicts"]) if (v["name"] == name) return v["value"].is_number() ? v["value"].get<double>() : -1;
  return -1;
}

const json* fault(const json& rep, const std::string& name) {
  for (const auto& f : rep["faults"]) if (f["name"] == name) return &f;
  return nullptr;
}

json relay_path(const std::string& lab, const std::string& path) {
  auto st = json::parse(t::run(t::bin() + " lab status --json --id " + lab).out, nullptr, false);
  if (st.is_discarded()) return json::object();
  return st["paths"].value(path, json::object());
}

std::string base_url(const json& status) { return status["lb"]["http_url"].get<std::string>(); }

int http_status(const std::string& url) {
  return std::atoi(t::run("curl -s -o /dev/null -m 3 -w '%{http_code}' " + url).out.c_str());
}

// Rules used only to read a value out of report.json (bounds that always hold).
json probe(const std::string& name, const std::string& metric, const std::string& stat, const std::string& window) {
  return {{"name", name}, {"metric", metric}, {"stat", stat}, {"window", window}, {"max", stat == "ratio" ? json(100) : json("1h")}};
}

}  // namespace

TEST(network_faults, latency_http_error_and_partition_show_their_effect_and_recover) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  auto phase = [](const char* n, const char* len) { return json{{"name", n}, {"for", len}}; };
  json doc = {{"name", "net-faults"}, {"duration", "66s"},
              {"target", {{"lab", {{"pods", 2}, {"health", {{"interval", "500ms"}, {"fall", 2}, {"rise", 2}}}}}}},
              {"load", {{{"name", "pos"}, {"model", "terminal"}, {"stores", 2}, {"terminals_per_store", 3}, {"rate", 4},
                         {"ops", {{"append", 100}}}, {"keys", 4}, {"drain", "30s"},
                         // Clients that come back within a second of the heal: the recovery
                         // measured is the stack's, not a 10 s backoff cap's.
                         {"retry", {{"base", "100ms"}, {"max", "1s"}, {"limit", 0}}},
                         {"breaker", {{"threshold", 5}, {"open_for", "1s"}}},
                         {"phases", {phase("before", "5s"), phase("lat", "8s"), phase("mid", "5s"), phase("herr", "14s"),
                                     phase("gap", "4s"), phase("cut", "20s"), phase("tail", "10s")}}}}},
              {"faults", {{{"name", "lat"}, {"kind", "latency"}, {"path", "clients-lb"}, {"direction", "down"}, {"latency", "200ms"}, {"at", "5s"}, {"for", "8s"}},
                          {{"name", "herr"}, {"kind", "http_error"}, {"percent", 10}, {"status", 503}, {"at", "18s"}, {"for", "14s"}},
                          {{"name", "cut"}, {"kind", "partition"}, {"from", "pods"}, {"to", "db"}, {"at", "36s"}, {"for", "20s"}}}},
              {"slas", {probe("p50-before", "push.latency", "p50", "phase:pos/before"), probe("p50-lat", "push.latency", "p50", "phase:pos/lat"),
                        probe("p50-mid", "push.latency", "p50", "phase:pos/mid"),
                        probe("att-herr", "availability.attempts", "ratio", "phase:pos/herr"),
                        {{"name", "all-acked"}, {"metric", "availability.ops"}, {"stat", "ratio"}, {"min", "100%"}},
                        {{"name", "nothing-lost"}, {"metric", "audit.lost"}, {"stat", "max"}, {"max", 0}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  fs::path log = d.path() / "run.log";
  t::child run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " > " + log.string() + " 2>&1");
  fs::path ev = wait_events_file(d.path() / "runs");
  ASSERT_FALSE(ev.empty());
  auto up = wait_event(ev, [](const json& e) { return e["event"] == "lab_up"; }, std::chrono::seconds(180));
  ASSERT_TRUE(up) << t::read_file(log);
  const std::string base = (*up)["http"];
  // The partition: /readyz fails while the pods cannot reach the DB, and comes back after.
  ASSERT_TRUE(wait_event(ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "cut"; }, std::chrono::seconds(90)))
      << t::read_file(log);
  int during = 200;
  for (int i = 0; i < 150 && during == 200; ++i) {
    during = http_status(base + "/readyz");
    if (during == 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(during, 200) << "/readyz stayed 200 for 15 s of a pods→db partition";
  ASSERT_TRUE(wait_event(ev, [](const json& e) { return e["event"] == "fault_reverted" && e["fault"] == "cut"; }, std::chrono::seconds(40)))
      << t::read_file(log);
  auto healed = std::chrono::steady_clock::now();
  int after = 0;
  for (int i = 0; i < 300 && after != 200; ++i) {
    after = http_status(base + "/readyz");
    if (after != 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(after, 200) << "/readyz did not recover within 30 s of the heal";
  EXPECT_LT(std::chrono::steady_clock::now() - healed, std::chrono::seconds(30));
  int rc = wait_exit(run, 180);
  std::string out = t::read_file(log);
  // 5 (inconclusive) when the shared machine saturated the generator; the values still count.
  EXPECT_TRUE(rc == 0 || rc == 5) << out;
  json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  // Latency: +200 ms ± 25% on p50, back after.
  double before = verdict(rep, "p50-before"), lat = verdict(rep, "p50-lat"), mid = verdict(rep, "p50-mid");
  EXPECT_NEAR(lat - before, 200.0, 50.0) << "p50 before " << before << " ms, during " << lat << " ms";
  EXPECT_LT(mid, before + 50.0) << "p50 after the latency was reverted: " << mid << " ms (before: " << before << " ms)";
  // http_error 10%: ~90% of attempts succeed, every op acknowledged in the end, nothing lost.
  EXPECT_NEAR(verdict(rep, "att-herr"), 90.0, 3.0);
  EXPECT_EQ(verdict(rep, "all-acked"), 100.0);
  EXPECT_EQ(verdict(rep, "nothing-lost"), 0.0);
  // The partition: pushes failed or queued (slow), and recovery is measured.
  // Completed pushes per second during the cut (after 2 s to take hold) vs before it.
  double before_n = 0, cut_n = 0;
  for (const auto& row : rep["series"]["push.latency"]) {
    double ts = row[0].get<double>();
    if (ts < 5) before_n += row[1].get<double>();
    if (ts >= 38 && ts < 56) cut_n += row[1].get<double>() - row[2].get<double>();
  }
  EXPECT_LT(cut_n / 18, before_n / 5 / 4) << rep["series"]["push.latency"].dump();
  const json* cut = fault(rep, "cut");
  ASSERT_NE(cut, nullptr);
  EXPECT_FALSE(cut->contains("error")) << cut->dump();
  ASSERT_TRUE((*cut)["recovery_s"].is_number()) << cut->dump();
  EXPECT_LT((*cut)["recovery_s"].get<double>(), 30.0) << cut->dump();
}

TEST(network_faults, bandwidth_limit_holds_and_one_way_cuts_are_asymmetric) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  std::string pad(8000, 'x');
  json load = {{"name", "push"}, {"model", "http"}, {"connections", 32}, {"timeout", "10s"},
               {"request", {{"method", "POST"}, {"path", "/v1/push"},
                            {"body", {{"client", "bw"}, {"ops", {{{"id", "bw-1"}, {"stream", "s-1"}, {"seq", 1}, {"t_us", 0}, {"kind", "append"}, {"body", {{"pad", pad}}}}}}}}}},
               {"phases", {{{"name", "steady"}, {"for", "32s"}, {"rate", 300}}}}};
  json doc = {{"name", "net-bw"}, {"duration", "32s"}, {"target", {{"lab", {{"pods", 2}}}}}, {"load", {load}},
              {"faults", {{{"name", "bw"}, {"kind", "bandwidth"}, {"path", "clients-lb"}, {"direction", "up"}, {"rate", "10Mbit/s"}, {"at", "6s"}, {"for", "8s"}},
                          {{"name", "up-cut"}, {"kind", "partition"}, {"from", "clients"}, {"to", "lb"}, {"symmetric", false}, {"at", "15s"}, {"for", "9s"}},
                          {{"name", "down-cut"}, {"kind", "partition"}, {"from", "lb"}, {"to", "clients"}, {"symmetric", false}, {"at", "25s"}, {"for", "5s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  fs::path log = d.path() / "run.log";
  t::child run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " > " + log.string() + " 2>&1");
  fs::path ev = wait_events_file(d.path() / "runs");
  ASSERT_FALSE(ev.empty());
  auto up = wait_event(ev, [](const json& e) { return e["event"] == "lab_up"; }, std::chrono::seconds(180));
  ASSERT_TRUE(up) << t::read_file(log);
  const std::string lab = (*up)["lab"];
  // Bytes toward the LB per second over a window, from the relay's counters.
  auto rate = [&](const char* key, int ms) {
    double a = relay_path(lab, "lb_http").value(key, 0.0);
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    double b = relay_path(lab, "lb_http").value(key, 0.0);
    return (b - a) * 1000.0 / ms;
  };
  std::this_thread::sleep_for(std::chrono::seconds(2));
  double free_Bps = rate("bytes_up", 2000);
  ASSERT_TRUE(wait_event(ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "bw"; }, std::chrono::seconds(30)));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double limited_Bps = rate("bytes_up", 5000);
  EXPECT_GT(free_Bps * 8, 12e6) << "the load must exceed the limit for the test to mean anything";
  EXPECT_LE(limited_Bps * 8, 11e6) << "10 Mbit/s limit, measured " << limited_Bps * 8 / 1e6 << " Mbit/s";
  EXPECT_GT(limited_Bps * 8, 5e6) << "the limited path should still carry close to 10 Mbit/s";
  // One-way clients→LB: a request never reaches the server. One-way LB→clients: it reaches the
  // server and is applied, but the client never hears back. Checked with a probe push through the
  // cut path and a read straight from HAProxy (not through the cut relay).
  json st = json::parse(t::run(t::bin() + " lab status --json --id " + lab).out);
  const std::string direct = "http://" + st["lb"]["haproxy_http"].get<std::string>();
  auto probe_push = [&](const std::string& id) {
    std::string body = R"({"client":"oneway","ops":[{"id":")" + id + R"(","stream":"oneway","seq":1,"t_us":1,"kind":"append"}]})";
    return http_status("-H 'Content-Type: application/json' -d '" + body + "' " + base_url(st) + "/v1/push");
  };
  auto stored = [&](const std::string& id) {
    // Held bytes are released when a blackhole heals: look within the cut (1 s), not after it.
    for (int i = 0; i < 5; ++i) {
      if (t::run("curl -s -m 3 '" + direct + "/v1/changes?stream=oneway&after=0&limit=100'").out.find(id) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  };
  ASSERT_TRUE(wait_event(ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "up-cut"; }, std::chrono::seconds(30)));
  EXPECT_EQ(probe_push("ow-up"), 0);
  EXPECT_FALSE(stored("ow-up")) << "a request crossed a clients→lb cut";
  ASSERT_TRUE(wait_event(ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "down-cut"; }, std::chrono::seconds(30)));
  EXPECT_EQ(probe_push("ow-down"), 0);
  EXPECT_TRUE(stored("ow-down")) << "with only lb→clients cut, the request should reach the server and be applied";
  int rc = wait_exit(run, 120);
  EXPECT_NE(rc, -1) << t::read_file(log);
  EXPECT_NE(rc, 3) << t::read_file(log);  // every fault applied and reverted
  // After the run the proxy is back in pass-through... (the lab is gone with the run; checked
  // through the report's fault records instead).
  json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  for (auto name : {"bw", "up-cut", "down-cut"}) {
    const json* f = fault(rep, name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_FALSE(f->contains("error")) << f->dump();
    EXPECT_TRUE((*f)["reverted_at"].is_number()) << f->dump();
  }
}

TEST(network_faults, the_reaper_clears_partition_latency_pause_and_fill_after_the_controller_is_sigkilled) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  json doc = {{"name", "net-crash"}, {"duration", "90s"}, {"target", {{"lab", {{"pods", 2}, {"db_volume", "96MiB"}}}}},
              {"load", {{{"name", "pos"}, {"model", "terminal"}, {"stores", 1}, {"terminals_per_store", 2}, {"rate", 2},
                         {"phases", {{{"name", "steady"}, {"for", "90s"}}}}}}},
              {"faults", {{{"name", "cut"}, {"kind", "partition"}, {"from", "pods"}, {"to", "db"}, {"at", "1s"}, {"for", "80s"}},
                          {{"name", "lat"}, {"kind", "latency"}, {"latency", "100ms"}, {"at", "1s"}, {"for", "80s"}},
                          {{"name", "pause"}, {"kind", "pause"}, {"target", {{"pods", {"pod-1"}}}}, {"at", "1s"}, {"for", "80s"}},
                          {{"name", "fill"}, {"kind", "disk_fill"}, {"volume", "db"}, {"leave", "4MiB"}, {"at", "1s"}, {"for", "80s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  fs::path log = d.path() / "run.log";
  t::child run("exec " + t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " > " + log.string() + " 2>&1");
  fs::path ev = wait_events_file(d.path() / "runs");
  ASSERT_FALSE(ev.empty());
  auto up = wait_event(ev, [](const json& e) { return e["event"] == "lab_up"; }, std::chrono::seconds(180));
  ASSERT_TRUE(up) << t::read_file(log);
  const std::string lab = (*up)["lab"];
  struct lab_guard {
    std::string id;
    ~lab_guard() { t::run(t::bin() + " lab down --id " + id + " >/dev/null 2>&1"); }
  } guard{lab};
  for (auto name : {"cut", "lat", "pause", "fill"})
    ASSERT_TRUE(wait_event(ev, [&](const json& e) { return e["event"] == "fault_applied" && e["fault"] == name; }, std::chrono::seconds(60)))
        << name << "\n" << t::read_file(log);
  fs::path rd = t::only_run_dir(d.path() / "runs");
  const std::string tag = "syncstorm:" + rd.filename().string();
  auto rules = [&] {
    std::string all = t::run("iptables-save 2>/dev/null").out;
    for (auto& ns : {"ss-" + lab + "-pod0", "ss-" + lab + "-pod1"}) all += t::run("ip netns exec " + ns + " iptables-save 2>/dev/null").out;
    return all.find(tag) != std::string::npos;
  };
  EXPECT_TRUE(rules()) << "the partition's rules should be in place before the kill";
  ::kill(run.pid(), SIGKILL);
  run.stop();
  json st;
  auto restored = [&] {
    st = json::parse(t::run(t::bin() + " lab status --json --id " + lab).out, nullptr, false);
    if (st.is_discarded()) return false;
    bool proxy_clear = true;
    for (auto& [name, p] : st["paths"].items()) proxy_clear = proxy_clear && p.value("faults", json::object()).empty();
    int fills = 0;
    std::string data = st["db"]["instances"]["db-0"]["data_dir"];
    for (auto& e : fs::directory_iterator(data)) fills += e.path().filename().string().starts_with(".syncstorm-fill-");
    long pod1 = st["units"]["pod-1"].value("pid", 0L);
    std::string stat = t::read_file("/proc/" + std::to_string(pod1) + "/stat");
    auto c = stat.rfind(')');
    bool stopped = c != std::string::npos && stat[c + 2] == 'T';
    return proxy_clear && fills == 0 && !stopped && !rules();
  };
  bool ok = false;
  for (int i = 0; i < 300 && !ok; ++i) {
    ok = restored();
    if (!ok) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(ok) << st.dump() << "\nledger:\n" << t::read_file(rd / "ledger.jsonl") << "\nreaper:\n" << t::read_file(rd / "reaper.log");
  auto rv = t::run(t::bin() + " revert " + rd.string() + " 2>&1");
  EXPECT_EQ(rv.exit_code, 0) << rv.out;
  EXPECT_NE(rv.out.find("nothing to revert"), std::string::npos) << rv.out;
}
