// The committed scenario.schema.json (for editors: a scenario names it with "$schema") equals
// what `syncstorm schema` prints, byte for byte, so a change to the contract that forgets to
// regenerate it fails here. Regenerate with: build/cli/syncstorm schema > scenario.schema.json
// Also: a scenario that carries "$schema" validates, and the key appears in the schema.
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace t = syncstorm::test;
using json = nlohmann::json;

TEST(committed_schema, equals_syncstorm_schema) {
  t::temp_dir d;
  const auto out = d.path() / "schema.json";
  ASSERT_EQ(t::run(t::bin() + " schema > " + out.string()).exit_code, 0);
  const std::string printed = t::read_file(out);
  const std::string committed = t::read_file(t::source_dir() + "/scenario.schema.json");
  ASSERT_FALSE(committed.empty()) << "scenario.schema.json is missing at the repository's root";
  EXPECT_TRUE(printed == committed) << "scenario.schema.json differs from `syncstorm schema`; regenerate it with "
                                       "`build/cli/syncstorm schema > scenario.schema.json`";
  const json s = json::parse(committed);
  EXPECT_TRUE(s["properties"].contains("$schema"));
}

TEST(committed_schema, a_scenario_with_dollar_schema_validates) {
  t::temp_dir d;
  json doc = json::parse(t::read_file(t::source_dir() + "/scenarios/http-smoke.json"));
  doc["$schema"] = "../scenario.schema.json";
  const auto f = d.path() / "with-schema.json";
  t::write_file(f, doc.dump(2));
  auto r = t::run(t::bin() + " validate " + f.string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 0) << r.out;
  // Not a string: one line naming the key, exit 2.
  doc["$schema"] = 3;
  t::write_file(f, doc.dump(2));
  r = t::run(t::bin() + " validate " + f.string() + " 2>&1");
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario[\"$schema\"]: found 3"), std::string::npos) << r.out;
}
