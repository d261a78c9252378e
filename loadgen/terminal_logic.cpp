// Pure state machines of the terminal model; see terminal_logic.hpp.
#include "loadgen/terminal_logic.hpp"

#include <algorithm>
#include <limits>

namespace syncstorm::loadgen {

batch_decision decide_batch(const batch_policy& p, std::size_t pending, std::int64_t oldest_pending_us,
                            std::int64_t now_us, bool flush) {
  batch_decision d;
  if (pending == 0) return d;
  const std::size_t max_ops = std::max<std::size_t>(1, p.max_ops);
  const std::int64_t due = oldest_pending_us + std::max<std::int64_t>(0, p.max_wait_us);
  if (flush || pending >= max_ops || now_us >= due) {
    d.send = true;
    d.ops = std::min(pending, max_ops);
    return d;
  }
  d.wake_at_us = due;
  return d;
}

backoff::backoff(std::int64_t base_us, std::int64_t max_us, std::uint64_t seed)
    : base_us_(std::max<std::int64_t>(0, base_us)), max_us_(std::max<std::int64_t>(0, max_us)), state_(seed) {}

std::int64_t backoff_cap(int n, std::int64_t base_us, std::int64_t max_us) noexcept {
  if (base_us <= 0 || max_us <= 0) return 0;
  if (n < 1) n = 1;
  std::int64_t c = base_us;
  for (int i = 1; i < n && c < max_us; ++i) {
    if (c > std::numeric_limits<std::int64_t>::max() / 2) return max_us;
    c *= 2;
  }
  return std::min(c, max_us);
}

std::int64_t full_jitter_us(int n, std::int64_t base_us, std::int64_t max_us, std::uint64_t random) noexcept {
  const std::int64_t c = backoff_cap(n, base_us, max_us);
  if (c <= 0) return 0;
  return static_cast<std::int64_t>(random % (static_cast<std::uint64_t>(c) + 1));
}

std::int64_t backoff::cap(int n) const noexcept { return backoff_cap(n, base_us_, max_us_); }

std::uint64_t backoff::rand() noexcept {
  // splitmix64
  std::uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::int64_t backoff::next(int n) noexcept { return full_jitter_us(n, base_us_, max_us_, rand()); }

retry_action retry_state::on_failure(std::int64_t now_us) {
  retry_action a;
  a.attempt = ++failures_;
  if (p_.limit > 0 && failures_ >= p_.limit) {
    a.parked = true;
    a.retry_at_us = now_us + p_.park_for_us;
    failures_ = 0;  // after the park the batch starts a fresh series of attempts
    return a;
  }
  a.retry_at_us = now_us + backoff_.next(failures_);
  return a;
}

std::string_view to_string(breaker_state s) noexcept {
  switch (s) {
    case breaker_state::closed:
      return "closed";
    case breaker_state::open:
      return "open";
    case breaker_state::half_open:
      return "half_open";
  }
  return "closed";
}

breaker_transition circuit_breaker::move(breaker_state to, std::int64_t now_us) {
  breaker_transition t{state_, to, now_us};
  state_ = to;
  failures_ = 0;
  probes_ok_ = 0;
  if (to == breaker_state::open) open_until_ = now_us + p_.open_for_us;
  return t;
}

bool circuit_breaker::allow(std::int64_t now_us, std::optional<breaker_transition>& t) {
  t.reset();
  if (state_ == breaker_state::open) {
    if (now_us < open_until_) return false;
    t = move(breaker_state::half_open, now_us);
  }
  return true;
}

std::optional<breaker_transition> circuit_breaker::on_success(std::int64_t now_us) {
  if (state_ == breaker_state::half_open) {
    if (++probes_ok_ >= std::max(1, p_.half_open_probes)) return move(breaker_state::closed, now_us);
    return std::nullopt;
  }
  failures_ = 0;
  return std::nullopt;
}

std::optional<breaker_transition> circuit_breaker::on_failure(std::int64_t now_us) {
  if (state_ == breaker_state::half_open) return move(breaker_state::open, now_us);
  if (state_ == breaker_state::open) return std::nullopt;  // a late reply while open
  if (++failures_ >= std::max(1, p_.threshold)) return move(breaker_state::open, now_us);
  return std::nullopt;
}

conflict_action on_conflict(conflict_policy p, std::int64_t server_version) noexcept {
  conflict_action a;
  if (p == conflict_policy::lww) {
    a.retry = true;
    a.base_version = server_version;
  } else {
    a.keep_aside = true;
  }
  return a;
}

}  // namespace syncstorm::loadgen
