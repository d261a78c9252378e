// Offline windows and reconnect measurements. See offline_logic.hpp.
#include "loadgen/offline_logic.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace syncstorm::loadgen {
namespace {

std::uint64_t splitmix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform in [0, 1), 53 bits.
double unit(std::uint64_t& state) { return static_cast<double>(splitmix(state) >> 11) * 0x1.0p-53; }

}  // namespace

std::vector<offline_window> random_windows(double duty, std::int64_t period_us, std::int64_t horizon_us,
                                           std::uint64_t seed) {
  std::vector<offline_window> out;
  if (duty <= 0 || horizon_us <= 0 || period_us < min_offline_period_us) return out;
  if (duty >= 1) {
    out.push_back({0, horizon_us});
    return out;
  }
  std::uint64_t state = seed;
  auto cycle = [&] {
    return static_cast<std::int64_t>(std::llround(static_cast<double>(period_us) * (0.5 + unit(state))));
  };
  // The first cycle started before the run at a seeded phase of it.
  std::int64_t len = cycle();
  std::int64_t start = -static_cast<std::int64_t>(std::llround(static_cast<double>(len) * unit(state)));
  while (start < horizon_us && out.size() < max_random_windows) {
    const auto off = static_cast<std::int64_t>(std::llround(static_cast<double>(len) * duty));
    const std::int64_t end = start + len;
    const std::int64_t from = std::max<std::int64_t>(0, end - off);
    if (off > 0 && end > 0 && from < horizon_us) out.push_back({from, std::min(end, horizon_us)});
    start = end;
    len = cycle();
  }
  return normalize_windows(std::move(out));
}

std::vector<offline_window> normalize_windows(std::vector<offline_window> w) {
  w.erase(std::remove_if(w.begin(), w.end(), [](const offline_window& x) { return x.end_us <= x.start_us; }), w.end());
  std::sort(w.begin(), w.end(),
            [](const offline_window& a, const offline_window& b) { return a.start_us < b.start_us; });
  std::vector<offline_window> out;
  for (const auto& x : w) {
    if (!out.empty() && x.start_us <= out.back().end_us)
      out.back().end_us = std::max(out.back().end_us, x.end_us);
    else
      out.push_back(x);
  }
  return out;
}

std::vector<offline_window> client_windows(const offline_plan& plan, std::size_t client, std::uint64_t seed,
                                           std::int64_t horizon_us) {
  std::vector<offline_window> w = plan.windows;
  std::uint64_t s = seed ^ (0x0ff1ull << 40) ^ (static_cast<std::uint64_t>(client) * 0x9e3779b97f4a7c15ull);
  const std::uint64_t client_seed = splitmix(s);
  auto r = random_windows(plan.duty_cycle, plan.period_us, horizon_us, client_seed);
  w.insert(w.end(), r.begin(), r.end());
  return normalize_windows(std::move(w));
}

std::optional<offline_window> online_gate::window_at(std::int64_t now) const noexcept {
  // The last window starting at or before now.
  auto it = std::upper_bound(w_.begin(), w_.end(), now,
                             [](std::int64_t t, const offline_window& x) { return t < x.start_us; });
  if (it == w_.begin()) return std::nullopt;
  --it;
  if (now < it->end_us) return *it;
  return std::nullopt;
}

std::int64_t online_gate::next_change(std::int64_t now) const noexcept {
  if (auto w = window_at(now)) return w->end_us;
  auto it = std::upper_bound(w_.begin(), w_.end(), now,
                             [](std::int64_t t, const offline_window& x) { return t < x.start_us; });
  return it == w_.end() ? std::numeric_limits<std::int64_t>::max() : it->start_us;
}

reconnect_tracker::outcome reconnect_tracker::reconnect(std::int64_t at_us, bool backlog) {
  outcome o = abandon(at_us);
  armed_ = backlog;
  resumed_ = false;
  at_us_ = at_us;
  return o;
}

reconnect_tracker::outcome reconnect_tracker::on_ack(std::int64_t now_us) {
  outcome o;
  if (!armed_ || resumed_) return o;
  resumed_ = true;
  o.resume_us = std::max<std::int64_t>(0, now_us - at_us_);
  return o;
}

reconnect_tracker::outcome reconnect_tracker::on_drained(std::int64_t now_us) {
  outcome o;
  if (!armed_) return o;
  armed_ = false;
  o.drain_us = std::max<std::int64_t>(0, now_us - at_us_);
  return o;
}

reconnect_tracker::outcome reconnect_tracker::abandon(std::int64_t now_us) {
  outcome o;
  if (!armed_) return o;
  armed_ = false;
  o.drain_us = std::max<std::int64_t>(0, now_us - at_us_);
  o.drain_ok = false;
  return o;
}

}  // namespace syncstorm::loadgen
