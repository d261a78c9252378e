// The live progress line. See progress.hpp.
#include "reports/progress.hpp"

#include "core/scenario.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace syncstorm::reports {
namespace {

// The model's latency metric and, when it has one, its request counter (else the latency
// metric counts the requests: every attempt, failed or not, enters it).
std::pair<std::string, std::string> base_names(const std::string& model) {
  if (const load_model_info* m = scenario_registry::instance().find_model(model); m && !m->progress_latency.empty())
    return {m->progress_requests, m->progress_latency};
  return {model + ".requests", model + ".latency"};
}

std::string pick(const metrics_shard& snap, const std::string& base, const std::string& load) {
  if (base.empty()) return {};
  if (snap.find(base + "@" + load)) return base + "@" + load;
  if (snap.find(base)) return base;
  return {};
}

}  // namespace

load_metrics metrics_of(const metrics_shard& snap, const progress_load& l) {
  auto [req, lat] = base_names(l.model);
  load_metrics m{pick(snap, req, l.name), pick(snap, lat, l.name)};
  if (m.requests.empty()) m.requests = m.latency;
  return m;
}

std::string progress_line(const progress_input& in) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(0) << "[" << std::setw(5) << std::floor(in.elapsed_s) << "s/" << in.total_s
    << "s]";
  if (!in.now) return o.str();
  const metrics_shard& now = *in.now;
  for (const auto& l : in.loads) {
    load_metrics names = metrics_of(now, l);
    const timed_metric* req = names.requests.empty() ? nullptr : now.find(names.requests);
    if (!req) {
      o << " " << l.name << ": -";
      continue;
    }
    const timed_metric* before = in.prev && !names.requests.empty() ? in.prev->find(names.requests) : nullptr;
    double span = before ? in.elapsed_s - in.prev_elapsed_s : in.elapsed_s;
    std::uint64_t delta = req->count() - (before ? std::min(before->count(), req->count()) : 0);
    double rate = span > 0 ? static_cast<double>(delta) / span : 0.0;
    o << " " << l.name << ": " << std::setprecision(0) << rate << "/s total " << req->count() << " errors "
      << req->error_count();
    if (req->count() > 0 && req->error_count() > 0) {
      o << std::setprecision(1) << " ("
        << 100.0 * static_cast<double>(req->error_count()) / static_cast<double>(req->count()) << "%)";
    }
    // p99 of the last complete second: the live view, not the whole run's.
    const timed_metric* lat = names.latency.empty() ? nullptr : now.find(names.latency);
    if (lat && lat->hist().count()) {
      const series& c = lat->coarse();
      const auto current = static_cast<std::int64_t>(std::floor(in.elapsed_s));
      double p99_ms = -1;
      for (std::size_t i = c.steps().size(); i-- > 0;) {
        if (c.steps()[i] < current && c.points()[i].values() > 0) {
          p99_ms = static_cast<double>(c.points()[i].percentile(99)) / 1000.0;
          break;
        }
      }
      if (p99_ms < 0) p99_ms = static_cast<double>(lat->hist().percentile(99)) / 1000.0;
      o << " p99 " << std::setprecision(p99_ms < 10 ? 2 : 1) << p99_ms << "ms";
    }
  }
  if (!in.active_faults.empty()) {
    o << " | faults:";
    for (const auto& f : in.active_faults) o << " " << f;
  }
  return o.str();
}

}  // namespace syncstorm::reports
