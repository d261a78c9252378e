// Per-flow TCP state for the wire series: which segments are retransmissions (a sequence range
// this direction of the connection has already carried) and which SYNs open a connection (the
// first SYN with its initial sequence number; the same SYN again is a retransmission). A flow is
// one direction of a connection (src → dst), so each side's retransmissions count on its own.
//
// Bounded: at most `max_flows` entries; flows idle longer than `idle_us`, or closed (FIN/RST)
// longer than `closed_us` ago, are swept once a second of packet time. A segment of a flow that
// could not be tracked because the table was full counts in untracked() and is never called a
// retransmission. Pure and single-threaded: one table per capture thread.
#pragma once

#include "capture/packet.hpp"

#include <cstdint>
#include <unordered_map>

namespace syncstorm::capture {

struct flow_verdict {
  bool retransmit = false;
  bool new_connection = false;
};

class flow_table {
 public:
  explicit flow_table(std::size_t max_flows = 262'144, std::int64_t idle_us = 120'000'000,
                      std::int64_t closed_us = 10'000'000);

  // One segment seen at now_us (any clock that only moves forward, µs).
  flow_verdict observe(const tcp_segment& s, std::int64_t now_us);
  void sweep(std::int64_t now_us);

  std::size_t size() const noexcept { return flows_.size(); }
  std::uint64_t untracked() const noexcept { return untracked_; }

 private:
  struct key {
    endpoint src, dst;
    friend bool operator==(const key&, const key&) = default;
  };
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept {
      endpoint_hash h;
      return h(k.src) * 31 ^ h(k.dst);
    }
  };
  struct state {
    std::uint32_t next = 0;  // one past the highest sequence number carried
    std::uint32_t isn = 0;   // of the SYN, when has_isn
    bool has_isn = false;
    std::int64_t last_us = 0;
    std::int64_t closed_us = -1;  // when a FIN or RST was seen
  };

  std::unordered_map<key, state, key_hash> flows_;
  std::size_t max_flows_;
  std::int64_t idle_us_, closed_after_us_;
  std::int64_t next_sweep_us_ = 0;
  std::uint64_t untracked_ = 0;
};

}  // namespace syncstorm::capture
