// Prometheus rendering of syncd's metrics (see metrics.hpp).
#include "syncd/metrics.hpp"

#include <cstdio>

namespace syncstorm::syncd {
namespace {

constexpr const char* route_names[route_count] = {"push",    "changes", "records", "ws",
                                                  "healthz", "readyz",  "metrics", "other"};
constexpr const char* db_error_names[db_error_class_count] = {"connection", "disk_full", "retry", "other"};

std::uint64_t load(const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); }
std::int64_t load(const std::atomic<std::int64_t>& g) { return g.load(std::memory_order_relaxed); }

void header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

template <class T>
void sample(std::string& out, const char* name, const std::string& labels, T value) {
  out += name;
  if (!labels.empty()) out += "{" + labels + "}";
  out += ' ';
  out += std::to_string(value);
  out += '\n';
}

}  // namespace

void metrics::count_request(route r, unsigned status) {
  std::size_t i = 0;
  while (i + 1 < counted_statuses.size() && counted_statuses[i] != status) ++i;
  requests[static_cast<std::size_t>(r)][i].fetch_add(1, std::memory_order_relaxed);
}

void metrics::observe_push(std::chrono::microseconds latency) {
  const double s = static_cast<double>(latency.count()) / 1e6;
  std::size_t i = 0;
  while (i < latency_buckets.size() && s > latency_buckets[i]) ++i;
  push_latency[i].fetch_add(1, std::memory_order_relaxed);
  double cur = push_latency_sum.load(std::memory_order_relaxed);
  while (!push_latency_sum.compare_exchange_weak(cur, cur + s, std::memory_order_relaxed)) {
  }
}

std::string metrics::render(const std::string& pod) const {
  std::string out;
  out.reserve(8192);
  const std::string pod_label = "pod=\"" + pod + "\"";

  header(out, "syncd_http_requests_total", "counter", "HTTP requests by route and status code.");
  for (std::size_t r = 0; r < route_count; ++r)
    for (std::size_t s = 0; s < counted_statuses.size(); ++s) {
      auto v = load(requests[r][s]);
      if (v == 0) continue;
      std::string code = counted_statuses[s] ? std::to_string(counted_statuses[s]) : "other";
      sample(out, "syncd_http_requests_total", pod_label + ",route=\"" + route_names[r] + "\",code=\"" + code + "\"",
             v);
    }

  header(out, "syncd_push_batches_total", "counter", "Push requests that reached the database.");
  sample(out, "syncd_push_batches_total", pod_label, load(push_batches));
  header(out, "syncd_push_ops_total", "counter", "Pushed ops by result.");
  sample(out, "syncd_push_ops_total", pod_label + ",result=\"acked\"", load(push_ops_acked));
  sample(out, "syncd_push_ops_total", pod_label + ",result=\"conflict\"", load(push_ops_conflict));
  header(out, "syncd_bug_ops_total", "counter", "Ops altered by an enabled bug mode.");
  sample(out, "syncd_bug_ops_total", pod_label + ",effect=\"dropped\"", load(bug_ops_dropped));
  sample(out, "syncd_bug_ops_total", pod_label + ",effect=\"duplicated\"", load(bug_ops_duplicated));
  sample(out, "syncd_bug_ops_total", pod_label + ",effect=\"corrupted\"", load(bug_ops_corrupted));

  header(out, "syncd_push_duration_seconds", "histogram", "Push latency from request read to reply ready.");
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i <= latency_buckets.size(); ++i) {
    cum += load(push_latency[i]);
    char le[32];
    if (i < latency_buckets.size())
      std::snprintf(le, sizeof le, "%g", latency_buckets[i]);
    else
      std::snprintf(le, sizeof le, "+Inf");
    sample(out, "syncd_push_duration_seconds_bucket", pod_label + ",le=\"" + le + "\"", cum);
  }
  char sum[64];
  std::snprintf(sum, sizeof sum, "%.6f", push_latency_sum.load(std::memory_order_relaxed));
  out += "syncd_push_duration_seconds_sum{" + pod_label + "} " + sum + "\n";
  sample(out, "syncd_push_duration_seconds_count", pod_label, cum);

  header(out, "syncd_http_connections", "gauge", "Open HTTP connections (WebSockets included).");
  sample(out, "syncd_http_connections", pod_label, load(http_connections));
  header(out, "syncd_connections_refused_total", "counter", "Connections closed at accept: --max-connections reached.");
  sample(out, "syncd_connections_refused_total", pod_label, load(connections_refused));
  header(out, "syncd_ws_subscribers", "gauge", "Open WebSocket subscribers.");
  sample(out, "syncd_ws_subscribers", pod_label, load(ws_subscribers));
  header(out, "syncd_ws_connections_total", "counter", "WebSocket subscriptions accepted.");
  sample(out, "syncd_ws_connections_total", pod_label, load(ws_connections));
  header(out, "syncd_ws_closed_slow_total", "counter", "Subscribers closed because their queue overflowed.");
  sample(out, "syncd_ws_closed_slow_total", pod_label, load(ws_closed_slow));
  header(out, "syncd_fanout_sent_total", "counter", "Change frames sent to subscribers.");
  sample(out, "syncd_fanout_sent_total", pod_label, load(fanout_frames_sent));
  header(out, "syncd_fanout_skipped_total", "counter", "Change frames not sent (fanout-skip-every bug).");
  sample(out, "syncd_fanout_skipped_total", pod_label, load(fanout_frames_skipped));
  header(out, "syncd_fanout_stale_total", "counter",
         "Old change frames sent to resuming subscribers (fanout-stale-replay bug).");
  sample(out, "syncd_fanout_stale_total", pod_label, load(fanout_frames_stale));
  header(out, "syncd_fanout_changes_read_total", "counter", "Changes read by the fanout listener.");
  sample(out, "syncd_fanout_changes_read_total", pod_label, load(fanout_changes_read));
  header(out, "syncd_fanout_last_cseq", "gauge", "Last cseq the fanout listener delivered.");
  sample(out, "syncd_fanout_last_cseq", pod_label, load(fanout_last_cseq));

  header(out, "syncd_db_errors_total", "counter", "Database errors by class.");
  for (std::size_t c = 0; c < db_error_class_count; ++c)
    sample(out, "syncd_db_errors_total", pod_label + ",class=\"" + db_error_names[c] + "\"", load(db_errors[c]));
  header(out, "syncd_db_connects_total", "counter", "Database connections opened.");
  sample(out, "syncd_db_connects_total", pod_label, load(db_connects));
  header(out, "syncd_db_ready", "gauge", "1 while the database answers the fanout listener's heartbeat.");
  sample(out, "syncd_db_ready", pod_label, load(db_ready));
  header(out, "syncd_db_queue_depth", "gauge", "Jobs waiting for a pool connection.");
  sample(out, "syncd_db_queue_depth", pod_label, load(db_queue_depth));
  return out;
}

}  // namespace syncstorm::syncd
