// Timeline construction and its text form. See plan.hpp.
#include "core/plan.hpp"

#include "core/units.hpp"

#include <algorithm>
#include <random>
#include <sstream>

namespace syncstorm {
namespace {

std::string rate_text(const std::optional<double>& r) {
  if (!r) return "-";
  std::ostringstream o;
  o << *r << "/s";
  return o.str();
}

// Renders rows as aligned columns under a heading.
std::string table(const std::string& title, const std::vector<std::vector<std::string>>& rows) {
  std::ostringstream out;
  out << title << "\n";
  if (rows.size() <= 1) {
    out << "  (none)\n";
    return out.str();
  }
  std::vector<std::size_t> w;
  for (const auto& r : rows) {
    if (w.size() < r.size()) w.resize(r.size(), 0);
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  }
  for (const auto& r : rows) {
    out << " ";
    for (std::size_t i = 0; i < r.size(); ++i) {
      out << " " << r[i];
      if (i + 1 < r.size()) out << std::string(w[i] - r[i].size(), ' ');
    }
    out << "\n";
  }
  return out.str();
}

std::string bound_text(const rule_entry& r, double v) {
  if (r.unit == metric_unit::time && r.stat != "count" && r.stat != "rate" && r.stat != "ratio") {
    return units::format_duration(static_cast<std::int64_t>(v));
  }
  std::ostringstream o;
  o << v;
  if (r.stat == "ratio") o << "%";
  return o.str();
}

}  // namespace

plan make_plan(const scenario& s) {
  plan p;
  p.duration_us = s.duration_us;
  for (const auto& l : s.loads) {
    std::int64_t t = 0;
    std::optional<double> prev;
    for (const auto& ph : l.phases) {
      planned_phase pp{l.name, ph.name, t, std::min(t + ph.for_us, s.duration_us), {}, {}};
      if (ph.rate) {
        pp.from_rate = ph.rate;
        pp.to_rate = ph.rate;
      }
      if (ph.to) {
        pp.from_rate = prev.value_or(0.0);
        pp.to_rate = ph.to;
      }
      if (pp.to_rate) prev = pp.to_rate;
      t += ph.for_us;
      p.phases.push_back(pp);
    }
  }
  std::mt19937_64 rng(s.seed);
  for (const auto& f : s.faults) {
    if (!f.every_us) {
      planned_fault pf{f.name, f.kind, 0, f.at_us, {}};
      if (f.for_us) pf.revert_us = f.at_us + *f.for_us;
      p.faults.push_back(pf);
      continue;
    }
    std::int64_t limit = f.count.value_or(1'000'000);
    for (std::int64_t i = 0; i < limit; ++i) {
      std::int64_t at = f.at_us + i * *f.every_us;
      if (f.jitter_us && *f.jitter_us > 0) {
        std::uniform_int_distribution<std::int64_t> d(-*f.jitter_us, *f.jitter_us);
        at = std::max<std::int64_t>(f.at_us, at + d(rng));
      }
      if (at >= s.duration_us) break;
      planned_fault pf{f.name, f.kind, static_cast<int>(i), at, {}};
      if (f.for_us) pf.revert_us = at + *f.for_us;
      p.faults.push_back(pf);
    }
  }
  std::stable_sort(p.faults.begin(), p.faults.end(), [](auto& a, auto& b) { return a.at_us < b.at_us; });
  return p;
}

std::string format_plan(const scenario& s, const plan& p) {
  std::ostringstream out;
  out << "scenario " << s.name << ": " << units::format_duration(p.duration_us) << ", seed " << s.seed;
  if (s.time_scale != 1.0) out << ", time scale " << s.time_scale;
  out << "\n";
  if (s.target.contains("lab")) {
    const auto& lab = s.target["lab"];
    out << "target: lab, " << lab.value("pods", 2) << " pods" << (lab.value("replica", false) ? ", replica" : "");
    if (lab.contains("bug")) out << ", bug " << lab["bug"].get<std::string>();
    out << "\n";
  } else {
    out << "target: " << s.target["endpoints"].value("http", s.target["endpoints"].value("ws", "")) << "\n";
  }
  out << "\n";
  std::vector<std::vector<std::string>> rows{{"LOAD", "PHASE", "START", "END", "RATE"}};
  for (const auto& ph : p.phases) {
    std::string rate =
        ph.from_rate == ph.to_rate ? rate_text(ph.to_rate) : rate_text(ph.from_rate) + " -> " + rate_text(ph.to_rate);
    auto model = std::find_if(s.loads.begin(), s.loads.end(), [&](auto& l) { return l.name == ph.load; });
    if (!ph.to_rate && model != s.loads.end() && model->fields.value("mode", "open") == "closed") {
      rate = "closed, " + std::to_string(model->fields.value("connections", 64)) + " connections";
    }
    rows.push_back({ph.load, ph.phase, units::format_duration(ph.start_us), units::format_duration(ph.end_us), rate});
  }
  out << table("phases", rows) << "\n";
  rows = {{"FAULT", "KIND", "TARGET", "APPLY", "REVERT"}};
  for (const auto& f : p.faults) {
    auto fe = std::find_if(s.faults.begin(), s.faults.end(), [&](auto& x) { return x.name == f.name; });
    std::string target = fe != s.faults.end() && !fe->target.empty() ? fe->target.dump() : "-";
    if (fe != s.faults.end() && fe->fields.contains("path")) target = fe->fields["path"].get<std::string>();
    std::string name = f.name + (f.occurrence ? "#" + std::to_string(f.occurrence + 1) : "");
    rows.push_back({name, f.kind, target, units::format_duration(f.at_us),
                    f.revert_us ? units::format_duration(*f.revert_us) : "-"});
  }
  out << table("faults", rows) << "\n";
  rows = {{"RULE", "METRIC", "STAT", "WINDOW", "BOUND"}};
  for (const auto& r : s.slas) {
    std::string bound;
    if (r.max) bound += "<= " + bound_text(r, *r.max);
    if (r.min) bound += std::string(bound.empty() ? "" : ", ") + ">= " + bound_text(r, *r.min);
    if (r.warn) bound += " (warn " + bound_text(r, *r.warn) + ")";
    if (r.for_us) bound += " for " + units::format_duration(*r.for_us);
    rows.push_back({r.name, r.metric, r.stat, r.window, bound});
  }
  out << table("rules", rows);
  if (!s.aborts.empty()) {
    rows = {{"ABORT", "CONDITION"}};
    for (const auto& a : s.aborts) {
      std::string cond = a.rule ? a.rule->metric + " " + a.rule->stat : "probe " + a.probe.value("url", "");
      rows.push_back({a.name, cond});
    }
    out << "\n" << table("abort conditions", rows);
  }
  return out.str();
}

}  // namespace syncstorm
