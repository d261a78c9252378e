// The report renderers. See writers.hpp. Every string from the report that lands in XML or HTML
// is escaped; nothing is fetched by the HTML (styles and charts are inline SVG, no script, the
// icon a data: URL), so it opens offline and as a CI artifact.
#include "reports/writers.hpp"
#include "core/redact.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

namespace syncstorm::reports {
namespace {

// The metrics a rule or abort condition of the report's scenario reads.
std::set<std::string> writers_judged_metrics(const nlohmann::json& report) {
  std::set<std::string> judged;
  const nlohmann::json scen = report.value("scenario", nlohmann::json::object());
  for (const char* list : {"slas", "abort"})
    if (scen.contains(list) && scen[list].is_array())
      for (const auto& r : scen[list])
        if (r.is_object() && r.contains("metric") && r["metric"].is_string()) {
          const std::string m = r["metric"].get<std::string>();
          const std::string across =
              r.contains("across") && r["across"].is_string() ? r["across"].get<std::string>() : "";
          judged.insert(across.empty() || across == "max" ? m : across + "(" + m + ")");
        }
  return judged;
}

// The target's own series (server.*, target.metrics) are many (every family of every pod): the
// summary and the charts show those a rule reads, across instances; the HTML table every family
// across instances.
bool writers_hidden_server_level(const std::string& m, const std::set<std::string>& judged, bool only_judged) {
  if (!m.starts_with("server.")) return false;
  if (m.find('@') != std::string::npos) return true;
  return only_judged && !judged.count(m);
}

using json = nlohmann::json;

std::string xml_escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t')
          o += ' ';
        else
          o += c;
    }
  }
  return o;
}

// Markdown table cells: a pipe or a newline would break the row.
std::string md_cell(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '|')
      o += "\\|";
    else if (c == '\n' || c == '\r')
      o += ' ';
    else
      o += c;
  }
  return o;
}

std::string num(const json& v, int precision = 4) {
  if (v.is_null()) return "-";
  if (!v.is_number()) return v.dump(-1, ' ', false, json::error_handler_t::replace);
  double d = v.get<double>();
  if (std::isinf(d)) return "unbounded";
  std::ostringstream o;
  // Whole numbers at and above 10^precision (10000 ms, not 1e+04 ms).
  if (std::fabs(d) >= std::pow(10.0, precision))
    o << std::fixed << std::setprecision(0) << d;
  else
    o << std::setprecision(precision) << d;
  return o.str();
}

std::string num(double d, int precision = 4) { return num(json(d), precision); }

// Axis labels: whole numbers from 100 up (never 1.53e+03), three digits below.
std::string axis_num(double d) {
  if (std::fabs(d) >= 100) {
    std::ostringstream o;
    o << std::fixed << std::setprecision(0) << d;
    return o.str();
  }
  return num(d, 3);
}

// A field that may be absent, null or a number, as JSON.
json field(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key)) return json();
  return obj[key];
}

std::string unit_suffix(const json& v) {
  std::string u = v.value("unit", "");
  if (u == "ms") return " ms";
  if (u == "percent") return "%";
  if (u == "per_s") return "/s";
  return "";
}

std::string bound_text(const json& v) {
  if (field(v, "bound").is_null()) return "-";
  return v.value("op", "<=") + " " + num(v["bound"]) + unit_suffix(v);
}

std::string value_text(const json& v) {
  const json value = field(v, "value");
  return num(value) + (value.is_null() ? "" : unit_suffix(v));
}

std::string scenario_name(const json& report) {
  if (report.contains("scenario") && report["scenario"].is_object())
    return report["scenario"].value("name", "scenario");
  return "scenario";
}

// `metric stat over window: value V, bound B (load L)`: what a failure message states.
std::string verdict_detail(const json& v) {
  std::string s = v.value("metric", "") + " " + v.value("stat", "") + " over " + v.value("window", "") + ": value " +
                  value_text(v) + ", bound " + bound_text(v);
  if (!v.value("load", "").empty()) s += " (load " + v.value("load", "") + ")";
  if (v.contains("samples") && v["samples"].is_number()) s += ", " + num(v["samples"], 12) + " samples";
  return s;
}

std::string event_subject(const json& e) {
  for (const char* k : {"subject", "name", "unit", "server", "load"}) {
    if (e.contains(k) && e[k].is_string() && !e[k].get<std::string>().empty()) return e[k].get<std::string>();
  }
  return "";
}

double t_of(const json& e) { return e.contains("t_s") && e["t_s"].is_number() ? e["t_s"].get<double>() : NAN; }

void write_file(const std::filesystem::path& p, const std::string& text) {
  auto tmp = p;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw std::runtime_error(p.string() + ": cannot write");
    out << redact::apply(text);  // no resolved ${env:} value in any report file
    if (!out) throw std::runtime_error(p.string() + ": write failed");
  }
  std::filesystem::rename(tmp, p);
}

// Fault windows of the run: [applied, reverted] in seconds (an unreverted fault runs to the end).
struct window {
  std::string name;
  double from, to;
};

std::vector<window> fault_windows(const json& report, double t_end) {
  std::vector<window> w;
  for (const auto& f : report.value("faults", json::array())) {
    if (!field(f, "applied_at").is_number()) continue;
    double a = f["applied_at"].get<double>();
    double b = field(f, "reverted_at").is_number() ? f["reverted_at"].get<double>() : t_end;
    w.push_back({f.value("name", ""), a, std::max(b, a)});
  }
  return w;
}

// Lab events worth marking on a chart: pods, database, load balancer.
bool is_lab_event(const json& e) {
  std::string ev = e.value("event", "");
  return ev.rfind("pod_", 0) == 0 || ev.rfind("db_", 0) == 0 || ev.rfind("lb_", 0) == 0;
}

std::string event_color(const std::string& ev) {
  for (const char* bad : {"died", "kill", "down", "fail", "exit", "stop", "crash", "promoting"})
    if (ev.find(bad) != std::string::npos) return "#cf222e";
  for (const char* good : {"ready", "up", "started", "promoted", "healthy"})
    if (ev.find(good) != std::string::npos) return "#1a7f37";
  return "#57606a";
}

std::string slug(const std::string& s) {
  std::string o;
  for (char c : s)
    o += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(static_cast<unsigned char>(c)))
                                                     : '-';
  return o;
}

// A tick step of 1, 2 or 5 × 10^k giving at most `ticks` intervals over `range`.
double nice_step(double range, int ticks) {
  if (!(range > 0)) return 1;
  double raw = range / ticks;
  double mag = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) return m * mag;
  return 10 * mag;
}

// Inline SVG line charts on the run's time axis, fault windows shaded and labelled, lab events
// as thin vertical marks, optional horizontal bounds (a rule's limit).
struct line {
  std::string label, color;
  std::vector<std::pair<double, double>> points;
  bool step = false;  // a level (gauge): hold each value until the next
};
struct hline {
  std::string label;
  double value;
};

struct chart_frame {
  double t_end = 1;      // the axis
  double t_end_run = 1;  // the run's length (duration_s)
  std::vector<window> faults;
  std::vector<std::pair<double, std::string>> marks;  // t, tooltip
};

std::string svg_chart(const std::string& id, const std::string& kind, const std::string& title, const std::string& unit,
                      const std::vector<line>& lines, const chart_frame& f, const std::vector<hline>& bounds = {}) {
  const double W = 880, H = 220, L = 62, R = 12, T = 26, B = 28;
  double data_max = 0;
  for (const auto& l : lines)
    for (const auto& [t, v] : l.points) data_max = std::max(data_max, v);
  // A bound far above the data would flatten it: such bounds are named, not drawn.
  std::vector<hline> drawn, above;
  for (const auto& b : bounds) (data_max > 0 && b.value > 2.5 * data_max ? above : drawn).push_back(b);
  double vmax = data_max;
  for (const auto& b : drawn) vmax = std::max(vmax, b.value);
  if (vmax <= 0) vmax = 1;
  const double y_step = nice_step(vmax * 1.05, 4);
  vmax = y_step * std::ceil(vmax * 1.05 / y_step);
  const double t_end = f.t_end > 0 ? f.t_end : 1;
  auto x = [&](double t) { return L + (W - L - R) * std::clamp(t, 0.0, t_end) / t_end; };
  auto y = [&](double v) { return T + (H - T - B) * (1 - v / vmax); };
  std::ostringstream o;
  o << std::fixed << std::setprecision(1);
  o << "<svg id=\"" << xml_escape(id) << "\" class=\"chart\" data-kind=\"" << kind << "\" viewBox=\"0 0 " << W << " "
    << H << "\" width=\"" << W << "\" height=\"" << H << "\" role=\"img\" aria-label=\"" << xml_escape(title) << "\">";
  o << "<title>" << xml_escape(title) << "</title>";
  o << "<text x=\"" << L << "\" y=\"16\" class=\"ct\">" << xml_escape(title) << " (" << xml_escape(unit) << ")</text>";
  for (const auto& w : f.faults) {
    o << "<rect class=\"fault\" x=\"" << x(w.from) << "\" y=\"" << T << "\" width=\""
      << std::max(2.0, x(w.to) - x(w.from)) << "\" height=\"" << (H - T - B) << "\"><title>fault " << xml_escape(w.name)
      << ": " << num(w.from) << " s to " << num(w.to) << " s</title></rect>";
    o << "<text class=\"fl\" x=\"" << (x(w.from) + 2) << "\" y=\"" << (T + 10) << "\">" << xml_escape(w.name)
      << "</text>";
  }
  for (const auto& [t, what] : f.marks) {
    o << "<line class=\"mark\" x1=\"" << x(t) << "\" x2=\"" << x(t) << "\" y1=\"" << T << "\" y2=\"" << (H - B)
      << "\"><title>" << xml_escape(what) << "</title></line>";
  }
  for (int i = 0; i * y_step <= vmax * 1.0001; ++i) {
    double v = i * y_step;
    o << "<line class=\"grid\" x1=\"" << L << "\" x2=\"" << (W - R) << "\" y1=\"" << y(v) << "\" y2=\"" << y(v)
      << "\"/>";
    o << "<text class=\"ax\" x=\"" << (L - 4) << "\" y=\"" << (y(v) + 4) << "\" text-anchor=\"end\">" << axis_num(v)
      << "</text>";
  }
  const double t_step = nice_step(t_end, 8);
  for (int i = 0; i * t_step <= t_end * 1.0001; ++i) {
    double t = i * t_step;
    o << "<text class=\"ax\" x=\"" << x(t) << "\" y=\"" << (H - 10) << "\" text-anchor=\"middle\">" << axis_num(t)
      << "s</text>";
  }
  if (!above.empty()) {
    std::string names;
    for (const auto& b : above) names += (names.empty() ? "" : "; ") + b.label;
    o << "<text class=\"bl\" x=\"" << (L + 4) << "\" y=\"" << (T + 10) << "\">above the chart: " << xml_escape(names)
      << "</text>";
  }
  for (const auto& b : drawn) {
    o << "<line class=\"bound\" x1=\"" << L << "\" x2=\"" << (W - R) << "\" y1=\"" << y(b.value) << "\" y2=\""
      << y(b.value) << "\"><title>" << xml_escape(b.label) << "</title></line>";
    o << "<text class=\"bl\" x=\"" << (L + 4) << "\" y=\"" << (y(b.value) - 3) << "\">" << xml_escape(b.label)
      << "</text>";
  }
  double lx = W - R - 170;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const auto& l = lines[i];
    if (!l.points.empty()) {
      o << "<polyline class=\"series\" fill=\"none\" stroke=\"" << l.color << "\" stroke-width=\"1.6\" points=\"";
      double prev_v = 0;
      bool first = true;
      for (const auto& [t, v] : l.points) {
        if (l.step && !first) o << x(t) << "," << y(prev_v) << " ";
        o << x(t) << "," << y(v) << " ";
        prev_v = v;
        first = false;
      }
      if (l.step) o << x(t_end) << "," << y(prev_v);
      o << "\"><title>" << xml_escape(l.label) << "</title></polyline>";
    }
    o << "<rect x=\"" << lx << "\" y=\"" << (6 + 12 * i) << "\" width=\"10\" height=\"3\" fill=\"" << l.color << "\"/>";
    o << "<text class=\"ax\" x=\"" << (lx + 14) << "\" y=\"" << (10 + 12 * i) << "\">" << xml_escape(l.label)
      << "</text>";
  }
  o << "</svg>";
  return o.str();
}

// The run as lanes: load phases, each fault's windows, and the lab's pod / database / load
// balancer events as marks, on the same time axis as the charts.
std::string svg_timeline(const json& report, const chart_frame& f) {
  struct bar {
    double from, to;
    std::string label, cls;
  };
  struct lane {
    std::string name;
    std::vector<bar> bars;
    std::vector<std::pair<double, std::string>> marks;
  };
  std::vector<lane> lanes;
  auto lane_of = [&](const std::string& name) -> lane& {
    for (auto& l : lanes)
      if (l.name == name) return l;
    lanes.push_back({name, {}, {}});
    return lanes.back();
  };
  const json events = report.value("events", json::array());
  for (const auto& e : events) {
    if (e.value("event", "") != "phase_planned") continue;
    double a = e.value("start_s", 0.0), b = e.value("end_s", 0.0);
    lane_of("load " + e.value("load", "")).bars.push_back({a, b, e.value("phase", ""), "phase"});
  }
  for (const auto& fl : report.value("faults", json::array())) {
    lane& l = lane_of("fault " + fl.value("name", ""));
    if (field(fl, "applied_at").is_number()) {
      double a = fl["applied_at"].get<double>();
      double b = field(fl, "reverted_at").is_number() ? fl["reverted_at"].get<double>() : f.t_end;
      l.bars.push_back({a, std::max(a, b), fl.value("kind", ""), "fbar"});
    } else if (field(fl, "scheduled_at").is_number()) {
      l.marks.push_back({fl["scheduled_at"].get<double>(), "scheduled, not applied: " + fl.value("error", "")});
    }
  }
  for (const auto& e : events) {
    double t = t_of(e);
    if (std::isnan(t) || t < 0 || !is_lab_event(e)) continue;
    std::string ev = e.value("event", "");
    std::string group = ev.substr(0, ev.find('_'));
    lane_of(group == "pod"  ? "pods"
            : group == "db" ? "database"
                            : "load balancer")
        .marks.push_back({t, ev + " " + event_subject(e)});
  }
  for (const auto& e : events) {
    std::string ev = e.value("event", "");
    if (ev == "signal" || ev == "abort" || ev.find("abort") != std::string::npos) {
      double t = t_of(e);
      if (!std::isnan(t)) lane_of("run").marks.push_back({t, ev + " " + event_subject(e)});
    }
  }
  if (lanes.empty()) return {};
  const double W = 880, L = 150, R = 12, row = 22, T = 8;
  const double H = T + row * static_cast<double>(lanes.size()) + 24;
  auto x = [&](double t) { return L + (W - L - R) * std::clamp(t, 0.0, f.t_end) / f.t_end; };
  std::ostringstream o;
  o << std::fixed << std::setprecision(1);
  o << "<svg id=\"timeline-chart\" class=\"chart\" data-kind=\"timeline\" viewBox=\"0 0 " << W << " " << H
    << "\" width=\"" << W << "\" height=\"" << H
    << "\" role=\"img\" aria-label=\"run timeline\"><title>run timeline</title>";
  for (std::size_t i = 0; i < lanes.size(); ++i) {
    const lane& l = lanes[i];
    double y = T + row * static_cast<double>(i);
    o << "<line class=\"grid\" x1=\"" << L << "\" x2=\"" << (W - R) << "\" y1=\"" << (y + row) << "\" y2=\""
      << (y + row) << "\"/>";
    o << "<text class=\"ln\" x=\"" << (L - 6) << "\" y=\"" << (y + 15) << "\" text-anchor=\"end\">"
      << xml_escape(l.name) << "</text>";
    for (const auto& b : l.bars) {
      o << "<rect class=\"" << b.cls << "\" x=\"" << x(b.from) << "\" y=\"" << (y + 4) << "\" width=\""
        << std::max(2.0, x(b.to) - x(b.from)) << "\" height=\"" << (row - 8) << "\"><title>"
        << xml_escape(l.name + " " + b.label) << ": " << num(b.from) << " s to " << num(b.to) << " s</title></rect>";
      o << "<text class=\"bt\" x=\"" << (x(b.from) + 3) << "\" y=\"" << (y + 15) << "\">" << xml_escape(b.label)
        << "</text>";
    }
    for (const auto& [t, what] : l.marks) {
      o << "<rect class=\"evt\" x=\"" << (x(t) - 2) << "\" y=\"" << (y + 3) << "\" width=\"4\" height=\"" << (row - 6)
        << "\" fill=\"" << event_color(what) << "\"><title>" << num(t) << " s: " << xml_escape(what)
        << "</title></rect>";
    }
  }
  const double t_step = nice_step(f.t_end, 8);
  for (int i = 0; i * t_step <= f.t_end * 1.0001; ++i) {
    double t = i * t_step;
    o << "<text class=\"ax\" x=\"" << x(t) << "\" y=\"" << (H - 8) << "\" text-anchor=\"middle\">" << axis_num(t)
      << "s</text>";
  }
  o << "</svg>";
  return o.str();
}

// Order of charts: the sync path first, then the rest alphabetically.
int chart_rank(const std::string& m) {
  static const std::vector<std::string> order = {"http.latency",    "push.latency", "push.e2e",       "pull.latency",
                                                 "fanout.delivery", "local.write",  "bootstrap.time", "http.requests"};
  std::string base = m.substr(0, m.find('@'));
  for (std::size_t i = 0; i < order.size(); ++i)
    if (base == order[i]) return static_cast<int>(i);
  if (base.rfind("generator.", 0) == 0) return 1000;
  if (base.rfind("wire.", 0) == 0) return 900;
  return 500;
}

// Metrics that are detail of another (error buckets, the uncorrected view, queueing parts) or
// a per-load copy of a model-wide metric present in the report get no chart of their own.
bool charted(const std::string& m, const json& series) {
  if (m.find(".errors.") != std::string::npos) return false;
  for (const char* part : {".uncorrected", ".queue_wait", ".unsent", "generator.late"})
    if (m.find(part) != std::string::npos) return false;
  auto at = m.find('@');
  if (at != std::string::npos && series.contains(m.substr(0, at))) return false;
  return true;
}

// The wire series (capture/wire_series.hpp: wire.<direction>.<counter>) as one chart per
// counter with a line per direction, so a partition's retransmissions or a kill's resets stand
// out against the other paths; then the capture's own counts (interfaces, drops, pcap files).
std::string wire_section(const json& report, const chart_frame& frame) {
  const json series = report.value("series", json::object());
  struct group {
    std::vector<line> lines;
  };
  static const std::vector<std::pair<std::string, std::string>> counters = {{"packets", "packets"},
                                                                            {"bytes", "bytes"},
                                                                            {"retransmits", "retransmissions"},
                                                                            {"rst", "RST"},
                                                                            {"new_connections", "new connections"},
                                                                            {"syn", "SYN"},
                                                                            {"syn_ack", "SYN-ACK"},
                                                                            {"fin", "FIN"},
                                                                            {"zero_windows", "zero windows"}};
  static const std::vector<std::string> directions = {"clients-lb", "lb-clients", "lb-pods",
                                                      "pods-lb",    "pods-db",    "db-pods"};
  static const std::vector<std::string> colors = {"#0969da", "#54aeff", "#1a7f37", "#4ac26b", "#cf222e", "#ff8182"};
  std::ostringstream o;
  bool any = false;
  for (const auto& [counter, title] : counters) {
    std::vector<line> lines;
    for (std::size_t d = 0; d < directions.size(); ++d) {
      const std::string name = "wire." + directions[d] + "." + counter;
      if (!series.contains(name) || !series[name].is_array() || series[name].empty()) continue;
      line l{directions[d], colors[d], {}, false};
      for (const auto& row : series[name]) {
        if (!row.is_array() || row.size() < 2 || !row[0].is_number() || !row[1].is_number()) continue;
        const double t = row[0].get<double>();
        // A second with nothing on the wire has no row: draw it as 0, not as a line across it.
        if (!l.points.empty() && t - l.points.back().first > 1.5) {
          l.points.emplace_back(l.points.back().first + 1, 0);
          l.points.emplace_back(t - 1, 0);
        }
        l.points.emplace_back(t, row[1].get<double>());
      }
      if (!l.points.empty()) lines.push_back(std::move(l));
    }
    if (lines.empty()) continue;
    any = true;
    o << svg_chart("chart-wire-" + slug(counter), "wire", "wire.*." + counter + ": " + title + " by direction",
                   counter == "bytes" ? "bytes/s" : "per second", lines, frame);
  }
  const json cap = report.contains("capture") && report["capture"].is_object() ? report["capture"] : json();
  if (!any && cap.is_null()) return {};
  std::ostringstream out;
  out << "<h2>Wire</h2>";
  if (cap.is_object()) {
    const std::uint64_t dropped = cap.value("dropped", std::uint64_t{0});
    out << "<table id=\"capture\"><tr><th>interface</th><th>filter</th><th>packets</th><th>on named paths</th>"
           "<th>kernel dropped</th><th>pcap files</th></tr>";
    for (const auto& i : cap.value("interfaces", json::array())) {
      const json k = i.value("kernel", json::object());
      std::string files;
      for (const auto& f : i.value("files", json::array()))
        files += (files.empty() ? "" : ", ") + std::filesystem::path(f.value("path", "")).filename().string() + " (" +
                 std::to_string(f.value("packets", 0)) + ")";
      out << "<tr" << (k.value("dropped", 0) > 0 || i.contains("error") ? " class=\"FAILROW\"" : "") << "><td>"
          << xml_escape(i.value("name", "")) << "</td><td>" << xml_escape(i.value("filter", "")) << "</td><td>"
          << i.value("packets", 0) << "</td><td>" << i.value("classified", 0) << "</td><td>" << k.value("dropped", 0)
          << "</td><td>" << xml_escape(files.empty() ? std::string("none") : files) << "</td></tr>";
      if (i.contains("error"))
        out << "<tr class=\"FAILROW\"><td colspan=\"6\">" << xml_escape(i.value("error", "")) << "</td></tr>";
    }
    out << "</table><p class=\"ax\">"
        << (dropped ? "The capture dropped packets: rules on wire.* are inconclusive. " : "")
        << "Series per direction between the named endpoints, at " << cap.value("resolution_ms", 100)
        << " ms, charted per second.</p>";
  }
  out << o.str();
  return out.str();
}

}  // namespace

std::string verdict_table(const json& report) {
  std::ostringstream o;
  std::vector<std::vector<std::string>> rows{{"RULE", "METRIC", "STAT", "WINDOW", "VALUE", "BOUND", "VERDICT"}};
  for (const auto& v : report.value("verdicts", json::array())) {
    rows.push_back({v.value("name", ""), v.value("metric", ""), v.value("stat", ""), v.value("window", ""),
                    value_text(v), bound_text(v), verdict_status(v)});
  }
  std::vector<std::size_t> w(rows[0].size(), 0);
  for (const auto& r : rows)
    for (std::size_t i = 0; i < r.size(); ++i) w[i] = std::max(w[i], r[i].size());
  for (const auto& r : rows) {
    for (std::size_t i = 0; i < r.size(); ++i) {
      o << r[i];
      if (i + 1 < r.size()) o << std::string(w[i] - r[i].size() + 2, ' ');
    }
    o << "\n";
  }
  if (rows.size() == 1) o << "(no rules)\n";
  for (const auto& v : report.value("verdicts", json::array())) {
    if (verdict_status(v) != "PASS" && !v.value("reason", "").empty())
      o << "  " << v.value("name", "") << ": " << v.value("reason", "") << "\n";
  }
  o << "outcome: " << report.value("outcome", "") << " (exit " << report.value("exit_code", 0) << ")";
  if (!report.value("reason", "").empty()) o << ": " << report.value("reason", "");
  o << "\n";
  return o.str();
}

std::string junit_xml(const json& report) {
  const json verdicts = report.value("verdicts", json::array());
  std::size_t failures = 0, skipped = 0;
  for (const auto& v : verdicts) {
    if (v.value("inconclusive", false))
      ++skipped;
    else if (!v.value("pass", false))
      ++failures;
  }
  const std::string name = scenario_name(report);
  const std::string outcome = report.value("outcome", "");
  const bool errored = outcome == "error" || outcome == "aborted";
  const std::size_t tests = verdicts.size() + (errored ? 1 : 0);
  std::ostringstream dur;
  dur << std::fixed << std::setprecision(3) << report.value("duration_s", 0.0);
  const std::string duration = dur.str();
  std::ostringstream o;
  o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  o << "<testsuites name=\"syncstorm\" tests=\"" << tests << "\" failures=\"" << failures << "\" errors=\""
    << (errored ? 1 : 0) << "\" time=\"" << duration << "\">\n";
  o << "  <testsuite name=\"" << xml_escape(name) << "\" tests=\"" << tests << "\" failures=\"" << failures
    << "\" errors=\"" << (errored ? 1 : 0) << "\" skipped=\"" << skipped << "\" time=\"" << duration << "\"";
  // xs:dateTime without the fraction and zone, as Jenkins' own suites write it.
  const std::string started = report.value("started_at", "");
  if (started.size() >= 19 && started[10] == 'T') o << " timestamp=\"" << xml_escape(started.substr(0, 19)) << "\"";
  o << ">\n";
  o << "    <properties>\n";
  o << "      <property name=\"outcome\" value=\"" << xml_escape(outcome) << "\"/>\n";
  o << "      <property name=\"exit_code\" value=\"" << report.value("exit_code", 0) << "\"/>\n";
  o << "      <property name=\"seed\" value=\"" << report.value("seed", 0) << "\"/>\n";
  o << "      <property name=\"syncstorm_version\" value=\"" << xml_escape(report.value("syncstorm_version", ""))
    << "\"/>\n";
  if (!report.value("run_dir", "").empty())
    o << "      <property name=\"run_dir\" value=\"" << xml_escape(report.value("run_dir", "")) << "\"/>\n";
  o << "    </properties>\n";
  for (const auto& v : verdicts) {
    std::string classname = name + "." + v.value("metric", "");
    if (!v.value("load", "").empty()) classname += "@" + v.value("load", "");
    o << "    <testcase name=\"" << xml_escape(v.value("name", "")) << "\" classname=\"" << xml_escape(classname)
      << "\" time=\"0\">\n";
    const std::string detail = verdict_detail(v);
    if (v.value("inconclusive", false)) {
      o << "      <skipped message=\"" << xml_escape("inconclusive: " + v.value("reason", "")) << "\"/>\n";
      o << "      <system-out>" << xml_escape(detail) << "</system-out>\n";
    } else if (!v.value("pass", false)) {
      std::string body = detail;
      if (!v.value("reason", "").empty()) body += "\n" + v.value("reason", "");
      o << "      <failure message=\"" << xml_escape(detail) << "\" type=\"sla\">" << xml_escape(body)
        << "</failure>\n";
    } else {
      std::string out = detail;
      if (v.value("warn", false))
        out = "warning: " + detail + ", warn bound " + num(field(v, "warn_bound")) + unit_suffix(v);
      o << "      <system-out>" << xml_escape(out) << "</system-out>\n";
    }
    o << "    </testcase>\n";
  }
  if (errored) {
    o << "    <testcase name=\"run\" classname=\"" << xml_escape(name) << "\" time=\"" << duration << "\">\n";
    o << "      <error message=\"" << xml_escape(outcome + ": " + report.value("reason", "")) << "\" type=\""
      << xml_escape(outcome) << "\"/>\n";
    o << "    </testcase>\n";
  }
  // The fault timeline, for whoever opens the suite in the CI's test view.
  std::ostringstream faults;
  for (const auto& f : report.value("faults", json::array())) {
    faults << "fault " << f.value("name", "") << " (" << f.value("kind", "") << "): applied "
           << num(field(f, "applied_at")) << " s, reverted " << num(field(f, "reverted_at")) << " s, recovery "
           << num(field(f, "recovery_s")) << " s";
    if (!f.value("error", "").empty()) faults << ", error: " << f.value("error", "");
    faults << "\n";
  }
  if (!faults.str().empty()) o << "    <system-out>" << xml_escape(faults.str()) << "</system-out>\n";
  o << "  </testsuite>\n</testsuites>\n";
  return o.str();
}

std::string summary_md(const json& report) {
  std::ostringstream o;
  const std::string name = scenario_name(report);
  const std::string outcome = report.value("outcome", "");
  const json verdicts = report.value("verdicts", json::array());
  std::size_t failed = 0, warned = 0, inconclusive = 0;
  for (const auto& v : verdicts) {
    std::string s = verdict_status(v);
    failed += s == "FAIL";
    warned += s == "WARN";
    inconclusive += s == "INCONCLUSIVE";
  }
  std::string mark = outcome == "pass" ? "✅" : outcome == "inconclusive" ? "❔" : "❌";
  o << "## " << mark << " syncstorm: " << md_cell(name) << " — " << outcome << "\n\n";
  o << verdicts.size() - failed - inconclusive << " of " << verdicts.size() << " rules held";
  if (failed) o << ", " << failed << " failed";
  if (warned) o << ", " << warned << " warned";
  if (inconclusive) o << ", " << inconclusive << " inconclusive";
  o << " (exit " << report.value("exit_code", 0) << ").";
  if (!report.value("reason", "").empty()) o << " " << md_cell(report.value("reason", ""));
  o << "\n\n";
  if (!verdicts.empty()) {
    o << "| verdict | rule | metric | window | value | bound |\n|---|---|---|---|---|---|\n";
    for (const auto& v : verdicts) {
      o << "| **" << verdict_status(v) << "** | " << md_cell(v.value("name", "")) << " | "
        << md_cell(v.value("metric", "") + " " + v.value("stat", ""))
        << (v.value("load", "").empty() ? "" : " @" + md_cell(v.value("load", ""))) << " | "
        << md_cell(v.value("window", "")) << " | " << value_text(v) << " | " << bound_text(v) << " |\n";
    }
    for (const auto& v : verdicts) {
      if (verdict_status(v) != "PASS" && !v.value("reason", "").empty())
        o << "\n- " << md_cell(v.value("name", "")) << ": " << md_cell(v.value("reason", ""));
    }
    o << "\n";
  }

  const json metrics = report.value("metrics", json::object());
  const json series = report.value("series", json::object());
  std::ostringstream timed, levels;
  const std::set<std::string> judged = writers_judged_metrics(report);
  for (const auto& [m, s] : metrics.items()) {
    if (!s.is_object() || !charted(m, series) || m.rfind("generator.", 0) == 0) continue;
    if (writers_hidden_server_level(m, judged, true)) continue;
    if (s.value("unit", "") == "ms") {
      double count = s.value("count", 0.0), errors = s.value("errors", 0.0);
      timed << "| " << md_cell(m) << " | " << num(count, 12) << " | " << num(errors, 12);
      if (count > 0) timed << " (" << num(100.0 * errors / count, 3) << "%)";
      timed << " | " << num(field(s, "p50")) << " ms | " << num(field(s, "p99")) << " ms | " << num(field(s, "max"))
            << " ms |\n";
    } else if (s.value("unit", "") == "value") {
      levels << "| " << md_cell(m) << " | " << num(field(s, "last")) << " | " << num(field(s, "peak")) << " |\n";
    }
  }
  if (!timed.str().empty() || !levels.str().empty()) o << "\n### Key figures\n";
  if (!timed.str().empty())
    o << "\n| metric | count | errors | p50 | p99 | max |\n|---|---|---|---|---|---|\n" << timed.str();
  if (!levels.str().empty()) o << "\n| level | last | peak |\n|---|---|---|\n" << levels.str();

  const json faults = report.value("faults", json::array());
  if (!faults.empty()) {
    o << "\n### Fault timeline\n\n| fault | kind | targets | scheduled | applied | reverted | recovery | ready | in flight |\n"
         "|---|---|---|---|---|---|---|---|---|\n";
    for (const auto& f : faults) {
      std::string targets;
      for (const auto& t : f.value("targets", json::array()))
        targets += (targets.empty() ? "" : ", ") +
                   (t.is_string() ? t.get<std::string>() : t.dump(-1, ' ', false, json::error_handler_t::replace));
      o << "| " << md_cell(f.value("name", "")) << " | " << md_cell(f.value("kind", "")) << " | " << md_cell(targets)
        << " | " << num(field(f, "scheduled_at")) << " s | " << num(field(f, "applied_at")) << " s | "
        << num(field(f, "reverted_at")) << " s | " << num(field(f, "recovery_s")) << " s | " << num(field(f, "ready_s"))
        << " s | " << num(field(f, "inflight_ops"), 12) << " |\n";
    }
    for (const auto& f : faults)
      if (!f.value("error", "").empty())
        o << "\n- " << md_cell(f.value("name", "")) << ": " << md_cell(f.value("error", ""));
    o << "\n";
  }
  const json audit = report.contains("audit") ? report["audit"] : json();
  if (audit.is_object()) {
    o << "\n### Audit\n\nacked " << num(field(audit, "acked"), 12) << ", present " << num(field(audit, "present"), 12)
      << ", lost **" << num(field(audit, "lost"), 12) << "**, duplicates " << num(field(audit, "duplicates"), 12)
      << ", in doubt " << num(field(audit, "in_doubt"), 12) << ", order violations "
      << num(field(audit, "order_violations"), 12) << ", diverged " << num(field(audit, "diverged"), 12);
    if (audit.contains("mismatched"))
      o << ", mismatched **" << num(field(audit, "mismatched"), 12) << "**, phantoms "
        << num(field(audit, "phantoms"), 12);
    if (audit.contains("fanout_mismatched"))
      o << ", deliveries unlike the stored change " << num(field(audit, "fanout_mismatched"), 12);
    o << ".\n";
    if (const json& mm = audit.contains("mismatched_ids") ? audit["mismatched_ids"] : json();
        mm.is_array() && !mm.empty()) {
      o << "\nMismatched (first " << mm.size() << "):";
      for (std::size_t i = 0; i < mm.size() && i < 10; ++i)
        o << (i ? "," : "") << " " << md_cell(mm[i].value("id", "")) << " (" << md_cell(mm[i].value("field", ""))
          << ")";
      o << (mm.size() > 10 ? ", …" : "") << "\n";
    }
    if (const std::string c = audit.value("convergence", ""); !c.empty() && c != "judged")
      o << "\nConvergence " << md_cell(c) << ".\n";
  }
  const json cap = report.contains("capture") ? report["capture"] : json();
  if (cap.is_object()) {
    std::string ifs;
    for (const auto& i : cap.value("interfaces", json::array())) ifs += (ifs.empty() ? "" : ", ") + i.value("name", "");
    const std::uint64_t dropped = cap.value("dropped", std::uint64_t{0});
    o << "\nCapture: " << num(field(cap, "packets"), 12) << " packets on " << md_cell(ifs) << ", "
      << (dropped ? "**" + std::to_string(dropped) + " dropped** (wire.* rules inconclusive)"
                  : std::string("none dropped"))
      << ", " << cap.value("files", json::array()).size() << " pcap files.\n";
  }
  const json g = report.value("generator", json::object());
  o << "\nGenerator: CPU " << num(g.value("cpu", json(0.0)), 3) << " cores, lag p99 " << num(field(g, "lag_p99"))
    << " ms" << (g.value("saturated", false) ? " — **saturated**: " + md_cell(g.value("reason", "")) : "") << ". Seed "
    << report.value("seed", 0) << ", " << report.value("started_at", "") << " to " << report.value("ended_at", "")
    << ".\n";
  return o.str();
}

std::string html(const json& report) {
  const std::string name = scenario_name(report);
  const std::string outcome = report.value("outcome", "");
  const json metrics = report.value("metrics", json::object());
  const json series = report.value("series", json::object());
  const json gauges = report.value("gauges", json::object());
  const json verdicts = report.value("verdicts", json::array());
  const json faults = report.value("faults", json::array());
  const json events = report.value("events", json::array());

  chart_frame frame;
  frame.t_end = report.value("duration_s", 0.0);
  for (const auto& [m, s] : series.items())
    for (const auto& row : s)
      if (row.is_array() && !row.empty() && row[0].is_number())
        frame.t_end = std::max(frame.t_end, row[0].get<double>() + 1);
  for (const auto& [m, s] : gauges.items())
    for (const auto& row : s)
      if (row.is_array() && !row.empty() && row[0].is_number())
        frame.t_end = std::max(frame.t_end, row[0].get<double>() + 1);
  if (frame.t_end <= 0) frame.t_end = 1;
  frame.t_end_run = report.value("duration_s", 0.0) > 0 ? report.value("duration_s", 0.0) : frame.t_end;
  frame.faults = fault_windows(report, frame.t_end);
  for (const auto& e : events) {
    double t = t_of(e);
    if (!std::isnan(t) && t >= 0 && is_lab_event(e))
      frame.marks.push_back({t, num(t) + " s: " + e.value("event", "") + " " + event_subject(e)});
  }

  std::ostringstream o;
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\"><title>syncstorm: "
    << xml_escape(name) << " (" << xml_escape(outcome)
    << ")</title><style>"
       "body{font:14px/1.4 system-ui,'DejaVu Sans',sans-serif;margin:24px;color:#1b1f24;max-width:920px}"
       "h1{font-size:20px}h2{font-size:16px;margin-top:28px;border-bottom:1px solid #d8dee4}"
       "table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #d8dee4;padding:4px 8px;text-align:left}"
       "th{background:#f6f8fa}.PASS{color:#1a7f37;font-weight:600}.FAIL{color:#cf222e;font-weight:600}"
       ".WARN{color:#9a6700;font-weight:600}.INCONCLUSIVE{color:#8250df;font-weight:600}"
       "tr.FAILROW{background:#ffebe9}"
       ".badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff}"
       ".pass{background:#1a7f37}.fail,.error,.aborted{background:#cf222e}.inconclusive{background:#8250df}"
       ".headline{font-size:15px;padding:8px 12px;border-left:4px solid #d8dee4;background:#f6f8fa}"
       ".headline.bad{border-color:#cf222e}.headline.good{border-color:#1a7f37}"
       ".chart{display:block;margin:10px 0}.ct{font-weight:600;font-size:12px}.ax{font-size:10px;fill:#57606a}"
       ".ln{font-size:11px;fill:#1b1f24}.bt{font-size:10px;fill:#1b1f24}.fl{font-size:10px;fill:#a40e26}"
       ".grid{stroke:#eaeef2}.fault{fill:#cf222e;opacity:.13}.fbar{fill:#cf222e;opacity:.55}.phase{fill:#0969da;opacity:.25}"
       ".mark{stroke:#57606a;stroke-dasharray:2 3;opacity:.6}.bound{stroke:#cf222e;stroke-dasharray:6 4}.bl{font-size:10px;fill:#cf222e}"
       "details{margin:8px 0}summary{cursor:pointer;color:#0969da}"
       "</style></head><body>";
  o << "<h1>" << xml_escape(name) << " <span class=\"badge " << xml_escape(outcome) << "\">" << xml_escape(outcome)
    << "</span></h1>";
  o << "<p>" << xml_escape(report.value("started_at", "")) << " → " << xml_escape(report.value("ended_at", "")) << " · "
    << num(report.value("duration_s", 0.0), 4) << " s · seed " << report.value("seed", 0) << " · exit "
    << report.value("exit_code", 0) << " · syncstorm " << xml_escape(report.value("syncstorm_version", "")) << "</p>";

  // The headline: what broke, in words, before any number.
  std::vector<std::string> broke;
  for (const auto& v : verdicts)
    if (verdict_status(v) == "FAIL") broke.push_back(v.value("name", "") + " (" + verdict_detail(v) + ")");
  o << "<p id=\"headline\" class=\"headline " << (outcome == "pass" ? "good" : "bad") << "\">";
  if (!broke.empty()) {
    o << "<b>" << broke.size() << " of " << verdicts.size() << " rules failed:</b> ";
    for (std::size_t i = 0; i < broke.size(); ++i) o << (i ? "; " : "") << xml_escape(broke[i]);
    o << ".";
  } else if (outcome == "pass") {
    o << "<b>All " << verdicts.size() << " rules held.</b>";
  } else {
    o << "<b>" << xml_escape(outcome) << "</b>";
  }
  if (!report.value("reason", "").empty()) o << " " << xml_escape(report.value("reason", ""));
  if (!frame.faults.empty()) {
    o << " Faults: ";
    for (std::size_t i = 0; i < frame.faults.size(); ++i)
      o << (i ? ", " : "") << xml_escape(frame.faults[i].name) << " at " << num(frame.faults[i].from, 3) << " s";
    o << ".";
  }
  o << "</p>";

  o << "<h2>Verdicts</h2><table id=\"verdicts\"><tr><th>verdict</th><th>rule</th><th>metric</th><th>window</th><th>value</th><th>bound</th></tr>";
  for (const auto& v : verdicts) {
    std::string st = verdict_status(v);
    o << "<tr" << (st == "FAIL" ? " class=\"FAILROW\"" : "") << "><td class=\"" << st << "\" title=\""
      << xml_escape(v.value("reason", "")) << "\">" << st << "</td><td>" << xml_escape(v.value("name", ""))
      << "</td><td>"
      << xml_escape(v.value("metric", "") + " " + v.value("stat", "") +
                    (v.value("load", "").empty() ? "" : " @" + v.value("load", "")))
      << "</td><td>" << xml_escape(v.value("window", "")) << "</td><td>" << xml_escape(value_text(v)) << "</td><td>"
      << xml_escape(bound_text(v)) << "</td></tr>";
  }
  if (verdicts.empty()) o << "<tr><td colspan=\"6\">no rules</td></tr>";
  o << "</table>";

  // Timeline: lanes, then the exact list.
  std::string lanes = svg_timeline(report, frame);
  if (!lanes.empty() || !events.empty()) {
    o << "<h2>Timeline</h2>" << lanes;
    std::vector<std::pair<double, std::string>> rows;
    for (const auto& f : faults) {
      if (field(f, "applied_at").is_number())
        rows.emplace_back(f["applied_at"].get<double>(),
                          "fault " + f.value("name", "") + " (" + f.value("kind", "") + ") applied");
      if (field(f, "reverted_at").is_number())
        rows.emplace_back(f["reverted_at"].get<double>(), "fault " + f.value("name", "") + " reverted");
    }
    for (const auto& e : events) {
      double t = t_of(e);
      if (!std::isnan(t)) rows.emplace_back(t, e.value("event", "") + " " + event_subject(e));
    }
    std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    o << "<details><summary>" << rows.size()
      << " events</summary><table id=\"timeline\"><tr><th>t (s)</th><th>what</th></tr>";
    for (const auto& [t, what] : rows) o << "<tr><td>" << num(t, 4) << "</td><td>" << xml_escape(what) << "</td></tr>";
    o << "</table></details>";
  }

  // Charts: per metric latency (p50/p99, the rules' bounds drawn) and throughput/errors; then levels.
  std::vector<std::string> names;
  for (const auto& [m, s] : series.items())
    if (s.is_array() && !s.empty() && charted(m, series) && m.rfind("wire.", 0) != 0) names.push_back(m);
  std::stable_sort(names.begin(), names.end(),
                   [](const std::string& a, const std::string& b) { return chart_rank(a) < chart_rank(b); });
  std::ostringstream charts;
  const std::string wire = wire_section(report, frame);
  for (const auto& m : names) {
    const json& s = series[m];
    const bool time_metric = metrics.contains(m) && metrics[m].is_object() && metrics[m].value("unit", "") == "ms";
    std::vector<line> lat{{"p50", "#0969da", {}, false}, {"p99", "#cf222e", {}, false}};
    std::vector<line> thr{{"ok/s", "#1a7f37", {}, false}, {"errors/s", "#cf222e", {}, false}};
    for (const auto& row : s) {
      if (!row.is_array() || row.size() < 6 || !row[0].is_number()) continue;
      double t = row[0].get<double>();
      double count = row[1].get<double>(), errors = row[2].get<double>();
      // The run's last, partial second would read as a collapse of throughput.
      if (t + 1 <= frame.t_end_run + 1e-6) {
        thr[0].points.emplace_back(t, count - errors);
        thr[1].points.emplace_back(t, errors);
      }
      if (time_metric && row[3].is_number()) {
        lat[0].points.emplace_back(t, row[3].get<double>());
        lat[1].points.emplace_back(t, row[4].get<double>());
      }
    }
    std::ostringstream& out = charts;
    if (time_metric) {
      std::vector<hline> bounds;
      const std::string base = m.substr(0, m.find('@'));
      for (const auto& v : verdicts) {
        if (v.value("metric", "") != base || v.value("unit", "") != "ms" || !field(v, "bound").is_number()) continue;
        bounds.push_back(
            {v.value("name", "") + ": " + v.value("stat", "") + " " + bound_text(v), v["bound"].get<double>()});
      }
      out << svg_chart("chart-" + slug(m) + "-latency", "latency", m + " latency per second", "ms", lat, frame, bounds);
    }
    // Throughput once per model: http.requests carries http.latency's counts.
    const std::string base = m.substr(0, m.find('@'));
    const std::string suffix = m.find('@') == std::string::npos ? "" : m.substr(m.find('@'));
    if (base.rfind("generator.", 0) != 0 &&
        (base.ends_with(".requests") || !series.contains(base.substr(0, base.rfind('.')) + ".requests" + suffix)))
      out << svg_chart("chart-" + slug(m) + "-throughput", "throughput", m + " throughput and errors", "per second",
                       thr, frame);
  }
  std::ostringstream levels;
  const std::set<std::string> judged = writers_judged_metrics(report);
  for (const auto& [g, rows] : gauges.items()) {
    if (!rows.is_array() || rows.empty()) continue;
    if (writers_hidden_server_level(g, judged, true)) continue;
    line l{g, g.rfind("ws.", 0) == 0 ? "#8250df" : "#0969da", {}, true};
    for (const auto& row : rows)
      if (row.is_array() && row.size() >= 2 && row[0].is_number() && row[1].is_number())
        l.points.emplace_back(row[0].get<double>(), row[1].get<double>());
    std::string title = g == "queue.depth"    ? "queue.depth: ops queued on the terminals"
                        : g == "ws.connected" ? "ws.connected: open WebSocket subscribers"
                                              : g;
    levels << svg_chart("chart-" + slug(g) + "-level", "level", title, "value", {l}, frame);
  }
  o << "<h2>Charts</h2>";
  if (charts.str().empty() && levels.str().empty()) o << "<p>No series recorded.</p>";
  o << "<p class=\"ax\">Shaded: fault windows. Dotted: pod, database and load balancer events. Dashed red: a rule's bound.</p>";
  o << charts.str();
  // What the network saw, under the latency it explains.
  o << wire;
  if (!levels.str().empty()) o << "<h2>Levels</h2>" << levels.str();

  if (!faults.empty()) {
    o << "<h2>Faults</h2><table id=\"faults\"><tr><th>fault</th><th>kind</th><th>targets</th><th>scheduled</th><th>applied</th>"
         "<th>reverted</th><th>recovery</th><th>ready</th><th>detect</th><th>in flight</th></tr>";
    for (const auto& f : faults) {
      std::string targets;
      for (const auto& t : f.value("targets", json::array()))
        targets += (targets.empty() ? "" : ", ") +
                   (t.is_string() ? t.get<std::string>() : t.dump(-1, ' ', false, json::error_handler_t::replace));
      o << "<tr><td>" << xml_escape(f.value("name", "")) << "</td><td>" << xml_escape(f.value("kind", ""))
        << "</td><td>" << xml_escape(targets) << "</td><td>" << num(field(f, "scheduled_at")) << "</td><td>"
        << num(field(f, "applied_at")) << "</td><td>" << num(field(f, "reverted_at")) << "</td><td>"
        << num(field(f, "recovery_s")) << "</td><td>" << num(field(f, "ready_s")) << "</td><td>"
        << num(field(f, "detect_s")) << "</td><td>" << num(field(f, "inflight_ops"), 12) << "</td></tr>";
      if (!f.value("error", "").empty())
        o << "<tr class=\"FAILROW\"><td colspan=\"10\">" << xml_escape(f.value("error", "")) << "</td></tr>";
    }
    o << "</table><p class=\"ax\">Times in seconds from the run's start; recovery, ready and detect in seconds after the fault.</p>";
  }
  const json audit = report.contains("audit") ? report["audit"] : json();
  if (audit.is_object()) {
    o << "<h2>Audit</h2><table id=\"audit\"><tr>";
    for (const char* k : {"acked", "present", "lost", "duplicates", "in_doubt", "order_violations", "diverged",
                          "mismatched", "phantoms"})
      o << "<th>" << k << "</th>";
    o << "</tr><tr>";
    for (const char* k : {"acked", "present", "lost", "duplicates", "in_doubt", "order_violations", "diverged",
                          "mismatched", "phantoms"}) {
      bool bad = std::string(k) != "acked" && std::string(k) != "present" && std::string(k) != "in_doubt" &&
                 field(audit, k).is_number() && audit[k].get<double>() > 0;
      o << "<td" << (bad ? " class=\"FAIL\"" : "") << ">" << num(field(audit, k), 12) << "</td>";
    }
    o << "</tr></table>";
    if (const json& mm = audit.contains("mismatched_ids") ? audit["mismatched_ids"] : json();
        mm.is_array() && !mm.empty()) {
      o << "<p class=\"ax\">Mismatched (first " << mm.size() << "):";
      for (std::size_t i = 0; i < mm.size() && i < 10; ++i)
        o << (i ? "," : "") << " " << xml_escape(mm[i].value("id", "")) << " (" << xml_escape(mm[i].value("field", ""))
          << ")";
      o << (mm.size() > 10 ? ", …" : "") << "</p>";
    }
    if (const std::string c = audit.value("convergence", ""); !c.empty() && c != "judged")
      o << "<p class=\"ax\">Convergence " << xml_escape(c) << ".</p>";
  }
  o << "<h2>Metrics</h2><table id=\"metrics\"><tr><th>metric</th><th>count</th><th>errors</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th></tr>";
  for (const auto& [m, s] : metrics.items()) {
    if (!s.is_object() || writers_hidden_server_level(m, {}, false)) continue;
    if (s.value("unit", "") == "value") {
      o << "<tr><td>" << xml_escape(m) << "</td><td colspan=\"6\">last " << num(field(s, "last")) << " · peak "
        << num(field(s, "peak")) << "</td></tr>";
      continue;
    }
    std::string u = s.value("unit", "") == "ms" ? " ms" : "";
    o << "<tr><td>" << xml_escape(m) << "</td><td>" << num(s.value("count", json(0)), 12) << "</td><td>"
      << num(s.value("errors", json(0)), 12) << "</td><td>" << num(field(s, "p50")) << u << "</td><td>"
      << num(field(s, "p99")) << u << "</td><td>" << num(field(s, "p99_9")) << u << "</td><td>" << num(field(s, "max"))
      << u << "</td></tr>";
  }
  o << "</table>";
  const json g = report.value("generator", json::object());
  o << "<h2>Generator</h2><p>CPU " << num(g.value("cpu", json(0.0)), 3) << " cores · lag p99 "
    << num(field(g, "lag_p99")) << " ms · "
    << (g.value("saturated", false) ? "<b>saturated</b>: " + xml_escape(g.value("reason", ""))
                                    : std::string("not saturated"))
    << "</p>";
  o << "</body></html>\n";
  return o.str();
}

void write_all(const std::string& run_dir, const json& report) {
  std::filesystem::path d(run_dir);
  // Invalid UTF-8 replaced, never thrown: the report is written whatever a server sent.
  write_file(d / "report.json", report.dump(2, ' ', false, json::error_handler_t::replace) + "\n");
  write_file(d / "junit.xml", junit_xml(report));
  write_file(d / "summary.md", summary_md(report));
  write_file(d / "report.html", html(report));
}

std::string verdict_status(const json& v) {
  if (v.value("inconclusive", false)) return "INCONCLUSIVE";
  if (!v.value("pass", false)) return "FAIL";
  if (v.value("warn", false)) return "WARN";
  return "PASS";
}

}  // namespace syncstorm::reports
