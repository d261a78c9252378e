// `syncstorm run`'s engine. See run_engine.hpp. Order of a run: run directory and scenario.json,
// signal thread, target (preflight), models, worker pool, the clock until the deadline or a
// signal, graceful stop, verdicts, report files, the verdict table, `report: …`.
#include "harness/cli/run_engine.hpp"

#include "capture/capture.hpp"

#include "harness/report_schema.hpp"
#include "harness/self_monitor.hpp"
#include "harness/sla.hpp"
#include "harness/timeline.hpp"
#include "harness/units.hpp"
#include "injectors/abort_watch.hpp"
#include "injectors/fault_runner.hpp"
#include "injectors/reaper.hpp"
#include "injectors/run_proxy.hpp"
#include "labstack/lab.hpp"
#include "labstack/lab_relay.hpp"
#include "harness/audit.hpp"
#include "injectors/client_control.hpp"
#include "loadgen/audit_reader.hpp"
#include "loadgen/bootstrap_model.hpp"
#include "loadgen/fanout_model.hpp"
#include "loadgen/limits.hpp"
#include "loadgen/http_model.hpp"
#include "loadgen/offline_model.hpp"
#include "loadgen/target_access.hpp"
#include "loadgen/terminal_model.hpp"
#include "loadgen/workers.hpp"
#include "reports/progress.hpp"
#include "reports/writers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <random>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

namespace syncstorm::cli {
namespace {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

std::string iso_utc(std::chrono::system_clock::time_point t, bool compact = false) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  std::ostringstream o;
  if (compact) {
    o << std::put_time(&tm, "%Y%m%dT%H%M%SZ");
  } else {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    o << std::put_time(&tm, "%Y-%m-%dT%H:%M:%S") << "." << std::setw(3) << std::setfill('0') << ms << "Z";
  }
  return o.str();
}

// events.jsonl: one JSON object per line, µs since the run's start and wall time. Written from
// the controller thread and the signal thread, so a mutex guards it (events are rare).
class event_log {
 public:
  event_log(const fs::path& p, clock::time_point start) : out_(p, std::ios::app), start_(start) {}
  void write(const std::string& event, nlohmann::json fields = nlohmann::json::object()) {
    std::lock_guard lock(mu_);
    auto now = clock::now();
    fields["t_us"] = std::chrono::duration_cast<std::chrono::microseconds>(now - start_).count();
    fields["t_s"] = static_cast<double>(fields["t_us"].get<std::int64_t>()) / 1e6;
    fields["at"] = iso_utc(std::chrono::system_clock::now());
    fields["event"] = event;
    out_ << fields.dump() << "\n";
    out_.flush();
    all_.push_back(std::move(fields));
  }
  nlohmann::json all() {
    std::lock_guard lock(mu_);
    return all_;
  }
  // The run's clock starts when the load does (after the target is up); earlier events get
  // negative times.
  void set_origin(clock::time_point start) {
    std::lock_guard lock(mu_);
    start_ = start;
  }

 private:
  std::mutex mu_;
  std::ofstream out_;
  clock::time_point start_;
  nlohmann::json all_ = nlohmann::json::array();
};

// Blocks SIGINT/SIGTERM in every thread started after construction; one thread waits for them.
class signal_watch {
 public:
  explicit signal_watch(std::function<void(int)> on_signal) : on_signal_(std::move(on_signal)) {
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
  ~signal_watch() {
    done_ = true;
    thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  bool fired() const { return fired_; }
  int signal() const { return signal_; }

 private:
  sigset_t set_{}, old_{};
  std::function<void(int)> on_signal_;
  std::atomic<bool> done_{false}, fired_{false};
  std::atomic<int> signal_{0};
  std::thread thread_;
};

// A TCP connect with a timeout: is the target reachable at all? Empty on success.
std::string preflight_connect(const std::string& host, std::uint16_t port, int timeout_ms) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res);
  if (rc != 0) return "resolve " + host + ": " + gai_strerror(rc);
  std::string err = "no address";
  for (auto* a = res; a; a = a->ai_next) {
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) { err = std::strerror(errno); continue; }
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
    if (c == 0) { close(fd); freeaddrinfo(res); return {}; }
    err = std::strerror(errno);
    close(fd);
  }
  freeaddrinfo(res);
  return "connect " + host + ":" + std::to_string(port) + ": " + err;
}

std::vector<std::pair<std::string, std::string>> headers_of(const nlohmann::json& obj) {
  std::vector<std::pair<std::string, std::string>> h;
  if (!obj.is_object()) return h;
  for (const auto& [k, v] : obj.items()) h.emplace_back(k, v.get<std::string>());
  return h;
}

// The base URL of the target's HTTP API.
std::string target_http_base(const scenario& s) {
  if (s.target.contains("endpoints")) return s.target["endpoints"].value("http", "");
  return {};
}

loadgen::http_model_config http_config(const scenario& s, const load_entry& l, bool resolve,
                                       std::string base = {}) {
  loadgen::http_model_config c;
  const auto& f = l.fields;
  c.name = l.name;
  const auto& req = f.value("request", nlohmann::json::object());
  if (base.empty()) base = target_http_base(s);
  if (req.contains("url")) c.url = req["url"];
  else {
    while (!base.empty() && base.back() == '/') base.pop_back();
    c.url = base + req.value("path", "/");
  }
  c.method = req.value("method", "GET");
  auto access = loadgen::target_access_from(s.target, resolve);
  c.headers = std::move(access.headers);
  for (auto& [k, v] : headers_of(req.value("headers", nlohmann::json::object())))
    c.headers.emplace_back(k, resolve ? resolve_env(v) : v);
  c.tls = std::move(access.tls);
  if (req.contains("body")) {
    if (req["body"].is_string()) c.body = req["body"].get<std::string>();
    else {
      c.body = req["body"].dump();
      c.headers.emplace_back("Content-Type", "application/json");
    }
    if (resolve) c.body = resolve_env(c.body);
  }
  c.open = f.value("mode", "open") != "closed";
  c.connections = f.value("connections", 64);
  c.timeout_us = f.contains("timeout") ? duration_us(f["timeout"]) : 5'000'000;
  for (const auto& st : f.value("expect_status", nlohmann::json::array())) c.expect_status.push_back(st.get<int>());
  for (const auto& ph : l.phases) c.phases.push_back({ph.name, ph.for_us, ph.rate, ph.to});
  return c;
}

double ms(std::int64_t us) { return static_cast<double>(us) / 1000.0; }

// report.json's `metrics`, `series` and `gauges`: times in ms, counts as they are; a gauge's
// series is its level at the end of each second, [[t_s, value], ...].
void metrics_for_report(const metrics_shard& m, nlohmann::json& metrics, nlohmann::json& series, nlohmann::json& gauges) {
  metrics = nlohmann::json::object();
  series = nlohmann::json::object();
  gauges = nlohmann::json::object();
  for (const auto& name : m.names()) {
    const timed_metric* t = m.find(name);
    const histogram& h = t->hist();
    bool timed = h.count() > 0;
    nlohmann::json j = {{"unit", timed ? "ms" : "count"}, {"count", t->count()}, {"ok", t->ok_count()}, {"errors", t->error_count()}};
    if (timed) {
      j["min"] = ms(h.min());
      j["mean"] = h.mean() / 1000.0;
      j["p50"] = ms(h.percentile(50));
      j["p90"] = ms(h.percentile(90));
      j["p99"] = ms(h.percentile(99));
      j["p99_9"] = ms(h.percentile(99.9));
      j["p99_99"] = ms(h.percentile(99.99));
      j["max"] = ms(h.max());
    }
    metrics[name] = j;
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& row : t->coarse().to_json()) {
      rows.push_back({row[0], row[1], row[2], row[3].get<double>() / 1000.0, row[4].get<double>() / 1000.0, row[5].get<double>() / 1000.0});
    }
    series[name] = rows;
  }
  for (const auto& name : m.gauge_names()) {
    const gauge_series* g = m.find_gauge(name);
    metrics[name] = {{"unit", "value"}, {"last", g->last()}, {"peak", g->peak()}};
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& p : g->coarse()) rows.push_back({static_cast<double>(p.step), p.value});
    gauges[name] = rows;
  }
}


// Where the audit reads from: target.audit {via: api|sql, dsn}. The lab: its API through the LB,
// or its primary's DSN with via sql. Endpoints: the API, or the given DSN.
loadgen::audit_source audit_source_for(const scenario& s, const lab::lab* the_lab, const std::string& lab_base) {
  loadgen::audit_source src;
  const auto audit = s.target.value("audit", nlohmann::json::object());
  src.via_sql = audit.value("via", audit.contains("dsn") ? "sql" : "api") == "sql";
  if (src.via_sql) {
    if (audit.contains("dsn")) src.dsn = resolve_env(audit["dsn"].get<std::string>());
    else if (the_lab) src.dsn = the_lab->db_dsn();
    else throw std::invalid_argument("scenario.target.audit: found via \"sql\" without a dsn; expected a dsn for an endpoints target");
    return src;
  }
  src.http_base = loadgen::target_http_url(s.target, the_lab ? lab_base : std::string(), "audit", true);
  auto access = loadgen::target_access_from(s.target, true);
  src.headers = std::move(access.headers);
  src.tls = std::move(access.tls);
  src.profile = std::move(access.profile);
  return src;
}

// The terminals of the run's terminal loads as the client faults see them: "<load>/s<i>-t<j>".
class terminal_clients final : public injectors::client_control {
 public:
  explicit terminal_clients(const std::vector<loadgen::terminal_model*>& models) : models_(models) {}
  std::vector<std::string> clients() const override {
    std::vector<std::string> out;
    for (auto* m : models_)
      for (std::size_t i = 0; i < m->terminals(); ++i) out.push_back(std::string(m->name()) + "/" + m->client(i));
    return out;
  }
  void crash(const std::string& client) override {
    auto [m, i] = find(client);
    m->crash(i);
  }
  void corrupt_journal(const std::string& client, int bytes, std::uint64_t) override {
    auto [m, i] = find(client);
    m->journal_corrupt(i, static_cast<std::size_t>(bytes));
  }
  bool recovered(const std::string& client) const override {
    auto [m, i] = find(client);
    return m->settled(i);
  }
  std::string journal_path(const std::string& client) const override {
    auto [m, i] = find(client);
    return m->journal_path(i);
  }

 private:
  std::pair<loadgen::terminal_model*, std::size_t> find(const std::string& client) const {
    for (auto* m : models_)
      for (std::size_t i = 0; i < m->terminals(); ++i)
        if (std::string(m->name()) + "/" + m->client(i) == client) return {m, i};
    throw std::invalid_argument("no terminal " + client);
  }
  const std::vector<loadgen::terminal_model*>& models_;
};

// Faults whose effect is a single blow (the system then heals by itself): recovery counts from
// the hit. The others last until reverted: recovery counts from the revert.
bool instant_kind(const std::string& kind) {
  return kind == "kill" || kind == "db_failover" || kind == "client_crash" || kind == "journal_corrupt" ||
         kind == "rolling_restart";
}

nlohmann::json seconds_or_unbounded(const std::optional<double>& us) {
  if (!us || std::isinf(*us)) return nullptr;
  return *us / 1e6;
}

// report.json faults[]: the runner's records with what the timeline and the audit measured.
nlohmann::json faults_report(const std::vector<injectors::fault_record>& records, const timeline& tl,
                             const std::optional<audit_result>& audit) {
  nlohmann::json out = nlohmann::json::array();
  std::size_t applied_index = 0;
  for (const auto& r : records) {
    nlohmann::json j = r.to_report();
    if (r.applied_us) {
      for (const auto& e : tl.effects()) {
        if (e.name != r.name || e.applied_us != *r.applied_us) continue;
        j["recovery_s"] = seconds_or_unbounded(e.recovery_us);
        j["ready_s"] = seconds_or_unbounded(e.ready_us);
        j["detect_s"] = seconds_or_unbounded(e.detect_us);
        if (e.recovery_us && std::isinf(*e.recovery_us)) j["recovery_unbounded"] = true;
        if (e.ready_us && std::isinf(*e.ready_us)) j["ready_unbounded"] = true;
        j["baseline"] = {{"ratio", e.baseline_ratio}, {"p99_ms", e.baseline_p99_us / 1000.0}};
        break;
      }
      if (audit && applied_index < audit->inflight.size()) j["inflight_ops"] = audit->inflight[applied_index].ops;
      ++applied_index;
    }
    out.push_back(j);
  }
  return out;
}

// The warm-up the steady window leaves out: phases named warm…/ramp… at the start of a load
// (the latest end among them), else the first second (connections opening).
std::int64_t warmup_end_us(const plan& p, std::int64_t run_end_us) {
  std::int64_t end = std::min<std::int64_t>(1'000'000, run_end_us);
  for (const auto& ph : p.phases) {
    std::string n = ph.phase;
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ph.start_us == 0 && (n.starts_with("warm") || n.starts_with("ramp"))) end = std::max(end, ph.end_us);
  }
  return std::min(end, run_end_us);
}

// availability.attempts / availability.ops from http.requests when no model recorded them
// (per load view too): the http model makes one attempt per request and no retries.
void alias_availability(metrics_shard& m) {
  std::vector<std::string> names = m.names();
  for (const auto& n : names) {
    if (!n.starts_with("http.requests")) continue;
    std::string suffix = n.substr(std::string("http.requests").size());  // "" or "@load"
    if (!suffix.empty() && suffix[0] != '@') continue;
    for (const char* a : {"availability.attempts", "availability.ops"}) {
      if (m.find(std::string(a) + suffix)) continue;
      m.metric(std::string(a) + suffix).merge(*m.find(n));
    }
  }
}

}  // namespace

std::string dry_run_details(const scenario& s, const run_options& o) {
  std::ostringstream out;
  out << "\nresolved\n";
  out << "  run directory: " << (fs::path(o.out_dir) / ("<YYYYmmddTHHMMSSZ>-" + s.name)).string() << " (not created)\n";
  out << "  worker threads: " << o.threads << "\n";
  if (s.target.contains("lab") && s.target["lab"].contains("id")) {
    out << "  target: the running lab " << s.target["lab"]["id"].get<std::string>() << " (attached: neither started nor stopped by the run)\n";
  } else if (s.target.contains("lab")) {
    const auto& lab = s.target["lab"];
    out << "  target: lab with " << lab.value("pods", 2) << " syncd pods behind HAProxy, PostgreSQL 15"
        << (lab.value("replica", false) ? " with a synchronous replica" : "") << " (started for the run, stopped after"
        << (lab.value("keep", false) ? ": keep" : "") << ")\n";
  }
  if (s.target.contains("proxy")) {
    out << "  target: the run's fault proxy in front of the endpoints, on free ports of "
        << s.target["proxy"].value("listen", "127.0.0.1") << " (started for the run as `syncstorm proxy --config <run dir>/proxy/config.json`, "
        << "recorded in the ledger, stopped after it):";
    for (const char* name : {"http", "ws"})
      if (s.target["endpoints"].contains(name)) out << " " << name << " -> " << s.target["endpoints"][name].get<std::string>();
    out << "; the loads below go through it\n";
  }
  for (const auto& l : s.loads) {
    if (l.model == "http") {
      auto c = http_config(s, l, false);
      out << "  load " << l.name << ": " << (c.open ? "open" : "closed") << " model, " << c.connections << " connections, "
          << c.method << " " << c.url << ", timeout " << units::format_duration(c.timeout_us);
      if (!c.headers.empty()) {
        out << ", headers:";
        for (const auto& [k, v] : c.headers) out << " " << k << (has_env_ref(v) ? "=<from environment>" : "=<set>");
      }
      out << "\n";
    } else if (l.model == "terminal" || l.model == "offline") {
      std::vector<loadgen::phase_spec> phases;
      for (const auto& ph : l.phases) phases.push_back({ph.name, ph.for_us, ph.rate, ph.to});
      std::string base = s.target.contains("lab") ? "http://<lab load balancer>" : target_http_base(s);
      const bool offline = l.model == "offline";
      auto c = (offline ? loadgen::offline_config_from : loadgen::terminal_config_from)(l.name, l.fields, phases, s.target, base,
                                                                                       "<run dir>", "<run tag>", s.seed, false,
                                                                                       "scenario.load[]");
      if (offline) {
        out << "  load " << l.name << ": " << c.stores << " clients offline in";
        for (const auto& w : c.offline.windows)
          out << " [" << units::format_duration(w.start_us) << ", " << units::format_duration(w.end_us) << ")";
        if (c.offline.duty_cycle > 0)
          out << " random windows (duty cycle " << c.offline.duty_cycle * 100 << "%, period " << units::format_duration(c.offline.period_us)
              << ", seeded per client)";
        out << "; on reconnect they drain\n";
      }
      out << "  load " << l.name << ": " << c.stores << " stores x " << c.terminals_per_store << " terminals, mix append "
          << c.pct_append << "% add " << c.pct_add << "% set " << c.pct_set << "%, " << (c.periodic ? "periodic" : "continuous")
          << " sync to " << c.url << c.profile.push_path << ", timeout " << units::format_duration(c.timeout_us) << ", drain "
          << units::format_duration(c.drain_us) << ", journals in " << c.journal_dir << "\n";
    }
  }
  if (!s.faults.empty()) {
    // Each fault prepared as it would fire (targets from the scenario; what only the running
    // target can tell is shown as <...>).
    injectors::fault_env env;
    if (s.target.contains("lab")) env.lab = injectors::lab_facts::from_scenario(s.target["lab"]);
    if (s.target.contains("proxy")) {
      injectors::proxy_facts pf;
      pf.control = "<run dir>/proxy/control.sock";
      for (const char* name : {"http", "ws"})
        if (s.target["endpoints"].contains(name)) pf.paths.push_back(name);
      if (s.target["endpoints"].value("http", "").starts_with("http://")) pf.http_paths.push_back("http");
      env.proxy = pf;
    }
    env.safety = injectors::safety_policy::from(s.document);
    env.seed = s.seed;
    env.run_tag = "<run>";
    env.dry_run = true;
    plan pl = make_plan(s);
    for (const auto& pf : pl.faults) {
      auto fe = std::find_if(s.faults.begin(), s.faults.end(), [&](auto& f) { return f.name == pf.name; });
      if (fe == s.faults.end()) continue;
      out << "  fault " << pf.name << "#" << pf.occurrence << " (" << pf.kind << ") at " << units::format_duration(pf.at_us) << ":";
      try {
        auto prepared = injectors::prepare_fault(*fe, pf.occurrence, env);
        out << "\n    targets:";
        for (const auto& t : prepared.targets) out << " " << t.value("backend", "") << ":" << t.value("name", "");
        out << "\n";
        for (const auto& st : prepared.apply) out << "    apply:  " << injectors::describe_step(st) << "\n";
        for (const auto& st : prepared.undo) out << "    revert: " << injectors::describe_step(st) << "\n";
        if (prepared.undo.empty()) out << "    revert: nothing to undo" << (prepared.irreversible ? " (irreversible by design; repair is separate)" : "") << "\n";
        out << "    revert at: " << (pf.revert_us ? units::format_duration(*pf.revert_us) : prepared.heals ? std::string("when its effect ends (checked)") : std::string("the end of the load")) << "\n";
      } catch (const std::exception& e) {
        out << " REFUSED: " << e.what() << "\n";
      }
    }
  }
  if (!s.capture.is_null()) {
    const auto& c = s.capture;
    const nlohmann::json ifs = c.value("interfaces", nlohmann::json("lab"));
    out << "  capture: " << (ifs.is_string() ? std::string("the lab's interfaces (its bridge and lo, or lo alone in a loopback lab)") : ifs.dump())
        << ", filter " << (c.contains("filter") ? c["filter"].dump() : std::string("the lab's ports on lo, everything on the bridge"))
        << ", snaplen " << c.value("snaplen", 128) << ", ring "
        << units::format_size(c.contains("ring") ? size_value(c["ring"]) : capture::default_ring_bytes(s.document, c.value("snaplen", 128)))
        << " per interface, " << (c.value("pcap", true) ? "pcap files in <run dir>/capture rotated at " +
                                                                units::format_size(c.contains("max_file") ? size_value(c["max_file"]) : 256ull << 20)
                                                          : std::string("no pcap files"))
        << "; series wire.<direction>.<counter>\n";
  }
  out << "  nothing was contacted, started or written\n";
  return out.str();
}

int run_scenario(const scenario& s, const plan& p, const run_options& o) {
  if (!s.faults.empty()) {
    // A run never starts over faults another run left applied on the same target.
    std::string refused = injectors::refuse_unreverted(injectors::scenario_target_keys(s));
    if (!refused.empty()) {
      std::cerr << refused << "\n";
      return 3;
    }
  }
  auto wall_start = std::chrono::system_clock::now();
  fs::path dir = fs::path(o.out_dir) / (iso_utc(wall_start, true) + "-" + s.name);
  for (int i = 2; fs::exists(dir); ++i) dir = fs::path(o.out_dir) / (iso_utc(wall_start, true) + "-" + s.name + "-" + std::to_string(i));
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    std::cerr << "--out " << o.out_dir << ": found a directory that cannot be created (" << ec.message()
              << "); expected a writable directory\n";
    return 3;
  }
  {
    std::ofstream sc(dir / "scenario.json");
    nlohmann::json recorded = s.document;
    sc << recorded.dump(2) << "\n";
  }
  auto start = clock::now();
  event_log events(dir / "events.jsonl", start);  // re-based when the load starts
  std::atomic<loadgen::worker_pool*> pool_ptr{nullptr};
  signal_watch signals([&](int sig) {
    events.write("signal", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    if (auto* pl = pool_ptr.load()) pl->interrupt();
  });
  events.write("run_started", {{"scenario", s.name}, {"seed", s.seed}, {"time_scale", s.time_scale}, {"threads", o.threads}});

  std::string error;
  std::vector<std::unique_ptr<loadgen::load_model>> models;
  std::unique_ptr<lab::lab> the_lab;
  std::string lab_base;
  std::int64_t lab_attached_mono_us = 0;  // target.lab.id: when the run attached (older lab events are not its)
  // Target preflight: an unreachable target is a runtime error (exit 3), not a failed SLA.
  if (s.target.contains("endpoints")) {
    std::string base = target_http_base(s);
    if (!base.empty()) {
      try {
        auto u = loadgen::parse_url(base);
        std::string e = preflight_connect(u.host, u.port, 3000);
        if (!e.empty()) error = "target unreachable: " + e;
      } catch (const std::exception& e) {
        error = std::string("target.endpoints.http: ") + e.what();
      }
    }
  } else if (s.target.contains("lab") && s.target["lab"].contains("id")) {
    // target.lab.id: a lab that is already up (a game day's long-lived lab). The run neither
    // starts nor stops it; one that is not up is a runtime error, not bad input.
    const std::string id = s.target["lab"]["id"];
    try {
      auto l = lab::lab::attach(id);
      nlohmann::json st = l.status();
      if (st.value("phase", "") != "ready" || !st["supervisor"].value("answering", false))
        throw std::runtime_error("its phase is " + st.value("phase", "?") + " and its supervisor " +
                                 (st["supervisor"].value("answering", false) ? "answers" : "does not answer") +
                                 " (`syncstorm lab status --id " + id + "`)");
      the_lab = std::make_unique<lab::lab>(std::move(l));
      lab_attached_mono_us = std::chrono::duration_cast<std::chrono::microseconds>(clock::now().time_since_epoch()).count();
      lab_base = the_lab->lb_http_url();
      std::cerr << "lab: using the running lab " << id << " (not started or stopped by this run)\n";
      events.write("lab_up", {{"lab", id}, {"attached", true}, {"http", lab_base}, {"ws", the_lab->lb_ws_url()}});
    } catch (const std::exception& e) {
      error = "target.lab.id: found \"" + id + "\"; expected a lab that is up (syncstorm lab up --id " + id + "): " + e.what();
    }
  } else if (s.target.contains("lab")) {
    // The lab is started for the run and stopped after it (unless keep).
    const auto& t = s.target["lab"];
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
    events.write("lab_starting", {{"options", lo.to_json()}});
    std::cerr << "lab: starting " << lo.pods << " pods" << (lo.replica ? " with a replica" : "")
              << (lo.bug.empty() ? "" : ", bug " + lo.bug) << "\n";
    try {
      the_lab = std::make_unique<lab::lab>(lab::lab::up(lo));
      lab_base = the_lab->lb_http_url();
      events.write("lab_up", {{"lab", the_lab->id()}, {"http", lab_base}, {"ws", the_lab->lb_ws_url()}});
    } catch (const std::exception& e) {
      error = std::string("target.lab: the lab did not come up: ") + e.what();
    }
  }
  // target.proxy: the run's fault proxy goes in front of the endpoints before any model is built
  // (their URLs point at it); ledger first, so the reaper stops it if this process dies.
  std::unique_ptr<injectors::run_proxy> proxy;
  bool ledger_started = false;
  scenario proxied = s;  // the scenario as the models see it
  if (error.empty() && s.target.contains("proxy") && !signals.fired()) {
    try {
      injectors::start_run_ledger(dir.string());
      ledger_started = true;
      injectors::run_proxy_config pc;
      pc.run_dir = dir.string();
      pc.on_event = [&events](const std::string& ev, nlohmann::json f) { events.write(ev, std::move(f)); };
      pc.log = [](const std::string& line) { std::cerr << "\n" << line << "\n"; };
      const std::string listen = s.target["proxy"].value("listen", "127.0.0.1");
      const bool v6 = listen.find(':') != std::string::npos;
      const auto& ep = s.target["endpoints"];
      std::map<std::string, loadgen::url_parts> original;
      for (const char* name : {"http", "ws"}) {
        if (!ep.contains(name)) continue;
        std::string url = resolve_env(ep[name].get<std::string>());
        // ws(s):// parses like http(s)://
        std::string as_http = url.starts_with("ws") ? "http" + url.substr(2) : url;
        auto u = loadgen::parse_url(as_http);
        std::string ip = lab::numeric_address(u.host);
        if (ip.empty()) throw std::runtime_error("target.endpoints." + std::string(name) + ": cannot resolve " + u.host);
        original[name] = u;
        pc.paths.push_back({name, listen + ":0", ip + ":" + std::to_string(u.port), {}, std::string(name) == "http" && !u.tls});
      }
      proxy = std::make_unique<injectors::run_proxy>(pc);
      for (auto& [name, u] : original) {
        std::string at = proxy->listen(name);
        std::string port = at.substr(at.rfind(':') + 1);
        // The same URL with the proxy's address as its authority (scheme, path and query kept).
        const std::string url = ep[name].get<std::string>();
        const auto authority = url.find("://") + 3;
        const auto rest = url.find_first_of("/?", authority);
        proxied.target["endpoints"][name] = url.substr(0, authority) + (v6 ? "[" + listen + "]" : listen) + ":" + port +
                                            (rest == std::string::npos ? "" : url.substr(rest));
        // TLS passes through the proxy untouched: the client still names and verifies the real host.
        if (u.tls && !proxied.target.value("tls", nlohmann::json::object()).contains("server_name")) proxied.target["tls"]["server_name"] = u.host;
      }
      std::cerr << "proxy: the run's fault proxy in front of the endpoints:";
      for (auto& [name, u] : original) std::cerr << " " << name << " " << proxy->listen(name) << " -> " << u.host << ":" << u.port;
      std::cerr << "\n";
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  const scenario& model_s = proxy ? proxied : s;
  // Sync models (terminals) keep every op's fate for the audit; their ids carry this run's tag.
  std::vector<loadgen::terminal_model*> terminals;
  std::vector<loadgen::fanout_model*> fanouts;
  std::vector<loadgen::bootstrap_model*> bootstraps;
  std::int64_t drain_us = 0;
  const std::string run_tag = [] {
    std::random_device rd;
    std::ostringstream o;
    o << std::hex << std::setw(8) << std::setfill('0') << (rd() & 0xffffffffu);
    return o.str();
  }();
  if (error.empty()) {
    try {
      for (std::size_t i = 0; i < s.loads.size(); ++i) {
        const auto& l = s.loads[i];
        if (l.model == "http") {
          models.push_back(loadgen::make_http_model(http_config(model_s, l, true, lab_base)));
        } else if (l.model == "terminal" || l.model == "offline") {
          // offline is the terminal model with an online gate per client (offline_model.hpp).
          std::vector<loadgen::phase_spec> phases;
          for (const auto& ph : l.phases) phases.push_back({ph.name, ph.for_us, ph.rate, ph.to});
          auto cfg = (l.model == "offline" ? loadgen::offline_config_from : loadgen::terminal_config_from)(
              l.name, l.fields, phases, model_s.target, lab_base, dir.string(), run_tag, s.seed + i, true,
              "scenario.load[" + std::to_string(i) + "]");
          cfg.on_event = [&events](const std::string& ev, const nlohmann::json& fields) { events.write(ev, fields); };
          drain_us = std::max(drain_us, cfg.drain_us);
          auto m = loadgen::make_terminal_model(cfg);
          terminals.push_back(m.get());
          models.push_back(std::move(m));
        } else if (l.model == "fanout" || l.model == "bootstrap") {
          std::vector<loadgen::phase_spec> phases;
          for (const auto& ph : l.phases) phases.push_back({ph.name, ph.for_us, ph.rate, ph.to});
          const std::string where = "scenario.load[" + std::to_string(i) + "]";
          const std::string ws = the_lab ? the_lab->lb_ws_url() : std::string();
          if (l.model == "fanout") {
            auto cfg = loadgen::fanout_config_from(l.name, l.fields, phases, model_s.target, lab_base, ws, run_tag, s.seed + i, true, where);
            drain_us = std::max(drain_us, cfg.drain_us + 1'000'000);
            auto m = loadgen::make_fanout_model(cfg);
            fanouts.push_back(m.get());
            models.push_back(std::move(m));
          } else {
            auto cfg = loadgen::bootstrap_config_from(l.name, l.fields, phases, model_s.target, lab_base, ws, run_tag, s.seed + i, true, where);
            auto m = loadgen::make_bootstrap_model(cfg);
            bootstraps.push_back(m.get());
            models.push_back(std::move(m));
          }
        } else {
          throw std::invalid_argument("load " + l.name + ": model " + l.model + " is not implemented in this build");
        }
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
  }

  metrics_shard merged;
  std::vector<fault_occurrence> occurrences;  // what the fault runner applied, on the run clock
  loadgen::worker_pool::run_end end = loadgen::worker_pool::run_end::deadline;
  std::int64_t run_end_us = 0;
  double cpu_cores = 0, worker_cpu_max = 0;
  std::vector<injectors::fault_record> fault_records;
  std::string fault_error;
  injectors::abort_watch aborts(s.aborts, [&](const std::string& name, const std::string& reason) {
    std::cerr << "\nabort: " << name << ": " << reason << "\n";
    events.write("abort", {{"condition", name}, {"reason", reason}});
    if (auto* pl = pool_ptr.load()) pl->interrupt();
  });
  const cpu_times cpu_at_start = process_cpu_times();
  terminal_clients clients(terminals);  // what client_crash / journal_corrupt act on
  // System limits before thousands of sockets: one line per limit too low (exit 3, nothing ran).
  if (error.empty() && !fanouts.empty()) {
    loadgen::connection_plan cp;
    for (auto* f : fanouts) cp.connections += f->planned_connections(o.threads);
    cp.loopback_spread = true;
    if (the_lab) {
      cp.through_lb = cp.connections;
      try {
        auto st = the_lab->status();
        if (st.contains("limits") && st["limits"].contains("haproxy_maxconn"))
          cp.lb_maxconn = st["limits"]["haproxy_maxconn"].get<std::uint64_t>();
      } catch (const std::exception&) {
      }
    }
    auto problems = loadgen::limit_problems(cp, loadgen::read_system_limits());
    for (const auto& pr : problems) error += (error.empty() ? "" : "; ") + pr;
  }
  // The wire capture (capture/): after the target is up, before the load clock, so the load's
  // first connections are on the wire; it stops after the drain.
  std::unique_ptr<capture::capture_session> wire;
  if (error.empty() && !signals.fired() && !s.capture.is_null()) {
    try {
      nlohmann::json status = the_lab ? the_lab->status() : nlohmann::json();
      std::vector<capture::endpoint> servers;
      if (!the_lab) {
        std::vector<std::string> urls;
        if (s.target.contains("endpoints"))
          for (const char* k : {"http", "ws"})
            if (s.target["endpoints"].contains(k)) urls.push_back(s.target["endpoints"][k].get<std::string>());
        servers = capture::resolve_url_endpoints(urls);
      }
      auto cfg = capture::capture_config_for(s.document, status, servers, (dir / "capture").string());
      nlohmann::json ifs = nlohmann::json::array();
      for (const auto& i : cfg.interfaces) ifs.push_back({{"name", i.name}, {"filter", i.filter}});
      wire = std::make_unique<capture::capture_session>(std::move(cfg));
      events.write("capture_started", {{"interfaces", ifs}});
    } catch (const std::exception& e) {
      error = std::string("capture: ") + e.what();
    }
  }
  // Abort conditions on wire.* see the capture's series in the once-a-second snapshots.
  const bool aborts_read_wire = wire && std::any_of(s.aborts.begin(), s.aborts.end(), [](const abort_entry& a) {
    return a.rule && a.rule->metric.starts_with("wire.");
  });
  std::int64_t wire_since_us = 0;
  auto stop_capture = [&] {
    if (!wire) return;
    wire->stop();
    merged.merge(wire->series());
    events.write("capture_stopped", {{"packets", wire->report()["packets"]}, {"dropped", wire->dropped()}});
  };
  if (error.empty() && !signals.fired()) {
    start = clock::now();
    events.set_origin(start);
    if (wire) wire->set_origin(start);
    loadgen::worker_pool pool(o.threads, start);
    std::unique_ptr<injectors::fault_runner> faults;
    try {
      std::vector<loadgen::load_model*> raw;
      for (auto& m : models) raw.push_back(m.get());
      pool.start(raw);
      pool_ptr = &pool;
      if (signals.fired()) pool.interrupt();
      if (!p.faults.empty()) {
        injectors::fault_runner_config fc;
        fc.s = &s;
        fc.p = &p;
        fc.run_dir = dir.string();
        fc.env.safety = injectors::safety_policy::from(s.document);
        fc.env.seed = s.seed;
        fc.env.run_tag = dir.filename().string();
        fc.lab_id = the_lab ? the_lab->id() : "";
        if (proxy) {
          fc.env.proxy = proxy->facts();
          fc.ledger_started = ledger_started;
          fc.end_ledger = false;  // the proxy is stopped after the drain, then run_end
        }
        if (!terminals.empty()) fc.env.clients = &clients;
        fc.on_event = [&](const std::string& ev, nlohmann::json f) { events.write(ev, std::move(f)); };
        fc.log = [](const std::string& line) { std::cerr << "\n" << line << "\n"; };
        faults = std::make_unique<injectors::fault_runner>(std::move(fc));
        faults->start(start);
      }
      aborts.start();
      for (const auto& ph : p.phases) events.write("phase_planned", {{"load", ph.load}, {"phase", ph.phase}, {"start_s", ph.start_us / 1e6}, {"end_s", ph.end_us / 1e6}});
      // Live progress: on a terminal one line rewritten each second, else a plain line every 10 s.
      bool tty = isatty(STDERR_FILENO);
      reports::progress_input progress;
      for (const auto& l : s.loads) progress.loads.push_back({l.name, l.model});
      progress.total_s = static_cast<double>(s.duration_us) / 1e6;
      std::unique_ptr<metrics_shard> prev;
      std::vector<std::string> active_faults;  // names of the faults applied and not yet reverted
      int tick = 0;
      end = pool.run_until(start + std::chrono::microseconds(s.duration_us), [&](const metrics_shard& snap, std::int64_t at_us) {
        ++tick;
        if (tty || tick % 10 == 0) {
          progress.now = &snap;
          progress.elapsed_s = static_cast<double>(at_us) / 1e6;
          active_faults.clear();
          if (faults)
            for (const auto& r : faults->records())
              if (r.applied_us && !r.reverted_us) active_faults.push_back(r.name);
          progress.active_faults = active_faults;
          std::string line = reports::progress_line(progress);
          if (tty) std::cerr << "\r" << line << "\033[K" << std::flush;
          else std::cerr << line << "\n";
        }
        prev = std::make_unique<metrics_shard>(snap);
        if (aborts_read_wire) {
          metrics_shard with_wire = snap;
          with_wire.merge(wire->snapshot_since(wire_since_us));
          wire_since_us = at_us;
          aborts.check_metrics(with_wire, at_us);
        } else {
          aborts.check_metrics(snap, at_us);
        }
        progress.prev = prev.get();
        progress.prev_elapsed_s = static_cast<double>(at_us) / 1e6;
      });
      if (tty) std::cerr << "\n";
      aborts.stop();
      run_end_us = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start).count();
      // Undo before anything else stops: in-flight requests on a paused pod then complete, and
      // the sync models' drain runs against a healed stack.
      if (faults) {
        faults->stop_and_revert();
        fault_records = faults->records();
        fault_error = faults->first_error();
      }
      pool_ptr = nullptr;
      // Sync models drain what they hold (bounded by their `drain`), then in-flight work ends.
      if (!terminals.empty() || !fanouts.empty()) std::cerr << "load stopped; draining queued ops (at most " << units::format_duration(drain_us) << ")\n";
      merged = pool.stop(std::chrono::milliseconds(drain_us / 1000 + 5'000));
      auto wall_us = std::max<std::int64_t>(1, std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start).count());
      for (auto c : pool.cpu_us()) worker_cpu_max = std::max(worker_cpu_max, static_cast<double>(c) / static_cast<double>(wall_us));
      stop_capture();
    } catch (const std::exception& e) {
      pool_ptr = nullptr;
      error = e.what();
      aborts.stop();
      if (faults) {
        faults->stop_and_revert();
        fault_records = faults->records();
      }
      try { merged = pool.stop(std::chrono::seconds(1)); } catch (...) {}
      stop_capture();
    }
  }
  if (wire) wire->stop();  // the load never started: the threads end here, before the lab goes down
  auto wall_end = std::chrono::system_clock::now();
  if (run_end_us == 0) run_end_us = std::chrono::duration_cast<std::chrono::microseconds>(clock::now() - start).count();
  cpu_cores = static_cast<double>(process_cpu_times().cpu_us - cpu_at_start.cpu_us) /
              static_cast<double>(std::max<std::int64_t>(1, run_end_us));
  bool interrupted = signals.fired() || (end == loadgen::worker_pool::run_end::interrupted && !aborts.fired());
  if (error.empty() && !fault_error.empty()) error = fault_error;
  events.write(interrupted ? "run_interrupted" : "run_stopped", {{"error", error}});

  // The audit (DESIGN §7): after the load stopped, faults were reverted and queues drained, read
  // the stack's data back and compare it with every op's fate on the clients. Before the lab
  // goes down.
  // What the fault runner did, for the timeline and the audit (applied occurrences only).
  for (const auto& r : fault_records) {
    if (!r.applied_us) continue;
    fault_occurrence o;
    o.name = r.name;
    o.kind = r.kind;
    o.applied_us = *r.applied_us;
    o.reverted_us = r.reverted_us.value_or(-1);
    o.lasting = !instant_kind(r.kind);
    for (const auto& t : r.targets)
      if (t.value("backend", "") == "lab" && t.contains("name")) o.units.push_back(t["name"].get<std::string>());
    occurrences.push_back(std::move(o));
  }

  nlohmann::json audit_j;
  std::optional<audit_result> audit;
  const bool audited = !terminals.empty() || !fanouts.empty() || !bootstraps.empty();
  if (audited && error.empty() && !interrupted) {
    try {
      audit_input ain;
      for (auto* t : terminals) t->collect(ain.ops);
      for (auto* f : fanouts) {
        f->collect(ain.ops);
        f->collect_views(ain.views);
      }
      for (auto* b : bootstraps) b->collect(ain.ops);
      ain.run_end_us = run_end_us;
      for (const auto& o : occurrences)
        if (o.applied_us >= 0) ain.faults.push_back({o.name, o.applied_us});
      std::vector<std::string> streams;
      {
        std::set<std::string> seen;
        for (const auto& op : ain.ops) seen.insert(op.stream);
        streams.assign(seen.begin(), seen.end());
      }
      loadgen::audit_source src = audit_source_for(s, the_lab.get(), lab_base);
      std::cerr << "audit: reading " << streams.size() << " streams back " << (src.via_sql ? "from PostgreSQL" : "through the API") << "\n";
      auto state = loadgen::read_server_state(src, streams);
      ain.changes = std::move(state.changes);
      ain.records = std::move(state.records);
      ain.source = state.source;
      audit = run_audit(ain);
      audit_j = audit->to_json();
      events.write("audit_done", {{"lost", audit->lost}, {"duplicates", audit->duplicates}, {"diverged", audit->diverged}});
    } catch (const std::exception& e) {
      error = std::string("audit: ") + e.what();
      events.write("audit_failed", {{"error", error}});
    }
  }
  // The run's proxy carried the drain; it goes now, through the ledger, then run_end.
  if (proxy) {
    std::string e = proxy->stop();
    if (!e.empty()) {
      std::cerr << e << "\n";
      if (error.empty()) error = e;
    }
    try {
      injectors::end_run_ledger(dir.string());
    } catch (const std::exception& x) {
      std::cerr << "ledger: " << x.what() << "\n";
    }
    events.write("proxy_stopped");
  }
  nlohmann::json lab_events = nlohmann::json::array();
  if (the_lab) {
    // Lab events carry CLOCK_MONOTONIC µs, the engine clock's base: place them on the run's axis.
    std::int64_t start_mono = std::chrono::duration_cast<std::chrono::microseconds>(start.time_since_epoch()).count();
    try {
      for (auto e : the_lab->events()) {
        if (lab_attached_mono_us && e.value("mono_us", std::int64_t{0}) < lab_attached_mono_us) continue;
        if (e.contains("mono_us")) e["t_s"] = static_cast<double>(e["mono_us"].get<std::int64_t>() - start_mono) / 1e6;
        e["source"] = "lab";
        if (!e.contains("subject")) e["subject"] = e.value("unit", e.value("server", ""));
        lab_events.push_back(e);
      }
    } catch (const std::exception& e) {
      std::cerr << "lab: cannot read events: " << e.what() << "\n";
    }
    if (lab_attached_mono_us) {
      // An attached lab is the user's: left as it was found.
    } else if (s.target["lab"].value("keep", false)) {
      std::cerr << "lab: kept up as " << the_lab->id() << " (syncstorm lab down to remove it)\n";
    } else {
      try {
        auto left = the_lab->down();
        for (const auto& l : left) std::cerr << "lab down: " << l << "\n";
      } catch (const std::exception& e) {
        std::cerr << "lab down: " << e.what() << "\n";
        if (error.empty()) error = std::string("lab down: ") + e.what();
      }
    }
  }

  // The generator's self-watch (DESIGN §7): saturated when a worker thread was busy > 90% of
  // the time or arrivals ran late (lag p99 > 10 ms).
  const timed_metric* lag = merged.find("generator.lag");
  std::optional<double> lag_p99;
  if (lag && lag->hist().count()) lag_p99 = ms(lag->hist().percentile(99));
  // The bounds are self_monitor's; the CPU one is applied per worker thread (the pool knows
  // each thread's CPU), not to the process, which shares the machine with the lab.
  const saturation_limits limits;
  std::string sat_reason;
  if (worker_cpu_max > limits.cpu_share) sat_reason = "a worker thread was busy " + std::to_string(static_cast<int>(worker_cpu_max * 100)) + "% of the run (> 90%)";
  if (lag_p99 && *lag_p99 > static_cast<double>(limits.lag_p99_us) / 1000.0) {
    std::ostringstream r;
    r << std::setprecision(3) << "generator.lag p99 " << *lag_p99 << " ms (> 10 ms)";
    sat_reason += (sat_reason.empty() ? "" : "; ") + r.str();
  }
  bool saturated = !sat_reason.empty();

  // availability.* for loads without their own (the http model): every request is an attempt
  // and, without retries, an op.
  alias_availability(merged);

  // The run's timeline: fault occurrences, lab events, windows and recovery at 100 ms.
  timeline_input tin;
  tin.metrics = &merged;
  tin.run_end_us = run_end_us;
  tin.warmup_end_us = warmup_end_us(p, run_end_us);
  tin.faults = occurrences;
  for (const auto& e : lab_events) {
    if (!e.contains("t_s") || !e["t_s"].is_number()) continue;
    tin.events.push_back({static_cast<std::int64_t>(e["t_s"].get<double>() * 1e6), e.value("event", ""),
                          e.value("name", e.value("server", e.value("subject", "")))});
  }
  std::sort(tin.events.begin(), tin.events.end(), [](const auto& a, const auto& b) { return a.t_us < b.t_us; });
  const std::vector<timeline_event> tl_events = tin.events;
  const timeline tl(std::move(tin));
  nlohmann::json ws_drops;  // report.json ws_drops, with fanout loads

  evaluation_context ctx;
  ctx.metrics = &merged;
  ctx.run_end_us = run_end_us;
  ctx.generator_saturated = saturated;
  ctx.saturation_reason = sat_reason;
  if (lag_p99) ctx.generator_lag_p99_us = static_cast<std::int64_t>(*lag_p99 * 1000.0);
  if (wire) {
    // DESIGN §7: a capture that lost packets leaves wire.* rules inconclusive.
    ctx.capture_reason = wire->loss_reason();
    ctx.capture_dropped = !ctx.capture_reason.empty();
  }
  ctx.scalars = tl.scalars();
  if (!fanouts.empty() && error.empty() && !interrupted) {
    // Judged once, after the drain: acked changes some subscriber never received.
    std::uint64_t missing = 0;
    for (auto* f : fanouts) missing += f->missing();
    ctx.scalars["fanout.missing"] = static_cast<double>(missing);
    // WebSockets lost on servers no fault touched at the time (timeline.hpp says how).
    std::vector<ws_drop> drops;
    for (auto* f : fanouts) f->collect_drops(drops);
    const ws_drop_counts wd = attribute_ws_drops(drops, occurrences, tl_events, run_end_us);
    ws_drops = {{"total", wd.total}, {"faulted", wd.faulted}, {"bystanders", wd.bystanders}, {"unattributed", wd.unattributed}};
    if (wd.unattributed == 0)
      ctx.scalars["ws.dropped.bystanders"] = static_cast<double>(wd.bystanders);
    else
      ctx.absent["ws.dropped.bystanders"] = "ws.dropped.bystanders: " + std::to_string(wd.unattributed) + " of " +
                                            std::to_string(wd.total) + " dropped WebSockets were on servers that did not name themselves (server_header)";
  }
  if (audit) {
    ctx.scalars["audit.lost"] = static_cast<double>(audit->lost);
    ctx.scalars["audit.duplicates"] = static_cast<double>(audit->duplicates);
    ctx.scalars["audit.in_doubt"] = static_cast<double>(audit->in_doubt);
    ctx.scalars["audit.order_violations"] = static_cast<double>(audit->order_violations);
    ctx.scalars["audit.diverged"] = static_cast<double>(audit->diverged);
    ctx.scalars["audit.lost_age"] = audit->lost_oldest_age_us ? static_cast<double>(*audit->lost_oldest_age_us) : 0.0;
  } else {
    std::string why = !audited ? "no load in this run keeps client-side op records (terminal, fanout, bootstrap)"
                                        : "the audit did not run (" + (error.empty() ? std::string("the run was interrupted") : error) + ")";
    for (const char* k : {"audit.lost", "audit.duplicates", "audit.in_doubt", "audit.order_violations", "audit.diverged", "audit.lost_age"})
      ctx.absent[k] = std::string(k) + ": " + why;
  }
  for (const auto& f : s.faults) {
    for (const char* kind : {"recovery.", "ready.", "detect."}) {
      std::string key = kind + f.name;
      if (ctx.scalars.count(key)) continue;
      bool fired = std::any_of(tl.effects().begin(), tl.effects().end(), [&](const auto& e) { return e.name == f.name; });
      ctx.absent[key] = !fired ? "fault " + f.name + " was never applied in this run"
                        : std::string(kind) == "detect." ? "no client-visible failure followed fault " + f.name
                                                         : key + " could not be measured (no client samples)";
    }
  }
  ctx.resolve_window = [&](const std::string& w) -> std::vector<time_window> {
    std::vector<time_window> phase;
    if (w.starts_with("phase:")) {
      std::string rest = w.substr(6);
      std::string ln = rest.substr(0, rest.find('/')), pn = rest.substr(rest.find('/') + 1);
      for (const auto& ph : p.phases)
        if (ph.load == ln && ph.phase == pn && ph.start_us < run_end_us) phase.push_back({ph.start_us, std::min(ph.end_us, run_end_us)});
    }
    return tl.window(w, phase);
  };
  nlohmann::json verdicts = nlohmann::json::array();
  bool any_fail = false, any_inconclusive = false;
  if (aborts.fired()) {
    // The abort condition that fired is a failed rule (DESIGN §9 exit 1).
    any_fail = true;
    const abort_entry* a = nullptr;
    for (const auto& x : s.aborts) if (x.name == aborts.name()) a = &x;
    verdicts.push_back({{"name", aborts.name()}, {"metric", a && a->rule ? a->rule->metric : std::string("probe")},
                        {"stat", a && a->rule ? a->rule->stat : std::string("fail_after")}, {"window", "all"},
                        {"value", nullptr}, {"bound", nullptr}, {"op", "<="}, {"pass", false}, {"warn", false},
                        {"inconclusive", false}, {"reason", "abort condition fired: " + aborts.reason()}});
  }
  for (const auto& r : s.slas) {
    verdict v = evaluate(r, ctx);
    if (v.inconclusive) any_inconclusive = true;
    else if (!v.pass) any_fail = true;
    nlohmann::json j = {{"name", v.name}, {"metric", v.metric}, {"stat", v.stat}, {"window", v.window},
                        {"value", v.value ? nlohmann::json(*v.value) : nlohmann::json()},
                        {"bound", v.bound ? nlohmann::json(*v.bound) : nlohmann::json()},
                        {"op", v.op}, {"pass", v.pass}, {"warn", v.warn}, {"inconclusive", v.inconclusive},
                        {"unit", v.unit}, {"samples", v.samples}, {"reason", v.reason},
                        {"warn_bound", v.warn_bound ? nlohmann::json(*v.warn_bound) : nlohmann::json()}};
    if (!v.load.empty()) j["load"] = v.load;
    verdicts.push_back(j);
  }

  std::string outcome;
  int exit_code;
  std::string reason;
  if (!error.empty()) { outcome = "error"; exit_code = 3; reason = error; }
  else if (interrupted) { outcome = "aborted"; exit_code = 4; reason = "interrupted by " + std::string(signals.signal() == SIGINT ? "SIGINT" : "SIGTERM"); }
  else if (any_fail) { outcome = "fail"; exit_code = 1; if (aborts.fired()) reason = "aborted early: " + aborts.name() + ": " + aborts.reason(); }
  else if (any_inconclusive) { outcome = "inconclusive"; exit_code = 5; reason = "a rule could not be judged"; }
  else { outcome = "pass"; exit_code = 0; }

  nlohmann::json metrics_j, series_j, gauges_j;
  metrics_for_report(merged, metrics_j, series_j, gauges_j);
  // Values judged once per run (recovery.<fault>, ready.<fault>, detect.<fault>, outage.max):
  // ms, null with "unbounded" when never reached.
  // Counts judged once (fanout.missing, ws.dropped.bystanders) keep their unit.
  for (const auto& [k, val] : ctx.scalars) {
    if (k.starts_with("audit.")) continue;
    if (auto info = metric_lookup(s.document, k); info && info->unit == metric_unit::count) {
      metrics_j[k] = {{"unit", "count"}, {"value", val}};
      continue;
    }
    nlohmann::json j = {{"unit", "ms"}, {"value", std::isinf(val) ? nlohmann::json() : nlohmann::json(val / 1000.0)}};
    if (std::isinf(val)) j["unbounded"] = true;
    metrics_j[k] = j;
  }
  nlohmann::json errors_j = nlohmann::json::object();
  for (const auto& name : merged.names()) {
    if (name.find(".errors.") != std::string::npos && name.find('@') == std::string::npos) errors_j[name] = merged.find(name)->count();
  }
  std::uint64_t late = merged.find("generator.late") ? merged.find("generator.late")->count() : 0;
  nlohmann::json report = {
      {"schema_version", report_schema_version},
      {"syncstorm_version", SYNCSTORM_VERSION},
      {"seed", s.seed},
      {"scenario", s.document},
      {"time_scale", s.time_scale},
      {"started_at", iso_utc(wall_start)},
      {"ended_at", iso_utc(wall_end)},
      {"duration_s", static_cast<double>(run_end_us) / 1e6},
      {"outcome", outcome},
      {"exit_code", exit_code},
      {"reason", reason},
      {"verdicts", verdicts},
      {"metrics", metrics_j},
      {"series", series_j},
      {"gauges", gauges_j},
      {"faults", faults_report(fault_records, tl, audit)},
      {"audit", audit_j.is_null() ? nlohmann::json() : audit_j},
      {"generator", {{"cpu", cpu_cores}, {"lag_p99", lag_p99 ? nlohmann::json(*lag_p99) : nlohmann::json()},
                     {"saturated", saturated}, {"reason", sat_reason}, {"threads", o.threads}, {"late", late}}},
      {"events", [&] { auto all = events.all(); for (auto& e : lab_events) all.push_back(e); return all; }()},
      {"run_dir", dir.string()},
      {"errors", errors_j}};
  if (wire) report["capture"] = wire->report();
  if (!ws_drops.is_null()) report["ws_drops"] = ws_drops;
  try {
    reports::write_all(dir.string(), report);
  } catch (const std::exception& e) {
    std::cerr << "report: " << e.what() << "\n";
    exit_code = 3;
  }
  std::cout << reports::verdict_table(report);
  exit_code = reports::apply_baseline(report, dir.string(), o.baseline, exit_code, std::cout, std::cerr);
  std::cout << "report: " << (dir / "report.html").string() << std::endl;
  return exit_code;
}

}  // namespace syncstorm::cli
