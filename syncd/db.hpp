// syncd's PostgreSQL access. libpq is blocking, so it never runs on an io thread: a `db_pool`
// owns N threads, each with one `db_session` (one connection, reconnected when it breaks), and
// coroutines hand work to it with `co_await pool.async_run<R>(fn)`, resuming on their own
// executor. The schema (tables, the syncd_push() function that does a whole push in one
// transaction, cseq in commit order) is created by `ensure_schema`, idempotently, under an
// advisory lock so several pods can start at once.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/net.hpp"
#include "syncd/metrics.hpp"

struct pg_conn;
typedef struct pg_conn PGconn;

namespace syncstorm::syncd {

enum class db_status { ok, unavailable, storage_full, bad_input, failed };

// How a database call ended. `unavailable` maps to 503, `storage_full` (SQLSTATE 53100) to 507,
// `bad_input` (class 22, a data exception such as "\u0000 cannot be converted to text" in a body)
// to 400, `failed` to 500.
struct db_result {
  db_status status = db_status::ok;
  std::string error;
  std::string sqlstate;

  bool ok() const { return status == db_status::ok; }
};

struct push_outcome {
  db_result result;
  std::string body;                    // {"acked", "conflicts", "cseq"}: the 200 reply as is
  std::vector<std::string> dropped;    // ids acked but not stored (drop-every bug)
  std::vector<std::string> corrupted;  // ids stored with another payload (corrupt-every bug)
  std::int64_t acked = 0;
  std::int64_t conflicts = 0;
};

struct text_outcome {
  db_result result;
  std::string body;  // JSON rendered by PostgreSQL
};

struct change_row {
  std::int64_t cseq = 0;
  std::string stream;
  std::string json;  // the change entry / WebSocket frame
};

struct rows_outcome {
  db_result result;
  std::vector<change_row> rows;
};

// Opens a connection with syncd's defaults (TCP keepalives, tcp_user_timeout, connect_timeout,
// application_name); `dsn` (conninfo or URI) overrides them. Returns nullptr and sets `error`
// on failure. Blocking.
PGconn* db_connect(const std::string& dsn, const std::string& application_name, std::string& error);
// Creates the tables and functions if missing (idempotent, safe to race with other pods).
db_result ensure_schema(PGconn* conn);
// The current cseq counter.
std::optional<std::int64_t> db_current_cseq(PGconn* conn, db_result& result);
// Classifies a failed call on `conn` (result may be null).
db_result db_classify(PGconn* conn, const void* pg_result, const char* what);

// One connection, used by one pool thread at a time.
class db_session {
 public:
  db_session(std::string dsn, std::string application_name, metrics& m);
  ~db_session();
  db_session(const db_session&) = delete;
  db_session& operator=(const db_session&) = delete;

  // One push = one transaction (retried on deadlock/serialization failure). `ops_json` comes
  // from protocol's db_ops_param().
  push_outcome push(const std::string& ops_json, const std::string& client, const std::string& pod, bool dup_apply);
  // GET /v1/changes: {"changes": [...], "next": CSEQ}. `stream` empty: the global feed.
  text_outcome changes(const std::string& stream, std::int64_t after, std::int64_t limit);
  // GET /v1/records: {"stream", "cseq", "records": [{"key", "value", "version"}]}.
  text_outcome records(const std::string& stream);
  // Changes of `streams` (a text[] literal) after `after`, in cseq order (WebSocket replay).
  rows_outcome replay(const std::string& streams_array, std::int64_t after, std::int64_t limit);

 private:
  PGconn* connection(db_result& result);
  void drop_connection();
  // Runs prepared statement `name`; `fill(PGresult*, Out&)` reads a successful result.
  // Retries on deadlock/serialization failure and once on a connection found dead.
  template <class Out, class Fill>
  Out execute(const char* name, std::initializer_list<const char*> params, Fill fill);

  std::string dsn_;
  std::string application_name_;
  metrics& metrics_;
  PGconn* conn_ = nullptr;
};

// N threads, each owning a db_session. Jobs run in FIFO order on whichever thread is free.
// Thread-safe. `stop()` runs what is queued, then joins.
class db_pool {
 public:
  db_pool(std::string dsn, std::string application_name, unsigned size, metrics& m, std::size_t max_queue = 20000);
  ~db_pool();
  db_pool(const db_pool&) = delete;
  db_pool& operator=(const db_pool&) = delete;

  void start();
  void stop();

  // Runs `fn(db_session&)` on a pool thread and resumes the caller on its own executor with
  // the result. R must have a `db_result result` member; when the queue is full or the pool
  // stopped, fn is not run and R{}.result says `unavailable`. Never throws.
  template <class R, class Fn>
  net::awaitable<R> async_run(Fn fn) {
    return net::async_initiate<const net::use_awaitable_t<>&, void(R)>(
        [this](auto handler, Fn f) {
          auto work = net::make_work_guard(net::get_associated_executor(handler));
          auto task = [f = std::move(f), handler = std::move(handler),
                       work = std::move(work)](db_session* session) mutable {
            R r{};
            if (session) {
              r = f(*session);
            } else {
              r.result = {db_status::unavailable, "database pool overloaded or stopped", {}};
            }
            auto ex = work.get_executor();
            net::post(ex,
                      [handler = std::move(handler), r = std::move(r)]() mutable { std::move(handler)(std::move(r)); });
          };
          enqueue(std::make_unique<job_impl<decltype(task)>>(std::move(task)));
        },
        net::use_awaitable, std::move(fn));
  }

  std::size_t queue_depth() const;

 private:
  struct job {
    virtual ~job() = default;
    virtual void run(db_session* session) = 0;
  };
  template <class F>
  struct job_impl final : job {
    explicit job_impl(F f) : f_(std::move(f)) {}
    void run(db_session* session) override { f_(session); }
    F f_;
  };

  void enqueue(std::unique_ptr<job> j);
  void thread_main();

  std::string dsn_;
  std::string application_name_;
  unsigned size_;
  metrics& metrics_;
  std::size_t max_queue_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<job>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace syncstorm::syncd
