// `journal_corrupt` (DESIGN §6): flip bytes in terminals' journals (records already written); a
// terminal must detect the damage by its checksums and re-sync.
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

namespace {

struct journal_corrupt_settings final : fault_settings {
  int bytes = 16;
};

}  // namespace

fault_kind journal_corrupt_kind() {
  fault_kind k = basic_kind("journal_corrupt", "flip bytes in terminals' journals",
                            {opt("bytes", integer("bytes to flip", 1, 4096))}, true);
  k.info.instant = true;
  k.info.check = check_clients_target;
  k.info.parse = [](const fault_entry& f, const std::string&) -> std::shared_ptr<const fault_settings> {
    auto s = std::make_shared<journal_corrupt_settings>();
    s->bytes = f.fields.value("bytes", 16);
    return s;
  };
  k.prepare = [](prepared_fault& p, const fault_entry& f, const fault_env& env) {
    const int bytes = settings_of<journal_corrupt_settings>(f)->bytes;
    client_steps(p, f, env, [bytes](const std::string& c, std::uint64_t seed) {
      return nlohmann::json{{"op", "journal_corrupt"}, {"client", c}, {"bytes", bytes}, {"seed", seed}};
    });
  };
  return k;
}

}  // namespace syncstorm::injectors::kinds
