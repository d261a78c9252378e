// The built-in fault kinds of DESIGN §6, one file each in this folder; each defines its
// fault_kind (keys, typed settings, checks, prepare). register_builtin_fault_kinds
// (injectors/fault_kind.hpp) registers them all.
#pragma once

#include "injectors/fault_kind.hpp"
#include "injectors/net_faults.hpp"

#include <functional>
#include <string>
#include <vector>

namespace syncstorm::injectors::kinds {

// Every kind file speaks the spec tree and JSON.
using json = nlohmann::json;
using namespace spec;

fault_kind kill_kind();
fault_kind pause_kind();
fault_kind rolling_restart_kind();
fault_kind partition_kind();
fault_kind latency_kind();
fault_kind jitter_kind();
fault_kind bandwidth_kind();
fault_kind reset_kind();
fault_kind blackhole_kind();
fault_kind http_error_kind();
fault_kind disk_fill_kind();
fault_kind db_failover_kind();
fault_kind client_crash_kind();
fault_kind journal_corrupt_kind();

// A kind with its name, doc and keys set (available; the caller adds the rest).
fault_kind basic_kind(std::string name, std::string doc, std::vector<spec::field> fields, bool needs_target);

// The `signal` key of kill and rolling_restart.
spec::node_ptr signal_node();
// A string member of `o`, or `def`.
std::string str_or(const nlohmann::json& o, const char* key, std::string def = {});

// The keys and checks every network kind shares (the path it acts on), and its settings parse;
// `check` runs after the shared path checks.
fault_kind network_kind(std::string name, std::string doc, std::vector<spec::field> fields, net_action action,
                        reference_check check = {});
spec::node_ptr path_node();
spec::node_ptr direction_node();

// The client kinds' target check, and their steps: one `step(client, seed)` per picked terminal.
void check_clients_target(const nlohmann::json& f, const reference_context& ctx, const std::string& p,
                          spec::errors& out);
void client_steps(prepared_fault& p, const fault_entry& f, const fault_env& env,
                  const std::function<nlohmann::json(const std::string& client, std::uint64_t seed)>& step);

}  // namespace syncstorm::injectors::kinds
