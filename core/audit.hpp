// The data audit (DESIGN §7): after the load stopped, faults were reverted and queues drained,
// what the clients believe (every op they created and whether it was acknowledged) is compared
// with what the stack stored (its changes and records, read back through the API or straight
// from PostgreSQL). Pure: the readers live in loadgen/audit_reader.hpp; no I/O here.
//
// Definitions (report.json `audit`, metrics audit.*):
//   acked            ops the server acknowledged (at least once)
//   present          acked ops found among the server's changes
//   lost             acked ops not found (the RPO in ops); the first 100 ids in lost_ids, and the
//                    age of the oldest lost op (run end − its creation) as lost_oldest_age_us
//   duplicates       extra copies: an op id stored n > 1 times counts n − 1
//   in_doubt         ops sent but never acknowledged (timeouts, cut connections); of those,
//                    in_doubt_present were stored anyway (that is allowed, not a loss)
//   order_violations pairs of one client's ops on one stream stored in the opposite order of
//                    their seq (by the server's cursor); a set the client rebased after a
//                    conflict is a new write, stored after the ops acked meanwhile by design,
//                    and is left out
//   diverged         keys whose server value differs from the history the server itself
//                    stored: for `add` keys the sum of the deltas of the distinct stored ops;
//                    for `set` keys the value of the last stored set op (by cursor); plus views
//                    (fanout subscribers) that differ from the server's records. One per key
//                    (a record no stored op explains counts too; a key mixing both kinds is
//                    replayed in cursor order), plus one per differing view
//   unknown          changes whose id no client created (another writer; reported, not judged)
//   fanout_mismatched  (metric fanout.mismatched) changes delivered to fanout subscribers that
//                    differ from the stored change at that cursor (id, kind, key, delta, value)
//                    or that the server has no change at, plus cursors two subscribers were sent
//                    different changes for. Judged when the feed's cursors are the server's
//                    (numeric); every delivered stream is read back
//   mismatched       acked ops whose stored copy differs from what the client sent: stream, seq,
//                    kind, key, delta (exactly, as integers when both are) or payload (a digest
//                    of the JSON value, numbers normalized); each listed with the first field
//                    that differs. A field the server does not report (a profile that maps no
//                    pointer for it) is not compared
//   phantoms         stored values no client wrote: changes whose id no client created, plus
//                    records of keys only `set` ops wrote whose value is none of the values the
//                    clients sent for that key (or of keys no op wrote at all)
//   inflight         per fault: ops sent before the fault was applied and not acknowledged by
//                    then (how much loss the run could have seen)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace syncstorm {

enum class audit_op_state {
  acked,     // an ack was received
  in_doubt,  // sent at least once, never acknowledged (no definitive answer)
  rejected,  // definitively not applied: a conflict kept by the `queue` policy, a per-op error
  unsent,    // never left the client (still queued at the end, or parked)
};

// One op as the client that created it saw it.
struct audit_op {
  std::string id, client, stream, key;
  std::int64_t seq = 0;
  char kind = 'a';                                 // 'a' append, 'd' add, 's' set
  double delta = 0;                                // add
  nlohmann::json value;                            // set
  std::int64_t created_us = 0;                     // µs since the run's start
  std::int64_t first_sent_us = -1, acked_us = -1;  // -1: never
  audit_op_state state = audit_op_state::unsent;
  bool rebased = false;                 // a conflicted set pushed again on the server's version
  std::optional<std::uint64_t> digest;  // payload_digest of the value sent (append, set), if known
};

// What a stored change reports (audit_change::fields): a field the server's feed has no
// pointer for is not compared with the op.
enum change_field : std::uint8_t {
  cf_stream = 1,
  cf_seq = 2,
  cf_kind = 4,
  cf_key = 8,
  cf_delta = 16,
  cf_value = 32,
  cf_all = 63
};

// JSON equality as the audit judges values: numbers agree exactly when both are integral (5, 5.0
// and PostgreSQL's 5.00 agree), else within a relative 1e-9. Views are compared with it too.
bool same_value(const nlohmann::json& a, const nlohmann::json& b);

// A digest of a JSON value that the server may have re-encoded: object keys sorted, numbers
// with an integral value written as integers (5, 5.0 and PostgreSQL's 5.00 agree). FNV-1a 64.
std::uint64_t payload_digest(const nlohmann::json& v);

// One stored change as the server reports it (loadgen::server_change, converted).
struct audit_change {
  std::string id, stream, key, kind;
  std::int64_t seq = 0;
  std::int64_t order = 0;  // the server's cursor (cseq) as a number, or the read position
  double delta = 0;
  nlohmann::json value;
  std::uint8_t fields = cf_all;  // change_field bits: which of the above the server reported
};

struct audit_record {
  std::string stream, key;
  nlohmann::json value;
  std::int64_t version = 0;
};

// A materialized view a subscriber kept (fanout), to compare with the server's records.
struct audit_view {
  std::string subscriber, stream;
  std::vector<audit_record> records;
};

// One change a fanout subscriber received: its stream, cursor and change_digest (the first
// copy; subscribers that disagree are counted by the model as delivery_disagreements).
struct audit_delivery {
  std::string stream;
  std::int64_t cursor = 0;
  std::uint64_t digest = 0;
};

// A digest of one change as the feed reports it (id, kind, key, delta, value canonical as in
// payload_digest): what a frame and the stored change must agree on.
std::uint64_t change_digest(std::string_view id, std::string_view kind, std::string_view key, double delta,
                            const nlohmann::json& value);

struct audit_fault {
  std::string name;
  std::int64_t applied_us = 0;
};

struct audit_input {
  std::vector<audit_op> ops;          // every client's ops
  std::vector<audit_change> changes;  // everything the server stored on the audited streams
  std::vector<audit_record> records;  // the server's current records on those streams
  std::vector<audit_view> views;
  std::vector<audit_delivery> delivered;     // fanout: one per (stream, cursor) received
  std::uint64_t delivery_disagreements = 0;  // cursors received with two different changes
  bool orders_are_cursors = true;            // audit_change::order is the server's cursor
  std::vector<audit_fault> faults;
  std::int64_t run_end_us = 0;
  std::string source;  // "api http://…" or "sql" (never a password)
};

struct audit_result {
  std::uint64_t ops = 0, acked = 0, present = 0, lost = 0, duplicates = 0, in_doubt = 0, in_doubt_present = 0,
                rejected = 0, unsent = 0, order_violations = 0, diverged = 0, diverged_views = 0, unknown = 0,
                mismatched = 0, phantoms = 0, fanout_mismatched = 0;
  bool deliveries_judged = false;  // some subscriber received changes (fanout.mismatched has a value)
  // Ops the client holds as rejected (or never sent) that the server stored anyway: not a loss,
  // but the client's belief and the server disagree (reported, not part of `diverged`).
  std::uint64_t rejected_present = 0, unsent_present = 0;
  std::vector<std::string> lost_ids;               // first 100, in creation order
  std::optional<std::int64_t> lost_oldest_age_us;  // RPO as an age
  // First 100 each: duplicated op ids (creation order), diverged keys ("stream/key", sorted),
  // diverged views ("subscriber/stream", in input order).
  std::vector<std::string> duplicate_ids, diverged_keys, diverged_view_ids;
  // First 100 each: mismatched ops (creation order) with the first differing field; phantom
  // change ids (server order) and phantom record keys ("stream/key", sorted).
  struct mismatch {
    std::string id, field;
    nlohmann::json sent, stored;
  };
  std::vector<mismatch> mismatched_ids;
  std::vector<std::string> phantom_ids, phantom_keys;
  std::vector<std::string> fanout_mismatched_ids;  // first 100, "stream@cursor" in input order
  struct fault_inflight {
    std::string name;
    std::uint64_t ops = 0;
  };
  std::vector<fault_inflight> inflight;
  std::string source;  // as given in audit_input (to_json writes its first word, "api" or "sql")
  // Whether keys were judged against the server's records (report.json `audit.convergence`):
  // "judged", or "not judged: …" when no client op wrote a key (set or add) and no subscriber
  // kept a view — then only ids and each client's seq order were judged, and a profile without
  // a records endpoint (CouchDB's) needs none.
  std::string convergence = "judged";
  // report.json `audit`: acked, present, lost, duplicates, in_doubt, order_violations, diverged,
  // lost_ids, plus the rest of the fields above.
  nlohmann::json to_json() const;
};

audit_result run_audit(const audit_input& in);

}  // namespace syncstorm
