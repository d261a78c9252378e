// syncd: the reference sync server (DESIGN §3, protocol v1 in §4).
//   syncd --db DSN --listen ADDR:PORT [--bug MODE] [--bug-log PATH] [--pod-name NAME]
//         [--db-pool N] [--threads N]
// main parses flags, raises RLIMIT_NOFILE, starts the fanout listener and the database pool,
// binds, and runs the io_context on N threads until SIGTERM/SIGINT has drained the sessions.
// Exit codes: 0 after a drain, 1 on a start-up failure (bad flag, cannot bind or open a file).
#include <algorithm>
#include <cstdio>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <csignal>

#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>

#include "syncd/log.hpp"
#include "syncd/server.hpp"

namespace {

using namespace syncstorm::syncd;

// Thousands of keep-alive and WebSocket connections need more than the default 1024 fds.
rlim_t raise_nofile() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur;
}

}  // namespace

int main(int argc, char** argv) {
  options opts;
  std::string listen = "127.0.0.1:8080";
  std::string bug;
  CLI::App cli{"syncd: the reference sync server (protocol v1) on PostgreSQL"};
  cli.add_option("--db", opts.db, "PostgreSQL conninfo or postgresql:// URI")->required();
  cli.add_option("--listen", listen, "ADDR:PORT to listen on")->capture_default_str();
  cli.add_option("--bug", bug,
                 "bug modes, comma-separated: ack-before-commit, drop-every=N, dup-every=N, dup-apply, "
                 "slow-ack=MS, fanout-skip-every=N, fanout-reorder, fanout-stale-replay, corrupt-every=N");
  cli.add_option("--bug-log", opts.bug_log,
                 "file for the ids dropped by drop-every or corrupted by corrupt-every (default: stderr)");
  cli.add_option("--pod-name", opts.pod_name, "name in logs, metrics and the changes' pod column")
      ->capture_default_str();
  cli.add_option("--db-pool", opts.db_pool, "database connections (one thread each)")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  cli.add_option("--threads", opts.threads, "io threads")->check(CLI::Range(1u, 256u))->capture_default_str();
  cli.add_option("--max-connections", opts.max_connections,
                 "open connections (WebSockets included) above which a new one is closed at once "
                 "(default: RLIMIT_NOFILE minus 256)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 32));
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  std::string error;
  if (!parse_listen(listen, opts.listen_address, opts.listen_port, error) ||
      (!bug.empty() && !parse_bug_modes(bug, opts.bugs, error))) {
    std::fprintf(stderr, "syncd: %s\n", error.c_str());
    return 1;
  }

  try {
    log_init(opts.pod_name, opts.bug_log);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "syncd: %s\n", e.what());
    return 1;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const auto nofile = raise_nofile();
  if (opts.max_connections == 0) opts.max_connections = nofile > 512 ? nofile - 256 : std::max<rlim_t>(nofile / 2, 1);

  net::io_context ioc(static_cast<int>(opts.threads));
  app a(opts, ioc);
  std::unique_ptr<server> srv;
  try {
    srv = std::make_unique<server>(a, opts.listen_address, opts.listen_port);
  } catch (const std::exception& e) {
    log_event("start_failed", {{"error", std::string("listen ") + listen + ": " + e.what()}}, "error");
    return 1;
  }
  a.listener.start();
  a.pool.start();
  srv->start();
  if (opts.bugs.any()) log_event("bug_modes", {{"bug", opts.bugs.describe()}}, "warn");
  log_event("listening", {{"address", opts.listen_address},
                          {"port", srv->port()},
                          {"threads", opts.threads},
                          {"db_pool", opts.db_pool},
                          {"nofile", static_cast<std::uint64_t>(nofile)},
                          {"max_connections", opts.max_connections}});

  net::signal_set signals(ioc, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log_event("signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    srv->async_shutdown(std::chrono::seconds(20));
  });

  std::vector<std::thread> threads;
  for (unsigned i = 1; i < opts.threads; ++i) threads.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();

  a.pool.stop();
  a.listener.stop();
  log_event("stopped");
  return 0;
}
