// syncd against hostile clients (issue #23): a push nested 200,000 deep (400), a 5 MiB push
// (413), a 16 MiB WebSocket message from a subscriber (closed, 1009), a flood of idle
// connections past --max-connections (closed at accept, counted) and 10,000 idle connections
// under the default cap: each is answered or closed, syncd stays up, and a subscriber connected
// before keeps receiving while pushes go on being acked. Real PostgreSQL, real sockets on
// 127.0.0.1; every wait is bounded.
#include "tests/integration/syncd_support.hpp"

#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <regex>
#include <tuple>

using namespace syncd_test;

namespace {

class syncd_limits : public syncd_suite {};

// A blocking TCP connection to 127.0.0.1:port (the fd, or -1).
int connect_raw(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Whether the server closed fd within `wait` (a read returns EOF or an error).
bool closed_by_server(int fd, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
  char c;
  return ::recv(fd, &c, 1, MSG_DONTWAIT) <= 0;
}

// Connects as a subscriber and sends one 16 MiB message; returns the write's error, the
// following read's error and the close code the server sent (-1: none). 30 s in all.
std::tuple<beast::error_code, beast::error_code, int> send_huge_message(std::uint16_t port) {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws(ioc);
  beast::error_code write_ec, read_ec = net::error::timed_out;
  int code = -1;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        auto& s = beast::get_lowest_layer(ws);
        s.expires_after(30s);  // the deadline of every step below
        auto [cec] = co_await s.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), use_tuple);
        if (cec) {
          write_ec = cec;
          co_return;
        }
        auto [hec] = co_await ws.async_handshake("127.0.0.1", "/v1/ws?streams=s2", use_tuple);
        if (hec) {
          write_ec = hec;
          co_return;
        }
        const std::string big(16 << 20, 'z');
        auto [wec, wn] = co_await ws.async_write(net::buffer(big), use_tuple);
        write_ec = wec;
        beast::flat_buffer buf;
        auto [rec, rn] = co_await ws.async_read(buf, use_tuple);
        read_ec = rec;
        if (rec == websocket::error::closed) code = static_cast<int>(ws.reason().code);
      },
      net::detached);
  ioc.run_for(40s);
  return {write_ec, read_ec, code};
}

std::int64_t metric_value(std::uint16_t port, const std::string& name) {
  auto m = http_get(port, "/metrics");
  std::smatch hit;
  if (!std::regex_search(m.body, hit, std::regex(name + R"(\{[^}]*\} ([0-9]+))"))) return -1;
  return std::stoll(hit[1]);
}

}  // namespace

TEST_F(syncd_limits, hostile_requests_are_answered_or_closed_and_other_clients_stay_served) {
  rlimit lim{};
  ::getrlimit(RLIMIT_NOFILE, &lim);
  lim.rlim_cur = lim.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &lim);
  ASSERT_GE(lim.rlim_cur, 10'500u) << "10,000 idle connections need the descriptors";

  auto db = fresh_db();
  syncd_process s(db.dsn, "lim");
  ASSERT_TRUE(s.wait_ready());
  ws_client watcher(s.port(), "/v1/ws?streams=s1");
  ASSERT_TRUE(watcher.connected()) << watcher.error();
  std::int64_t seq = 0;
  auto served = [&](const std::string& id) {
    auto r = http_post(s.port(), "/v1/push", push_body(json::array({op_append(id, "s1", ++seq)})));
    if (r.status != 200) return "push " + id + ": " + std::to_string(r.status) + " " + r.error;
    auto f = watcher.next(10s);
    if (!f || (*f)["id"] != id) return "the subscriber did not get " + id;
    return std::string();
  };
  EXPECT_EQ(served("before"), "");

  // A push nested 200,000 deep: 400, nothing else happens.
  const std::string deep = R"({"client":"x","ops":)" + std::string(200'000, '[') + std::string(200'000, ']') + "}";
  auto r = http_post(s.port(), "/v1/push", deep);
  EXPECT_EQ(r.status, 400) << r.error << r.body.substr(0, 200);
  EXPECT_EQ(served("after-deep"), "");

  // 5 MiB: 413 (the 4 MiB body limit), or the connection closed while the rest was still
  // being sent (the reply came before the client finished writing).
  const std::string big = R"({"client":"x","ops":[],"pad":")" + std::string(5 << 20, 'x') + "\"}";
  r = http_post(s.port(), "/v1/push", big, 20s);
  EXPECT_TRUE(r.status == 413 || (r.status == 0 && !r.error.empty())) << r.status << " " << r.error;
  EXPECT_EQ(served("after-big"), "");

  // A subscriber that sends 16 MiB: closed with 1009 (message too big), not buffered.
  {
    auto [write_ec, read_ec, code] = send_huge_message(s.port());
    const bool write_cut = write_ec == net::error::broken_pipe || write_ec == net::error::connection_reset;
    const bool read_closed =
        read_ec == websocket::error::closed || read_ec == net::error::connection_reset || read_ec == net::error::eof;
    EXPECT_TRUE(write_cut || read_closed) << "write: " << write_ec.message() << ", read: " << read_ec.message();
    if (read_ec == websocket::error::closed) {
      EXPECT_EQ(code, static_cast<int>(websocket::close_code::too_big));
    }
  }
  EXPECT_EQ(served("after-16mib"), "");

  // 10,000 idle connections under the default cap: all held, pushes still served.
  std::vector<int> idle;
  for (int i = 0; i < 10'000; ++i) {
    int fd = connect_raw(s.port());
    if (fd < 0) break;
    idle.push_back(fd);
  }
  EXPECT_EQ(idle.size(), 10'000u);
  EXPECT_EQ(served("with-10000-idle"), "");
  for (int fd : idle) ::close(fd);
  idle.clear();
  EXPECT_EQ(served("after-idle"), "");
  EXPECT_EQ(metric_value(s.port(), "syncd_connections_refused_total"), 0);
}

TEST_F(syncd_limits, past_max_connections_a_new_connection_is_closed_at_once_and_counted) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "cap", {"--max-connections", "100"});
  ASSERT_TRUE(s.wait_ready());
  ws_client watcher(s.port(), "/v1/ws?streams=s1");
  ASSERT_TRUE(watcher.connected()) << watcher.error();
  // 150 idle connections: the server holds up to the cap (the subscriber is one of them) and
  // closes the rest as soon as it accepts them.
  std::vector<int> idle;
  for (int i = 0; i < 150; ++i) {
    int fd = connect_raw(s.port());
    ASSERT_GE(fd, 0);
    idle.push_back(fd);
  }
  int closed = 0;
  for (int fd : idle) closed += closed_by_server(fd, 50ms);
  EXPECT_GE(closed, 50);
  EXPECT_LE(closed, 52);  // 150 − (100 − the subscriber), give or take the /readyz connection
  // The subscriber connected before the flood still receives; once the flood is gone, new
  // connections are served again.
  for (int fd : idle) ::close(fd);
  bool pushed = false;
  for (int attempt = 0; attempt < 50 && !pushed; ++attempt) {
    pushed = http_post(s.port(), "/v1/push", push_body(json::array({op_append("after-cap", "s1", 1)}))).status == 200;
    if (!pushed) std::this_thread::sleep_for(100ms);
  }
  ASSERT_TRUE(pushed) << s.log();
  auto f = watcher.next(10s);
  ASSERT_TRUE(f);
  EXPECT_EQ((*f)["id"], "after-cap");
  EXPECT_GE(metric_value(s.port(), "syncd_connections_refused_total"), 50);
}
