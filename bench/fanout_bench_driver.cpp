// The fanout bench's client (bench/fanout_bench.sh): one process, one fanout model per
// WebSocket URL given (the lab's LB, or each pod directly), no pushes, N subscribers in total.
// Prints the process's VmRSS before the models exist and once the connected count stopped
// growing, and the RSS per connection.
//   fanout_bench_driver HTTP_URL SUBSCRIBERS THREADS CONNECT_RATE WS_URL...
#include "loadgen/fanout_model.hpp"
#include "loadgen/limits.hpp"

#include <fstream>
#include <iostream>
#include <random>
#include <string>

namespace {

long vm_rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace syncstorm::loadgen;
  if (argc < 6) {
    std::cerr << "usage: fanout_bench_driver HTTP_URL SUBSCRIBERS THREADS CONNECT_RATE WS_URL...\n";
    return 2;
  }
  const std::string http_url = argv[1];
  const std::size_t subscribers = std::stoul(argv[2]);
  const std::size_t threads = std::stoul(argv[3]);
  const double connect_rate = std::stod(argv[4]);
  std::vector<std::string> ws_urls(argv + 5, argv + argc);
  const std::uint64_t nofile = raise_nofile();
  const long rss0 = vm_rss_kib();
  std::random_device rd;
  const std::string tag = "fb" + std::to_string(rd() % 1'000'000'000);
  std::vector<std::unique_ptr<fanout_model>> models;
  std::vector<load_model*> ptrs;
  for (std::size_t i = 0; i < ws_urls.size(); ++i) {
    fanout_config c;
    c.name = "fan" + std::to_string(i);
    c.http_url = http_url;
    c.ws_url = ws_urls[i];
    c.subscribers = subscribers / ws_urls.size() + (i < subscribers % ws_urls.size() ? 1 : 0);
    c.streams = 100;
    c.views = 0;
    c.push_connections = 1;
    c.connect_rate = connect_rate / static_cast<double>(ws_urls.size());
    c.timeout_us = 10'000'000;
    c.idle_timeout_us = 120'000'000;
    c.phases = {phase_spec{"hold", 3'600'000'000, 0.0, std::nullopt}};
    c.run_tag = tag;
    c.stream_prefix = tag + "-s";
    models.push_back(make_fanout_model(c));
    ptrs.push_back(models.back().get());
  }
  const auto start = run_clock::now();
  worker_pool pool(threads, start);
  pool.start(ptrs);
  double connected = 0, best = 0;
  int still = 0;
  for (int s = 1; s <= 600 && still < 8; ++s) {
    pool.run_until(start + std::chrono::seconds(s));
    auto m = pool.snapshot(0);
    const auto* g = m.find_gauge("ws.connected");
    connected = g ? g->last() : 0;
    if (connected > best) {
      best = connected;
      still = 0;
    } else {
      ++still;
    }
    if (s % 5 == 0) std::cerr << "t=" << s << "s connected " << connected << "\n";
    if (connected >= static_cast<double>(subscribers) && still >= 3) break;
  }
  const long rss1 = vm_rss_kib();
  auto m = pool.snapshot(0);
  auto count = [&](const char* n) {
    const auto* x = m.find(n);
    return x ? x->count() : 0;
  };
  std::cout << "subscribers " << subscribers << " connected " << connected << " (RLIMIT_NOFILE " << nofile << ")\n"
            << "ws.errors connect " << count("ws.errors.connect") << " status " << count("ws.errors.status") << " read "
            << count("ws.errors.read") << " timeout " << count("ws.errors.timeout") << " closed "
            << count("ws.errors.closed") << "\n"
            << "VmRSS before " << rss0 << " KiB, connected " << rss1 << " KiB, per connection "
            << (connected > 0 ? static_cast<double>(rss1 - rss0) / connected : 0.0) << " KiB\n";
  for (auto& mo : models) mo->stop();
  pool.stop(std::chrono::seconds(15));
  return 0;
}
