// `syncstorm run --metrics-listen` watched by a real Prometheus (Debian's 2.42, issue #26): a
// 20 s http run against the lab with a latency fault on the clients' path, scraped every second.
// Prometheus' query API must return the run's series; the last scraped p99 must be the report's
// (the exact gauge, and histogram_quantile within the bucket that holds it); every scrape inside
// [applied, reverted] must show the fault gauge at 1 and every scrape outside at 0. The same run
// pushes by remote write to the same Prometheus (--web.enable-remote-write-receiver).
#include "reports/openmetrics.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>

using json = nlohmann::json;
namespace t = syncstorm::test;

namespace {

// The scrape timestamps and the fault's times come from different clocks' readings of the same
// wall clock: a scrape's timestamp is taken when it starts, the report's applied_at before the
// fault is applied (the gauge flips once it is). Scrapes this close to a transition are not judged.
constexpr double edge_s = 0.3;

const char* scenario_text = R"({
  "name": "metrics-endpoint",
  "description": "An http load on the lab with a latency fault in the middle, watched by Prometheus.",
  "duration": "20s",
  "seed": 1,
  "target": {"lab": {"pods": 1}},
  "load": [{"name": "push", "model": "http", "connections": 8, "timeout": "2s",
            "request": {"method": "POST", "path": "/v1/push",
                        "body": {"client": "m", "ops": [{"id": "m-1", "stream": "store-1", "seq": 1, "t_us": 0,
                                                         "kind": "append", "body": {"total": 1}}]}},
            "expect_status": [200], "phases": [{"name": "steady", "for": "20s", "rate": 50}]}],
  "faults": [{"name": "lag", "kind": "latency", "path": "clients-lb", "direction": "both", "latency": "40ms",
              "at": "6s", "for": "8s"}],
  "slas": [{"name": "push-p99", "metric": "http.latency", "stat": "p99", "max": "2s", "load": "push"}]
})";

// GET on Prometheus' HTTP API; the parsed `data`.
json prom_query(int port, const std::string& path_and_query) {
  auto r = t::run("curl -s --max-time 10 'http://127.0.0.1:" + std::to_string(port) + path_and_query + "'");
  json j = json::parse(r.out, nullptr, false);
  if (j.is_discarded() || j.value("status", "") != "success") {
    ADD_FAILURE() << "prometheus " << path_and_query << ": " << r.out;
    return json();
  }
  return j["data"];
}

// Raw samples [(ts, value)] of the one series a selector names (`name` or `name{labels}`),
// narrowed to `instance` (the scraped endpoint, or the host name for remote-written series),
// over the last 10 minutes.
std::vector<std::pair<double, double>> raw(int port, std::string selector, const std::string& instance) {
  const std::string inst = "instance=\"" + instance + "\"";
  if (selector.ends_with("}"))
    selector.insert(selector.size() - 1, "," + inst);
  else
    selector += "{" + inst + "}";
  std::string q;
  for (char c : selector + "[10m]") {
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.')
      q += c;
    else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", static_cast<unsigned char>(c));
      q += buf;
    }
  }
  json d = prom_query(port, "/api/v1/query?query=" + q);
  std::vector<std::pair<double, double>> out;
  if (!d.is_object() || d["result"].size() != 1) {
    ADD_FAILURE() << selector << ": expected one series, found " << (d.is_object() ? d["result"].dump() : "none");
    return out;
  }
  for (const auto& v : d["result"][0]["values"])
    out.emplace_back(v[0].get<double>(), std::stod(v[1].get<std::string>()));
  return out;
}

}  // namespace

TEST(metrics_endpoint, prometheus_scrapes_the_run_and_sees_the_fault_only_while_it_is_applied) {
  if (auto why = t::lab_unavailable_reason(); !why.empty()) GTEST_SKIP() << why;
  if (t::run("command -v prometheus").exit_code != 0) {
    if (t::in_ci()) FAIL() << "prometheus is not installed (scripts/setup.sh installs it)";
    GTEST_SKIP() << "prometheus is not installed";
  }
  t::temp_dir d;
  const int metrics_port = t::free_port();
  const int prom_port = t::free_port();
  t::write_file(d.path() / "scenario.json", scenario_text);
  t::write_file(d.path() / "prometheus.yml",
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
                "scrape_configs:\n  - job_name: syncstorm\n    static_configs:\n"
                "      - targets: ['127.0.0.1:" +
                    std::to_string(metrics_port) + "']\n");
  t::child prometheus("exec prometheus --config.file=" + (d.path() / "prometheus.yml").string() +
                      " --storage.tsdb.path=" + (d.path() / "tsdb").string() + " --web.listen-address=127.0.0.1:" +
                      std::to_string(prom_port) + " --web.enable-remote-write-receiver --log.level=warn >" +
                      (d.path() / "prometheus.log").string() + " 2>&1");
  ASSERT_TRUE(t::wait_port(prom_port, std::chrono::seconds(30))) << t::read_file(d.path() / "prometheus.log");

  auto r =
      t::run(t::bin() + " run " + (d.path() / "scenario.json").string() + " --out " + (d.path() / "runs").string() +
             " --metrics-listen 127.0.0.1:" + std::to_string(metrics_port) + " --metrics-linger 4s" +
             " --prometheus-remote-write http://127.0.0.1:" + std::to_string(prom_port) + "/api/v1/write 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  EXPECT_NE(r.out.find("metrics: serving http://127.0.0.1:" + std::to_string(metrics_port) + "/metrics"),
            std::string::npos)
      << r.out;
  const json rep = json::parse(t::read_file(t::only_run_dir(d.path() / "runs") / "report.json"));
  const std::string scraped = "127.0.0.1:" + std::to_string(metrics_port);

  // Every scrape once the endpoint was up parsed (Prometheus' OpenMetrics parser is strict).
  auto up = raw(prom_port, R"(up{job="syncstorm"})", scraped);
  std::size_t first_up = 0;
  while (first_up < up.size() && up[first_up].second == 0) ++first_up;
  ASSERT_LT(first_up, up.size()) << "no scrape succeeded: " << t::read_file(d.path() / "prometheus.log");
  std::size_t ok_scrapes = 0;
  for (std::size_t i = first_up; i < up.size(); ++i) ok_scrapes += up[i].second == 1;
  EXPECT_GE(ok_scrapes, 20u);
  // After the run (linger over, the endpoint gone) scrapes fail; none failed while it ran.
  const double start = raw(prom_port, "syncstorm_run_start_timestamp_seconds", scraped).back().second;
  const double load_end = start + 20.0;
  for (std::size_t i = first_up; i < up.size(); ++i) {
    if (up[i].first < load_end) {
      EXPECT_EQ(up[i].second, 1) << "scrape at " << up[i].first - start << " s failed";
    }
  }

  // The run's series.
  auto requests = raw(prom_port, R"(syncstorm_events_total{metric="http.requests",load="push",outcome="ok"})", scraped);
  ASSERT_FALSE(requests.empty());
  EXPECT_GT(requests.back().second, 500);
  EXPECT_EQ(requests.back().second, rep["metrics"]["http.requests@push"]["ok"].get<double>());

  // The last scraped p99 is the report's.
  auto p99 = raw(prom_port,
                 R"(syncstorm_latency_percentile_seconds{metric="http.latency",load="push",quantile="0.99"})", scraped);
  ASSERT_FALSE(p99.empty());
  const double report_p99_s = rep["metrics"]["http.latency@push"]["p99"].get<double>() / 1000.0;
  EXPECT_NEAR(p99.back().second, report_p99_s, report_p99_s * 0.001);
  // histogram_quantile over the buckets lands in the bucket that holds the report's p99.
  json hq = prom_query(prom_port,
                       "/api/v1/query?query=histogram_quantile(0.99%2C%20syncstorm_latency_seconds_bucket"
                       "%7Bmetric%3D%22http.latency%22%2Cload%3D%22push%22%2Cinstance%3D%22" +
                           scraped + "%22%7D)&time=" + std::to_string(p99.back().first));
  ASSERT_TRUE(hq.is_object() && hq["result"].size() == 1) << hq.dump();
  const double q = std::stod(hq["result"][0]["value"][1].get<std::string>());
  double lo = 0, hi = INFINITY;
  for (double b : syncstorm::reports::openmetrics_buckets) {
    if (b < report_p99_s) lo = b;
    if (b >= report_p99_s) {
      hi = b;
      break;
    }
  }
  EXPECT_GE(q, lo - 1e-9) << "report p99 " << report_p99_s;
  EXPECT_LE(q, hi + 1e-9) << "report p99 " << report_p99_s;

  // The fault gauge: 1 in every scrape inside [applied, reverted], 0 in every scrape outside.
  ASSERT_EQ(rep["faults"].size(), 1u);
  const double applied = start + rep["faults"][0]["applied_at"].get<double>();
  const double reverted = start + rep["faults"][0]["reverted_at"].get<double>();
  auto active =
      raw(prom_port, R"(syncstorm_fault_active{fault="lag",kind="latency",target="path:clients-lb"})", scraped);
  int inside = 0, outside = 0;
  for (const auto& [ts, v] : active) {
    if (ts > applied + edge_s && ts < reverted - edge_s) {
      EXPECT_EQ(v, 1) << "scrape at " << ts - start << " s (fault applied " << applied - start << " s, reverted "
                      << reverted - start << " s)";
      ++inside;
    } else if (ts < applied - edge_s || ts > reverted + edge_s) {
      EXPECT_EQ(v, 0) << "scrape at " << ts - start << " s (fault applied " << applied - start << " s, reverted "
                      << reverted - start << " s)";
      ++outside;
    }
  }
  EXPECT_GE(inside, 6) << "the fault held 8 s";
  EXPECT_GE(outside, 10);
  // Remote write: the same samples pushed to the receiver, job "syncstorm", instance the host
  // name; the last push holds the final values.
  EXPECT_NE(r.out.find("remote write: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(" 0 failed"), std::string::npos) << r.out;
  const std::string host = t::run("hostname").out.substr(0, t::run("hostname").out.find('\n'));
  auto pushed = raw(prom_port,
                    R"(syncstorm_events_total{job="syncstorm",metric="http.requests",load="push",outcome="ok"})", host);
  ASSERT_GE(pushed.size(), 10u);
  EXPECT_EQ(pushed.back().second, rep["metrics"]["http.requests@push"]["ok"].get<double>());
  auto pushed_fault = raw(prom_port, R"(syncstorm_fault_active{fault="lag"})", host);
  EXPECT_TRUE(std::any_of(pushed_fault.begin(), pushed_fault.end(), [](const auto& p) { return p.second == 1; }));
  // The final values: the run finished, the rule held.
  EXPECT_EQ(raw(prom_port, "syncstorm_run_finished", scraped).back().second, 1);
  auto rule = raw(prom_port, R"(syncstorm_rule_state{rule="push-p99",window="all",load="push"})", scraped);
  ASSERT_FALSE(rule.empty());
  EXPECT_EQ(rule.back().second, 0);
}
