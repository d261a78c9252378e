// `client_crash` (DESIGN §6): terminals lose their memory (queue, batcher, breaker) and restart
// from their journal, as a process that crashed would.
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

fault_kind client_crash_kind() {
  fault_kind k = basic_kind("client_crash", "terminals lose their memory and restart from the journal", {}, true);
  k.info.instant = true;
  k.info.check = check_clients_target;
  k.prepare = [](prepared_fault& p, const fault_entry& f, const fault_env& env) {
    client_steps(p, f, env, [](const std::string& c, std::uint64_t) {
      return nlohmann::json{{"op", "client_crash"}, {"client", c}};
    });
  };
  return k;
}

}  // namespace syncstorm::injectors::kinds
