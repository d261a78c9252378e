// What the `terminal` and `offline` models share: the sync client's keys and metrics (they run
// the same client, loadgen/terminal_model), its settings type, and the built load with the
// client faults' hooks (client_crash, journal_corrupt act on its terminals).
#pragma once

#include "engine/models/builtin.hpp"
#include "loadgen/terminal_model.hpp"

#include <string>
#include <vector>

namespace syncstorm::engine::models {

struct sync_client_settings final : load_settings {
  loadgen::terminal_config c;  // the entry's keys with defaults; the target and run bound at build
};

std::vector<spec::field> sync_client_fields();
std::vector<metric_info> sync_client_metrics();

// The reference check both share: the op mix against target.profile (loadgen::check_profile_use).
void sync_client_check(const nlohmann::json& entry, const reference_context& ctx, const std::string& path,
                       spec::errors& out);

// Phases with neither rate nor to need the entry's per-client `rate`.
bool sync_client_needs_rate(const nlohmann::json& entry);

// Builds the entry's terminals against the run (settings bound to ctx).
std::unique_ptr<load_instance> build_sync_client(const load_entry& e, const load_context& ctx);

// The dry-run line shared by both: lanes, op mix, where they sync, timeout, drain, journals.
std::string describe_sync_client(const loadgen::terminal_config& c, const std::string& name);

// The settings bound for --dry-run: placeholders for the run directory and tag.
loadgen::terminal_config planned_sync_client(const load_entry& e, const plan_context& ctx);

}  // namespace syncstorm::engine::models
