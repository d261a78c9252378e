// The engine's pure decisions, without sockets or a lab: outcome_of over the whole precedence
// table of DESIGN §9 (2, 3, 4, 1, 5, 0), and build_report's document holding every §9 field
// with its type, valid against `syncstorm schema --report`'s spec.
#include "core/report_schema.hpp"
#include "core/scenario.hpp"
#include "engine/judge.hpp"
#include "engine/outcome.hpp"
#include "engine/report.hpp"

#include <gtest/gtest.h>

#include <csignal>

namespace syncstorm::engine {
namespace {

outcome_input::rule passed{true, false}, failed{false, false}, unjudged{false, true};

// Every combination of the six conditions: the highest in the precedence wins.
TEST(outcome_of, follows_the_precedence_table) {
  for (int bits = 0; bits < 64; ++bits) {
    outcome_input in;
    const bool invalid = bits & 1, error = bits & 2, signal = bits & 4, fail = bits & 8, abort = bits & 16,
               inconclusive = bits & 32;
    if (invalid) in.invalid = "scenario.load[0].ops: found percentages summing to 90; expected 100";
    if (error) in.error = "target unreachable: connect 127.0.0.1:1: Connection refused";
    if (signal) {
      in.signal = SIGTERM;
      in.interrupted = true;
    }
    in.rules = {passed};
    if (fail) in.rules.push_back(failed);
    if (abort) in.abort = std::make_pair(std::string("p99-runaway"), std::string("http.latency p99 2 s > 1 s for 5s"));
    if (inconclusive) in.rules.push_back(unjudged);
    const outcome o = outcome_of(in);
    SCOPED_TRACE("bits " + std::to_string(bits));
    if (invalid) {
      EXPECT_EQ(o.exit_code, 2);
      EXPECT_EQ(o.name, "error");
      EXPECT_EQ(o.reason, in.invalid);
    } else if (error) {
      EXPECT_EQ(o.exit_code, 3);
      EXPECT_EQ(o.name, "error");
      EXPECT_EQ(o.reason, in.error);
    } else if (signal) {
      EXPECT_EQ(o.exit_code, 4);
      EXPECT_EQ(o.name, "aborted");
      EXPECT_EQ(o.reason, "interrupted by SIGTERM");
    } else if (fail || abort) {
      EXPECT_EQ(o.exit_code, 1);
      EXPECT_EQ(o.name, "fail");
      EXPECT_EQ(o.reason, abort ? "aborted early: p99-runaway: http.latency p99 2 s > 1 s for 5s" : "");
    } else if (inconclusive) {
      EXPECT_EQ(o.exit_code, 5);
      EXPECT_EQ(o.name, "inconclusive");
      EXPECT_EQ(o.reason, "a rule could not be judged");
    } else {
      EXPECT_EQ(o.exit_code, 0);
      EXPECT_EQ(o.name, "pass");
      EXPECT_EQ(o.reason, "");
    }
  }
}

TEST(outcome_of, names_the_signal_and_passes_with_no_rules) {
  outcome_input in;
  in.signal = SIGINT;
  EXPECT_EQ(outcome_of(in).reason, "interrupted by SIGINT");
  EXPECT_EQ(outcome_of(outcome_input{}).exit_code, 0);
}

scenario sample_scenario() {
  auto r = load_scenario(json::parse(R"({
    "name": "sample", "seed": 7, "target": {"endpoints": {"http": "http://127.0.0.1:1"}, "proxy": {}},
    "load": [{"name": "get", "model": "http", "phases": [{"name": "steady", "for": "10s", "rate": 10}]}],
    "faults": [{"name": "slow", "kind": "latency", "at": "2s", "for": "3s", "latency": "100ms"}],
    "slas": [{"name": "p99", "metric": "http.latency", "stat": "p99", "max": "100ms"}]
  })"),
                         {});
  if (!r.value) throw std::runtime_error(r.errors.empty() ? "?" : r.errors[0]);
  return *r.value;
}

TEST(build_report, holds_every_contract_field) {
  const scenario s = sample_scenario();
  metrics_shard m;
  for (int i = 0; i < 100; ++i) m.metric("http.latency").record(i * 100'000, 1000 + i * 10, i != 50);
  m.metric("http.requests").add(0, 100);
  m.metric("http.errors.timeout").add(5'000'000, 1, false);
  verdict v;
  v.name = "p99";
  v.metric = "http.latency";
  v.stat = "p99";
  v.window = "all";
  v.value = 1.99;
  v.bound = 100;
  v.unit = "ms";
  v.pass = true;
  v.samples = 100;
  report_input in;
  in.s = &s;
  in.started_at = "2026-12-06T10:00:00.000Z";
  in.ended_at = "2026-12-06T10:00:10.000Z";
  in.run_end_us = 10'000'000;
  in.result = {"pass", 0, ""};
  in.verdicts.push_back(verdict_json(v));
  in.merged = &m;
  in.scalars = {
      {"recovery.slow", 250'000.0}, {"audit.lost", 0}, {"outage.max", std::numeric_limits<double>::infinity()}};
  fault_effects e;
  e.name = "slow";
  e.applied_us = 2'000'000;
  e.recovery_us = 250'000;
  e.detect_us = std::numeric_limits<double>::infinity();
  injectors::fault_record rec;
  rec.name = "slow";
  rec.kind = "latency";
  rec.scheduled_us = 2'000'000;
  rec.applied_us = 2'000'000;
  rec.reverted_us = 5'000'000;
  in.faults = faults_report({rec}, {e}, nullptr);
  audit_result a;
  a.acked = a.present = a.ops = 10;
  in.audit = a.to_json();
  in.generator.cpu = 0.25;
  in.generator.lag_p99_ms = 0.4;
  in.generator.threads = 2;
  in.events = json::array({{{"event", "run_started"}, {"t_us", 0}}});
  in.run_dir = "/tmp/runs/x";
  const json r = build_report(in);

  // DESIGN §9: report.json has at least these, with these types.
  for (const char* k : {"schema_version", "syncstorm_version", "seed", "scenario", "started_at", "ended_at", "outcome",
                        "exit_code", "verdicts", "metrics", "faults", "audit", "generator"})
    EXPECT_TRUE(r.contains(k)) << k;
  EXPECT_EQ(r["schema_version"], report_schema_version);
  EXPECT_EQ(r["syncstorm_version"], SYNCSTORM_VERSION);
  EXPECT_EQ(r["seed"], 7);
  EXPECT_EQ(r["scenario"], s.document);
  EXPECT_EQ(r["started_at"], in.started_at);
  EXPECT_EQ(r["ended_at"], in.ended_at);
  EXPECT_EQ(r["outcome"], "pass");
  EXPECT_EQ(r["exit_code"], 0);
  ASSERT_EQ(r["verdicts"].size(), 1u);
  for (const char* k : {"name", "metric", "stat", "window", "value", "bound", "op", "pass", "warn", "inconclusive"})
    EXPECT_TRUE(r["verdicts"][0].contains(k)) << k;
  EXPECT_EQ(r["verdicts"][0]["value"], 1.99);
  EXPECT_EQ(r["verdicts"][0]["op"], "<=");
  ASSERT_EQ(r["faults"].size(), 1u);
  for (const char* k : {"name", "kind", "targets", "scheduled_at", "applied_at", "reverted_at", "recovery_s", "ready_s",
                        "detect_s", "inflight_ops"})
    EXPECT_TRUE(r["faults"][0].contains(k)) << k;
  EXPECT_DOUBLE_EQ(r["faults"][0]["recovery_s"].get<double>(), 0.25);
  EXPECT_TRUE(r["faults"][0]["detect_s"].is_null());  // never: unbounded
  for (const char* k :
       {"acked", "present", "lost", "duplicates", "in_doubt", "order_violations", "diverged", "lost_ids"})
    EXPECT_TRUE(r["audit"].contains(k)) << k;
  for (const char* k : {"cpu", "lag_p99", "saturated"}) EXPECT_TRUE(r["generator"].contains(k)) << k;
  EXPECT_EQ(r["generator"]["lag_p99"], 0.4);
  // Metrics: times in ms with percentiles; scalars judged once in their unit; errors per bucket.
  EXPECT_EQ(r["metrics"]["http.latency"]["unit"], "ms");
  EXPECT_EQ(r["metrics"]["http.latency"]["count"], 100);
  EXPECT_EQ(r["metrics"]["http.latency"]["errors"], 1);
  EXPECT_TRUE(r["metrics"]["http.latency"].contains("p99_9"));
  EXPECT_EQ(r["metrics"]["recovery.slow"], json({{"unit", "ms"}, {"value", 250.0}}));
  EXPECT_EQ(r["metrics"]["outage.max"], json({{"unit", "ms"}, {"value", nullptr}, {"unbounded", true}}));
  EXPECT_FALSE(r["metrics"].contains("audit.lost"));  // in the audit section
  EXPECT_EQ(r["errors"]["http.errors.timeout"], 1);
  EXPECT_FALSE(r.contains("capture"));
  EXPECT_FALSE(r.contains("ws_drops"));
  // And the whole document is what `syncstorm schema --report` describes.
  spec::errors problems;
  spec::validate(r, *report_spec(), "report", problems);
  for (const auto& p : problems) ADD_FAILURE() << p;
}

TEST(build_report, writes_an_abort_as_a_failed_verdict) {
  const scenario s = sample_scenario();
  const json v = abort_verdict_json("probe-down", "GET http://127.0.0.1:1/healthz failed 3 times", nullptr);
  EXPECT_EQ(v["pass"], false);
  EXPECT_EQ(v["inconclusive"], false);
  EXPECT_EQ(v["metric"], "probe");
  EXPECT_EQ(v["stat"], "fail_after");
  EXPECT_EQ(v["reason"], "abort condition fired: GET http://127.0.0.1:1/healthz failed 3 times");
}

TEST(judge, turns_an_abort_into_a_failed_rule_and_notes_unmeasured_faults) {
  const scenario s = sample_scenario();
  const plan p = make_plan(s);
  metrics_shard m;
  for (int i = 0; i < 2000; ++i) m.metric("http.latency").record(i * 5'000, 2'000);
  judge_input in;
  in.s = &s;
  in.p = &p;
  in.merged = &m;
  in.run_end_us = 10'000'000;
  in.audit_absent = "no load in this run keeps client-side op records";
  in.abort = std::make_pair(std::string("stop"), std::string("because"));
  const judgement j = judge(in);
  ASSERT_EQ(j.rules.size(), 2u);
  EXPECT_FALSE(j.rules[0].pass);
  EXPECT_TRUE(j.rules[1].pass) << j.verdicts[1].dump();
  outcome_input oi;
  oi.rules = j.rules;
  oi.abort = in.abort;
  EXPECT_EQ(outcome_of(oi).exit_code, 1);
  EXPECT_FALSE(j.generator.saturated);
  EXPECT_EQ(j.scalars.count("recovery.slow"), 0u);  // the fault never fired
}

}  // namespace
}  // namespace syncstorm::engine
