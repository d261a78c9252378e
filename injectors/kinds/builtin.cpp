// See builtin.hpp.
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors {

void register_builtin_fault_kinds() {
  static const bool done = [] {
    using namespace kinds;
    for (auto make : {kill_kind, pause_kind, rolling_restart_kind, partition_kind, latency_kind, jitter_kind,
                      bandwidth_kind, reset_kind, blackhole_kind, http_error_kind, disk_fill_kind, db_failover_kind,
                      client_crash_kind, journal_corrupt_kind})
      register_fault_kind(make());
    return true;
  }();
  (void)done;
}

namespace kinds {

fault_kind basic_kind(std::string name, std::string doc, std::vector<field> fields, bool needs_target) {
  fault_kind k;
  k.info.name = std::move(name);
  k.info.doc = std::move(doc);
  k.info.fields = std::move(fields);
  k.info.needs_target = needs_target;
  k.info.available = true;
  return k;
}

node_ptr signal_node() { return enumeration("signal", {"SIGKILL", "SIGTERM", "SIGINT", "SIGQUIT"}); }

std::string str_or(const nlohmann::json& o, const char* key, std::string def) {
  return o.contains(key) && o[key].is_string() ? o[key].get<std::string>() : def;
}

}  // namespace kinds
}  // namespace syncstorm::injectors
