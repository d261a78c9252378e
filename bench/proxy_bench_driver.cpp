// Fault proxy overhead: the lab relay (proxy/relay.cpp) in pass-through, measured against
// the direct path on loopback. Two child processes (process::spawn) run proxy::relay_run with one
// path (127.0.0.1:P → a local server), one with splice(2) (the default in pass-through) and one
// with every byte copied through userspace (splice off, as under a shaping fault); the parent
// measures
//   - round-trip latency: 64-byte ping-pong, 20000 round trips, p50/p99, direct and through the
//     relay (the added latency is the difference);
//   - throughput: one connection streaming 4 GiB in 256 KiB writes to a sink, direct and through.
// Plain blocking sockets on the measuring side, so the numbers are the relay's, not a client's.
#include "proxy/relay.hpp"
#include "process/runner.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;

int listen_any(int& port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  port = ntohs(a.sin_port);
  ::listen(fd, 16);
  return fd;
}

int connect_to(int port) {
  for (int i = 0; i < 200; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    ::close(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::perror("connect");
  std::exit(1);
}

bool read_full(int fd, char* p, size_t n) {
  while (n) {
    ssize_t r = ::read(fd, p, n);
    if (r <= 0) return false;
    p += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

// The server: echo 64-byte messages, or sink everything (first byte says which).
void serve(int lfd) {
  for (;;) {
    int c = ::accept(lfd, nullptr, nullptr);
    if (c < 0) return;
    std::thread([c] {
      int one = 1;
      ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      char mode = 0;
      if (!read_full(c, &mode, 1)) {
        ::close(c);
        return;
      }
      std::vector<char> buf(1 << 18);
      if (mode == 'e') {
        while (read_full(c, buf.data(), 64))
          if (::write(c, buf.data(), 64) != 64) break;
      } else {
        while (::read(c, buf.data(), buf.size()) > 0) {
        }
      }
      ::close(c);
    }).detach();
  }
}

std::pair<double, double> latency_us(int port) {
  int fd = connect_to(port);
  char m = 'e';
  (void)::write(fd, &m, 1);
  char buf[64] = {};
  std::vector<double> v;
  for (int i = 0; i < 20000; ++i) {
    auto t0 = clk::now();
    if (::write(fd, buf, 64) != 64 || !read_full(fd, buf, 64)) break;
    v.push_back(std::chrono::duration<double, std::micro>(clk::now() - t0).count());
  }
  ::close(fd);
  std::sort(v.begin(), v.end());
  return {v[v.size() / 2], v[v.size() * 99 / 100]};
}

double throughput_GBps(int port) {
  int fd = connect_to(port);
  char m = 's';
  (void)::write(fd, &m, 1);
  std::vector<char> buf(1 << 18, 'x');
  const std::uint64_t total = 4ULL << 30;
  auto t0 = clk::now();
  for (std::uint64_t sent = 0; sent < total;) {
    ssize_t w = ::write(fd, buf.data(), buf.size());
    if (w <= 0) break;
    sent += static_cast<std::uint64_t>(w);
  }
  ::shutdown(fd, SHUT_WR);
  char c;
  (void)::read(fd, &c, 1);  // the sink closes once it has read everything
  double s = std::chrono::duration<double>(clk::now() - t0).count();
  ::close(fd);
  return static_cast<double>(total) / s / 1e9;
}

// Starts a relay process with one pass-through path to the server on `relay_port`; with copy,
// splice(2) is off (every byte through userspace, as under a shaping fault).
pid_t start_relay(const std::string& dir, int relay_port, int server_port, bool copy) {
  ::mkdir(dir.c_str(), 0700);
  syncstorm::proxy::relay_config cfg;
  syncstorm::proxy::relay_path_config path;
  path.name = "bench";
  path.listen = "127.0.0.1:" + std::to_string(relay_port);
  path.upstream = "127.0.0.1:" + std::to_string(server_port);
  cfg.paths.push_back(path);
  cfg.control = dir + "/relay.sock";
  cfg.splice = !copy;
  syncstorm::process::spawn_options o;
  o.child_main = [cfg] { return syncstorm::proxy::relay_run(cfg); };
  return syncstorm::process::spawn(o);
}

void remove_dir(const std::string& dir) {
  std::remove((dir + "/relay.sock").c_str());
  ::rmdir(dir.c_str());
}

}  // namespace

int main() {
  int server_port = 0, splice_port = 0, copy_port = 0;
  int lfd = listen_any(server_port);
  {
    int tmp = listen_any(splice_port);
    ::close(tmp);
  }
  {
    int tmp = listen_any(copy_port);
    ::close(tmp);
  }
  const std::string base = "/tmp/syncstorm-proxy-bench-" + std::to_string(::getpid());
  pid_t splice_relay = start_relay(base + "-s", splice_port, server_port, false);
  pid_t copy_relay = start_relay(base + "-c", copy_port, server_port, true);
  std::thread(serve, lfd).detach();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto [d50, d99] = latency_us(server_port);
  auto [p50, p99] = latency_us(splice_port);
  auto [c50, c99] = latency_us(copy_port);
  double dt = throughput_GBps(server_port);
  double pt = throughput_GBps(splice_port);
  double ct = throughput_GBps(copy_port);
  std::printf("round trip, direct       : p50 %7.1f µs  p99 %7.1f µs\n", d50, d99);
  std::printf("round trip, relay splice : p50 %7.1f µs  p99 %7.1f µs\n", p50, p99);
  std::printf("round trip, relay copy   : p50 %7.1f µs  p99 %7.1f µs\n", c50, c99);
  std::printf("added by the relay       : p50 %7.1f µs  p99 %7.1f µs (splice; two hops per round trip)\n", p50 - d50,
              p99 - d99);
  std::printf("added by the relay       : p50 %7.1f µs  p99 %7.1f µs (copy)\n", c50 - d50, c99 - d99);
  std::printf("throughput, direct       : %.2f GB/s\n", dt);
  std::printf("throughput, relay splice : %.2f GB/s\n", pt);
  std::printf("throughput, relay copy   : %.2f GB/s\n", ct);
  for (pid_t r : {splice_relay, copy_relay}) {
    ::kill(r, SIGTERM);
    ::waitpid(r, nullptr, 0);
  }
  remove_dir(base + "-s");
  remove_dir(base + "-c");
  return 0;
}
