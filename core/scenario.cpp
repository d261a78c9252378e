// The §9 scenario: its spec tree, the built-in load models and fault kinds with their keys,
// cross-reference checks, --set, time scaling and the typed result. See scenario.hpp.
#include "core/scenario.hpp"

#include "core/json_limits.hpp"
#include "core/redact.hpp"

#include "core/units.hpp"
#include "capture/wire_series.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

namespace syncstorm {
namespace {

using namespace spec;

const char* const name_pattern = R"(^[A-Za-z0-9][A-Za-z0-9_.-]*$)";
const char* const name_expect = "a name of letters, digits, '_', '.' or '-'";
const char* const env_ref_pattern = R"(\$\{env:([A-Za-z_][A-Za-z0-9_]*)\})";
const char* const bug_pattern =
    R"(^((ack-before-commit|dup-apply|fanout-reorder|fanout-stale-replay|(drop-every|dup-every|corrupt-every|slow-ack|fanout-skip-every)=[1-9][0-9]*)(,|$))+$)";
const char* const stat_pattern = R"(^(p(100|[0-9]{1,2}(\.[0-9]+)?)|max|min|mean|rate|count|ratio)$)";
const char* const window_pattern =
    R"(^(all|steady|(during|after):[A-Za-z0-9][A-Za-z0-9_.-]*|phase:[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*)$)";

node_ptr name_node(std::string doc) { return spec::string(std::move(doc), name_pattern, name_expect); }

// A rule bound: a number, a duration ("100ms") or a percentage ("99.9%").
node_ptr bound_node(std::string doc) {
  return choice(std::move(doc),
                {number("a count, rate or percentage"), duration("a time bound"),
                 spec::string("a percentage", R"(^[0-9]+(\.[0-9]+)?%$)")},
                "a number, a duration like \"100ms\" or a percentage like \"99.9%\"");
}

std::vector<metric_info> builtin_core_metrics() {
  return {{"availability.attempts", metric_unit::count, "share of push attempts that succeeded"},
          {"availability.ops", metric_unit::count, "share of ops eventually acknowledged"},
          {"outage.max", metric_unit::time, "longest client-visible outage"},
          {"generator.lag", metric_unit::time, "intended vs actual send"},
          {"audit.lost", metric_unit::count, "acknowledged ops absent"},
          {"audit.duplicates", metric_unit::count, "ops stored more than once"},
          {"audit.in_doubt", metric_unit::count, "ops sent but never acknowledged"},
          {"audit.order_violations", metric_unit::count, "ops stored out of their stream order"},
          {"audit.diverged", metric_unit::count, "counters or views that differ from the acknowledged history"},
          {"audit.mismatched", metric_unit::count, "acknowledged ops stored with other fields or payload than sent"},
          {"audit.phantoms", metric_unit::count, "stored values no client wrote"},
          {"audit.lost_age", metric_unit::time, "RPO as an age: run end minus the creation of the oldest lost op"}};
}

node_ptr target_node() {
  auto lab = object(
      "the embedded reference stack (syncstorm lab)",
      {opt("id",
           spec::string("use the running lab with this id (syncstorm lab up --id): the run neither starts nor stops it",
                        "^[a-z0-9]{1,8}$", "a lab id like \"gameday\" (1-8 of a-z, 0-9)")),
       opt("pods", integer("syncd pods", 1, 64)), opt("replica", boolean("a synchronous streaming replica")),
       opt("db_volume", size("put the data directory on a tmpfs of this size")),
       opt("restart_delay", duration("supervisor delay before restarting a dead pod")),
       opt("bug", spec::string("syncd bug modes, comma-separated", bug_pattern,
                               "bug modes like \"drop-every=10\" or \"ack-before-commit\"")),
       opt("keep", boolean("leave the lab up after the run")),
       opt("health",
           object("HAProxy health checks on /readyz",
                  {opt("interval", duration("check interval")), opt("fall", integer("failures to mark down", 1, 100)),
                   opt("rise", integer("successes to mark up", 1, 100))}))});
  auto endpoints =
      object("a stack you run", {opt("http", spec::string("base URL", "^https?://.+", "an http:// or https:// URL")),
                                 opt("ws", spec::string("WebSocket base URL", "^wss?://.+", "a ws:// or wss:// URL"))});
  auto tls =
      object("TLS toward the target",
             {opt("ca_file", spec::string("CA bundle")), opt("cert_file", spec::string("client certificate")),
              opt("key_file", spec::string("client key")), opt("server_name", spec::string("SNI and verified name")),
              opt("verify", boolean("verify the server (default true)"))});
  auto audit = object("how the audit reads data back",
                      {opt("via", enumeration("through the API or straight from PostgreSQL", {"api", "sql"})),
                       opt("dsn", spec::string("PostgreSQL DSN; may hold ${env:NAME}")),
                       opt("timeout", duration("each request or statement's deadline (default 10s)")),
                       opt("retries", integer("extra attempts on a transient failure (default 5)", 0, 100))});
  auto proxy = object(
      "put the run's fault proxy in front of the endpoints (network faults with path clients-endpoints act on it)",
      {opt("listen", spec::string("the address it listens on (default 127.0.0.1; ports are chosen free)",
                                  "^[0-9.]+$|^[0-9a-fA-F:]+$", "an IP address like \"127.0.0.1\""))});
  auto metrics = object(
      "the target's own metrics, scraped during the run into server.* (rules, report.json, charts)",
      {opt("every", duration("scrape interval (default 1s)")),
       opt("endpoints",
           array("Prometheus text endpoints of your stack",
                 object("one endpoint", {req("name", spec::string("the instance name (server.<metric>@<name>)",
                                                                  "^[A-Za-z0-9_.-]{1,64}$",
                                                                  "a name of 1-64 letters, digits, '_', '.' or '-'")),
                                         req("url", spec::string("the URL to GET; may hold ${env:NAME}", "^https?://.+",
                                                                 "an http:// or https:// URL"))}))),
       opt("lab", boolean("with a lab target: scrape its syncd pods, PostgreSQL replication and HAProxy backend "
                          "(default true)"))});
  auto t = object("what the run targets",
                  {opt("lab", lab), opt("endpoints", endpoints), opt("proxy", proxy),
                   opt("headers", string_map("headers on every request; values may hold ${env:NAME}")), opt("tls", tls),
                   opt("profile", any("protocol profile (paths, templates, JSON pointers)")), opt("audit", audit),
                   opt("metrics", metrics)});
  return with(t, [](node& n) { n.exactly_one = {{"lab", "endpoints"}}; });
}

node_ptr fault_target_node() {
  auto pick =
      choice("which of the matched targets",
             {enumeration("a pick", {"one", "all", "random"}), object("n targets", {req("n", integer("how many", 1))}),
              object("a share of targets", {req("percent", percent("share"))})},
             "\"one\", \"all\", \"random\", {\"n\": N} or {\"percent\": P}");
  auto t =
      object("what the fault acts on",
             {opt("pods", choice("lab pods",
                                 {spec::string("a glob like \"pod-*\""), array("pod names", spec::string("a name"), 1)},
                                 "a glob or an array of pod names")),
              opt("role", enumeration("a role", {"db-primary", "db-replica", "lb", "clients"})),
              opt("pid", integer("a process id", 1)), opt("pidfile", spec::string("a pid file")),
              opt("container", spec::string("a docker container")),
              opt("selector", object("kubernetes pods", {opt("namespace", spec::string("namespace")),
                                                         opt("context", spec::string("kubectl context")),
                                                         req("labels", string_map("label selector"))})),
              opt("pick", pick), opt("restart", boolean("restart after a kill (default true)"))});
  return with(t, [](node& n) { n.exactly_one = {{"pods", "role", "pid", "pidfile", "container", "selector"}}; });
}

node_ptr rule_fields_node(bool abort) {
  std::vector<field> f = {
      req("name", name_node("rule name")),
      abort ? opt("metric", spec::string("a metric name")) : req("metric", spec::string("a metric name")),
      opt("stat", spec::string("p50 … p99.99, max, min, mean, rate, count, ratio", stat_pattern,
                               "a stat: p50, p99, p99.9, max, min, mean, rate, count or ratio")),
      opt("max", bound_node("upper bound")),
      opt("min", bound_node("lower bound")),
      opt("for", duration("the bound must be broken this long to fail")),
      opt("window", spec::string("all, steady, during:<fault>, after:<fault>, phase:<load>/<phase>", window_pattern,
                                 "a window: all, steady, during:<fault>, after:<fault> or phase:<load>/<phase>")),
      opt("load", spec::string("only this load entry's samples (on a server.* metric: one instance)")),
      opt("across", enumeration("on a server.* metric: how the instances combine at each scrape (default max)",
                                {"max", "min", "sum", "mean"}))};
  if (abort) {
    f.push_back(
        opt("probe", object("an external HTTP health probe",
                            {req("url", spec::string("URL", "^https?://.+", "an http:// or https:// URL")),
                             opt("every", duration("probe interval")), opt("timeout", duration("probe timeout")),
                             opt("fail_after", integer("consecutive failures that abort", 1))})));
  } else {
    f.push_back(opt("warn", bound_node("a softer bound reported as a warning")));
  }
  auto n = object(abort ? "an abort condition" : "an SLA rule", f);
  return with(n, [abort](node& x) {
    if (abort) {
      x.exactly_one = {{"metric", "probe"}};
      x.at_most_one = {{"probe", "max"}, {"probe", "min"}};
    } else {
      x.at_least_one = {{"max", "min"}};
      x.fields[2].required = true;  // stat
    }
  });
}

void check_env_refs(const json& v, const std::string& path, bool require_env, errors& out) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    std::size_t pos = 0;
    while ((pos = s.find("${", pos)) != std::string::npos) {
      std::size_t end = s.find('}', pos);
      std::string ref = end == std::string::npos ? s.substr(pos) : s.substr(pos, end - pos + 1);
      std::smatch m;
      if (!std::regex_match(ref, m, std::regex(env_ref_pattern))) {
        out.push_back(path + ": found " + json(ref).dump() + "; expected a reference like \"${env:NAME}\"");
      } else if (require_env && std::getenv(m[1].str().c_str()) == nullptr) {
        out.push_back(path + ": found " + json(ref).dump() + " but " + m[1].str() +
                      " is not set; expected the environment variable to be set");
      }
      pos = end == std::string::npos ? s.size() : end + 1;
    }
  } else if (v.is_object()) {
    for (auto it = v.begin(); it != v.end(); ++it) check_env_refs(it.value(), path + "." + it.key(), require_env, out);
  } else if (v.is_array()) {
    for (std::size_t i = 0; i < v.size(); ++i)
      check_env_refs(v[i], path + "[" + std::to_string(i) + "]", require_env, out);
  }
}

std::string str_or(const json& o, const char* key, std::string def = {}) {
  return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : def;
}

reference_context reference_context_of(const json& doc) {
  reference_context c;
  c.doc = &doc;
  const json none = json::object();
  const json& t = doc.contains("target") && doc["target"].is_object() ? doc["target"] : none;
  c.lab = t.contains("lab");
  c.attached = c.lab && t["lab"].is_object() && t["lab"].contains("id");
  c.replica = c.lab && t["lab"].is_object() && t["lab"].value("replica", false);
  c.endpoints = t.contains("endpoints") && t["endpoints"].is_object();
  c.proxied = t.contains("proxy");
  c.http_endpoint = c.endpoints ? str_or(t["endpoints"], "http") : std::string();
  return c;
}

// Cross-references and rules the shape can't state. Runs only on a document whose shape held.
void check_references(const json& doc, errors& out) {
  const reference_context ctx = reference_context_of(doc);
  std::set<std::string> loads, faults, phases;
  std::map<std::string, std::set<std::string>> phase_names;
  std::int64_t duration = doc.contains("duration") ? duration_us(doc["duration"]) : 0;
  std::int64_t longest_load = 0;
  if (doc.contains("load")) {
    for (std::size_t i = 0; i < doc["load"].size(); ++i) {
      const json& l = doc["load"][i];
      std::string p = "scenario.load[" + std::to_string(i) + "]";
      std::string n = str_or(l, "name");
      if (!loads.insert(n).second)
        out.push_back(p + ".name: found " + json(n).dump() + " again; expected a name unique among load entries");
      std::int64_t total = 0;
      const load_model_info* model = scenario_registry::instance().find_model(str_or(l, "model"));
      for (std::size_t j = 0; j < l["phases"].size(); ++j) {
        const json& ph = l["phases"][j];
        std::string pp = p + ".phases[" + std::to_string(j) + "]";
        std::string pn = str_or(ph, "name");
        if (!phase_names[n].insert(pn).second)
          out.push_back(pp + ".name: found " + json(pn).dump() + " again; expected a phase name unique within " + n);
        total += duration_us(ph["for"]);
        const bool needs_rate = model && model->phase_needs_rate && model->phase_needs_rate(l);
        if (needs_rate && !ph.contains("rate") && !ph.contains("to")) {
          out.push_back(pp + ": found neither \"rate\" nor \"to\"; expected a rate for this phase (the " +
                        l["model"].get<std::string>() + " model is open)");
        }
      }
      longest_load = std::max(longest_load, total);
      if (duration && total > duration) {
        out.push_back(p + ".phases: found " + units::format_duration(total) +
                      " of phases; expected at most the run's duration (" + units::format_duration(duration) + ")");
      }
      if (model && model->check) model->check(l, ctx, p, out);
    }
  }
  std::int64_t run_us = duration ? duration : longest_load;
  // target.lab.id: the run uses a lab that is already up; the options that describe a lab to
  // start are that lab's own (set by `lab up`), so none may stand beside the id.
  if (ctx.attached) {
    for (auto& [k, v] : doc["target"]["lab"].items()) {
      if (k == "id") continue;
      out.push_back("scenario.target.lab." + k + ": found " + v.dump() +
                    " beside \"id\"; expected only \"id\" (the run uses the running lab " +
                    doc["target"]["lab"]["id"].dump() + " as it is; its options were set by `syncstorm lab up`)");
    }
  }
  reference_context fctx = ctx;
  fctx.run_us = run_us;
  if (ctx.proxied && !ctx.endpoints)
    out.push_back(
        "scenario.target.proxy: found it without target.endpoints; expected target.endpoints (the proxy goes in front of them; a lab has its own on every path)");
  if (doc.contains("faults")) {
    for (std::size_t i = 0; i < doc["faults"].size(); ++i) {
      const json& f = doc["faults"][i];
      std::string p = "scenario.faults[" + std::to_string(i) + "]";
      std::string n = str_or(f, "name");
      if (!faults.insert(n).second)
        out.push_back(p + ".name: found " + json(n).dump() + " again; expected a name unique among faults");
      std::string kind = str_or(f, "kind");
      const auto& kinds = scenario_registry::instance().fault_kinds();
      auto k = std::find_if(kinds.begin(), kinds.end(), [&](auto& x) { return x.name == kind; });
      if (k != kinds.end() && k->needs_target && !f.contains("target")) {
        out.push_back(p + ".target: found nothing; expected a target for a " + kind +
                      " fault (pods, role, pid, pidfile, container or selector)");
      }
      if (f.contains("target") && f["target"].contains("selector") && f["target"]["selector"].is_object() &&
          f["target"]["selector"].contains("labels") && f["target"]["selector"]["labels"].is_object() &&
          f["target"]["selector"]["labels"].empty()) {
        // `-l ""` selects every pod of the namespace; a rolling restart would restart every deployment.
        out.push_back(
            p +
            ".target.selector.labels: found {}; expected at least one label (an empty selector matches every pod of the namespace)");
      }
      if ((f.contains("count") || f.contains("jitter")) && !f.contains("every")) {
        out.push_back(p + ": found " + std::string(f.contains("count") ? "\"count\"" : "\"jitter\"") +
                      " without \"every\"; expected \"every\" with it");
      }
      std::int64_t at = duration_us(f["at"]);
      if (run_us && at >= run_us) {
        out.push_back(p + ".at: found " + json(f["at"]).dump() + "; expected a time within the run (" +
                      units::format_duration(run_us) + ")");
      }
      if (k != kinds.end() && k->check) k->check(f, fctx, p, out);
    }
  }
  auto check_rule = [&](const json& r, const std::string& p) {
    if (r.contains("window")) {
      std::string w = r["window"].get<std::string>();
      if (w.starts_with("during:") || w.starts_with("after:")) {
        std::string f = w.substr(w.find(':') + 1);
        if (!faults.count(f)) {
          std::vector<std::string> names(faults.begin(), faults.end());
          std::string msg = p + ".window: found " + json(w).dump() + " but no fault is named " + json(f).dump() +
                            "; expected one of the faults: " + (names.empty() ? std::string("(none)") : [&] {
                              std::string s;
                              for (auto& x : names) s += (s.empty() ? "" : ", ") + x;
                              return s;
                            }());
          auto hint = did_you_mean(f, names);
          if (!hint.empty()) msg += " (did you mean " + json(hint).dump() + "?)";
          out.push_back(msg);
        }
      } else if (w.starts_with("phase:")) {
        std::string rest = w.substr(6);
        std::string ln = rest.substr(0, rest.find('/')), pn = rest.substr(rest.find('/') + 1);
        if (!loads.count(ln))
          out.push_back(p + ".window: found " + json(w).dump() + " but no load entry is named " + json(ln).dump() +
                        "; expected phase:<load>/<phase>");
        else if (!phase_names[ln].count(pn))
          out.push_back(p + ".window: found " + json(w).dump() + " but " + ln + " has no phase " + json(pn).dump() +
                        "; expected phase:<load>/<phase>");
      }
    }
    // On a server.* metric `load` names the instance the rule reads (a pod, db-replica, or a
    // target.metrics.endpoints name), which only the run knows.
    const bool server_metric =
        r.contains("metric") && r["metric"].is_string() && r["metric"].get<std::string>().starts_with("server.");
    if (r.contains("load") && !server_metric && !loads.count(r["load"].get<std::string>())) {
      out.push_back(p + ".load: found " + r["load"].dump() + "; expected the name of a load entry");
    }
    if (!r.contains("metric")) return;
    std::string m = r["metric"].get<std::string>();
    auto info = metric_lookup(doc, m);
    if (!info) {
      auto names = known_metrics(doc);
      std::string list;
      for (auto& x : names) list += (list.empty() ? "" : ", ") + x;
      std::string msg = p + ".metric: found " + json(m).dump() + "; expected a metric of this scenario: " + list;
      auto hint = did_you_mean(m, names);
      if (!hint.empty()) msg += " (did you mean " + json(hint).dump() + "?)";
      if (m.starts_with("server.")) msg += " (server.* metrics are scraped from the target: set target.metrics)";
      out.push_back(msg);
      return;
    }
    std::string stat = str_or(r, "stat");
    if (r.contains("across") && !m.starts_with("server.")) {
      out.push_back(p + ".across: found " + r["across"].dump() + " on " + json(m).dump() +
                    "; expected it only on a server.* metric (the instances of a scraped series)");
      return;
    }
    if (r.contains("across") && r.contains("load")) {
      out.push_back(p + ".across: found it beside load " + r["load"].dump() +
                    "; expected one of them (load reads one instance, across combines them all)");
      return;
    }
    if (m.starts_with("server.") && stat != "max" && stat != "min") {
      out.push_back(p + ".stat: found " + json(stat).dump() + "; expected \"max\" or \"min\" (" + m +
                    " is a scraped level: a rule reads its highest or lowest value in the window)");
      return;
    }
    bool time_stat = info->unit == metric_unit::time && stat != "count" && stat != "rate" && stat != "ratio";
    for (const char* key : {"max", "min", "warn"}) {
      if (!r.contains(key)) continue;
      const json& b = r[key];
      bool is_duration = b.is_string() && !b.get<std::string>().ends_with("%");
      bool is_percent = b.is_string() && b.get<std::string>().ends_with("%");
      if (time_stat && !is_duration) {
        out.push_back(p + "." + key + ": found " + b.dump() + "; expected a duration like \"100ms\" (" + m + " " +
                      stat + " is a time)");
      } else if (!time_stat && is_duration) {
        out.push_back(p + "." + key + ": found " + b.dump() + "; expected a number" +
                      (stat == "ratio" ? " or a percentage like \"99.9%\"" : "") + " (" + m + " " + stat +
                      " is not a time)");
      } else if (is_percent && stat != "ratio") {
        out.push_back(p + "." + key + ": found " + b.dump() +
                      "; expected a number (a percentage fits only stat \"ratio\")");
      }
    }
  };
  std::set<std::string> rules;
  if (doc.contains("slas")) {
    for (std::size_t i = 0; i < doc["slas"].size(); ++i) {
      std::string p = "scenario.slas[" + std::to_string(i) + "]";
      std::string n = str_or(doc["slas"][i], "name");
      if (!rules.insert(n).second)
        out.push_back(p + ".name: found " + json(n).dump() + " again; expected a name unique among rules");
      check_rule(doc["slas"][i], p);
    }
  }
  if (doc.contains("abort")) {
    for (std::size_t i = 0; i < doc["abort"].size(); ++i) {
      const json& a = doc["abort"][i];
      std::string p = "scenario.abort[" + std::to_string(i) + "]";
      if (a.contains("metric") && !a.contains("stat"))
        out.push_back(p + ".stat: found nothing; expected a stat for a metric condition");
      if (a.contains("metric") && !a.contains("max") && !a.contains("min"))
        out.push_back(p + ": found none of them; expected at least one of \"max\", \"min\"");
      check_rule(a, p);
    }
  }
  if (doc.contains("capture") && doc["capture"].is_object()) {
    const json& c = doc["capture"];
    if (!ctx.lab && (!c.contains("interfaces") || c["interfaces"].is_string())) {
      out.push_back("scenario.capture.interfaces: found " +
                    (c.contains("interfaces") ? c["interfaces"].dump() : std::string("nothing")) +
                    " but the target is not a lab; expected interface names like [\"lo\"]");
    }
    if (c.contains("max_file") && size_value(c["max_file"]) < (64u << 10)) {
      out.push_back("scenario.capture.max_file: found " + c["max_file"].dump() + "; expected at least \"64KiB\"");
    }
    if (c.contains("ring") && size_value(c["ring"]) < (1u << 20)) {
      out.push_back("scenario.capture.ring: found " + c["ring"].dump() + "; expected at least \"1MiB\"");
    }
    if (c.contains("ring") && size_value(c["ring"]) > (2ull << 30)) {
      out.push_back("scenario.capture.ring: found " + c["ring"].dump() + "; expected at most \"2GiB\"");
    }
  }
  check_env_refs(doc, "scenario", false, out);
}

// Parses one --set path "a.b[0].c" into keys and indices.
struct path_step {
  std::string key;
  std::optional<std::size_t> index;
};

std::optional<std::vector<path_step>> parse_set_path(const std::string& path) {
  std::vector<path_step> steps;
  std::size_t i = 0;
  while (i < path.size()) {
    std::size_t j = i;
    while (j < path.size() && path[j] != '.' && path[j] != '[') ++j;
    if (j == i && (steps.empty() || path[i] != '[')) return std::nullopt;
    if (j > i) steps.push_back({path.substr(i, j - i), std::nullopt});
    i = j;
    while (i < path.size() && path[i] == '[') {
      std::size_t k = path.find(']', i);
      if (k == std::string::npos || k == i + 1) return std::nullopt;
      std::string num = path.substr(i + 1, k - i - 1);
      if (!std::all_of(num.begin(), num.end(), ::isdigit)) return std::nullopt;
      steps.push_back({"", static_cast<std::size_t>(std::stoul(num))});
      i = k + 1;
    }
    if (i < path.size()) {
      if (path[i] != '.') return std::nullopt;
      ++i;
      if (i == path.size()) return std::nullopt;
    }
  }
  if (steps.empty()) return std::nullopt;
  return steps;
}

}  // namespace

scenario_registry& scenario_registry::instance() {
  static scenario_registry r;
  return r;
}

scenario_registry::scenario_registry() : core_metrics_(builtin_core_metrics()) { rebuild(); }

void scenario_registry::add_model(load_model_info m) {
  auto it = std::find_if(models_.begin(), models_.end(), [&](auto& x) { return x.name == m.name; });
  if (it != models_.end())
    *it = std::move(m);
  else
    models_.push_back(std::move(m));
  rebuild();
}

void scenario_registry::add_fault_kind(fault_kind_info f) {
  auto it = std::find_if(faults_.begin(), faults_.end(), [&](auto& x) { return x.name == f.name; });
  if (it != faults_.end())
    *it = std::move(f);
  else
    faults_.push_back(std::move(f));
  rebuild();
}

void scenario_registry::add_environment_check(std::function<spec::errors(const json&)> check) {
  environment_checks_.push_back(std::move(check));
}

void scenario_registry::set_available(const std::string& name, bool available) {
  for (auto& m : models_)
    if (m.name == name) m.available = available;
  for (auto& f : faults_)
    if (f.name == name) f.available = available;
  rebuild();
}

void scenario_registry::rebuild() {
  auto load = std::make_shared<node>();
  load->t = type::tagged;
  load->doc = "a load entry";
  load->tag = "model";
  load->tag_noun = "load model";
  load->fields = {
      req("name", name_node("load entry name")),
      req("phases",
          array("phases, run one after the other",
                with(object("a phase",
                            {req("name", name_node("phase name")), req("for", duration("how long", true)),
                             opt("rate", rate("constant rate")), opt("to", rate("ramp linearly to this rate"))}),
                     [](node& n) {
                       n.at_most_one = {{"rate", "to"}};
                     }),
                1))};
  for (const auto& m : models_) load->variants[m.name] = variant{m.fields, m.available, m.doc};

  auto fault = std::make_shared<node>();
  fault->t = type::tagged;
  fault->doc = "a fault";
  fault->tag = "kind";
  fault->tag_noun = "fault kind";
  fault->fields = {req("name", name_node("fault name")),
                   opt("target", fault_target_node()),
                   req("at", duration("when it fires, from the run's start", true)),
                   opt("for", duration("how long it stays applied", true)),
                   opt("every", duration("repeat period", true)),
                   opt("count", integer("how many times (with every)", 1)),
                   opt("jitter", duration("random shift of each repetition (with every)"))};
  for (const auto& f : faults_) fault->variants[f.name] = variant{f.fields, f.available, f.doc};

  auto capture = object(
      "wire capture with libpcap",
      {opt("interfaces", choice("interfaces",
                                {enumeration("the lab's interfaces", {"lab"}),
                                 array("interface names", spec::string("an interface"), 1)},
                                "\"lab\" or an array of interface names")),
       opt("filter", spec::string("BPF filter")), opt("pcap", boolean("write pcap files")),
       opt("snaplen", integer("bytes kept per packet", 64, 65535)),
       opt("max_file", size("rotate pcap files at this size")), opt("ring", size("kernel ring size per interface"))});
  auto report = object(
      "outputs", {opt("formats", array("which files", enumeration("a format", {"json", "junit", "md", "html"}))),
                  opt("title", spec::string("report title")), opt("baseline", spec::string("a baseline directory")),
                  opt("keep", integer("passing reports kept per scenario in the baseline", 1))});

  root_ = object(
      "a syncstorm scenario (DESIGN §9)",
      {req("name", name_node("scenario name")), opt("description", spec::string("what it proves")),
       opt("duration", duration("run length (default: the longest load)", true)),
       opt("seed", integer("random seed", 0)), req("target", target_node()),
       req("load", array("what load to bring", load, 1)), opt("faults", array("what to break and when", fault)),
       opt("slas", array("what must hold", rule_fields_node(false))),
       opt("abort", array("stop early when", rule_fields_node(true))), opt("capture", capture), opt("report", report),
       // Not in §9's list: narrows the operator's allowlist (run --allow-*,
       // $SYNCSTORM_ALLOW_*, the allow file; docs/architecture.md, "Safety"); an entry
       // the operator did not allow is refused at run time (exit 2).
       opt("safety",
           object("narrows what the operator allowed faults to touch (never widens it)",
                  {opt("allow_contexts", array("kubectl contexts faults may act in (each also allowed by the operator)",
                                               spec::string("a context name"))),
                   opt("allow_docker_hosts",
                       array("non-local DOCKER_HOST values faults may act on (each also allowed by the operator)",
                             spec::string("a DOCKER_HOST value")))})),
       // Not in §9's list either: the JSON Schema the file follows, for editors
       // (scenario.schema.json at the repository's root); ignored by the run.
       opt("$schema",
           spec::string("the JSON Schema this file follows, for editors (e.g. scenario.schema.json); ignored"))});
}

spec::node_ptr scenario_registry::root() const { return root_; }

const load_model_info* scenario_registry::find_model(const std::string& name) const {
  auto it = std::find_if(models_.begin(), models_.end(), [&](auto& x) { return x.name == name; });
  return it == models_.end() ? nullptr : &*it;
}

const fault_kind_info* scenario_registry::find_fault_kind(const std::string& name) const {
  auto it = std::find_if(faults_.begin(), faults_.end(), [&](auto& x) { return x.name == name; });
  return it == faults_.end() ? nullptr : &*it;
}

json scenario_registry::schema() const {
  json s = to_schema(*root_);
  s["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  s["$id"] = "https://syncstorm.dev/schema/scenario.json";
  s["title"] = "syncstorm scenario";
  return s;
}

std::string resolve_env(const std::string& text) {
  static const std::regex re(env_ref_pattern);
  std::string out;
  auto begin = std::sregex_iterator(text.begin(), text.end(), re);
  std::size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    out += text.substr(last, it->position() - last);
    const char* v = std::getenv((*it)[1].str().c_str());
    out += v ? v : "";
    if (v) redact::add_secret(v);  // never written anywhere (core/redact.hpp)
    last = it->position() + it->length();
  }
  out += text.substr(last);
  return out;
}

bool has_env_ref(const std::string& text) { return text.find("${env:") != std::string::npos; }

std::vector<std::string> known_metrics(const json& doc) {
  std::vector<std::string> names;
  for (const auto& m : scenario_registry::instance().core_metrics()) names.push_back(m.name);
  std::set<std::string> models;
  if (doc.contains("load") && doc["load"].is_array())
    for (const auto& l : doc["load"])
      if (l.contains("model") && l["model"].is_string()) models.insert(l["model"].get<std::string>());
  for (const auto& m : scenario_registry::instance().models())
    if (models.count(m.name))
      for (const auto& x : m.metrics) names.push_back(x.name);
  if (doc.contains("faults") && doc["faults"].is_array())
    for (const auto& f : doc["faults"])
      if (f.contains("name") && f["name"].is_string())
        for (const char* p : {"recovery.", "ready.", "detect."}) names.push_back(p + f["name"].get<std::string>());
  if (doc.contains("capture") && !doc["capture"].is_null()) {
    const bool lab = doc.contains("target") && doc["target"].is_object() && doc["target"].contains("lab");
    for (auto& n : capture::wire_series_names(lab)) names.push_back(std::move(n));
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::optional<metric_info> metric_lookup(const json& doc, const std::string& name) {
  // server.<name>: a series scraped from the target (target.metrics); any name the target
  // exports is valid, and one that never appears leaves its rule inconclusive.
  if (name.starts_with("server.") && name.size() > 7 && doc.contains("target") && doc["target"].is_object() &&
      doc["target"].contains("metrics"))
    return metric_info{name, metric_unit::gauge, "scraped from the target (target.metrics)"};
  auto names = known_metrics(doc);
  if (!std::binary_search(names.begin(), names.end(), name)) return std::nullopt;
  if (name.starts_with("wire.")) return metric_info{name, metric_unit::count, "wire series (capture)"};
  for (const auto& m : scenario_registry::instance().core_metrics())
    if (m.name == name) return m;
  for (const auto& md : scenario_registry::instance().models())
    for (const auto& m : md.metrics)
      if (m.name == name) return m;
  return metric_info{name, metric_unit::time, "fault timing"};  // recovery./ready./detect.
}

std::int64_t duration_us(const json& v) {
  if (v.is_number()) return static_cast<std::int64_t>(std::llround(v.get<double>() * 1e6));
  if (v.is_string()) return units::parse_duration_us(v.get<std::string>()).value_or(0);
  return 0;
}
double rate_value(const json& v) {
  if (v.is_number()) return v.get<double>();
  return v.is_string() ? units::parse_rate(v.get<std::string>()).value_or(0) : 0;
}
std::uint64_t size_value(const json& v) {
  if (v.is_number()) return v.get<std::uint64_t>();
  return v.is_string() ? units::parse_size(v.get<std::string>()).value_or(0) : 0;
}
double percent_value(const json& v) {
  if (v.is_number()) return v.get<double>();
  return v.is_string() ? units::parse_percent(v.get<std::string>()).value_or(0) : 0;
}

std::string apply_set(json& doc, const std::string& assignment) {
  // A document holds valid UTF-8 only (the JSON parser refuses anything else), and the messages
  // quoting its keys and values, like scenario.json, are written by strict JSON writers: the
  // command line's text must be UTF-8 too.
  try {
    (void)json(assignment).dump();
  } catch (const json::type_error&) {
    return "--set " + text_excerpt(assignment) +
           ": found bytes that are not UTF-8; expected UTF-8 text like target.lab.pods=3";
  }
  auto eq = assignment.find('=');
  if (eq == std::string::npos) {
    return "--set " + assignment + ": found no \"=\"; expected PATH=VALUE like target.lab.pods=3";
  }
  std::string path = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  auto steps = parse_set_path(path);
  if (!steps) return "--set " + path + ": found a malformed path; expected keys and indices like a.b[0].c";
  json value = parse_bounded(text);
  if (value.is_discarded()) value = text;
  json* cur = &doc;
  std::string walked = "scenario";
  for (std::size_t i = 0; i < steps->size(); ++i) {
    const auto& st = (*steps)[i];
    bool last = i + 1 == steps->size();
    if (st.index) {
      if (!cur->is_array())
        return "--set " + path + ": found " + render(*cur) + " at " + walked + "; expected an array";
      if (*st.index > cur->size()) {
        return "--set " + path + ": found index " + std::to_string(*st.index) + " at " + walked +
               "; expected an index up to " + std::to_string(cur->size()) + " (the array has " +
               std::to_string(cur->size()) + " items)";
      }
      if (*st.index == cur->size()) cur->push_back(json::object());
      walked += "[" + std::to_string(*st.index) + "]";
      cur = &(*cur)[*st.index];
    } else {
      if (cur->is_null()) *cur = json::object();
      if (!cur->is_object())
        return "--set " + path + ": found " + render(*cur) + " at " + walked + "; expected an object";
      walked += "." + st.key;
      if (!cur->contains(st.key)) {
        bool next_is_index = !last && (*steps)[i + 1].index.has_value();
        (*cur)[st.key] = next_is_index ? json::array() : json::object();
      }
      cur = &(*cur)[st.key];
    }
    if (last) *cur = value;
  }
  return {};
}

spec::errors validate_document(const json& doc, bool require_env) {
  spec::errors out;
  spec::validate(doc, *scenario_registry::instance().root(), "scenario", out);
  if (out.empty()) check_references(doc, out);
  if (out.empty()) {
    for (const auto& check : scenario_registry::instance().environment_checks())
      for (auto& e : check(doc)) out.push_back(std::move(e));
  }
  if (out.empty() && require_env) check_env_refs(doc, "scenario", true, out);
  return out;
}

load_result load_scenario_file(const std::string& path, const load_options& opt) {
  load_result r;
  std::ifstream in(path);
  if (!in) {
    r.errors.push_back(path + ": found no readable file; expected a scenario JSON file");
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  // Bounded (core/json_limits.hpp): a file nested 200,000 deep would overflow the stack in the
  // validator's walk; such a file is bad input like any other.
  bool too_deep = false;
  json doc = parse_bounded(ss.str(), max_json_depth, &too_deep);
  if (too_deep) {
    r.errors.push_back(path + ": found JSON nested deeper than " + std::to_string(max_json_depth) +
                       " levels; expected a scenario object");
    return r;
  }
  if (doc.is_discarded()) {
    std::string what = "not JSON";
    try {
      const json again = json::parse(ss.str());
      (void)again;
    } catch (const json::exception& e) {
      what = e.what();
      auto pos = what.find("parse error");
      if (pos == std::string::npos) pos = what.find("] ") == std::string::npos ? 0 : what.find("] ") + 2;
      what = what.substr(pos);
    }
    r.errors.push_back(path + ": found invalid JSON (" + what + "); expected a JSON object");
    return r;
  }
  return load_scenario(std::move(doc), opt);
}

load_result load_scenario(json doc, const load_options& opt) {
  load_result r;
  for (const auto& s : opt.sets) {
    auto e = apply_set(doc, s);
    if (!e.empty()) r.errors.push_back(e);
  }
  if (!r.errors.empty()) return r;
  if (opt.seed) doc["seed"] = *opt.seed;
  r.errors = validate_document(doc, opt.require_env);
  if (!r.errors.empty()) return r;

  scenario s;
  s.document = doc;
  s.time_scale = opt.time_scale;
  json scaled = doc;
  if (opt.time_scale != 1.0) spec::scale_time(scaled, *scenario_registry::instance().root(), opt.time_scale);
  s.name = scaled["name"];
  s.description = scaled.value("description", "");
  s.seed = scaled.value("seed", std::uint64_t{1});
  s.target = scaled["target"];
  for (const auto& l : scaled["load"]) {
    load_entry e;
    e.name = l["name"];
    e.model = l["model"];
    for (const auto& ph : l["phases"]) {
      phase_plan p;
      p.name = ph["name"];
      p.for_us = duration_us(ph["for"]);
      if (ph.contains("rate")) p.rate = rate_value(ph["rate"]);
      if (ph.contains("to")) p.to = rate_value(ph["to"]);
      e.phases.push_back(p);
    }
    e.fields = l;
    s.loads.push_back(std::move(e));
  }
  std::int64_t longest = 0;
  for (const auto& l : s.loads) {
    std::int64_t t = 0;
    for (const auto& p : l.phases) t += p.for_us;
    longest = std::max(longest, t);
  }
  s.duration_us = scaled.contains("duration") ? duration_us(scaled["duration"]) : longest;
  for (const auto& f : scaled.value("faults", json::array())) {
    fault_entry e;
    e.name = f["name"];
    e.kind = f["kind"];
    e.target = f.value("target", json::object());
    e.at_us = duration_us(f["at"]);
    if (f.contains("for")) e.for_us = duration_us(f["for"]);
    if (f.contains("every")) e.every_us = duration_us(f["every"]);
    if (f.contains("jitter")) e.jitter_us = duration_us(f["jitter"]);
    if (f.contains("count")) e.count = f["count"].get<std::int64_t>();
    e.fields = f;
    s.faults.push_back(std::move(e));
  }
  auto to_rule = [&](const json& j) {
    rule_entry e;
    e.name = j["name"];
    e.metric = j.value("metric", "");
    e.stat = j.value("stat", "");
    e.window = j.value("window", "all");
    e.load = j.value("load", "");
    if (j.contains("for")) e.for_us = duration_us(j["for"]);
    auto info = metric_lookup(doc, e.metric);
    e.unit = info ? info->unit : metric_unit::count;
    // server.* `across` min/sum/mean: the rule reads the series the scraper keeps for that
    // combination, named like the PromQL that would compute it: "sum(server.<name>)".
    if (const std::string how = j.value("across", "max"); how != "max") e.metric = how + "(" + e.metric + ")";
    auto bound = [](const json& b) -> double {
      if (b.is_number()) return b.get<double>();
      std::string t = b.get<std::string>();
      if (t.ends_with("%")) return units::parse_percent(t).value_or(0);
      return static_cast<double>(units::parse_duration_us(t).value_or(0));
    };
    if (j.contains("max")) e.max = bound(j["max"]);
    if (j.contains("min")) e.min = bound(j["min"]);
    if (j.contains("warn")) e.warn = bound(j["warn"]);
    return e;
  };
  for (const auto& j : scaled.value("slas", json::array())) s.slas.push_back(to_rule(j));
  for (const auto& j : scaled.value("abort", json::array())) {
    abort_entry a;
    a.name = j["name"];
    if (j.contains("metric")) a.rule = to_rule(j);
    a.probe = j.value("probe", json());
    s.aborts.push_back(std::move(a));
  }
  s.capture = scaled.value("capture", json());
  s.report = scaled.value("report", json());
  // Each model's and fault kind's typed settings, parsed once here; what a model cannot run is
  // bad input (exit 2), found before anything starts.
  const auto& reg = scenario_registry::instance();
  for (std::size_t i = 0; i < s.loads.size(); ++i) {
    auto& e = s.loads[i];
    const load_model_info* m = reg.find_model(e.model);
    if (!m || !m->parse) continue;
    try {
      e.settings = m->parse(e, "scenario.load[" + std::to_string(i) + "]");
    } catch (const std::invalid_argument& x) {
      r.errors.push_back(x.what());
    }
  }
  for (std::size_t i = 0; i < s.faults.size(); ++i) {
    auto& e = s.faults[i];
    const fault_kind_info* k = reg.find_fault_kind(e.kind);
    if (!k || !k->parse) continue;
    try {
      e.settings = k->parse(e, "scenario.faults[" + std::to_string(i) + "]");
    } catch (const std::invalid_argument& x) {
      r.errors.push_back(x.what());
    }
  }
  if (r.errors.empty()) r.value = std::move(s);
  return r;
}

}  // namespace syncstorm
