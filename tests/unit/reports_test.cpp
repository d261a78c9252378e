// The report renderers, the run comparison, the baseline store and the live progress line, on
// a synthetic but realistic report (tests/support/report_fixture.hpp): junit.xml validates
// against the JUnit XSD kept in tests/data (xmllint, an independent reader) and states value,
// bound and window; summary.md puts verdicts first; report.html holds its charts, fetches
// nothing and escapes what it shows; compare passes a run against itself and fails one whose
// p99 doubled; the baseline store keeps the last N.
#include "core/report_schema.hpp"
#include "reports/baseline.hpp"
#include "reports/compare.hpp"
#include "reports/progress.hpp"
#include "reports/writers.hpp"
#include "tests/support/report_fixture.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <sstream>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace r = syncstorm::reports;
namespace fs = std::filesystem;

namespace {

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) ++n;
  return n;
}

// xmllint's verdict on `xml` against the repository's JUnit XSD: exit code and output.
t::command_result xsd_check(const std::string& xml) {
  t::temp_dir d;
  auto f = d.path() / "junit.xml";
  t::write_file(f, xml);
  return t::run("xmllint --noout --schema " + t::source_dir() + "/tests/data/junit.xsd " + f.string() + " 2>&1");
}

}  // namespace

// The fixture is a report the writer could have written: it passes report.json's spec (so the
// renderers are tested on the real shape, gauges and faults included).
TEST(fixture, sample_report_matches_the_report_schema) {
  syncstorm::spec::errors errs;
  syncstorm::spec::validate(t::sample_report(), *syncstorm::report_spec(), "report", errs);
  EXPECT_TRUE(errs.empty()) << errs[0];
}

TEST(junit, validates_against_the_xsd_and_states_value_bound_window) {
  if (t::run("command -v xmllint >/dev/null").exit_code != 0)
    SYNCSTORM_SKIP_OR_FAIL("xmllint missing (scripts/setup.sh installs libxml2-utils)");
  json rep = t::sample_report();
  std::string xml = r::junit_xml(rep);
  auto v = xsd_check(xml);
  EXPECT_EQ(v.exit_code, 0) << v.out << xml;
  EXPECT_NE(xml.find("<testsuite name=\"checkout-failover\" tests=\"5\" failures=\"1\" errors=\"0\" skipped=\"1\""),
            std::string::npos)
      << xml;
  EXPECT_EQ(count_of(xml, "<testcase "), 5u);
  EXPECT_NE(
      xml.find(
          "<failure message=\"push.latency p99 over during:kill-pod: value 840 ms, bound &lt;= 500 ms, 12600 samples\" type=\"sla\">"),
      std::string::npos)
      << xml;
  EXPECT_NE(xml.find("broken for 6.1 s"), std::string::npos);
  EXPECT_NE(xml.find("<skipped message=\"inconclusive: 12540 samples cannot show p99.99"), std::string::npos) << xml;
  EXPECT_NE(xml.find("warning: push.e2e p99 over steady"), std::string::npos) << xml;
  EXPECT_NE(xml.find("fault kill-pod (kill): applied 20.01 s"), std::string::npos) << xml;

  // An errored run adds a testcase with <error>; still valid.
  rep["outcome"] = "error";
  rep["exit_code"] = 3;
  rep["reason"] = "target unreachable: connect 127.0.0.1:1: <refused> & \"gone\"";
  xml = r::junit_xml(rep);
  v = xsd_check(xml);
  EXPECT_EQ(v.exit_code, 0) << v.out << xml;
  EXPECT_NE(
      xml.find(
          "<error message=\"error: target unreachable: connect 127.0.0.1:1: &lt;refused&gt; &amp; &quot;gone&quot;\""),
      std::string::npos)
      << xml;
  EXPECT_NE(xml.find("tests=\"6\""), std::string::npos);
}

TEST(junit, the_xsd_rejects_what_ci_would_not_read) {
  if (t::run("command -v xmllint >/dev/null").exit_code != 0)
    SYNCSTORM_SKIP_OR_FAIL("xmllint missing (scripts/setup.sh installs libxml2-utils)");
  // The check can fail: a testcase without a name, a count that is not a number, a failure
  // before skipped (order matters in the format).
  EXPECT_NE(xsd_check("<testsuites><testsuite name=\"s\" tests=\"1\"><testcase/></testsuite></testsuites>").exit_code,
            0);
  EXPECT_NE(xsd_check("<testsuites><testsuite name=\"s\" tests=\"one\"/></testsuites>").exit_code, 0);
  EXPECT_NE(
      xsd_check(
          "<testsuites><testsuite name=\"s\" tests=\"1\"><testcase name=\"a\"><failure/><skipped/></testcase></testsuite></testsuites>")
          .exit_code,
      0);
  EXPECT_EQ(
      xsd_check(
          "<testsuites><testsuite name=\"s\" tests=\"1\"><testcase name=\"a\"><skipped message=\"m\"/></testcase></testsuite></testsuites>")
          .exit_code,
      0);
}

TEST(summary_md, verdicts_first_then_key_figures_and_the_fault_timeline) {
  std::string md = r::summary_md(t::sample_report());
  auto verdicts = md.find("| verdict | rule |"), figures = md.find("### Key figures"),
       faults = md.find("### Fault timeline");
  ASSERT_NE(verdicts, std::string::npos) << md;
  ASSERT_NE(figures, std::string::npos) << md;
  ASSERT_NE(faults, std::string::npos) << md;
  EXPECT_LT(verdicts, figures);
  EXPECT_LT(figures, faults);
  EXPECT_EQ(
      md.rfind(
          "## ❌ syncstorm: checkout-failover — fail\n\n3 of 5 rules held, 1 failed, 1 warned, 1 inconclusive (exit 1).",
          0),
      0u)
      << md;
  EXPECT_NE(md.find("| **FAIL** | push-p99-during-kill | push.latency p99 | during:kill-pod | 840 ms | <= 500 ms |"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("| push.latency | 12600 | 95 (0.754%) | 19.5 ms | 212 ms | 424 ms |"), std::string::npos) << md;
  EXPECT_NE(md.find("| queue.depth | 1 | 280 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| kill-pod | kill | pod-1 | 20 s | 20.01 s | 20.02 s | 6.8 s | 5.4 s | 37 |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("lost **0**"), std::string::npos) << md;
  // A pipe in a name must not break the table.
  json rep = t::sample_report();
  rep["verdicts"][0]["name"] = "a|b";
  EXPECT_NE(r::summary_md(rep).find("| a\\|b |"), std::string::npos);
}

TEST(html, has_every_chart_and_fetches_nothing) {
  std::string h = r::html(t::sample_report());
  for (const char* id :
       {"timeline-chart", "chart-push-latency-latency", "chart-push-latency-throughput", "chart-push-e2e-latency",
        "chart-fanout-delivery-latency", "chart-availability-attempts-throughput", "chart-queue-depth-level",
        "chart-ws-connected-level"}) {
    EXPECT_NE(h.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  }
  // Fault windows shaded on every time chart (2 faults × 9 charts: 3 latency, 4 throughput, 2
  // levels), a rule bound drawn.
  EXPECT_EQ(count_of(h, "<rect class=\"fault\""), 2u * 9u);
  EXPECT_NE(h.find("<line class=\"bound\""), std::string::npos);
  EXPECT_NE(h.find("push-p99-during-kill: p99 &lt;= 500 ms"), std::string::npos);
  // The timeline has lanes for the load, both faults, pods and the load balancer.
  for (const char* lane : {">load lanes<", ">fault kill-pod<", ">fault slow-db<", ">pods<", ">load balancer<"})
    EXPECT_NE(h.find(lane), std::string::npos) << lane;
  EXPECT_NE(h.find("id=\"headline\" class=\"headline bad\"><b>1 of 5 rules failed:</b> push-p99-during-kill"),
            std::string::npos);
  // Self-contained: no external reference of any kind.
  std::regex external(R"((src|href)\s*=\s*"(?!data:|#))", std::regex::icase);
  EXPECT_FALSE(std::regex_search(h, external));
  EXPECT_EQ(h.find("<script"), std::string::npos);
  EXPECT_EQ(h.find("url("), std::string::npos);
  EXPECT_EQ(h.find("@import"), std::string::npos);
}

TEST(html, escapes_what_it_shows) {
  json rep = t::sample_report();
  rep["scenario"]["name"] = "<script>alert(1)</script>";
  rep["faults"][0]["name"] = "a\"><img src=x onerror=alert(1)>";
  rep["events"].push_back({{"event", "pod_died"}, {"t_s", 3.0}, {"name", "<b>x</b>"}});
  std::string h = r::html(rep);
  EXPECT_EQ(h.find("<script>alert"), std::string::npos);
  EXPECT_EQ(h.find("<img"), std::string::npos);
  EXPECT_EQ(h.find("<b>x</b>"), std::string::npos);
  EXPECT_NE(h.find("&lt;script&gt;alert(1)&lt;/script&gt;"), std::string::npos);
}

TEST(html, a_minimal_report_still_renders) {
  json rep = {{"outcome", "error"}, {"exit_code", 3}, {"reason", "lab down"}, {"verdicts", json::array()}};
  std::string h = r::html(rep);
  EXPECT_NE(h.find("No series recorded."), std::string::npos);
  EXPECT_NE(h.find("no rules"), std::string::npos);
  EXPECT_NO_THROW(r::summary_md(rep));
  EXPECT_NO_THROW(r::junit_xml(rep));
}

// Whatever bytes a server sent that reach the report (an audit error's excerpt, a sample): the
// writers replace invalid UTF-8 and never throw, so a run always ends with its report.
TEST(writers, invalid_utf8_in_the_report_is_replaced_not_thrown) {
  json rep = t::sample_report();
  rep["outcome"] = "error";
  rep["exit_code"] = 3;
  rep["reason"] = std::string("audit: HTTP 500: \x80\xff bad");
  t::temp_dir d;
  ASSERT_NO_THROW(r::write_all(d.str(), rep));
  const std::string text = t::read_file(d.path() / "report.json");
  EXPECT_NE(text.find("HTTP 500: \xef\xbf\xbd\xef\xbf\xbd bad"), std::string::npos);  // U+FFFD twice
  EXPECT_FALSE(json::parse(text, nullptr, false).is_discarded());
  for (const char* f : {"junit.xml", "summary.md", "report.html"}) EXPECT_TRUE(fs::exists(d.path() / f)) << f;
}

TEST(compare, a_run_against_itself_passes) {
  json rep = t::sample_report();
  auto c = r::compare_reports(rep, rep);
  EXPECT_FALSE(c.regressed) << r::format_comparison(c);
  EXPECT_EQ(c.rules.size(), 5u);
  for (const auto& d : c.metrics) EXPECT_FALSE(d.regression) << d.subject << " " << d.what;
  EXPECT_NE(r::format_comparison(c).find("compare: ok (0 regressions past 10%"), std::string::npos);
}

TEST(compare, p99_doubled_fails_at_10_percent) {
  json base = t::sample_report(), next = t::sample_report(2.0);
  r::compare_options o;
  o.max_regression_pct = 10;
  auto c = r::compare_reports(base, next, o);
  EXPECT_TRUE(c.regressed);
  auto find = [&](const std::vector<r::figure_delta>& v, const std::string& subject,
                  const std::string& what) -> const r::figure_delta* {
    for (const auto& d : v)
      if (d.subject == subject && d.what == what) return &d;
    return nullptr;
  };
  const auto* p99 = find(c.metrics, "push.latency", "p99");
  ASSERT_NE(p99, nullptr);
  EXPECT_TRUE(p99->regression);
  EXPECT_DOUBLE_EQ(*p99->change_pct, 100.0);
  const auto* p50 = find(c.metrics, "push.latency", "p50");
  ASSERT_NE(p50, nullptr);
  EXPECT_FALSE(p50->regression);
  const auto* max = find(c.metrics, "push.latency", "max");
  ASSERT_NE(max, nullptr);
  EXPECT_FALSE(max->judged);
  EXPECT_FALSE(max->regression);
  // The rule went PASS -> FAIL.
  const auto* rule = find(c.rules, "push-p99", "push.latency p99 all");
  ASSERT_NE(rule, nullptr);
  EXPECT_TRUE(rule->regression);
  EXPECT_EQ(rule->note, "PASS -> FAIL");
  std::string table = r::format_comparison(c);
  EXPECT_NE(table.find("REGRESSION (PASS -> FAIL)"), std::string::npos) << table;
  EXPECT_NE(table.find("+100%"), std::string::npos) << table;
  // At 150% the doubling is within the bound, but the rule's pass -> fail still regresses.
  o.max_regression_pct = 150;
  c = r::compare_reports(base, next, o);
  EXPECT_TRUE(c.regressed);
  EXPECT_FALSE(find(c.metrics, "push.latency", "p99")->regression);
  auto j = r::comparison_json(c);
  EXPECT_EQ(j["max_regression_pct"], 150.0);
  EXPECT_TRUE(j["regressed"].get<bool>());
}

TEST(compare, directions_floors_and_audit) {
  json base = t::sample_report(), next = t::sample_report();
  // Success ratio down by more than 10%: 99.25% -> 85%.
  next["metrics"]["availability.attempts"]["errors"] = 1890;
  // A latency tiny in absolute terms: +50% but under the 1 ms floor.
  base["metrics"]["fanout.delivery"]["p50"] = 0.2;
  next["metrics"]["fanout.delivery"]["p50"] = 0.3;
  // The generator's own lag is shown, never judged.
  next["metrics"]["generator.lag"]["p99"] = 40.0;
  // A ">=" rule whose value fell: worse.
  next["verdicts"][3]["value"] = 80.0;
  // Faster is never a regression.
  next["metrics"]["push.e2e"]["p99"] = 10.0;
  auto c = r::compare_reports(base, next);
  std::map<std::string, bool> reg;
  for (const auto& d : c.metrics) reg[d.subject + "/" + d.what] = d.regression;
  for (const auto& d : c.rules) reg["rule " + d.subject] = d.regression;
  EXPECT_TRUE(reg["availability.attempts/success_ratio"]);
  EXPECT_FALSE(reg["fanout.delivery/p50"]);
  EXPECT_FALSE(reg["generator.lag/p99"]);
  EXPECT_TRUE(reg["rule availability"]);
  EXPECT_FALSE(reg["push.e2e/p99"]);
  EXPECT_FALSE(reg["rule e2e-p99"]);
  // A lost op is a regression whatever the percentage.
  next = t::sample_report();
  next["audit"]["lost"] = 1;
  c = r::compare_reports(base, next, {1000, 1});
  EXPECT_TRUE(c.regressed);
}

TEST(compare, parse_percent) {
  EXPECT_EQ(r::parse_percent("10%"), 10.0);
  EXPECT_EQ(r::parse_percent("7.5"), 7.5);
  EXPECT_EQ(r::parse_percent("0%"), 0.0);
  EXPECT_FALSE(r::parse_percent("ten"));
  EXPECT_FALSE(r::parse_percent("-5%"));
  EXPECT_FALSE(r::parse_percent("5%%"));
  EXPECT_FALSE(r::parse_percent(""));
}

TEST(baseline, keeps_the_last_n_and_compares_with_the_newest) {
  t::temp_dir d;
  std::string dir = (d.path() / "baselines").string();
  auto run_dir = d.path() / "run";
  fs::create_directories(run_dir);
  json rep = t::sample_report();
  rep["outcome"] = "pass";
  rep["exit_code"] = 0;
  std::ostringstream out, err;
  // First: nothing to compare with; stored.
  EXPECT_EQ(r::apply_baseline(rep, run_dir.string(), {dir, 2, {}}, 0, out, err), 0);
  EXPECT_NE(out.str().find("baseline: none yet for checkout-failover"), std::string::npos) << out.str();
  EXPECT_EQ(r::stored_baselines(dir, "checkout-failover").size(), 1u);
  // Two more passing runs: only the last 2 kept, the newest last.
  for (const char* at : {"2024-05-02T12:00:00.000Z", "2024-05-03T12:00:00.000Z"}) {
    rep["started_at"] = at;
    EXPECT_EQ(r::apply_baseline(rep, run_dir.string(), {dir, 2, {}}, 0, out, err), 0) << out.str();
  }
  auto files = r::stored_baselines(dir, "checkout-failover");
  ASSERT_EQ(files.size(), 2u);
  EXPECT_EQ(files.back().filename(), "20240503T120000.000Z.json");
  EXPECT_TRUE(fs::exists(run_dir / "compare.json"));
  // A run whose p99 doubled: exit 1, not stored; an error (3) keeps its code.
  json slow = t::sample_report(2.0);
  slow["started_at"] = "2024-05-04T12:00:00.000Z";
  std::ostringstream out2;
  EXPECT_EQ(r::apply_baseline(slow, run_dir.string(), {dir, 2, {}}, 5, out2, err), 1) << out2.str();
  EXPECT_NE(out2.str().find("compare: REGRESSION"), std::string::npos) << out2.str();
  EXPECT_EQ(r::stored_baselines(dir, "checkout-failover").size(), 2u);
  std::ostringstream out3;
  EXPECT_EQ(r::apply_baseline(slow, run_dir.string(), {dir, 2, {}}, 3, out3, err), 3);
  EXPECT_EQ(out3.str(), "baseline: not compared (fail)\n");
  EXPECT_TRUE(json::parse(t::read_file(run_dir / "compare.json"))["regressed"].get<bool>());
  // Scenario names become safe folder names.
  EXPECT_EQ(r::baseline_folder("/b", "../x y").filename(), ".._x_y");
}

TEST(progress, rates_p99_errors_and_active_faults) {
  using syncstorm::metrics_shard;
  metrics_shard prev, now;
  for (int i = 0; i < 100; ++i) prev.metric("http.requests@api").record(500'000, 1000, true);
  now.merge(prev);
  for (int i = 0; i < 48; ++i) now.metric("http.requests@api").record(1'500'000, 1000, true);
  for (int i = 0; i < 2; ++i) now.metric("http.requests@api").record(1'500'000, 1000, false);
  for (int i = 0; i < 95; ++i) now.metric("http.latency@api").record(1'200'000, 2000);
  for (int i = 0; i < 5; ++i) now.metric("http.latency@api").record(1'200'000, 90'000);  // slow in second 1
  now.metric("http.latency@api").record(2'100'000, 1000);  // the current second: not yet shown
  r::progress_input in;
  in.now = &now;
  in.prev = &prev;
  in.prev_elapsed_s = 1.0;
  in.elapsed_s = 2.0;
  in.total_s = 60;
  in.loads = {{"api", "http"}, {"lanes", "terminal"}};
  in.active_faults = {"kill-pod", "slow-db"};
  std::string line = r::progress_line(in);
  EXPECT_EQ(line.rfind("[    2s/60s] api: 50/s total 150 errors 2 (1.3%) p99 ", 0), 0u) << line;
  EXPECT_NE(line.find(" lanes: -"), std::string::npos) << line;
  EXPECT_NE(line.find(" | faults: kill-pod slow-db"), std::string::npos) << line;
  // p99 of the last complete second (second 1), within the series' ~1.6%.
  auto p = line.find(" p99 ");
  double p99 = std::stod(line.substr(p + 5));
  EXPECT_NEAR(p99, 90.0, 2.0) << line;
  // The first tick: no previous snapshot; rate over the elapsed time.
  in.prev = nullptr;
  in.active_faults.clear();
  line = r::progress_line(in);
  EXPECT_NE(line.find("api: 75/s total 150"), std::string::npos) << line;
  EXPECT_EQ(line.find("faults"), std::string::npos);
}
