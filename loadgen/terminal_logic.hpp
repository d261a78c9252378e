// The terminal model's decisions as pure state machines (DESIGN §5, STYLE "logic you can test
// without sockets"): the batcher, exponential backoff with full jitter, the retry limit that
// parks a batch, the circuit breaker and the conflict policy. Each takes events and the time
// (µs on any monotonic axis) and returns what to do; none reads a clock, sleeps or does I/O, so
// they are unit-tested with a fake clock. terminal_model.cpp carries the actions out.
//
// Threading: plain values, one owner each (a terminal on its worker's thread).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace syncstorm::loadgen {

// --- batcher ---------------------------------------------------------------------------------

struct batch_policy {
  std::size_t max_ops = 50;            // ops per push
  std::int64_t max_wait_us = 100'000;  // longest an op waits for its batch to fill
};

struct batch_decision {
  bool send = false;
  std::size_t ops = 0;          // when send: how many of the queued ops go in this push
  std::int64_t wake_at_us = 0;  // when !send and ops are pending: when to ask again
};

// Continuous sync: send when `max_ops` are pending, when the oldest pending op has waited
// `max_wait`, or at once when `flush` (draining, periodic tick). Nothing pending: no send and
// wake_at_us = 0 (wait for the next op).
batch_decision decide_batch(const batch_policy& p, std::size_t pending, std::int64_t oldest_pending_us,
                            std::int64_t now_us, bool flush);

// --- backoff ---------------------------------------------------------------------------------

// Exponential backoff with full jitter (AWS architecture blog's "full jitter"): the wait before
// retry n (n = 1 after the first failure) is uniform in [0, min(max, base × 2^(n−1))]. Seeded
// (splitmix64), so one seed gives one sequence on every platform.
// The cap for retry `n` (>= 1; smaller counts as 1): min(max, base × 2^(n−1)), 0 when base or max
// is not positive.
std::int64_t backoff_cap(int n, std::int64_t base_us, std::int64_t max_us) noexcept;
// Full jitter from one random draw: uniform in [0, backoff_cap(n, base, max)]. The seeded class
// below and the WebSocket reconnects (detail/ws_logic.hpp) both draw their waits here.
std::int64_t full_jitter_us(int n, std::int64_t base_us, std::int64_t max_us, std::uint64_t random) noexcept;

class backoff {
 public:
  backoff(std::int64_t base_us, std::int64_t max_us, std::uint64_t seed);
  // The cap for retry `n` (>= 1): min(max, base × 2^(n−1)).
  std::int64_t cap(int n) const noexcept;
  // A wait in [0, cap(n)].
  std::int64_t next(int n) noexcept;

 private:
  std::uint64_t rand() noexcept;
  std::int64_t base_us_, max_us_;
  std::uint64_t state_;
};

// --- retry limit → park ----------------------------------------------------------------------

struct retry_policy {
  std::int64_t base_us = 100'000;
  std::int64_t max_us = 10'000'000;
  int limit = 8;  // failed attempts in a row before the batch is parked; 0: never
  std::int64_t park_for_us = 30'000'000;
};

struct retry_action {
  bool parked = false;           // the limit was reached: the batch waits park_for, attempts restart
  std::int64_t retry_at_us = 0;  // when the batch may be sent again
  int attempt = 0;               // failed attempts in a row so far (after park: the count that parked)
};

// Failed attempts of the batch at the front of a terminal's queue.
class retry_state {
 public:
  retry_state(retry_policy p, std::uint64_t seed) : p_(p), backoff_(p.base_us, p.max_us, seed) {}
  retry_action on_failure(std::int64_t now_us);
  void on_success() noexcept { failures_ = 0; }
  int failures() const noexcept { return failures_; }
  const retry_policy& policy() const noexcept { return p_; }

 private:
  retry_policy p_;
  backoff backoff_;
  int failures_ = 0;
};

// --- circuit breaker -------------------------------------------------------------------------

enum class breaker_state { closed, open, half_open };
std::string_view to_string(breaker_state s) noexcept;

struct breaker_policy {
  int threshold = 5;  // consecutive failures that open it
  std::int64_t open_for_us = 5'000'000;
  int half_open_probes = 1;  // successful probes in a row that close it again
};

struct breaker_transition {
  breaker_state from, to;
  std::int64_t at_us;
};

// closed --threshold consecutive failures--> open --open_for--> half_open
// half_open --half_open_probes successes in a row--> closed; half_open --a failure--> open.
// While open nothing is sent; while half-open one probe at a time (a terminal has at most one
// push in flight, so each attempt is a probe). Every transition is returned to the caller.
class circuit_breaker {
 public:
  explicit circuit_breaker(breaker_policy p) : p_(p) {}
  // May an attempt go out at now? Moves open → half_open when open_for has passed (returned in
  // `t`). When false, retry_at() says when to ask again.
  bool allow(std::int64_t now_us, std::optional<breaker_transition>& t);
  std::optional<breaker_transition> on_success(std::int64_t now_us);
  std::optional<breaker_transition> on_failure(std::int64_t now_us);
  breaker_state state() const noexcept { return state_; }
  std::int64_t retry_at() const noexcept { return open_until_; }

 private:
  breaker_transition move(breaker_state to, std::int64_t now_us);
  breaker_policy p_;
  breaker_state state_ = breaker_state::closed;
  int failures_ = 0, probes_ok_ = 0;
  std::int64_t open_until_ = 0;
};

// --- conflicts -------------------------------------------------------------------------------

enum class conflict_policy { lww, queue };

struct conflict_action {
  bool retry = false;             // lww: push the op again with the new base
  std::int64_t base_version = 0;  // lww: the version the server reported (the rebase)
  bool keep_aside = false;        // queue: never retried; counted, its state `rejected`
};

// A `set` op came back as a conflict: the server holds `server_version`. lww rebases the op on
// it and retries (last writer wins); queue keeps it aside for manual resolution.
conflict_action on_conflict(conflict_policy p, std::int64_t server_version) noexcept;

}  // namespace syncstorm::loadgen
