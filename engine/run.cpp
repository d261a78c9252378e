// See run.hpp. The pipeline: run directory and scenario.json → events and signal watch →
// target → loads → limits → capture → the load phase (pool, faults, abort watch, progress,
// graceful stop) → audit → proxy and lab down → verdicts → outcome → report files.
#include "engine/run.hpp"

#include "capture/capture.hpp"
#include "core/self_monitor.hpp"
#include "core/time_text.hpp"
#include "core/units.hpp"
#include "engine/events.hpp"
#include "engine/judge.hpp"
#include "engine/live_metrics.hpp"
#include "engine/loads.hpp"
#include "engine/outcome.hpp"
#include "engine/report.hpp"
#include "engine/server_metrics.hpp"
#include "engine/target.hpp"
#include "injectors/abort_watch.hpp"
#include "injectors/fault_runner.hpp"
#include "injectors/reaper.hpp"
#include "injectors/run_proxy.hpp"
#include "labstack/lab.hpp"
#include "loadgen/audit_reader.hpp"
#include "loadgen/limits.hpp"
#include "loadgen/target_access.hpp"
#include "loadgen/workers.hpp"
#include "reports/progress.hpp"
#include "reports/writers.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

namespace syncstorm::engine {
namespace {

namespace fs = std::filesystem;

// Everything one run holds, in the order the stages create it; destroyed in reverse, so what a
// stage started is stopped even when a later one throws.
struct run_state {
  run_state(const scenario& s_, const plan& p_, const run_options& o_) : s(s_), p(p_), o(o_) {}
  const scenario& s;
  const plan& p;
  const run_options& o;
  fs::path dir;
  std::chrono::system_clock::time_point wall_start, wall_end;
  run_clock::time_point start;
  std::unique_ptr<event_log> events;
  std::unique_ptr<live_metrics> live;  // --metrics-listen
  std::atomic<loadgen::worker_pool*> pool{nullptr};
  std::unique_ptr<signal_watch> signals;
  std::unique_ptr<target_stage> target;
  load_stage loads;
  std::unique_ptr<injectors::abort_watch> aborts;
  std::unique_ptr<capture::capture_session> wire;
  std::unique_ptr<server_scraper> server;  // target.metrics
  std::string error, fault_error;
  metrics_shard merged;
  loadgen::worker_pool::run_end end = loadgen::worker_pool::run_end::deadline;
  std::int64_t run_end_us = 0;
  double worker_cpu_max = 0;
  std::vector<injectors::fault_record> fault_records;
  std::vector<fault_occurrence> occurrences;
  std::optional<audit_result> audit;
  bool interrupted = false;

  bool proceed() const { return error.empty() && !signals->fired(); }
};

// The run directory `<out>/<YYYYmmddTHHMMSSZ>-<name>[-N]` and scenario.json (the document with
// --set applied, `${env:}` unresolved). False (after one line on stderr) when it cannot be made.
bool open_run_dir(run_state& r) {
  r.wall_start = std::chrono::system_clock::now();
  const std::string stem = utc_compact(r.wall_start) + "-" + r.s.name;
  std::error_code ec;
  fs::create_directories(r.o.out_dir, ec);
  // Created exclusively (mkdir(2) fails on anything already there, a planted directory or link
  // included): a run directory holds only what this run wrote (issue #24).
  for (int i = 1;; ++i) {
    r.dir = fs::path(r.o.out_dir) / (i == 1 ? stem : stem + "-" + std::to_string(i));
    if (::mkdir(r.dir.c_str(), 0755) == 0) break;
    if (errno != EEXIST || i >= 1000) {
      std::cerr << "--out " << r.o.out_dir << ": found a directory that cannot be created (" << std::strerror(errno)
                << "); expected a writable directory\n";
      return false;
    }
  }
  std::ofstream(r.dir / "scenario.json") << r.s.document.dump(2) << "\n";
  return true;
}

// A random tag of this run: the sync models' op ids carry it.
std::string new_run_tag() {
  std::random_device rd;
  std::ostringstream o;
  o << std::hex << std::setw(8) << std::setfill('0') << (rd() & 0xffffffffu);
  return o.str();
}

void build_loads(run_state& r) {
  load_context ctx;
  ctx.s = &r.s;
  ctx.target = &r.target->model_target();
  ctx.http_base = r.target->http_base();
  ctx.ws_base = r.target->ws_base();
  ctx.run_dir = r.dir.string();
  ctx.run_tag = new_run_tag();
  ctx.on_event = [&r](const std::string& ev, const nlohmann::json& fields) { r.events->write(ev, fields); };
  try {
    r.loads.build(r.s, ctx);
  } catch (const std::exception& e) {
    r.error = e.what();
  }
}

// System limits before thousands of sockets: one line per limit too low (exit 3, nothing ran).
void check_limits(run_state& r) {
  loadgen::connection_plan cp;
  cp.connections = r.loads.planned_connections(r.o.threads);
  if (cp.connections == 0) return;
  cp.loopback_spread = true;
  if (auto* l = r.target->lab()) {
    cp.through_lb = cp.connections;
    try {
      auto st = l->status();
      if (st.contains("limits") && st["limits"].contains("haproxy_maxconn"))
        cp.lb_maxconn = st["limits"]["haproxy_maxconn"].get<std::uint64_t>();
    } catch (const std::exception&) {
    }
  }
  for (const auto& pr : loadgen::limit_problems(cp, loadgen::read_system_limits()))
    r.error += (r.error.empty() ? "" : "; ") + pr;
}

// The wire capture (capture/): after the target is up, before the load clock, so the load's
// first connections are on the wire; it stops after the drain.
void start_capture(run_state& r) {
  try {
    auto* l = r.target->lab();
    nlohmann::json status = l ? l->status() : nlohmann::json();
    std::vector<capture::endpoint> servers;
    if (!l) {
      std::vector<std::string> urls;
      if (r.s.target.contains("endpoints"))
        for (const char* k : {"http", "ws"})
          if (r.s.target["endpoints"].contains(k)) urls.push_back(r.s.target["endpoints"][k].get<std::string>());
      servers = capture::resolve_url_endpoints(urls);
    }
    auto cfg = capture::capture_config_for(r.s.document, status, servers, (r.dir / "capture").string());
    nlohmann::json ifs = nlohmann::json::array();
    for (const auto& i : cfg.interfaces) ifs.push_back({{"name", i.name}, {"filter", i.filter}});
    r.wire = std::make_unique<capture::capture_session>(std::move(cfg));
    r.events->write("capture_started", {{"interfaces", ifs}});
  } catch (const std::exception& e) {
    r.error = std::string("capture: ") + e.what();
  }
}

// target.metrics: the scraper starts with the load clock and stops after the drain.
void start_server_metrics(run_state& r) {
  if (!r.s.target.contains("metrics")) return;
  try {
    auto sources = server_sources(r.s.target, r.target->lab());
    const auto m = r.s.target["metrics"];
    const std::int64_t every =
        m.contains("every") ? std::max<std::int64_t>(100'000, duration_us(m["every"])) : 1'000'000;
    r.events->write("server_metrics_started", {{"sources", sources.size()}, {"every_s", every / 1e6}});
    r.server = std::make_unique<server_scraper>(std::move(sources), std::chrono::microseconds(every),
                                                server_combinations(r.s));
    r.server->start(r.start);
  } catch (const std::exception& e) {
    r.error = std::string("target.metrics: ") + e.what();
  }
}

void stop_server_metrics(run_state& r) {
  if (!r.server) return;
  r.server->stop();
  r.merged.merge(r.server->snapshot());
  const auto problems = r.server->problems();
  for (const auto& p : problems) std::cerr << "target.metrics: " << p << "\n";
  r.events->write("server_metrics_stopped", {{"problems", problems}});
}

void stop_capture(run_state& r) {
  if (!r.wire) return;
  r.wire->stop();
  r.merged.merge(r.wire->series());
  r.events->write("capture_stopped", {{"packets", r.wire->report()["packets"]}, {"dropped", r.wire->dropped()}});
}

std::unique_ptr<injectors::fault_runner> start_faults(run_state& r) {
  if (r.p.faults.empty()) return nullptr;
  injectors::fault_runner_config fc;
  fc.s = &r.s;
  fc.p = &r.p;
  fc.run_dir = r.dir.string();
  fc.env.safety = r.o.safety;
  fc.env.seed = r.s.seed;
  fc.env.run_tag = r.dir.filename().string();
  fc.lab_id = r.target->lab() ? r.target->lab()->id() : "";
  if (auto* proxy = r.target->proxy()) {
    fc.env.proxy = proxy->facts();
    fc.ledger_started = r.target->ledger_started();
    fc.end_ledger = false;  // the proxy is stopped after the drain, then run_end
  }
  fc.env.clients = r.loads.clients();
  fc.on_event = [&r](const std::string& ev, nlohmann::json f) {
    if (r.live) r.live->fault_event(ev, f);
    r.events->write(ev, std::move(f));
  };
  fc.log = [](const std::string& line) { std::cerr << "\n" << line << "\n"; };
  auto faults = std::make_unique<injectors::fault_runner>(std::move(fc));
  faults->start(r.start);
  return faults;
}

// The once-a-second callback of the pool: the live progress line (on a terminal one line
// rewritten each second, else a plain line every 10 s) and the abort conditions.
loadgen::worker_pool::progress_fn progress_watch(run_state& r, const injectors::fault_runner* faults, bool tty) {
  struct state {
    reports::progress_input progress;
    std::unique_ptr<metrics_shard> prev;
    int tick = 0;
    std::int64_t wire_since_us = 0;
    std::int64_t live_since_us = 0;  // when the previous snapshot was taken (its series start there)
  };
  auto st = std::make_shared<state>();
  for (const auto& l : r.s.loads) st->progress.loads.push_back({l.name, l.model});
  st->progress.total_s = static_cast<double>(r.s.duration_us) / 1e6;
  // Abort conditions on wire.* see the capture's series in the snapshots.
  const bool aborts_read_wire = r.wire && std::any_of(r.s.aborts.begin(), r.s.aborts.end(), [](const abort_entry& a) {
                                  return a.rule && a.rule->metric.starts_with("wire.");
                                });
  return [&r, faults, tty, st, aborts_read_wire](const metrics_shard& pool_snap, std::int64_t at_us) {
    // The target's scraped gauges join the snapshot (the same window: series from the previous
    // snapshot on), for the live endpoint and the abort conditions.
    metrics_shard with_server;
    const metrics_shard* view = &pool_snap;
    if (r.server) {
      with_server = pool_snap;
      with_server.merge(r.server->snapshot(st->live_since_us));
      view = &with_server;
    }
    const metrics_shard& snap = *view;
    auto& pr = st->progress;
    if (tty || ++st->tick % 10 == 0) {
      pr.now = &snap;
      pr.elapsed_s = static_cast<double>(at_us) / 1e6;
      pr.active_faults.clear();
      if (faults)
        for (const auto& rec : faults->records())
          if (rec.applied_us && !rec.reverted_us) pr.active_faults.push_back(rec.name);
      std::string line = reports::progress_line(pr);
      if (tty)
        std::cerr << "\r" << line << "\033[K" << std::flush;
      else
        std::cerr << line << "\n";
    }
    st->prev = std::make_unique<metrics_shard>(snap);
    if (r.live) {
      r.live->tick(snap, st->live_since_us, at_us, faults ? faults->records() : std::vector<injectors::fault_record>{});
      st->live_since_us = at_us;
    }
    if (aborts_read_wire) {
      metrics_shard with_wire = snap;
      with_wire.merge(r.wire->snapshot_since(st->wire_since_us));
      st->wire_since_us = at_us;
      r.aborts->check_metrics(with_wire, at_us);
    } else {
      r.aborts->check_metrics(snap, at_us);
    }
    pr.prev = st->prev.get();
    pr.prev_elapsed_s = static_cast<double>(at_us) / 1e6;
  };
}

// The load phase: the clock starts, the pool runs the models, the faults fire on the plan, the
// abort watch runs, until the deadline, a signal or an abort; then faults are reverted first (so
// the drain runs against a healed stack), the models drain, the capture stops.
void run_load(run_state& r) {
  r.start = run_clock::now();
  if (r.live) r.live->set_run(r.dir.filename().string(), std::chrono::system_clock::now());
  r.events->set_origin(r.start);
  if (r.wire) r.wire->set_origin(r.start);
  loadgen::worker_pool pool(r.o.threads, r.start);
  std::unique_ptr<injectors::fault_runner> faults;
  try {
    start_server_metrics(r);
    if (!r.error.empty()) throw std::runtime_error(r.error);
    pool.start(r.loads.models());
    r.pool = &pool;
    if (r.signals->fired()) pool.interrupt();
    faults = start_faults(r);
    r.aborts->start();
    for (const auto& ph : r.p.phases)
      r.events->write(
          "phase_planned",
          {{"load", ph.load}, {"phase", ph.phase}, {"start_s", ph.start_us / 1e6}, {"end_s", ph.end_us / 1e6}});
    const bool tty = isatty(STDERR_FILENO);
    r.end = pool.run_until(r.start + std::chrono::microseconds(r.s.duration_us), progress_watch(r, faults.get(), tty));
    if (tty) std::cerr << "\n";
    r.aborts->stop();
    r.run_end_us = std::chrono::duration_cast<std::chrono::microseconds>(run_clock::now() - r.start).count();
    if (faults) {
      faults->stop_and_revert();
      r.fault_records = faults->records();
      r.fault_error = faults->first_error();
    }
    r.pool = nullptr;
    // Sync models drain what they hold (bounded by their `drain`), then in-flight work ends.
    const std::int64_t drain_us = r.loads.drain_us();
    if (drain_us > 0)
      std::cerr << "load stopped; draining queued ops (at most " << units::format_duration(drain_us) << ")\n";
    r.merged = pool.stop(std::chrono::milliseconds(drain_us / 1000 + 5'000));
    stop_server_metrics(r);
    auto wall_us = std::max<std::int64_t>(
        1, std::chrono::duration_cast<std::chrono::microseconds>(run_clock::now() - r.start).count());
    for (auto c : pool.cpu_us())
      r.worker_cpu_max = std::max(r.worker_cpu_max, static_cast<double>(c) / static_cast<double>(wall_us));
    stop_capture(r);
  } catch (const std::exception& e) {
    r.pool = nullptr;
    r.error = e.what();
    r.aborts->stop();
    if (faults) {
      faults->stop_and_revert();
      r.fault_records = faults->records();
    }
    try {
      r.merged = pool.stop(std::chrono::seconds(1));
    } catch (...) {
    }
    stop_server_metrics(r);
    stop_capture(r);
  }
}

// What the fault runner applied, on the run clock, for the timeline and the audit.
void record_occurrences(run_state& r) { r.occurrences = occurrences_of(r.fault_records); }

// Where the audit reads from: target.audit {via: api|sql, dsn}. The lab: its API through the LB,
// or its primary's DSN with via sql. Endpoints: the API, or the given DSN.
loadgen::audit_source audit_source_for(const scenario& s, const lab::lab* the_lab, const std::string& lab_base) {
  loadgen::audit_source src;
  const auto audit = s.target.value("audit", nlohmann::json::object());
  src.via_sql = audit.value("via", audit.contains("dsn") ? "sql" : "api") == "sql";
  if (audit.contains("timeout")) src.timeout_us = std::max<std::int64_t>(1000, duration_us(audit["timeout"]));
  if (audit.contains("retries")) src.retries = audit["retries"].get<int>();
  if (src.via_sql) {
    if (audit.contains("dsn"))
      src.dsn = resolve_env(audit["dsn"].get<std::string>());
    else if (the_lab)
      src.dsn = the_lab->db_dsn();
    else
      throw std::invalid_argument(
          "scenario.target.audit: found via \"sql\" without a dsn; expected a dsn for an endpoints target");
    return src;
  }
  src.http_base = loadgen::target_http_url(s.target, the_lab ? lab_base : std::string(), "audit", true);
  auto access = loadgen::target_access_from(s.target, true);
  src.headers = std::move(access.headers);
  src.tls = std::move(access.tls);
  src.profile = std::move(access.profile);
  return src;
}

// The audit (DESIGN §7): after the load stopped, faults were reverted and queues drained, read
// the stack's data back and compare it with every op's fate on the clients. Before the lab goes
// down.
void run_audit_stage(run_state& r) {
  try {
    audit_input ain;
    r.loads.collect(ain);
    ain.run_end_us = r.run_end_us;
    for (const auto& o : r.occurrences)
      if (o.applied_us >= 0) ain.faults.push_back({o.name, o.applied_us});
    std::set<std::string> seen;
    for (const auto& op : ain.ops) seen.insert(op.stream);
    for (const auto& d : ain.delivered) seen.insert(d.stream);  // every delivered change is compared
    const std::vector<std::string> streams(seen.begin(), seen.end());
    const loadgen::audit_source src = audit_source_for(r.s, r.target->lab(), r.target->http_base());
    std::cerr << "audit: reading " << streams.size() << " streams back "
              << (src.via_sql ? "from PostgreSQL" : "through the API") << "\n";
    auto state = loadgen::read_server_state(src, streams);
    ain.changes = std::move(state.changes);
    ain.records = std::move(state.records);
    ain.source = state.source;
    ain.orders_are_cursors = state.orders_are_cursors;
    r.audit = run_audit(ain);
    r.events->write("audit_done",
                    {{"lost", r.audit->lost}, {"duplicates", r.audit->duplicates}, {"diverged", r.audit->diverged}});
  } catch (const std::exception& e) {
    r.error = std::string("audit: ") + e.what();
    r.events->write("audit_failed", {{"error", r.error}});
  }
}

// The end of the load phase: times, the process's CPU, whether a signal interrupted it.
void close_load_phase(run_state& r, const cpu_times& cpu_at_start, double& cpu_cores) {
  if (r.wire) r.wire->stop();  // the load never started: the threads end here, before the lab goes down
  r.wall_end = std::chrono::system_clock::now();
  if (r.run_end_us == 0)
    r.run_end_us = std::chrono::duration_cast<std::chrono::microseconds>(run_clock::now() - r.start).count();
  cpu_cores = static_cast<double>(process_cpu_times().cpu_us - cpu_at_start.cpu_us) /
              static_cast<double>(std::max<std::int64_t>(1, r.run_end_us));
  r.interrupted = r.signals->fired() || (r.end == loadgen::worker_pool::run_end::interrupted && !r.aborts->fired());
  if (r.error.empty() && !r.fault_error.empty()) r.error = r.fault_error;
  r.events->write(r.interrupted ? "run_interrupted" : "run_stopped", {{"error", r.error}});
  record_occurrences(r);
}

// Verdicts, outcome and report.json from what the run measured; the report files written.
run_result decide_and_report(run_state& r, const nlohmann::json& lab_events, double cpu_cores) {
  judge_input ji;
  ji.s = &r.s;
  ji.p = &r.p;
  ji.merged = &r.merged;
  ji.run_end_us = r.run_end_us;
  ji.occurrences = r.occurrences;
  ji.lab_events = lab_events;
  ji.worker_cpu_max = r.worker_cpu_max;
  if (r.wire) ji.capture_loss = r.wire->loss_reason();
  const delivery_totals delivered = r.loads.delivery();
  if (delivered.any && r.error.empty() && !r.interrupted) ji.delivery = delivered;
  ji.audit = r.audit ? &*r.audit : nullptr;
  ji.audit_absent =
      !r.loads.audited()
          ? "no load in this run keeps client-side op records (terminal, fanout, bootstrap)"
          : "the audit did not run (" + (r.error.empty() ? std::string("the run was interrupted") : r.error) + ")";
  if (r.aborts->fired()) ji.abort = std::make_pair(r.aborts->name(), r.aborts->reason());
  const auto abort = ji.abort;
  judgement j = judge(std::move(ji));

  outcome_input oi;
  oi.error = r.error;
  oi.interrupted = r.interrupted;
  oi.signal = r.signals->signal();
  oi.rules = j.rules;
  oi.abort = abort;

  report_input ri;
  ri.s = &r.s;
  ri.started_at = utc_iso8601(r.wall_start);
  ri.ended_at = utc_iso8601(r.wall_end);
  ri.run_end_us = r.run_end_us;
  ri.result = outcome_of(oi);
  ri.verdicts = j.verdicts;
  ri.merged = &r.merged;
  ri.scalars = j.scalars;
  ri.faults = faults_report(r.fault_records, j.effects, r.audit ? &*r.audit : nullptr);
  if (r.audit) ri.audit = r.audit->to_json();
  ri.generator = j.generator;
  ri.generator.cpu = cpu_cores;
  ri.generator.threads = r.o.threads;
  ri.events = r.events->all();
  for (const auto& e : lab_events) ri.events.push_back(e);
  ri.run_dir = r.dir.string();
  if (r.wire) ri.capture = r.wire->report();
  ri.ws_drops = j.ws_drops;
  ri.safety = r.o.safety.to_json();

  run_result out;
  out.run_dir = r.dir.string();
  out.report = build_report(ri);
  out.exit_code = ri.result.exit_code;
  try {
    reports::write_all(out.run_dir, out.report);
  } catch (const std::exception& e) {
    std::cerr << "report: " << e.what() << "\n";
    out.exit_code = 3;
  }
  std::cout << reports::verdict_table(out.report);
  out.exit_code = reports::apply_baseline(out.report, out.run_dir, r.o.baseline, out.exit_code, std::cout, std::cerr);
  if (r.live) r.live->finish(r.merged, out.report.value("verdicts", nlohmann::json::array()), r.run_end_us);
  std::cout << "report: " << (r.dir / "report.html").string() << std::endl;
  return out;
}

// What the abort probes take from the target: target.tls (its CA file is trusted beside the
// system's store; server_name and verify only for probes of the endpoints, probe_tls_for) and the
// endpoints' URLs, `${env:}` resolved.
injectors::probe_target abort_probe_target(const scenario& s) {
  injectors::probe_target t;
  // Only `tls` is handed over: the probes do not need the profile target_access_from would parse.
  const auto tls = loadgen::target_access_from({{"tls", s.target.value("tls", nlohmann::json::object())}}, true).tls;
  t.tls = {tls.ca_file, tls.server_name, tls.verify};
  if (s.target.contains("endpoints") && s.target["endpoints"].is_object())
    for (const auto& [name, url] : s.target["endpoints"].items())
      if (url.is_string()) t.endpoints.push_back(resolve_env(url.get<std::string>()));
  return t;
}

// --metrics-linger: the final values stay up for scrapers that poll slower than the run ended
// (a signal ends the wait).
void linger(run_state& r) {
  if (!r.live || r.live->bound().empty() || r.o.metrics_linger_us <= 0) return;
  std::cerr << "metrics: final values at http://" << r.live->bound() << "/metrics for "
            << units::format_duration(r.o.metrics_linger_us) << "\n";
  const auto until = run_clock::now() + std::chrono::microseconds(r.o.metrics_linger_us);
  while (run_clock::now() < until && !r.signals->fired())
    std::this_thread::sleep_for(
        std::min<run_clock::duration>(std::chrono::milliseconds(100), until - run_clock::now()));
}

}  // namespace

run_result run(const scenario& s, const plan& p, const run_options& o) {
  if (!s.faults.empty()) {
    // A run never starts over faults another run left applied on the same target.
    std::string refused = injectors::refuse_unreverted(injectors::scenario_target_keys(s));
    if (!refused.empty()) {
      std::cerr << refused << "\n";
      return {};
    }
  }
  run_state r(s, p, o);
  if (!o.metrics_listen.empty() || !o.prometheus_remote_write.empty()) {
    // Bound before anything starts: an address that cannot be had is the operator's input
    // (exit 2, nothing ran).
    std::optional<listen_address> at;
    std::string flag = "--prometheus-remote-write " + o.prometheus_remote_write;
    try {
      if (!o.metrics_listen.empty()) {
        flag = "--metrics-listen " + o.metrics_listen;
        std::string why;
        at = parse_listen_address(o.metrics_listen, why);
        if (!at) throw std::runtime_error(why);
      }
      r.live = std::make_unique<live_metrics>(at, o.prometheus_remote_write, s, p, o.threads);
    } catch (const std::exception& e) {
      std::cerr << flag << ": " << e.what() << "\n";
      return {2, "", nullptr};
    }
    if (at) std::cerr << "metrics: serving http://" << r.live->bound() << "/metrics\n";
  }
  if (!open_run_dir(r)) return {};
  r.start = run_clock::now();
  r.events = std::make_unique<event_log>(r.dir / "events.jsonl", r.start);  // re-based when the load starts
  r.signals = std::make_unique<signal_watch>([&r](int sig) {
    r.events->write("signal", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    if (auto* pl = r.pool.load()) pl->interrupt();
  });
  r.events->write("run_started",
                  {{"scenario", s.name}, {"seed", s.seed}, {"time_scale", s.time_scale}, {"threads", o.threads}});

  r.target = std::make_unique<target_stage>(s, r.dir.string(), *r.events);
  r.error = r.target->open([&r] { return !r.signals->fired(); });
  if (r.error.empty()) build_loads(r);
  r.aborts = std::make_unique<injectors::abort_watch>(
      s.aborts,
      [&r](const std::string& name, const std::string& reason) {
        std::cerr << "\nabort: " << name << ": " << reason << "\n";
        r.events->write("abort", {{"condition", name}, {"reason", reason}});
        if (auto* pl = r.pool.load()) pl->interrupt();
      },
      abort_probe_target(s));
  const cpu_times cpu_at_start = process_cpu_times();
  if (r.error.empty()) check_limits(r);
  if (r.proceed() && !s.capture.is_null()) start_capture(r);
  if (r.proceed()) run_load(r);
  double cpu_cores = 0;
  close_load_phase(r, cpu_at_start, cpu_cores);

  if (r.loads.audited() && r.error.empty() && !r.interrupted) run_audit_stage(r);
  // The run's proxy carried the drain; it goes now, through the ledger, then run_end.
  if (std::string e = r.target->stop_proxy(); !e.empty() && r.error.empty()) r.error = e;
  const nlohmann::json lab_events = r.target->lab_events(r.start);
  if (std::string e = r.target->close_lab(); !e.empty() && r.error.empty()) r.error = e;
  run_result out = decide_and_report(r, lab_events, cpu_cores);
  if (r.live) {
    if (std::string line = r.live->close_remote_write(); !line.empty()) std::cerr << line << "\n";
    std::cerr << r.live->cost() << "\n";
  }
  linger(r);
  return out;
}

int run_scenario(const scenario& s, const plan& p, const run_options& o) { return run(s, p, o).exit_code; }

}  // namespace syncstorm::engine
