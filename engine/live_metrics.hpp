// Watching a run live (`run --metrics-listen ADDR`, `--prometheus-remote-write URL`, issue #26):
// an HTTP endpoint serving the run's live view as OpenMetrics or Prometheus text
// (reports/openmetrics.hpp) at /metrics, and/or the same samples pushed by remote write.
//
// The view is refreshed by the engine once a second from the pool's snapshot: the exporter keeps
// the run's whole series (metrics_shard::splice of each snapshot into the view kept so far), so
// every rule is judged live by engine::judge on the run so far, with the faults applied so far.
// A fault's gauge flips the moment the fault runner reports it applied or reverted, not at the
// next refresh. After the run the final values (the report's verdicts, the final merge) stay up
// for --metrics-linger.
//
// Threading: the endpoint runs one thread of its own (Asio); tick() and finish() from the
// controller thread, fault_event() from the fault threads; a scrape reads the last rendered text
// under a mutex, so it never waits for a refresh.
#pragma once

#include "core/metrics.hpp"
#include "core/plan.hpp"
#include "core/scenario.hpp"
#include "core/timeline.hpp"
#include "injectors/fault_runner.hpp"
#include "reports/openmetrics.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace syncstorm::engine {

// `HOST:PORT`, `[IPV6]:PORT` or `:PORT` (every IPv4 interface); PORT 0 picks a free one.
struct listen_address {
  std::string host;  // numeric IPv4/IPv6 address or a name that resolves
  unsigned short port = 0;
};
// nullopt and `why` (what was found; what is expected) when `text` is not one of the above.
std::optional<listen_address> parse_listen_address(const std::string& text, std::string& why);

// What a scrape asked for: the request head up to its blank line.
struct scrape_request {
  bool complete = false;  // the head ended (a blank line) within the bytes seen
  bool valid = false;     // a request line METHOD TARGET HTTP/1.x
  std::string method, target, accept;
};
scrape_request parse_scrape_request(std::string_view head);

// The status and body the endpoint answers a request with (200 with the text at /metrics and
// /metrics/, 404 elsewhere, 405 for methods other than GET and HEAD, 400 for a malformed head).
struct scrape_reply {
  int status = 200;
  std::string content_type, body;
  bool head_only = false;
};
scrape_reply answer(const scrape_request& req, const std::string& openmetrics_text, const std::string& prometheus_text);

// A live recovery.*/ready.*/detect.* rule whose fault has not recovered yet reads +inf; while
// its bound has not run out since the fault's revert (or, for an instant fault, its firing) it
// is pending, not breached. Verdicts judged on the run so far, at at_us.
void pend_unfinished_recoveries(nlohmann::json& verdicts, const std::vector<fault_occurrence>& occurrences,
                                std::int64_t at_us);

class live_metrics {
 public:
  // Binds and starts serving (an empty view until the first tick) when `at` is given; pushes
  // each refresh to `remote_write_url` when it is not empty (engine/remote_write.hpp). Throws
  // std::runtime_error "cannot listen on HOST:PORT: REASON" when the address cannot be bound,
  // std::invalid_argument naming --prometheus-remote-write for a URL that is not http(s).
  live_metrics(const std::optional<listen_address>& at, const std::string& remote_write_url, const scenario& s,
               const plan& p, std::size_t threads);
  ~live_metrics();
  live_metrics(const live_metrics&) = delete;
  live_metrics& operator=(const live_metrics&) = delete;

  // The address actually bound, `HOST:PORT` (the port chosen when 0 was asked for); empty
  // without an endpoint.
  std::string bound() const;
  // Sends the last refresh (at most timeout_ms) and stops pushing; "" or one line on how the
  // pushes went ("remote write: 21 pushes sent, 0 failed").
  std::string close_remote_write(int timeout_ms = 5000);

  // The run directory's name and the load clock's start on the wall clock.
  void set_run(const std::string& run_name, std::chrono::system_clock::time_point load_start);
  // A pool snapshot taken at at_us (series from since_us on, metrics_shard::copy_since; 0 for a
  // full one) and the fault runner's records so far.
  void tick(const metrics_shard& snapshot, std::int64_t since_us, std::int64_t at_us,
            const std::vector<injectors::fault_record>& faults);
  // fault_applied / fault_reverted events of the fault runner (others are ignored).
  void fault_event(const std::string& event, const nlohmann::json& fields);
  // The final values: the run's merged metrics, the report's verdicts, the run's end.
  void finish(const metrics_shard& merged, const nlohmann::json& verdicts, std::int64_t run_end_us);

  // What the live view cost: "metrics: live view: 20 refreshes, 24 scrapes, 46.1 ms of CPU" (the
  // refreshes' splice and live judgement, and the renders; Asio's socket work aside).
  std::string cost() const;

  // The text a scrape gets now.
  std::string text(reports::exposition f) const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace syncstorm::engine
