// Reads a stack's stored data back for the audit (DESIGN §7): every change and the current
// records of a set of streams, either through the sync API (the protocol profile's changes feed
// and records endpoint) or straight from syncd's PostgreSQL tables when given a DSN. The result
// is converted to the audit's shapes (core/audit.hpp); run_audit judges it.
//
// Through the API: blocking HTTP/1.1 over one keep-alive connection (https with the target's TLS
// settings), the target's headers on every request (values never logged or put in errors). The
// changes feed is paged with the profile's cursor, `limit` = page_limit (1000), until a page
// comes back empty (cursors are text: CouchDB 2+ sequences are opaque): a global feed is read once from cursor "0" and filtered to the audited
// streams; a per-stream feed is read once per stream. Records are read once per stream (not at
// all when the profile has no records endpoint). Each request is bounded by
// `timeout_us` (connect, TLS handshake, write and the whole response); a connection error, a
// timeout or a 5xx is retried up to 5 times with backoff (0.25 s doubling to 2 s), since the
// stack may still be recovering from a fault. A 4xx or a reply the profile cannot parse is
// not retried.
//
// Through SQL: libpq to `dsn` (URI or key=value; ${env:} already resolved by the caller), in one
// READ ONLY REPEATABLE READ transaction (changes and records from one snapshot), each table
// streamed through a cursor 10,000 rows at a time, only the audited streams, records with a
// version > 0 (as GET /v1/records lists them). `timeout_us` bounds the connection and each
// statement; a failed connection is retried like an API request.
//
// audit_change.order is the server's cursor (cseq) as a number when every cursor of the read
// parses as an integer, else the position in the read (per-stream feeds: ordered within each
// stream, which is all the audit compares).
//
// Failures throw audit_read_error with one line ("audit via api: GET /v1/changes?after=0&limit=1000
// on http://127.0.0.1:8080: HTTP 503 after 6 attempts: not ready"), never containing a header
// value or the DSN's password. Nothing else escapes.
//
// Threading: read_server_state blocks the calling thread and uses only its own io_context and
// connection; concurrent calls are independent.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "core/audit.hpp"
#include "loadgen/http_model.hpp"
#include "loadgen/sync_protocol.hpp"

namespace syncstorm::loadgen {

struct audit_source {
  bool via_sql = false;
  // via the API
  std::string http_base;                                     // http(s)://host[:port][/prefix]
  std::vector<std::pair<std::string, std::string>> headers;  // resolved; never logged
  tls_spec tls;
  sync_profile profile;
  // via SQL
  std::string dsn;                       // resolved; the password is never logged
  std::int64_t timeout_us = 10'000'000;  // per request / statement
  int retries = 5;                       // extra attempts on a transient failure
  std::size_t page_limit = 1000;         // changes per API page (>= 1)
};

struct server_state {
  std::vector<audit_change> changes;  // in read order
  std::vector<audit_record> records;  // per stream, in the server's order
  std::string source;                 // "api <base url>" or "sql host=… dbname=… user=…"
  bool orders_are_cursors = true;     // every change's order is its numeric cursor (else its position)
  std::uint64_t requests = 0;         // HTTP requests or SQL statements issued
};

class audit_read_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads the changes and records of `streams` (an empty list reads nothing). Throws
// audit_read_error; see above.
server_state read_server_state(const audit_source& source, const std::vector<std::string>& streams);

// The DSN without its password, as "host=… port=… dbname=… user=…" (for errors and the report's
// source); "(unparsable DSN)" when libpq cannot parse it.
std::string redact_dsn(const std::string& dsn);

}  // namespace syncstorm::loadgen
