// The `offline` load model (DESIGN §5): `clients` POS clients that go offline in given windows
// (or random ones by duty cycle and seed), keep writing to their journal and queue meanwhile
// without touching the network, and drain on reconnect. It is the terminal model (journal,
// batcher, backoff, breaker, conflicts, audit records, client faults) with an online gate per
// client: offline_config_from maps the entry onto a terminal_config (one terminal per store,
// so one stream per client) and make_terminal_model runs it. Its extra metrics
// (offline.resume_time, offline.drain_time, offline.peak_queue, offline.cut) and events are
// described in terminal_model.hpp.
//
// Scenario keys (load entry): clients, offline [{at, for}] (run clock; scaled by --time-scale),
// random {duty_cycle, period} (each client its own seeded windows over the phases' length), rate
// (per client), and the terminal keys ops, keys, batch, timeout, retry, breaker, conflict,
// journal, drain, stream_prefix (default "<load name>-c": client i writes stream
// "<prefix><i>"). Clients are named "c<i>" (client faults target "<load>/c<i>"); op ids are
// "<run tag>-c<i>-<seq>".
//
// Threading: a pure mapping; the model's threading is terminal_model's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "loadgen/terminal_model.hpp"

namespace syncstorm::loadgen {

// Maps a validated `offline` load entry onto a terminal config; the arguments are
// terminal_config_from's. Throws std::invalid_argument with one line naming `where` + the key.
terminal_config offline_config_from(const std::string& name, const nlohmann::json& fields,
                                    const std::vector<phase_spec>& phases, const nlohmann::json& target,
                                    const std::string& base_url, const std::string& run_dir, const std::string& run_tag,
                                    std::uint64_t seed, bool resolve, const std::string& where = "scenario.load[]");
// The entry's own part (as terminal_settings_from); bind_terminal adds the target and the run.
terminal_config offline_settings_from(const std::string& name, const nlohmann::json& fields,
                                      const std::vector<phase_spec>& phases,
                                      const std::string& where = "scenario.load[]");

}  // namespace syncstorm::loadgen
