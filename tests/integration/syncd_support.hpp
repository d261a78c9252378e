// Shared pieces of the syncd integration tests: one PostgreSQL per test binary (a fresh
// database per test), syncd processes started from the build dir and always reaped, a small
// HTTP client and a WebSocket subscriber. Every network call has a deadline, so a hung server
// fails a test instead of hanging CI. Traffic stays on 127.0.0.1.
//
// Threading: http_call runs its own io_context on the calling thread; ws_client reads on its own
// thread and hands frames over through a mutex-protected queue. Everything else is called from
// the test's thread.
#pragma once

#include "tests/support/test_util.hpp"
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <nlohmann/json.hpp>

#include "core/net.hpp"
#include "labstack/lab_process.hpp"
#include "labstack/postgres.hpp"

namespace syncd_test {

namespace fs = std::filesystem;
namespace lab = syncstorm::lab;
using json = nlohmann::json;
using tcp = net::ip::tcp;
using namespace std::chrono_literals;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

inline fs::path test_root() {
  static const fs::path root = fs::path("/var/tmp/syncstorm") / ("test-syncd-" + std::to_string(getpid()));
  return root;
}

inline fs::path syncd_binary() {
  if (const char* b = std::getenv("SYNCSTORM_BUILD_DIR")) return fs::path(b) / "labstack" / "syncd";
  return fs::canonical("/proc/self/exe").parent_path().parent_path() / "labstack" / "syncd";
}

// ---- HTTP ----------------------------------------------------------------------------------

struct http_reply {
  int status = 0;  // 0: no reply (see error)
  std::string body;
  std::string error;

  json body_json() const { return json::parse(body, nullptr, false); }
};

inline http_reply http_call(std::uint16_t port, http::verb verb, const std::string& target,
                            const std::string& body = {}, std::chrono::milliseconds timeout = 10s) {
  net::io_context ioc;
  http_reply out;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        beast::tcp_stream s(co_await net::this_coro::executor);
        s.expires_after(timeout);
        auto [ec] = co_await s.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), use_tuple);
        if (ec) {
          out.error = "connect: " + ec.message();
          co_return;
        }
        http::request<http::string_body> req{verb, target, 11};
        req.set(http::field::host, "127.0.0.1");
        if (!body.empty()) req.set(http::field::content_type, "application/json");
        req.body() = body;
        req.prepare_payload();
        auto [wec, wn] = co_await http::async_write(s, req, use_tuple);
        if (wec) {
          out.error = "write: " + wec.message();
          co_return;
        }
        beast::flat_buffer buf;
        http::response<http::string_body> res;
        auto [rec, rn] = co_await http::async_read(s, buf, res, use_tuple);
        if (rec) {
          out.error = "read: " + rec.message();
          co_return;
        }
        out.status = res.result_int();
        out.body = res.body();
      },
      net::detached);
  ioc.run();
  return out;
}

inline http_reply http_get(std::uint16_t port, const std::string& target) {
  return http_call(port, http::verb::get, target);
}
inline http_reply http_post(std::uint16_t port, const std::string& target, const std::string& body,
                            std::chrono::milliseconds timeout = 10s) {
  return http_call(port, http::verb::post, target, body, timeout);
}

// ---- protocol helpers ------------------------------------------------------------------------

inline std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

inline json op_append(const std::string& id, const std::string& stream, std::int64_t seq) {
  return {{"id", id}, {"stream", stream}, {"seq", seq}, {"t_us", now_us()}, {"kind", "append"}, {"body", {{"n", seq}}}};
}
inline json op_add(const std::string& id, const std::string& stream, std::int64_t seq, const std::string& key,
                   std::int64_t delta) {
  return {{"id", id},      {"stream", stream}, {"seq", seq},    {"t_us", now_us()},
          {"kind", "add"}, {"key", key},       {"delta", delta}};
}
inline json op_set(const std::string& id, const std::string& stream, std::int64_t seq, const std::string& key,
                   std::int64_t base, const json& value) {
  return {{"id", id},      {"stream", stream}, {"seq", seq},           {"t_us", now_us()},
          {"kind", "set"}, {"key", key},       {"base_version", base}, {"body", value}};
}
inline std::string push_body(const json& ops, const std::string& client = "test") {
  return json{{"client", client}, {"ops", ops}}.dump();
}

// Every change (optionally of one stream), following `next` until a short page.
inline std::vector<json> all_changes(std::uint16_t port, const std::string& stream = {}) {
  std::vector<json> out;
  std::int64_t after = 0;
  for (int page = 0; page < 1000; ++page) {
    auto r = http_get(port, "/v1/changes?after=" + std::to_string(after) + "&limit=500" +
                                (stream.empty() ? "" : "&stream=" + stream));
    EXPECT_EQ(r.status, 200) << r.error << r.body;
    if (r.status != 200) break;
    json j = r.body_json();
    for (auto& c : j["changes"]) out.push_back(c);
    after = j["next"].get<std::int64_t>();
    if (j["changes"].size() < 500) break;
  }
  return out;
}

// ---- syncd processes ---------------------------------------------------------------------------

class syncd_process {
 public:
  syncd_process(const std::string& dsn, const std::string& name, std::vector<std::string> extra = {})
      : name_(name), port_(lab::pick_free_port()), log_path_(unique_log(name)) {
    fs::create_directories(test_root());
    lab::spawn_options o;
    o.argv = {syncd_binary().string(),
              "--db",
              dsn,
              "--listen",
              "127.0.0.1:" + std::to_string(port_),
              "--pod-name",
              name,
              "--threads",
              "2",
              "--db-pool",
              "4"};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.log_path = log_path_.string();
    pid_ = lab::spawn(o);
  }
  ~syncd_process() { kill9(); }
  syncd_process(const syncd_process&) = delete;
  syncd_process& operator=(const syncd_process&) = delete;

  std::uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  bool running() const { return pid_ > 0; }

  // Polls /readyz until it answers 200 (or fails the test).
  bool wait_ready(std::chrono::milliseconds timeout = 15s) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!reap(false)) break;
      if (http_call(port_, http::verb::get, "/readyz", {}, 1s).status == 200) return true;
      std::this_thread::sleep_for(50ms);
    }
    ADD_FAILURE() << name_ << " not ready after " << timeout.count() << " ms; log:\n" << log();
    return false;
  }

  // SIGTERM and wait; returns the exit status (128+signal when killed), or -1 after `timeout`
  // (then it is killed).
  int terminate(std::chrono::milliseconds timeout = 25s) {
    if (pid_ <= 0) return status_;
    ::kill(pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (!reap(false)) return status_;
      std::this_thread::sleep_for(20ms);
    }
    kill9();
    return -1;
  }

  void kill9() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    reap(true);
  }

  std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  // One log per process, never shared with an earlier test's pod of the same name.
  static fs::path unique_log(const std::string& name) {
    static int n = 0;
    return test_root() / (name + "-" + std::to_string(++n) + ".log");
  }

  // Returns true while the process is still running.
  bool reap(bool block) {
    if (pid_ <= 0) return false;
    int st = 0;
    pid_t r = waitpid(pid_, &st, block ? 0 : WNOHANG);
    if (r == 0) return true;
    status_ = r < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    pid_ = -1;
    return false;
  }

  std::string name_;
  std::uint16_t port_;
  fs::path log_path_;
  pid_t pid_ = -1;
  int status_ = -1;
};

// ---- WebSocket subscriber ----------------------------------------------------------------------

class ws_client {
 public:
  ws_client(std::uint16_t port, const std::string& target) : ws_(ioc_) {
    net::co_spawn(ioc_, run(port, target), net::detached);
    thread_ = std::thread([this] { ioc_.run(); });
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, 10s, [&] { return connected_ || closed_; });
  }
  ~ws_client() {
    // Close the socket so the read loop ends and run() returns; stop() only as a fallback.
    net::post(ioc_, [this] {
      beast::error_code ec;
      beast::get_lowest_layer(ws_).socket().close(ec);
    });
    {
      std::unique_lock lock(mutex_);
      cv_.wait_for(lock, 3s, [&] { return closed_; });
    }
    ioc_.stop();
    if (thread_.joinable()) thread_.join();
  }
  ws_client(const ws_client&) = delete;
  ws_client& operator=(const ws_client&) = delete;

  bool connected() {
    std::lock_guard lock(mutex_);
    return connected_;
  }
  std::string error() {
    std::lock_guard lock(mutex_);
    return error_;
  }

  // The next frame, parsed; nullopt after `timeout` or when closed.
  std::optional<json> next(std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return !frames_.empty() || closed_; });
    if (frames_.empty()) return std::nullopt;
    json j = json::parse(frames_.front(), nullptr, false);
    frames_.pop_front();
    return j;
  }

  // Frames until `n` arrived or nothing came for `quiet`, bounded by `total`.
  std::vector<json> collect(std::size_t n, std::chrono::milliseconds quiet = 3s,
                            std::chrono::milliseconds total = 60s) {
    std::vector<json> out;
    const auto deadline = std::chrono::steady_clock::now() + total;
    while (out.size() < n && std::chrono::steady_clock::now() < deadline) {
      auto f = next(quiet);
      if (!f) break;
      out.push_back(std::move(*f));
    }
    return out;
  }

  // Waits for the server's close; returns its close code (or nullopt).
  std::optional<int> wait_closed(std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    cv_.wait_for(lock, timeout, [&] { return closed_; });
    if (!closed_ || close_code_ < 0) return std::nullopt;
    return close_code_;
  }

 private:
  net::awaitable<void> run(std::uint16_t port, std::string target) {
    auto& s = beast::get_lowest_layer(ws_);
    s.expires_after(5s);
    auto [ec] = co_await s.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), use_tuple);
    if (!ec) {
      auto [hec] = co_await ws_.async_handshake("127.0.0.1:" + std::to_string(port), target, use_tuple);
      ec = hec;
    }
    s.expires_never();
    {
      std::lock_guard lock(mutex_);
      if (ec) {
        error_ = ec.message();
        closed_ = true;
      } else {
        connected_ = true;
      }
    }
    cv_.notify_all();
    if (ec) co_return;
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
    beast::flat_buffer buf;
    for (;;) {
      auto [rec, n] = co_await ws_.async_read(buf, use_tuple);
      std::lock_guard lock(mutex_);
      if (rec) {
        closed_ = true;
        if (rec == websocket::error::closed) close_code_ = static_cast<int>(ws_.reason().code);
        error_ = rec.message();
        cv_.notify_all();
        break;
      }
      frames_.push_back(beast::buffers_to_string(buf.data()));
      buf.consume(buf.size());
      cv_.notify_all();
    }
  }

  net::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> frames_;
  bool connected_ = false;
  bool closed_ = false;
  int close_code_ = -1;
  std::string error_;
};

// ---- one PostgreSQL per test binary -----------------------------------------------------------

// Fixture base: SetUpTestSuite starts PostgreSQL under test_root()/pg; TearDownTestSuite stops it
// and removes test_root(). Each test calls fresh_db() for a database of its own.
class syncd_suite : public ::testing::Test {
 public:
  static void SetUpTestSuite() {
    if (geteuid() != 0) return;  // SetUp() skips with the reason
    lab::postgres_options o;
    o.state_dir = test_root() / "pg";
    o.port = lab::pick_free_port();
    o.shared_buffers = "64MB";
    pg_ = std::make_unique<lab::postgres_guard>(o);
    (*pg_)->init();
    (*pg_)->start();
  }
  static void TearDownTestSuite() {
    pg_.reset();
    std::error_code ec;
    fs::remove_all(test_root(), ec);
  }

 protected:
  void SetUp() override {
    if (geteuid() != 0) SYNCSTORM_SKIP_OR_FAIL("needs root to run PostgreSQL as the postgres user");
    ASSERT_TRUE(pg_) << "PostgreSQL did not start";
    ASSERT_TRUE(fs::exists(syncd_binary())) << "no syncd binary at " << syncd_binary();
  }

  static lab::postgres_instance& pg() { return **pg_; }

  struct test_db {
    std::string name;
    std::string dsn;
  };

  // A new, empty database for this test.
  static test_db fresh_db() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "t_" + std::string(info->name());
    for (auto& c : name) c = std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '_';
    name = name.substr(0, 60);
    pg().psql("DROP DATABASE IF EXISTS " + name);
    pg().create_database(name);
    return {name, pg().conninfo(name)};
  }

  static inline std::unique_ptr<lab::postgres_guard> pg_;
};

}  // namespace syncd_test
