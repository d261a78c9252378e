// syncd_bench: a small load client for the two syncd bench points in bench/README.md.
//
//   syncd_bench push   --port P [--connections 16] [--batch 20] [--duration 20] [--streams 100]
//   syncd_bench fanout --port P [--subscribers 10000] [--streams 100] [--rate 35] [--duration 30]
//                      [--connect-parallel 200]
//
// push:   closed loop; each keep-alive connection pushes batches of `batch` append/add ops with
//         fresh ids and waits for the ack. Reports acked ops/s and push latency percentiles.
// fanout: opens `subscribers` WebSockets, subscriber i on stream f<i % streams>, then pushes
//         `rate` single-op batches per second round-robin over the streams (each change reaches
//         subscribers/streams sockets). Reports frames received per second, delivery latency
//         (receive time − the op's t_us, set at send) and frames missing after a drain.
//
// One io_context on one thread: thousands of connections share it (no thread per connection).
// Pushes go through syncstorm's HTTP client (loadgen/http_client.hpp); the WebSockets are
// Beast's. Built by bench/syncd_bench.sh (the syncd_bench target of bench/CMakeLists.txt).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <sys/resource.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include "core/net.hpp"
#include "loadgen/http_client.hpp"

namespace {

using tcp = net::ip::tcp;
using syncstorm::loadgen::error_bucket;
using syncstorm::loadgen::http_client;
using syncstorm::loadgen::http_reply;
using syncstorm::loadgen::http_site;
using clock_type = std::chrono::steady_clock;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

struct config {
  std::string mode;
  std::string host = "127.0.0.1";
  unsigned short port = 0;
  int connections = 16;
  int batch = 20;
  int duration = 20;
  int streams = 100;
  int subscribers = 10000;
  double rate = 0;  // push: 0 = closed loop; fanout: 0 = 35 ops/s
  int connect_parallel = 200;
};

std::int64_t wall_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<std::size_t>(p / 100.0 * static_cast<double>(v.size())))];
}

std::string make_batch(const std::string& prefix, std::uint64_t& n, int batch, int streams) {
  std::string body = "{\"client\":\"" + prefix + "\",\"ops\":[";
  const auto t = std::to_string(wall_us());
  for (int i = 0; i < batch; ++i, ++n) {
    const std::string stream = "f" + std::to_string(n % static_cast<std::uint64_t>(streams));
    const std::string id = prefix + "-" + std::to_string(n);
    if (i) body += ',';
    if (n % 4 == 3)
      body += "{\"id\":\"" + id + "\",\"stream\":\"" + stream + "\",\"seq\":" + std::to_string(n) + ",\"t_us\":" + t +
              ",\"kind\":\"add\",\"key\":\"stock\",\"delta\":1}";
    else
      body += "{\"id\":\"" + id + "\",\"stream\":\"" + stream + "\",\"seq\":" + std::to_string(n) + ",\"t_us\":" + t +
              ",\"kind\":\"append\",\"body\":{\"total\":1234,\"items\":3}}";
  }
  body += "]}";
  return body;
}

// Counts the ids in the reply's "acked" array (the reply is small; a scan is enough).
int count_acked(const std::string& body) {
  auto a = body.find("\"acked\"");
  if (a == std::string::npos) return 0;
  auto open = body.find('[', a), close = body.find(']', a);
  if (open == std::string::npos || close == std::string::npos || close == open + 1) return 0;
  return static_cast<int>(
             std::count(body.begin() + static_cast<long>(open), body.begin() + static_cast<long>(close), ',')) +
         1;
}

constexpr std::int64_t push_timeout_us = 10'000'000;

// syncd's base URL, resolved (throws when the host does not resolve).
http_site syncd_site(const config& c, net::io_context& io) {
  const bool v6 = c.host.find(':') != std::string::npos;
  http_site site = http_site::make("http://" + (v6 ? "[" + c.host + "]" : c.host) + ":" + std::to_string(c.port), {},
                                   {}, "--host/--port");
  site.resolve(io, c.mode);
  return site;
}

struct push_stats {
  std::uint64_t acked = 0, batches = 0, errors = 0;
  std::vector<double> latency_ms;
};

net::awaitable<void> push_loop(const config& c, net::io_context& io, const http_site& site, int index,
                               clock_type::time_point end, push_stats& st, double rate_per_conn) {
  auto ex = co_await net::this_coro::executor;
  const std::string prefix = "bench" + std::to_string(wall_us()) + "c" + std::to_string(index);
  std::uint64_t n = 0;
  auto next_send = clock_type::now();
  http_client conn(io, site);  // keep-alive; reconnects after a failure
  while (clock_type::now() < end) {
    if (rate_per_conn > 0) {
      net::steady_timer t(ex, next_send);
      co_await t.async_wait(use_tuple);
      next_send += std::chrono::microseconds(static_cast<long>(1e6 / rate_per_conn));
    }
    const auto t0 = clock_type::now();
    const http_reply r =
        co_await conn.async_request("POST", "/v1/push", make_batch(prefix, n, c.batch, c.streams), push_timeout_us);
    if (r.failed) {
      ++st.errors;
      if (r.failed == error_bucket::connect) {
        net::steady_timer t(ex, std::chrono::milliseconds(100));
        co_await t.async_wait(use_tuple);
      }
      continue;
    }
    st.latency_ms.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - t0).count());
    ++st.batches;
    st.acked += static_cast<std::uint64_t>(count_acked(r.body));
  }
}

int run_push(const config& c) {
  net::io_context ioc(1);
  push_stats st;
  const auto start = clock_type::now();
  const auto end = start + std::chrono::seconds(c.duration);
  const double per_conn = c.rate > 0 ? c.rate / c.connections : 0;
  const http_site site = syncd_site(c, ioc);
  for (int i = 0; i < c.connections; ++i)
    net::co_spawn(ioc, push_loop(c, ioc, site, i, end, st, per_conn), net::detached);
  ioc.run();
  const double secs = std::chrono::duration<double>(clock_type::now() - start).count();
  std::printf("push: %d connections, batch %d, %.1f s\n", c.connections, c.batch, secs);
  std::printf("  acked ops: %llu (%.0f ops/s), batches: %llu (%.0f/s), errors: %llu\n",
              static_cast<unsigned long long>(st.acked), static_cast<double>(st.acked) / secs,
              static_cast<unsigned long long>(st.batches), static_cast<double>(st.batches) / secs,
              static_cast<unsigned long long>(st.errors));
  std::printf("  push latency ms: p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n", percentile(st.latency_ms, 50),
              percentile(st.latency_ms, 90), percentile(st.latency_ms, 99), percentile(st.latency_ms, 100));
  return st.errors == 0 ? 0 : 1;
}

struct fanout_stats {
  int connected = 0, failed = 0, closed = 0;
  std::uint64_t frames = 0, frames_in_window = 0;
  std::vector<double> latency_ms;
  bool measuring = false;
};

net::awaitable<void> subscriber(const config& c, int index, fanout_stats& st, int& in_flight) {
  auto ex = co_await net::this_coro::executor;
  auto ws = std::make_unique<websocket::stream<beast::tcp_stream>>(ex);
  auto& lowest = beast::get_lowest_layer(*ws);
  lowest.expires_after(std::chrono::seconds(20));
  auto [ec] = co_await lowest.async_connect(tcp::endpoint(net::ip::make_address(c.host), c.port), use_tuple);
  if (!ec) {
    const std::string target = "/v1/ws?streams=f" + std::to_string(index % c.streams);
    std::tie(ec) = co_await ws->async_handshake(c.host, target, use_tuple);
  }
  --in_flight;
  if (ec) {
    ++st.failed;
    co_return;
  }
  lowest.expires_never();
  ++st.connected;
  beast::flat_buffer buf;
  for (;;) {
    auto [rec, n] = co_await ws->async_read(buf, use_tuple);
    if (rec) {
      ++st.closed;
      break;
    }
    ++st.frames;
    if (st.measuring) {
      ++st.frames_in_window;
      // Latency from the op's t_us (stamped by the pusher when it sent the batch).
      const char* data = static_cast<const char*>(buf.data().data());
      std::string_view frame(data, buf.size());
      auto p = frame.find("\"t_us\"");
      if (p != std::string_view::npos) {
        p = frame.find(':', p);
        const long long t = std::atoll(std::string(frame.substr(p + 1, 20)).c_str());
        st.latency_ms.push_back(static_cast<double>(wall_us() - t) / 1000.0);
      }
    }
    buf.consume(buf.size());
  }
}

int run_fanout(const config& c) {
  net::io_context ioc(1);
  const http_site site = syncd_site(c, ioc);
  fanout_stats st;
  push_stats pst;
  int in_flight = 0;
  std::uint64_t ops_pushed = 0;
  net::co_spawn(
      ioc,
      [&]() -> net::awaitable<void> {
        auto ex = co_await net::this_coro::executor;
        const auto t0 = clock_type::now();
        // Bounded connect concurrency: no accidental reconnect storm.
        for (int i = 0; i < c.subscribers; ++i) {
          while (in_flight >= c.connect_parallel) {
            net::steady_timer t(ex, std::chrono::milliseconds(2));
            co_await t.async_wait(use_tuple);
          }
          ++in_flight;
          net::co_spawn(ex, subscriber(c, i, st, in_flight), net::detached);
        }
        while (in_flight > 0) {
          net::steady_timer t(ex, std::chrono::milliseconds(10));
          co_await t.async_wait(use_tuple);
        }
        const double connect_s = std::chrono::duration<double>(clock_type::now() - t0).count();
        std::printf("fanout: %d subscribers connected (%d failed) on %d streams in %.1f s\n", st.connected, st.failed,
                    c.streams, connect_s);
        std::fflush(stdout);
        {
          net::steady_timer settle(ex, std::chrono::seconds(1));
          co_await settle.async_wait(use_tuple);
        }
        // Pusher: `rate` single-op batches per second over one keep-alive connection.
        st.measuring = true;
        const auto start = clock_type::now();
        const auto end = start + std::chrono::seconds(c.duration);
        http_client pusher(ioc, site);
        std::uint64_t n = 0;
        auto next_send = start;
        const std::string prefix = "fan" + std::to_string(wall_us());
        while (clock_type::now() < end) {
          net::steady_timer t(ex, next_send);
          co_await t.async_wait(use_tuple);
          next_send += std::chrono::microseconds(static_cast<long>(1e6 / c.rate));
          const http_reply r =
              co_await pusher.async_request("POST", "/v1/push", make_batch(prefix, n, 1, c.streams), push_timeout_us);
          if (r.failed) {
            std::printf("pusher: %s\n",
                        r.error.empty() ? ("HTTP " + std::to_string(r.status)).c_str() : r.error.c_str());
            ++pst.errors;
            break;
          }
          ops_pushed += static_cast<std::uint64_t>(count_acked(r.body));
        }
        const double push_s = std::chrono::duration<double>(clock_type::now() - start).count();
        // Drain: let the last frames arrive.
        net::steady_timer drain(ex, std::chrono::seconds(3));
        co_await drain.async_wait(use_tuple);
        const std::uint64_t expected = ops_pushed * static_cast<std::uint64_t>(c.subscribers / c.streams);
        std::printf("  pushed %llu ops in %.1f s (%.1f ops/s), push errors %llu\n",
                    static_cast<unsigned long long>(ops_pushed), push_s, static_cast<double>(ops_pushed) / push_s,
                    static_cast<unsigned long long>(pst.errors));
        std::printf("  frames received: %llu of %llu expected (missing %lld), %.0f frames/s over the push window\n",
                    static_cast<unsigned long long>(st.frames_in_window), static_cast<unsigned long long>(expected),
                    static_cast<long long>(expected) - static_cast<long long>(st.frames_in_window),
                    static_cast<double>(st.frames_in_window) / push_s);
        std::printf("  delivery latency ms (t_us → received): p50 %.2f  p90 %.2f  p99 %.2f  max %.2f\n",
                    percentile(st.latency_ms, 50), percentile(st.latency_ms, 90), percentile(st.latency_ms, 99),
                    percentile(st.latency_ms, 100));
        std::printf("  subscribers closed by the server: %d\n", st.closed);
        std::fflush(stdout);
        ioc.stop();
      },
      net::detached);
  ioc.run();
  return st.failed == 0 && pst.errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  config c;
  if (argc < 2) {
    std::fprintf(stderr, "usage: syncd_bench push|fanout --port P [options] (see the file header)\n");
    return 2;
  }
  c.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host")
      c.host = v;
    else if (k == "--port")
      c.port = static_cast<unsigned short>(std::stoi(v));
    else if (k == "--connections")
      c.connections = std::stoi(v);
    else if (k == "--batch")
      c.batch = std::stoi(v);
    else if (k == "--duration")
      c.duration = std::stoi(v);
    else if (k == "--streams")
      c.streams = std::stoi(v);
    else if (k == "--subscribers")
      c.subscribers = std::stoi(v);
    else if (k == "--rate")
      c.rate = std::stod(v);
    else if (k == "--connect-parallel")
      c.connect_parallel = std::stoi(v);
    else {
      std::fprintf(stderr, "syncd_bench: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  if (c.port == 0) {
    std::fprintf(stderr, "syncd_bench: --port is required\n");
    return 2;
  }
  if (c.mode == "push") return run_push(c);
  if (c.mode == "fanout") {
    if (c.rate <= 0) c.rate = 35;
    return run_fanout(c);
  }
  std::fprintf(stderr, "syncd_bench: mode must be push or fanout\n");
  return 2;
}
