// Run comparison. See compare.hpp.
#include "reports/compare.hpp"

#include "reports/writers.hpp"

#include <cmath>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

namespace syncstorm::reports {
namespace {

using json = nlohmann::json;

std::optional<double> number_at(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number()) return std::nullopt;
  return obj[key].get<double>();
}

std::string name_or_empty(const json& r) {
  if (r.contains("scenario") && r["scenario"].is_object()) return r["scenario"].value("name", "");
  return "";
}

// Fills change_pct and regression from base/next, the direction and the bounds.
void judge(figure_delta& d, const compare_options& o) {
  if (!d.base || !d.next) return;
  double b = *d.base, n = *d.next;
  if (b != 0) d.change_pct = (n - b) / std::fabs(b) * 100.0;
  if (!d.judged) return;
  double worse = d.better == "lower" ? n - b : b - n;  // > 0: moved in the bad direction
  if (worse <= 0) return;
  if (d.unit == "ms" && worse <= o.min_delta_ms) return;
  if (b == 0) {
    // No relative change from zero: a latency past the floor, or any count that appeared.
    d.regression = d.unit == "ms" || d.unit == "count";
    if (d.regression && d.note.empty()) d.note = "from 0";
    return;
  }
  d.regression = worse / std::fabs(b) * 100.0 > o.max_regression_pct;
}

std::string fmt(const std::optional<double>& v, const std::string& unit) {
  if (!v) return "-";
  std::ostringstream o;
  if (std::isinf(*v)) return "unbounded";
  o << std::setprecision(*v >= 1000 ? 10 : 4) << *v;
  if (unit == "ms")
    o << " ms";
  else if (unit == "percent")
    o << "%";
  else if (unit == "per_s")
    o << "/s";
  return o.str();
}

std::string fmt_change(const figure_delta& d) {
  if (!d.change_pct) return d.base && d.next && *d.base == *d.next ? "0%" : "-";
  std::ostringstream o;
  o << std::showpos << std::fixed << std::setprecision(std::fabs(*d.change_pct) < 10 ? 1 : 0) << *d.change_pct << "%";
  return o.str();
}

json opt_json(const std::optional<double>& v) { return v ? json(*v) : json(); }

}  // namespace

std::optional<double> parse_percent(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == ' ') t.pop_back();
  if (!t.empty() && t.back() == '%') t.pop_back();
  if (t.empty()) return std::nullopt;
  std::size_t used = 0;
  double v = 0;
  try {
    v = std::stod(t, &used);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (used != t.size() || !std::isfinite(v) || v < 0) return std::nullopt;
  return v;
}

comparison compare_reports(const json& base, const json& next, const compare_options& o) {
  comparison c;
  c.options = o;
  c.base_name = name_or_empty(base);
  c.next_name = name_or_empty(next);
  if (c.base_name != c.next_name)
    c.notes.push_back("scenarios differ: BASE is \"" + c.base_name + "\", NEW is \"" + c.next_name + "\"");
  if (base.value("outcome", "") != "pass" && base.contains("outcome"))
    c.notes.push_back("BASE outcome is " + base.value("outcome", "") + ", not pass");

  // Rules, matched by name, in NEW's order then those only in BASE.
  std::map<std::string, json> base_rules;
  for (const auto& v : base.value("verdicts", json::array())) base_rules[v.value("name", "")] = v;
  std::set<std::string> seen;
  for (const auto& v : next.value("verdicts", json::array())) {
    std::string name = v.value("name", "");
    seen.insert(name);
    figure_delta d;
    d.subject = name;
    d.what = v.value("metric", "") + " " + v.value("stat", "") + " " + v.value("window", "");
    d.unit = v.value("unit", "");
    d.better = v.value("op", "<=") == ">=" ? "higher" : "lower";
    d.next = number_at(v, "value");
    auto it = base_rules.find(name);
    if (it == base_rules.end()) {
      d.note = "only in NEW (" + verdict_status(v) + ")";
      d.judged = false;
      c.rules.push_back(d);
      continue;
    }
    const json& b = it->second;
    d.base = number_at(b, "value");
    std::string sb = verdict_status(b), sn = verdict_status(v);
    if (sb != sn) d.note = sb + " -> " + sn;
    if (sn == "INCONCLUSIVE") d.judged = false;
    judge(d, o);
    if (sn == "FAIL" && sb != "FAIL") d.regression = true;
    c.rules.push_back(d);
  }
  for (const auto& [name, b] : base_rules) {
    if (seen.count(name)) continue;
    figure_delta d;
    d.subject = name;
    d.what = b.value("metric", "") + " " + b.value("stat", "") + " " + b.value("window", "");
    d.unit = b.value("unit", "");
    d.base = number_at(b, "value");
    d.judged = false;
    d.note = "only in BASE";
    c.rules.push_back(d);
  }

  // Metrics present in both.
  const json bm = base.value("metrics", json::object()), nm = next.value("metrics", json::object());
  for (const auto& [name, n] : nm.items()) {
    if (!n.is_object()) continue;
    if (!bm.contains(name) || !bm[name].is_object()) {
      c.notes.push_back("metric " + name + " only in NEW");
      continue;
    }
    const json& b = bm[name];
    std::string unit = n.value("unit", "");
    // generator.* measure syncstorm itself, not the system under test: shown, never judged.
    const bool judged = name.rfind("generator.", 0) != 0;
    // `subject` copies the structured binding: clang before 16 cannot capture one.
    auto add = [&, subject = name](const std::string& what, const std::string& u, std::optional<double> bv,
                                   std::optional<double> nv, const std::string& better, bool judged) {
      if (!bv && !nv) return;
      figure_delta d;
      d.subject = subject;
      d.what = what;
      d.unit = u;
      d.base = bv;
      d.next = nv;
      d.better = better;
      d.judged = judged;
      judge(d, o);
      c.metrics.push_back(d);
    };
    if (unit == "value") {  // a gauge
      add("peak", "value", number_at(b, "peak"), number_at(n, "peak"), "lower", false);
      continue;
    }
    if (unit == "ms") {
      add("p50", "ms", number_at(b, "p50"), number_at(n, "p50"), "lower", judged);
      add("p99", "ms", number_at(b, "p99"), number_at(n, "p99"), "lower", judged);
      add("max", "ms", number_at(b, "max"), number_at(n, "max"), "lower", false);
    }
    auto bc = number_at(b, "count"), nc = number_at(n, "count");
    add("count", "count", bc, nc, "higher", false);
    auto be = number_at(b, "errors"), ne = number_at(n, "errors");
    if (bc && nc && *bc > 0 && *nc > 0 && be && ne && (*be > 0 || *ne > 0)) {
      add("success_ratio", "percent", 100.0 * (*bc - *be) / *bc, 100.0 * (*nc - *ne) / *nc, "higher", judged);
    }
  }
  for (const auto& [name, b] : bm.items()) {
    if (!nm.contains(name)) c.notes.push_back("metric " + name + " only in BASE");
  }

  // The data audit: correctness counts have no tolerance; any increase regresses.
  const json& ba = base.contains("audit") ? base["audit"] : json();
  const json& na = next.contains("audit") ? next["audit"] : json();
  if (ba.is_object() && na.is_object()) {
    for (const char* k : {"lost", "duplicates", "order_violations", "diverged", "in_doubt", "mismatched", "phantoms"}) {
      figure_delta d;
      d.subject = "audit";
      d.what = k;
      d.unit = "count";
      d.base = number_at(ba, k);
      d.next = number_at(na, k);
      if (!d.base && !d.next) continue;
      d.judged = std::string(k) != "in_doubt";  // in flight at a fault: varies by timing
      if (d.base && d.next) {
        if (*d.base != 0) d.change_pct = (*d.next - *d.base) / *d.base * 100.0;
        d.regression = d.judged && *d.next > *d.base;
      }
      c.metrics.push_back(d);
    }
  }

  for (const auto& d : c.rules) c.regressed = c.regressed || d.regression;
  for (const auto& d : c.metrics) c.regressed = c.regressed || d.regression;
  return c;
}

std::string format_comparison(const comparison& c) {
  std::vector<std::vector<std::string>> rows{{"", "SUBJECT", "FIGURE", "BASE", "NEW", "CHANGE", "VERDICT"}};
  auto verdict = [](const figure_delta& d) {
    std::string v = d.regression ? "REGRESSION" : d.judged ? "ok" : "info";
    if (!d.note.empty()) v += " (" + d.note + ")";
    return v;
  };
  for (const auto& d : c.rules)
    rows.push_back({"rule", d.subject, d.what, fmt(d.base, d.unit), fmt(d.next, d.unit), fmt_change(d), verdict(d)});
  // Informational figures of per-load copies (`x@load`) stay in the JSON form only: the table
  // would otherwise repeat every merged metric once per load.
  for (const auto& d : c.metrics) {
    if (!d.judged && !d.regression && d.subject.find('@') != std::string::npos) continue;
    rows.push_back({"metric", d.subject, d.what, fmt(d.base, d.unit), fmt(d.next, d.unit), fmt_change(d), verdict(d)});
  }
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  std::ostringstream o;
  for (const auto& r : rows) {
    std::string line;
    for (std::size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(w[i] - r[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    o << line << "\n";
  }
  for (const auto& n : c.notes) o << "note: " << n << "\n";
  std::size_t n = 0;
  for (const auto& d : c.rules) n += d.regression;
  for (const auto& d : c.metrics) n += d.regression;
  o << "compare: " << (c.regressed ? "REGRESSION" : "ok") << " (" << n << " regression" << (n == 1 ? "" : "s")
    << " past " << c.options.max_regression_pct << "%, latency floor " << c.options.min_delta_ms << " ms)\n";
  return o.str();
}

json comparison_json(const comparison& c) {
  auto figure = [](const figure_delta& d) {
    return json{{"subject", d.subject},
                {"what", d.what},
                {"unit", d.unit},
                {"base", opt_json(d.base)},
                {"new", opt_json(d.next)},
                {"change_pct", opt_json(d.change_pct)},
                {"better", d.better},
                {"judged", d.judged},
                {"regression", d.regression},
                {"note", d.note}};
  };
  json rules = json::array(), metrics = json::array();
  for (const auto& d : c.rules) rules.push_back(figure(d));
  for (const auto& d : c.metrics) metrics.push_back(figure(d));
  return {{"base", c.base_name},
          {"new", c.next_name},
          {"max_regression_pct", c.options.max_regression_pct},
          {"min_delta_ms", c.options.min_delta_ms},
          {"regressed", c.regressed},
          {"notes", c.notes},
          {"rules", rules},
          {"metrics", metrics}};
}

}  // namespace syncstorm::reports
