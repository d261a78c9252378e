// The audit's readers (see audit_reader.hpp). The API reader drives the HTTP client
// (http_client.hpp) on a private io_context from the calling thread, one exchange at a time, each
// with its deadline: a stack that is still recovering must not hang the audit. The SQL reader
// uses libpq's blocking calls with connect_timeout and statement_timeout. Neither shares state.
#include "loadgen/audit_reader.hpp"

#include "core/json_limits.hpp"
#include "loadgen/http_client.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

#include <libpq-fe.h>

#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <thread>
#include <tuple>
#include <unordered_set>

#include "core/net.hpp"

namespace syncstorm::loadgen {
namespace {

constexpr std::size_t max_pages = 10'000'000;  // a bound on a feed that never ends
constexpr int sql_fetch_rows = 10'000;
constexpr std::uint64_t body_limit = 512ull << 20;  // one records reply may be large

std::chrono::milliseconds retry_delay(int attempt) {  // attempt 1, 2, …: 250 ms doubling, at most 2 s
  return std::chrono::milliseconds(std::min<std::int64_t>(250ll << std::min(attempt - 1, 4), 2000));
}

// One line: newlines and control characters become spaces; at most `max` characters.
// Valid UTF-8 whatever the server sent (an error body of arbitrary bytes ended a run in
// std::terminate when report.json was written: issue #23's 300 s hostile-server run).
std::string one_line(std::string_view s, std::size_t max = 160) {
  std::string out = line_excerpt(s, max);
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

std::optional<std::int64_t> as_int64(std::string_view s) {
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// Orders by the cursor when every cursor is an integer (returns true), else by read position.
bool assign_orders(std::vector<audit_change>& changes, const std::vector<std::string>& cursors) {
  bool numeric = true;
  std::vector<std::int64_t> values(cursors.size());
  for (std::size_t i = 0; numeric && i < cursors.size(); ++i) {
    auto v = as_int64(cursors[i]);
    numeric = v.has_value();
    if (v) values[i] = *v;
  }
  for (std::size_t i = 0; i < changes.size(); ++i)
    changes[i].order = numeric ? values[i] : static_cast<std::int64_t>(i);
  return numeric;
}

audit_change to_audit(server_change&& c) {
  audit_change a;
  a.id = std::move(c.id);
  a.stream = std::move(c.stream);
  a.key = std::move(c.key);
  a.kind = std::move(c.kind);
  a.seq = c.seq;
  a.delta = c.delta;
  a.value = std::move(c.value);
  a.fields = c.fields;
  return a;
}

// ---- API ----------------------------------------------------------------------------------------

struct api_reply {
  int status = 0;  // 0: no reply (see error)
  std::string body;
  std::string error;  // transport failure, one line
  bool transient() const { return status == 0 || status >= 500 || status == 429; }
};

// One keep-alive connection to the target; get() is one attempt with one deadline.
class api_client {
 public:
  explicit api_client(const audit_source& src) : src_(src) {
    try {
      parse_url(src.http_base);
    } catch (const std::invalid_argument& e) {
      throw audit_read_error(std::string("audit via api: target.endpoints.http: ") + e.what());
    }
    if (src.http_base.find('?') != std::string::npos)
      throw audit_read_error("audit via api: target.endpoints.http: found \"" + src.http_base +
                             "\"; expected a base URL without a query");
    try {
      site_ = http_site::make(src.http_base, src.headers, src.tls, "target.endpoints.http");
    } catch (const std::invalid_argument& e) {
      throw audit_read_error(std::string("audit via api: ") + e.what());
    }
    site_.headers.insert(site_.headers.begin(), {"Accept", "application/json"});
    site_.user_agent = "syncstorm-audit";
    site_.body_limit = body_limit;
  }

  std::string where(const std::string& target) const { return "GET " + target + " on " + src_.http_base; }

  api_reply get(const std::string& target) {
    if (site_.endpoints.empty()) {
      // Resolved at the first request, and again after a failure: a name that does not
      // resolve yet (a stack still coming up) is a transient failure.
      if (std::string why = site_.try_resolve(io_); !why.empty()) return api_reply{0, {}, why};
    }
    if (!client_) client_ = std::make_unique<http_client>(io_, site_);
    http_reply r;
    io_.restart();
    net::co_spawn(
        io_, [&]() -> net::awaitable<void> { r = co_await client_->async_request("GET", target, "", src_.timeout_us); },
        [&](std::exception_ptr e) {
          if (!e) return;
          try {
            std::rethrow_exception(e);
          } catch (const std::exception& x) {
            r = http_reply{error_bucket::read, 0, {}, std::string("internal: ") + x.what()};
          }
        });
    io_.run();  // the request's deadline bounds connect, handshake, write and read
    if (r.failed && r.failed != error_bucket::status) {
      client_.reset();
      site_.endpoints.clear();
      return api_reply{0, {}, r.error};
    }
    return api_reply{r.status, std::move(r.body), {}};
  }

 private:
  const audit_source& src_;
  http_site site_;
  net::io_context io_;
  std::unique_ptr<http_client> client_;  // after io_: destroyed first
};

// GET with retries on transient failures; returns a 2xx body or throws.
std::string get_ok(api_client& client, const audit_source& src, const std::string& target, std::uint64_t& requests) {
  for (int attempt = 1;; ++attempt) {
    ++requests;
    api_reply r = client.get(target);
    if (r.status >= 200 && r.status < 300) return std::move(r.body);
    const std::string what = r.status ? "HTTP " + std::to_string(r.status) : r.error;
    if (!r.transient() || attempt > src.retries) {
      std::string msg = "audit via api: " + client.where(target) + ": " + what;
      if (attempt > 1) msg += " after " + std::to_string(attempt) + " attempts";
      if (r.status && !r.body.empty()) msg += ": " + one_line(r.body);
      throw audit_read_error(msg);
    }
    std::this_thread::sleep_for(retry_delay(attempt));
  }
}

server_state read_via_api(const audit_source& src, const std::vector<std::string>& streams) {
  server_state st;
  st.source = "api " + src.http_base;
  api_client client(src);
  const auto& p = src.profile;
  std::vector<std::string> cursors;

  // Pages a feed (one stream, or the global one) until an empty page.
  auto read_feed = [&](const std::string* stream, const std::unordered_set<std::string_view>* keep) {
    std::string cursor = "0";
    for (std::size_t page = 0; page < max_pages; ++page) {
      const std::string target = changes_target(p, stream, cursor, std::max<std::size_t>(1, src.page_limit));
      changes_page cp = parse_changes(p, get_ok(client, src, target, st.requests));
      if (cp.malformed)
        throw audit_read_error("audit via api: " + client.where(target) + ": " + one_line(cp.reason, 240));
      if (cp.changes.empty()) return;
      for (auto& c : cp.changes) {
        if (keep && !keep->contains(c.stream)) continue;
        if (stream && c.stream.empty()) c.stream = *stream;  // a per-stream feed may leave it out
        cursors.push_back(c.cursor);
        st.changes.push_back(to_audit(std::move(c)));
      }
      if (cp.next.empty() || cp.next == cursor)
        throw audit_read_error("audit via api: " + client.where(target) + ": the changes feed did not advance (next " +
                               (cp.next.empty() ? std::string("missing") : "\"" + one_line(cp.next, 40) + "\"") +
                               " after a non-empty page)");
      cursor = std::move(cp.next);
    }
    throw audit_read_error("audit via api: the changes feed did not end after " + std::to_string(max_pages) + " pages");
  };

  if (p.changes_per_stream) {
    for (const auto& s : streams) read_feed(&s, nullptr);
  } else {
    std::unordered_set<std::string_view> keep(streams.begin(), streams.end());
    read_feed(nullptr, &keep);
  }
  st.orders_are_cursors = assign_orders(st.changes, cursors);

  // A profile without a records endpoint (`"records": null`): no records, so no convergence
  // audit; validation allowed only append ops, which the changes alone judge.
  for (const auto& s : streams) {
    if (!p.has_records) break;
    const std::string target = records_target(p, s);
    records_page rp = parse_records(p, get_ok(client, src, target, st.requests));
    if (rp.malformed)
      throw audit_read_error("audit via api: " + client.where(target) + ": " + one_line(rp.reason, 240));
    for (auto& r : rp.records) st.records.push_back({s, std::move(r.key), std::move(r.value), r.version});
  }
  return st;
}

// ---- SQL ----------------------------------------------------------------------------------------

struct pg_conn_deleter {
  void operator()(PGconn* c) const { PQfinish(c); }
};
struct pg_result_deleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using pg_conn = std::unique_ptr<PGconn, pg_conn_deleter>;
using pg_result = std::unique_ptr<PGresult, pg_result_deleter>;

// A failed SQL step: transient ones (connection, server shutting down, serialization) are retried.
struct sql_failure {
  std::string message;
  bool transient = false;
};

sql_failure failure_of(PGconn* c, const PGresult* r, const std::string& what) {
  const char* state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : nullptr;
  const std::string s = state ? state : "";
  std::string msg = r ? PQresultErrorMessage(r) : "";
  if (msg.empty() && c) msg = PQerrorMessage(c);
  const bool transient = !c || PQstatus(c) != CONNECTION_OK || s.empty() || s.rfind("08", 0) == 0 ||
                         s.rfind("57P", 0) == 0 || s == "40001" || s == "40P01" || s == "53300";
  std::string line = what + ": " + one_line(msg, 240);
  if (s == "42P01") line += " (is this syncd's database?)";
  return {line, transient};
}

std::string text_at(const PGresult* r, int row, int col) {
  return PQgetisnull(r, row, col) ? std::string{} : std::string(PQgetvalue(r, row, col), PQgetlength(r, row, col));
}

nlohmann::json json_at(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return nullptr;
  auto j = parse_bounded(std::string_view(PQgetvalue(r, row, col), PQgetlength(r, row, col)));
  return j.is_discarded() ? nlohmann::json(text_at(r, row, col)) : j;
}

double number_at(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return 0;
  const char* v = PQgetvalue(r, row, col);
  return std::strtod(v, nullptr);  // numeric's text is a plain decimal
}

std::int64_t int_at(const PGresult* r, int row, int col) {
  if (PQgetisnull(r, row, col)) return 0;
  return std::strtoll(PQgetvalue(r, row, col), nullptr, 10);
}

class sql_reader {
 public:
  sql_reader(const audit_source& src, server_state& st) : src_(src), st_(st) {}

  // One attempt; nullopt on success.
  std::optional<sql_failure> read(const std::vector<std::string>& streams) {
    st_.changes.clear();
    st_.records.clear();
    const std::string connect_timeout =
        std::to_string(std::max<std::int64_t>(1, (src_.timeout_us + 999'999) / 1'000'000));
    // Our defaults first; the DSN (expanded as a URI or key=value string) comes last and overrides them.
    const char* keys[] = {"connect_timeout",     "application_name", "keepalives", "keepalives_idle",
                          "keepalives_interval", "keepalives_count", "dbname",     nullptr};
    const char* values[] = {connect_timeout.c_str(), "syncstorm-audit", "1", "5", "2", "3", src_.dsn.c_str(), nullptr};
    conn_.reset(PQconnectdbParams(keys, values, 1));
    if (!conn_) return sql_failure{"connect: out of memory", false};
    ++st_.requests;
    if (PQstatus(conn_.get()) != CONNECTION_OK)
      return sql_failure{"connect: " + one_line(PQerrorMessage(conn_.get()), 240), true};
    PQsetNoticeProcessor(
        conn_.get(), [](void*, const char*) {}, nullptr);

    if (auto f =
            command("SET statement_timeout = " + std::to_string(std::max<std::int64_t>(1, src_.timeout_us / 1000))))
      return f;
    if (auto f = command("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) return f;
    const std::string in_streams = "stream = ANY (ARRAY[" + literals(streams) + "]::text[])";
    if (auto f = command("DECLARE audit_changes NO SCROLL CURSOR FOR SELECT cseq, id, stream, seq, kind, key, "
                         "value::text, delta::text FROM syncd_changes WHERE " +
                         in_streams + " ORDER BY cseq"))
      return f;
    if (auto f = fetch_all("audit_changes", 8, [&](const PGresult* r, int i) {
          audit_change c;
          c.order = int_at(r, i, 0);
          c.id = text_at(r, i, 1);
          c.stream = text_at(r, i, 2);
          c.seq = int_at(r, i, 3);
          c.kind = text_at(r, i, 4);
          c.key = text_at(r, i, 5);
          c.value = json_at(r, i, 6);
          c.delta = number_at(r, i, 7);
          st_.changes.push_back(std::move(c));
        }))
      return f;
    if (auto f = command("DECLARE audit_records NO SCROLL CURSOR FOR SELECT stream, key, value::text, version "
                         "FROM syncd_records WHERE " +
                         in_streams + " AND version > 0 ORDER BY stream, key"))
      return f;
    if (auto f = fetch_all("audit_records", 4, [&](const PGresult* r, int i) {
          st_.records.push_back({text_at(r, i, 0), text_at(r, i, 1), json_at(r, i, 2), int_at(r, i, 3)});
        }))
      return f;
    if (auto f = command("COMMIT")) return f;
    conn_.reset();
    return std::nullopt;
  }

 private:
  std::string literals(const std::vector<std::string>& streams) {
    std::string out;
    for (const auto& s : streams) {
      std::unique_ptr<char, decltype(&PQfreemem)> lit(PQescapeLiteral(conn_.get(), s.data(), s.size()), &PQfreemem);
      if (!out.empty()) out += ',';
      out += lit ? lit.get() : "NULL";
    }
    return out;
  }

  std::optional<sql_failure> command(const std::string& sql) {
    ++st_.requests;
    pg_result r(PQexec(conn_.get(), sql.c_str()));
    if (PQresultStatus(r.get()) == PGRES_COMMAND_OK) return std::nullopt;
    return failure_of(conn_.get(), r.get(), sql.substr(0, sql.find(' ', sql.find(' ') + 1)));
  }

  template <class OnRow>
  std::optional<sql_failure> fetch_all(const char* cursor, int columns, OnRow&& on_row) {
    const std::string sql = "FETCH " + std::to_string(sql_fetch_rows) + " FROM " + cursor;
    for (;;) {
      ++st_.requests;
      pg_result r(PQexec(conn_.get(), sql.c_str()));
      if (PQresultStatus(r.get()) != PGRES_TUPLES_OK)
        return failure_of(conn_.get(), r.get(), std::string("FETCH ") + cursor);
      if (PQnfields(r.get()) != columns)
        return sql_failure{std::string("FETCH ") + cursor + ": unexpected columns", false};
      const int n = PQntuples(r.get());
      for (int i = 0; i < n; ++i) on_row(r.get(), i);
      if (n < sql_fetch_rows) return std::nullopt;
    }
  }

  const audit_source& src_;
  server_state& st_;
  pg_conn conn_;
};

server_state read_via_sql(const audit_source& src, const std::vector<std::string>& streams) {
  server_state st;
  const std::string where = redact_dsn(src.dsn);
  st.source = "sql " + where;
  if (where == "(unparsable DSN)")
    throw audit_read_error(
        "audit via sql: target.audit.dsn: found a string libpq cannot parse; expected a "
        "PostgreSQL URI or key=value connection string");
  sql_reader reader(src, st);
  for (int attempt = 1;; ++attempt) {
    auto failure = reader.read(streams);
    if (!failure) return st;
    if (!failure->transient || attempt > src.retries) {
      std::string msg = "audit via sql (" + where + "): " + failure->message;
      if (attempt > 1) msg += " (after " + std::to_string(attempt) + " attempts)";
      throw audit_read_error(msg);
    }
    std::this_thread::sleep_for(retry_delay(attempt));
  }
}

}  // namespace

std::string redact_dsn(const std::string& dsn) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(dsn.c_str(), &err);
  if (err) PQfreemem(err);  // may quote the DSN: never shown
  if (!opts) return "(unparsable DSN)";
  std::string out;
  for (const char* want : {"host", "hostaddr", "port", "dbname", "user"}) {
    for (PQconninfoOption* o = opts; o->keyword; ++o) {
      if (std::string_view(o->keyword) != want || !o->val || !*o->val) continue;
      out += (out.empty() ? "" : " ") + std::string(want) + "=" + o->val;
    }
  }
  PQconninfoFree(opts);
  return out.empty() ? "(default connection)" : out;
}

server_state read_server_state(const audit_source& source, const std::vector<std::string>& streams) {
  if (streams.empty()) {
    server_state st;
    st.source = source.via_sql ? "sql " + redact_dsn(source.dsn) : "api " + source.http_base;
    return st;
  }
  try {
    return source.via_sql ? read_via_sql(source, streams) : read_via_api(source, streams);
  } catch (const audit_read_error&) {
    throw;
  } catch (const std::exception& e) {
    throw audit_read_error(std::string("audit via ") + (source.via_sql ? "sql" : "api") + ": " +
                           one_line(e.what(), 240));
  }
}

}  // namespace syncstorm::loadgen
