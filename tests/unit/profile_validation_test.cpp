// Validation of loads against target.profile (loadgen::check_profile_use through the sync
// models' reference checks), as a user sees it from `syncstorm validate`: one line per problem
// naming the JSON path, what was found and what was expected, exit 2; `run --dry-run` refuses
// the same scenario the same way (exit 2, nothing ran) instead of failing later.
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace t = syncstorm::test;
using json = nlohmann::json;

namespace {

json couch_scenario() {
  return json::parse(R"({"name": "couch", "duration": "5s",
    "target": {"endpoints": {"http": "http://127.0.0.1:5984/pos"}, "profile": "couchdb"},
    "load": [{"name": "pos", "model": "terminal", "stores": 1, "terminals_per_store": 2, "rate": "2/s",
              "ops": {"append": 100}, "phases": [{"name": "s", "for": "5s"}]}],
    "slas": [{"name": "lost", "metric": "audit.lost", "stat": "max", "max": 0}]})");
}

t::command_result validate(const json& doc, const std::string& extra = "") {
  static int n = 0;
  t::temp_dir d;
  const auto f = d.path() / ("s" + std::to_string(++n) + ".json");
  t::write_file(f, doc.dump(2));
  return t::run(t::bin() + " validate " + f.string() + " " + extra + " 2>&1");
}

}  // namespace

TEST(profile_validation, couchdb_append_only_is_valid) {
  auto r = validate(couch_scenario());
  EXPECT_EQ(r.exit_code, 0) << r.out;
}

TEST(profile_validation, couchdb_refuses_set_and_add) {
  json doc = couch_scenario();
  doc["load"][0]["ops"] = {{"append", 80}, {"add", 10}, {"set", 10}};
  auto r = validate(doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario.load[0].ops.set: found 10; expected 0 under the couchdb profile (only append ops)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("scenario.load[0].ops.add: found 10; expected 0 under the couchdb profile (only append ops)"),
            std::string::npos)
      << r.out;
  // The default mix (no `ops`) has add and set ops: said so.
  doc["load"][0].erase("ops");
  r = validate(doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario.load[0].ops: found nothing (the default mix has add, set ops)"), std::string::npos)
      << r.out;
}

TEST(profile_validation, models_that_need_missing_endpoints) {
  json doc = couch_scenario();
  doc["load"].push_back(json::parse(R"({"name": "subs", "model": "fanout", "subscribers": 2, "streams": 1,
                                        "phases": [{"name": "s", "for": "5s", "rate": 1}]})"));
  auto r = validate(doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(
      r.out.find(
          "scenario.load[1].model: found \"fanout\"; expected a model that needs no WebSocket feed (the couchdb profile has none)"),
      std::string::npos)
      << r.out;
}

TEST(profile_validation, bad_profiles_are_reported_once_by_validate_and_dry_run) {
  json doc = couch_scenario();
  doc["target"]["profile"] = json::parse(R"({"push": {"ack": {"acked": 3}}})");
  doc["load"].push_back(doc["load"][0]);
  doc["load"][1]["name"] = "pos2";
  auto r = validate(doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  const std::string line = "scenario.target.profile.push.ack.acked: found 3; expected a JSON pointer like \"/acked\"";
  const auto first = r.out.find(line);
  ASSERT_NE(first, std::string::npos) << r.out;
  EXPECT_EQ(r.out.find(line, first + 1), std::string::npos) << "reported twice: " << r.out;
  // A custom profile without records refuses set ops (the audit could not judge them).
  doc["target"]["profile"] = json::parse(R"({"records": null})");
  doc["load"][0]["ops"] = {{"append", 90}, {"set", 10}};
  r = validate(doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(
      r.out.find("scenario.load[0].ops.set: found 10; expected 0 under target.profile: it has no records endpoint"),
      std::string::npos)
      << r.out;
  // The unknown name lists the shipped ones; --dry-run refuses it too, exit 2.
  doc = couch_scenario();
  doc["target"]["profile"] = "couchdbb";
  t::temp_dir d;
  const auto f = d.path() / "dry.json";
  t::write_file(f, doc.dump(2));
  auto dry = t::run(t::bin() + " run " + f.string() + " --dry-run 2>&1");
  EXPECT_EQ(dry.exit_code, 2) << dry.out;
  EXPECT_NE(
      dry.out.find(
          "scenario.target.profile: found \"couchdbb\"; expected an object or the name of a shipped profile (couchdb)"),
      std::string::npos)
      << dry.out;
}
