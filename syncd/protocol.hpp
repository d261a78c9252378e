// Sync protocol v1 (DESIGN §4) as syncd reads and writes it: request-target and query parsing,
// push body validation (with §9-style one-line reasons for 400s), and the small JSON bodies syncd
// renders itself. The change entries and push results are rendered by PostgreSQL (db.cpp) and
// passed through. Pure functions on values; safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace syncstorm::syncd {

// Longest accepted push body and op count; larger pushes get a 400 with the limit in the reason.
inline constexpr std::size_t max_push_body = 4 << 20;
inline constexpr std::size_t max_push_ops = 5000;

// A request target split into its path and percent-decoded query parameters (in order).
struct target {
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;

  const std::string* param(std::string_view name) const;
};
target parse_target(std::string_view raw);

// Streams are client-chosen names; syncd accepts 1-200 bytes without control characters,
// commas (the ws `streams=` separator) or quotes/backslashes/braces (PostgreSQL array syntax).
bool valid_stream(std::string_view s);
// "S1,S2" → streams, each valid and at most `max` of them; false with a reason otherwise.
bool parse_stream_list(std::string_view text, std::vector<std::string>& out, std::string& error,
                       std::size_t max = 1000);
// A non-negative decimal integer (cseq, after, limit).
std::optional<std::int64_t> parse_count(std::string_view s);

enum class op_action : char { store = 's', drop = 'd', dup = 'D', corrupt = 'C' };

// A push body that passed validation: the client name and the ops, normalized to the fields the
// database function reads.
struct push_batch {
  std::string client;
  nlohmann::json ops = nlohmann::json::array();
  std::vector<std::string> ids;  // ops[i].id, in order
};

// Validates `body` as {"client": C, "ops": [...]}. On failure returns false and sets `error` to
// a one-line reason: `ops[3].kind: found "foo"; expected one of append, add, set`.
bool parse_push(std::string_view body, push_batch& out, std::string& error);

// The JSON array passed to syncd_push(): each op plus its action ("s" store, "d" drop, "D" dup).
// `actions` is empty (all store) or one per op.
std::string db_ops_param(const push_batch& batch, const std::vector<op_action>& actions);

// {"acked": [every id], "conflicts": [], "cseq": 0}: the ack-before-commit bug's early reply.
std::string ack_all_body(const push_batch& batch);

// {"error": reason}
std::string error_body(std::string_view reason);

// A PostgreSQL text[] literal of valid stream names: {"a","b"}.
std::string pg_text_array(const std::vector<std::string>& items);

}  // namespace syncstorm::syncd
