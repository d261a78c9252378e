// The sync protocol as the models and the audit speak it: protocol v1 (DESIGN §4) by default, or
// another sync API through a protocol profile (paths, body templates, JSON pointers; DESIGN §4,
// docs/profiles.md). Pure: builds request targets and bodies, parses reply bodies; no sockets.
// The terminal/offline/fanout models put these bytes on their own connections; the audit reads
// the stack back with them.
//
// Scenario key: target.profile (an object; absent = protocol v1). Shape:
//   {"push":    {"path": "/v1/push", "method": "POST",
//                "body": {"client": "{{client}}", "ops": "{{ops}}"},      // the envelope template
//                "op":   {"id": "{{id}}", "stream": "{{stream}}", ...},    // one op's template
//                "ack":  {"acked": "/acked"}                               // acks by a pointer to ids
//                   or   {"results": "/results", "id": "/id", "status": "/status",
//                         "ok": ["ok", "duplicate"], "conflict": ["stale"]} // or per-op results
//                "conflicts": {"list": "/conflicts", "id": "/id", "key": "/key",
//                              "version": "/version", "value": "/value"}},
//    "changes": {"path": "/v1/changes", "feed": "global" | "per_stream",
//                "stream_param": "stream", "cursor_param": "after", "limit_param": "limit",
//                "list": "/changes", "next": "/next", "id": "/id", "stream": "/stream",
//                "seq": "/seq", "cursor": "/cseq", "commit_us": "/commit_us", "kind": "/kind",
//                "key": "/key", "delta": "/delta", "value": "/value"},
//    "records": {"path": "/v1/records", "stream_param": "stream", "list": "/records",
//                "key": "/key", "value": "/value", "version": "/version"},
//    "ws":      {"path": "/v1/ws", "streams_param": "streams", "cursor_param": "after"},
//    "ops": ["append", "add", "set"], "description": "…"}
// Additions for APIs such as CouchDB's (docs/profiles.md): `push.ack.ok_flag` (a pointer to a
// boolean that acks the op when true) and `push.ack.missing_status` (the status of a result
// with nothing at `status`: CouchDB's results carry "error" only when something went wrong);
// `query` on push, changes, records and ws (fixed query parameters); `"records": null` and
// `"ws": null` (the API has no such endpoint); `ops` (the op kinds the API takes). Cursors are
// text throughout (CouchDB 2+ sequences are opaque strings). Instead of an object,
// target.profile may name a shipped profile (profiles/*.json, built in): "couchdb".
// Every key is optional and defaults to protocol v1. In templates a string that is exactly
// "{{name}}" is replaced by the value with its JSON type (number, string, array); inside a longer
// string the value is spliced in as text. Op placeholders: id, stream, seq, t_us, kind, key,
// delta, base_version, value, client. A template member whose placeholder has no value for an op
// (key of an append) is left out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace syncstorm::loadgen {

enum class op_kind { append, add, set };
std::string_view to_string(op_kind k) noexcept;

// One operation a client created (DESIGN §4). `value` is the body of a set (and the payload of
// an append, if any); `delta` the counter change of an add.
struct sync_op {
  std::string id;         // unique across the run: "<run tag>-<client>-<seq>"
  std::string stream;     // a store
  std::int64_t seq = 0;   // per client, from 1, increasing
  std::int64_t t_us = 0;  // created, µs since the run's start (engine clock)
  op_kind kind = op_kind::append;
  std::string key;                // add, set
  double delta = 0;               // add
  std::int64_t base_version = 0;  // set
  nlohmann::json value;           // set (and optional append payload)
};

using query_params = std::vector<std::pair<std::string, std::string>>;  // name, value (not encoded)

struct sync_profile {
  std::string name;  // the shipped profile's name ("couchdb"); empty for one written in the scenario
  // The op kinds the API takes (`ops`): a load whose mix has another kind is a validation error.
  std::vector<op_kind> kinds = {op_kind::append, op_kind::add, op_kind::set};
  // push
  std::string push_path = "/v1/push", push_method = "POST";
  nlohmann::json push_body = {{"client", "{{client}}"}, {"ops", "{{ops}}"}};
  nlohmann::json push_op;  // null: protocol v1's op shape
  bool ack_by_results = false;
  std::string acked_ptr = "/acked";  // ack_by_results false
  std::string results_ptr, result_id_ptr = "/id", result_status_ptr = "/status";
  std::vector<std::string> result_ok = {"ok"};  // statuses that ack an op
  // Statuses that mark a conflict (a stale `set`): the result entry itself holds the conflict,
  // read with the conflict_*_ptr pointers (id, key, version, value). Other statuses: rejected.
  std::vector<std::string> result_conflict;
  // A pointer to a boolean inside one result: true acks the op whatever its status (empty: none).
  std::string result_flag_ptr;
  // The status of a result with nothing at result_status_ptr (none: such a result is malformed).
  std::optional<std::string> missing_status;
  query_params push_query;
  std::string conflicts_ptr = "/conflicts", conflict_id_ptr = "/id", conflict_key_ptr = "/key",
              conflict_version_ptr = "/version", conflict_value_ptr = "/value";
  // changes
  std::string changes_path = "/v1/changes";
  bool changes_per_stream = false;  // false: one global feed (no stream parameter)
  std::string stream_param = "stream", cursor_param = "after", limit_param = "limit";
  std::string changes_ptr = "/changes", next_ptr = "/next";
  std::string change_id_ptr = "/id", change_stream_ptr = "/stream", change_seq_ptr = "/seq",
              change_cursor_ptr = "/cseq", change_commit_ptr = "/commit_us", change_kind_ptr = "/kind",
              change_key_ptr = "/key", change_delta_ptr = "/delta", change_value_ptr = "/value";
  query_params changes_query;
  // records (has_records false: the API has none; no convergence audit, no set or add ops)
  bool has_records = true;
  query_params records_query;
  std::string records_path = "/v1/records", records_stream_param = "stream", records_ptr = "/records",
              record_key_ptr = "/key", record_value_ptr = "/value", record_version_ptr = "/version";
  // WebSocket (has_ws false: the API has none; no fanout load)
  bool has_ws = true;
  query_params ws_query;
  std::string ws_path = "/v1/ws", ws_streams_param = "streams", ws_cursor_param = "after";
};

// Parses target.profile. Throws std::invalid_argument with one line naming the path under
// `where` ("scenario.target.profile.push.ack.acked: found 3; expected a JSON pointer like \"/acked\"").
sync_profile parse_profile(const nlohmann::json& j, std::string_view where = "scenario.target.profile");
// Every problem with a profile document, one line each (for `validate`); empty when it is fine.
std::vector<std::string> profile_errors(const nlohmann::json& j, std::string_view where = "scenario.target.profile");

// The names of the shipped profiles (profiles/*.json, built into the binary), sorted, and one's
// document (nullptr for an unknown name).
std::vector<std::string> shipped_profile_names();
const nlohmann::json* shipped_profile(std::string_view name);

// What a profile calls itself in messages: "the couchdb profile" or "target.profile".
std::string profile_label(const sync_profile& p);

// The push request target (path and the profile's fixed query parameters).
std::string push_target(const sync_profile& p);

// The push request body for `ops` from `client`.
std::string render_push(const sync_profile& p, std::string_view client, const std::vector<sync_op>& ops);

struct push_conflict {
  std::string id, key;
  std::int64_t version = 0;
  nlohmann::json value;
};

// What a push reply said. A reply that does not parse, or lacks the ack list, is `malformed`
// with a one-line reason (a counted error for the model, never an exception).
struct push_reply {
  bool malformed = false;
  std::string reason;
  std::vector<std::string> acked;
  std::vector<push_conflict> conflicts;
  std::vector<std::string> rejected;  // per-op results whose status is not in result_ok
};
push_reply parse_push_reply(const sync_profile& p, std::string_view body);

// Request targets (path and query, percent-encoded).
std::string changes_target(const sync_profile& p, const std::string* stream, std::string_view cursor,
                           std::size_t limit);
std::string records_target(const sync_profile& p, const std::string& stream);
std::string ws_target(const sync_profile& p, const std::vector<std::string>& streams, std::string_view cursor);

// One committed change as the server reports it.
struct server_change {
  std::string id, stream, cursor;  // cursor: the server's position (cseq), as text
  std::int64_t seq = 0, commit_us = 0;
  std::string kind, key;
  double delta = 0;
  nlohmann::json value;
  // Which fields the entry had (the audit compares only those): 1 stream, 2 seq, 4 kind, 8 key,
  // 16 delta, 32 value (core/audit.hpp's change_field bits).
  std::uint8_t fields = 0;
};
struct changes_page {
  bool malformed = false;
  std::string reason;
  std::vector<server_change> changes;
  std::string next;  // the cursor to ask from next
};
changes_page parse_changes(const sync_profile& p, std::string_view body);
// One WebSocket frame: a change in the changes-list entry shape.
std::optional<server_change> parse_change_frame(const sync_profile& p, std::string_view frame, std::string& reason);

struct server_record {
  std::string key;
  nlohmann::json value;
  std::int64_t version = 0;
};
struct records_page {
  bool malformed = false;
  std::string reason;
  std::vector<server_record> records;
};
records_page parse_records(const sync_profile& p, std::string_view body);

}  // namespace syncstorm::loadgen
