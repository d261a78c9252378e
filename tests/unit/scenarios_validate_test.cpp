// The shipped scenarios (scenarios/*.json, issue #12): each one validates as shipped, and also
// at the reduced time scale with the `--set` overrides tests/integration/scenarios_test.cpp uses
// in CI, and every one has a CI run. kPending is for a scenario written ahead of a load model or
// fault kind that is designed but not yet in the build (none today): it must be rejected for
// exactly that reason, and validate in full when those parts are marked available; the moment a
// part lands `pending_parts_are_still_pending` fails: move the scenario out of kPending then,
// and add it to the CI runs.
#include "core/scenario.hpp"
#include "tests/support/scenario_ci_runs.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <regex>
#include <sstream>
#include <set>

namespace fs = std::filesystem;
namespace t = syncstorm::test;
using syncstorm::json;
using syncstorm::load_options;
using syncstorm::scenario_registry;

namespace {

// Scenario → the model and fault kinds it waits for.
const std::map<std::string, std::vector<std::string>> kPending = {};

// Every scenario the issue asks for; the directory must hold exactly these (plus http-smoke).
const std::set<std::string> kShipped = {
    "pos-steady-state",  "pos-peak-hour",         "pos-2x-peak",        "pos-pod-failover",    "cloud-sync-burst",
    "offline-24h",       "offline-72h",           "ws-fanout-capacity", "db-failover",         "disk-fill-90",
    "network-partition", "split-brain-conflicts", "slow-network",       "random-pod-deletion", "rolling-deploy",
    "api-5xx",           "client-crash",          "journal-corrupt",    "sla-tiers",           "http-smoke",
};

fs::path scenarios_dir() { return fs::path(t::source_dir()) / "scenarios"; }

std::vector<fs::path> shipped_files() {
  std::vector<fs::path> out;
  for (auto& e : fs::directory_iterator(scenarios_dir()))
    if (e.path().extension() == ".json") out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

std::string joined(const syncstorm::spec::errors& errs) {
  std::string s;
  for (const auto& e : errs) s += "\n  " + e;
  return s;
}

bool is_available(const std::string& part) {
  const auto& r = scenario_registry::instance();
  for (const auto& m : r.models())
    if (m.name == part) return m.available;
  for (const auto& f : r.fault_kinds())
    if (f.name == part) return f.available;
  throw std::runtime_error("no model or fault kind named " + part);
}

// Marks `parts` available for the life of this object, restoring what each was.
class make_available {
 public:
  explicit make_available(const std::vector<std::string>& parts) {
    for (const auto& p : parts) {
      was_[p] = is_available(p);
      scenario_registry::instance().set_available(p, true);
    }
  }
  ~make_available() {
    for (const auto& [p, a] : was_) scenario_registry::instance().set_available(p, a);
  }
  make_available(const make_available&) = delete;
  make_available& operator=(const make_available&) = delete;

 private:
  std::map<std::string, bool> was_;
};

}  // namespace

TEST(scenarios_validate, the_directory_holds_every_scenario_of_the_issue) {
  std::set<std::string> found;
  for (const auto& f : shipped_files()) found.insert(f.stem().string());
  EXPECT_EQ(found, kShipped);
}

TEST(scenarios_validate, every_available_scenario_validates_as_shipped) {
  for (const auto& f : shipped_files()) {
    std::string name = f.stem().string();
    if (kPending.count(name)) continue;
    SCOPED_TRACE(f.string());
    json doc = json::parse(t::read_file(f), nullptr, false);
    ASSERT_FALSE(doc.is_discarded()) << "not JSON";
    EXPECT_EQ(doc.value("name", ""), name) << "the scenario's name is its file name";
    EXPECT_GT(doc.value("description", "").size(), 100u)
        << "a description that says what it proves and which numbers it uses";
    auto errs = syncstorm::validate_document(doc);
    EXPECT_TRUE(errs.empty()) << joined(errs);
    // Through the same path `syncstorm run` takes (read, --set, validate, scale, type).
    auto r = syncstorm::load_scenario_file(f.string(), {});
    EXPECT_TRUE(r.errors.empty()) << joined(r.errors);
  }
}

TEST(scenarios_validate, every_lab_scenario_targets_the_lab_and_cites_the_users_documents) {
  for (const auto& f : shipped_files()) {
    std::string name = f.stem().string();
    if (name == "http-smoke") continue;  // the one scenario against a server you name
    SCOPED_TRACE(name);
    json doc = json::parse(t::read_file(f));
    EXPECT_TRUE(doc["target"].contains("lab"));
    EXPECT_NE(doc.value("description", "").find("users-docs/"), std::string::npos);
    EXPECT_FALSE(doc.value("slas", json::array()).empty());
  }
}

TEST(scenarios_validate, the_ci_reductions_validate_and_keep_every_fault_within_the_run) {
  std::set<std::string> in_ci;
  for (const auto& ci : t::scenario_ci_runs()) {
    const std::string& name = ci.scenario;
    in_ci.insert(name);
    SCOPED_TRACE(ci.name);
    ASSERT_FALSE(kPending.count(name));
    load_options opt;
    opt.time_scale = ci.time_scale;
    opt.sets = ci.sets;
    if (ci.journals_on_tmpfs)
      opt.sets.push_back(t::journal_dir_set(std::string(t::tmpfs_base()) + "/syncstorm-test-journals"));
    auto r = syncstorm::load_scenario_file((scenarios_dir() / (name + ".json")).string(), opt);
    ASSERT_TRUE(r.errors.empty()) << joined(r.errors);
    const auto& s = *r.value;
    EXPECT_LE(s.duration_us, 40'000'000) << "a CI run is at most 40 s of load";
    for (const auto& f : s.faults) EXPECT_LT(f.at_us, s.duration_us) << f.name;
  }
  // Every available shipped scenario runs in CI (http-smoke aimed at a lab).
  for (const auto& f : shipped_files()) {
    std::string name = f.stem().string();
    if (kPending.count(name)) continue;
    EXPECT_TRUE(in_ci.count(name)) << name << " has no CI run";
  }
}

TEST(scenarios_validate, pending_scenarios_fail_only_for_the_parts_they_wait_for) {
  for (const auto& [name, parts] : kPending) {
    SCOPED_TRACE(name);
    json doc = json::parse(t::read_file(scenarios_dir() / (name + ".json")));
    EXPECT_EQ(doc.value("name", ""), name);
    auto errs = syncstorm::validate_document(doc);
    ASSERT_FALSE(errs.empty()) << "validates today: move it out of kPending";
    for (const auto& e : errs) {
      bool named = std::any_of(parts.begin(), parts.end(), [&](const std::string& p) {
        return e.find("\"" + p + "\" is in the design") != std::string::npos;
      });
      EXPECT_TRUE(named) << e;
    }
    // With the parts marked available the whole document (its keys included) validates.
    make_available on(parts);
    auto with = syncstorm::validate_document(doc);
    EXPECT_TRUE(with.empty()) << joined(with);
  }
}

TEST(scenarios_validate, pending_parts_are_still_pending) {
  for (const auto& [name, parts] : kPending)
    for (const auto& p : parts)
      EXPECT_FALSE(is_available(p)) << p << " is available now: " << name << " can leave kPending and run in CI";
}

// tests/CMakeLists.txt registers one CTest test per CI run by reading the table's lines that
// open with {"<name>", "<scenario>",: every run must be written so, or it would never run.
TEST(scenarios_validate, every_ci_run_is_registered_with_ctest) {
  const std::string text = t::read_file(fs::path(t::source_dir()) / "tests" / "support" / "scenario_ci_runs.hpp");
  const std::regex line(R"re(^ *\{"([a-z0-9_]+)", "[a-z0-9-]+",)re");
  std::set<std::string> registered;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    std::smatch m;
    if (std::regex_search(l, m, line)) registered.insert(m[1]);
  }
  std::set<std::string> runs;
  for (const auto& ci : t::scenario_ci_runs()) runs.insert(ci.name);
  EXPECT_EQ(registered, runs);
}
