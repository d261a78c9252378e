// `pause` (DESIGN §6): SIGSTOP, and SIGCONT at revert (a lab unit's whole process group; a local
// pid; `docker pause`; `kubectl exec … kill -STOP 1`).
#include "injectors/kinds/builtin.hpp"

#include "injectors/command.hpp"
#include "injectors/detail/fault_support.hpp"
#include "injectors/targets.hpp"

#include <csignal>
#include <filesystem>

namespace syncstorm::injectors::kinds {
namespace {

using namespace detail;

void prepare_pause(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  resolved r = resolve(f, p.occurrence, env, "one");
  p.target_keys = {r.key};
  if (r.backend == "clients")
    throw fault_error("pause: found target.role \"clients\"; expected a lab, process, container or pod target");
  if (r.backend == "lab" || r.backend == "local") {
    for (const auto& n : r.names) {
      long pid = 0;
      unsigned long long st = 0;
      if (r.backend == "lab") {
        auto pr = unit_proc(*env.lab, n, env.dry_run);
        pid = pr.pid;
        st = pr.start_time;
      } else if (n.front() != '<') {
        pid = std::stol(n);
        auto pi = read_proc(static_cast<pid_t>(pid));
        st = pi ? pi->start_time : 0;
      }
      // A lab unit is its own process group (PostgreSQL's backends, HAProxy's workers): stop all.
      bool group = r.backend == "lab";
      p.targets.push_back({{"backend", r.backend}, {"name", n}, {"pid", pid}});
      p.apply.push_back(signal_step(pid, st, group, SIGSTOP, "SIGSTOP", n));
      p.undo.push_back(signal_step(pid, st, group, SIGCONT, "SIGCONT", n));
      if (pid) p.verify.push_back({{"op", "proc_stopped"}, {"pid", pid}, {"start_time", st}, {"what", n}});
    }
  } else if (r.backend == "docker") {
    for (const auto& c : r.names) {
      p.targets.push_back({{"backend", "docker"}, {"name", c}});
      p.apply.push_back(cmd({"docker", "pause", "--", c}));
      p.verify.push_back(
          {{"op", "command"}, {"argv", {"docker", "inspect", "-f", "{{.State.Paused}}", "--", c}}, {"expect", "true"}});
      p.undo.push_back(
          cmd({"docker", "unpause", "--", c}, {{"ok_if", {"is not paused", "No such container"}},
                                               {"verify",
                                                {{"argv", {"docker", "inspect", "-f", "{{.State.Paused}}", "--", c}},
                                                 {"expect", "false"},
                                                 {"gone_ok", "No such"}}}}));
    }
  } else {
    for (const auto& pod : r.names) {
      p.targets.push_back({{"backend", "kubectl"}, {"name", pod}, {"selector", r.selector}});
      p.apply.push_back(cmd(concat(r.kubectl, {"exec", pod, "--", "kill", "-STOP", "1"})));
      p.undo.push_back(
          cmd(concat(r.kubectl, {"exec", pod, "--", "kill", "-CONT", "1"}), {{"ok_if", {"NotFound", "not found"}}}));
    }
  }
}

}  // namespace

fault_kind pause_kind() {
  fault_kind k = basic_kind("pause", "SIGSTOP, then SIGCONT at revert", {}, true);
  k.info.check = [](const nlohmann::json& f, const reference_context&, const std::string& p, spec::errors& out) {
    const nlohmann::json tgt = f.value("target", nlohmann::json::object());
    if (tgt.value("role", "") == "clients")
      out.push_back(
          p +
          ".target.role: found \"clients\"; expected a server-side role (db-primary, db-replica, lb) — terminals crash with a client_crash fault");
  };
  k.prepare = prepare_pause;
  return k;
}

}  // namespace syncstorm::injectors::kinds
