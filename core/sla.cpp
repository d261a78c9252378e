// Rule evaluation. See sla.hpp.
#include "core/sla.hpp"

#include <cmath>
#include <map>
#include <sstream>

namespace syncstorm {
namespace {

bool is_time_stat(const rule_entry& r) {
  return r.unit == metric_unit::time && r.stat != "count" && r.stat != "rate" && r.stat != "ratio";
}

std::string fmt(double v) {
  std::ostringstream o;
  o.precision(6);
  o << v;
  return o.str();
}

// The samples of a timed metric within the windows, merged into one point.
series_point merge_window(const timed_metric& m, const std::vector<time_window>& ws) {
  series_point acc;
  const series& s = m.fine();
  const auto& steps = s.steps();
  const auto& points = s.points();
  for (std::size_t i = 0; i < steps.size(); ++i) {
    std::int64_t t = steps[i] * s.resolution_us();
    for (const auto& w : ws) {
      if (t >= w.from_us && t < w.to_us) {
        acc.merge(points[i]);
        break;
      }
    }
  }
  return acc;
}

// The rule's stat over one merged point covering window_s seconds (in the verdict's unit).
double point_stat(const rule_entry& rule, const series_point& p, double window_s, double scale);

// The longest stretch, in µs, during which the stat over the trailing `for` (at most 1 s) broke
// the bound, judged at every 100 ms step inside the windows.
std::int64_t longest_breach(const rule_entry& rule, const timed_metric& m, const std::vector<time_window>& ws,
                            double scale) {
  const series& s = m.fine();
  const std::int64_t res = s.resolution_us();
  const std::int64_t k = std::max<std::int64_t>(1, std::min<std::int64_t>(*rule.for_us, 1'000'000) / res);
  std::map<std::int64_t, const series_point*> by_step;
  for (std::size_t i = 0; i < s.steps().size(); ++i) by_step[s.steps()[i]] = &s.points()[i];
  std::int64_t best = 0;
  for (const auto& w : ws) {
    std::int64_t run = 0;
    for (std::int64_t step = w.from_us / res; step * res < w.to_us; ++step) {
      series_point acc;
      for (auto it = by_step.lower_bound(std::max(step - k + 1, w.from_us / res));
           it != by_step.end() && it->first <= step; ++it)
        acc.merge(*it->second);
      bool has = acc.count > 0 || rule.stat == "rate" || rule.stat == "count";
      bool broken = false;
      if (has && (acc.values() || !percentile_of(rule.stat))) {
        double v = point_stat(rule, acc, static_cast<double>(k * res) / 1e6, scale);
        broken = (rule.max && v > *rule.max * scale) || (rule.min && v < *rule.min * scale);
      }
      run = broken ? run + res : 0;
      best = std::max(best, run);
    }
  }
  return best;
}

double point_stat(const rule_entry& rule, const series_point& p, double window_s, double scale) {
  if (rule.stat == "count") return static_cast<double>(p.count);
  if (rule.stat == "rate") return window_s > 0 ? static_cast<double>(p.count) / window_s : 0;
  if (rule.stat == "ratio") return p.count ? 100.0 * static_cast<double>(p.ok()) / static_cast<double>(p.count) : 0;
  double v = 0;
  if (auto q = percentile_of(rule.stat))
    v = static_cast<double>(p.percentile(*q));
  else if (rule.stat == "max")
    v = static_cast<double>(p.max);
  else if (rule.stat == "min")
    v = static_cast<double>(p.min);
  else if (rule.stat == "mean")
    v = p.mean();
  return v * scale;
}

}  // namespace

std::optional<double> percentile_of(const std::string& stat) {
  if (stat.size() < 2 || stat[0] != 'p') return std::nullopt;
  try {
    return std::stod(stat.substr(1));
  } catch (...) {
    return std::nullopt;
  }
}

std::uint64_t samples_needed(const std::string& stat, std::optional<double> min_bound) {
  if (auto q = percentile_of(stat); q && *q < 100.0) {
    return static_cast<std::uint64_t>(std::ceil(10.0 / (1.0 - *q / 100.0) - 1e-6));
  }
  if (stat == "ratio" && min_bound && *min_bound < 100.0) {
    return static_cast<std::uint64_t>(std::ceil(3.0 / (1.0 - *min_bound / 100.0) - 1e-6));
  }
  return 0;
}

verdict evaluate(const rule_entry& rule, const evaluation_context& ctx) {
  verdict v;
  v.name = rule.name;
  v.metric = rule.metric;
  v.stat = rule.stat;
  v.window = rule.window;
  v.load = rule.load;
  bool time_stat = is_time_stat(rule);
  v.unit = time_stat                         ? "ms"
           : rule.stat == "ratio"            ? "percent"
           : rule.stat == "rate"             ? "per_s"
           : rule.unit == metric_unit::count ? "count"
                                             : "value";
  double scale = time_stat ? 1e-3 : 1.0;  // µs -> ms
  if (rule.max) {
    v.bound = *rule.max * scale;
    v.op = "<=";
  } else if (rule.min) {
    v.bound = *rule.min * scale;
    v.op = ">=";
  }
  if (rule.warn) v.warn_bound = *rule.warn * scale;

  auto conclude = [&](double value) {
    v.value = value;
    bool ok = true;
    if (rule.max && value > *rule.max * scale) ok = false;
    if (rule.min && value < *rule.min * scale) ok = false;
    v.pass = ok;
    if (ok && v.warn_bound) {
      v.warn = rule.max ? value > *v.warn_bound : rule.min ? value < *v.warn_bound : false;
    }
    if (!ok) {
      v.reason = rule.metric + " " + rule.stat + " = " + fmt(value) + " " + v.unit + ", bound " + v.op + " " +
                 fmt(*v.bound) + " " + v.unit + " (window " + rule.window + ")";
    }
  };
  auto inconclusive = [&](std::string why) {
    v.inconclusive = true;
    v.pass = false;
    v.reason = std::move(why);
    return v;
  };

  if (auto it = ctx.scalars.find(rule.metric); it != ctx.scalars.end()) {
    v.samples = 1;
    conclude(it->second * scale);
    if (std::isinf(it->second)) v.reason = rule.metric + " never recovered within the run (unbounded)";
    return v;
  }
  if (auto it = ctx.absent.find(rule.metric); it != ctx.absent.end()) return inconclusive(it->second);
  if (ctx.capture_dropped && rule.metric.starts_with("wire.")) {
    return inconclusive("the capture dropped packets (" + ctx.capture_reason + "): " + rule.metric + " is incomplete");
  }
  // A rule limited to one load entry reads that entry's own view of the metric ("name@load").
  std::string name = rule.load.empty() ? rule.metric : rule.metric + "@" + rule.load;
  const timed_metric* m = ctx.metrics ? ctx.metrics->find(name) : nullptr;
  const gauge_series* g = ctx.metrics ? ctx.metrics->find_gauge(name) : nullptr;
  if (!m && !g) return inconclusive(name + " was not measured in this run (no samples)");

  std::vector<time_window> ws =
      ctx.resolve_window ? ctx.resolve_window(rule.window) : std::vector<time_window>{{0, ctx.run_end_us}};
  if (ws.empty()) return inconclusive("window " + rule.window + " did not occur in this run");
  double window_s = 0;
  for (const auto& w : ws) window_s += static_cast<double>(std::max<std::int64_t>(0, w.to_us - w.from_us)) / 1e6;
  bool whole_run = rule.window == "all";

  if (g && !m) {
    double peak = 0, low = 0;
    bool any = false;
    for (const auto& p : g->fine()) {
      std::int64_t t = p.step * fine_resolution_us;
      for (const auto& w : ws) {
        if (t >= w.from_us && t < w.to_us) {
          peak = any ? std::max(peak, p.value) : p.value;
          low = any ? std::min(low, p.value) : p.value;
          any = true;
        }
      }
    }
    if (!any) return inconclusive(rule.metric + " has no samples in window " + rule.window);
    v.samples = g->fine().size();
    conclude(rule.stat == "min" ? low : peak);
    return v;
  }

  std::uint64_t count = 0, errors = 0;
  double value = 0;
  std::uint64_t values = 0;
  if (whole_run) {
    const histogram& h = m->hist();
    count = m->count();
    errors = m->error_count();
    values = h.count();
    if (auto q = percentile_of(rule.stat))
      value = static_cast<double>(h.percentile(*q));
    else if (rule.stat == "max")
      value = static_cast<double>(h.max());
    else if (rule.stat == "min")
      value = static_cast<double>(h.min());
    else if (rule.stat == "mean")
      value = h.mean();
  } else {
    series_point p = merge_window(*m, ws);
    count = p.count;
    errors = p.errors;
    values = p.values();
    if (auto q = percentile_of(rule.stat))
      value = static_cast<double>(p.percentile(*q));
    else if (rule.stat == "max")
      value = static_cast<double>(p.max);
    else if (rule.stat == "min")
      value = static_cast<double>(p.min);
    else if (rule.stat == "mean")
      value = p.mean();
  }
  if (rule.stat == "count")
    value = static_cast<double>(count);
  else if (rule.stat == "rate")
    value = window_s > 0 ? static_cast<double>(count) / window_s : 0;
  else if (rule.stat == "ratio")
    value = count ? 100.0 * static_cast<double>(count - errors) / static_cast<double>(count) : 0;
  else
    value *= scale;
  v.samples = (rule.stat == "count" || rule.stat == "rate" || rule.stat == "ratio") ? count : values;

  if (v.samples == 0 && rule.stat != "count" && rule.stat != "rate") {
    return inconclusive(rule.metric + " has no samples in window " + rule.window);
  }
  conclude(value);
  if (rule.for_us) {
    // A sustained bound: it fails only when broken for at least `for` in a row.
    std::int64_t breach = longest_breach(rule, *m, ws, scale);
    bool broken_long = breach >= *rule.for_us;
    if (v.pass && broken_long) {
      v.pass = false;
      v.reason = rule.metric + " " + rule.stat + " broke " + v.op + " " + fmt(*v.bound) + " " + v.unit + " for " +
                 fmt(static_cast<double>(breach) / 1e6) + " s in a row (for " +
                 fmt(static_cast<double>(*rule.for_us) / 1e6) + " s; window " + rule.window + ")";
    } else if (!v.pass && !broken_long) {
      v.pass = true;
      v.warn = true;
      v.reason = "bound broken at most " + fmt(static_cast<double>(breach) / 1e6) + " s in a row, less than for " +
                 fmt(static_cast<double>(*rule.for_us) / 1e6) + " s";
    } else if (!v.pass) {
      v.reason += "; broken " + fmt(static_cast<double>(breach) / 1e6) + " s in a row (for " +
                  fmt(static_cast<double>(*rule.for_us) / 1e6) + " s)";
    }
  }
  if (time_stat && ctx.generator_saturated && !v.pass && rule.max &&
      value - static_cast<double>(ctx.generator_lag_p99_us) * scale > *rule.max * scale) {
    v.reason += "; the generator saturated (" + ctx.saturation_reason + "), but the bound is broken by more than its " +
                fmt(static_cast<double>(ctx.generator_lag_p99_us) * scale) + " ms of lag";
    return v;
  }
  // A generator that runs late only adds to a latency measured from the intended send time, so a
  // bound that holds with the generator's lag to spare holds for the server.
  if (time_stat && ctx.generator_saturated && v.pass && rule.max && ctx.generator_lag_p99_us > 0 &&
      value + static_cast<double>(ctx.generator_lag_p99_us) * scale <= *rule.max * scale) {
    v.warn = true;
    v.reason = "the generator saturated (" + ctx.saturation_reason + "), but the bound holds with more than its " +
               fmt(static_cast<double>(ctx.generator_lag_p99_us) * scale) + " ms of lag to spare";
  } else if (time_stat && ctx.generator_saturated) {
    v.inconclusive = true;
    v.reason = "the generator saturated (" + ctx.saturation_reason + "): " + rule.metric +
               " latencies would include syncstorm's own delay";
    v.pass = false;
    return v;
  }
  std::uint64_t need = samples_needed(rule.stat, rule.stat == "ratio" ? rule.min : std::nullopt);
  if (v.pass && need > v.samples) {
    v.inconclusive = true;
    v.pass = false;
    v.reason = std::to_string(v.samples) + " samples cannot show " + rule.stat + " " + v.op + " " + fmt(*v.bound) +
               " " + v.unit + "; it takes at least " + std::to_string(need);
  }
  return v;
}

}  // namespace syncstorm
