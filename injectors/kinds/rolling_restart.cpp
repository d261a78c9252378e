// `rolling_restart` (DESIGN §6): SIGTERM the pods one by one, each waited for until ready (and
// back in HAProxy's rotation) before the next; `docker restart`; `kubectl rollout restart`.
#include "injectors/kinds/builtin.hpp"

#include "injectors/command.hpp"
#include "injectors/detail/fault_support.hpp"
#include "injectors/targets.hpp"

#include <csignal>
#include <filesystem>

namespace syncstorm::injectors::kinds {
namespace {

using namespace detail;

struct rolling_restart_settings final : fault_settings {
  std::string signal = "SIGTERM";
  std::int64_t wait_ms = 60000;  // wait_ready
};

void prepare_rolling_restart(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  const auto s = settings_of<rolling_restart_settings>(f);
  const std::string& sig_name = s->signal;
  int sig = signal_number(sig_name);
  const std::int64_t wait_ms = s->wait_ms;
  resolved r = resolve(f, p.occurrence, env, "all");
  p.target_keys = {r.key};
  p.heals = true;
  if (r.backend == "lab") {
    for (const auto& u : r.names) {
      auto pr = unit_proc(*env.lab, u, env.dry_run);
      p.targets.push_back({{"backend", "lab"}, {"name", u}, {"lab", env.lab->id}, {"pid", pr.pid}});
      p.apply.push_back({{"op", "lab_kill"},
                         {"lab", env.lab->id},
                         {"unit", u},
                         {"signal", sig},
                         {"signal_name", sig_name},
                         {"restart", true}});
      p.apply.push_back(
          {{"op", "lab_start_unit"}, {"lab", env.lab->id}, {"unit", u}, {"after_pid", "killed"}, {"wait_ms", wait_ms}});
      if (u != "lb" && !u.starts_with("db-"))
        p.apply.push_back({{"op", "lab_wait_lb_up"}, {"lab", env.lab->id}, {"unit", u}, {"wait_ms", wait_ms}});
      p.undo.push_back({{"op", "lab_start_unit"}, {"lab", env.lab->id}, {"unit", u}, {"wait_ms", wait_ms}});
    }
  } else if (r.backend == "docker") {
    for (const auto& c : r.names) {
      p.targets.push_back({{"backend", "docker"}, {"name", c}});
      p.apply.push_back(cmd({"docker", "restart", "--", c}, {{"timeout_ms", wait_ms + 30000}}));
      p.undo.push_back(cmd({"docker", "start", "--", c}, {{"ok_if", {"No such container"}}}));
    }
  } else if (r.backend == "kubectl") {
    p.targets.push_back(
        {{"backend", "kubectl"}, {"name", "deployments matching " + r.selector}, {"selector", r.selector}});
    std::string timeout = "--timeout=" + std::to_string(std::max<std::int64_t>(1, wait_ms / 1000)) + "s";
    p.apply.push_back(cmd(concat(r.kubectl, {"rollout", "restart", "deployment", "-l", r.selector})));
    p.apply.push_back(cmd(concat(r.kubectl, {"rollout", "status", "deployment", "-l", r.selector, timeout}),
                          {{"timeout_ms", wait_ms + 30000}}));
    p.undo.push_back(cmd(concat(r.kubectl, {"rollout", "status", "deployment", "-l", r.selector, timeout}),
                         {{"timeout_ms", wait_ms + 30000}}));
  } else {
    throw fault_error("rolling_restart: found a " + r.backend + " target; expected pods, a container or a selector");
  }
}

}  // namespace

fault_kind rolling_restart_kind() {
  fault_kind k = basic_kind(
      "rolling_restart", "SIGTERM pods one by one, waiting for ready",
      {opt("signal", signal_node()), opt("wait_ready", duration("longest wait for a pod to be ready"))}, true);
  k.info.instant = true;
  k.info.check = [](const nlohmann::json& f, const reference_context&, const std::string& p, spec::errors& out) {
    const nlohmann::json tgt = f.value("target", nlohmann::json::object());
    if (tgt.value("role", "") == "clients")
      out.push_back(
          p +
          ".target.role: found \"clients\"; expected a server-side role (db-primary, db-replica, lb) — terminals crash with a client_crash fault");
    if (tgt.contains("pid") || tgt.contains("pidfile") || tgt.value("role", "") == "db-primary" ||
        tgt.value("role", "") == "db-replica")
      out.push_back(p + ".target: found " + tgt.dump() +
                    "; expected pods, lb, a container or a selector (a rolling restart needs a set of replicas)");
  };
  k.info.parse = [](const fault_entry& f, const std::string&) -> std::shared_ptr<const fault_settings> {
    auto s = std::make_shared<rolling_restart_settings>();
    s->signal = f.fields.value("signal", "SIGTERM");
    if (f.fields.contains("wait_ready")) s->wait_ms = duration_us(f.fields["wait_ready"]) / 1000;
    return s;
  };
  k.prepare = prepare_rolling_restart;
  return k;
}

}  // namespace syncstorm::injectors::kinds
