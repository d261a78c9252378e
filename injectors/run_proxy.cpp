// See run_proxy.hpp.
#include "injectors/run_proxy.hpp"

#include "injectors/reaper.hpp"

#include "injectors/files.hpp"
#include "injectors/ledger.hpp"
#include "injectors/targets.hpp"
#include "labstack/lab_process.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace syncstorm::injectors {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

constexpr const char* proxy_id = "proxy#0";

json config_json(const std::vector<proxy::relay_path_config>& paths, const std::string& control) {
  json p = json::array();
  for (const auto& x : paths)
    p.push_back({{"name", x.name}, {"listen", x.listen}, {"upstream", x.upstream}, {"http", x.http}});
  return {{"paths", p}, {"control", control}};
}

void write_atomic(const std::string& path, const std::string& text) {
  if (std::string err = replace_file(path, text); !err.empty()) throw std::runtime_error("proxy: " + err);
}

struct recorded {
  long pid = 0;
  unsigned long long start = 0;
};
std::optional<recorded> read_pidfile(const std::string& path) {
  std::ifstream in(path);
  recorded r;
  if (!(in >> r.pid >> r.start) || r.pid <= 0) return std::nullopt;
  return r;
}

bool cmdline_has(long pid, const std::string& needle) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str().find(needle) != std::string::npos;
}

// The recorded relay, if it is still that process (pid, start time and its --config path).
std::optional<long> live_relay(const json& s) {
  auto r = read_pidfile(s.at("pidfile").get<std::string>());
  if (!r) return std::nullopt;
  if (!same_process(static_cast<pid_t>(r->pid), r->start)) return std::nullopt;
  if (!cmdline_has(r->pid, s.at("config").get<std::string>())) return std::nullopt;
  return r->pid;
}

}  // namespace

std::optional<step_result> run_proxy_step(const json& s) {
  if (s.value("op", "") != "proxy_stop") return std::nullopt;
  auto pid = live_relay(s);
  std::string what;
  if (pid) {
    ::kill(static_cast<pid_t>(*pid), SIGTERM);
    for (int i = 0; i < 60 && live_relay(s); ++i) std::this_thread::sleep_for(50ms);
    if (live_relay(s)) {
      ::kill(static_cast<pid_t>(*pid), SIGKILL);
      for (int i = 0; i < 40 && live_relay(s); ++i) std::this_thread::sleep_for(50ms);
    }
    if (live_relay(s))
      return step_failed("proxy pid " + std::to_string(*pid) + " did not exit after SIGTERM and SIGKILL");
    what = "stopped the run's proxy (pid " + std::to_string(*pid) + ")";
  } else {
    what = "the run's proxy is not running";
  }
  std::error_code ec;
  if (s.contains("control")) fs::remove(s["control"].get<std::string>(), ec);
  return step_done(what);
}

std::optional<step_result> check_proxy_step_undone(const json& s) {
  if (s.value("op", "") != "proxy_stop") return std::nullopt;
  if (auto pid = live_relay(s))
    return step_failed("the run's proxy (pid " + std::to_string(*pid) + ") is still running");
  return step_done("proxy stopped");
}

run_proxy::run_proxy(run_proxy_config c) : c_(std::move(c)) {
  dir_ = fs::absolute(c_.run_dir + "/proxy").lexically_normal().string();
  fs::create_directories(dir_);
  config_path_ = dir_ + "/config.json";
  pidfile_ = dir_ + "/relay.pid";
  // sun_path holds 108 bytes: a deep run directory gets its socket under /tmp.
  control_ = dir_ + "/control.sock";
  if (control_.size() >= 100)
    control_ = "/tmp/syncstorm-proxy-" + std::to_string(std::hash<std::string>{}(dir_)) + ".sock";
  exe_ = syncstorm_executable();
  write_atomic(config_path_, config_json(c_.paths, control_).dump(2) + "\n");
  {
    ledger l(c_.run_dir + "/ledger.jsonl");
    json undo =
        json::array({{{"op", "proxy_stop"}, {"pidfile", pidfile_}, {"config", config_path_}, {"control", control_}}});
    json targets = json::array();
    for (const auto& p : c_.paths)
      targets.push_back({{"backend", "proxy"}, {"name", p.name}, {"upstream", p.upstream}});
    // No time-to-live: the proxy lives as long as its controller (the reaper stops it when the
    // controller is gone); faults on it have their own.
    l.append({{"step", "apply"},
              {"phase", "intent"},
              {"id", proxy_id},
              {"fault", "proxy"},
              {"kind", "proxy"},
              {"occurrence", 0},
              {"targets", targets},
              {"undo", undo},
              {"apply", json::array()},
              {"ttl_mono_us", 0},
              {"target_keys", json::array()},
              {"scheduled_at", 0.0}});
  }
  supervisor_ = std::thread([this] { supervise(); });
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, 15s, [&] { return up_ || failed_; });
  if (!up_) {
    std::string why = failed_ ? fail_reason_ : "did not listen within 15 s";
    lock.unlock();
    stop();
    throw std::runtime_error("target.proxy: the run's proxy did not start: " + why + " (log " + dir_ + "/relay.log)");
  }
  ledger l(c_.run_dir + "/ledger.jsonl");
  l.append({{"step", "apply"},
            {"phase", "done"},
            {"id", proxy_id},
            {"ok", true},
            {"error", ""},
            {"did", "proxy pid " + std::to_string(pid_.load())}});
}

run_proxy::~run_proxy() { stop(); }

std::string run_proxy::listen(const std::string& path) const {
  std::lock_guard lock(mu_);
  auto it = listen_.find(path);
  return it == listen_.end() ? std::string() : it->second;
}

proxy_facts run_proxy::facts() const {
  proxy_facts f;
  f.control = control_;
  for (const auto& p : c_.paths) {
    f.paths.push_back(p.name);
    if (p.http) f.http_paths.push_back(p.name);
  }
  return f;
}

long run_proxy::spawn() {
  lab::spawn_options o;
  o.argv = {exe_, "proxy", "--config", config_path_};
  o.log_path = dir_ + "/relay.log";
  o.parent_death_signal = SIGTERM;  // a SIGKILLed controller takes its proxy with it
  o.nofile = 262144;                // as the lab's relay: as many connections as the limit allows
  pid_t pid = lab::spawn(o);
  auto info = read_proc(pid);
  write_atomic(pidfile_, std::to_string(pid) + " " + std::to_string(info ? info->start_time : 0ULL) + "\n");
  pid_ = pid;
  return pid;
}

bool run_proxy::wait_listening(std::chrono::milliseconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until && !stopping_) {
    int st = 0;
    if (::waitpid(static_cast<pid_t>(pid_.load()), &st, WNOHANG) == pid_.load()) {
      std::lock_guard lock(mu_);
      fail_reason_ = WIFEXITED(st) ? "exited with " + std::to_string(WEXITSTATUS(st))
                                   : "killed by signal " + std::to_string(WTERMSIG(st));
      pid_ = 0;
      return false;
    }
    try {
      json a = proxy::relay_control(control_, {{"cmd", "status"}}, 1000ms);
      if (a.value("ok", false) && static_cast<long>(a.value("pid", 0L)) == pid_.load()) {
        std::lock_guard lock(mu_);
        for (auto& [name, p] : a["paths"].items()) listen_[name] = p.value("listen", "");
        return true;
      }
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// After a restart: the faults the ledger shows applied (and not reverted) on this proxy are set
// again, so a crashed relay does not silently end them.
void run_proxy::reapply_faults() {
  ledger_view v = read_ledger(c_.run_dir + "/ledger.jsonl");
  for (const auto* f : v.unreverted()) {
    if (!f->apply_ok) continue;
    for (const auto& s : f->intent.value("apply", json::array())) {
      if (s.value("op", "") != "proxy_fault" || s.value("control", "") != control_) continue;
      step_result r = run_step(s, false);
      if (c_.log)
        c_.log("proxy: " + std::string(r.ok ? "set again " : "could not set again ") + f->id + " on " +
               s.value("path", "") + (r.ok ? "" : ": " + r.error));
    }
  }
}

void run_proxy::supervise() {
  int restarts = 0;
  for (;;) {
    try {
      spawn();
    } catch (const std::exception& e) {
      std::lock_guard lock(mu_);
      failed_ = true;
      fail_reason_ = e.what();
      cv_.notify_all();
      return;
    }
    if (!wait_listening(10s)) {
      if (stopping_) return;
      std::lock_guard lock(mu_);
      if (!up_) {
        failed_ = true;
        if (fail_reason_.empty()) fail_reason_ = "no answer on " + control_ + " within 10 s";
        cv_.notify_all();
        return;
      }
    } else {
      bool first = false;
      {
        std::lock_guard lock(mu_);
        first = !up_;
        if (first) {
          // Restarts take the same ports: the models' URLs point at them.
          for (auto& p : c_.paths) p.listen = listen_[p.name];
          write_atomic(config_path_, config_json(c_.paths, control_).dump(2) + "\n");
          up_ = true;
          cv_.notify_all();
        }
      }
      json paths = json::object();
      for (const auto& p : c_.paths)
        paths[p.name] = {{"listen", listen(p.name)}, {"upstream", p.upstream}, {"http", p.http}};
      if (first) {
        if (c_.on_event) c_.on_event("proxy_up", {{"pid", pid_.load()}, {"paths", paths}, {"control", control_}});
      } else {
        reapply_faults();
        if (c_.on_event) c_.on_event("proxy_restarted", {{"pid", pid_.load()}, {"restarts", restarts}});
      }
    }
    const pid_t pid = static_cast<pid_t>(pid_.load());
    std::string how;
    if (pid > 0) {
      int st = 0;
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
      pid_ = 0;
      how = WIFEXITED(st) ? "exit " + std::to_string(WEXITSTATUS(st)) : "signal " + std::to_string(WTERMSIG(st));
    } else {
      std::lock_guard lock(mu_);
      how = fail_reason_;  // a restart that did not come up
    }
    if (stopping_) return;
    if (c_.log) c_.log("proxy: the relay (pid " + std::to_string(pid) + ") died (" + how + "); starting it again");
    if (c_.on_event) c_.on_event("proxy_died", {{"pid", static_cast<long>(pid)}, {"how", how}});
    if (++restarts > 20) {
      if (c_.log) c_.log("proxy: restarted 20 times; giving up (the endpoints are unreachable through it)");
      return;
    }
    std::this_thread::sleep_for(200ms);
    if (stopping_) return;
  }
}

std::string run_proxy::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return {};
    stopped_ = true;
  }
  stopping_ = true;
  std::string error;
  try {
    ledger l(c_.run_dir + "/ledger.jsonl");
    json undo =
        json::array({{{"op", "proxy_stop"}, {"pidfile", pidfile_}, {"config", config_path_}, {"control", control_}}});
    l.append({{"step", "revert"}, {"phase", "intent"}, {"id", proxy_id}});
    step_result r = revert_steps(undo);
    step_result vr = r.ok ? verify_reverted_steps(undo) : r;
    if (r.ok) l.append({{"step", "verify_reverted"}, {"id", proxy_id}, {"ok", vr.ok}, {"error", vr.error}});
    l.append(
        {{"step", "revert"}, {"phase", "done"}, {"id", proxy_id}, {"ok", vr.ok}, {"error", vr.error}, {"did", r.did}});
    if (!vr.ok) error = "proxy: " + vr.error;
  } catch (const std::exception& e) {
    error = std::string("proxy: ") + e.what();
  }
  if (supervisor_.joinable()) supervisor_.join();
  return error;
}

}  // namespace syncstorm::injectors
