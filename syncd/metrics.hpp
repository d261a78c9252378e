// syncd's counters and gauges, rendered as Prometheus text for GET /metrics. One process-wide
// instance; every field is a relaxed atomic, updated from io threads, pool threads and the
// fanout thread without locks. Rendering reads a consistent-enough snapshot.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>

namespace syncstorm::syncd {

enum class route : std::uint8_t { push, changes, records, ws, healthz, readyz, metrics, other };
inline constexpr std::size_t route_count = 8;
// Status codes counted one by one; anything else lands in the last ("other") bucket.
inline constexpr std::array<unsigned, 10> counted_statuses = {101, 200, 400, 404, 405, 413, 500, 503, 507, 0};
// Push latency buckets (seconds), Prometheus `le` upper bounds; +Inf is implicit.
inline constexpr std::array<double, 12> latency_buckets = {0.001, 0.002, 0.005, 0.01, 0.02, 0.05,
                                                           0.1,   0.2,   0.5,   1.0,  2.0,  5.0};

enum class db_error_class : std::uint8_t { connection, disk_full, retry, other };
inline constexpr std::size_t db_error_class_count = 4;

struct metrics {
  using counter = std::atomic<std::uint64_t>;
  using gauge = std::atomic<std::int64_t>;

  std::array<std::array<counter, counted_statuses.size()>, route_count> requests{};
  counter push_batches{};
  counter push_ops_acked{};
  counter push_ops_conflict{};
  counter bug_ops_dropped{};
  counter connections_refused{};
  counter bug_ops_duplicated{};
  counter bug_ops_corrupted{};
  std::array<counter, latency_buckets.size() + 1> push_latency{};
  std::atomic<double> push_latency_sum{0};
  gauge http_connections{};
  gauge ws_subscribers{};
  counter ws_connections{};
  counter ws_closed_slow{};
  counter fanout_frames_sent{};
  counter fanout_frames_skipped{};
  counter fanout_frames_stale{};
  counter fanout_changes_read{};
  gauge fanout_last_cseq{};
  std::array<counter, db_error_class_count> db_errors{};
  counter db_connects{};
  gauge db_ready{};
  gauge db_queue_depth{};

  void count_request(route r, unsigned status);
  void observe_push(std::chrono::microseconds latency);
  void count_db_error(db_error_class c) {
    db_errors[static_cast<std::size_t>(c)].fetch_add(1, std::memory_order_relaxed);
  }

  // Prometheus text exposition format 0.0.4.
  std::string render(const std::string& pod) const;
};

}  // namespace syncstorm::syncd
