// `syncstorm run SCENARIO [--out DIR] [--set PATH=VALUE]... [--time-scale X] [--seed N]
// [--threads N] [--dry-run] [--baseline DIR [--baseline-keep N] [--max-regression PCT]]
// [--allow-{pid,pidfile,container,docker-host,context,namespace,path,interface} X]...
// [--allow-file F] [--max-fault-targets N] [--metrics-listen ADDR [--metrics-linger DURATION]]
// [--prometheus-remote-write URL]`
// (DESIGN §9): loads and validates (exit 2, nothing runs, on any problem), prints the timeline
// on --dry-run, else hands the scenario to the engine.
#include "cli/commands.hpp"
#include "engine/live_metrics.hpp"
#include "engine/run.hpp"
#include "injectors/faults.hpp"
#include "labstack/lab_state.hpp"
#include "core/plan.hpp"
#include "core/scenario.hpp"
#include "core/units.hpp"
#include "reports/compare.hpp"

#include <iostream>
#include <memory>
#include <thread>

namespace syncstorm::cli {
namespace {

struct run_flags {
  std::string file;
  std::string out = "runs";
  std::vector<std::string> sets;
  double time_scale = 1.0;
  std::optional<std::uint64_t> seed;
  std::size_t threads = 0;
  bool dry_run = false;
  std::string baseline;
  std::size_t baseline_keep = 5;
  std::string max_regression = "10%";
  injectors::allow_flags allow;
  std::size_t max_fault_targets = 0;
  std::string metrics_listen;
  std::string metrics_linger;
  std::string remote_write;
};

registration run_reg{
    20, [](CLI::App& app) -> action {
      auto f = std::make_shared<run_flags>();
      auto* sub = app.add_subcommand("run", "run a scenario: load, faults, audit, SLA verdicts, reports");
      sub->add_option("scenario", f->file, "scenario file")->required();
      sub->add_option("--out", f->out, "parent directory of the run directory (default: runs)");
      sub->add_option("--set", f->sets, "PATH=VALUE, e.g. target.lab.pods=3 (VALUE is JSON if it parses)");
      sub->add_option("--time-scale", f->time_scale,
                      "multiply phase durations, fault times, offline windows, run duration");
      sub->add_option("--seed", f->seed, "random seed (overrides the scenario's)");
      sub->add_option("--threads", f->threads, "worker threads (default: cores)");
      sub->add_flag("--dry-run", f->dry_run, "print the resolved timeline and touch nothing");
      sub->add_option("--metrics-listen", f->metrics_listen,
                      "serve the live metrics (OpenMetrics) at http://ADDR/metrics: HOST:PORT, [IPV6]:PORT or :PORT");
      sub->add_option("--metrics-linger", f->metrics_linger,
                      "keep serving the final values this long after the run (e.g. 30s; needs --metrics-listen)");
      sub->add_option("--prometheus-remote-write", f->remote_write,
                      "push the live metrics once a second to this Prometheus remote-write URL "
                      "(e.g. http://prometheus:9090/api/v1/write)");
      sub->add_option("--baseline", f->baseline,
                      "compare with the newest passing run of the scenario in DIR, then keep this one if it passed");
      sub->add_option("--baseline-keep", f->baseline_keep,
                      "passing reports kept per scenario in --baseline DIR (default 5)");
      sub->add_option("--max-regression", f->max_regression,
                      "with --baseline: worse by more than this fails, e.g. 10% (default 10%)");
      // The operator's allowlist (issue #24): what faults may touch beyond the run's own parts.
      const char* allow_group = "Allowlist (also $SYNCSTORM_ALLOW_*, --allow-file)";
      sub->add_option("--allow-pid", f->allow.pids,
                      "a local process id faults may signal (glob; repeat or comma-separate)")
          ->group(allow_group);
      sub->add_option("--allow-pidfile", f->allow.pidfiles, "an absolute pid file path faults may act through (glob)")
          ->group(allow_group);
      sub->add_option("--allow-container", f->allow.containers, "a docker container name faults may act on (glob)")
          ->group(allow_group);
      sub->add_option("--allow-docker-host", f->allow.docker_hosts,
                      "a non-local DOCKER_HOST value faults may act through")
          ->group(allow_group);
      sub->add_option("--allow-context", f->allow.contexts, "a kubectl context faults may act in (glob)")
          ->group(allow_group);
      sub->add_option("--allow-namespace", f->allow.namespaces,
                      "a kubectl namespace faults may act in: NS or CONTEXT/NS (glob)")
          ->group(allow_group);
      sub->add_option("--allow-path", f->allow.paths, "a directory disk_fill may fill (it and what is below it)")
          ->group(allow_group);
      sub->add_option("--allow-interface", f->allow.interfaces, "a capture interface besides lo and the lab's")
          ->group(allow_group);
      sub->add_option("--allow-file", f->allow.file,
                      "a JSON allow file (default $SYNCSTORM_ALLOW_FILE, else /etc/syncstorm/allow.json if present)")
          ->group(allow_group);
      sub->add_option("--max-fault-targets", f->max_fault_targets,
                      "targets one fault may hit outside the lab (default 10)")
          ->group(allow_group);
      return [f]() -> int {
        if (!(f->time_scale > 0) || f->time_scale > 1000) {
          std::cerr << "--time-scale: found " << f->time_scale << "; expected a number above 0 and at most 1000\n";
          return 2;
        }
        if (f->threads > 1024) {
          std::cerr << "--threads: found " << f->threads << "; expected 1 to 1024\n";
          return 2;
        }
        auto max_regression = reports::parse_percent(f->max_regression);
        if (!max_regression) {
          std::cerr << "--max-regression: found \"" << f->max_regression << "\"; expected a percentage like 10%\n";
          return 2;
        }
        if (f->baseline_keep < 1 || f->baseline_keep > 10000) {
          std::cerr << "--baseline-keep: found " << f->baseline_keep << "; expected 1 to 10000\n";
          return 2;
        }
        std::int64_t linger_us = 0;
        if (!f->metrics_listen.empty()) {
          std::string why;
          if (!engine::parse_listen_address(f->metrics_listen, why)) {
            std::cerr << "--metrics-listen: " << why << "\n";
            return 2;
          }
        }
        if (!f->metrics_linger.empty()) {
          auto d = units::parse_duration_us(f->metrics_linger);
          if (!d || *d < 0 || *d > 24LL * 3600 * 1'000'000) {
            std::cerr << "--metrics-linger: found \"" << f->metrics_linger
                      << "\"; expected a duration like 30s or 5m (at most 24h)\n";
            return 2;
          }
          if (f->metrics_listen.empty()) {
            std::cerr
                << "--metrics-linger: found it without --metrics-listen; expected --metrics-listen ADDR beside it\n";
            return 2;
          }
          linger_us = *d;
        }
        if (!f->remote_write.empty() && !f->remote_write.starts_with("http://") &&
            !f->remote_write.starts_with("https://")) {
          std::cerr << "--prometheus-remote-write: found \"" << f->remote_write
                    << "\"; expected an http:// or https:// URL such as http://prometheus:9090/api/v1/write\n";
          return 2;
        }
        load_options opt;
        opt.sets = f->sets;
        opt.time_scale = f->time_scale;
        opt.seed = f->seed;
        opt.require_env = true;
        auto r = load_scenario_file(f->file, opt);
        if (!r.errors.empty()) {
          for (const auto& e : r.errors) std::cerr << e << "\n";
          return 2;
        }
        const scenario& s = *r.value;
        // The allowlist: the operator's, narrowed by the scenario; a target outside it stops the run
        // here (exit 2, nothing started), dry run or not.
        std::vector<std::string> refusals;
        if (f->max_fault_targets) f->allow.max_targets = f->max_fault_targets;
        injectors::safety_policy safety = injectors::operator_policy(f->allow, refusals);
        injectors::narrow_by_scenario(safety, s.document, refusals);
        for (auto& e : injectors::refuse_scenario_targets(s, safety)) refusals.push_back(std::move(e));
        if (!refusals.empty()) {
          for (const auto& e : refusals) std::cerr << e << "\n";
          std::cerr
              << "nothing was started: every target outside the run's own parts (the lab, its terminals, its proxy, loopback) "
                 "must be allowed by the operator\n";
          return 2;
        }
        plan p = make_plan(s);
        engine::run_options ro;
        ro.safety = safety;
        ro.out_dir = f->out;
        ro.threads = f->threads ? f->threads : std::max(1u, std::thread::hardware_concurrency());
        ro.dry_run = f->dry_run;
        ro.metrics_listen = f->metrics_listen;
        ro.metrics_linger_us = linger_us;
        ro.prometheus_remote_write = f->remote_write;
        ro.baseline.dir = f->baseline;
        ro.baseline.keep = f->baseline_keep;
        ro.baseline.compare.max_regression_pct = *max_regression;
        if (f->dry_run) {
          std::cout << format_plan(s, p);
          std::cout << engine::dry_run_details(s, ro);
          return 0;
        }
        // The state directory (labs, the ledger index) is trusted only when it is ours alone.
        if (!s.faults.empty() || s.target.contains("lab") || s.target.contains("proxy")) {
          if (std::string why = lab::secure_labs_root(); !why.empty()) {
            std::cerr << "error: " << why << "\n";
            return 3;
          }
        }
        return engine::run_scenario(s, p, ro);
      };
    }};

}  // namespace
}  // namespace syncstorm::cli
