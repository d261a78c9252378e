// Renderers of a run's report.json into the other outputs: junit.xml (a testsuite per
// scenario, a testcase per rule), summary.md (verdicts first, for a pull-request comment),
// report.html (self-contained: verdicts, fault timeline, inline SVG charts) and the verdict
// table printed at the end of a run. Pure functions of the report; `syncstorm report RUN_DIR`
// regenerates every file from report.json with them. Safe from any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

namespace syncstorm::reports {

std::string junit_xml(const nlohmann::json& report);
std::string summary_md(const nlohmann::json& report);
std::string html(const nlohmann::json& report);
std::string verdict_table(const nlohmann::json& report);

// A verdict's status word: "INCONCLUSIVE", "FAIL", "WARN" or "PASS" (every output and `compare`).
std::string verdict_status(const nlohmann::json& verdict);

// Writes report.json (as given), junit.xml, summary.md and report.html into run_dir, each
// through a temporary file and a rename. Throws std::runtime_error naming the file on failure.
void write_all(const std::string& run_dir, const nlohmann::json& report);

}  // namespace syncstorm::reports
