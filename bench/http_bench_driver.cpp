// Bench driver for bench/http_vs_wrk.sh: runs the http model's closed mode directly (until the
// CLI's `run` can take the same scenario) on one worker thread for D seconds and prints what it
// did and the CPU the whole process used (getrusage), so it compares with wrk -t1 one to one.
//   http_bench_driver URL CONNECTIONS SECONDS [THREADS]
// Prints one line: requests=N errors=E seconds=S cpu_us=C
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "loadgen/http_model.hpp"
#include "loadgen/workers.hpp"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s URL CONNECTIONS SECONDS [THREADS]\n", argv[0]);
    return 2;
  }
  using namespace syncstorm::loadgen;
  http_model_config c;
  c.name = "bench";
  c.url = argv[1];
  c.open = false;
  c.connections = std::strtoul(argv[2], nullptr, 10);
  const double seconds = std::strtod(argv[3], nullptr);
  const std::size_t threads = argc > 4 ? std::strtoul(argv[4], nullptr, 10) : 1;
  c.phases = {phase_spec{"run", static_cast<std::int64_t>(seconds * 1e6), 1.0, std::nullopt}};
  auto model = make_http_model(c);
  const auto start = run_clock::now();
  worker_pool pool(threads, start);
  pool.start({model.get()});
  pool.run_until(start + std::chrono::microseconds(static_cast<std::int64_t>(seconds * 1e6) + 2'000'000));
  auto m = pool.stop(std::chrono::seconds(1));
  // The closed model starts requests for exactly `seconds` (as wrk's -d); startup and the
  // final drain are not part of the rate.
  const double elapsed = seconds;
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  const long long cpu_us =
      (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1'000'000LL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
  const auto* r = m.find("http.requests");
  std::printf("requests=%llu errors=%llu seconds=%.3f cpu_us=%lld\n",
              static_cast<unsigned long long>(r ? r->count() : 0),
              static_cast<unsigned long long>(r ? r->error_count() : 0), elapsed, cpu_us);
  return 0;
}
