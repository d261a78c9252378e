// `db_failover` (DESIGN §6): kill the primary and promote the synchronous replica (the lab), or
// kill a remote stack's primary and let its own HA promote; recovery is measured either way.
// Irreversible by design: bringing the old primary back is repair, not revert.
#include "injectors/kinds/builtin.hpp"

#include "injectors/command.hpp"
#include "injectors/detail/fault_support.hpp"
#include "injectors/targets.hpp"

#include <csignal>
#include <filesystem>

namespace syncstorm::injectors::kinds {
namespace {

using namespace detail;

void prepare_db_failover(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  p.heals = true;
  p.irreversible = true;  // the promoted replica stays primary; bringing the old one back is repair
  if (f.target.contains("container") || f.target.contains("selector") || f.target.contains("pid") ||
      f.target.contains("pidfile")) {
    // A remote stack: kill its primary; the user's HA (e.g. Patroni) promotes; recovery is measured.
    kill_steps(p, f, env, "SIGKILL", true);
    p.undo.clear();
    p.heals = true;
    return;
  }
  const auto& lab = need_lab(env, "db_failover");
  if (!lab.replica && !lab.planned)
    throw fault_error("db_failover: found no replica in the lab (already promoted?); expected target.lab.replica true");
  p.target_keys = {"lab-" + lab.id};
  p.targets.push_back(
      {{"backend", "lab"}, {"name", lab.primary}, {"lab", lab.id}, {"promote", lab.replica.value_or("db-1")}});
  p.apply.push_back({{"op", "lab_promote"}, {"lab", lab.id}});
  p.verify.push_back({{"op", "lab_primary"}, {"lab", lab.id}, {"unit", lab.replica.value_or("db-1")}});
}

}  // namespace

fault_kind db_failover_kind() {
  fault_kind k = basic_kind("db_failover", "kill the primary, promote the replica",
                            {opt("promote", boolean("promote the replica (default true)")),
                             opt("timeout", duration("longest wait for the new primary"))},
                            false);
  k.info.instant = true;
  k.info.check = [](const nlohmann::json&, const reference_context& ctx, const std::string& p, spec::errors& out) {
    if (!ctx.replica && ctx.lab && !ctx.attached)
      out.push_back(
          p +
          ".kind: found \"db_failover\" without a replica; expected target.lab.replica true (failover promotes the replica)");
  };
  k.prepare = prepare_db_failover;
  return k;
}

}  // namespace syncstorm::injectors::kinds
