// `syncstorm schema` and the validator agree: every shipped scenario passes both (Python's
// jsonschema, Draft 2020-12, as an independent reader), and a set of malformed scenarios is
// rejected by both. Also checks `schema --report` against a written report shape.
#include "core/report_schema.hpp"
#include "core/scenario.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

using namespace syncstorm;
using json = nlohmann::json;
namespace t = syncstorm::test;

namespace {

// Debian's python3 has python3-jsonschema; another python3 earlier on PATH may not.
std::string python() { return std::filesystem::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3"; }

// 0 when `doc` validates against `schema_file`, 1 when not, other: the check itself failed.
int jsonschema_check(const std::string& schema_file, const std::string& doc_file) {
  auto r = t::run(
      python() +
      " -c 'import json,sys,jsonschema; s=json.load(open(sys.argv[1])); "
      "exec(\"try: jsonschema.Draft202012Validator.check_schema(s)\\nexcept Exception as x: print(x); sys.exit(3)\"); "
      "e=list(jsonschema.Draft202012Validator(s).iter_errors(json.load(open(sys.argv[2])))); "
      "[print(x.message[:200]) for x in e]; sys.exit(1 if e else 0)' " +
      schema_file + " " + doc_file + " 2>&1");
  if (r.exit_code > 1) ADD_FAILURE() << r.out;
  return r.exit_code;
}

}  // namespace

TEST(schema, python_jsonschema_is_available) {
  auto r = t::run(python() + " -c 'import jsonschema; print(jsonschema.__version__)' 2>&1");
  ASSERT_EQ(r.exit_code, 0) << "python3-jsonschema is required (scripts/setup.sh installs it): " << r.out;
}

TEST(schema, every_shipped_scenario_passes_schema_and_validator) {
  t::temp_dir d;
  auto schema = d.path() / "scenario.schema.json";
  auto r = t::run(t::bin() + " schema > " + schema.string());
  ASSERT_EQ(r.exit_code, 0);
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(t::source_dir() + "/scenarios")) {
    if (e.path().extension() != ".json") continue;
    ++n;
    EXPECT_EQ(jsonschema_check(schema.string(), e.path().string()), 0) << e.path();
    auto v = t::run(t::bin() + " validate " + e.path().string() + " 2>&1");
    EXPECT_EQ(v.exit_code, 0) << v.out;
  }
  EXPECT_GT(n, 0) << "no shipped scenarios found";
}

TEST(schema, malformed_scenarios_are_rejected_by_both) {
  json good = json::parse(R"({"name": "s", "target": {"endpoints": {"http": "http://127.0.0.1:1"}},
    "load": [{"name": "a", "model": "http", "phases": [{"name": "p", "for": "10s", "rate": 5}]}],
    "slas": [{"name": "r", "metric": "http.latency", "stat": "p99", "max": "100ms"}]})");
  std::vector<std::pair<std::string, std::function<void(json&)>>> bad = {
      {"bad duration", [](json& d) { d["load"][0]["phases"][0]["for"] = "3x"; }},
      {"unknown key", [](json& d) { d["loads"] = 1; }},
      {"missing name", [](json& d) { d.erase("name"); }},
      {"unknown model", [](json& d) { d["load"][0]["model"] = "htp"; }},
      {"model key of another model", [](json& d) { d["load"][0]["stores"] = 3; }},
      {"both targets", [](json& d) { d["target"]["lab"] = json::object(); }},
      {"no target kind", [](json& d) { d["target"] = json::object(); }},
      {"bad stat", [](json& d) { d["slas"][0]["stat"] = "p99x"; }},
      {"no bound", [](json& d) { d["slas"][0].erase("max"); }},
      {"rate and ramp", [](json& d) { d["load"][0]["phases"][0]["to"] = 9; }},
      {"empty load", [](json& d) { d["load"] = json::array(); }},
      {"bad window", [](json& d) { d["slas"][0]["window"] = "during"; }},
      {"pods zero",
       [](json& d) {
         d["target"] = {{"lab", {{"pods", 0}}}};
       }},
      {"bad bug",
       [](json& d) {
         d["target"] = {{"lab", {{"bug", "drop-every=0"}}}};
       }},
      {"seed string", [](json& d) { d["seed"] = "x"; }},
      {"bad percent",
       [](json& d) {
         d["slas"][0] = {{"name", "r"}, {"metric", "http.requests"}, {"stat", "ratio"}, {"min", "150%x"}};
       }},
  };
  t::temp_dir d;
  auto schema = d.path() / "scenario.schema.json";
  ASSERT_EQ(t::run(t::bin() + " schema > " + schema.string()).exit_code, 0);
  auto good_file = d.path() / "good.json";
  t::write_file(good_file, good.dump());
  ASSERT_EQ(jsonschema_check(schema.string(), good_file.string()), 0);
  ASSERT_TRUE(validate_document(good).empty());
  for (auto& [name, edit] : bad) {
    json doc = good;
    edit(doc);
    auto f = d.path() / "bad.json";
    t::write_file(f, doc.dump());
    EXPECT_EQ(jsonschema_check(schema.string(), f.string()), 1) << name << ": the JSON Schema accepted it";
    EXPECT_FALSE(validate_document(doc).empty()) << name << ": the validator accepted it";
  }
}

TEST(schema, report_schema_is_valid_draft_2020_12) {
  t::temp_dir d;
  auto f = d.path() / "report.schema.json";
  ASSERT_EQ(t::run(t::bin() + " schema --report > " + f.string()).exit_code, 0);
  auto r = t::run(
      python() +
      " -c 'import json,sys,jsonschema; jsonschema.Draft202012Validator.check_schema(json.load(open(sys.argv[1])))' " +
      f.string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  json s = json::parse(t::read_file(f));
  for (const char* k : {"schema_version", "syncstorm_version", "seed", "scenario", "started_at", "ended_at", "outcome",
                        "exit_code", "verdicts", "metrics", "faults", "audit", "generator"}) {
    EXPECT_TRUE(s["properties"].contains(k)) << k;
  }
}
