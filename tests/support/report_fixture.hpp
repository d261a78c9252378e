// A realistic report.json for the report tests, built without a run: a 60 s terminal + fanout
// scenario with a pod kill at 20 s and a latency fault from 40 s to 50 s, per-second series
// whose p99 and errors rise in the fault windows, queue.depth and ws.connected levels, lab
// events, an audit and one failed, one warned and one inconclusive rule. Deterministic.
// Test-only.
#pragma once

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <string>

namespace syncstorm::test {

inline nlohmann::json sample_report(double p99_factor = 1.0) {
  using json = nlohmann::json;
  std::uint64_t state = 42;
  auto noise = [&state] {  // 0..1, a fixed sequence
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53);
  };
  auto in_fault = [](int t) { return (t >= 20 && t < 27) || (t >= 40 && t < 50); };
  json series = json::object(), gauges = json::object();
  for (const char* m : {"push.latency", "push.e2e", "fanout.delivery", "availability.attempts"}) {
    json rows = json::array();
    for (int t = 0; t < 60; ++t) {
      double base = std::string(m) == "push.e2e" ? 40 : std::string(m) == "fanout.delivery" ? 25 : 18;
      double hit = in_fault(t) ? (t < 27 ? 9.0 : 4.0) : 1.0;
      double p50 = base * (1 + 0.2 * noise()) * (hit > 1 ? 2 : 1);
      double p99 = base * 3 * hit * (1 + 0.3 * noise()) * p99_factor;
      double count = 200 + std::floor(20 * noise());
      double errors = in_fault(t) && t < 27 ? std::floor(30 * noise()) : 0;
      rows.push_back({t, count, errors, p50, p99, p99 * 1.4});
    }
    series[m] = rows;
  }
  json depth = json::array(), ws = json::array();
  for (int t = 0; t < 60; ++t) {
    depth.push_back({t, t >= 20 && t < 30 ? 40.0 * (t - 19) / (t < 27 ? 1 : (t - 25)) : 2.0 * noise()});
    ws.push_back({t, t >= 20 && t < 24 ? 120.0 + 10 * (t - 20) : 200.0});
  }
  gauges["queue.depth"] = depth;
  gauges["ws.connected"] = ws;
  auto timed = [&](double p50, double p99, double count, double errors) {
    return json{{"unit", "ms"},
                {"count", count},
                {"ok", count - errors},
                {"errors", errors},
                {"min", p50 / 4},
                {"mean", p50 * 1.2},
                {"p50", p50},
                {"p90", p99 / 2},
                {"p99", p99 * p99_factor},
                {"p99_9", p99 * 1.5 * p99_factor},
                {"p99_99", p99 * 1.8 * p99_factor},
                {"max", p99 * 2 * p99_factor}};
  };
  json metrics = {{"push.latency", timed(19.5, 212.0, 12600, 95)},
                  {"push.e2e", timed(43.0, 480.0, 12600, 95)},
                  {"fanout.delivery", timed(27.0, 150.0, 12540, 0)},
                  {"availability.attempts", {{"unit", "count"}, {"count", 12600}, {"ok", 12505}, {"errors", 95}}},
                  {"generator.lag", timed(0.05, 0.4, 12600, 0)},
                  {"queue.depth", {{"unit", "value"}, {"last", 1}, {"peak", 280}}},
                  {"ws.connected", {{"unit", "value"}, {"last", 200}, {"peak", 200}}}};
  auto verdict = [](std::string name, std::string metric, std::string stat, std::string window, json value,
                    double bound, std::string op, bool pass, bool warn, bool inconclusive, std::string unit,
                    std::string reason) {
    return json{{"name", name},     {"metric", metric},
                {"stat", stat},     {"window", window},
                {"value", value},   {"bound", bound},
                {"op", op},         {"pass", pass},
                {"warn", warn},     {"inconclusive", inconclusive},
                {"unit", unit},     {"samples", 12600},
                {"reason", reason}, {"warn_bound", nullptr}};
  };
  json verdicts = json::array({
      verdict("push-p99", "push.latency", "p99", "all", 212.0 * p99_factor, 250, "<=", 212.0 * p99_factor <= 250, false,
              false, "ms", ""),
      verdict("push-p99-during-kill", "push.latency", "p99", "during:kill-pod", 840.0, 500, "<=", false, false, false,
              "ms", "broken for 6.1 s (rule allows 0 s)"),
      verdict("e2e-p99", "push.e2e", "p99", "steady", 480.0 * p99_factor, 1000, "<=", true, 480.0 * p99_factor > 400,
              false, "ms", ""),
      verdict("availability", "availability.attempts", "ratio", "all", 99.25, 99.0, ">=", true, false, false, "percent",
              ""),
      verdict("fanout-p99.99", "fanout.delivery", "p99.99", "all", nullptr, 300, "<=", false, false, true, "ms",
              "12540 samples cannot show p99.99 (need 100000)"),
  });
  verdicts[2]["warn_bound"] = 400;
  json events = json::array({
      {{"event", "run_started"}, {"t_s", -2.1}, {"subject", ""}},
      {{"event", "phase_planned"},
       {"t_s", 0.0},
       {"load", "lanes"},
       {"phase", "warmup"},
       {"start_s", 0.0},
       {"end_s", 10.0}},
      {{"event", "phase_planned"},
       {"t_s", 0.0},
       {"load", "lanes"},
       {"phase", "steady"},
       {"start_s", 10.0},
       {"end_s", 60.0}},
      {{"event", "pod_died"}, {"t_s", 20.02}, {"name", "pod-1"}, {"source", "lab"}},
      {{"event", "lb_backend_down"}, {"t_s", 21.1}, {"name", "pod-1"}, {"source", "lab"}},
      {{"event", "pod_started"}, {"t_s", 21.03}, {"name", "pod-1"}, {"source", "lab"}},
      {{"event", "pod_ready"}, {"t_s", 25.4}, {"name", "pod-1"}, {"source", "lab"}},
      {{"event", "lb_backend_up"}, {"t_s", 26.5}, {"name", "pod-1"}, {"source", "lab"}},
      {{"event", "run_stopped"}, {"t_s", 60.0}, {"error", ""}},
  });
  json faults = json::array({
      {{"name", "kill-pod"},
       {"kind", "kill"},
       {"targets", {"pod-1"}},
       {"scheduled_at", 20.0},
       {"applied_at", 20.01},
       {"reverted_at", 20.02},
       {"recovery_s", 6.8},
       {"ready_s", 5.4},
       {"detect_s", 0.3},
       {"inflight_ops", 37}},
      {{"name", "slow-db"},
       {"kind", "latency"},
       {"targets", {"db-primary"}},
       {"scheduled_at", 40.0},
       {"applied_at", 40.02},
       {"reverted_at", 50.01},
       {"recovery_s", 1.2},
       {"ready_s", nullptr},
       {"detect_s", 0.9},
       {"inflight_ops", 12}},
  });
  return json{
      {"schema_version", 1},
      {"syncstorm_version", "0.1.0"},
      {"seed", 7},
      {"scenario",
       {{"name", "checkout-failover"},
        {"duration", "60s"},
        {"target",
         {{"endpoints", {{"http", "http://127.0.0.1:1"}}}, {"headers", {{"Authorization", "Bearer ${env:TOKEN}"}}}}}}},
      {"time_scale", 1.0},
      {"started_at", "2024-05-01T12:00:00.000Z"},
      {"ended_at", "2024-05-01T12:01:02.500Z"},
      {"duration_s", 60.0},
      {"outcome", "fail"},
      {"exit_code", 1},
      {"reason", ""},
      {"verdicts", verdicts},
      {"metrics", metrics},
      {"series", series},
      {"gauges", gauges},
      {"faults", faults},
      {"audit",
       {{"acked", 12505},
        {"present", 12505},
        {"lost", 0},
        {"duplicates", 0},
        {"in_doubt", 95},
        {"order_violations", 0},
        {"diverged", 0},
        {"lost_ids", json::array()},
        {"source", "api"}}},
      {"generator",
       {{"cpu", 0.42}, {"lag_p99", 0.4}, {"saturated", false}, {"reason", ""}, {"threads", 2}, {"late", 0}}},
      {"events", events},
      {"run_dir", "runs/20240501T120000Z-checkout-failover"},
      {"errors", json::object()}};
}

}  // namespace syncstorm::test
