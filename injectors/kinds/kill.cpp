// `kill` (DESIGN §6): signal processes (lab pods, PostgreSQL, HAProxy; a local pid or pidfile;
// `docker kill`; `kubectl delete pod`), restarted after by the lab's supervisor unless
// `target.restart` is false.
#include "injectors/kinds/builtin.hpp"

#include "injectors/command.hpp"
#include "injectors/detail/fault_support.hpp"
#include "injectors/targets.hpp"

#include <csignal>
#include <filesystem>

namespace syncstorm::injectors::kinds {
namespace {

using namespace detail;

struct kill_settings final : fault_settings {
  std::string signal = "SIGKILL";
};

}  // namespace

fault_kind kill_kind() {
  fault_kind k =
      basic_kind("kill", "signal processes (pods, PostgreSQL, HAProxy, a pid)", {opt("signal", signal_node())}, true);
  k.info.instant = true;
  k.info.check = [](const nlohmann::json& f, const reference_context&, const std::string& p, spec::errors& out) {
    const nlohmann::json tgt = f.value("target", nlohmann::json::object());
    if (tgt.value("role", "") == "clients")
      out.push_back(
          p +
          ".target.role: found \"clients\"; expected a server-side role (db-primary, db-replica, lb) — terminals crash with a client_crash fault");
    if (tgt.contains("selector") && tgt.contains("restart") && tgt["restart"] == false)
      out.push_back(
          p +
          ".target.restart: found false with a kubernetes selector; expected true or nothing (the pod's controller recreates a deleted pod)");
  };
  k.info.parse = [](const fault_entry& f, const std::string&) -> std::shared_ptr<const fault_settings> {
    auto s = std::make_shared<kill_settings>();
    s->signal = f.fields.value("signal", "SIGKILL");
    return s;
  };
  k.prepare = [](prepared_fault& p, const fault_entry& f, const fault_env& env) {
    detail::kill_steps(p, f, env, settings_of<kill_settings>(f)->signal, f.target.value("restart", true));
  };
  return k;
}

}  // namespace syncstorm::injectors::kinds

namespace syncstorm::injectors::detail {

namespace fs = std::filesystem;

void kill_steps(prepared_fault& p, const fault_entry& f, const fault_env& env, const std::string& sig_name,
                bool restart) {
  int sig = signal_number(sig_name);
  resolved r = resolve(f, p.occurrence, env, "one");
  p.target_keys = {r.key};
  if (r.backend == "clients")
    throw fault_error("kill: found target.role \"clients\"; expected a client_crash fault for terminals");
  if (r.backend == "lab") {
    lab_kill_steps(p, *env.lab, r.names, sig, sig_name, restart, env.dry_run);
  } else if (r.backend == "local") {
    for (const auto& n : r.names) {
      long pid = n.front() == '<' ? 0 : std::stol(n);
      auto pi = pid ? read_proc(static_cast<pid_t>(pid)) : std::nullopt;
      unsigned long long st = pi ? pi->start_time : 0;
      p.targets.push_back({{"backend", "local"}, {"name", n}, {"pid", pid}, {"comm", pi ? pi->comm : ""}});
      std::optional<std::pair<std::string, std::string>> lab_unit;
      // Only a pid file of a lab this host runs gets the lab's no-restart marker and restart.
      if (f.target.contains("pidfile") && own_lab_pidfile(f.target["pidfile"]))
        lab_unit = lab_unit_of_pidfile(f.target["pidfile"]);
      if (lab_unit && !restart)
        p.apply.push_back({{"op", "marker"},
                           {"path", fs::path(f.target["pidfile"].get<std::string>()).parent_path().parent_path() /
                                        "norestart" / lab_unit->second}});
      p.apply.push_back(signal_step(pid, st, false, sig, sig_name, pi ? pi->comm : n));
      if (pid) p.verify.push_back({{"op", "proc_gone"}, {"pid", pid}, {"start_time", st}, {"what", n}});
      if (lab_unit) {
        // A crash between the marker and the signal must not leave the marker for a later death.
        if (!restart)
          p.undo.push_back({{"op", "remove_file"},
                            {"path", fs::path(f.target["pidfile"].get<std::string>()).parent_path().parent_path() /
                                         "norestart" / lab_unit->second}});
        p.undo.push_back({{"op", "lab_start_unit"},
                          {"lab", lab_unit->first},
                          {"unit", lab_unit->second},
                          {"after_pid", pid},
                          {"wait_ms", 90000}});
        p.heals = restart;
      } else {
        p.irreversible = true;  // nothing restarts an arbitrary process
        p.heals = true;
      }
    }
  } else if (r.backend == "docker") {
    for (const auto& c : r.names) {
      p.targets.push_back({{"backend", "docker"}, {"name", c}});
      p.apply.push_back(cmd({"docker", "kill", "--signal", sig_name, "--", c}));
      p.undo.push_back(
          cmd({"docker", "start", "--", c}, {{"ok_if", {"No such container"}},
                                             {"verify",
                                              {{"argv", {"docker", "inspect", "-f", "{{.State.Running}}", "--", c}},
                                               {"expect", "true"},
                                               {"gone_ok", "No such"}}}}));
    }
    p.heals = restart;
  } else {
    for (const auto& pod : r.names) {
      p.targets.push_back({{"backend", "kubectl"}, {"name", pod}, {"selector", r.selector}});
      auto argv = concat(r.kubectl, {"delete", "pod", "--wait=false"});
      if (sig == SIGKILL) argv = concat(argv, {"--grace-period=0", "--force"});
      p.apply.push_back(cmd(concat(argv, {"--", pod})));  // a name is never read as an option
    }
    p.undo.push_back(
        cmd(concat(r.kubectl, {"wait", "--for=condition=Ready", "pod", "-l", r.selector, "--timeout=120s"}),
            {{"timeout_ms", 130000}}));
    p.heals = true;
  }
}

}  // namespace syncstorm::injectors::detail
