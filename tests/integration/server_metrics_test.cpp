// Rules on the target's own metrics (target.metrics, issue #26) against the lab with a replica:
// a rule on PostgreSQL replication lag fires in a run where the replica's replay is paused
// (pg_wal_replay_pause() for 8 s while the terminals write) and holds in one where it is not;
// the lab's sources (syncd pods, PostgreSQL, HAProxy) land in report.json's gauges; `across`
// combines the pods (min, sum); a rule on a series the target never exported is inconclusive.
#include "tests/support/lab_fixture.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <thread>

using json = nlohmann::json;
namespace t = syncstorm::test;

namespace {

json scenario_for(const std::string& lab_id) {
  json doc = json::parse(R"({
    "name": "server-metrics", "duration": "18s", "seed": 1,
    "target": {"lab": {"id": "LAB"}, "metrics": {}},
    "load": [{"name": "pos", "model": "terminal", "stores": 1, "terminals_per_store": 4, "rate": 10,
              "ops": {"append": 80, "add": 20, "set": 0}, "keys": 16, "timeout": "10s",
              "phases": [{"name": "steady", "for": "18s", "rate": 20}]}],
    "slas": [
      {"name": "replica-lag", "metric": "server.pg_replication_lag_seconds", "stat": "max", "max": 3},
      {"name": "pods-up", "metric": "server.haproxy_servers_up", "stat": "min", "min": 2},
      {"name": "pod-0-answers", "metric": "server.up", "stat": "min", "min": 1, "load": "pod-0"},
      {"name": "every-pod-db-ready", "metric": "server.syncd_db_ready", "stat": "min", "min": 1, "across": "min"},
      {"name": "pushes-acked", "metric": "server.syncd_push_ops_total", "stat": "max", "min": 1, "across": "sum"}
    ]})");
  doc["target"]["lab"]["id"] = lab_id;
  return doc;
}

const json* verdict(const json& rep, const std::string& name) {
  for (const auto& v : rep["verdicts"])
    if (v["name"] == name) return &v;
  return nullptr;
}

json run_once(const json& doc, int& exit_code, std::string& out) {
  t::temp_dir d;
  t::write_file(d.path() / "s.json", doc.dump());
  auto r =
      t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " 2>&1");
  exit_code = r.exit_code;
  out = r.out;
  return json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
}

}  // namespace

TEST(server_metrics, a_replication_lag_rule_fires_when_replay_is_paused_and_holds_when_it_is_not) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  syncstorm::lab::lab_options o;
  o.id = "srvm" + std::to_string(::getpid() % 1000);
  o.pods = 2;
  o.replica = true;
  t::scoped_lab lab(o);
  ASSERT_TRUE(lab.ok()) << lab.error();
  const auto replica = lab->replica_dsn();
  ASSERT_TRUE(replica);

  // Paused: the replica stops replaying 4 s after the run starts, for 8 s, while the terminals
  // write; its lag grows past the 3 s bound.
  int rc = 0;
  std::string out;
  std::string pause_error;
  std::thread pauser([&] {
    std::this_thread::sleep_for(std::chrono::seconds(4));
    try {
      t::psql(*replica, "SELECT pg_wal_replay_pause()");
      std::this_thread::sleep_for(std::chrono::seconds(8));
      t::psql(*replica, "SELECT pg_wal_replay_resume()");
    } catch (const std::exception& e) {
      pause_error = e.what();
    }
  });
  json doc = scenario_for(lab.id());
  doc["slas"].push_back(
      json::parse(R"({"name": "never-exported", "metric": "server.no_such_series", "stat": "max", "max": 1})"));
  json rep;
  try {
    rep = run_once(doc, rc, out);
  } catch (const std::exception& e) {
    pauser.join();
    FAIL() << e.what() << "\n" << out;
  }
  pauser.join();
  ASSERT_TRUE(pause_error.empty()) << pause_error;
  EXPECT_EQ(rc, 1) << out;
  const json* lag = verdict(rep, "replica-lag");
  ASSERT_NE(lag, nullptr) << out;
  EXPECT_FALSE((*lag)["pass"].get<bool>()) << lag->dump();
  EXPECT_GE((*lag)["value"].get<double>(), 5.0) << lag->dump();
  const json* pods = verdict(rep, "pods-up");
  ASSERT_NE(pods, nullptr);
  EXPECT_TRUE((*pods)["pass"].get<bool>()) << pods->dump();
  const json* pod0 = verdict(rep, "pod-0-answers");
  ASSERT_NE(pod0, nullptr);
  EXPECT_TRUE((*pod0)["pass"].get<bool>()) << pod0->dump();
  // across: the lowest of the pods' db_ready, and the sum of their acked pushes (the series
  // "sum(server.syncd_push_ops_total)", which the verdict names).
  for (const char* name : {"every-pod-db-ready", "pushes-acked"}) {
    const json* v = verdict(rep, name);
    ASSERT_NE(v, nullptr) << name;
    EXPECT_TRUE((*v)["pass"].get<bool>()) << v->dump();
  }
  EXPECT_EQ((*verdict(rep, "pushes-acked"))["metric"], "sum(server.syncd_push_ops_total)");
  ASSERT_TRUE(rep["metrics"].contains("sum(server.syncd_push_ops_total)"));
  ASSERT_TRUE(rep["metrics"].contains("server.syncd_push_ops_total@pod-0"));
  ASSERT_TRUE(rep["metrics"].contains("server.syncd_push_ops_total@pod-1"));
  EXPECT_EQ(rep["metrics"]["sum(server.syncd_push_ops_total)"]["last"].get<double>(),
            rep["metrics"]["server.syncd_push_ops_total@pod-0"]["last"].get<double>() +
                rep["metrics"]["server.syncd_push_ops_total@pod-1"]["last"].get<double>());
  const json* missing = verdict(rep, "never-exported");
  ASSERT_NE(missing, nullptr);
  EXPECT_TRUE((*missing)["inconclusive"].get<bool>()) << missing->dump();
  // The sources' series are in the report: PostgreSQL on both sides, a syncd pod's own counters.
  const json& g = rep["gauges"];
  for (const char* name : {"server.pg_replication_lag_seconds@db-replica", "server.pg_replay_paused@db-replica",
                           "server.pg_replicas@db-primary", "server.syncd_push_ops_total@pod-0",
                           "server.syncd_push_ops_total", "server.haproxy_servers@lb"})
    EXPECT_TRUE(g.contains(name)) << name << " missing from " << g.dump().substr(0, 2000);
  ASSERT_TRUE(rep["metrics"].contains("server.pg_replay_paused@db-replica"));
  EXPECT_EQ(rep["metrics"]["server.pg_replay_paused@db-replica"]["peak"].get<double>(), 1.0);
  EXPECT_EQ(rep["metrics"]["server.haproxy_servers_up"]["last"].get<double>(), 2.0);

  // Not paused: the same rule holds.
  rep = run_once(scenario_for(lab.id()), rc, out);
  EXPECT_EQ(rc, 0) << out;
  lag = verdict(rep, "replica-lag");
  ASSERT_NE(lag, nullptr);
  EXPECT_TRUE((*lag)["pass"].get<bool>()) << lag->dump();
}
