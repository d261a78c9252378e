// The verdicts of a run (DESIGN §7): the generator's self-watch, the timeline (windows and
// recovery per fault at 100 ms), the values judged once (recovery.*, audit.*, fanout.missing,
// ws.dropped.bystanders) and every rule of the scenario. Pure over its inputs: no I/O, no
// threads, so the engine can judge a run, a slice or a merge of several the same way.
#pragma once

#include "core/audit.hpp"
#include "core/metrics.hpp"
#include "core/plan.hpp"
#include "core/sla.hpp"
#include "core/timeline.hpp"
#include "engine/registry.hpp"
#include "engine/report.hpp"
#include "injectors/fault_runner.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

namespace syncstorm::engine {

struct judge_input {
  const scenario* s = nullptr;
  const plan* p = nullptr;
  metrics_shard* merged = nullptr;  // availability.* aliases are added for http loads
  std::int64_t run_end_us = 0;
  std::vector<fault_occurrence> occurrences;            // applied occurrences on the run clock
  nlohmann::json lab_events = nlohmann::json::array();  // with t_s on the run's axis
  double worker_cpu_max = 0;                            // the busiest worker thread's share of the run
  std::string capture_loss;                             // non-empty: the capture dropped packets (why)
  // After the drain, when the run ended cleanly: what fanout loads delivered (nullopt: no clean
  // end, or no load delivers changes).
  std::optional<delivery_totals> delivery;
  const audit_result* audit = nullptr;  // null: the audit did not run
  std::string audit_absent;             // why, when it did not
  // An abort condition that fired (a failed rule): name and reason.
  std::optional<std::pair<std::string, std::string>> abort;
};

struct judgement {
  generator_report generator;  // cpu and threads are the caller's
  std::map<std::string, double> scalars;
  nlohmann::json verdicts = nlohmann::json::array();
  std::vector<outcome_input::rule> rules;
  nlohmann::json ws_drops;             // null without fanout drops judged
  std::vector<fault_effects> effects;  // per applied occurrence (the timeline's)
};

judgement judge(judge_input in);

// availability.* for loads without their own (the http model: every request is an attempt and,
// without retries, an op): (alias, http.requests[@load] it stands for), for each alias m lacks.
std::vector<std::pair<std::string, std::string>> availability_aliases(const metrics_shard& m);

// The fault runner's applied occurrences on the run clock, as the timeline and the audit read
// them (an occurrence not yet reverted has reverted_us -1; units: the lab units it hit).
std::vector<fault_occurrence> occurrences_of(const std::vector<injectors::fault_record>& records);

// The warm-up the steady window leaves out: phases named warm…/ramp… at the start of a load
// (the latest end among them), else the first second (connections opening).
std::int64_t warmup_end_us(const plan& p, std::int64_t run_end_us);

// report.json faults[]: the runner's records with what the timeline and the audit measured.
nlohmann::json faults_report(const std::vector<injectors::fault_record>& records,
                             const std::vector<fault_effects>& effects, const audit_result* audit);

}  // namespace syncstorm::engine
