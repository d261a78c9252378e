// The live metrics of `run --metrics-listen` (issue #26): the OpenMetrics / Prometheus text of a
// snapshot (reports/openmetrics), the endpoint's request parsing and answers, the listen
// address, live recovery rules, and one scrape over loopback of an endpoint bound to port 0.
#include "engine/live_metrics.hpp"
#include "engine/remote_write.hpp"
#include "engine/server_metrics.hpp"
#include "reports/openmetrics.hpp"

#include "core/plan.hpp"
#include "core/scenario.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace syncstorm {
namespace {

constexpr std::int64_t ms = 1000;

// sample line -> value, for lines that are samples (not # comments).
std::map<std::string, std::string> samples_of(const std::string& text) {
  std::map<std::string, std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    out[line.substr(0, sp)] = line.substr(sp + 1);
  }
  return out;
}

reports::live_view view_with(const metrics_shard& m) {
  reports::live_view v;
  v.scenario = "s";
  v.run = "r";
  v.metrics = &m;
  return v;
}

TEST(openmetrics, histogram_buckets_are_cumulative_and_exact_at_the_boundaries) {
  metrics_shard m;
  // 1..1000 ms, one each: le=0.1 holds exactly 100 values, le=0.5 holds 500.
  for (int i = 1; i <= 1000; ++i) m.metric("push.latency@pos").record(i * ms, i * ms, i % 100 != 0);
  const std::string text = reports::render_metrics(view_with(m), reports::exposition::openmetrics);
  auto s = samples_of(text);
  const std::string base = R"(syncstorm_latency_seconds_bucket{metric="push.latency",load="pos",le=")";
  EXPECT_EQ(s[base + R"(0.1"})"], "100");
  EXPECT_EQ(s[base + R"(0.5"})"], "500");
  EXPECT_EQ(s[base + R"(1.0"})"], "1000");
  EXPECT_EQ(s[base + R"(+Inf"})"], "1000");
  EXPECT_EQ(s[R"(syncstorm_latency_seconds_count{metric="push.latency",load="pos"})"], "1000");
  EXPECT_EQ(s[R"(syncstorm_latency_seconds_sum{metric="push.latency",load="pos"})"], "500.5");
  EXPECT_EQ(s[R"(syncstorm_events_total{metric="push.latency",load="pos",outcome="ok"})"], "990");
  EXPECT_EQ(s[R"(syncstorm_events_total{metric="push.latency",load="pos",outcome="error"})"], "10");
  // The whole-run histogram's p99 (within its 0.05%), as report.json has it.
  EXPECT_NEAR(std::stod(s[R"(syncstorm_latency_percentile_seconds{metric="push.latency",load="pos",quantile="0.99"})"]),
              0.99, 0.99 * 0.0005);
  EXPECT_EQ(std::stod(s[R"(syncstorm_latency_percentile_seconds{metric="push.latency",load="pos",quantile="0.99"})"]),
            static_cast<double>(m.find("push.latency@pos")->hist().percentile(99)) / 1e6);
  // Cumulative: every bucket holds at least the one before it.
  double prev = -1;
  for (double le : reports::openmetrics_buckets) {
    auto it = std::find_if(s.begin(), s.end(), [&](const auto& kv) {
      return kv.first.starts_with(base) && std::stod(kv.first.substr(base.size())) == le;
    });
    ASSERT_NE(it, s.end()) << le;
    const double c = std::stod(it->second);
    EXPECT_GE(c, prev);
    prev = c;
  }
  EXPECT_TRUE(text.ends_with("# EOF\n"));
  EXPECT_NE(text.find("# TYPE syncstorm_events counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE syncstorm_run info\n"), std::string::npos);
}

TEST(openmetrics, prometheus_text_names_counters_with_total_and_has_no_eof) {
  metrics_shard m;
  m.metric("conflicts").add(0, 3);
  const std::string text = reports::render_metrics(view_with(m), reports::exposition::prometheus_text);
  EXPECT_NE(text.find("# TYPE syncstorm_events_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("# TYPE syncstorm_run_info gauge\n"), std::string::npos);
  EXPECT_EQ(text.find("# EOF"), std::string::npos);
  // A count-only metric has events but no histogram samples.
  EXPECT_NE(text.find(R"(syncstorm_events_total{metric="conflicts",load="",outcome="ok"} 3)"), std::string::npos);
  EXPECT_EQ(text.find(R"(syncstorm_latency_seconds_count{metric="conflicts")"), std::string::npos);
}

TEST(openmetrics, every_sample_line_is_well_formed_and_labels_are_escaped) {
  metrics_shard m;
  m.metric("http.latency@a\"b\\c").record(0, 1500);
  m.gauge("ws.connected@x", 0, 42);
  reports::live_view v = view_with(m);
  v.faults.push_back({"kill", "pod_kill", "syncd-1", true, 1});
  v.verdicts = nlohmann::json::array({{{"name", "p99"},
                                       {"metric", "http.latency"},
                                       {"stat", "p99"},
                                       {"window", "all"},
                                       {"value", 1.5},
                                       {"bound", 100.0},
                                       {"warn_bound", 80.0},
                                       {"pass", true},
                                       {"warn", false},
                                       {"inconclusive", false},
                                       {"unit", "ms"}}});
  const std::string text = reports::render_metrics(v, reports::exposition::openmetrics);
  const std::regex sample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? [-+0-9.eEInfNa]+$)");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("#")) continue;
    EXPECT_TRUE(std::regex_match(line, sample)) << line;
    ++n;
  }
  EXPECT_GT(n, 40);
  EXPECT_NE(text.find(R"(load="a\"b\\c")"), std::string::npos);
  EXPECT_NE(text.find(R"(syncstorm_gauge{metric="ws.connected",load="x"} 42)"), std::string::npos);
  EXPECT_NE(text.find(R"(syncstorm_fault_active{fault="kill",kind="pod_kill",target="syncd-1"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(syncstorm_rule_state{rule="p99",metric="http.latency",stat="p99",window="all",load=""} 0)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(syncstorm_rule_bound{rule="p99",unit="ms",bound="warn"} 80)"), std::string::npos);
}

TEST(openmetrics, rule_state_and_negotiation) {
  EXPECT_EQ(reports::rule_state({{"pass", true}, {"warn", false}, {"inconclusive", false}}), 0);
  EXPECT_EQ(reports::rule_state({{"pass", true}, {"warn", true}, {"inconclusive", false}}), 1);
  EXPECT_EQ(reports::rule_state({{"pass", false}, {"warn", false}, {"inconclusive", false}}), 2);
  EXPECT_EQ(reports::rule_state({{"pass", false}, {"warn", false}, {"inconclusive", true}}), -1);
  EXPECT_EQ(reports::negotiate("application/openmetrics-text;version=1.0.0,text/plain;q=0.5"),
            reports::exposition::openmetrics);
  EXPECT_EQ(reports::negotiate("text/plain"), reports::exposition::prometheus_text);
  EXPECT_EQ(reports::negotiate(""), reports::exposition::prometheus_text);
  auto fams = reports::exported_families();
  EXPECT_NE(std::find(fams.begin(), fams.end(), "syncstorm_fault_active"), fams.end());
}

TEST(live_metrics, listen_addresses) {
  std::string why;
  auto a = engine::parse_listen_address("127.0.0.1:9477", why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9477);
  a = engine::parse_listen_address("[::1]:0", why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "::1");
  a = engine::parse_listen_address(":9100", why);
  ASSERT_TRUE(a);
  EXPECT_EQ(a->host, "0.0.0.0");
  for (const char* bad : {"9477", "127.0.0.1", "127.0.0.1:", "127.0.0.1:65536", "::1:80", "[::1]80", "[]:80", "h:x"}) {
    EXPECT_FALSE(engine::parse_listen_address(bad, why)) << bad;
    EXPECT_NE(why.find("expected HOST:PORT"), std::string::npos) << bad;
  }
}

TEST(live_metrics, requests_and_answers) {
  auto r =
      engine::parse_scrape_request("GET /metrics HTTP/1.1\r\nHost: x\r\naccept: application/openmetrics-text\r\n\r\n");
  EXPECT_TRUE(r.complete && r.valid);
  EXPECT_EQ(r.accept, "application/openmetrics-text");
  auto a = engine::answer(r, "OM", "PROM");
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.body, "OM");
  EXPECT_TRUE(a.content_type.starts_with("application/openmetrics-text"));
  a = engine::answer(engine::parse_scrape_request("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), "OM", "PROM");
  EXPECT_EQ(a.body, "PROM");
  EXPECT_EQ(engine::answer(engine::parse_scrape_request("GET / HTTP/1.1\r\n\r\n"), "", "").status, 404);
  EXPECT_EQ(engine::answer(engine::parse_scrape_request("POST /metrics HTTP/1.1\r\n\r\n"), "", "").status, 405);
  a = engine::answer(engine::parse_scrape_request("HEAD /metrics HTTP/1.1\r\n\r\n"), "OM", "PROM");
  EXPECT_TRUE(a.head_only);
  for (const char* bad : {"GET /metrics\r\n\r\n", "GET  HTTP/1.1\r\n\r\n", " / HTTP/1.1\r\n\r\n",
                          "GET /metrics HTTP/2.0x\r\n\r\n", "GET /metrics HTTP/1.1\r\nno colon\r\n\r\n"})
    EXPECT_EQ(engine::answer(engine::parse_scrape_request(bad), "", "").status, 400) << bad;
  EXPECT_FALSE(engine::parse_scrape_request("GET /metrics HTTP/1.1\r\n").complete);
}

TEST(live_metrics, recovery_not_yet_due_is_pending) {
  fault_occurrence kill;
  kill.name = "kill";
  kill.applied_us = 10'000 * ms;
  kill.lasting = false;
  fault_occurrence lat;
  lat.name = "lat";
  lat.applied_us = 1'000 * ms;
  lat.reverted_us = -1;
  lat.lasting = true;
  auto verdict = [](const std::string& metric) {
    return nlohmann::json{{"name", metric},  {"metric", metric}, {"value", INFINITY},
                          {"bound", 5000.0}, {"pass", false},    {"inconclusive", false}};
  };
  nlohmann::json v =
      nlohmann::json::array({verdict("recovery.kill"), verdict("recovery.lat"), verdict("recovery.none")});
  engine::pend_unfinished_recoveries(v, {kill, lat}, 12'000 * ms);
  EXPECT_TRUE(v[0]["inconclusive"].get<bool>());   // 2 s since the kill, 5 s allowed
  EXPECT_TRUE(v[1]["inconclusive"].get<bool>());   // still applied
  EXPECT_FALSE(v[2]["inconclusive"].get<bool>());  // no such fault: left as judged
  v = nlohmann::json::array({verdict("recovery.kill")});
  engine::pend_unfinished_recoveries(v, {kill}, 16'000 * ms);
  EXPECT_FALSE(v[0]["inconclusive"].get<bool>());  // 6 s: the bound ran out, breached
}

// The WriteRequest bytes, field by field (remote.proto / types.proto of Prometheus): one series,
// labels sorted with __name__ first, one sample (double, then the timestamp as a varint).
TEST(remote_write, encodes_a_write_request_and_round_trips_snappy) {
  reports::live_sample s{"syncstorm_gauge", {{"metric", "q"}, {"load", ""}}, 1.5};
  auto series = engine::to_remote_series({s}, 1'700'000'000'000, {{"job", "syncstorm"}});
  ASSERT_EQ(series.size(), 1u);
  std::vector<std::string> names;
  for (const auto& l : series[0].labels) names.push_back(l.first);
  EXPECT_EQ(names, (std::vector<std::string>{"__name__", "job", "load", "metric"}));
  const std::string raw = engine::encode_write_request(series);
  std::string expected_label = std::string("\x0a\x08__name__\x12\x0fsyncstorm_gauge", 27);
  ASSERT_GE(raw.size(), 4u);
  EXPECT_EQ(static_cast<unsigned char>(raw[0]), 0x0a);  // WriteRequest.timeseries, length-delimited
  EXPECT_NE(raw.find(std::string("\x0a") + static_cast<char>(expected_label.size()) + expected_label),
            std::string::npos);
  // The sample: 0x09 + 1.5 as a little-endian double, 0x10 + varint(1700000000000).
  const std::string sample = std::string("\x09\x00\x00\x00\x00\x00\x00\xf8\x3f\x10\x80\xd0\x95\xff\xbc\x31", 16);
  EXPECT_NE(raw.find(std::string("\x12\x10") + sample), std::string::npos);
  EXPECT_EQ(engine::snappy_uncompress(engine::snappy_compress(raw)), raw);
  EXPECT_EQ(engine::snappy_uncompress("\xff\xff\xff\xff garbage"), "");
  EXPECT_THROW(engine::remote_writer("ftp://x/api/v1/write"), std::invalid_argument);
}

// The target's own metrics (target.metrics): a family's samples summed over their label sets,
// histogram buckets and malformed lines left out, quoted label values minded.
TEST(server_metrics, prometheus_text_families) {
  const auto v = engine::parse_prometheus_text(
      "# HELP syncd_http_requests_total x\n"
      "# TYPE syncd_http_requests_total counter\n"
      "syncd_http_requests_total{pod=\"pod-0\",route=\"push\",code=\"200\"} 10\n"
      "syncd_http_requests_total{pod=\"pod-0\",route=\"a } \\\" b\",code=\"500\"} 2 1700000000000\n"
      "syncd_push_duration_seconds_bucket{le=\"0.1\"} 7\n"
      "syncd_push_duration_seconds_sum 1.5\r\n"
      "pg_lag +Inf\n"
      "nan_metric NaN\n"
      "broken{x=\"1\" 3\n"
      "novalue\n"
      "garbage 12abc\n"
      "up 1\n");
  EXPECT_EQ(v.at("syncd_http_requests_total"), 12);
  EXPECT_EQ(v.at("syncd_push_duration_seconds_sum"), 1.5);
  EXPECT_TRUE(std::isinf(v.at("pg_lag")));
  EXPECT_EQ(v.at("up"), 1);
  for (const char* absent : {"syncd_push_duration_seconds_bucket", "nan_metric", "broken", "novalue", "garbage"})
    EXPECT_EQ(v.count(absent), 0u) << absent;
}

std::string scrape(unsigned short port, const std::string& request) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return "";
  }
  (void)!::write(fd, request.data(), request.size());
  std::string out;
  char buf[4096];
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  ::close(fd);
  return out;
}

TEST(live_metrics, serves_the_view_over_loopback) {
  scenario s;
  s.name = "unit";
  s.duration_us = 10'000 * ms;
  fault_entry f;
  f.name = "kill";
  f.kind = "pod_kill";
  f.target = "syncd-1";
  s.faults.push_back(f);
  plan p;
  engine::live_metrics live(engine::listen_address{"127.0.0.1", 0}, "", s, p, 1);
  const auto port = static_cast<unsigned short>(std::stoi(live.bound().substr(live.bound().rfind(':') + 1)));
  metrics_shard m;
  m.metric("http.latency").record(500 * ms, 2 * ms);
  live.tick(m, 0, 1'000 * ms, {});
  std::string got = scrape(port, "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text\r\n\r\n");
  EXPECT_TRUE(got.starts_with("HTTP/1.1 200 OK\r\n")) << got;
  EXPECT_NE(got.find("syncstorm_run_elapsed_seconds 1\n"), std::string::npos);
  EXPECT_NE(got.find(R"(syncstorm_fault_active{fault="kill",kind="pod_kill",target="syncd-1"} 0)"), std::string::npos);
  EXPECT_TRUE(got.ends_with("# EOF\n"));
  live.fault_event("fault_applied", {{"fault", "kill"}, {"id", "kill#0"}});
  got = scrape(port, "GET /metrics HTTP/1.1\r\n\r\n");
  EXPECT_NE(got.find(R"(syncstorm_fault_active{fault="kill",kind="pod_kill",target="syncd-1"} 1)"), std::string::npos);
  live.fault_event("fault_reverted", {{"fault", "kill"}, {"id", "kill#0"}});
  EXPECT_NE(live.text(reports::exposition::prometheus_text).find(R"(target="syncd-1"} 0)"), std::string::npos);
  EXPECT_TRUE(scrape(port, "GET /nope HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  EXPECT_TRUE(scrape(port, std::string(9000, 'x')).starts_with("HTTP/1.1 431"));
  // A second endpoint on the same port is refused with the reason.
  try {
    engine::live_metrics twice(engine::listen_address{"127.0.0.1", port}, "", s, p, 1);
    ADD_FAILURE() << "bound twice";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot listen on 127.0.0.1:"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace syncstorm
