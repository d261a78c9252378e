// `syncstorm run --dry-run`'s details after the timeline (see run.hpp): the run directory, the
// target, each load as its model describes it, each fault occurrence prepared as it would fire
// (targets and the exact steps, contacting nothing), the capture. Nothing is started or written.
#include "engine/run.hpp"

#include "capture/capture.hpp"
#include "core/units.hpp"
#include "engine/registry.hpp"
#include "injectors/faults.hpp"

#include <algorithm>
#include <filesystem>
#include <sstream>

namespace syncstorm::engine {
namespace {

void describe_target(const scenario& s, std::ostringstream& out) {
  if (s.target.contains("lab") && s.target["lab"].contains("id")) {
    out << "  target: the running lab " << s.target["lab"]["id"].get<std::string>()
        << " (attached: neither started nor stopped by the run)\n";
  } else if (s.target.contains("lab")) {
    const auto& lab = s.target["lab"];
    out << "  target: lab with " << lab.value("pods", 2) << " syncd pods behind HAProxy, PostgreSQL 15"
        << (lab.value("replica", false) ? " with a synchronous replica" : "") << " (started for the run, stopped after"
        << (lab.value("keep", false) ? ": keep" : "") << ")\n";
  }
  if (s.target.contains("proxy")) {
    out << "  target: the run's fault proxy in front of the endpoints, on free ports of "
        << s.target["proxy"].value("listen", "127.0.0.1")
        << " (started for the run as `syncstorm proxy --config <run dir>/proxy/config.json`, "
        << "recorded in the ledger, stopped after it):";
    for (const char* name : {"http", "ws"})
      if (s.target["endpoints"].contains(name))
        out << " " << name << " -> " << s.target["endpoints"][name].get<std::string>();
    out << "; the loads below go through it\n";
  }
}

void describe_loads(const scenario& s, const run_options& o, std::ostringstream& out) {
  plan_context ctx;
  ctx.s = &s;
  ctx.threads = o.threads;
  ctx.http_base = s.target.contains("lab")         ? "http://<lab load balancer>"
                  : s.target.contains("endpoints") ? s.target["endpoints"].value("http", "")
                                                   : std::string();
  for (const auto& l : s.loads)
    if (const model_kind* k = find_model(l.model); k && k->describe) out << k->describe(l, ctx);
}

// The fault environment as far as the scenario tells it (what only the running target can tell
// is shown as <...>).
injectors::fault_env planned_fault_env(const scenario& s, const injectors::safety_policy& safety) {
  injectors::fault_env env;
  if (s.target.contains("lab")) env.lab = injectors::lab_facts::from_scenario(s.target["lab"]);
  if (s.target.contains("proxy")) {
    injectors::proxy_facts pf;
    pf.control = "<run dir>/proxy/control.sock";
    for (const char* name : {"http", "ws"})
      if (s.target["endpoints"].contains(name)) pf.paths.push_back(name);
    if (s.target["endpoints"].value("http", "").starts_with("http://")) pf.http_paths.push_back("http");
    env.proxy = pf;
  }
  env.safety = safety;
  env.seed = s.seed;
  env.run_tag = "<run>";
  env.dry_run = true;
  return env;
}

void describe_faults(const scenario& s, const run_options& o, std::ostringstream& out) {
  if (s.faults.empty()) return;
  const injectors::fault_env env = planned_fault_env(s, o.safety);
  const plan pl = make_plan(s);
  for (const auto& pf : pl.faults) {
    auto fe = std::find_if(s.faults.begin(), s.faults.end(), [&](auto& f) { return f.name == pf.name; });
    if (fe == s.faults.end()) continue;
    out << "  fault " << pf.name << "#" << pf.occurrence << " (" << pf.kind << ") at "
        << units::format_duration(pf.at_us) << ":";
    try {
      auto prepared = injectors::prepare_fault(*fe, pf.occurrence, env);
      out << "\n    targets:";
      for (const auto& t : prepared.targets) out << " " << t.value("backend", "") << ":" << t.value("name", "");
      out << "\n";
      for (const auto& st : prepared.apply) out << "    apply:  " << injectors::describe_step(st) << "\n";
      for (const auto& st : prepared.undo) out << "    revert: " << injectors::describe_step(st) << "\n";
      if (prepared.undo.empty())
        out << "    revert: nothing to undo"
            << (prepared.irreversible ? " (irreversible by design; repair is separate)" : "") << "\n";
      out << "    revert at: "
          << (pf.revert_us     ? units::format_duration(*pf.revert_us)
              : prepared.heals ? std::string("when its effect ends (checked)")
                               : std::string("the end of the load"))
          << "\n";
    } catch (const std::exception& e) {
      out << " REFUSED: " << e.what() << "\n";
    }
  }
}

void describe_capture(const scenario& s, std::ostringstream& out) {
  if (s.capture.is_null()) return;
  const auto& c = s.capture;
  const nlohmann::json ifs = c.value("interfaces", nlohmann::json("lab"));
  out << "  capture: "
      << (ifs.is_string() ? std::string("the lab's interfaces (its bridge and lo, or lo alone in a loopback lab)")
                          : ifs.dump())
      << ", filter "
      << (c.contains("filter") ? c["filter"].dump() : std::string("the lab's ports on lo, everything on the bridge"))
      << ", snaplen " << c.value("snaplen", 128) << ", ring "
      << units::format_size(c.contains("ring") ? size_value(c["ring"])
                                               : capture::default_ring_bytes(s.document, c.value("snaplen", 128)))
      << " per interface, "
      << (c.value("pcap", true)
              ? "pcap files in <run dir>/capture rotated at " +
                    units::format_size(c.contains("max_file") ? size_value(c["max_file"]) : 256ull << 20)
              : std::string("no pcap files"))
      << "; series wire.<direction>.<counter>\n";
}

std::string describe_allowlist(const injectors::safety_policy& p) {
  std::string out;
  const nlohmann::json allow = p.to_json()["allow"];
  for (const auto& [kind, list] : allow.items())
    if (!list.empty()) {
      out += (out.empty() ? "" : "; ") + kind + " ";
      for (std::size_t i = 0; i < list.size(); ++i) out += (i ? "," : "") + list[i].get<std::string>();
    }
  if (out.empty()) out = "nothing";
  out += "; at most " + std::to_string(p.max_targets) + " targets a fault";
  if (!p.sources.empty()) {
    out += " (from";
    for (const auto& s : p.sources) out += " " + s;
    out += ")";
  }
  return out;
}

}  // namespace

std::string dry_run_details(const scenario& s, const run_options& o) {
  std::ostringstream out;
  out << "\nresolved\n";
  out << "  run directory: " << (std::filesystem::path(o.out_dir) / ("<YYYYmmddTHHMMSSZ>-" + s.name)).string()
      << " (not created)\n";
  out << "  worker threads: " << o.threads << "\n";
  out << "  allowlist (beyond the run's own parts): " << describe_allowlist(o.safety) << "\n";
  describe_target(s, out);
  describe_loads(s, o, out);
  describe_faults(s, o, out);
  describe_capture(s, out);
  out << "  nothing was contacted, started or written\n";
  return out.str();
}

}  // namespace syncstorm::engine
