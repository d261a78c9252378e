// What the client kinds (client_crash, journal_corrupt) share: their target is the run's own
// terminals (target.role "clients"), reached through the engine's client_control.
#include "injectors/kinds/builtin.hpp"

#include "injectors/detail/fault_support.hpp"
#include "injectors/targets.hpp"

namespace syncstorm::injectors::kinds {

using namespace detail;

void client_steps(prepared_fault& p, const fault_entry& f, const fault_env& env,
                  const std::function<json(const std::string& client, std::uint64_t seed)>& step) {
  resolved r = resolve(f, p.occurrence, env, "one");
  if (r.backend != "clients")
    throw fault_error(f.kind + ": found a " + r.backend + " target; expected target.role \"clients\"");
  p.heals = true;
  std::uint64_t seed = occurrence_seed(env.seed, f.name, p.occurrence);
  for (const auto& c : r.names) {
    json t = {{"backend", "clients"}, {"name", c}};
    if (env.clients && c.front() != '<') t["journal"] = env.clients->journal_path(c);
    p.targets.push_back(t);
    p.apply.push_back(step(c, seed));
  }
}

void check_clients_target(const nlohmann::json& f, const reference_context&, const std::string& p, spec::errors& out) {
  const nlohmann::json tgt = f.value("target", nlohmann::json::object());
  if (f.contains("target") && tgt.value("role", "") != "clients")
    out.push_back(p + ".target: found " + tgt.dump() + "; expected {\"role\": \"clients\"} (" + f.value("kind", "") +
                  " acts on terminals)");
}

}  // namespace syncstorm::injectors::kinds
