// Integration tests of the one HTTP/1.1 client (loadgen/http_client.hpp) over loopback, against
// a scripted server on its own thread (POSIX sockets): the request it builds, keep-alive and
// the one fresh retry of a connection the server had closed, each failure bucket with its
// reason, both deadline mechanisms (the client's timer, the watchdog) and cancel(). The models'
// own tests (http_model, terminal_model, fanout, bootstrap, audit_reader) drive it further.
// Bounded: a few seconds in all.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/net.hpp"
#include "loadgen/http_client.hpp"

namespace {

using namespace std::chrono_literals;
using namespace syncstorm::loadgen;
using steady = std::chrono::steady_clock;

// What the server does with the n-th request it reads (0-based, over all connections).
struct step {
  std::string reply;         // sent as is ("" sends nothing)
  bool close_after = false;  // close the connection after the reply
  bool hang = false;         // send nothing and keep the connection open until the test ends
};

// Accepts connections one at a time; reads each request (headers and a Content-Length body),
// records it and answers per the script (the last step repeats).
class scripted_server {
 public:
  explicit scripted_server(std::vector<step> script) : script_(std::move(script)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 16) != 0) std::abort();
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~scripted_server() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  std::string url(const std::string& path = "") const { return "http://127.0.0.1:" + std::to_string(port_) + path; }
  int accepted() const { return accepted_.load(); }
  std::vector<std::string> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  // Waits for fd to be readable for at most 50 ms; false when the server stops.
  bool wait_readable(int fd) const {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) > 0) return true;
    }
    return false;
  }

  void serve() {
    while (wait_readable(fd_)) {
      const int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) continue;
      ++accepted_;
      std::string in;
      bool open = true;
      while (open && !stop_) {
        std::size_t end;
        while ((end = in.find("\r\n\r\n")) == std::string::npos || in.size() < end + 4 + body_length(in, end)) {
          char buf[4096];
          if (!wait_readable(c)) break;
          const ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) {
            open = false;
            break;
          }
          in.append(buf, static_cast<std::size_t>(n));
        }
        if (!open || stop_) break;
        const std::size_t total = end + 4 + body_length(in, end);
        const step s = next(in.substr(0, total));
        in.erase(0, total);
        if (s.hang) {
          while (!stop_) std::this_thread::sleep_for(20ms);
          break;
        }
        if (!s.reply.empty()) ::send(c, s.reply.data(), s.reply.size(), MSG_NOSIGNAL);
        if (s.close_after) break;
      }
      ::close(c);
    }
  }

  static std::size_t body_length(const std::string& in, std::size_t header_end) {
    const std::string h = in.substr(0, header_end);
    const auto at = h.find("Content-Length: ");
    return at == std::string::npos ? 0 : std::stoul(h.substr(at + 16));
  }

  step next(std::string request) {
    std::lock_guard lock(mu_);
    requests_.push_back(std::move(request));
    return script_[std::min(requests_.size() - 1, script_.size() - 1)];
  }

  std::vector<step> script_;
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  mutable std::mutex mu_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

const std::string ok = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

http_site site_for(const std::string& base, std::vector<std::pair<std::string, std::string>> headers = {}) {
  http_site s = http_site::make(base, std::move(headers), {}, "test.url");
  net::io_context io;
  s.resolve(io, "test");
  return s;
}

// Runs `body` as a coroutine on a fresh io_context until it finishes.
void run(const std::function<net::awaitable<void>(net::io_context&)>& body) {
  net::io_context io;
  net::co_spawn(io, body(io), [](std::exception_ptr e) {
    if (e) std::rethrow_exception(e);
  });
  io.run();
}

TEST(http_client, a_request_carries_the_prefix_host_agent_the_last_of_each_header_and_a_json_body) {
  scripted_server srv({{ok}});
  const http_site site = site_for(srv.url("/api/"), {{"X-Token", "a"}, {"x-token", "b"}, {"Content-Length", "999"}});
  http_reply r;
  run([&](net::io_context& io) -> net::awaitable<void> {
    http_client c(io, site);
    r = co_await c.async_request("POST", "/push", R"({"a":1})", 2'000'000);
  });
  EXPECT_FALSE(r.failed) << r.error;
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "ok");
  ASSERT_EQ(srv.requests().size(), 1u);
  const std::string q = srv.requests()[0];
  EXPECT_TRUE(q.starts_with("POST /api/push HTTP/1.1\r\n")) << q;
  EXPECT_NE(q.find("\r\nHost: 127.0.0.1:" + srv.url().substr(17) + "\r\n"), std::string::npos) << q;
  EXPECT_NE(q.find("\r\nUser-Agent: syncstorm\r\n"), std::string::npos) << q;
  EXPECT_NE(q.find("\r\nx-token: b\r\n"), std::string::npos) << q;
  EXPECT_EQ(q.find("X-Token: a"), std::string::npos) << q;
  EXPECT_EQ(q.find("999"), std::string::npos) << q;
  EXPECT_NE(q.find("\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}"), std::string::npos) << q;
}

TEST(http_client, a_whole_non_2xx_reply_is_status_with_its_body_and_the_connection_stays) {
  scripted_server srv({{"HTTP/1.1 503 Busy\r\nContent-Length: 4\r\n\r\nbusy"}, {ok}});
  const http_site site = site_for(srv.url());
  http_reply a, b;
  run([&](net::io_context& io) -> net::awaitable<void> {
    http_client c(io, site);
    a = co_await c.async_request("GET", "/x", "", 2'000'000);
    b = co_await c.async_request("GET", "/x", "", 2'000'000);
  });
  EXPECT_EQ(a.failed, error_bucket::status);
  EXPECT_EQ(a.status, 503);
  EXPECT_EQ(a.body, "busy");
  EXPECT_TRUE(a.error.empty()) << a.error;
  EXPECT_FALSE(b.failed) << b.error;
  EXPECT_EQ(srv.accepted(), 1);
  EXPECT_TRUE(srv.requests()[0].starts_with("GET /x HTTP/1.1\r\n"));
  EXPECT_EQ(srv.requests()[0].find("Content-Length"), std::string::npos);  // a GET without a body
}

TEST(http_client, a_kept_connection_the_server_closed_is_retried_once_on_a_fresh_one) {
  // The first reply claims keep-alive, then the server closes: the second request finds the
  // connection dead before any reply byte and goes again, fresh. It is not a failure.
  scripted_server srv({{ok, true}, {ok}});
  const http_site site = site_for(srv.url());
  http_reply a, b;
  run([&](net::io_context& io) -> net::awaitable<void> {
    http_client c(io, site);
    a = co_await c.async_request("GET", "/", "", 2'000'000);
    net::steady_timer t(io);
    t.expires_after(100ms);  // the close reaches the client
    co_await t.async_wait(net::use_awaitable);
    b = co_await c.async_request("GET", "/", "", 2'000'000);
  });
  EXPECT_FALSE(a.failed) << a.error;
  EXPECT_FALSE(b.failed) << b.error;
  EXPECT_EQ(srv.accepted(), 2);
}

TEST(http_client, each_failure_has_its_bucket_and_a_one_line_reason) {
  struct failing {
    std::string reply;
    error_bucket bucket;
    std::string reason;
  };
  const std::vector<failing> cases = {
      {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", error_bucket::read,
       "read: the server closed the connection mid-reply"},
      {"SSH-2.0-OpenSSH_9.2\r\n\r\n", error_bucket::protocol, "read: "},
      {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x'), error_bucket::protocol,
       "read: body limit exceeded"},
  };
  for (const auto& f : cases) {
    scripted_server srv({{f.reply, true}});
    http_site site = site_for(srv.url());
    site.body_limit = 10;
    http_reply r;
    run([&](net::io_context& io) -> net::awaitable<void> {
      http_client c(io, site);
      r = co_await c.async_request("GET", "/", "", 2'000'000);
    });
    EXPECT_EQ(r.failed, f.bucket) << f.reply;
    EXPECT_TRUE(r.error.starts_with(f.reason)) << r.error;
    EXPECT_EQ(srv.accepted(), 1) << "a fresh connection is never retried";
  }
  // Nobody listens on a port just closed.
  std::string url;
  {
    scripted_server gone({{ok}});
    url = gone.url();
  }
  const http_site site = site_for(url);
  http_reply r;
  run([&](net::io_context& io) -> net::awaitable<void> {
    http_client c(io, site);
    r = co_await c.async_request("GET", "/", "", 2'000'000);
  });
  EXPECT_EQ(r.failed, error_bucket::connect);
  EXPECT_TRUE(r.error.starts_with("connect: ")) << r.error;
}

TEST(http_client, the_clients_own_timer_ends_a_request_the_server_never_answers) {
  scripted_server srv({{"", false, true}});
  const http_site site = site_for(srv.url());
  http_reply r;
  const auto t0 = steady::now();
  run([&](net::io_context& io) -> net::awaitable<void> {
    http_client c(io, site);
    r = co_await c.async_request("GET", "/", "", 300'000);
  });
  const auto took = steady::now() - t0;
  EXPECT_EQ(r.failed, error_bucket::timeout);
  EXPECT_EQ(r.error, "read: timeout");
  EXPECT_GE(took, 280ms);
  EXPECT_LT(took, 3s);
}

TEST(http_client, a_watchdog_ends_async_send_past_its_deadline_and_cancel_ends_it_at_once) {
  scripted_server srv({{"", false, true}});
  const http_site site = site_for(srv.url());
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  http_status by_watchdog, by_cancel;
  steady::duration watchdog_took{}, cancel_took{};
  http_watchdog wd;  // outlives its run() and the client
  run([&](net::io_context& io) -> net::awaitable<void> {
    bool done = false;
    net::co_spawn(io, wd.run(20ms, [&done] { return !done; }), net::detached);
    http_client c(io, site, &wd);
    auto t0 = steady::now();
    by_watchdog = co_await c.async_send(request, false, 300'000);
    watchdog_took = steady::now() - t0;
    // cancel() from elsewhere on the thread, 100 ms in, with a deadline far away.
    net::steady_timer cut(io);
    cut.expires_after(100ms);
    cut.async_wait([&c](const boost::system::error_code&) { c.cancel(); });
    t0 = steady::now();
    by_cancel = co_await c.async_send(request, false, 30'000'000);
    cancel_took = steady::now() - t0;
    done = true;
    wd.stop();
  });
  EXPECT_EQ(by_watchdog.failed, error_bucket::timeout);
  EXPECT_GE(watchdog_took, 280ms);
  EXPECT_LT(watchdog_took, 3s);
  EXPECT_EQ(by_cancel.failed, error_bucket::read);
  EXPECT_LT(cancel_took, 3s);
}

TEST(http_client, async_send_keeps_the_status_and_reads_a_head_reply_without_its_body) {
  scripted_server srv({{"HTTP/1.1 204 No Content\r\nContent-Length: 100\r\n\r\n"}, {ok}});
  const http_site site = site_for(srv.url());
  http_status a, b;
  http_watchdog wd;  // not run: the deadlines are far
  run([&](net::io_context& io) -> net::awaitable<void> {
    http_client c(io, site, &wd);
    a = co_await c.async_send("HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", true, 2'000'000);
    b = co_await c.async_send("GET / HTTP/1.1\r\nHost: x\r\n\r\n", false, 2'000'000);
  });
  EXPECT_FALSE(a.failed);
  EXPECT_EQ(a.status, 204);
  EXPECT_FALSE(b.failed);
  EXPECT_EQ(b.status, 200);
  EXPECT_EQ(srv.accepted(), 1);
}

}  // namespace
