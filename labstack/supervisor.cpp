// The lab's supervisor (see supervisor.hpp): a single-threaded poll loop over a signalfd
// (SIGCHLD, SIGTERM, SIGINT) and the control socket, with a 50 ms tick for restarts, probes and
// HAProxy's stats. It is a child subreaper, so a unit's orphaned grandchildren (PostgreSQL
// backends after a SIGKILL of the postmaster) come back to it and are reaped here.
#include "labstack/supervisor.hpp"

#include "core/json_limits.hpp"

#include "labstack/haproxy.hpp"
#include "labstack/lab_process.hpp"
#include "labstack/lab_state.hpp"
#include "process/control_socket.hpp"
#include "proxy/relay.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <stdexcept>
#include <thread>

namespace syncstorm::lab {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string event_prefix(const std::string& role) {
  if (role == "pod") return "pod";
  if (role.rfind("db", 0) == 0) return "db";
  if (role == "lb") return "lb";
  if (role == "relay") return "relay";
  return "unit";
}

// A connected TCP socket or -1, within `timeout`.
int connect_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) return -1;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    if (errno != EINPROGRESS) {
      ::close(fd);
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    int err = 0;
    socklen_t len = sizeof err;
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1 ||
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
      ::close(fd);
      return -1;
    }
  }
  return fd;
}

bool send_all(int fd, const std::string& data, std::chrono::steady_clock::time_point deadline) {
  std::size_t off = 0;
  while (off < data.size()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLOUT, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) return false;
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return false;
    off += static_cast<std::size_t>(n);
  }
  return true;
}

// Reads until `enough(buffer)` says so, EOF, or the deadline.
std::string recv_until(int fd, std::chrono::steady_clock::time_point deadline,
                       const std::function<bool(const std::string&)>& enough) {
  std::string out;
  char buf[4096];
  while (!enough(out)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) != 1) break;
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  return out;
}

std::string tail_of_file(const std::string& path, std::size_t n = 1500) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > n) s = "..." + s.substr(s.size() - n);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

struct unit {
  std::string name;
  json def;
  pid_t pid = 0;
  std::string status = "stopped";
  int restarts = 0;
  bool ever_started = false;
  bool no_restart_once = false;
  std::int64_t started_us = 0, ready_us = 0, restart_at_us = 0, stop_deadline_us = 0, next_probe_us = 0;
  json last_exit = nullptr;

  std::string role() const { return def.value("role", "unit"); }
  bool running() const { return pid > 0; }
};

class supervisor {
 public:
  explicit supervisor(std::string state_path) : st_(std::move(state_path)) {}

  int run() {
    json s = st_.read();
    id_ = s.value("id", "");
    dir_ = s.value("dir", fs::path(st_.path()).parent_path().string());
    events_ = s.value("events", dir_ + "/events.jsonl");
    control_path_ = dir_ + "/supervisor.sock";
    set_process_name("ss-sup-" + id_);
    ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    fs::create_directories(dir_ + "/run");
    fs::create_directories(dir_ + "/norestart");
    load_units(s);

    sigset_t mask;
    sigemptyset(&mask);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&mask, sig);
    ::sigprocmask(SIG_BLOCK, &mask, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    sfd_ = ::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sfd_ < 0) throw std::runtime_error("supervisor: signalfd: " + std::string(std::strerror(errno)));

    lfd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    if (control_path_.size() >= sizeof sa.sun_path)
      throw std::runtime_error("supervisor: control socket path too long: " + control_path_);
    std::memcpy(sa.sun_path, control_path_.c_str(), control_path_.size() + 1);
    ::unlink(control_path_.c_str());
    if (::bind(lfd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(lfd_, 64) != 0)
      throw std::runtime_error("supervisor: cannot listen on " + control_path_ + ": " + std::strerror(errno));
    ::chmod(control_path_.c_str(), 0600);  // its runner's alone

    st_.update([&](json& j) {
      j["supervisor"]["pid"] = static_cast<long>(::getpid());
      j["supervisor"]["control"] = control_path_;
      j["supervisor"]["status"] = "running";
      j["supervisor"]["started_us"] = unix_us();
    });
    append_event(events_, {{"event", "supervisor_started"}, {"pid", static_cast<long>(::getpid())}});
    std::fprintf(stderr, "supervisor: lab %s, pid %d\n", id_.c_str(), static_cast<int>(::getpid()));

    while (!done_) {
      pollfd fds[2] = {{sfd_, POLLIN, 0}, {lfd_, POLLIN, 0}};
      ::poll(fds, 2, 50);
      if (fds[0].revents & POLLIN) on_signals();
      if (fds[1].revents & POLLIN) on_control();
      tick();
    }
    ::unlink(control_path_.c_str());
    try {
      st_.update([&](json& j) { j["supervisor"]["status"] = "exited"; });
    } catch (...) {
    }
    append_event(events_, {{"event", "supervisor_exited"}, {"pid", static_cast<long>(::getpid())}});
    return 0;
  }

 private:
  void load_units(const json& s) {
    std::vector<std::string> order;
    for (auto& n : s.value("unit_order", json::array())) order.push_back(n.get<std::string>());
    for (json items_of = s.value("units", json::object()); auto& [name, def] : items_of.items()) {
      unit& u = units_[name];
      u.name = name;
      json d = def;
      d.erase("runtime");
      u.def = d;
      if (std::find(order.begin(), order.end(), name) == order.end()) order.push_back(name);
    }
    order_ = order;
    restart_delay_us_ = s.value("options", json::object()).value("restart_delay_us", std::int64_t{1'000'000});
    stats_socket_ = s.value("lb", json::object()).value("stats_socket", "");
  }

  void event(const unit& u, const std::string& what, json extra = json::object()) {
    extra["event"] = event_prefix(u.role()) + "_" + what;
    extra["name"] = u.name;
    extra["role"] = u.role();
    append_event(events_, extra);
  }

  void save_runtime(const unit& u) {
    json rt = {{"pid", static_cast<long>(u.pid)}, {"status", u.status},     {"restarts", u.restarts},
               {"started_us", u.started_us},      {"ready_us", u.ready_us}, {"last_exit", u.last_exit}};
    try {
      st_.update([&](json& j) { j["units"][u.name]["runtime"] = rt; });
    } catch (const std::exception& e) {
      std::fprintf(stderr, "supervisor: cannot record %s: %s\n", u.name.c_str(), e.what());
    }
    const std::string pidfile = dir_ + "/run/" + u.name + ".pid";
    if (u.pid > 0) {
      std::ofstream(pidfile) << u.pid << "\n";
    } else {
      std::error_code ec;
      fs::remove(pidfile, ec);
    }
  }

  // The relay runs in a forked child of this single-threaded supervisor (process::spawn's
  // child_main), in its own process group, with its own log and file limit.
  pid_t fork_relay(const unit& u) {
    spawn_options o;
    o.child_main = [this] {
      set_process_name("ss-rly-" + id_);
      return relay_main(st_.path());
    };
    o.log_path = u.def.value("log", dir_ + "/relay.log");
    o.nofile = u.def.value("nofile", std::uint64_t{262144});
    o.ignore_signals = {SIGPIPE};
    return spawn(o);
  }

  void start_unit(unit& u) {
    if (u.running()) return;
    const bool restart = u.ever_started;
    u.status = "starting";
    u.pid = 0;
    save_runtime(u);  // recorded before the process exists
    try {
      if (u.def.value("kind", "exec") == "relay") {
        u.pid = fork_relay(u);
      } else {
        spawn_options o;
        for (auto& a : u.def.at("argv")) o.argv.push_back(a.get<std::string>());
        for (auto& e : u.def.value("env", json::array())) o.extra_env.push_back(e.get<std::string>());
        o.lab_id = id_;
        o.netns = u.def.value("netns", "");
        if (u.def.contains("user") && u.def["user"].is_string()) o.user = u.def["user"].get<std::string>();
        o.cwd = u.def.value("cwd", "");
        o.log_path = u.def.value("log", "");
        if (u.def.contains("nofile")) o.nofile = u.def["nofile"].get<std::uint64_t>();
        u.pid = spawn(o);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "supervisor: cannot start %s: %s\n", u.name.c_str(), e.what());
      u.status = "restarting";
      u.last_exit = {{"error", e.what()}};
      u.restart_at_us = mono_us() + std::max<std::int64_t>(restart_delay_us_, 500'000);
      event(u, "failed_to_start", {{"error", e.what()}});
      save_runtime(u);
      return;
    }
    u.started_us = mono_us();
    u.ready_us = 0;
    u.next_probe_us = 0;
    if (restart) {
      ++u.restarts;
      event(u, "restarted", {{"pid", static_cast<long>(u.pid)}, {"restarts", u.restarts}});
    } else {
      event(u, "started", {{"pid", static_cast<long>(u.pid)}});
    }
    u.ever_started = true;
    save_runtime(u);
  }

  bool probe(const unit& u) {
    const json p = u.def.value("probe", json());
    if (!p.is_object()) return true;
    const std::string kind = p.value("kind", "");
    const auto t = std::chrono::milliseconds(300);
    if (kind == "http") return probe_http(p.at("host"), p.at("port"), p.value("path", "/"), t);
    if (kind == "pg") return probe_pg(p.at("host"), p.at("port"), t);
    if (kind == "tcp") {
      for (auto& a : p.at("addrs")) {
        std::string s = a.get<std::string>();
        auto c = s.rfind(':');
        if (!probe_tcp(s.substr(0, c), static_cast<std::uint16_t>(std::stoi(s.substr(c + 1))), t)) return false;
      }
      return true;
    }
    if (kind == "haproxy") {
      try {
        haproxy_command(p.at("socket"), "show info", t);
        return true;
      } catch (const std::exception&) {
        return false;
      }
    }
    return true;
  }

  void on_signals() {
    signalfd_siginfo si{};
    bool child = false;
    while (::read(sfd_, &si, sizeof si) == static_cast<ssize_t>(sizeof si)) {
      if (si.ssi_signo == SIGCHLD) child = true;
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) shutdown(5000);
    }
    if (child) reap();
  }

  void reap() {
    for (;;) {
      int st = 0;
      pid_t pid = ::waitpid(-1, &st, WNOHANG);
      if (pid <= 0) return;
      for (auto& [name, u] : units_)
        if (u.pid == pid) on_death(u, st);
    }
  }

  void on_death(unit& u, int st) {
    // What the dead process left in its group (backends of a killed postmaster) goes with it.
    ::kill(-u.pid, SIGKILL);
    const pid_t old = u.pid;
    u.pid = 0;
    u.ready_us = 0;
    if (WIFEXITED(st))
      u.last_exit = {{"exit_code", WEXITSTATUS(st)}};
    else
      u.last_exit = {{"signal", WTERMSIG(st)}};
    if (u.role() == "lb") {
      // A new HAProxy starts from scratch: report its servers' states afresh.
      lb_status_.clear();
      lb_backend_known_ = false;
    }
    if (u.status == "stopping" || shutting_down_) {
      u.status = "stopped";
      event(u, "stopped", {{"pid", static_cast<long>(old)}});
      save_runtime(u);
      return;
    }
    const std::string marker = dir_ + "/norestart/" + u.name;
    std::error_code ec;
    const bool marked = fs::exists(marker, ec);
    if (marked) fs::remove(marker, ec);
    const bool restart = u.def.value("restart", true) && !u.no_restart_once && !marked;
    u.no_restart_once = false;
    json ev = u.last_exit;
    ev["pid"] = static_cast<long>(old);
    ev["restart"] = restart;
    if (restart) ev["restart_in_us"] = restart_delay_us_;
    event(u, "died", ev);
    u.status = restart ? "restarting" : "dead";
    u.restart_at_us = mono_us() + restart_delay_us_;
    save_runtime(u);
  }

  void tick() {
    const std::int64_t now = mono_us();
    if (shutting_down_) return;
    for (auto& name : order_) {
      unit& u = units_[name];
      if (u.status == "restarting" && now >= u.restart_at_us) start_unit(u);
      if (u.status == "stopping" && u.running() && now >= u.stop_deadline_us) {
        ::kill(-u.pid, SIGKILL);
        ::kill(u.pid, SIGKILL);
        u.stop_deadline_us = now + 60'000'000;
      }
      if (u.status == "starting" && u.running() && now >= u.next_probe_us) {
        if (probe(u)) {
          u.status = "ready";
          u.ready_us = mono_us();
          event(u, "ready", {{"pid", static_cast<long>(u.pid)}, {"after_us", u.ready_us - u.started_us}});
          save_runtime(u);
        } else {
          u.next_probe_us = mono_us() + 100'000;
        }
      }
    }
    if (now >= next_lb_poll_us_) {
      next_lb_poll_us_ = now + 100'000;
      poll_lb();
    }
    if (now >= next_state_check_us_) {
      next_state_check_us_ = now + 1'000'000;
      // The lab was taken down around us (its directory removed): nothing left to supervise.
      if (!fs::exists(st_.path())) {
        std::fprintf(stderr, "supervisor: state file %s is gone; shutting down\n", st_.path().c_str());
        shutdown(2000);
      }
    }
  }

  void poll_lb() {
    if (stats_socket_.empty()) return;
    bool lb_running = false;
    for (auto& [n, u] : units_)
      if (u.role() == "lb" && (u.status == "ready" || u.status == "starting") && u.running()) lb_running = true;
    if (!lb_running) return;
    std::vector<haproxy_server_state> rows;
    try {
      rows = haproxy_show_stat(stats_socket_, std::chrono::milliseconds(300));
    } catch (const std::exception&) {
      return;
    }
    for (auto& r : rows) {
      if (r.backend != "be_http") continue;
      if (r.server == "BACKEND") {
        if (!lb_backend_known_ || r.up != lb_backend_up_) {
          append_event(
              events_,
              {{"event", r.up ? "lb_backend_up" : "lb_backend_down"}, {"backend", r.backend}, {"status", r.status}});
          lb_backend_known_ = true;
          lb_backend_up_ = r.up;
        }
        continue;
      }
      if (r.server.find('.') != std::string::npos) continue;
      auto it = lb_status_.find(r.server);
      if (it == lb_status_.end() || it->second.up != r.up) {
        append_event(events_, {{"event", r.up ? "lb_server_up" : "lb_server_down"},
                               {"server", r.server},
                               {"backend", r.backend},
                               {"status", r.status}});
      }
      lb_status_[r.server] = r;
    }
  }

  void on_control() {
    for (;;) {
      int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd < 0) return;
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      // One line of at most 64 KiB within 2 s, JSON nested at most 64 deep (issue #23).
      constexpr std::size_t max_line = 64 * 1024;
      std::string line = recv_until(
          fd, deadline, [](const std::string& s) { return s.find('\n') != std::string::npos || s.size() > max_line; });
      json answer;
      bool then_shutdown = false;
      int grace_ms = 5000;
      try {
        const auto eol = line.find('\n');
        if (eol == std::string::npos || eol > max_line)
          throw std::runtime_error(line.size() > max_line ? "request line over 64 KiB" : "no request line within 2 s");
        bool too_deep = false;
        json req = parse_bounded(std::string_view(line).substr(0, eol), max_json_depth, &too_deep);
        if (req.is_discarded())
          throw std::runtime_error(too_deep ? "request nested too deep"
                                            : "request is not JSON: " + text_excerpt(line.substr(0, eol)));
        if (!req.is_object()) throw std::runtime_error("request: found " + json_excerpt(req) + "; expected an object");
        if (req.value("cmd", "") == "shutdown") {
          then_shutdown = true;
          grace_ms = req.value("grace_ms", 5000);
          answer = {{"ok", true}, {"pid", static_cast<long>(::getpid())}};
        } else {
          answer = handle(req);
        }
      } catch (const std::exception& e) {
        answer = {{"ok", false}, {"error", e.what()}};
      }
      send_all(fd, answer.dump(-1, ' ', false, json::error_handler_t::replace) + "\n", deadline);
      ::close(fd);
      if (then_shutdown) shutdown(grace_ms);
    }
  }

  json unit_json(const unit& u) const {
    return {{"role", u.role()},        {"pid", static_cast<long>(u.pid)}, {"status", u.status},
            {"restarts", u.restarts},  {"started_us", u.started_us},      {"ready_us", u.ready_us},
            {"last_exit", u.last_exit}};
  }

  unit& find_unit(const json& req) {
    const std::string name = req.value("unit", "");
    auto it = units_.find(name);
    if (it == units_.end()) {
      // A unit added to the state after we started.
      json s = st_.read();
      if (s.value("units", json::object()).contains(name)) {
        load_units(s);
        return units_.at(name);
      }
      std::string known;
      for (auto& [n, u] : units_) known += (known.empty() ? "" : ", ") + n;
      throw std::runtime_error("unit: found \"" + name + "\"; expected one of " + known);
    }
    return it->second;
  }

  json handle(const json& req) {
    const std::string cmd = req.value("cmd", "");
    if (cmd == "ping") return {{"ok", true}, {"pid", static_cast<long>(::getpid())}};
    if (cmd == "status") {
      json units = json::object();
      for (auto& [n, u] : units_) units[n] = unit_json(u);
      json lb = json::object();
      for (auto& [n, r] : lb_status_) lb[n] = {{"status", r.status}, {"up", r.up}};
      return {{"ok", true},
              {"pid", static_cast<long>(::getpid())},
              {"units", units},
              {"lb", lb},
              {"lb_backend_up", lb_backend_up_}};
    }
    if (cmd == "reload") {
      load_units(st_.read());
      return {{"ok", true}};
    }
    if (cmd == "start") {
      unit& u = find_unit(req);
      load_units(st_.read());
      if (!u.running()) {
        u.no_restart_once = false;
        start_unit(u);
      }
      return {{"ok", true}, {"unit", unit_json(u)}};
    }
    if (cmd == "kill") {
      unit& u = find_unit(req);
      if (!u.running()) return {{"ok", false}, {"error", "unit " + u.name + " is not running (" + u.status + ")"}};
      const int sig = req.value("signal", SIGKILL);
      u.no_restart_once = !req.value("restart", true);
      const pid_t pid = u.pid;
      if (req.value("group", true)) ::kill(-pid, sig);
      ::kill(pid, sig);
      return {{"ok", true}, {"pid", static_cast<long>(pid)}};
    }
    if (cmd == "stop") {
      unit& u = find_unit(req);
      if (!u.running()) {
        if (u.status == "restarting") {
          u.status = "stopped";
          save_runtime(u);
        }
        return {{"ok", true}, {"unit", unit_json(u)}};
      }
      u.status = "stopping";
      u.stop_deadline_us = mono_us() + req.value("grace_ms", 5000) * 1000;
      ::kill(-u.pid, u.def.value("stop_signal", SIGTERM));
      save_runtime(u);
      return {{"ok", true}, {"pid", static_cast<long>(u.pid)}};
    }
    return {{"ok", false},
            {"error", "cmd: found \"" + cmd + "\"; expected ping, status, start, kill, stop, reload or shutdown"}};
  }

  // Stops every unit, tier by tier (LB, pods, relay, databases), each tier with `grace_ms` before
  // SIGKILL, then ends the loop.
  void shutdown(int grace_ms) {
    if (shutting_down_) return;
    shutting_down_ = true;
    auto tier = [](const std::string& role) {
      if (role == "lb") return 0;
      if (role == "pod") return 1;
      if (role == "relay") return 2;
      return 3;
    };
    for (int t = 0; t <= 3; ++t) {
      std::vector<unit*> tier_units;
      for (auto it = order_.rbegin(); it != order_.rend(); ++it) {
        unit& u = units_[*it];
        if (tier(u.role()) != t) continue;
        if (u.running()) {
          u.status = "stopping";
          ::kill(-u.pid, u.def.value("stop_signal", SIGTERM));
          tier_units.push_back(&u);
        } else if (u.status == "restarting") {
          u.status = "stopped";
          save_runtime(u);
        }
      }
      const auto deadline = mono_us() + static_cast<std::int64_t>(grace_ms) * 1000;
      bool killed = false;
      for (;;) {
        reap();
        bool any = false;
        for (auto* u : tier_units) any = any || u->running();
        if (!any) break;
        if (mono_us() >= deadline && !killed) {
          for (auto* u : tier_units)
            if (u->running()) ::kill(-u->pid, SIGKILL), ::kill(u->pid, SIGKILL);
          killed = true;
        }
        if (mono_us() >= deadline + 10'000'000) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
    }
    done_ = true;
  }

  state_file st_;
  std::string id_, dir_, events_, control_path_, stats_socket_;
  std::map<std::string, unit> units_;
  std::vector<std::string> order_;
  std::int64_t restart_delay_us_ = 1'000'000;
  std::int64_t next_lb_poll_us_ = 0, next_state_check_us_ = 0;
  std::map<std::string, haproxy_server_state> lb_status_;
  bool lb_backend_known_ = false, lb_backend_up_ = false;
  int sfd_ = -1, lfd_ = -1;
  bool done_ = false, shutting_down_ = false;
};

}  // namespace

int supervisor_main(const std::string& state_path) {
  try {
    supervisor s(state_path);
    return s.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "supervisor: %s\n", e.what());
    return 1;
  }
}

pid_t start_supervisor(const std::string& state_path, std::chrono::milliseconds timeout) {
  const std::string dir = fs::path(state_path).parent_path().string();
  const std::string log = dir + "/supervisor.log";
  const std::string control = dir + "/supervisor.sock";
  // A daemon (new session, re-parented to init or the nearest subreaper at once) running
  // supervisor_main in the forked child: nothing of the caller's (sockets, pipes to a test
  // runner) stays open in it.
  spawn_options o;
  o.child_main = [&state_path] { return supervisor_main(state_path); };
  o.daemon = true;
  o.log_path = log;
  try {
    spawn(o);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("supervisor: ") + e.what());
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last_error;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      json a = supervisor_request(control, {{"cmd", "ping"}}, std::chrono::milliseconds(500));
      if (a.value("ok", false)) return static_cast<pid_t>(a.value("pid", 0L));
    } catch (const std::exception& e) {
      last_error = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  throw std::runtime_error("supervisor: no answer on " + control + " within " + std::to_string(timeout.count()) +
                           " ms (" + last_error + "); log: " + tail_of_file(log));
}

json supervisor_request(const std::string& socket_path, const json& request, std::chrono::milliseconds timeout) {
  return process::unix_json_request(socket_path, request, timeout);
}

bool probe_tcp(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  int fd = connect_tcp(host, port, timeout);
  if (fd < 0) return false;
  ::close(fd);
  return true;
}

bool probe_http(const std::string& host, std::uint16_t port, const std::string& path, std::chrono::milliseconds timeout,
                int* status) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int fd = connect_tcp(host, port, timeout);
  if (fd < 0) return false;
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
  bool ok = false;
  if (send_all(fd, req, deadline)) {
    std::string resp =
        recv_until(fd, deadline, [](const std::string& s) { return s.find("\r\n") != std::string::npos; });
    // "HTTP/1.1 200 OK"
    if (resp.rfind("HTTP/1.", 0) == 0 && resp.size() >= 12) {
      int code = std::atoi(resp.c_str() + 9);
      if (status) *status = code;
      ok = code == 200;
    }
  }
  ::close(fd);
  return ok;
}

bool probe_pg(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int fd = connect_tcp(host, port, timeout);
  if (fd < 0) return false;
  // StartupMessage, protocol 3.0, user postgres, database postgres (what PQping sends).
  std::string body;
  auto put32 = [](std::string& s, std::uint32_t v) {
    for (int i = 3; i >= 0; --i) s += static_cast<char>((v >> (i * 8)) & 0xff);
  };
  put32(body, 196608);
  for (const char* kv : {"user", "postgres", "database", "postgres"}) {
    body += kv;
    body += '\0';
  }
  body += '\0';
  std::string msg;
  put32(msg, static_cast<std::uint32_t>(body.size() + 4));
  msg += body;
  bool ready = false;
  if (send_all(fd, msg, deadline)) {
    std::string resp = recv_until(fd, deadline, [](const std::string& s) {
      if (s.size() < 5) return false;
      std::uint32_t len = (static_cast<unsigned char>(s[1]) << 24) | (static_cast<unsigned char>(s[2]) << 16) |
                          (static_cast<unsigned char>(s[3]) << 8) | static_cast<unsigned char>(s[4]);
      return s[0] != 'E' || s.size() >= len + 1;
    });
    if (!resp.empty() && resp[0] == 'R') {
      ready = true;
      std::string term = "X";
      put32(term, 4);
      send_all(fd, term, deadline);
    } else if (!resp.empty() && resp[0] == 'E') {
      // Any error but "the database system is starting up / shutting down" (57P03) means the
      // server answers connections.
      ready = resp.find("C57P03") == std::string::npos;
    }
  }
  ::close(fd);
  return ready;
}

int relay_main(const std::string& state_path) {
  try {
    proxy::relay_config c;
    json st = state_file(state_path).read();
    for (json items_of = st.value("paths", json::object()); auto& [name, p] : items_of.items()) {
      proxy::relay_path_config pc;
      pc.name = name;
      pc.http = p.value("http", name == "lb_http");
      pc.listen = p.at("listen").get<std::string>();
      pc.upstream = p.at("upstream").get<std::string>();
      for (auto& s : p.value("sources", json::array())) pc.sources.push_back(s.get<std::string>());
      c.paths.push_back(std::move(pc));
    }
    c.control = st.at("relay").at("control").get<std::string>();
    return proxy::relay_run(c);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "relay: %s\n", e.what());
    return 1;
  }
}

}  // namespace syncstorm::lab
