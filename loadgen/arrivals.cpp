// Arrival scheduling: see arrivals.hpp. All arithmetic is in seconds and arrivals per second
// (durations are whole µs, so phase boundaries and constant-rate spacings stay exact in double);
// times are rounded to the nearest µs only when returned.
#include "loadgen/arrivals.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace syncstorm::loadgen {

std::size_t split_count(std::size_t total, std::size_t index, std::size_t count) {
  if (count == 0) return 0;
  return total / count + (index < total % count ? 1 : 0);
}

arrival_schedule::arrival_schedule(std::vector<phase_spec> phases, std::size_t worker, std::size_t workers)
    : k_(worker), step_(workers) {
  if (workers == 0 || worker >= workers)
    throw std::invalid_argument("arrival_schedule: worker " + std::to_string(worker) + " out of " +
                                std::to_string(workers));
  double previous_rate = 0, n = 0;
  std::int64_t at = 0;
  for (std::size_t i = 0; i < phases.size(); ++i) {
    const phase_spec& p = phases[i];
    const std::string where = "phases[" + std::to_string(i) + "]";
    if (p.rate.has_value() == p.to.has_value())
      throw std::invalid_argument(where + ": expected exactly one of rate and to");
    if (p.for_us <= 0) throw std::invalid_argument(where + ".for: expected a positive duration");
    const double r1 = p.rate ? *p.rate : *p.to;
    if (!(r1 >= 0) || !std::isfinite(r1)) throw std::invalid_argument(where + ": expected a rate >= 0");
    const double r0 = p.rate ? r1 : previous_rate;
    const double d = static_cast<double>(p.for_us) / 1e6;
    segment s{at, at + p.for_us, r0, r1, n, (r0 + r1) / 2 * d};
    segments_.push_back(s);
    n += s.n_total;
    at = s.end_us;
    previous_rate = r1;
  }
  end_us_ = at;
}

std::optional<std::int64_t> arrival_schedule::next() {
  while (cursor_ < segments_.size()) {
    const segment& s = segments_[cursor_];
    const double d = static_cast<double>(s.end_us - s.begin_us) / 1e6;
    // Solve r0·τ + (r1 − r0)·τ²/(2d) = c for τ, in the form that stays exact when r1 == r0.
    const double c = std::max(0.0, static_cast<double>(k_) - s.n_begin);
    const double a = (s.r1 - s.r0) / (2 * d), b = s.r0;
    const double disc = b * b + 4 * a * c;
    // c == 0 is due at the segment's start, as long as the segment has any arrivals at all.
    if (c == 0 ? s.n_total > 0 : disc >= 0 && b + std::sqrt(disc) > 0) {
      const double tau = c == 0 ? 0.0 : 2 * c / (b + std::sqrt(disc));
      const auto t = s.begin_us + static_cast<std::int64_t>(std::llround(tau * 1e6));
      if (t < s.end_us) {
        k_ += step_;
        return t;
      }
    }
    ++cursor_;
  }
  return std::nullopt;
}

std::uint64_t arrival_schedule::total_before(std::int64_t t_us) const {
  double n = 0;
  for (const segment& s : segments_) {
    if (t_us >= s.end_us) {
      n = s.n_begin + s.n_total;
      continue;
    }
    if (t_us > s.begin_us) {
      const double d = static_cast<double>(s.end_us - s.begin_us) / 1e6;
      const double tau = static_cast<double>(t_us - s.begin_us) / 1e6;
      n = s.n_begin + s.r0 * tau + (s.r1 - s.r0) * tau * tau / (2 * d);
    }
    break;
  }
  return static_cast<std::uint64_t>(std::ceil(n - 1e-9));
}

}  // namespace syncstorm::loadgen
