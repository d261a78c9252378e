// The target's own metrics during a run (`target.metrics`, issue #26): sources read every
// `every` on a thread of their own, each value kept as a gauge `server.<name>@<instance>` and,
// across the instances that reported it in that round, `server.<name>` holding the highest (a
// rule reads the worst pod; `load` on a rule names one instance, `across` min, sum or mean asks
// for `<how>(server.<name>)` as well). `server.up@<instance>` is 1
// when the source answered, 0 when it did not.
//
// Sources: Prometheus text endpoints (target.metrics.endpoints: every sample family, summed
// over its label sets, histogram buckets left out), and with a lab target (target.metrics.lab,
// default true) the lab's own: each syncd pod's /metrics, PostgreSQL replication from the
// primary (pg_stat_replication: server.pg_replication_lag_bytes, server.pg_replicas) and the
// replica (server.pg_replication_lag_seconds: 0 while it has replayed all it received, else the
// age of its last replayed transaction; server.pg_replay_paused), and HAProxy's API backend
// (server.haproxy_servers_up, server.haproxy_servers: its pods UP, and in all). Scraped gauges join the run's metrics,
// so they are in report.json's gauges, the charts and the live endpoint.
//
// Threading: start() and stop() from the controller thread; snapshot() from any thread.
#pragma once

#include "core/metrics.hpp"
#include "core/scenario.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace syncstorm::lab {
class lab;
}

namespace syncstorm::engine {

// One source: its instance name and how to read it (name -> value; throws on a failure, with
// one line saying why).
struct server_source {
  std::string instance;
  std::function<std::map<std::string, double>()> read;
};

// Prometheus text (0.0.4 or OpenMetrics) as family -> value: the samples of a name summed over
// their label sets; `_bucket` samples and NaN values left out; malformed lines skipped.
std::map<std::string, double> parse_prometheus_text(std::string_view text);

// The sources target.metrics names (`${env:}` resolved in URLs), plus the lab's when `the_lab`
// is given and target.metrics.lab is not false.
std::vector<server_source> server_sources(const nlohmann::json& target, lab::lab* the_lab);

// The other combinations the scenario's rules ask for: (server.<name>, how) for each rule or abort
// condition that reads "<how>(server.<name>)" (a rule with `across` min, sum or mean).
std::vector<std::pair<std::string, std::string>> server_combinations(const scenario& s);

class server_scraper {
 public:
  // `combined`: server_combinations; each is kept as the gauge "<how>(server.<name>)".
  server_scraper(std::vector<server_source> sources, std::chrono::microseconds every,
                 std::vector<std::pair<std::string, std::string>> combined = {});
  ~server_scraper();
  server_scraper(const server_scraper&) = delete;
  server_scraper& operator=(const server_scraper&) = delete;

  void start(std::chrono::steady_clock::time_point run_start);
  void stop();  // idempotent

  // The gauges so far (series from since_us on, metrics_shard::copy_since; 0: all).
  metrics_shard snapshot(std::int64_t since_us = 0) const;
  // One line per instance that failed at least once: "pod-1: 3 of 20 scrapes failed (last: …)".
  std::vector<std::string> problems() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace syncstorm::engine
