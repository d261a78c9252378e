// The fault proxy's pure logic (DESIGN §6 network faults), kept apart from sockets so it can be
// unit-tested with a fake clock: the per-path fault set and what it means for each direction
// (delay, jitter, a token-bucket bandwidth limit, a blackhole, connection resets, HTTP 5xx
// injection), the token bucket itself, and an HTTP/1.1 request tracker that finds request
// boundaries in a byte stream so a share of requests can be answered with a 5xx instead of being
// forwarded.
//
// The lab relay (lab_relay.cpp) is the fault proxy: it already sits on every path (clients→LB,
// pods→DB), is supervised and outlives runs. Faults are set and cleared on its control socket by
// id, so several overlap (their effects combine: delays add, the lowest bandwidth wins, any
// blackhole holds the direction) and clearing one leaves the others.
//
// A fault spec (what the control socket carries, JSON):
//   {"kind": "latency"|"jitter"|"bandwidth"|"reset"|"blackhole"|"http_error",
//    "direction": "up"|"down"|"both",      up: toward the server; down: toward the client
//    "latency_us", "spread_us", "rate_bps" (bits/s), "percent" (0..100), "status" (500..599),
//    "seed"}
// Not thread-safe: the relay owns one of each per path on its single thread.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace syncstorm::proxy {

enum class direction { up = 0, down = 1 };

// What the faults of a path mean for one direction right now.
struct direction_effect {
  std::int64_t delay_us = 0;   // added to every byte's passage
  std::int64_t spread_us = 0;  // uniform ± around the delay (order is kept: never earlier than the last)
  double rate_Bps = 0;         // bytes per second; 0: unlimited
  bool blackhole = false;      // nothing passes (held, not lost: TCP's own stall)
  bool idle() const { return delay_us == 0 && spread_us == 0 && rate_Bps == 0 && !blackhole; }
};

// The fault set of one path, by fault id.
class path_faults {
 public:
  // Validates and stores `spec` under `id` (replacing one with the same id). Throws
  // std::invalid_argument with one line naming the bad field.
  void set(const std::string& id, const nlohmann::json& spec);
  // Removes `id` ("*": all). Returns how many were removed (0 is fine: clearing is idempotent).
  std::size_t clear(const std::string& id);
  bool empty() const { return faults_.empty(); }
  nlohmann::json to_json() const;  // {id: spec}

  const direction_effect& effect(direction d) const { return effect_[static_cast<int>(d)]; }
  double reset_percent() const { return reset_percent_; }      // new connections reset
  double http_error_percent() const { return http_percent_; }  // requests answered with a 5xx
  int http_error_status() const { return http_status_; }
  std::uint64_t seed() const { return seed_; }

 private:
  void recompute();
  std::map<std::string, nlohmann::json> faults_;
  direction_effect effect_[2];
  double reset_percent_ = 0, http_percent_ = 0;
  int http_status_ = 503;
  std::uint64_t seed_ = 1;
};

// Token bucket over a caller's clock (µs). take(n) consumes n bytes and returns how long the
// caller must wait before sending them (0 when the bucket held enough); debt carries over, so
// the long-run rate never exceeds `rate` plus one burst.
class token_bucket {
 public:
  void configure(double rate_Bps, double burst_bytes, std::int64_t now_us);
  std::int64_t take(std::size_t n, std::int64_t now_us);
  double rate() const { return rate_; }

 private:
  double rate_ = 0, burst_ = 0, tokens_ = 0;
  std::int64_t last_us_ = 0;
};

// Finds HTTP/1.1 request boundaries in the client→server byte stream. feed() splits a chunk into
// segments to forward and segments to drop, and reports each dropped request that ended (the
// caller answers it). A request is decided when its first byte arrives. The framing is Beast's
// request parser (fault_proxy.cpp): Content-Length and chunked bodies (extensions and trailers
// included), requests without a body, headers up to 64 KiB. Bytes the parser cannot frame (bad
// syntax, an upgrade whose stream is no longer HTTP) make the tracker stop (everything after is
// forwarded); a dropped one of those is answered with "close" set. Move-only.
class http_request_tracker {
 public:
  struct segment {
    std::size_t offset = 0, length = 0;
    bool forward = true;
  };
  struct answer {
    std::size_t after = 0;  // bytes of the chunk consumed when the request ended
    bool close = false;     // the stream cannot go on after this answer
  };
  struct result {
    std::vector<segment> segments;
    std::vector<answer> answers;
  };
  http_request_tracker();
  ~http_request_tracker();
  http_request_tracker(http_request_tracker&&) noexcept;
  http_request_tracker& operator=(http_request_tracker&&) noexcept;

  // `drop_next` is asked once per request, at its first byte.
  template <class Decide>
  result feed(const char* data, std::size_t n, Decide&& drop_next) {
    result r;
    const std::uint64_t base = fed_;
    fed_ += n;
    std::size_t i = 0;
    while (i < n) {
      if (state_ == state::passthrough) {
        add(r, i, n - i, true);
        break;
      }
      if (state_ == state::idle) {
        dropping_ = drop_next();
        start_request();
        state_ = state::request;
        ++requests_;
      }
      const step st = advance(data, n, base);
      if (st.outcome == step::need_more) {
        add(r, i, n - i, !dropping_);
        break;
      }
      if (st.outcome == step::ended) {
        const auto end = static_cast<std::size_t>(st.at - base);
        add(r, i, end - i, !dropping_);
        i = end;
        state_ = state::idle;
        if (dropping_) r.answers.push_back({i, false});
        continue;
      }
      // Not HTTP from here on (bad bytes, or what follows an upgrade): stop tracking. A dropped
      // request is answered and the stream closed.
      const auto end = st.outcome == step::upgraded ? static_cast<std::size_t>(st.at - base) : n;
      add(r, i, end - i, !dropping_);
      i = end;
      state_ = state::passthrough;
      if (dropping_) {
        r.answers.push_back({i, true});
        return r;
      }
    }
    return r;
  }
  std::uint64_t requests() const { return requests_; }
  bool tracking() const { return state_ != state::passthrough; }

 private:
  enum class state { idle, request, passthrough };
  struct step {
    enum kind { need_more, ended, upgraded, unframeable } outcome = need_more;
    std::uint64_t at = 0;  // ended, upgraded: the stream offset just past the request
  };
  void add(result& r, std::size_t off, std::size_t len, bool fwd) {
    if (len == 0) return;
    if (!r.segments.empty() && r.segments.back().forward == fwd &&
        r.segments.back().offset + r.segments.back().length == off)
      r.segments.back().length += len;
    else
      r.segments.push_back({off, len, fwd});
  }
  void start_request();
  // Parses the current request as far as the bytes received allow; `data`/`n` is the chunk fed,
  // which starts at stream offset `base`.
  step advance(const char* data, std::size_t n, std::uint64_t base);
  static constexpr std::size_t max_header = 64 * 1024;  // through its blank line
  struct parser;
  struct framing;                     // the current request's parser, in a slot reused by every request
  std::unique_ptr<framing> framing_;  // allocated at the first request
  std::string pending_;               // the stream's bytes from parsed_ on that were received, not yet parsed
  std::uint64_t fed_ = 0, parsed_ = 0;
  std::size_t scan_from_ = 0;  // where the search for the header's end goes on in pending_
  bool header_done_ = false;
  state state_ = state::idle;
  std::uint64_t requests_ = 0;
  bool dropping_ = false;
};

// The answer the proxy sends for a dropped request.
std::string http_error_response(int status, bool close);

}  // namespace syncstorm::proxy
