// Windows, recovery, readiness, detection and outages at 100 ms. See timeline.hpp.
#include "core/timeline.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace syncstorm {
namespace {

constexpr std::int64_t step_us = fine_resolution_us;
constexpr double never = std::numeric_limits<double>::infinity();

std::int64_t step_floor(std::int64_t t) { return t <= 0 ? 0 : t / step_us; }
std::int64_t step_ceil(std::int64_t t) { return t <= 0 ? 0 : (t + step_us - 1) / step_us; }

// The client signal as dense 100 ms steps (pointers into the series; null when untouched).
class dense_signal {
 public:
  dense_signal(const timed_metric* m, std::int64_t run_end_us)
      : steps_(static_cast<std::size_t>(step_ceil(run_end_us)) + 1) {
    if (!m) return;
    const series& s = m->fine();
    for (std::size_t i = 0; i < s.steps().size(); ++i) {
      auto st = static_cast<std::size_t>(s.steps()[i]);
      if (st < steps_.size()) steps_[st] = &s.points()[i];
    }
  }
  std::int64_t size() const { return static_cast<std::int64_t>(steps_.size()); }
  const series_point* at(std::int64_t i) const {
    return i >= 0 && i < size() ? steps_[static_cast<std::size_t>(i)] : nullptr;
  }
  // The merged point of steps [from, to).
  series_point range(std::int64_t from, std::int64_t to) const {
    series_point acc;
    for (std::int64_t i = std::max<std::int64_t>(0, from); i < std::min(to, size()); ++i)
      if (const auto* p = at(i)) acc.merge(*p);
    return acc;
  }

 private:
  std::vector<const series_point*> steps_;
};

double ratio_of(const series_point& p) {
  return p.count ? 100.0 * static_cast<double>(p.ok()) / static_cast<double>(p.count) : 100.0;
}

struct band {
  double min_ratio, max_p99_us;
  bool in(const series_point& p) const {
    if (p.count == 0) return false;
    if (ratio_of(p) < min_ratio) return false;
    if (p.values() && static_cast<double>(p.percentile(99)) > max_p99_us) return false;
    return true;
  }
};

}  // namespace

// Where a fault's own effect ends, before its recovery: the revert of a lasting fault (the run's
// end if never reverted), the apply of an instant one.
std::int64_t timeline::effect_end(const fault_effects& e) const {
  if (!e.lasting) return e.applied_us;
  return e.reverted_us >= 0 ? e.reverted_us : in_.run_end_us;
}

std::vector<time_window> merge_windows(std::vector<time_window> w) {
  std::erase_if(w, [](const time_window& x) { return x.to_us <= x.from_us; });
  std::sort(w.begin(), w.end(), [](const auto& a, const auto& b) { return a.from_us < b.from_us; });
  std::vector<time_window> out;
  for (const auto& x : w) {
    if (!out.empty() && x.from_us <= out.back().to_us)
      out.back().to_us = std::max(out.back().to_us, x.to_us);
    else
      out.push_back(x);
  }
  return out;
}

std::vector<time_window> subtract(std::vector<time_window> base, std::vector<time_window> cut) {
  base = merge_windows(std::move(base));
  cut = merge_windows(std::move(cut));
  std::vector<time_window> out;
  for (auto b : base) {
    std::int64_t from = b.from_us;
    for (const auto& c : cut) {
      if (c.to_us <= from || c.from_us >= b.to_us) continue;
      if (c.from_us > from) out.push_back({from, c.from_us});
      from = std::max(from, c.to_us);
      if (from >= b.to_us) break;
    }
    if (from < b.to_us) out.push_back({from, b.to_us});
  }
  return out;
}

timeline::timeline(timeline_input in) : in_(std::move(in)) {
  const metrics_shard* m = in_.metrics;
  client_metric_ = in_.client_metric;
  if (client_metric_.empty() && m) {
    for (const char* c : {"push.latency", "http.latency"})
      if (m->find(c)) {
        client_metric_ = c;
        break;
      }
    if (client_metric_.empty()) {
      for (const auto& n : m->names())
        if (n.find('@') == std::string::npos && n.ends_with(".latency")) {
          client_metric_ = n;
          break;
        }
    }
  }
  const timed_metric* sig = m && !client_metric_.empty() ? m->find(client_metric_) : nullptr;
  dense_signal d(sig, in_.run_end_us);
  const auto& o = in_.options;
  const std::int64_t win_steps = std::max<std::int64_t>(1, o.window_us / step_us);
  const std::int64_t hold_steps = std::max<std::int64_t>(win_steps, o.hold_us / step_us);
  const std::int64_t end_step = step_ceil(in_.run_end_us);
  const std::int64_t warm_step = step_floor(in_.warmup_end_us);
  double run_p50 = sig && sig->hist().count() ? static_cast<double>(sig->hist().percentile(50)) : 0;

  for (const auto& f : in_.faults) {
    if (f.applied_us < 0) continue;
    fault_effects e;
    e.name = f.name;
    e.kind = f.kind;
    e.applied_us = f.applied_us;
    e.reverted_us = f.reverted_us;
    e.lasting = f.lasting;
    e.origin_us = f.lasting ? (f.reverted_us >= 0 ? f.reverted_us : in_.run_end_us) : f.applied_us;
    const std::int64_t applied_step = step_floor(f.applied_us);
    if (sig) {
      std::int64_t from = std::max(warm_step, step_floor(f.applied_us - o.baseline_us));
      series_point base = d.range(from, applied_step);
      if (base.count) {
        e.baseline_ratio = ratio_of(base);
        e.baseline_p99_us = base.values() ? static_cast<double>(base.percentile(99)) : run_p50;
      } else {
        e.baseline_ratio = 100;
        e.baseline_p99_us = run_p50;
      }
      band b{e.baseline_ratio - o.ratio_slack,
             std::max(e.baseline_p99_us * o.p99_factor, e.baseline_p99_us + static_cast<double>(o.p99_slack_us))};
      // Recovery: the first step whose following hold is in band, window by window.
      std::int64_t origin_step = step_ceil(e.origin_us);
      std::int64_t good_run = 0;  // consecutive good windows ending at step i
      for (std::int64_t i = origin_step; i + win_steps <= end_step; ++i) {
        if (b.in(d.range(i, i + win_steps)))
          ++good_run;
        else
          good_run = 0;
        if (good_run >= hold_steps - win_steps + 1) {
          std::int64_t t = (i - (hold_steps - win_steps)) * step_us;
          e.recovery_us = static_cast<double>(std::max<std::int64_t>(0, t - e.origin_us));
          break;
        }
      }
      if (!e.recovery_us) e.recovery_us = never;
      // Detection: the first failure, or the first window out of band, after the apply.
      std::int64_t detect_end = std::isinf(*e.recovery_us)
                                    ? end_step
                                    : step_ceil(e.origin_us + static_cast<std::int64_t>(*e.recovery_us)) + hold_steps;
      for (std::int64_t i = applied_step; i < std::min(detect_end, end_step); ++i) {
        const series_point* p = d.at(i);
        bool failed = p && p->errors > 0;
        if (!failed) {
          series_point w = d.range(i, i + win_steps);
          failed = w.values() && static_cast<double>(w.percentile(99)) > b.max_p99_us;
        }
        if (failed) {
          e.detect_us = static_cast<double>(std::max<std::int64_t>(0, i * step_us - f.applied_us));
          break;
        }
      }
    }
    // Ready: server side, from the lab's events.
    auto first_after = [&](const std::string& event, const std::string& subject,
                           std::int64_t after) -> std::optional<std::int64_t> {
      for (const auto& ev : in_.events)
        if (ev.t_us >= after && ev.event == event && (subject.empty() || ev.subject == subject)) return ev.t_us;
      return std::nullopt;
    };
    if (!f.units.empty()) {
      double worst = 0;
      for (const auto& u : f.units) {
        // A unit that died is ready at its first readiness probe success after the death; one
        // that stayed up but left the LB's rotation (paused) when its server is back up.
        std::optional<std::int64_t> t = f.applied_us;
        std::string prefix = u.starts_with("pod") ? "pod" : u.starts_with("db") ? "db" : u == "lb" ? "lb" : "unit";
        if (auto died = first_after(prefix + "_died", u, f.applied_us)) {
          t = first_after(prefix + "_ready", u, *died);
          if (!t && prefix == "db") t = first_after("db_promoted", "", f.applied_us);
        } else if (auto down = first_after("lb_server_down", u, f.applied_us)) {
          t = first_after("lb_server_up", u, *down);
        }
        worst = std::max(worst, t ? static_cast<double>(std::max<std::int64_t>(0, *t - f.applied_us)) : never);
      }
      e.ready_us = worst;
    } else {
      std::map<std::string, std::int64_t> down;  // server → when it went down after the apply
      double worst = 0;
      for (const auto& ev : in_.events) {
        if (ev.t_us < f.applied_us) continue;
        std::string key = ev.event == "lb_backend_down" || ev.event == "lb_backend_up" ? "BACKEND" : ev.subject;
        if (ev.event == "lb_server_down" || ev.event == "lb_backend_down") down.emplace(key, ev.t_us);
        if ((ev.event == "lb_server_up" || ev.event == "lb_backend_up") && down.count(key) && ev.t_us >= e.origin_us) {
          worst = std::max(worst, static_cast<double>(ev.t_us - f.applied_us));
          down.erase(key);
        }
      }
      e.ready_us = down.empty() ? worst : never;
    }
    effects_.push_back(std::move(e));
  }

  // outage.max: failures without success, or silence while a fault is active.
  if (sig) {
    std::vector<time_window> active;
    for (const auto& e : effects_) {
      std::int64_t end = effect_end(e);
      if (e.recovery_us)
        end = std::max(
            end, std::isinf(*e.recovery_us) ? in_.run_end_us : e.origin_us + static_cast<std::int64_t>(*e.recovery_us));
      active.push_back({e.applied_us, end});
    }
    active = merge_windows(active);
    std::int64_t best = 0, run = 0;
    for (std::int64_t i = warm_step; i < end_step; ++i) {
      const series_point* p = d.at(i);
      bool out = false;
      if (p && p->count)
        out = p->ok() == 0;
      else {
        std::int64_t t = i * step_us;
        for (const auto& a : active) out = out || (t >= a.from_us && t < a.to_us);
      }
      run = out ? run + 1 : 0;
      best = std::max(best, run);
    }
    outage_max_us_ = best * step_us;
  }
}

std::vector<time_window> timeline::during(const std::string& fault) const {
  std::vector<time_window> w;
  for (const auto& e : effects_) {
    if (e.name != fault) continue;
    std::int64_t end = effect_end(e);
    if (e.recovery_us)
      end = std::max(
          end, std::isinf(*e.recovery_us) ? in_.run_end_us : e.origin_us + static_cast<std::int64_t>(*e.recovery_us));
    end = std::min(std::max(end, e.applied_us + step_us), in_.run_end_us);
    w.push_back({e.applied_us, end});
  }
  return merge_windows(w);
}

std::vector<time_window> timeline::after(const std::string& fault) const {
  std::vector<time_window> d = during(fault), w;
  for (std::size_t i = 0; i < d.size(); ++i) {
    std::int64_t to = i + 1 < d.size() ? d[i + 1].from_us : in_.run_end_us;
    w.push_back({d[i].to_us, to});
  }
  return merge_windows(w);
}

std::vector<time_window> timeline::steady() const {
  std::vector<time_window> cut;
  for (const auto& e : effects_) {
    for (const auto& w : during(e.name)) cut.push_back(w);
  }
  return subtract({{in_.warmup_end_us, in_.run_end_us}}, cut);
}

std::vector<time_window> timeline::window(const std::string& spec, const std::vector<time_window>& phase) const {
  if (spec == "all") return {{0, in_.run_end_us}};
  if (spec == "steady") return steady();
  if (spec.starts_with("during:")) return during(spec.substr(7));
  if (spec.starts_with("after:")) return after(spec.substr(6));
  if (spec.starts_with("phase:")) return phase;
  return {};
}

std::map<std::string, double> timeline::scalars() const {
  std::map<std::string, double> out;
  auto worst = [&](const std::string& key, const std::optional<double>& v) {
    if (!v) return;
    auto [it, fresh] = out.emplace(key, *v);
    if (!fresh) it->second = std::max(it->second, *v);
  };
  for (const auto& e : effects_) {
    worst("recovery." + e.name, e.recovery_us);
    worst("ready." + e.name, e.ready_us);
    worst("detect." + e.name, e.detect_us);
  }
  if (outage_max_us_) out["outage.max"] = static_cast<double>(*outage_max_us_);
  return out;
}

ws_drop_counts attribute_ws_drops(const std::vector<ws_drop>& drops, const std::vector<fault_occurrence>& faults,
                                  const std::vector<timeline_event>& events, std::int64_t run_end_us,
                                  const ws_drop_options& o) {
  auto down_event = [](const timeline_event& e) { return e.event.ends_with("_died") || e.event.ends_with("_stopped"); };
  auto down_at = [&](const std::string& unit, std::int64_t from, std::int64_t to) {
    return std::any_of(events.begin(), events.end(), [&](const timeline_event& e) {
      return e.subject == unit && down_event(e) && e.t_us >= from && e.t_us <= to;
    });
  };
  ws_drop_counts c;
  for (const auto& d : drops) {
    ++c.total;
    if (d.server.empty()) {
      ++c.unattributed;
      continue;
    }
    bool explained = down_at(d.server, d.t_us - o.after_us, d.t_us + o.before_us);
    for (const auto& f : faults) {
      if (explained) break;
      if (f.applied_us < 0 || std::find(f.units.begin(), f.units.end(), d.server) == f.units.end()) continue;
      const std::int64_t end = f.reverted_us < 0 ? run_end_us : f.reverted_us;
      if (down_at(d.server, f.applied_us, end + o.grace_us)) continue;  // its deaths say when
      explained = d.t_us >= f.applied_us - o.after_us && d.t_us <= end + o.grace_us;
    }
    ++(explained ? c.faulted : c.bystanders);
  }
  return c;
}

}  // namespace syncstorm
