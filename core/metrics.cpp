// Timed metrics, gauges and the per-worker shard that names them.
// Threading: one owner per shard, as the header says; nothing here locks.
#include "core/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <iterator>
#include <string>

#include <nlohmann/json.hpp>

namespace syncstorm {

namespace {

std::int64_t fine_step_of(std::int64_t at_us) noexcept { return at_us <= 0 ? 0 : at_us / fine_resolution_us; }

double seconds_of(std::int64_t step, std::int64_t resolution_us) noexcept {
  return static_cast<double>(step * resolution_us) / 1e6;
}

}  // namespace

// ---- timed_metric ----

timed_metric::timed_metric() = default;

void timed_metric::record(std::int64_t at_us, std::int64_t value_us, bool ok) {
  hist_.record(value_us);
  fine_.record(at_us, value_us, ok);
  coarse_.record(at_us, value_us, ok);
  if (ok) {
    ++ok_;
  } else {
    ++errors_;
  }
}

void timed_metric::add(std::int64_t at_us, std::uint64_t n, bool ok) {
  if (n == 0) return;
  fine_.add(at_us, n, ok);
  coarse_.add(at_us, n, ok);
  if (ok) {
    ok_ += n;
  } else {
    errors_ += n;
  }
}

void timed_metric::merge(const timed_metric& other) {
  hist_.merge(other.hist_);
  fine_.merge(other.fine_);
  coarse_.merge(other.coarse_);
  ok_ += other.ok_;
  errors_ += other.errors_;
}

timed_metric timed_metric::copy_since(std::int64_t from_us) const {
  timed_metric out;
  out.hist_ = hist_;
  out.fine_ = fine_.copy_since(from_us);
  out.coarse_ = coarse_.copy_since(from_us);
  out.ok_ = ok_;
  out.errors_ = errors_;
  return out;
}

void timed_metric::splice(const timed_metric& recent, std::int64_t from_us) {
  hist_ = recent.hist_;
  ok_ = recent.ok_;
  errors_ = recent.errors_;
  fine_.splice(recent.fine_, from_us);
  coarse_.splice(recent.coarse_, from_us);
}

nlohmann::json timed_metric::to_json() const {
  return {{"ok", ok_}, {"errors", errors_}, {"hist", hist_.to_json()}, {"fine", fine_.to_json_exact()}};
}

timed_metric timed_metric::from_json(const nlohmann::json& j, std::string_view where_view) {
  const std::string where(where_view);
  timed_metric m;
  m.ok_ = detail::json_u64(detail::json_member(j, "ok", where), where + ".ok");
  m.errors_ = detail::json_u64(detail::json_member(j, "errors", where), where + ".errors");
  m.hist_ = histogram::from_json(detail::json_member(j, "hist", where), where + ".hist");
  series fine = series::from_json(detail::json_member(j, "fine", where), where + ".fine");
  if (fine.resolution_us() != fine_resolution_us) {
    detail::json_fail(where + ".fine.resolution_us", j.at("fine").at("resolution_us"),
                      std::to_string(fine_resolution_us));
  }
  m.coarse_ = fine.coarsen(coarse_resolution_us);
  m.fine_ = std::move(fine);
  return m;
}

nlohmann::json timed_metric::to_json_summary() const {
  return {{"count", count()},
          {"ok", ok_},
          {"errors", errors_},
          {"values", hist_.count()},
          {"clamped", hist_.clamped()},
          {"min", hist_.min()},
          {"max", hist_.max()},
          {"mean", hist_.mean()},
          {"p50", hist_.percentile(50)},
          {"p90", hist_.percentile(90)},
          {"p99", hist_.percentile(99)},
          {"p99_9", hist_.percentile(99.9)},
          {"p99_99", hist_.percentile(99.99)},
          {"fine", fine_.to_json()},
          {"coarse", coarse_.to_json()}};
}

// ---- gauge_series ----

void gauge_series::set(std::int64_t at_us, double value) {
  const std::int64_t step = fine_step_of(at_us);
  if (!points_.empty() && points_.back().step == step) {
    points_.back().value = value;
    return;
  }
  if (points_.empty() || step > points_.back().step) {
    points_.push_back({step, value});
    return;
  }
  const auto it = std::lower_bound(points_.begin(), points_.end(), step,
                                   [](const gauge_point& p, std::int64_t s) { return p.step < s; });
  if (it->step == step) {
    it->value = value;
  } else {
    points_.insert(it, gauge_point{step, value});
  }
}

void gauge_series::merge(const gauge_series& other) {
  if (other.points_.empty()) return;
  if (points_.empty()) {
    points_ = other.points_;
    return;
  }
  std::vector<gauge_point> merged;
  merged.reserve(points_.size() + other.points_.size());
  std::size_t a = 0;
  std::size_t b = 0;
  double level_a = 0;
  double level_b = 0;
  while (a < points_.size() || b < other.points_.size()) {
    const std::int64_t step =
        b == other.points_.size()
            ? points_[a].step
            : (a == points_.size() ? other.points_[b].step : std::min(points_[a].step, other.points_[b].step));
    if (a < points_.size() && points_[a].step == step) level_a = points_[a++].value;
    if (b < other.points_.size() && other.points_[b].step == step) {
      level_b = other.points_[b++].value;
    }
    merged.push_back({step, level_a + level_b});
  }
  points_ = std::move(merged);
}

std::vector<gauge_point> gauge_series::coarse() const {
  constexpr std::int64_t factor = coarse_resolution_us / fine_resolution_us;
  std::vector<gauge_point> out;
  for (const gauge_point& p : points_) {
    const std::int64_t step = p.step / factor;
    if (!out.empty() && out.back().step == step) {
      out.back().value = p.value;
    } else {
      out.push_back({step, p.value});
    }
  }
  return out;
}

double gauge_series::peak() const noexcept {
  if (points_.empty()) return 0;
  double best = points_.front().value;
  for (const gauge_point& p : points_) best = std::max(best, p.value);
  return best;
}

double gauge_series::value_at(std::int64_t at_us) const noexcept {
  const std::int64_t step = fine_step_of(at_us);
  const auto it = std::upper_bound(points_.begin(), points_.end(), step,
                                   [](std::int64_t s, const gauge_point& p) { return s < p.step; });
  return it == points_.begin() ? 0.0 : std::prev(it)->value;
}

gauge_series gauge_series::copy_since(std::int64_t from_us) const {
  const std::int64_t step = fine_step_of(from_us);
  auto first = std::lower_bound(points_.begin(), points_.end(), step,
                                [](const gauge_point& p, std::int64_t s) { return p.step < s; });
  if (first != points_.begin() && (first == points_.end() || first->step != step)) --first;
  gauge_series out;
  out.points_.assign(first, points_.end());
  return out;
}

void gauge_series::splice(const gauge_series& recent, std::int64_t from_us) {
  const std::int64_t step = fine_step_of(from_us);
  const auto by_step = [](const gauge_point& p, std::int64_t s) { return p.step < s; };
  points_.erase(std::lower_bound(points_.begin(), points_.end(), step, by_step), points_.end());
  points_.insert(points_.end(), std::lower_bound(recent.points_.begin(), recent.points_.end(), step, by_step),
                 recent.points_.end());
}

nlohmann::json gauge_series::to_json() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const gauge_point& p : points_) rows.push_back(nlohmann::json::array({p.step, p.value}));
  return {{"points", std::move(rows)}};
}

gauge_series gauge_series::from_json(const nlohmann::json& j, std::string_view where_view) {
  const std::string base(where_view);
  const nlohmann::json& rows = detail::json_member(j, "points", base);
  if (!rows.is_array()) detail::json_fail(base + ".points", rows, "an array of [step, value]");
  gauge_series g;
  g.points_.reserve(rows.size());
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const std::string where = base + ".points[" + std::to_string(r) + "]";
    const nlohmann::json& row = rows[r];
    if (!row.is_array() || row.size() != 2) detail::json_fail(where, row, "[step, value]");
    const std::int64_t step = detail::json_i64(row[0], where + "[0]");
    if (step < 0 || (!g.points_.empty() && step <= g.points_.back().step)) {
      detail::json_fail(where + "[0]", row[0], "a step after the previous point's");
    }
    g.points_.push_back({step, detail::json_number(row[1], where + "[1]")});
  }
  return g;
}

nlohmann::json gauge_series::to_json_summary() const {
  nlohmann::json fine_rows = nlohmann::json::array();
  for (const gauge_point& p : points_) {
    fine_rows.push_back(nlohmann::json::array({seconds_of(p.step, fine_resolution_us), p.value}));
  }
  nlohmann::json coarse_rows = nlohmann::json::array();
  for (const gauge_point& p : coarse()) {
    coarse_rows.push_back(nlohmann::json::array({seconds_of(p.step, coarse_resolution_us), p.value}));
  }
  return {{"last", last()}, {"peak", peak()}, {"fine", std::move(fine_rows)}, {"coarse", std::move(coarse_rows)}};
}

// ---- metrics_shard ----

timed_metric& metrics_shard::metric(std::string_view name) {
  auto it = metrics_.find(name);
  if (it == metrics_.end()) it = metrics_.emplace(std::string(name), timed_metric{}).first;
  return it->second;
}

gauge_series& metrics_shard::gauge(std::string_view name) {
  auto it = gauges_.find(name);
  if (it == gauges_.end()) it = gauges_.emplace(std::string(name), gauge_series{}).first;
  return it->second;
}

void metrics_shard::gauge(std::string_view name, std::int64_t at_us, double value) { gauge(name).set(at_us, value); }

void metrics_shard::merge(const metrics_shard& other) {
  for (const auto& [name, m] : other.metrics_) metric(name).merge(m);
  for (const auto& [name, g] : other.gauges_) gauge(name).merge(g);
}

metrics_shard metrics_shard::copy_since(std::int64_t from_us) const {
  metrics_shard out;
  for (const auto& [name, m] : metrics_) out.metrics_.emplace(name, m.copy_since(from_us));
  for (const auto& [name, g] : gauges_) out.gauges_.emplace(name, g.copy_since(from_us));
  return out;
}

void metrics_shard::splice(const metrics_shard& recent, std::int64_t from_us) {
  for (const auto& [name, m] : recent.metrics_) metric(name).splice(m, from_us);
  for (const auto& [name, g] : recent.gauges_) gauge(name).splice(g, from_us);
}

std::vector<std::string> metrics_shard::names() const {
  std::vector<std::string> out;
  out.reserve(metrics_.size());
  for (const auto& entry : metrics_) out.push_back(entry.first);
  return out;
}

std::vector<std::string> metrics_shard::gauge_names() const {
  std::vector<std::string> out;
  out.reserve(gauges_.size());
  for (const auto& entry : gauges_) out.push_back(entry.first);
  return out;
}

const timed_metric* metrics_shard::find(std::string_view name) const {
  const auto it = metrics_.find(name);
  return it == metrics_.end() ? nullptr : &it->second;
}

const gauge_series* metrics_shard::find_gauge(std::string_view name) const {
  const auto it = gauges_.find(name);
  return it == gauges_.end() ? nullptr : &it->second;
}

nlohmann::json metrics_shard::to_json() const {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, m] : metrics_) metrics[name] = m.to_json();
  nlohmann::json gauges = nlohmann::json::object();
  for (const auto& [name, g] : gauges_) gauges[name] = g.to_json();
  return {{"metrics", std::move(metrics)}, {"gauges", std::move(gauges)}};
}

metrics_shard metrics_shard::from_json(const nlohmann::json& j, std::string_view where_view) {
  const std::string where(where_view);
  metrics_shard shard;
  const nlohmann::json& metrics = detail::json_member(j, "metrics", where);
  if (!metrics.is_object()) detail::json_fail(where + ".metrics", metrics, "an object of metrics");
  for (const auto& [name, value] : metrics.items()) {
    shard.metrics_.emplace(name, timed_metric::from_json(value, where + ".metrics[\"" + name + "\"]"));
  }
  const nlohmann::json& gauges = detail::json_member(j, "gauges", where);
  if (!gauges.is_object()) detail::json_fail(where + ".gauges", gauges, "an object of gauges");
  for (const auto& [name, value] : gauges.items()) {
    shard.gauges_.emplace(name, gauge_series::from_json(value, where + ".gauges[\"" + name + "\"]"));
  }
  return shard;
}

nlohmann::json metrics_shard::to_json_summary() const {
  nlohmann::json metrics = nlohmann::json::object();
  for (const auto& [name, m] : metrics_) metrics[name] = m.to_json_summary();
  nlohmann::json gauges = nlohmann::json::object();
  for (const auto& [name, g] : gauges_) gauges[name] = g.to_json_summary();
  return {{"metrics", std::move(metrics)}, {"gauges", std::move(gauges)}};
}

}  // namespace syncstorm
