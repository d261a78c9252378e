// A scenario's fault proxy in front of the user's endpoints (`target.proxy`): the lab relay's
// code (labstack/lab_relay) run by `syncstorm run` as its own process (`syncstorm proxy
// --config FILE`), with one path per endpoint (`http`, `ws`), so the network-fault kinds with
// `"path": "clients-endpoints"` act on the user's stack as they do on the lab's paths.
//
// Lifetime, ledger first: the proxy is recorded in the run's ledger as the occurrence
// `proxy#0` (kind `proxy`) before its process exists, with its undo step `proxy_stop` (pidfile
// with pid and start time, config path), so the reaper and `syncstorm revert` stop it when the
// controller dies. The process also gets SIGTERM from the kernel when the controller dies
// (PR_SET_PDEATHSIG). While the run lasts the proxy is supervised: a relay that exits is started
// again on the same ports and the faults the ledger shows applied on it are set again.
// stop() (and the destructor) stops it through the ledger: revert intent, proxy_stop, verify,
// revert done.
//
// Steps (ledger-replayable, steps.cpp):
//   proxy_stop {pidfile, config, control}   SIGTERM the recorded relay (only if its pid, start
//        time and command line still match), SIGKILL after 3 s; check_undone: it is gone.
// Threading: construct and stop() from the controller thread; the supervisor is an internal
// thread (it forks the relay: the parent-death signal follows that thread's life).
#pragma once

#include "injectors/faults.hpp"
#include "proxy/relay.hpp"

#include <nlohmann/json.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace syncstorm::injectors {

struct run_proxy_config {
  std::string run_dir;
  std::vector<proxy::relay_path_config> paths;  // listen "IP:0" takes a free port
  std::function<void(const std::string& event, nlohmann::json fields)> on_event;
  std::function<void(const std::string& line)> log;
};

class run_proxy {
 public:
  // Records the proxy in the ledger, starts it and waits (≤ 10 s) until every path listens.
  // Throws std::runtime_error with one line when it does not come up (it is then stopped).
  explicit run_proxy(run_proxy_config c);
  ~run_proxy();
  run_proxy(const run_proxy&) = delete;
  run_proxy& operator=(const run_proxy&) = delete;

  std::string listen(const std::string& path) const;  // "IP:PORT" actually listened on
  const std::string& control() const { return control_; }
  proxy_facts facts() const;
  // Stops the relay through the ledger. Idempotent. Returns an error line, or empty.
  std::string stop();

 private:
  void supervise();
  long spawn();  // forks + execs the relay; writes the pidfile
  bool wait_listening(std::chrono::milliseconds limit);
  void reapply_faults();

  run_proxy_config c_;
  std::string dir_, config_path_, pidfile_, control_, exe_;
  std::map<std::string, std::string> listen_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool up_ = false, failed_ = false, stopped_ = false;
  std::string fail_reason_;
  std::atomic<bool> stopping_{false};
  std::atomic<long> pid_{0};
  std::thread supervisor_;
};

// Runs / checks a proxy_stop step; nullopt when `step` is not one.
std::optional<step_result> run_proxy_step(const nlohmann::json& step);
std::optional<step_result> check_proxy_step_undone(const nlohmann::json& step);

}  // namespace syncstorm::injectors
