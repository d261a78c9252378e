// The `offline` model's decisions as pure logic (DESIGN §5, STYLE "logic you can test without
// sockets"): when a client is offline (given windows on the run clock, or random windows by
// duty cycle and seed), and what a reconnect measures (resume: reconnect → first ack; drain:
// reconnect → the backlog held at reconnect is gone). Nothing here reads a clock or does I/O;
// times are µs on the run clock. terminal_model.cpp carries the gate out: while a client's gate
// is closed it journals and queues but never touches the network.
//
// Threading: plain values, one owner each (a terminal on its worker's thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace syncstorm::loadgen {

// [start, end) on the run clock.
struct offline_window {
  std::int64_t start_us = 0;
  std::int64_t end_us = 0;
  friend bool operator==(const offline_window&, const offline_window&) = default;
};

// What a load entry asks for: fixed windows (every client the same) and/or a random duty cycle
// (each client its own seeded windows). Both may be given: a client is offline in the union.
struct offline_plan {
  std::vector<offline_window> windows;
  double duty_cycle = 0;       // share of time offline, 0..1; 0: no random windows
  std::int64_t period_us = 0;  // mean cycle length (offline + online)
  bool empty() const noexcept { return windows.empty() && duty_cycle <= 0; }
};

// Shortest period accepted: the gate is evaluated every 100 ms at least, and a horizon of days
// must not make millions of windows per client.
inline constexpr std::int64_t min_offline_period_us = 1'000'000;
// At most this many random windows per client (later cycles are dropped).
inline constexpr std::size_t max_random_windows = 100'000;

// Random windows for one client over [0, horizon): cycles of length uniform in
// [period/2, 3·period/2], each ending with duty × length offline; the first cycle starts at a
// seeded phase, so clients drift apart instead of dropping together. Same seed, same windows
// on every platform (splitmix64). duty >= 1: one window over the whole horizon; duty <= 0 or
// period < min_offline_period_us: none.
std::vector<offline_window> random_windows(double duty_cycle, std::int64_t period_us, std::int64_t horizon_us,
                                           std::uint64_t seed);

// Windows sorted, empty ones dropped, overlapping or touching ones merged.
std::vector<offline_window> normalize_windows(std::vector<offline_window> w);

// Client `client`'s gate for `plan` over [0, horizon): the plan's fixed windows plus its own
// random ones (seeded by seed and client).
std::vector<offline_window> client_windows(const offline_plan& plan, std::size_t client, std::uint64_t seed,
                                           std::int64_t horizon_us);

// Whether a client may use the network at a given time.
class online_gate {
 public:
  online_gate() = default;
  explicit online_gate(std::vector<offline_window> windows) : w_(normalize_windows(std::move(windows))) {}

  bool online(std::int64_t now_us) const noexcept { return !window_at(now_us); }
  // The window holding now, if offline.
  std::optional<offline_window> window_at(std::int64_t now_us) const noexcept;
  // The first time after now at which online(t) differs from online(now); INT64_MAX if never.
  std::int64_t next_change(std::int64_t now_us) const noexcept;
  const std::vector<offline_window>& windows() const noexcept { return w_; }
  bool empty() const noexcept { return w_.empty(); }

 private:
  std::vector<offline_window> w_;  // normalized
};

// One reconnect's measurements. reconnect() arms it when the client held a backlog (ops created
// before the reconnect, not yet acked nor rejected); then the first ack gives the resume time
// and the backlog's end the drain time, each once. A reconnect while still draining (offline
// again before the backlog was gone) reports the unfinished drain as failed first.
class reconnect_tracker {
 public:
  struct outcome {
    std::optional<std::int64_t> resume_us;  // reconnect → first ack
    std::optional<std::int64_t> drain_us;   // reconnect → backlog gone (or cut short)
    bool drain_ok = true;                   // false: the drain was cut short (drain_us so far)
  };

  // The network came back at at_us; `backlog`: ops from before then are still held.
  outcome reconnect(std::int64_t at_us, bool backlog);
  // A reply acked at least one op at now.
  outcome on_ack(std::int64_t now_us);
  // The backlog held at reconnect is gone at now (acked or rejected).
  outcome on_drained(std::int64_t now_us);
  // The client went offline again, or the run's drain ended, with the backlog still held: the
  // drain counts as failed with the time so far. The resume, if still pending, is dropped.
  outcome abandon(std::int64_t now_us);

  bool draining() const noexcept { return armed_; }
  std::int64_t reconnected_at() const noexcept { return at_us_; }

 private:
  bool armed_ = false, resumed_ = false;
  std::int64_t at_us_ = 0;
};

}  // namespace syncstorm::loadgen
