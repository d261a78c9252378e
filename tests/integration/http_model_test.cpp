// Integration tests of the http load model over loopback, against a small Asio server each test
// starts on its own thread: the open model's coordinated-omission correction during a server
// freeze, the closed model's keep-alive pool, every error bucket, and TLS with a client
// certificate (keys made with the openssl CLI). Bounded: ~15 s in all.
#include "tests/support/test_util.hpp"
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "core/metrics.hpp"
#include "core/net.hpp"
#include "loadgen/http_model.hpp"
#include "loadgen/workers.hpp"

namespace {

using namespace std::chrono_literals;
using syncstorm::metrics_shard;
using namespace syncstorm::loadgen;
using tcp = net::ip::tcp;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

enum class behavior { ok, freeze, close_mid_reply, status_500, stall, garbage, chunked_close };

// A loopback HTTP/1.1 server on its own thread that answers every request per `behavior`.
// `freeze`: requests received during [from, to) are answered at `to` (a GC pause, a lock).
class test_server {
 public:
  explicit test_server(behavior b, net::ssl::context* tls = nullptr)
      : behavior_(b), tls_(tls), acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {
    net::co_spawn(io_, accept_loop(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~test_server() {
    io_.stop();
    thread_.join();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  std::string url(const char* path = "/") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port()) + path;
  }
  void freeze(run_clock::time_point from, run_clock::time_point to) {
    freeze_from_ = from;
    freeze_to_ = to;
  }

  std::atomic<std::size_t> accepted{0}, requests{0};

 private:
  net::awaitable<void> accept_loop() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(use_tuple);
      if (ec) co_return;
      ++accepted;
      socket.set_option(tcp::no_delay(true));
      if (tls_) {
        net::co_spawn(io_, tls_session(std::move(socket)), net::detached);
      } else {
        net::co_spawn(io_, session(std::move(socket)), net::detached);
      }
    }
  }

  net::awaitable<void> tls_session(tcp::socket socket) {
    net::ssl::stream<tcp::socket> s(std::move(socket), *tls_);
    auto [ec] = co_await s.async_handshake(net::ssl::stream_base::server, use_tuple);
    if (!ec) co_await serve(s);
  }

  net::awaitable<void> session(tcp::socket socket) { co_await serve(socket); }

  template <class Stream>
  net::awaitable<void> serve(Stream& s) {
    std::string buf;
    net::steady_timer timer(io_);
    for (;;) {
      auto [ec, n] = co_await net::async_read_until(s, net::dynamic_buffer(buf), "\r\n\r\n", use_tuple);
      if (ec) co_return;
      buf.erase(0, n);  // the tests send no body
      ++requests;
      std::string_view reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
      switch (behavior_) {
        case behavior::ok:
          break;
        case behavior::freeze: {
          const auto now = run_clock::now();
          if (now >= freeze_from_ && now < freeze_to_) {
            timer.expires_at(freeze_to_);
            co_await timer.async_wait(use_tuple);
          }
          break;
        }
        case behavior::close_mid_reply:
          co_await net::async_write(
              s, net::buffer(std::string_view("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")), use_tuple);
          co_return;
        case behavior::status_500:
          reply = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n";
          break;
        case behavior::stall:
          timer.expires_after(60s);
          co_await timer.async_wait(use_tuple);
          co_return;
        case behavior::chunked_close:
          co_await net::async_write(s,
                                    net::buffer(std::string_view("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                                                                 "Connection: close\r\n\r\n2\r\nok\r\n0\r\n\r\n")),
                                    use_tuple);
          co_return;
        case behavior::garbage:
          co_await net::async_write(s, net::buffer(std::string_view("SSH-2.0-OpenSSH_9.2\r\n\r\n")), use_tuple);
          co_return;
      }
      auto [wec, wn] = co_await net::async_write(s, net::buffer(reply), use_tuple);
      if (wec) co_return;
    }
  }

  behavior behavior_;
  net::ssl::context* tls_;
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::thread thread_;
  run_clock::time_point freeze_from_{}, freeze_to_{};
};

struct run_result {
  metrics_shard metrics;
  worker_pool::run_end end;
};

// Runs one model on a fresh pool until it drains (or `limit`), then stops it.
run_result run_model(const http_model_config& config, run_clock::time_point start, std::chrono::milliseconds limit,
                     std::size_t threads = 2) {
  auto model = make_http_model(config);
  worker_pool pool(threads, start);
  pool.start({model.get()});
  auto end = pool.run_until(start + limit);
  return {pool.stop(2s), end};
}

const syncstorm::timed_metric& metric(const metrics_shard& m, std::string_view name) {
  static const syncstorm::timed_metric empty;
  const auto* t = m.find(name);
  return t ? *t : empty;
}

std::uint64_t bucket(const metrics_shard& m, std::string_view b) {
  return metric(m, "http.errors." + std::string(b)).count();
}

http_model_config open_config(const std::string& url, double rate, std::int64_t for_us) {
  http_model_config c;
  c.name = "api";
  c.url = url;
  c.phases = {phase_spec{"steady", for_us, rate, std::nullopt}};
  return c;
}

TEST(http_model, open_model_corrects_for_a_server_freeze) {
  test_server server(behavior::freeze);
  const auto start = run_clock::now();
  server.freeze(start + 2500ms, start + 3500ms);
  auto config = open_config(server.url("/v1/x"), 200, 6'000'000);
  config.connections = 50;
  auto r = run_model(config, start, 12s);
  EXPECT_EQ(r.end, worker_pool::run_end::drained);

  const auto& corrected = metric(r.metrics, "http.latency").hist();
  const auto& uncorrected = metric(r.metrics, "http.latency.uncorrected").hist();
  const auto& lag = metric(r.metrics, "generator.lag").hist();
  const auto& requests = metric(r.metrics, "http.requests");
  std::cout << "requests " << requests.count() << " errors " << requests.error_count() << " | corrected p50/p95/p99 "
            << corrected.percentile(50) << "/" << corrected.percentile(95) << "/" << corrected.percentile(99)
            << " µs | uncorrected p50/p95/p99 " << uncorrected.percentile(50) << "/" << uncorrected.percentile(95)
            << "/" << uncorrected.percentile(99) << " µs | lag p99 " << lag.percentile(99) << " max " << lag.max()
            << " µs | queued " << metric(r.metrics, "http.queue_wait").count()
            << " | uncorrected > 100 ms: " << uncorrected.count_above(100'000) << "\n";

  // Arrivals kept their schedule: every one of the 1,200 was issued on time and answered.
  EXPECT_EQ(requests.count(), 1200u);
  EXPECT_EQ(requests.error_count(), 0u);
  EXPECT_EQ(lag.count(), 1200u);
  EXPECT_LT(lag.percentile(99), 10'000);
  // Counted from the intended send time, the 1 s freeze shows: 200 arrivals fall into it.
  EXPECT_GE(corrected.percentile(99), 500'000);
  EXPECT_GE(corrected.percentile(95), 500'000);
  EXPECT_GE(corrected.count_above(100'000), 150u);
  // The uncorrected view only sees the freeze on requests that were on the wire when it began:
  // at most one per connection (50). The ~150 that waited for a connection were sent after it
  // and look fast, which is exactly the omission the corrected view repairs. With 1,200
  // samples those 50 are 4% of the run, so the uncorrected p95 stays low while its p99 cannot.
  EXPECT_GE(metric(r.metrics, "http.queue_wait").count(), 100u);
  EXPECT_LE(uncorrected.count_above(100'000), 50u);
  EXPECT_LT(uncorrected.percentile(95), 100'000);
}

// The acceptance as stated: 200/s over a pool of 50 against a server that stalls 1 s
// mid-run. Run long enough (8,000 arrivals) that the 50 requests on the wire when the stall
// begins are under 1% of the run: then corrected p99 shows the stall, arrivals keep their
// schedule, and the uncorrected p99 stays low — the coordinated omission made visible.
TEST(http_model, stall_shows_in_corrected_p99_not_in_uncorrected_p99) {
  test_server server(behavior::freeze);
  const auto start = run_clock::now();
  server.freeze(start + 20'000ms, start + 21'000ms);
  auto config = open_config(server.url("/v1/x"), 200, 40'000'000);
  config.connections = 50;
  auto r = run_model(config, start, 50s);
  EXPECT_EQ(r.end, worker_pool::run_end::drained);
  const auto& corrected = metric(r.metrics, "http.latency").hist();
  const auto& uncorrected = metric(r.metrics, "http.latency.uncorrected").hist();
  const auto& lag = metric(r.metrics, "generator.lag").hist();
  std::cout << "corrected p99 " << corrected.percentile(99) << " µs, uncorrected p99 " << uncorrected.percentile(99)
            << " µs, lag p99 " << lag.percentile(99) << " µs\n";
  EXPECT_EQ(metric(r.metrics, "http.requests").count(), 8000u);
  EXPECT_EQ(metric(r.metrics, "http.requests").error_count(), 0u);
  EXPECT_GE(corrected.percentile(99), 500'000);
  EXPECT_LT(lag.percentile(99), 10'000);
  EXPECT_LT(uncorrected.percentile(99), 100'000);
}

TEST(http_model, closed_model_keeps_its_connections_busy) {
  test_server server(behavior::ok);
  http_model_config c;
  c.name = "closed";
  c.url = server.url();
  c.open = false;
  c.connections = 8;
  c.phases = {phase_spec{"run", 1'000'000, 1.0, std::nullopt}};  // rate ignored when closed
  auto r = run_model(c, run_clock::now(), 5s);
  EXPECT_EQ(r.end, worker_pool::run_end::drained);
  const auto& requests = metric(r.metrics, "http.requests");
  std::cout << "closed: " << requests.count() << " requests in 1 s over 8 connections\n";
  EXPECT_GT(requests.count(), 1000u);
  EXPECT_EQ(requests.error_count(), 0u);
  EXPECT_EQ(server.accepted.load(), 8u);  // keep-alive: one connect per pooled connection
  EXPECT_EQ(server.requests.load(), requests.count());
}

struct bucket_case {
  behavior b;
  const char* bucket;
};

class http_error_buckets : public ::testing::TestWithParam<bucket_case> {};

TEST_P(http_error_buckets, each_failure_lands_in_its_bucket) {
  const auto [b, expected] = GetParam();
  test_server server(b);
  auto c = open_config(server.url(), 50, 500'000);  // 25 requests
  c.timeout_us = 200'000;
  auto r = run_model(c, run_clock::now(), 5s);
  const auto& requests = metric(r.metrics, "http.requests");
  EXPECT_EQ(requests.count(), 25u);
  EXPECT_EQ(requests.error_count(), 25u);
  for (auto name : {"connect", "read", "write", "status", "timeout", "protocol"})
    EXPECT_EQ(bucket(r.metrics, name), std::string_view(name) == expected ? 25u : 0u) << name;
}

INSTANTIATE_TEST_SUITE_P(all, http_error_buckets,
                         ::testing::Values(bucket_case{behavior::close_mid_reply, "read"},
                                           bucket_case{behavior::status_500, "status"},
                                           bucket_case{behavior::stall, "timeout"},
                                           bucket_case{behavior::garbage, "protocol"}),
                         [](const auto& info) { return std::string(info.param.bucket); });

TEST(http_model, refused_connection_is_a_connect_error) {
  std::uint16_t port;
  {
    net::io_context io;
    tcp::acceptor a(io, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: nothing listens there now
  auto c = open_config("http://127.0.0.1:" + std::to_string(port) + "/", 50, 500'000);
  auto r = run_model(c, run_clock::now(), 5s);
  EXPECT_EQ(metric(r.metrics, "http.requests").error_count(), 25u);
  EXPECT_EQ(bucket(r.metrics, "connect"), 25u);
}

TEST(http_model, connection_close_replies_reconnect_without_errors) {
  test_server server(behavior::chunked_close);
  auto c = open_config(server.url(), 50, 400'000);  // 20 requests
  c.connections = 2;
  auto r = run_model(c, run_clock::now(), 5s);
  EXPECT_EQ(metric(r.metrics, "http.requests").ok_count(), 20u);
  EXPECT_EQ(metric(r.metrics, "http.requests").error_count(), 0u);
  EXPECT_EQ(server.accepted.load(), 20u);  // the server closed after each chunked reply
}

TEST(http_model, fewer_connections_than_workers_still_serve_every_arrival) {
  test_server server(behavior::ok);
  auto c = open_config(server.url(), 50, 200'000);  // 10 requests
  c.connections = 1;
  auto r = run_model(c, run_clock::now(), 5s, 3);
  EXPECT_EQ(r.end, worker_pool::run_end::drained);
  EXPECT_EQ(metric(r.metrics, "http.requests").ok_count(), 10u);
  EXPECT_EQ(server.accepted.load(), 1u);
}

TEST(http_model, expected_status_list_decides_success) {
  test_server server(behavior::status_500);
  auto c = open_config(server.url(), 50, 200'000);
  c.expect_status = {500};
  auto r = run_model(c, run_clock::now(), 5s);
  EXPECT_EQ(metric(r.metrics, "http.requests").count(), 10u);
  EXPECT_EQ(metric(r.metrics, "http.requests").error_count(), 0u);
}

TEST(http_model, stop_ends_an_open_model_early) {
  test_server server(behavior::stall);
  auto c = open_config(server.url(), 100, 60'000'000);
  c.connections = 4;
  auto model = make_http_model(c);
  const auto start = run_clock::now();
  worker_pool pool(2, start);
  pool.start({model.get()});
  EXPECT_EQ(pool.run_until(start + 500ms), worker_pool::run_end::deadline);
  auto m = pool.stop(100ms);
  EXPECT_LT(run_clock::now() - start, 3s);
  // About 50 arrivals: 4 stuck on the wire (cancelled, not counted), the rest unsent.
  EXPECT_GE(metric(m, "http.unsent").count(), 40u);
  EXPECT_EQ(metric(m, "http.requests").count(), 0u);
}

TEST(http_model, invalid_config_is_rejected_with_the_field) {
  http_model_config c;
  c.name = "x";
  c.url = "ftp://h/";
  EXPECT_THROW(make_http_model(c), std::invalid_argument);
  c.url = "http://127.0.0.1:1/";
  c.connections = 0;
  EXPECT_THROW(make_http_model(c), std::invalid_argument);
  c.connections = 1;
  c.url = "https://127.0.0.1:1/";
  c.tls.ca_file = "/nonexistent/ca.pem";
  try {
    make_http_model(c);
    ADD_FAILURE() << "expected a throw";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("target.tls.ca_file"), std::string::npos) << e.what();
  }
}

// TLS: a CA, a server certificate for localhost/127.0.0.1 and a client certificate, all from
// the openssl CLI in a temporary directory; the server requires the client certificate.
class http_tls : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) SYNCSTORM_SKIP_OR_FAIL("openssl CLI not found");
    dir_ = std::filesystem::temp_directory_path() / ("syncstorm-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    std::ofstream(dir_ / "san.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
    const std::string d = dir_.string();
    const std::string key = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string script =
        "cd " + d + " && openssl req -x509" + key + " -keyout ca.key -out ca.crt -days 1 -subj /CN=syncstorm-test-ca" +
        " && openssl req" + key + " -keyout server.key -out server.csr -subj /CN=localhost" +
        " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 1 -extfile san.ext" +
        " && openssl req" + key + " -keyout client.key -out client.csr -subj /CN=syncstorm-client" +
        " && openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out client.crt -days 1";
    ASSERT_EQ(std::system(("(" + script + ") >/dev/null 2>&1").c_str()), 0) << "openssl failed in " << d;
    server_ctx_.use_certificate_chain_file(d + "/server.crt");
    server_ctx_.use_private_key_file(d + "/server.key", net::ssl::context::pem);
    server_ctx_.load_verify_file(d + "/ca.crt");
    server_ctx_.set_verify_mode(net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert);
  }
  void TearDown() override {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }
  http_model_config config(const test_server& server) const {
    auto c = open_config(server.url(), 50, 400'000);  // 20 requests
    c.connections = 4;
    c.timeout_us = 2'000'000;
    c.tls.ca_file = (dir_ / "ca.crt").string();
    c.tls.cert_file = (dir_ / "client.crt").string();
    c.tls.key_file = (dir_ / "client.key").string();
    c.tls.server_name = "localhost";
    return c;
  }

  std::filesystem::path dir_;
  net::ssl::context server_ctx_{net::ssl::context::tls_server};
};

TEST_F(http_tls, succeeds_with_the_ca_and_a_client_certificate) {
  test_server server(behavior::ok, &server_ctx_);
  auto r = run_model(config(server), run_clock::now(), 5s);
  const auto& requests = metric(r.metrics, "http.requests");
  EXPECT_EQ(requests.count(), 20u);
  EXPECT_EQ(requests.error_count(), 0u);
  EXPECT_LE(server.accepted.load(), 4u);
}

TEST_F(http_tls, verifies_the_ip_when_no_server_name_is_given) {
  test_server server(behavior::ok, &server_ctx_);
  auto c = config(server);
  c.tls.server_name.clear();  // verified against 127.0.0.1, which the certificate lists
  auto r = run_model(c, run_clock::now(), 5s);
  EXPECT_EQ(metric(r.metrics, "http.requests").ok_count(), 20u);
}

TEST_F(http_tls, fails_without_the_ca) {
  test_server server(behavior::ok, &server_ctx_);
  auto c = config(server);
  c.tls.ca_file.clear();  // the system's roots do not know the test CA
  auto r = run_model(c, run_clock::now(), 5s);
  EXPECT_EQ(metric(r.metrics, "http.requests").error_count(), 20u);
  EXPECT_EQ(bucket(r.metrics, "connect"), 20u);
  EXPECT_EQ(server.requests.load(), 0u);
}

TEST_F(http_tls, fails_with_a_wrong_server_name) {
  test_server server(behavior::ok, &server_ctx_);
  auto c = config(server);
  c.tls.server_name = "not-the-server.example";
  auto r = run_model(c, run_clock::now(), 5s);
  EXPECT_EQ(bucket(r.metrics, "connect"), 20u);
}

TEST_F(http_tls, fails_without_the_client_certificate) {
  test_server server(behavior::ok, &server_ctx_);
  auto c = config(server);
  c.tls.cert_file.clear();
  c.tls.key_file.clear();
  auto r = run_model(c, run_clock::now(), 5s);
  // TLS 1.2 refuses in the handshake (connect); TLS 1.3 lets the client finish its side and
  // sends the alert on the first read (protocol). Either way every request failed, none served.
  EXPECT_EQ(metric(r.metrics, "http.requests").error_count(), 20u);
  EXPECT_EQ(bucket(r.metrics, "connect") + bucket(r.metrics, "protocol"), 20u);
  EXPECT_EQ(server.requests.load(), 0u);
}

}  // namespace
