// See target.hpp.
#include "engine/target.hpp"

#include "injectors/fault_runner.hpp"
#include "injectors/run_proxy.hpp"
#include "labstack/lab.hpp"
#include "loadgen/http_model.hpp"
#include "proxy/relay.hpp"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iostream>
#include <map>

namespace syncstorm::engine {
namespace {

// A TCP connect with a timeout: is the target reachable at all? Empty on success.
std::string preflight_connect(const std::string& host, std::uint16_t port, int timeout_ms) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) return "resolve " + host + ": " + gai_strerror(rc);
  std::string err = "no address";
  for (auto* a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      err = std::strerror(errno);
      continue;
    }
    int c = connect(fd, a->ai_addr, a->ai_addrlen);
    if (c != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (poll(&p, 1, timeout_ms) == 1) {
        int so = 0;
        socklen_t len = sizeof so;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
        c = so == 0 ? 0 : -1;
        errno = so;
      } else {
        c = -1;
        errno = ETIMEDOUT;
      }
    }
    if (c == 0) {
      close(fd);
      freeaddrinfo(res);
      return {};
    }
    err = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  return "connect " + host + ":" + std::to_string(port) + ": " + err;
}

std::int64_t mono_us_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(run_clock::now().time_since_epoch()).count();
}

}  // namespace

target_stage::target_stage(const scenario& s, std::string run_dir, event_log& events)
    : s_(s), run_dir_(std::move(run_dir)), events_(events), model_target_(s.target) {}

target_stage::~target_stage() {
  stop_proxy();
  close_lab();
}

std::string target_stage::ws_base() const { return lab_ ? lab_->lb_ws_url() : std::string(); }

std::string target_stage::open(const std::function<bool()>& proceed) {
  std::string error;
  if (s_.target.contains("endpoints"))
    error = preflight_endpoints();
  else if (s_.target.contains("lab") && s_.target["lab"].contains("id"))
    error = attach_lab();
  else if (s_.target.contains("lab"))
    error = start_lab();
  if (error.empty() && s_.target.contains("proxy") && proceed()) error = start_proxy();
  return error;
}

// Target preflight: an unreachable target is a runtime error (exit 3), not a failed SLA.
std::string target_stage::preflight_endpoints() {
  const std::string base = resolve_env(s_.target["endpoints"].value("http", ""));
  if (base.empty()) return {};
  try {
    auto u = loadgen::parse_url(base);
    std::string e = preflight_connect(u.host, u.port, 3000);
    return e.empty() ? e : "target unreachable: " + e;
  } catch (const std::exception& e) {
    return std::string("target.endpoints.http: ") + e.what();
  }
}

// target.lab.id: a lab that is already up (a game day's long-lived lab). The run neither starts
// nor stops it; one that is not up is a runtime error, not bad input.
std::string target_stage::attach_lab() {
  const std::string id = s_.target["lab"]["id"];
  try {
    auto l = lab::lab::attach(id);
    nlohmann::json st = l.status();
    if (st.value("phase", "") != "ready" || !st["supervisor"].value("answering", false))
      throw std::runtime_error("its phase is " + st.value("phase", "?") + " and its supervisor " +
                               (st["supervisor"].value("answering", false) ? "answers" : "does not answer") +
                               " (`syncstorm lab status --id " + id + "`)");
    lab_ = std::make_unique<lab::lab>(std::move(l));
    attached_mono_us_ = mono_us_now();
    http_base_ = lab_->lb_http_url();
    std::cerr << "lab: using the running lab " << id << " (not started or stopped by this run)\n";
    events_.write("lab_up", {{"lab", id}, {"attached", true}, {"http", http_base_}, {"ws", lab_->lb_ws_url()}});
    return {};
  } catch (const std::exception& e) {
    return "target.lab.id: found \"" + id + "\"; expected a lab that is up (syncstorm lab up --id " + id +
           "): " + e.what();
  }
}

// The lab is started for the run and stopped after it (unless keep).
std::string target_stage::start_lab() {
  const auto& t = s_.target["lab"];
  lab::lab_options lo;
  lo.pods = t.value("pods", 2);
  lo.replica = t.value("replica", false);
  if (t.contains("db_volume")) lo.db_volume_bytes = size_value(t["db_volume"]);
  lo.bug = t.value("bug", "");
  if (t.contains("restart_delay")) lo.restart_delay_us = duration_us(t["restart_delay"]);
  if (t.contains("health")) {
    const auto& h = t["health"];
    if (h.contains("interval")) lo.check_interval_ms = static_cast<int>(duration_us(h["interval"]) / 1000);
    lo.check_fall = h.value("fall", lo.check_fall);
    lo.check_rise = h.value("rise", lo.check_rise);
  }
  lo.keep = t.value("keep", false);
  events_.write("lab_starting", {{"options", lo.to_json()}});
  std::cerr << "lab: starting " << lo.pods << " pods" << (lo.replica ? " with a replica" : "")
            << (lo.bug.empty() ? "" : ", bug " + lo.bug) << "\n";
  try {
    lab_ = std::make_unique<lab::lab>(lab::lab::up(lo));
    http_base_ = lab_->lb_http_url();
    events_.write("lab_up", {{"lab", lab_->id()}, {"http", http_base_}, {"ws", lab_->lb_ws_url()}});
    return {};
  } catch (const std::exception& e) {
    return std::string("target.lab: the lab did not come up: ") + e.what();
  }
}

// target.proxy: the run's fault proxy goes in front of the endpoints before any model is built
// (their URLs point at it); ledger first, so the reaper stops it if this process dies.
std::string target_stage::start_proxy() {
  try {
    injectors::start_run_ledger(run_dir_);
    ledger_started_ = true;
    injectors::run_proxy_config pc;
    pc.run_dir = run_dir_;
    pc.on_event = [this](const std::string& ev, nlohmann::json f) { events_.write(ev, std::move(f)); };
    pc.log = [](const std::string& line) { std::cerr << "\n" << line << "\n"; };
    const std::string listen = s_.target["proxy"].value("listen", "127.0.0.1");
    const bool v6 = listen.find(':') != std::string::npos;
    const auto& ep = s_.target["endpoints"];
    std::map<std::string, loadgen::url_parts> original;
    for (const char* name : {"http", "ws"}) {
      if (!ep.contains(name)) continue;
      std::string url = resolve_env(ep[name].get<std::string>());
      // ws(s):// parses like http(s)://
      std::string as_http = url.starts_with("ws") ? "http" + url.substr(2) : url;
      auto u = loadgen::parse_url(as_http);
      std::string ip = proxy::numeric_address(u.host);
      if (ip.empty()) throw std::runtime_error("target.endpoints." + std::string(name) + ": cannot resolve " + u.host);
      original[name] = u;
      pc.paths.push_back(
          {name, listen + ":0", ip + ":" + std::to_string(u.port), {}, std::string(name) == "http" && !u.tls});
    }
    proxy_ = std::make_unique<injectors::run_proxy>(pc);
    for (auto& [name, u] : original) {
      std::string at = proxy_->listen(name);
      std::string port = at.substr(at.rfind(':') + 1);
      // The same URL with the proxy's address as its authority (scheme, path and query kept).
      const std::string url = ep[name].get<std::string>();
      const auto authority = url.find("://") + 3;
      const auto rest = url.find_first_of("/?", authority);
      model_target_["endpoints"][name] = url.substr(0, authority) + (v6 ? "[" + listen + "]" : listen) + ":" + port +
                                         (rest == std::string::npos ? "" : url.substr(rest));
      // TLS passes through the proxy untouched: the client still names and verifies the real host.
      if (u.tls && !model_target_.value("tls", nlohmann::json::object()).contains("server_name"))
        model_target_["tls"]["server_name"] = u.host;
    }
    std::cerr << "proxy: the run's fault proxy in front of the endpoints:";
    for (auto& [name, u] : original)
      std::cerr << " " << name << " " << proxy_->listen(name) << " -> " << u.host << ":" << u.port;
    std::cerr << "\n";
    return {};
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::string target_stage::stop_proxy() {
  if (!proxy_) return {};
  std::string error = proxy_->stop();
  if (!error.empty()) std::cerr << error << "\n";
  try {
    injectors::end_run_ledger(run_dir_);
  } catch (const std::exception& x) {
    std::cerr << "ledger: " << x.what() << "\n";
  }
  events_.write("proxy_stopped");
  proxy_.reset();
  return error;
}

nlohmann::json target_stage::lab_events(run_clock::time_point start) const {
  nlohmann::json out = nlohmann::json::array();
  if (!lab_) return out;
  // Lab events carry CLOCK_MONOTONIC µs, the engine clock's base: place them on the run's axis.
  const std::int64_t start_mono =
      std::chrono::duration_cast<std::chrono::microseconds>(start.time_since_epoch()).count();
  try {
    for (auto e : lab_->events()) {
      if (attached_mono_us_ && e.value("mono_us", std::int64_t{0}) < attached_mono_us_) continue;
      if (e.contains("mono_us")) e["t_s"] = static_cast<double>(e["mono_us"].get<std::int64_t>() - start_mono) / 1e6;
      e["source"] = "lab";
      if (!e.contains("subject")) e["subject"] = e.value("unit", e.value("server", ""));
      out.push_back(e);
    }
  } catch (const std::exception& e) {
    std::cerr << "lab: cannot read events: " << e.what() << "\n";
  }
  return out;
}

std::string target_stage::close_lab() {
  if (!lab_ || lab_closed_) return {};
  lab_closed_ = true;
  if (attached_mono_us_) return {};  // an attached lab is the user's: left as it was found
  if (s_.target["lab"].value("keep", false)) {
    std::cerr << "lab: kept up as " << lab_->id() << " (syncstorm lab down to remove it)\n";
    return {};
  }
  try {
    for (const auto& l : lab_->down()) std::cerr << "lab down: " << l << "\n";
    return {};
  } catch (const std::exception& e) {
    std::cerr << "lab down: " << e.what() << "\n";
    return std::string("lab down: ") + e.what();
  }
}

}  // namespace syncstorm::engine
