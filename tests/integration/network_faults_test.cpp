// Network faults on the real lab through `syncstorm run` (issue #9): the fault proxy (the lab
// relay) and iptables partitions, each shown in measured data and gone after revert:
//   - 200 ms downstream latency on clients→LB: push.latency p50 rises by 200 ms ± 25%, then returns;
//   - http_error 10%: availability.attempts ≈ 90% ± 3 while every op is acknowledged (retries);
//   - pods→DB partition for 20 s: readyz fails, pushes fail or queue, both recover after the heal;
//   - 10 Mbit/s bandwidth: the path's upstream bytes/s stay ≤ 10 Mbit/s + 10%; the same with the
//     kernel shaper (`via: tc`, htb on the pods' eth0) on pods→db, and its qdisc gone after;
//   - one-way clients→LB and LB→clients cuts: requests stop reaching the LB only in the first;
//   - crash safety: on one running lab (target.lab.id), the controller (and every third round its
//     reaper, then `revert`) SIGKILLed at 20 seeded
//     random moments around a partition, a latency, a pause and a disk fill; the reaper leaves
//     no rule, no fill file, no stopped process, the proxy in pass-through.
#include "tests/support/run_events.hpp"
#include "tests/support/lab_fixture.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>
#include <set>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

using t::wait_event;

fs::path wait_events_file(const fs::path& out) {
  fs::path rd = t::wait_run_dir(out);
  return rd.empty() ? rd : rd / "events.jsonl";
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
  for (const auto& v : rep["verdicts"])
    if (v["name"] == name) return v["value"].is_number() ? v["value"].get<double>() : -1;
  return -1;
}

const json* fault(const json& rep, const std::string& name) {
  for (const auto& f : rep["faults"])
    if (f["name"] == name) return &f;
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
  return {{"name", name},
          {"metric", metric},
          {"stat", stat},
          {"window", window},
          {"max", stat == "ratio" ? json(100) : json("1h")}};
}

}  // namespace

TEST(network_faults, latency_http_error_and_partition_show_their_effect_and_recover) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  auto phase = [](const char* n, const char* len) { return json{{"name", n}, {"for", len}}; };
  json doc = {
      {"name", "net-faults"},
      {"duration", "66s"},
      {"target", {{"lab", {{"pods", 2}, {"health", {{"interval", "500ms"}, {"fall", 2}, {"rise", 2}}}}}}},
      {"load",
       {{{"name", "pos"},
         {"model", "terminal"},
         {"stores", 2},
         {"terminals_per_store", 3},
         {"rate", 4},
         {"ops", {{"append", 100}}},
         {"keys", 4},
         {"drain", "30s"},
         // Clients that come back within a second of the heal: the recovery
         // measured is the stack's, not a 10 s backoff cap's.
         {"retry", {{"base", "100ms"}, {"max", "1s"}, {"limit", 0}}},
         {"breaker", {{"threshold", 5}, {"open_for", "1s"}}},
         {"phases",
          {phase("before", "5s"), phase("lat", "8s"), phase("mid", "5s"), phase("herr", "14s"), phase("gap", "4s"),
           phase("cut", "20s"), phase("tail", "10s")}}}}},
      {"faults",
       {{{"name", "lat"},
         {"kind", "latency"},
         {"path", "clients-lb"},
         {"direction", "down"},
         {"latency", "200ms"},
         {"at", "5s"},
         {"for", "8s"}},
        {{"name", "herr"}, {"kind", "http_error"}, {"percent", 10}, {"status", 503}, {"at", "18s"}, {"for", "14s"}},
        {{"name", "cut"}, {"kind", "partition"}, {"from", "pods"}, {"to", "db"}, {"at", "36s"}, {"for", "20s"}}}},
      {"slas",
       {probe("p50-before", "push.latency", "p50", "phase:pos/before"),
        probe("p50-lat", "push.latency", "p50", "phase:pos/lat"),
        probe("p50-mid", "push.latency", "p50", "phase:pos/mid"),
        probe("att-herr", "availability.attempts", "ratio", "phase:pos/herr"),
        {{"name", "all-acked"}, {"metric", "availability.ops"}, {"stat", "ratio"}, {"min", "100%"}},
        {{"name", "nothing-lost"}, {"metric", "audit.lost"}, {"stat", "max"}, {"max", 0}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  fs::path log = d.path() / "run.log";
  t::child run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " > " +
               log.string() + " 2>&1");
  fs::path ev = wait_events_file(d.path() / "runs");
  ASSERT_FALSE(ev.empty());
  auto up = wait_event(
      ev, [](const json& e) { return e["event"] == "lab_up"; }, std::chrono::seconds(180));
  ASSERT_TRUE(up) << t::read_file(log);
  const std::string base = (*up)["http"];
  // The partition: /readyz fails while the pods cannot reach the DB, and comes back after.
  ASSERT_TRUE(wait_event(
      ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "cut"; }, std::chrono::seconds(90)))
      << t::read_file(log);
  int during = 200;
  for (int i = 0; i < 150 && during == 200; ++i) {
    during = http_status(base + "/readyz");
    if (during == 200) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(during, 200) << "/readyz stayed 200 for 15 s of a pods→db partition";
  ASSERT_TRUE(wait_event(
      ev, [](const json& e) { return e["event"] == "fault_reverted" && e["fault"] == "cut"; },
      std::chrono::seconds(40)))
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
  json load = {{"name", "push"},
               {"model", "http"},
               {"connections", 32},
               {"timeout", "10s"},
               {"request",
                {{"method", "POST"},
                 {"path", "/v1/push"},
                 {"body",
                  {{"client", "bw"},
                   {"ops",
                    {{{"id", "bw-1"},
                      {"stream", "s-1"},
                      {"seq", 1},
                      {"t_us", 0},
                      {"kind", "append"},
                      {"body", {{"pad", pad}}}}}}}}}},
               {"phases", {{{"name", "steady"}, {"for", "38s"}, {"rate", 300}}}}};
  json doc = {{"name", "net-bw"},
              {"duration", "38s"},
              {"target", {{"lab", {{"pods", 2}}}}},
              {"load", {load}},
              {"faults",
               {{{"name", "bw"},
                 {"kind", "bandwidth"},
                 {"path", "clients-lb"},
                 {"direction", "up"},
                 {"rate", "10Mbit/s"},
                 {"at", "6s"},
                 {"for", "8s"}},
                {{"name", "up-cut"},
                 {"kind", "partition"},
                 {"from", "clients"},
                 {"to", "lb"},
                 {"symmetric", false},
                 {"at", "15s"},
                 {"for", "9s"}},
                {{"name", "down-cut"},
                 {"kind", "partition"},
                 {"from", "lb"},
                 {"to", "clients"},
                 {"symmetric", false},
                 {"at", "25s"},
                 {"for", "5s"}},
                // The kernel shaper (tc htb on each pod's eth0, DB traffic only): 4 Mbit/s per pod.
                {{"name", "bw-tc"},
                 {"kind", "bandwidth"},
                 {"path", "pods-db"},
                 {"direction", "up"},
                 {"rate", "4Mbit/s"},
                 {"via", "tc"},
                 {"at", "31s"},
                 {"for", "6s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  fs::path log = d.path() / "run.log";
  t::child run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " > " +
               log.string() + " 2>&1");
  fs::path ev = wait_events_file(d.path() / "runs");
  ASSERT_FALSE(ev.empty());
  auto up = wait_event(
      ev, [](const json& e) { return e["event"] == "lab_up"; }, std::chrono::seconds(180));
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
  double db_before = relay_path(lab, "db").value("bytes_up", 0.0);
  double free_Bps = rate("bytes_up", 2000);
  double db_free_Bps = (relay_path(lab, "db").value("bytes_up", 0.0) - db_before) / 2.0;
  ASSERT_TRUE(wait_event(
      ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "bw"; }, std::chrono::seconds(30)));
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
    std::string body =
        R"({"client":"oneway","ops":[{"id":")" + id + R"(","stream":"oneway","seq":1,"t_us":1,"kind":"append"}]})";
    return http_status("-H 'Content-Type: application/json' -d '" + body + "' " + base_url(st) + "/v1/push");
  };
  auto stored = [&](const std::string& id) {
    // Held bytes are released when a blackhole heals: look within the cut (1 s), not after it.
    for (int i = 0; i < 5; ++i) {
      if (t::run("curl -s -m 3 '" + direct + "/v1/changes?stream=oneway&after=0&limit=100'").out.find(id) !=
          std::string::npos)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return false;
  };
  ASSERT_TRUE(wait_event(
      ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "up-cut"; },
      std::chrono::seconds(30)));
  EXPECT_EQ(probe_push("ow-up"), 0);
  EXPECT_FALSE(stored("ow-up")) << "a request crossed a clients→lb cut";
  ASSERT_TRUE(wait_event(
      ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "down-cut"; },
      std::chrono::seconds(30)));
  EXPECT_EQ(probe_push("ow-down"), 0);
  EXPECT_TRUE(stored("ow-down")) << "with only lb→clients cut, the request should reach the server and be applied";
  // tc: the pods' bytes toward the DB (the db relay's upstream counter) stay ≤ 2 × 4 Mbit/s + 10%,
  // and the qdisc is gone after the revert.
  ASSERT_TRUE(wait_event(
      ev, [](const json& e) { return e["event"] == "fault_applied" && e["fault"] == "bw-tc"; },
      std::chrono::seconds(30)));
  const std::string pod0 = "ss-" + lab + "-pod0";
  EXPECT_NE(t::run("ip netns exec " + pod0 + " tc qdisc show dev eth0").out.find("qdisc htb"), std::string::npos);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  double db_a = relay_path(lab, "db").value("bytes_up", 0.0);
  std::this_thread::sleep_for(std::chrono::milliseconds(4000));
  double db_limited_Bps = (relay_path(lab, "db").value("bytes_up", 0.0) - db_a) / 4.0;
  EXPECT_GT(db_free_Bps * 8, 12e6) << "the DB traffic must exceed the tc limit for the test to mean anything";
  EXPECT_LE(db_limited_Bps * 8, 8.8e6) << "2 pods x 4 Mbit/s (tc htb), measured " << db_limited_Bps * 8 / 1e6
                                       << " Mbit/s toward the DB";
  EXPECT_GT(db_limited_Bps * 8, 2e6) << "the shaped DB path should still carry traffic";
  ASSERT_TRUE(wait_event(
      ev, [](const json& e) { return e["event"] == "fault_reverted" && e["fault"] == "bw-tc"; },
      std::chrono::seconds(30)));
  EXPECT_EQ(t::run("ip netns exec " + pod0 + " tc qdisc show dev eth0").out.find("qdisc htb"), std::string::npos);
  std::cerr << "bandwidth: clients->lb free " << free_Bps * 8 / 1e6 << " Mbit/s, proxy-limited "
            << limited_Bps * 8 / 1e6 << " Mbit/s; pods->db free " << db_free_Bps * 8 / 1e6 << " Mbit/s, tc-limited "
            << db_limited_Bps * 8 / 1e6 << " Mbit/s\n";
  int rc = wait_exit(run, 120);
  EXPECT_NE(rc, -1) << t::read_file(log);
  EXPECT_NE(rc, 3) << t::read_file(log);  // every fault applied and reverted
  // After the run the proxy is back in pass-through... (the lab is gone with the run; checked
  // through the report's fault records instead).
  json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  for (auto name : {"bw", "up-cut", "down-cut", "bw-tc"}) {
    const json* f = fault(rep, name);
    ASSERT_NE(f, nullptr) << name;
    EXPECT_FALSE(f->contains("error")) << f->dump();
    EXPECT_TRUE((*f)["reverted_at"].is_number()) << f->dump();
  }
}

// One lab, brought up once (as an SRE keeps one for a game day); ten runs attach to it with
// target.lab.id and are SIGKILLed at seeded random moments: some before their faults are
// applied, some while they are being applied, most while all five (partition, latency, pause,
// disk fill, and a tc bandwidth shaper) are in place. After each kill: no rule tagged by the run
// in the host or the pods' namespaces, no htb qdisc, no fill file, no stopped pod, every relay
// path in pass-through, and `revert` finds nothing left.
// Issue #24: SIGKILLs at seeded random moments (before, while and after the faults are applied),
// of the controller alone (the reaper restores) and, every third round, of the controller and
// its reaper together followed by `syncstorm revert`. Foreign iptables rules (host and pod
// namespaces) and a foreign qdisc are planted first and must stay byte for byte. Rounds:
// $SYNCSTORM_KILL_ROUNDS, default 20 (CI); the `long` run (SYNCSTORM_LONG_TESTS=ON) does 1,000.
TEST(network_faults, the_reaper_or_revert_restores_a_running_lab_after_randomized_sigkills) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  const std::string id = "ncr" + std::to_string(::getpid() % 100000);
  auto up = t::run(t::bin() + " lab up --id " + id + " --pods 2 --db-volume 96MiB 2>&1");
  t::cli_lab_guard guard(id);
  ASSERT_EQ(up.exit_code, 0) << up.out;
  json st0 = json::parse(t::run(t::bin() + " lab status --json --id " + id).out);
  const std::string data = st0["db"]["instances"]["db-0"]["data_dir"];
  // The scenario's name is in every run's rule tag (syncstorm:<time>-<name>).
  const std::string name = "ncrash" + std::to_string(::getpid());
  json load = {{"name", "push"},
               {"model", "http"},
               {"connections", 8},
               {"timeout", "10s"},
               {"request", {{"method", "GET"}, {"path", "/healthz"}}},
               {"phases", {{{"name", "steady"}, {"for", "60s"}, {"rate", 20}}}}};
  json doc = {
      {"name", name},
      {"duration", "60s"},
      {"target", {{"lab", {{"id", id}}}}},
      {"load", {load}},
      {"faults",
       {{{"name", "cut"}, {"kind", "partition"}, {"from", "pods"}, {"to", "db"}, {"at", "300ms"}, {"for", "50s"}},
        {{"name", "lat"}, {"kind", "latency"}, {"latency", "100ms"}, {"at", "300ms"}, {"for", "50s"}},
        {{"name", "pause"}, {"kind", "pause"}, {"target", {{"pods", {"pod-1"}}}}, {"at", "300ms"}, {"for", "50s"}},
        {{"name", "fill"}, {"kind", "disk_fill"}, {"volume", "db"}, {"leave", "4MiB"}, {"at", "300ms"}, {"for", "50s"}},
        {{"name", "shape"},
         {"kind", "bandwidth"},
         {"path", "pods-db"},
         {"rate", "8Mbit/s"},
         {"via", "tc"},
         {"at", "300ms"},
         {"for", "50s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  const int rounds = std::max(1, std::atoi(t::env_or("SYNCSTORM_KILL_ROUNDS", "20").c_str()));
  // Foreign rules and a qdisc nobody in syncstorm made: a host rule and a pod-namespace rule on
  // TEST-NET addresses (no traffic goes there), a tbf on each pod namespace's lo.
  const std::string tag = "foreign-" + id;
  const std::vector<std::string> pod_ns = {"ss-" + id + "-pod0", "ss-" + id + "-pod1"};
  struct foreign_guard {
    std::string tag;
    ~foreign_guard() {
      t::run("iptables -D INPUT -s 192.0.2.77/32 -m comment --comment " + tag + " -j DROP 2>/dev/null");
    }
  } foreign{tag};
  ASSERT_EQ(t::run("iptables -A INPUT -s 192.0.2.77/32 -m comment --comment " + tag + " -j DROP 2>&1").exit_code, 0);
  for (const auto& ns : pod_ns) {
    ASSERT_EQ(t::run("ip netns exec " + ns + " iptables -A OUTPUT -d 198.51.100.7/32 -m comment --comment " + tag +
                     " -j DROP 2>&1")
                  .exit_code,
              0);
    auto q = t::run("ip netns exec " + ns +
                    " tc qdisc add dev lo root handle 77: tbf rate 10gbit burst 1mb latency 50ms 2>&1");
    ASSERT_EQ(q.exit_code, 0) << q.out;
  }
  auto foreign_now = [&] {
    std::string out;
    auto keep = [&](const std::string& text) {
      std::istringstream in(text);
      for (std::string line; std::getline(in, line);)
        if (line.find(tag) != std::string::npos) out += line + "\n";
    };
    keep(t::run("iptables-save 2>/dev/null").out);
    for (const auto& ns : pod_ns) {
      keep(t::run("ip netns exec " + ns + " iptables-save 2>/dev/null").out);
      out += ns + " lo: " + t::run("ip netns exec " + ns + " tc qdisc show dev lo 2>&1").out;
    }
    return out;
  };
  const std::string foreign_before = foreign_now();
  ASSERT_NE(foreign_before.find("77: root"), std::string::npos) << foreign_before;
  auto status = [&] { return json::parse(t::run(t::bin() + " lab status --json --id " + id).out, nullptr, false); };
  auto ours = [&] {
    // Rules of this test's runs anywhere on the host or in the lab's pod namespaces.
    std::string all = t::run("iptables-save 2>/dev/null").out;
    for (auto& ns : {"ss-" + id + "-pod0", "ss-" + id + "-pod1"})
      all += t::run("ip netns exec " + ns + " iptables-save 2>/dev/null").out;
    std::string found;
    std::istringstream in(all);
    for (std::string line; std::getline(in, line);)
      if (line.find(name) != std::string::npos) found += line + "\n";
    return found;
  };
  auto state_of = [](long pid) {
    std::string s = t::read_file("/proc/" + std::to_string(pid) + "/stat");
    auto c = s.rfind(')');
    return c == std::string::npos || c + 2 >= s.size() ? '?' : s[c + 2];
  };
  auto healthy = [&](const json& st) {
    if (st.is_discarded()) return false;
    for (auto u : {"pod-0", "pod-1", "db-0", "relay", "lb"})
      if (st["units"][u].value("status", "") != "ready") return false;
    return true;
  };
  // Returns what is still not restored (empty: everything).
  auto leftovers = [&] {
    std::string left = ours();
    json st = status();
    if (st.is_discarded()) return std::string("lab status failed");
    for (auto& [path, p] : st["paths"].items())
      if (!p.value("faults", json::object()).empty())
        left += "relay path " + path + " faults " + p["faults"].dump() + "\n";
    for (auto& e : fs::directory_iterator(data))
      if (e.path().filename().string().starts_with(".syncstorm-fill-")) left += "fill file " + e.path().string() + "\n";
    for (auto& ns : {"ss-" + id + "-pod0", "ss-" + id + "-pod1"})
      if (auto q = t::run("ip netns exec " + ns + " tc qdisc show dev eth0 2>&1").out;
          q.find("qdisc htb") != std::string::npos)
        left += ns + ": " + q;
    for (auto& dev : {"sv-" + id + "-0", "sv-" + id + "-1"})
      if (auto q = t::run("tc qdisc show dev " + dev + " 2>&1").out; q.find("qdisc htb") != std::string::npos)
        left += dev + ": " + q;
    // The netem probe's namespace is anonymous: none named after it may outlive a kill.
    if (auto n = t::run("ip netns list 2>&1").out; n.find("ss-netem-probe") != std::string::npos) left += "netns: " + n;
    for (auto u : {"pod-0", "pod-1"}) {
      long pid = st["units"][u].value("pid", 0L);
      if (pid > 0 && state_of(pid) == 'T') left += std::string(u) + " (pid " + std::to_string(pid) + ") stopped\n";
    }
    return left;
  };
  std::mt19937 rng(20260611);
  auto ledger_intents = [](const fs::path& rd) {
    int n = 0;
    std::istringstream in(t::read_file(rd / "ledger.jsonl"));
    for (std::string line; std::getline(in, line);) {
      auto j = json::parse(line, nullptr, false);
      n += !j.is_discarded() && j.value("step", "") == "apply" && j.value("phase", "") == "intent";
    }
    return n;
  };
  int with_all_applied = 0;
  const auto began = std::chrono::steady_clock::now();
  int reaper_kills = 0;
  for (int i = 0; i < rounds; ++i) {
    SCOPED_TRACE("round " + std::to_string(i));
    json st;
    for (int w = 0; w < 300 && !healthy(st = status()); ++w)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(healthy(st)) << st.dump();
    // Of every ten rounds, 0 and 5: before the faults; 3 and 7: while they are being applied;
    // else all applied. Every third round the reaper is killed too, and `revert` restores.
    const int k = i % 10;
    const char* when = (k == 0 || k == 5) ? "early" : (k == 3 || k == 7) ? "applying" : "applied";
    const bool kill_reaper = i % 3 == 2;
    fs::path out = d.path() / ("runs-" + std::to_string(i));
    fs::path log = d.path() / ("log-" + std::to_string(i));
    t::child run("exec " + t::bin() + " run " + (d.path() / "s.json").string() + " --out " + out.string() + " > " +
                 log.string() + " 2>&1");
    int extra_ms = 0;
    if (std::string(when) == "early") {
      extra_ms = std::uniform_int_distribution<int>(0, 500)(rng);
    } else {
      fs::path ev = wait_events_file(out);
      ASSERT_FALSE(ev.empty()) << t::read_file(log);
      const int need = std::string(when) == "applying" ? 1 : 5;
      std::set<std::string> applied;
      ASSERT_TRUE(wait_event(
          ev,
          [&](const json& e) {
            if (e["event"] == "fault_applied") applied.insert(e.value("fault", ""));
            return static_cast<int>(applied.size()) >= need;
          },
          std::chrono::seconds(60)))
          << t::read_file(log);
      extra_ms = std::uniform_int_distribution<int>(0, std::string(when) == "applying" ? 150 : 1500)(rng);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(extra_ms));
    fs::path rd;
    try {
      rd = t::only_run_dir(out);
    } catch (...) {
    }
    // The reaper first (its pid is in its log once it runs), then the controller: nothing is left
    // to restore the lab but `syncstorm revert`.
    pid_t reaper = 0;
    if (kill_reaper && !rd.empty()) {
      std::string rlog = t::read_file(rd / "reaper.log");
      if (auto at = rlog.find("(pid "); at != std::string::npos)
        reaper = static_cast<pid_t>(std::atol(rlog.c_str() + at + 5));
      if (reaper > 1) ::kill(reaper, SIGKILL);
    }
    ::kill(run.pid(), SIGKILL);
    run.stop();
    if (rd.empty()) {
      try {
        rd = t::only_run_dir(out);
      } catch (...) {
      }
    }
    if (reaper > 1) {
      ++reaper_kills;
      auto rv = t::run(t::bin() + " revert " + rd.string() + " 2>&1");
      EXPECT_EQ(rv.exit_code, 0) << rv.out;
    }
    const int intents = rd.empty() ? 0 : ledger_intents(rd);
    with_all_applied += intents >= 5 && std::string(when) == "applied";
    std::string left = "?";
    const auto killed = std::chrono::steady_clock::now();
    for (int w = 0; w < 300 && !left.empty(); ++w) {
      left = leftovers();
      if (!left.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    std::cerr
        << "round " << i << ": killed " << when << " +" << extra_ms << " ms" << (reaper > 1 ? " with its reaper" : "")
        << " with " << intents << " apply intents; restored in "
        << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed).count()
        << " ms\n";
    EXPECT_EQ(foreign_now(), foreign_before) << "a foreign rule or qdisc changed";
    EXPECT_EQ(left, "") << "killed " << when << " (+" << extra_ms << " ms, " << intents << " apply intents)\n"
                        << (rd.empty() ? std::string("no run directory")
                                       : "ledger:\n" + t::read_file(rd / "ledger.jsonl") + "\nreaper:\n" +
                                             t::read_file(rd / "reaper.log"));
    if (rd.empty()) continue;  // killed before it made its directory: nothing of it can be left
    auto rv = t::run(t::bin() + " revert " + rd.string() + " 2>&1");
    EXPECT_EQ(rv.exit_code, 0) << rv.out;
    EXPECT_NE(rv.out.find("nothing to revert"), std::string::npos) << rv.out << "\nreaper:\n"
                                                                   << t::read_file(rd / "reaper.log");
  }
  EXPECT_GE(with_all_applied, rounds * 4 / 10) << "most kills should land while all five faults are applied";
  if (rounds >= 3) {
    EXPECT_GE(reaper_kills, rounds / 6) << "the reaper was killed in too few rounds";
  }
  std::cerr << rounds << " rounds (" << reaper_kills << " with the reaper killed too) in "
            << std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - began).count()
            << " s\n";
}

// Issue #24: a run whose controller and reaper are both killed while a pods→db partition holds
// leaves its host iptables rule; `lab down` removes it with the lab (and `revert` afterwards finds
// nothing left to undo).
TEST(network_faults, lab_down_removes_the_host_rules_a_killed_run_left) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  t::temp_dir d;
  const std::string id = "ndn" + std::to_string(::getpid() % 100000);
  auto up = t::run(t::bin() + " lab up --id " + id + " --pods 2 2>&1");
  t::cli_lab_guard guard(id);
  ASSERT_EQ(up.exit_code, 0) << up.out;
  json st = json::parse(t::run(t::bin() + " lab status --json --id " + id).out);
  const std::string name = "ndown" + std::to_string(::getpid());
  json load = {{"name", "push"},
               {"model", "http"},
               {"connections", 4},
               {"timeout", "5s"},
               {"request", {{"method", "GET"}, {"path", "/healthz"}}},
               {"phases", {{{"name", "steady"}, {"for", "60s"}, {"rate", 10}}}}};
  json doc = {
      {"name", name},
      {"duration", "60s"},
      {"target", {{"lab", {{"id", id}}}}},
      {"load", {load}},
      {"faults",
       {{{"name", "cut"}, {"kind", "partition"}, {"from", "pods"}, {"to", "db"}, {"at", "300ms"}, {"for", "50s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  fs::path out = d.path() / "runs", log = d.path() / "log";
  t::child run("exec " + t::bin() + " run " + (d.path() / "s.json").string() + " --out " + out.string() + " > " +
               log.string() + " 2>&1");
  fs::path ev = wait_events_file(out);
  ASSERT_FALSE(ev.empty()) << t::read_file(log);
  ASSERT_TRUE(wait_event(
      ev, [](const json& e) { return e["event"] == "fault_applied"; }, std::chrono::seconds(60)))
      << t::read_file(log);
  fs::path rd = t::only_run_dir(out);
  std::string rlog = t::read_file(rd / "reaper.log");
  auto at = rlog.find("(pid ");
  ASSERT_NE(at, std::string::npos) << rlog;
  ::kill(static_cast<pid_t>(std::atol(rlog.c_str() + at + 5)), SIGKILL);
  ::kill(run.pid(), SIGKILL);
  run.stop();
  auto host_rules = [&] {
    std::string found;
    std::istringstream in(t::run("iptables-save 2>/dev/null").out);
    for (std::string line; std::getline(in, line);)
      if (line.find("syncstorm:") != std::string::npos && line.find(name) != std::string::npos) found += line + "\n";
    return found;
  };
  ASSERT_NE(host_rules(), "") << "the partition left no host rule to find\n" << t::read_file(rd / "ledger.jsonl");
  auto down = t::run(t::bin() + " lab down --id " + id + " 2>&1");
  EXPECT_EQ(down.exit_code, 0) << down.out;
  EXPECT_EQ(host_rules(), "");
  auto rv = t::run(t::bin() + " revert " + rd.string() + " 2>&1");
  EXPECT_EQ(rv.exit_code, 0) << rv.out;
}

// A run that names a lab that is not up does nothing and says so (exit 3, one line).
TEST(network_faults, a_run_on_a_lab_that_is_not_up_is_refused) {
  t::temp_dir d;
  json doc = {{"name", "nolab"},
              {"duration", "2s"},
              {"target", {{"lab", {{"id", "zz9nolab"}}}}},
              {"load",
               {{{"name", "h"},
                 {"model", "http"},
                 {"request", {{"path", "/healthz"}}},
                 {"phases", {{{"name", "p"}, {"for", "2s"}, {"rate", 1}}}}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  auto r =
      t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.out.find("target.lab.id: found \"zz9nolab\"; expected a lab that is up"), std::string::npos) << r.out;
  // Options beside the id are bad input (nothing runs).
  doc["target"]["lab"]["pods"] = 3;
  t::write_file(d.path() / "s.json", doc.dump());
  r = t::run(t::bin() + " validate " + (d.path() / "s.json").string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario.target.lab.pods: found 3 beside \"id\""), std::string::npos) << r.out;
}
