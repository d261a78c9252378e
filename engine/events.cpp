// See events.hpp.
#include "engine/events.hpp"
#include "core/redact.hpp"
#include "core/time_text.hpp"

#include <pthread.h>

#include <ctime>
#include <sstream>

namespace syncstorm::engine {

event_log::event_log(const std::filesystem::path& p, run_clock::time_point start)
    : out_(p, std::ios::app), start_(start) {}

void event_log::write(const std::string& event, nlohmann::json fields) {
  std::lock_guard lock(mu_);
  auto now = run_clock::now();
  fields["t_us"] = std::chrono::duration_cast<std::chrono::microseconds>(now - start_).count();
  fields["t_s"] = static_cast<double>(fields["t_us"].get<std::int64_t>()) / 1e6;
  fields["at"] = utc_iso8601(std::chrono::system_clock::now());
  fields["event"] = event;
  // Invalid UTF-8 in a field (an untrusted excerpt that slipped through) is replaced, never
  // thrown: a throw here would end the run without its report.
  out_ << redact::apply(fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)) << "\n";
  out_.flush();
  all_.push_back(std::move(fields));
}

nlohmann::json event_log::all() {
  std::lock_guard lock(mu_);
  return all_;
}

void event_log::set_origin(run_clock::time_point start) {
  std::lock_guard lock(mu_);
  start_ = start;
}

signal_watch::signal_watch(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
  sigemptyset(&set_);
  sigaddset(&set_, SIGINT);
  sigaddset(&set_, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set_, &old_);
  thread_ = std::thread([this] {
    timespec ts{0, 100'000'000};
    while (!done_) {
      int sig = sigtimedwait(&set_, nullptr, &ts);
      if (sig > 0 && !fired_.exchange(true)) {
        signal_ = sig;
        on_signal_(sig);
      }
    }
  });
}

signal_watch::~signal_watch() {
  done_ = true;
  thread_.join();
  pthread_sigmask(SIG_SETMASK, &old_, nullptr);
}

}  // namespace syncstorm::engine
