// syncd's event log: one JSON object per line on stderr ({"ts", "level", "pod", "event", ...}),
// and the bug log of the op ids drop-every dropped and corrupt-every corrupted (one id per line,
// to --bug-log or to stderr as `dropped <id>` / `corrupted <id>`). Every function is thread-safe (one mutex around each write); lines are written
// with one write(2) each so they survive a kill right after.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace syncstorm::syncd {

// Call once at start, before other threads exist. `bug_log_path` empty: dropped ids to stderr.
// Throws std::runtime_error when the bug log cannot be opened.
void log_init(std::string pod, const std::string& bug_log_path);

void log_event(std::string_view event, const nlohmann::json& fields = nlohmann::json::object(),
               std::string_view level = "info");

// Appends each id to the bug log before the ack that carries it is sent (dropped by drop-every,
// or corrupted by corrupt-every; on stderr each line starts with `what`).
void log_dropped(const std::vector<std::string>& ids, std::string_view what = "dropped ");

}  // namespace syncstorm::syncd
