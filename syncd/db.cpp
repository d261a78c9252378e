// PostgreSQL schema, statements and the connection pool (see db.hpp). Each db_session is used by
// one pool thread at a time; the pool's queue is the only shared state (one mutex).
//
// The push is one call of syncd_push() in autocommit, so one transaction and one round trip.
// Lock order inside it is global (op ids sorted, then records by (stream, key), then the counter
// row), so concurrent pushes cannot deadlock on each other; the counter row is taken last and
// held to commit, which makes cseq order the commit order: a change with a lower cseq is always
// visible before one with a higher cseq, so "read after the last delivered cseq" skips nothing.
#include "syncd/db.hpp"

#include <cstring>

#include <libpq-fe.h>
#include <nlohmann/json.hpp>

#include "syncd/log.hpp"

namespace syncstorm::syncd {
namespace {

constexpr const char* schema_sql = R"SQL(
SELECT pg_advisory_xact_lock(7305001);
CREATE TABLE IF NOT EXISTS syncd_counter (id int PRIMARY KEY CHECK (id = 1), cseq bigint NOT NULL);
INSERT INTO syncd_counter VALUES (1, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS syncd_ops (id text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS syncd_changes (
  cseq bigint PRIMARY KEY, id text NOT NULL, stream text NOT NULL, seq bigint NOT NULL,
  t_us bigint NOT NULL, commit_us bigint NOT NULL, kind text NOT NULL, key text,
  value jsonb, delta numeric, version bigint, client text, pod text);
CREATE INDEX IF NOT EXISTS syncd_changes_stream_cseq ON syncd_changes (stream, cseq);
CREATE TABLE IF NOT EXISTS syncd_records (
  stream text NOT NULL, key text NOT NULL, value jsonb, version bigint NOT NULL,
  PRIMARY KEY (stream, key));
-- The ids the corrupt-every bug stored with another payload, committed with them: an exact
-- record even when the pod dies between the commit and its bug-log line.
CREATE TABLE IF NOT EXISTS syncd_bug_corrupted (id text PRIMARY KEY);

CREATE OR REPLACE FUNCTION syncd_change_json(c syncd_changes) RETURNS json
LANGUAGE sql STABLE AS $$
  SELECT json_build_object('cseq', c.cseq, 'id', c.id, 'stream', c.stream, 'seq', c.seq,
    't_us', c.t_us, 'commit_us', c.commit_us, 'kind', c.kind, 'key', c.key, 'value', c.value,
    'delta', c.delta, 'version', c.version)
$$;

-- The corrupt-every bug's payload: an object gains "corrupted": true, anything else is wrapped.
CREATE OR REPLACE FUNCTION syncd_corrupted(v jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'object' THEN v || '{"corrupted": true}'::jsonb
              ELSE jsonb_build_object('corrupted', v) END
$$;

-- One push, one transaction. p_ops: [{"id","stream","seq","t_us","kind","key"?,"delta"?,
-- "base_version"?,"body"?,"action"?}], action "d" = drop (bug), "D" = store twice (bug),
-- "C" = store another payload (bug: an append's or set's body gains "corrupted": true, an add
-- applies and stores delta + 1; only when the op is stored for the first time).
-- Linear in the batch: results accumulate in arrays (appended in place), not in jsonb values.
CREATE OR REPLACE FUNCTION syncd_push(p_ops jsonb, p_client text, p_pod text, p_dup_apply boolean)
RETURNS jsonb LANGUAGE plpgsql AS $fn$
DECLARE
  v_new boolean[];            -- per op: the first occurrence of an id this push claimed
  v_op jsonb;
  v_i int := 0;
  v_id text;
  v_kind text;
  v_acked text[] := '{}';
  v_conflicts jsonb[] := '{}';
  v_conflicted text[] := '{}';  -- claimed ids whose set conflicted (released at the end)
  v_dropped text[] := '{}';
  v_corrupted text[] := '{}';
  v_corrupt boolean;
  v_delta numeric;
  r_id text[] := '{}';
  r_stream text[] := '{}';
  r_seq bigint[] := '{}';
  r_t_us bigint[] := '{}';
  r_kind text[] := '{}';
  r_key text[] := '{}';
  r_value jsonb[] := '{}';
  r_delta numeric[] := '{}';
  r_version bigint[] := '{}';
  v_ver bigint;
  v_val jsonb;
  v_n int;
  v_hi bigint;
  v_now bigint;
BEGIN
  -- Claim the ids not seen before (sorted: one lock order for concurrent retries of an id).
  WITH ops AS (
    SELECT t.ord, t.o->>'id' AS id, coalesce(t.o->>'action', 's') AS action
    FROM jsonb_array_elements(p_ops) WITH ORDINALITY AS t(o, ord)),
  ins AS (
    INSERT INTO syncd_ops (id)
    SELECT DISTINCT id FROM ops WHERE action <> 'd' ORDER BY 1
    ON CONFLICT DO NOTHING RETURNING id),
  firsts AS (SELECT min(ord) AS ord FROM ops WHERE action <> 'd' GROUP BY id)
  SELECT coalesce(array_agg(f.ord IS NOT NULL AND i.id IS NOT NULL ORDER BY ops.ord), '{}')
  INTO v_new
  FROM ops LEFT JOIN firsts f ON f.ord = ops.ord LEFT JOIN ins i ON i.id = ops.id;

  -- Lock the touched records in (stream, key) order, creating missing ones at version 0.
  INSERT INTO syncd_records (stream, key, value, version)
  SELECT DISTINCT o->>'stream', o->>'key', NULL::jsonb, 0::bigint FROM jsonb_array_elements(p_ops) o
  WHERE o->>'kind' IN ('add', 'set') AND coalesce(o->>'action', 's') <> 'd'
  ORDER BY 1, 2
  ON CONFLICT DO NOTHING;
  PERFORM 1 FROM syncd_records r
  WHERE (r.stream, r.key) IN (SELECT o->>'stream', o->>'key' FROM jsonb_array_elements(p_ops) o
                              WHERE o->>'kind' IN ('add', 'set'))
  ORDER BY r.stream, r.key FOR UPDATE;

  FOR v_op IN SELECT value FROM jsonb_array_elements(p_ops) LOOP
    v_i := v_i + 1;
    v_id := v_op->>'id';
    v_kind := v_op->>'kind';
    IF v_op->>'action' = 'd' THEN
      IF NOT EXISTS (SELECT 1 FROM syncd_ops WHERE id = v_id) THEN
        v_dropped := array_append(v_dropped, v_id);
      END IF;
      v_acked := array_append(v_acked, v_id);
      CONTINUE;
    END IF;
    IF NOT v_new[v_i] AND NOT (v_id = ANY (v_conflicted)) THEN
      -- Seen before (or earlier in this batch): ack again, change nothing.
      IF p_dup_apply AND v_kind = 'add' THEN
        UPDATE syncd_records SET version = version + 1,
          value = to_jsonb(CASE WHEN jsonb_typeof(value) = 'number' THEN value::numeric ELSE 0 END
                           + (v_op->>'delta')::numeric)
        WHERE stream = v_op->>'stream' AND key = v_op->>'key';
      END IF;
      v_acked := array_append(v_acked, v_id);
      CONTINUE;
    END IF;
    v_ver := NULL;
    v_corrupt := v_op->>'action' = 'C';
    v_val := v_op->'body';
    v_delta := (v_op->>'delta')::numeric + CASE WHEN v_corrupt THEN 1 ELSE 0 END;
    IF v_corrupt AND v_kind NOT IN ('add', 'set') THEN
      v_val := syncd_corrupted(v_val);
    END IF;
    IF v_kind = 'add' THEN
      UPDATE syncd_records SET version = version + 1,
        value = to_jsonb(CASE WHEN jsonb_typeof(value) = 'number' THEN value::numeric ELSE 0 END + v_delta)
      WHERE stream = v_op->>'stream' AND key = v_op->>'key'
      RETURNING version, value INTO v_ver, v_val;
    ELSIF v_kind = 'set' THEN
      SELECT version, value INTO v_ver, v_val FROM syncd_records
      WHERE stream = v_op->>'stream' AND key = v_op->>'key';
      IF v_ver <> coalesce((v_op->>'base_version')::bigint, 0) THEN
        -- Stale base: returned, not applied; the id is released for a rebased retry.
        v_conflicts := array_append(v_conflicts, jsonb_build_object('id', v_id, 'key', v_op->>'key',
                                                                    'version', v_ver, 'value', v_val));
        IF NOT (v_id = ANY (v_conflicted)) THEN
          v_conflicted := array_append(v_conflicted, v_id);
        END IF;
        CONTINUE;
      END IF;
      v_val := coalesce(v_op->'body', 'null'::jsonb);
      IF v_corrupt THEN
        v_val := syncd_corrupted(v_val);
      END IF;
      UPDATE syncd_records SET value = v_val, version = version + 1
      WHERE stream = v_op->>'stream' AND key = v_op->>'key'
      RETURNING version INTO v_ver;
    END IF;
    IF cardinality(v_conflicted) > 0 THEN
      v_conflicted := array_remove(v_conflicted, v_id);
    END IF;
    IF v_corrupt THEN
      v_corrupted := array_append(v_corrupted, v_id);
    END IF;
    FOR v_copy IN 1 .. CASE WHEN v_op->>'action' = 'D' THEN 2 ELSE 1 END LOOP
      r_id := array_append(r_id, v_id);
      r_stream := array_append(r_stream, v_op->>'stream');
      r_seq := array_append(r_seq, (v_op->>'seq')::bigint);
      r_t_us := array_append(r_t_us, (v_op->>'t_us')::bigint);
      r_kind := array_append(r_kind, v_kind);
      r_key := array_append(r_key, v_op->>'key');
      r_value := array_append(r_value, v_val);
      r_delta := array_append(r_delta, v_delta);
      r_version := array_append(r_version, v_ver);
    END LOOP;
    v_acked := array_append(v_acked, v_id);
  END LOOP;

  IF cardinality(v_conflicted) > 0 THEN
    DELETE FROM syncd_ops WHERE id = ANY (v_conflicted);
  END IF;
  IF cardinality(v_corrupted) > 0 THEN
    INSERT INTO syncd_bug_corrupted SELECT unnest(v_corrupted) ON CONFLICT DO NOTHING;
  END IF;

  v_n := cardinality(r_id);
  IF v_n > 0 THEN
    -- Taken last, held to commit: cseq order is commit order.
    UPDATE syncd_counter SET cseq = cseq + v_n WHERE id = 1 RETURNING cseq INTO v_hi;
    v_now := (extract(epoch FROM clock_timestamp()) * 1000000)::bigint;
    INSERT INTO syncd_changes (cseq, id, stream, seq, t_us, commit_us, kind, key, value, delta,
                               version, client, pod)
    SELECT v_hi - v_n + u.ord, u.id, u.stream, u.seq, u.t_us, v_now, u.kind, u.key, u.value,
           u.delta, u.version, p_client, p_pod
    FROM unnest(r_id, r_stream, r_seq, r_t_us, r_kind, r_key, r_value, r_delta, r_version)
         WITH ORDINALITY AS u(id, stream, seq, t_us, kind, key, value, delta, version, ord);
    PERFORM pg_notify('syncd_changes', v_hi::text);
  ELSE
    SELECT cseq INTO v_hi FROM syncd_counter WHERE id = 1;
  END IF;
  RETURN jsonb_build_object('acked', to_jsonb(v_acked), 'conflicts', to_jsonb(v_conflicts),
                            'cseq', v_hi, 'dropped', to_jsonb(v_dropped), 'corrupted', to_jsonb(v_corrupted));
END
$fn$;
)SQL";

struct statement {
  const char* name;
  const char* sql;
  int params;
};

constexpr statement statements[] = {
    {"push",
     "SELECT (r - 'dropped' - 'corrupted')::text, (r->'dropped')::text, jsonb_array_length(r->'acked'), "
     "jsonb_array_length(r->'conflicts'), (r->'corrupted')::text FROM syncd_push($1::jsonb, $2, $3, $4::boolean) AS r",
     4},
    {"changes_stream",
     "SELECT json_build_object('changes', coalesce(json_agg(syncd_change_json(c) ORDER BY c.cseq), '[]'::json), "
     "'next', coalesce(max(c.cseq), $2::bigint))::text FROM (SELECT * FROM syncd_changes WHERE stream = $1 "
     "AND cseq > $2::bigint ORDER BY cseq LIMIT $3::bigint) c",
     3},
    {"changes_all",
     "SELECT json_build_object('changes', coalesce(json_agg(syncd_change_json(c) ORDER BY c.cseq), '[]'::json), "
     "'next', coalesce(max(c.cseq), $1::bigint))::text FROM (SELECT * FROM syncd_changes WHERE cseq > $1::bigint "
     "ORDER BY cseq LIMIT $2::bigint) c",
     2},
    {"records",
     "SELECT json_build_object('stream', $1::text, 'cseq', (SELECT cseq FROM syncd_counter WHERE id = 1), "
     "'records', coalesce(json_agg(json_build_object('key', key, 'value', value, 'version', version) "
     "ORDER BY key), '[]'::json))::text FROM syncd_records WHERE stream = $1 AND version > 0",
     1},
    {"replay",
     "SELECT c.cseq, c.stream, syncd_change_json(c)::text FROM syncd_changes c WHERE c.stream = ANY($1::text[]) "
     "AND c.cseq > $2::bigint ORDER BY c.cseq LIMIT $3::bigint",
     3},
};

struct pg_result_holder {
  PGresult* r;
  explicit pg_result_holder(PGresult* p) : r(p) {}
  ~pg_result_holder() {
    if (r) PQclear(r);
  }
  pg_result_holder(const pg_result_holder&) = delete;
  pg_result_holder& operator=(const pg_result_holder&) = delete;
};

std::string trim_message(const char* m) {
  std::string s = m ? m : "";
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  for (auto& c : s)
    if (c == '\n') c = ' ';
  return s;
}

bool retryable(const db_result& r) { return r.sqlstate == "40001" || r.sqlstate == "40P01"; }

}  // namespace

PGconn* db_connect(const std::string& dsn, const std::string& application_name, std::string& error) {
  // Our defaults first; the dsn (expanded as a conninfo/URI) comes last and overrides them.
  const char* keys[] = {"keepalives",       "keepalives_idle",  "keepalives_interval",
                        "keepalives_count", "tcp_user_timeout", "connect_timeout",
                        "application_name", "dbname",           nullptr};
  const char* values[] = {"1", "5", "2", "3", "10000", "3", application_name.c_str(), dsn.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, values, /*expand_dbname=*/1);
  if (c == nullptr) {
    error = "out of memory";
    return nullptr;
  }
  if (PQstatus(c) != CONNECTION_OK) {
    error = trim_message(PQerrorMessage(c));
    PQfinish(c);
    return nullptr;
  }
  // NOTICEs (e.g. "relation already exists, skipping") would break the JSON-lines log.
  PQsetNoticeProcessor(
      c, [](void*, const char*) {}, nullptr);
  return c;
}

db_result db_classify(PGconn* conn, const void* pg_result, const char* what) {
  auto* res = static_cast<const PGresult*>(pg_result);
  db_result r;
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  r.sqlstate = state ? state : "";
  std::string msg = res ? trim_message(PQresultErrorMessage(res)) : std::string{};
  if (msg.empty() && conn) msg = trim_message(PQerrorMessage(conn));
  r.error = std::string(what) + ": " + (msg.empty() ? "unknown error" : msg);
  const std::string& s = r.sqlstate;
  if (s == "53100") {
    r.status = db_status::storage_full;
  } else if (conn == nullptr || PQstatus(conn) == CONNECTION_BAD || s.empty() || s.rfind("08", 0) == 0 ||
             s.rfind("57P", 0) == 0 || s.rfind("53", 0) == 0 || s == "57014" || s == "25006" || s == "40001" ||
             s == "40P01" || s == "55P03") {
    r.status = db_status::unavailable;
  } else if (s.rfind("22", 0) == 0) {
    r.status = db_status::bad_input;
  } else {
    r.status = db_status::failed;
  }
  return r;
}

db_result ensure_schema(PGconn* conn) {
  pg_result_holder begin(PQexec(conn, "BEGIN"));
  if (PQresultStatus(begin.r) != PGRES_COMMAND_OK) return db_classify(conn, begin.r, "schema");
  pg_result_holder res(PQexec(conn, schema_sql));
  if (PQresultStatus(res.r) != PGRES_COMMAND_OK && PQresultStatus(res.r) != PGRES_TUPLES_OK) {
    auto r = db_classify(conn, res.r, "schema");
    pg_result_holder rollback(PQexec(conn, "ROLLBACK"));
    return r;
  }
  pg_result_holder commit(PQexec(conn, "COMMIT"));
  if (PQresultStatus(commit.r) != PGRES_COMMAND_OK) return db_classify(conn, commit.r, "schema");
  return {};
}

std::optional<std::int64_t> db_current_cseq(PGconn* conn, db_result& result) {
  pg_result_holder res(PQexec(conn, "SELECT cseq FROM syncd_counter WHERE id = 1"));
  if (PQresultStatus(res.r) != PGRES_TUPLES_OK || PQntuples(res.r) != 1) {
    result = db_classify(conn, res.r, "read cseq");
    return std::nullopt;
  }
  result = {};
  return std::stoll(PQgetvalue(res.r, 0, 0));
}

db_session::db_session(std::string dsn, std::string application_name, metrics& m)
    : dsn_(std::move(dsn)), application_name_(std::move(application_name)), metrics_(m) {}

db_session::~db_session() { drop_connection(); }

void db_session::drop_connection() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
}

PGconn* db_session::connection(db_result& result) {
  if (conn_ && PQstatus(conn_) == CONNECTION_OK) return conn_;
  drop_connection();
  std::string error;
  PGconn* c = db_connect(dsn_, application_name_, error);
  if (!c) {
    metrics_.count_db_error(db_error_class::connection);
    result = {db_status::unavailable, "connect: " + error, {}};
    return nullptr;
  }
  for (const auto& st : statements) {
    pg_result_holder res(PQprepare(c, st.name, st.sql, st.params, nullptr));
    if (PQresultStatus(res.r) != PGRES_COMMAND_OK) {
      result = db_classify(c, res.r, "prepare");
      // Before the schema exists (startup race) this is not a server fault: say unavailable.
      if (result.status == db_status::failed) result.status = db_status::unavailable;
      metrics_.count_db_error(db_error_class::other);
      PQfinish(c);
      return nullptr;
    }
  }
  metrics_.db_connects.fetch_add(1, std::memory_order_relaxed);
  conn_ = c;
  return conn_;
}

namespace {

// Runs a prepared statement; on failure classifies, counts, and drops a broken connection.
template <class OnRows>
db_result exec_prepared(PGconn* conn, metrics& m, const char* name, std::initializer_list<const char*> params,
                        OnRows&& on_rows) {
  std::vector<const char*> values(params);
  pg_result_holder res(PQexecPrepared(conn, name, static_cast<int>(values.size()), values.data(), nullptr, nullptr, 0));
  if (PQresultStatus(res.r) != PGRES_TUPLES_OK) {
    auto r = db_classify(conn, res.r, name);
    db_error_class c = r.status == db_status::storage_full  ? db_error_class::disk_full
                       : retryable(r)                       ? db_error_class::retry
                       : r.status == db_status::unavailable ? db_error_class::connection
                                                            : db_error_class::other;
    m.count_db_error(c);
    return r;
  }
  on_rows(res.r);
  return {};
}

}  // namespace

template <class Out, class Fill>
Out db_session::execute(const char* name, std::initializer_list<const char*> params, Fill fill) {
  Out out;
  for (int attempt = 0; attempt < 5; ++attempt) {
    PGconn* c = connection(out.result);
    if (!c) return out;
    out = Out{};
    out.result = exec_prepared(c, metrics_, name, params, [&](PGresult* r) { fill(r, out); });
    const bool broken = PQstatus(c) != CONNECTION_OK;
    if (broken) drop_connection();
    if (out.result.ok()) return out;
    // A connection that died while idle (e.g. the database restarted) fails its next call:
    // retry once on a fresh one. Safe for pushes too, since op ids are idempotent.
    if (broken && attempt == 0) continue;
    if (!retryable(out.result)) return out;
  }
  return out;
}

push_outcome db_session::push(const std::string& ops_json, const std::string& client, const std::string& pod,
                              bool dup_apply) {
  return execute<push_outcome>("push", {ops_json.c_str(), client.c_str(), pod.c_str(), dup_apply ? "true" : "false"},
                               [](PGresult* r, push_outcome& out) {
                                 out.body = PQgetvalue(r, 0, 0);
                                 std::string dropped = PQgetvalue(r, 0, 1);
                                 if (dropped.size() > 2) {
                                   auto j = nlohmann::json::parse(dropped, nullptr, false);
                                   if (j.is_array())
                                     for (auto& id : j) out.dropped.push_back(id.get<std::string>());
                                 }
                                 out.acked = std::stoll(PQgetvalue(r, 0, 2));
                                 out.conflicts = std::stoll(PQgetvalue(r, 0, 3));
                                 std::string corrupted = PQgetvalue(r, 0, 4);
                                 if (corrupted.size() > 2) {
                                   auto j = nlohmann::json::parse(corrupted, nullptr, false);
                                   if (j.is_array())
                                     for (auto& id : j) out.corrupted.push_back(id.get<std::string>());
                                 }
                               });
}

text_outcome db_session::changes(const std::string& stream, std::int64_t after, std::int64_t limit) {
  const std::string a = std::to_string(after), l = std::to_string(limit);
  auto take = [](PGresult* r, text_outcome& out) { out.body = PQgetvalue(r, 0, 0); };
  return stream.empty() ? execute<text_outcome>("changes_all", {a.c_str(), l.c_str()}, take)
                        : execute<text_outcome>("changes_stream", {stream.c_str(), a.c_str(), l.c_str()}, take);
}

text_outcome db_session::records(const std::string& stream) {
  return execute<text_outcome>("records", {stream.c_str()},
                               [](PGresult* r, text_outcome& out) { out.body = PQgetvalue(r, 0, 0); });
}

rows_outcome db_session::replay(const std::string& streams_array, std::int64_t after, std::int64_t limit) {
  const std::string a = std::to_string(after), l = std::to_string(limit);
  return execute<rows_outcome>(
      "replay", {streams_array.c_str(), a.c_str(), l.c_str()}, [](PGresult* r, rows_outcome& out) {
        const int n = PQntuples(r);
        out.rows.reserve(static_cast<std::size_t>(n));
        for (int i = 0; i < n; ++i)
          out.rows.push_back({std::stoll(PQgetvalue(r, i, 0)), PQgetvalue(r, i, 1), PQgetvalue(r, i, 2)});
      });
}

db_pool::db_pool(std::string dsn, std::string application_name, unsigned size, metrics& m, std::size_t max_queue)
    : dsn_(std::move(dsn)),
      application_name_(std::move(application_name)),
      size_(size ? size : 1),
      metrics_(m),
      max_queue_(max_queue) {}

db_pool::~db_pool() { stop(); }

void db_pool::start() {
  for (unsigned i = 0; i < size_; ++i) threads_.emplace_back([this] { thread_main(); });
}

void db_pool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

std::size_t db_pool::queue_depth() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void db_pool::enqueue(std::unique_ptr<job> j) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && queue_.size() < max_queue_) {
      queue_.push_back(std::move(j));
      metrics_.db_queue_depth.store(static_cast<std::int64_t>(queue_.size()), std::memory_order_relaxed);
      cv_.notify_one();
      return;
    }
  }
  j->run(nullptr);  // completes with `unavailable` on the caller's executor (posted)
}

void db_pool::thread_main() {
  db_session session(dsn_, application_name_, metrics_);
  for (;;) {
    std::unique_ptr<job> j;
    {
      std::unique_lock lock(mutex_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;
      j = std::move(queue_.front());
      queue_.pop_front();
      metrics_.db_queue_depth.store(static_cast<std::int64_t>(queue_.size()), std::memory_order_relaxed);
    }
    j->run(&session);
  }
}

}  // namespace syncstorm::syncd
