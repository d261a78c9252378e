// The run's record of what happened: events.jsonl (one JSON object per line, µs since the run's
// start and wall time) and the signal watch that turns SIGINT/SIGTERM into an orderly stop.
// event_log is written from the controller, the signal thread, the fault threads and the models'
// workers: a mutex guards it (events are rare). signal_watch blocks the two signals in every
// thread started after it and waits for them on a thread of its own.
#pragma once

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace syncstorm::engine {

using run_clock = std::chrono::steady_clock;

class event_log {
 public:
  event_log(const std::filesystem::path& p, run_clock::time_point start);
  void write(const std::string& event, nlohmann::json fields = nlohmann::json::object());
  nlohmann::json all();
  // The run's clock starts when the load does (after the target is up); earlier events get
  // negative times.
  void set_origin(run_clock::time_point start);

 private:
  std::mutex mu_;
  std::ofstream out_;
  run_clock::time_point start_;
  nlohmann::json all_ = nlohmann::json::array();
};

class signal_watch {
 public:
  explicit signal_watch(std::function<void(int)> on_signal);
  ~signal_watch();
  signal_watch(const signal_watch&) = delete;
  signal_watch& operator=(const signal_watch&) = delete;
  bool fired() const { return fired_; }
  int signal() const { return signal_; }

 private:
  sigset_t set_{}, old_{};
  std::function<void(int)> on_signal_;
  std::atomic<bool> done_{false}, fired_{false};
  std::atomic<int> signal_{0};
  std::thread thread_;
};

}  // namespace syncstorm::engine
