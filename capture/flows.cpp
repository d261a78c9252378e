// Flow table. See flows.hpp.
#include "capture/flows.hpp"

namespace syncstorm::capture {
namespace {

// Sequence numbers compare modulo 2^32 (RFC 1982 serial arithmetic).
bool seq_before(std::uint32_t a, std::uint32_t b) { return static_cast<std::int32_t>(a - b) < 0; }

}  // namespace

flow_table::flow_table(std::size_t max_flows, std::int64_t idle_us, std::int64_t closed_us)
    : max_flows_(max_flows), idle_us_(idle_us), closed_after_us_(closed_us) {}

flow_verdict flow_table::observe(const tcp_segment& s, std::int64_t now_us) {
  if (now_us >= next_sweep_us_) {
    sweep(now_us);
    next_sweep_us_ = now_us + 1'000'000;
  }
  flow_verdict v;
  const bool syn = s.flags & tcp_flag::syn, ack = s.flags & tcp_flag::ack, fin = s.flags & tcp_flag::fin,
             rst = s.flags & tcp_flag::rst;
  // SYN and FIN each take one sequence number.
  const std::uint32_t len = s.payload + (syn ? 1 : 0) + (fin ? 1 : 0);
  const std::uint32_t end = s.seq + len;
  key k{s.src, s.dst};
  auto it = flows_.find(k);
  if (it == flows_.end()) {
    v.new_connection = syn && !ack;
    if (flows_.size() >= max_flows_) {
      ++untracked_;
      return v;
    }
    state st;
    st.next = end;
    st.has_isn = syn;
    st.isn = s.seq;
    st.last_us = now_us;
    if (fin || rst) st.closed_us = now_us;
    flows_.emplace(k, st);
    return v;
  }
  state& st = it->second;
  st.last_us = now_us;
  if (syn) {
    if (st.has_isn && st.isn == s.seq) {
      v.retransmit = true;
    } else {
      // A new connection on the same ports (the old one closed, or we joined it mid-stream).
      st = state{};
      st.next = end;
      st.has_isn = true;
      st.isn = s.seq;
      st.last_us = now_us;
      v.new_connection = !ack;
    }
    return v;
  }
  if (rst) {
    st.closed_us = now_us;
    return v;
  }
  if (fin && st.closed_us < 0) st.closed_us = now_us;
  // Pure ACKs, window updates, zero-window probes and keep-alives carry nothing new to resend.
  if (len == 0) return v;
  // A keep-alive with one garbage byte (seq = next - 1) is not a retransmission either.
  if (len == 1 && !fin && s.seq == st.next - 1) return v;
  if (seq_before(s.seq, st.next)) {
    v.retransmit = true;
    if (seq_before(st.next, end)) st.next = end;
  } else {
    st.next = end;
  }
  return v;
}

void flow_table::sweep(std::int64_t now_us) {
  for (auto it = flows_.begin(); it != flows_.end();) {
    const state& st = it->second;
    bool gone = now_us - st.last_us > idle_us_ || (st.closed_us >= 0 && now_us - st.closed_us > closed_after_us_);
    it = gone ? flows_.erase(it) : std::next(it);
  }
}

}  // namespace syncstorm::capture
