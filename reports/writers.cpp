// The report renderers. See writers.hpp. Every string from the report that lands in XML or HTML
// is escaped; nothing is fetched by the HTML (styles and charts are inline).
#include "reports/writers.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

namespace syncstorm::reports {
namespace {

using json = nlohmann::json;

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': o += "&amp;"; break;
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '"': o += "&quot;"; break;
      case '\'': o += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') o += ' ';
        else o += c;
    }
  }
  return o;
}

std::string num(const json& v, int precision = 4) {
  if (v.is_null()) return "-";
  if (!v.is_number()) return v.dump();
  double d = v.get<double>();
  if (std::isinf(d)) return "unbounded";
  std::ostringstream o;
  o << std::setprecision(precision) << d;
  return o.str();
}

std::string unit_suffix(const json& v) {
  std::string u = v.value("unit", "");
  if (u == "ms") return " ms";
  if (u == "percent") return "%";
  if (u == "per_s") return "/s";
  return "";
}

std::string status_of(const json& v) {
  if (v.value("inconclusive", false)) return "INCONCLUSIVE";
  if (!v.value("pass", false)) return "FAIL";
  if (v.value("warn", false)) return "WARN";
  return "PASS";
}

std::string bound_text(const json& v) {
  if (v["bound"].is_null()) return "-";
  return v.value("op", "<=") + " " + num(v["bound"]) + unit_suffix(v);
}

void write_file(const std::filesystem::path& p, const std::string& text) {
  auto tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(p.string() + ": cannot write");
    out << text;
    if (!out) throw std::runtime_error(p.string() + ": write failed");
  }
  std::filesystem::rename(tmp, p);
}

// A line chart as inline SVG: series of (t, value) with fault windows shaded.
struct line { std::string label, color; std::vector<std::pair<double, double>> points; };

std::string svg_chart(const std::string& title, const std::string& unit, const std::vector<line>& lines,
                      const std::vector<std::pair<double, double>>& shaded, double t_end) {
  const double W = 860, H = 220, L = 60, R = 10, T = 24, B = 28;
  double vmax = 0;
  for (const auto& l : lines) for (const auto& [t, v] : l.points) vmax = std::max(vmax, v);
  if (vmax <= 0) vmax = 1;
  vmax *= 1.1;
  if (t_end <= 0) t_end = 1;
  auto x = [&](double t) { return L + (W - L - R) * t / t_end; };
  auto y = [&](double v) { return T + (H - T - B) * (1 - v / vmax); };
  std::ostringstream o;
  o << std::fixed << std::setprecision(1);
  o << "<svg class=\"chart\" viewBox=\"0 0 " << W << " " << H << "\" width=\"" << W << "\" height=\"" << H
    << "\" role=\"img\" aria-label=\"" << xml_escape(title) << "\">";
  o << "<text x=\"" << L << "\" y=\"16\" class=\"ct\">" << xml_escape(title) << " (" << xml_escape(unit) << ")</text>";
  for (const auto& [a, b] : shaded) {
    o << "<rect class=\"fault\" x=\"" << x(a) << "\" y=\"" << T << "\" width=\"" << std::max(1.0, x(b) - x(a))
      << "\" height=\"" << (H - T - B) << "\"/>";
  }
  for (int i = 0; i <= 4; ++i) {
    double v = vmax * i / 4;
    o << "<line class=\"grid\" x1=\"" << L << "\" x2=\"" << (W - R) << "\" y1=\"" << y(v) << "\" y2=\"" << y(v) << "\"/>";
    o << "<text class=\"ax\" x=\"" << (L - 4) << "\" y=\"" << (y(v) + 4) << "\" text-anchor=\"end\">" << num(v, 3) << "</text>";
  }
  for (int i = 0; i <= 5; ++i) {
    double t = t_end * i / 5;
    o << "<text class=\"ax\" x=\"" << x(t) << "\" y=\"" << (H - 8) << "\" text-anchor=\"middle\">" << num(t, 3) << "s</text>";
  }
  double lx = W - R - 160;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    if (!l.points.empty()) {
      o << "<polyline fill=\"none\" stroke=\"" << l.color << "\" stroke-width=\"1.6\" points=\"";
      for (const auto& [t, v] : l.points) o << x(t) << "," << y(v) << " ";
      o << "\"/>";
    }
    o << "<rect x=\"" << lx << "\" y=\"" << (6 + 12 * i) << "\" width=\"10\" height=\"3\" fill=\"" << l.color << "\"/>";
    o << "<text class=\"ax\" x=\"" << (lx + 14) << "\" y=\"" << (10 + 12 * i) << "\">" << xml_escape(l.label) << "</text>";
  }
  o << "</svg>";
  return o.str();
}

}  // namespace

std::string verdict_table(const json& report) {
  std::ostringstream o;
  std::vector<std::vector<std::string>> rows{{"RULE", "METRIC", "STAT", "WINDOW", "VALUE", "BOUND", "VERDICT"}};
  for (const auto& v : report.value("verdicts", json::array())) {
    rows.push_back({v.value("name", ""), v.value("metric", ""), v.value("stat", ""), v.value("window", ""),
                    num(v["value"]) + (v["value"].is_null() ? "" : unit_suffix(v)), bound_text(v), status_of(v)});
  }
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (const auto& r : rows) for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      o << r[i];
      if (i + 1 < r.size()) o << std::string(w[i] - r[i].size() + 2, ' ');
    }
    o << "\n";
  }
  if (rows.size() == 1) o << "(no rules)\n";
  for (const auto& v : report.value("verdicts", json::array())) {
    if (status_of(v) != "PASS" && !v.value("reason", "").empty()) o << "  " << v.value("name", "") << ": " << v.value("reason", "") << "\n";
  }
  o << "outcome: " << report.value("outcome", "") << " (exit " << report.value("exit_code", 0) << ")";
  if (!report.value("reason", "").empty()) o << ": " << report.value("reason", "");
  o << "\n";
  return o.str();
}

std::string junit_xml(const json& report) {
  const auto& verdicts = report.value("verdicts", json::array());
  std::size_t failures = 0, skipped = 0;
  for (const auto& v : verdicts) {
    if (v.value("inconclusive", false)) ++skipped;
    else if (!v.value("pass", false)) ++failures;
  }
  std::string name = report.contains("scenario") ? report["scenario"].value("name", "scenario") : "scenario";
  double duration = report.value("duration_s", 0.0);
  bool errored = report.value("outcome", "") == "error" || report.value("outcome", "") == "aborted";
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o << "<testsuites name=\"syncstorm\" tests=\"" << verdicts.size() << "\" failures=\"" << failures << "\" errors=\""
    << (errored ? 1 : 0) << "\" time=\"" << duration << "\">\n";
  o << "  <testsuite name=\"" << xml_escape(name) << "\" tests=\"" << verdicts.size() << "\" failures=\"" << failures
    << "\" errors=\"" << (errored ? 1 : 0) << "\" skipped=\"" << skipped << "\" time=\"" << duration
    << "\" timestamp=\"" << xml_escape(report.value("started_at", "").substr(0, 19)) << "\">\n";
  o << "    <properties>\n";
  o << "      <property name=\"outcome\" value=\"" << xml_escape(report.value("outcome", "")) << "\"/>\n";
  o << "      <property name=\"seed\" value=\"" << report.value("seed", 0) << "\"/>\n";
  o << "      <property name=\"syncstorm_version\" value=\"" << xml_escape(report.value("syncstorm_version", "")) << "\"/>\n";
  o << "    </properties>\n";
  for (const auto& v : verdicts) {
    o << "    <testcase name=\"" << xml_escape(v.value("name", "")) << "\" classname=\"" << xml_escape(name + "." + v.value("metric", ""))
      << "\" time=\"0\">\n";
    std::string detail = v.value("metric", "") + " " + v.value("stat", "") + " over " + v.value("window", "") + ": value " +
                         num(v["value"]) + unit_suffix(v) + ", bound " + bound_text(v);
    if (v.value("inconclusive", false)) {
      o << "      <skipped message=\"" << xml_escape("inconclusive: " + v.value("reason", "")) << "\"/>\n";
    } else if (!v.value("pass", false)) {
      o << "      <failure message=\"" << xml_escape(detail) << "\" type=\"sla\">" << xml_escape(detail + "\n" + v.value("reason", ""))
        << "</failure>\n";
    } else if (v.value("warn", false)) {
      o << "      <system-out>" << xml_escape("warning: " + detail + ", warn bound " + num(v["warn_bound"])) << "</system-out>\n";
    }
    o << "    </testcase>\n";
  }
  if (errored) {
    o << "    <testcase name=\"run\" classname=\"" << xml_escape(name) << "\" time=\"" << duration << "\">\n";
    o << "      <error message=\"" << xml_escape(report.value("outcome", "") + ": " + report.value("reason", "")) << "\" type=\""
      << xml_escape(report.value("outcome", "")) << "\"/>\n";
    o << "    </testcase>\n";
  }
  o << "  </testsuite>\n</testsuites>\n";
  return o.str();
}

std::string summary_md(const json& report) {
  std::ostringstream o;
  std::string name = report.contains("scenario") ? report["scenario"].value("name", "scenario") : "scenario";
  o << "## syncstorm: " << name << " — " << report.value("outcome", "") << "\n\n";
  if (!report.value("reason", "").empty()) o << "> " << report.value("reason", "") << "\n\n";
  o << "| rule | metric | window | value | bound | verdict |\n|---|---|---|---|---|---|\n";
  for (const auto& v : report.value("verdicts", json::array())) {
    o << "| " << v.value("name", "") << " | " << v.value("metric", "") << " " << v.value("stat", "") << " | " << v.value("window", "")
      << " | " << num(v["value"]) << (v["value"].is_null() ? "" : unit_suffix(v)) << " | " << bound_text(v) << " | **"
      << status_of(v) << "** |\n";
  }
  o << "\n### Key figures\n\n| metric | count | errors | p50 | p99 | max |\n|---|---|---|---|---|---|\n";
  const json metrics = report.value("metrics", json::object());  // items() must not outlive it
  for (const auto& [m, s] : metrics.items()) {
    if (!s.is_object() || !s.contains("p50")) continue;
    o << "| " << m << " | " << s.value("count", 0) << " | " << s.value("errors", 0) << " | " << num(s["p50"]) << " ms | "
      << num(s["p99"]) << " ms | " << num(s["max"]) << " ms |\n";
  }
  const auto& faults = report.value("faults", json::array());
  if (!faults.empty()) {
    o << "\n### Faults\n\n| fault | kind | applied | reverted | recovery |\n|---|---|---|---|---|\n";
    for (const auto& f : faults) {
      o << "| " << f.value("name", "") << " | " << f.value("kind", "") << " | " << num(f["applied_at"]) << " s | "
        << num(f["reverted_at"]) << " s | " << num(f["recovery_s"]) << " s |\n";
    }
  }
  const auto& g = report.value("generator", json::object());
  o << "\nGenerator: CPU " << num(g.value("cpu", json(0.0)), 3) << " cores, lag p99 " << num(g.value("lag_p99", json()))
    << " ms" << (g.value("saturated", false) ? " — **saturated**: " + g.value("reason", "") : "") << ". Seed "
    << report.value("seed", 0) << ", " << report.value("started_at", "") << " to " << report.value("ended_at", "") << ".\n";
  return o.str();
}

std::string html(const json& report) {
  std::string name = report.contains("scenario") ? report["scenario"].value("name", "scenario") : "scenario";
  std::string outcome = report.value("outcome", "");
  double t_end = report.value("duration_s", 0.0);
  std::vector<std::pair<double, double>> shaded;
  for (const auto& f : report.value("faults", json::array())) {
    if (f["applied_at"].is_number()) {
      double a = f["applied_at"].get<double>();
      double b = f["reverted_at"].is_number() ? f["reverted_at"].get<double>() : a + 0.2;
      shaded.emplace_back(a, b);
    }
  }
  std::ostringstream o;
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>syncstorm: " << xml_escape(name)
    << "</title><style>"
       "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1b1f24;max-width:920px}"
       "h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
       "table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d8dee4;padding:4px 8px;text-align:left}"
       "th{background:#f6f8fa}.PASS{color:#1a7f37;font-weight:600}.FAIL{color:#cf222e;font-weight:600}"
       ".WARN{color:#9a6700;font-weight:600}.INCONCLUSIVE{color:#8250df;font-weight:600}"
       ".badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff}"
       ".pass{background:#1a7f37}.fail,.error,.aborted{background:#cf222e}.inconclusive{background:#8250df}"
       ".chart{display:block;margin:8px 0}.ct{font-weight:600;font-size:12px}.ax{font-size:10px;fill:#57606a}"
       ".grid{stroke:#eaeef2}.fault{fill:#cf222e;opacity:.15}"
       "</style></head><body>";
  o << "<h1>" << xml_escape(name) << " <span class=\"badge " << xml_escape(outcome) << "\">" << xml_escape(outcome) << "</span></h1>";
  o << "<p>" << xml_escape(report.value("started_at", "")) << " → " << xml_escape(report.value("ended_at", "")) << " · seed "
    << report.value("seed", 0) << " · exit " << report.value("exit_code", 0);
  if (!report.value("reason", "").empty()) o << " · " << xml_escape(report.value("reason", ""));
  o << "</p>";
  o << "<h2>Verdicts</h2><table id=\"verdicts\"><tr><th>rule</th><th>metric</th><th>window</th><th>value</th><th>bound</th><th>verdict</th></tr>";
  for (const auto& v : report.value("verdicts", json::array())) {
    std::string st = status_of(v);
    o << "<tr><td>" << xml_escape(v.value("name", "")) << "</td><td>" << xml_escape(v.value("metric", "") + " " + v.value("stat", ""))
      << "</td><td>" << xml_escape(v.value("window", "")) << "</td><td>" << xml_escape(num(v["value"]) + (v["value"].is_null() ? "" : unit_suffix(v)))
      << "</td><td>" << xml_escape(bound_text(v)) << "</td><td class=\"" << st << "\" title=\"" << xml_escape(v.value("reason", "")) << "\">"
      << st << "</td></tr>";
  }
  o << "</table>";
  const auto& faults = report.value("faults", json::array());
  const auto& events = report.value("events", json::array());
  if (!faults.empty() || !events.empty()) {
    o << "<h2>Timeline</h2><table id=\"timeline\"><tr><th>t (s)</th><th>what</th></tr>";
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& f : faults) {
      if (f["applied_at"].is_number()) rows.emplace_back(f["applied_at"].get<double>(), "fault " + f.value("name", "") + " (" + f.value("kind", "") + ") applied");
      if (f["reverted_at"].is_number()) rows.emplace_back(f["reverted_at"].get<double>(), "fault " + f.value("name", "") + " reverted");
    }
    for (const auto& e : events) {
      if (e.contains("t_s") && e["t_s"].is_number()) rows.emplace_back(e["t_s"].get<double>(), e.value("event", "") + " " + e.value("subject", ""));
    }
    std::stable_sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.first < b.first; });
    for (const auto& [t, what] : rows) o << "<tr><td>" << num(t, 4) << "</td><td>" << xml_escape(what) << "</td></tr>";
    o << "</table>";
  }
  o << "<h2>Charts</h2>";
  const auto& metrics = report.value("metrics", json::object());
  const auto& series = report.value("series", json::object());
  for (const auto& [m, s] : series.items()) {
    if (!s.is_array() || s.empty()) continue;
    bool time_metric = metrics.contains(m) && metrics[m].value("unit", "") == "ms";
    std::vector<line> lat{{"p50", "#0969da", {}}, {"p99", "#cf222e", {}}};
    std::vector<line> thr{{"ok/s", "#1a7f37", {}}, {"errors/s", "#cf222e", {}}};
    for (const auto& row : s) {
      if (!row.is_array() || row.size() < 6) continue;
      double t = row[0].get<double>();
      double count = row[1].get<double>(), errors = row[2].get<double>();
      thr[0].points.emplace_back(t, count - errors);
      thr[1].points.emplace_back(t, errors);
      if (time_metric) {
        lat[0].points.emplace_back(t, row[3].get<double>());
        lat[1].points.emplace_back(t, row[4].get<double>());
      }
    }
    if (time_metric) o << svg_chart(m + " latency per second", "ms", lat, shaded, t_end);
    o << svg_chart(m + " throughput and errors", "per second", thr, shaded, t_end);
  }
  o << "<h2>Metrics</h2><table id=\"metrics\"><tr><th>metric</th><th>count</th><th>errors</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th></tr>";
  for (const auto& [m, s] : metrics.items()) {
    if (!s.is_object()) continue;
    std::string u = s.value("unit", "") == "ms" ? " ms" : "";
    o << "<tr><td>" << xml_escape(m) << "</td><td>" << num(s.value("count", json(0)), 10) << "</td><td>" << num(s.value("errors", json(0)), 10)
      << "</td><td>" << num(s.value("p50", json())) << u << "</td><td>" << num(s.value("p99", json())) << u << "</td><td>"
      << num(s.value("p99_9", json())) << u << "</td><td>" << num(s.value("max", json())) << u << "</td></tr>";
  }
  o << "</table>";
  const auto& g = report.value("generator", json::object());
  o << "<h2>Generator</h2><p>CPU " << num(g.value("cpu", json(0.0)), 3) << " cores · lag p99 " << num(g.value("lag_p99", json())) << " ms · "
    << (g.value("saturated", false) ? "<b>saturated</b>: " + xml_escape(g.value("reason", "")) : std::string("not saturated")) << "</p>";
  o << "</body></html>\n";
  return o.str();
}

void write_all(const std::string& run_dir, const json& report) {
  std::filesystem::path d(run_dir);
  write_file(d / "report.json", report.dump(2) + "\n");
  write_file(d / "junit.xml", junit_xml(report));
  write_file(d / "summary.md", summary_md(report));
  write_file(d / "report.html", html(report));
}

}  // namespace syncstorm::reports
