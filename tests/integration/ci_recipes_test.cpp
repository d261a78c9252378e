// The CI recipes in deploy/ci/ as a CI would run them: each job's shell steps (GitHub Actions:
// every step with `run`, except the one with id `build`, whose work this build tree has done;
// GitLab CI: the job's `script`) are read from the YAML (python3-yaml), run locally in a
// scratch workspace with the job's variables and the CI's own (CI, GITHUB_ACTIONS,
// GITHUB_STEP_SUMMARY, GITLAB_CI, …) set, the scenario and binary overridden the way a
// pipeline's variables override a job's. For each recipe: one passing run against a lab
// (exit 0, junit.xml and summary.md published, the summary posted to $GITHUB_STEP_SUMMARY, the
// report kept as a baseline) and one run with syncd's drop-every bug (exit 1, the failing rule
// in junit.xml, no new baseline). `uses:` steps (checkout, cache, artifacts) are the CI's own
// actions and are not run here.
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace t = syncstorm::test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The job's shell steps and variables as JSON: {"env": {...}, "steps": [{"name", "script"}]}.
json read_job(const std::string& recipe, const std::string& kind) {
  t::temp_dir d;
  const auto py = d.path() / "read.py";
  t::write_file(py, R"PY(
import json, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
kind = sys.argv[2]
out = {"env": {}, "steps": []}
if kind == "github":
    out["env"].update({k: str(v) for k, v in (doc.get("env") or {}).items()})
    job = doc["jobs"]["syncstorm-gate"]
    out["env"].update({k: str(v) for k, v in (job.get("env") or {}).items()})
    for s in job["steps"]:
        if "run" not in s or s.get("id") == "build":
            continue
        out["steps"].append({"name": s.get("name", ""), "script": s["run"], "env": {k: str(v) for k, v in (s.get("env") or {}).items()}})
else:
    job = doc["syncstorm-gate"]
    out["env"].update({k: str(v) for k, v in (job.get("variables") or {}).items()})
    out["steps"].append({"name": "script", "script": "\n".join(job["script"]), "env": {}})
print(json.dumps(out))
)PY");
  auto r = t::run("python3 " + py.string() + " " + recipe + " " + kind);
  if (r.exit_code != 0) throw std::runtime_error("cannot read " + recipe + ": " + r.out);
  return json::parse(r.out);
}

const char* gate_scenario = R"({
  "name": "ci-gate",
  "description": "tests/integration/ci_recipes_test.cpp: two POS lanes against a one-pod lab",
  "duration": "6s",
  "target": {"lab": {"pods": 1}},
  "load": [{"name": "pos", "model": "terminal", "stores": 1, "terminals_per_store": 2, "rate": "10/s",
            "ops": {"append": 100}, "batch": {"max_ops": 10, "max_wait": "50ms"}, "phases": [{"name": "steady", "for": "6s"}]}],
  "slas": [{"name": "nothing-lost", "metric": "audit.lost", "stat": "max", "max": 0},
           {"name": "no-duplicates", "metric": "audit.duplicates", "stat": "max", "max": 0}]
})";

struct job_result {
  int exit_code = -1;
  std::string log;
};

// Runs the job's steps in `ws` as the CI would: each step in bash -eo pipefail, the job stops
// at the first failing step and ends with its code.
job_result run_job(const json& job, const fs::path& ws,
                   const std::vector<std::pair<std::string, std::string>>& ci_env) {
  job_result res;
  std::string env;
  for (const auto& [k, v] : job["env"].items()) env += k + "=" + quote(v.get<std::string>()) + " ";
  for (const auto& [k, v] : ci_env) env += k + "=" + quote(v) + " ";
  int i = 0;
  for (const auto& s : job["steps"]) {
    const fs::path file = ws / (".step" + std::to_string(++i) + ".sh");
    t::write_file(file, s["script"].get<std::string>());
    std::string step_env;
    for (const auto& [k, v] : s["env"].items()) step_env += k + "=" + quote(v.get<std::string>()) + " ";
    auto r = t::run("cd " + quote(ws.string()) + " && env " + env + step_env + "bash --noprofile --norc -eo pipefail " +
                    file.string() + " 2>&1");
    res.log += "--- step " + s["name"].get<std::string>() + " (exit " + std::to_string(r.exit_code) + ")\n" + r.out;
    res.exit_code = r.exit_code;
    if (r.exit_code != 0) break;
  }
  return res;
}

std::size_t files_in(const fs::path& dir) {
  std::size_t n = 0;
  if (fs::exists(dir))
    for (auto& e : fs::recursive_directory_iterator(dir)) n += e.is_regular_file();
  return n;
}

void check_recipe(const std::string& kind, const std::string& file) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) {
    if (t::in_ci()) FAIL() << "required integration test cannot run: " << why;
    GTEST_SKIP() << why;
  }
  if (t::run("python3 -c 'import yaml'").exit_code != 0) {
    if (t::in_ci()) FAIL() << "python3-yaml is missing (scripts/setup.sh installs it)";
    GTEST_SKIP() << "python3-yaml is missing";
  }
  const json job = read_job(t::source_dir() + "/deploy/ci/" + file, kind);
  ASSERT_FALSE(job["steps"].empty());

  t::temp_dir ws;  // the job's checkout: the repository's deploy/ and scenarios/, and the scenario
  fs::create_directory_symlink(fs::absolute(t::source_dir()) / "deploy", ws.path() / "deploy");
  fs::create_directory_symlink(fs::absolute(t::source_dir()) / "scenarios", ws.path() / "scenarios");
  t::write_file(ws.path() / "ci-gate.json", gate_scenario);
  const fs::path summary = ws.path() / "step_summary.md";
  std::vector<std::pair<std::string, std::string>> ci = {{"CI", "true"},
                                                         {"SYNCSTORM", fs::absolute(t::bin()).string()},
                                                         {"SYNCSTORM_SCENARIO", "ci-gate.json"},
                                                         {"SYNCSTORM_ARGS", ""}};
  if (kind == "github")
    for (auto kv :
         std::vector<std::pair<std::string, std::string>>{{"GITHUB_ACTIONS", "true"},
                                                          {"GITHUB_WORKSPACE", ws.path().string()},
                                                          {"GITHUB_STEP_SUMMARY", summary.string()},
                                                          {"GITHUB_OUTPUT", (ws.path() / "gh_output").string()},
                                                          {"GITHUB_ENV", (ws.path() / "gh_env").string()},
                                                          {"RUNNER_TEMP", ws.path().string()},
                                                          {"GITHUB_REF_NAME", "main"}})
      ci.push_back(kv);
  else
    for (auto kv : std::vector<std::pair<std::string, std::string>>{{"GITLAB_CI", "true"},
                                                                    {"CI_PROJECT_DIR", ws.path().string()},
                                                                    {"CI_COMMIT_REF_SLUG", "main"},
                                                                    {"CI_DEFAULT_BRANCH", "main"},
                                                                    {"CI_JOB_ID", "1"}})
      ci.push_back(kv);
  const std::string out = job["env"].value("SYNCSTORM_OUT", "syncstorm-out");
  const std::string baseline = job["env"].value("SYNCSTORM_BASELINE", "syncstorm-baseline");

  // 1. The correct stack: the gate passes, files published, the report kept as a baseline.
  auto pass = run_job(job, ws.path(), ci);
  EXPECT_EQ(pass.exit_code, 0) << pass.log;
  const std::string junit = t::read_file(ws.path() / out / "junit.xml");
  EXPECT_NE(junit.find("nothing-lost"), std::string::npos) << pass.log;
  EXPECT_EQ(junit.find("<failure"), std::string::npos) << junit;
  EXPECT_NE(t::read_file(ws.path() / out / "summary.md").find("nothing-lost"), std::string::npos) << pass.log;
  EXPECT_EQ(t::read_file(ws.path() / out / "exit_code"), "0\n");
  if (kind == "github") {
    EXPECT_NE(t::read_file(summary).find("nothing-lost"), std::string::npos) << "summary.md was not posted";
  }
  const std::size_t baselines = files_in(ws.path() / baseline);
  EXPECT_EQ(baselines, 1u) << pass.log;

  // 2. syncd acks and drops every 10th push: the audit finds the loss, the job fails with 1.
  for (auto& kv : ci)
    if (kv.first == "SYNCSTORM_ARGS") kv.second = "--set target.lab.bug=drop-every=10";
  auto fail = run_job(job, ws.path(), ci);
  EXPECT_EQ(fail.exit_code, 1) << fail.log;
  const std::string junit2 = t::read_file(ws.path() / out / "junit.xml");
  EXPECT_NE(junit2.find("<failure"), std::string::npos) << fail.log;
  EXPECT_EQ(t::read_file(ws.path() / out / "exit_code"), "1\n");
  const char* annotation = kind == "github" ? "::error::syncstorm: a rule failed" : "syncstorm error: a rule failed";
  EXPECT_NE(fail.log.find(annotation), std::string::npos) << fail.log;
  EXPECT_EQ(files_in(ws.path() / baseline), baselines) << "a failing run must not become a baseline";
}

}  // namespace

TEST(ci_recipes, github_actions_job) { check_recipe("github", "github-actions.yml"); }

TEST(ci_recipes, gitlab_ci_job) { check_recipe("gitlab", "gitlab-ci.yml"); }
