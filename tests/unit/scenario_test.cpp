// The scenario contract (DESIGN §9): malformed scenarios each give their expected one-line
// message (and every problem is reported), --set on objects, arrays and JSON values,
// --time-scale on exactly what §9 lists, units, and typed loading.
#include "core/plan.hpp"
#include "core/scenario.hpp"
#include "core/units.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace syncstorm;
using json = nlohmann::json;

namespace {

json base() {
  return json::parse(R"({
    "name": "unit", "duration": "60s", "seed": 7,
    "target": {"endpoints": {"http": "http://127.0.0.1:8080"}},
    "load": [{"name": "api", "model": "http", "request": {"path": "/x"},
              "phases": [{"name": "warm", "for": "20s", "rate": 50}, {"name": "steady", "for": "40s", "rate": 100}]}],
    "slas": [{"name": "p99", "metric": "http.latency", "stat": "p99", "max": "100ms"}]
  })");
}

std::string all_errors(const spec::errors& e) {
  std::string s;
  for (const auto& x : e) s += x + "\n";
  return s;
}

// The document must be rejected with a line containing `expected` exactly.
void expect_error(const json& doc, const std::string& expected) {
  auto errors = validate_document(doc);
  ASSERT_FALSE(errors.empty()) << "accepted: " << doc.dump();
  bool found = std::any_of(errors.begin(), errors.end(),
                           [&](const std::string& e) { return e.find(expected) != std::string::npos; });
  EXPECT_TRUE(found) << "wanted: " << expected << "\ngot:\n" << all_errors(errors);
}

}  // namespace

TEST(scenario, base_is_valid) {
  auto e = validate_document(base());
  EXPECT_TRUE(e.empty()) << all_errors(e);
}

TEST(scenario, bad_duration_in_phase) {
  auto d = base();
  d["load"][0]["phases"][0]["for"] = "3x";
  expect_error(d, R"(scenario.load[0].phases[0].for: found "3x"; expected a duration like "30s")");
}

TEST(scenario, bad_fault_at_has_the_design_example_message) {
  auto d = base();
  d["faults"] = json::array({{{"name", "k"}, {"kind", "kill"}, {"target", {{"pods", "pod-*"}}}, {"at", "3x"}}});
  expect_error(d, R"(scenario.faults[0].at: found "3x"; expected a duration like "30s")");
}

TEST(scenario, unknown_top_level_key_has_did_you_mean) {
  auto d = base();
  d["slass"] = json::array();
  expect_error(
      d,
      R"(scenario.slass: found unknown key "slass"; expected one of: name, description, duration, seed, target, load, faults, slas, abort, capture, report, safety (did you mean "slas"?))");
}

TEST(scenario, missing_name) {
  auto d = base();
  d.erase("name");
  expect_error(d, "scenario.name: found nothing; expected a name of letters, digits, '_', '.' or '-' (required)");
}

TEST(scenario, unknown_model) {
  auto d = base();
  d["load"][0]["model"] = "htp";
  expect_error(d, R"(scenario.load[0].model: found "htp"; expected a load model this build runs, one of )");
  expect_error(d, R"((did you mean "http"?))");
}

TEST(scenario, bad_rate) {
  auto d = base();
  d["load"][0]["phases"][1]["rate"] = "fast";
  expect_error(
      d,
      R"(scenario.load[0].phases[1].rate: found "fast"; expected a rate like "50/s" or a number per second, at most 10000000/s)");
}

// Numbers out of range are exit-2 errors naming the path (issue #23), never an overflow later:
// a rate past 10,000,000/s, a duration of 1e300 seconds, a size past 2^63 bytes.
TEST(scenario, numbers_out_of_range_name_their_path) {
  auto d = base();
  d["load"][0]["phases"][1]["rate"] = 1e308;
  expect_error(d, "scenario.load[0].phases[1].rate: found 1e+308; expected a rate like");
  d["load"][0]["phases"][1]["rate"] = "100000000000/s";
  expect_error(d, R"(scenario.load[0].phases[1].rate: found "100000000000/s"; expected a rate like)");
  d = base();
  d["duration"] = 1e300;
  expect_error(d, "scenario.duration: found 1e+300; expected a duration like");
  d = base();
  d["duration"] = "99999999999999999999h";
  expect_error(d, R"(scenario.duration: found "99999999999999999999h"; expected a duration like)");
  EXPECT_FALSE(syncstorm::units::parse_size("99999999999TiB"));
  EXPECT_FALSE(syncstorm::units::parse_rate("10000001/s"));
  EXPECT_EQ(syncstorm::units::parse_rate("10000000/s"), 1e7);
}

TEST(scenario, target_needs_exactly_one_of_lab_and_endpoints) {
  auto d = base();
  d["target"]["lab"] = {{"pods", 2}};
  expect_error(d, R"(scenario.target: found both "lab", "endpoints"; expected exactly one of "lab", "endpoints")");
  d["target"].erase("lab");
  d["target"].erase("endpoints");
  expect_error(d, R"(scenario.target: found none of them; expected exactly one of "lab", "endpoints")");
}

TEST(scenario, window_names_a_fault_that_does_not_exist) {
  auto d = base();
  d["slas"][0]["window"] = "during:nope";
  expect_error(
      d,
      R"(scenario.slas[0].window: found "during:nope" but no fault is named "nope"; expected one of the faults: (none))");
}

TEST(scenario, window_names_a_phase_that_does_not_exist) {
  auto d = base();
  d["slas"][0]["window"] = "phase:api/peak";
  expect_error(
      d,
      R"(scenario.slas[0].window: found "phase:api/peak" but api has no phase "peak"; expected phase:<load>/<phase>)");
}

TEST(scenario, unknown_metric_lists_the_known_ones) {
  auto d = base();
  d["slas"][0]["metric"] = "http.latncy";
  expect_error(d,
               R"(scenario.slas[0].metric: found "http.latncy"; expected a metric of this scenario: audit.diverged)");
  expect_error(d, R"((did you mean "http.latency"?))");
}

TEST(scenario, time_metric_needs_a_duration_bound) {
  auto d = base();
  d["slas"][0]["max"] = 100;
  expect_error(d, R"(scenario.slas[0].max: found 100; expected a duration like "100ms" (http.latency p99 is a time))");
}

TEST(scenario, bad_stat) {
  auto d = base();
  d["slas"][0]["stat"] = "p999x";
  expect_error(
      d,
      R"(scenario.slas[0].stat: found "p999x"; expected a stat: p50, p99, p99.9, max, min, mean, rate, count or ratio)");
}

TEST(scenario, lab_pods_out_of_range) {
  auto d = base();
  d["target"] = {{"lab", {{"pods", 0}}}};
  expect_error(d, "scenario.target.lab.pods: found 0; expected an integer from 1 to 64");
}

TEST(scenario, bad_bug_mode) {
  auto d = base();
  d["target"] = {{"lab", {{"bug", "drop-every=x"}}}};
  expect_error(
      d,
      R"(scenario.target.lab.bug: found "drop-every=x"; expected bug modes like "drop-every=10" or "ack-before-commit")");
  d["target"]["lab"]["bug"] = "drop-every=10,fanout-reorder";
  auto e = validate_document(d);
  EXPECT_TRUE(e.empty()) << all_errors(e);
}

TEST(scenario, duplicate_load_names) {
  auto d = base();
  d["load"].push_back(d["load"][0]);
  expect_error(d, R"(scenario.load[1].name: found "api" again; expected a name unique among load entries)");
}

TEST(scenario, phases_longer_than_the_run) {
  auto d = base();
  d["duration"] = "30s";
  expect_error(d, "scenario.load[0].phases: found 1m of phases; expected at most the run's duration (30s)");
}

TEST(scenario, rule_needs_a_bound) {
  auto d = base();
  d["slas"][0].erase("max");
  expect_error(d, R"(scenario.slas[0]: found none of them; expected at least one of "max", "min")");
}

TEST(scenario, phase_with_rate_and_ramp) {
  auto d = base();
  d["load"][0]["phases"][0]["to"] = 200;
  expect_error(d, R"(scenario.load[0].phases[0]: found both "rate", "to"; expected at most one of "rate", "to")");
}

TEST(scenario, malformed_env_reference) {
  auto d = base();
  d["target"]["headers"] = {{"authorization", "Bearer ${env:1BAD}"}};
  expect_error(
      d, R"(scenario.target.headers.authorization: found "${env:1BAD}"; expected a reference like "${env:NAME}")");
}

TEST(scenario, unset_env_reference_is_an_error_only_when_running) {
  auto d = base();
  unsetenv("SYNCSTORM_TEST_UNSET");
  d["target"]["headers"] = {{"authorization", "Bearer ${env:SYNCSTORM_TEST_UNSET}"}};
  EXPECT_TRUE(validate_document(d, false).empty());
  auto e = validate_document(d, true);
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(
      e[0],
      R"(scenario.target.headers.authorization: found "${env:SYNCSTORM_TEST_UNSET}" but SYNCSTORM_TEST_UNSET is not set; expected the environment variable to be set)");
}

TEST(scenario, empty_load) {
  auto d = base();
  d["load"] = json::array();
  expect_error(d, "scenario.load: found 0 items; expected at least 1");
}

TEST(scenario, count_without_every) {
  auto d = base();
  d["faults"] =
      json::array({{{"name", "k"}, {"kind", "kill"}, {"target", {{"pods", "pod-*"}}}, {"at", "10s"}, {"count", 3}}});
  expect_error(d, R"(scenario.faults[0]: found "count" without "every"; expected "every" with it)");
}

TEST(scenario, wrong_type_for_object) {
  auto d = base();
  d["target"] = "http://x";
  expect_error(d, R"(scenario.target: found "http://x"; expected an object)");
}

TEST(scenario, open_http_phase_needs_a_rate) {
  auto d = base();
  d["load"][0]["phases"][0].erase("rate");
  expect_error(
      d,
      R"(scenario.load[0].phases[0]: found neither "rate" nor "to"; expected a rate for this phase (the http model is open))");
  d["load"][0]["mode"] = "closed";
  EXPECT_TRUE(validate_document(d).empty());
}

TEST(scenario, every_problem_is_reported) {
  auto d = base();
  d["load"][0]["phases"][0]["for"] = "3x";
  d["load"][0]["connections"] = -1;
  d["seed"] = "seven";
  d["unknown"] = 1;
  auto e = validate_document(d);
  EXPECT_EQ(e.size(), 4u) << all_errors(e);
}

TEST(scenario, invalid_json_file) {
  std::string path = ::testing::TempDir() + "/bad.json";
  FILE* f = fopen(path.c_str(), "w");
  fputs("{\"name\": ", f);
  fclose(f);
  auto r = load_scenario_file(path, {});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_NE(r.errors[0].find("found invalid JSON"), std::string::npos) << r.errors[0];
  EXPECT_FALSE(r.value.has_value());
}

// Issue #23: a scenario nested 200,000 deep was SIGSEGV and a number out of double's range an
// uncaught exception (exit 134). Both are bad input: one line, no value.
TEST(scenario, hostile_files_are_bad_input) {
  const std::string deep = ::testing::TempDir() + "/deep.json";
  const std::string big = ::testing::TempDir() + "/big.json";
  {
    FILE* f = fopen(deep.c_str(), "w");
    fputs(("{\"name\": \"x\", \"description\": " + std::string(200000, '[') + std::string(200000, ']') + "}").c_str(),
          f);
    fclose(f);
    f = fopen(big.c_str(), "w");
    fputs("{\"name\": \"x\", \"seed\": 1e400}", f);
    fclose(f);
  }
  auto r = load_scenario_file(deep, {});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], deep + ": found JSON nested deeper than 64 levels; expected a scenario object");
  EXPECT_FALSE(r.value);
  r = load_scenario_file(big, {});
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0], big + ": found invalid JSON (number overflow parsing '1e400'); expected a JSON object");
}

// --set

TEST(set, nested_object_array_and_json_values) {
  auto d = base();
  EXPECT_EQ(apply_set(d, "target.endpoints.http=http://127.0.0.1:9999"), "");
  EXPECT_EQ(d["target"]["endpoints"]["http"], "http://127.0.0.1:9999");
  EXPECT_EQ(apply_set(d, "load[0].phases[1].rate=200"), "");
  EXPECT_EQ(d["load"][0]["phases"][1]["rate"], 200);
  EXPECT_EQ(apply_set(d, R"(slas[1]={"name":"err","metric":"http.requests","stat":"ratio","min":"99%"})"), "");
  EXPECT_EQ(d["slas"][1]["min"], "99%");
  EXPECT_EQ(apply_set(d, "description=a = b"), "");
  EXPECT_EQ(d["description"], "a = b");  // split at the first '='; not JSON: a string
  EXPECT_EQ(apply_set(d, "load[0].request.headers.x-trace=on"), "");
  EXPECT_EQ(d["load"][0]["request"]["headers"]["x-trace"], "on");
  EXPECT_EQ(apply_set(d, "seed=42"), "");
  EXPECT_EQ(d["seed"], 42);
  EXPECT_TRUE(validate_document(d).empty()) << all_errors(validate_document(d));
}

TEST(set, errors_name_the_flag) {
  auto d = base();
  EXPECT_EQ(apply_set(d, "load[5].name=x"),
            "--set load[5].name: found index 5 at scenario.load; expected an index up to 1 (the array has 1 items)");
  EXPECT_EQ(apply_set(d, "name.x=1"), R"(--set name.x: found "unit" at scenario.name; expected an object)");
  EXPECT_EQ(apply_set(d, "a..b=1"), "--set a..b: found a malformed path; expected keys and indices like a.b[0].c");
  EXPECT_EQ(apply_set(d, "novalue"), "--set novalue: found no \"=\"; expected PATH=VALUE like target.lab.pods=3");
}

TEST(set, applied_before_validation_and_recorded) {
  load_options o;
  o.sets = {"load[0].phases[0].rate=\"10/s\"", "name=renamed"};
  auto r = load_scenario(base(), o);
  ASSERT_TRUE(r.errors.empty()) << all_errors(r.errors);
  EXPECT_EQ(r.value->name, "renamed");
  EXPECT_EQ(r.value->document["load"][0]["phases"][0]["rate"], "10/s");
  EXPECT_DOUBLE_EQ(*r.value->loads[0].phases[0].rate, 10.0);
  o.sets = {"load[0].phases[0].for=3x"};
  r = load_scenario(base(), o);
  ASSERT_FALSE(r.value);
  EXPECT_EQ(r.errors[0], R"(scenario.load[0].phases[0].for: found "3x"; expected a duration like "30s")");
}

// --time-scale

TEST(time_scale, scales_what_the_contract_lists_and_nothing_else) {
  json d = json::parse(R"({
    "name": "ts", "duration": "10m",
    "target": {"lab": {"restart_delay": "2s", "health": {"interval": "1s"}}},
    "load": [
      {"name": "pos", "model": "terminal", "stores": 1, "terminals_per_store": 2, "rate": 5, "timeout": "3s",
       "retry": {"base": "100ms", "max": "5s"}, "sync": {"mode": "periodic", "every": "5m"},
       "phases": [{"name": "p", "for": "8m", "rate": 10}]},
      {"name": "off", "model": "offline", "clients": 10, "offline": [{"at": "1m", "for": "2m"}],
       "phases": [{"name": "p", "for": "10m"}]}],
    "faults": [{"name": "k", "kind": "kill", "target": {"pods": "pod-*"}, "at": "2m", "for": "30s", "every": "1m",
                "jitter": "5s", "count": 3}],
    "slas": [{"name": "r", "metric": "recovery.k", "stat": "max", "max": "5s", "for": "10s"}]
  })");
  spec::scale_time(d, *scenario_registry::instance().root(), 0.1);
  EXPECT_EQ(d["duration"], "1m");
  EXPECT_EQ(d["load"][0]["phases"][0]["for"], "48s");
  EXPECT_EQ(d["load"][1]["offline"][0]["at"], "6s");
  EXPECT_EQ(d["load"][1]["offline"][0]["for"], "12s");
  EXPECT_EQ(d["faults"][0]["at"], "12s");
  EXPECT_EQ(d["faults"][0]["for"], "3s");
  EXPECT_EQ(d["faults"][0]["every"], "6s");
  EXPECT_EQ(d["load"][0]["sync"]["every"], "30s");  // a periodic-sync window is a time of the plan
  // Not scaled: SLA bounds and `for`, restart delays, health checks, timeouts, backoff, rates,
  // counts, and a repetition's jitter.
  EXPECT_EQ(d["slas"][0]["max"], "5s");
  EXPECT_EQ(d["slas"][0]["for"], "10s");
  EXPECT_EQ(d["target"]["lab"]["restart_delay"], "2s");
  EXPECT_EQ(d["target"]["lab"]["health"]["interval"], "1s");
  EXPECT_EQ(d["load"][0]["timeout"], "3s");
  EXPECT_EQ(d["load"][0]["retry"]["base"], "100ms");
  EXPECT_EQ(d["load"][0]["rate"], 5);
  EXPECT_EQ(d["load"][0]["phases"][0]["rate"], 10);
  EXPECT_EQ(d["faults"][0]["count"], 3);
  EXPECT_EQ(d["faults"][0]["jitter"], "5s");
}

TEST(time_scale, typed_scenario_and_plan_follow_it) {
  load_options o;
  o.time_scale = 0.5;
  auto r = load_scenario(base(), o);
  ASSERT_TRUE(r.errors.empty()) << all_errors(r.errors);
  EXPECT_EQ(r.value->duration_us, 30'000'000);
  EXPECT_EQ(r.value->loads[0].phases[0].for_us, 10'000'000);
  EXPECT_DOUBLE_EQ(*r.value->loads[0].phases[1].rate, 100.0);
  EXPECT_DOUBLE_EQ(*r.value->slas[0].max, 100'000.0);
  EXPECT_EQ(r.value->document["duration"], "60s");  // recorded as written
  plan p = make_plan(*r.value);
  ASSERT_EQ(p.phases.size(), 2u);
  EXPECT_EQ(p.phases[1].start_us, 10'000'000);
  EXPECT_EQ(p.phases[1].end_us, 30'000'000);
}

// units

TEST(units, durations) {
  EXPECT_EQ(units::parse_duration_us("30s"), 30'000'000);
  EXPECT_EQ(units::parse_duration_us("1h30m"), 5'400'000'000);
  EXPECT_EQ(units::parse_duration_us("250ms"), 250'000);
  EXPECT_EQ(units::parse_duration_us("1.5s"), 1'500'000);
  EXPECT_EQ(units::parse_duration_us("90"), 90'000'000);
  EXPECT_EQ(units::parse_duration_us("3x"), std::nullopt);
  EXPECT_EQ(units::parse_duration_us("-1s"), std::nullopt);
  EXPECT_EQ(units::parse_duration_us("5s3"), std::nullopt);
  EXPECT_EQ(units::format_duration(5'400'000'000), "1h30m");
  EXPECT_EQ(units::format_duration(1'500'000), "1.5s");
  EXPECT_EQ(units::format_duration(250'000), "250ms");
}

TEST(units, rates_sizes_percent_bandwidth) {
  EXPECT_DOUBLE_EQ(*units::parse_rate("50/s"), 50.0);
  EXPECT_DOUBLE_EQ(*units::parse_rate("120/m"), 2.0);
  EXPECT_EQ(units::parse_rate("fast"), std::nullopt);
  EXPECT_EQ(units::parse_size("256MiB"), 256ull << 20);
  EXPECT_EQ(units::parse_size("10KB"), 10'000u);
  EXPECT_EQ(units::parse_size("1XB"), std::nullopt);
  EXPECT_DOUBLE_EQ(*units::parse_percent("90%"), 90.0);
  EXPECT_EQ(units::parse_percent("101"), std::nullopt);
  EXPECT_DOUBLE_EQ(*units::parse_bandwidth_bps("10Mbit/s"), 10e6);
  EXPECT_DOUBLE_EQ(*units::parse_bandwidth_bps("1MB/s"), 8e6);
}

TEST(plan, every_expands_with_the_seed) {
  json d = base();
  d["faults"] = json::array({{{"name", "k"},
                              {"kind", "kill"},
                              {"target", {{"pods", "pod-*"}}},
                              {"at", "10s"},
                              {"every", "10s"},
                              {"count", 4},
                              {"jitter", "1s"},
                              {"for", "2s"}}});
  auto r = load_scenario(d, {});
  ASSERT_TRUE(r.errors.empty()) << all_errors(r.errors);
  plan a = make_plan(*r.value), b = make_plan(*r.value);
  ASSERT_EQ(a.faults.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(a.faults[i].at_us, b.faults[i].at_us);  // same seed, same plan
    std::int64_t nominal = 10'000'000 + static_cast<std::int64_t>(i) * 10'000'000;
    EXPECT_LE(std::abs(a.faults[i].at_us - nominal), 1'000'000);
    EXPECT_EQ(*a.faults[i].revert_us - a.faults[i].at_us, 2'000'000);
  }
  std::string table = format_plan(*r.value, a);
  EXPECT_NE(table.find("k#4"), std::string::npos) << table;
}

// server.* (issue #26): scraped from the target, so valid only with target.metrics; a rule reads
// the highest or lowest level, and its `load` names an instance the run discovers.
TEST(scenario, server_metrics_need_target_metrics_and_a_level_stat) {
  auto d = base();
  d["slas"].push_back(
      json::parse(R"({"name": "lag", "metric": "server.pg_replication_lag_seconds", "stat": "max", "max": 10})"));
  expect_error(
      d, R"(scenario.slas[1].metric: found "server.pg_replication_lag_seconds"; expected a metric of this scenario)");
  expect_error(d, "(server.* metrics are scraped from the target: set target.metrics)");
  d["target"]["metrics"] =
      json::parse(R"({"every": "2s", "endpoints": [{"name": "api-1", "url": "http://127.0.0.1:9/metrics"}]})");
  auto e = validate_document(d);
  EXPECT_TRUE(e.empty()) << all_errors(e);
  d["slas"][1]["load"] = "api-1";  // an instance, not a load entry
  e = validate_document(d);
  EXPECT_TRUE(e.empty()) << all_errors(e);
  d["slas"][1]["stat"] = "p99";
  expect_error(d, R"(scenario.slas[1].stat: found "p99"; expected "max" or "min")");
  d["slas"][1]["stat"] = "max";
  d["slas"][1]["across"] = "sum";
  expect_error(d, R"(scenario.slas[1].across: found it beside load "api-1"; expected one of them)");
  d["slas"][1].erase("load");
  e = validate_document(d);
  EXPECT_TRUE(e.empty()) << all_errors(e);
  d["slas"][1]["across"] = "median";
  expect_error(d, "scenario.slas[1].across: found \"median\"");
  d["slas"][1].erase("across");
  d["slas"][0]["across"] = "sum";
  expect_error(d, R"(scenario.slas[0].across: found "sum" on "http.latency"; expected it only on a server.* metric)");
  d["slas"][0].erase("across");
  d["target"]["metrics"]["endpoints"][0]["url"] = "ftp://x";
  expect_error(d, "scenario.target.metrics.endpoints[0].url: found \"ftp://x\"");
  d["target"]["metrics"]["endpoints"][0] = json::parse(R"({"url": "http://x/metrics"})");
  expect_error(d, "scenario.target.metrics.endpoints[0]");
}
