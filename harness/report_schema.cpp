// report.json's spec. Keys beyond §9's minimum are listed here too, so nothing the writer emits
// is undocumented.
#include "harness/report_schema.hpp"

namespace syncstorm {

using namespace spec;

spec::node_ptr report_spec() {
  static const node_ptr root = [] {
    auto seconds = [](std::string doc) { return nullable(number(std::move(doc) + " (seconds from the run's start)")); };
    auto verdict = object("one rule's verdict",
        {req("name", spec::string("rule name")), req("metric", spec::string("metric")), req("stat", spec::string("stat")),
         req("window", spec::string("window")), req("value", nullable(number("measured value, in `unit`"))),
         req("bound", nullable(number("the bound, in `unit`"))), req("op", enumeration("comparison", {"<=", ">="})),
         req("pass", boolean("the rule held")), req("warn", boolean("the softer warn bound was broken")),
         req("inconclusive", boolean("could not be judged")), opt("unit", enumeration("unit of value and bound", {"ms", "count", "percent", "per_s", "value"})),
         opt("samples", integer("samples behind the value", 0)), opt("reason", spec::string("why inconclusive, or what failed")),
         opt("warn_bound", nullable(number("the warn bound"))), opt("load", spec::string("load entry the rule is limited to"))});
    auto fault = object("one fault occurrence",
        {req("name", spec::string("fault name")), req("kind", spec::string("fault kind")), req("targets", array("resolved targets", any("a target"))),
         req("scheduled_at", seconds("scheduled")), req("applied_at", seconds("applied")), req("reverted_at", seconds("reverted")),
         req("recovery_s", nullable(number("client-visible recovery, seconds after the fault"))),
         req("ready_s", nullable(number("server-side readiness, seconds after the fault"))),
         req("detect_s", nullable(number("first failure seen, seconds after the fault"))),
         req("inflight_ops", nullable(integer("ops in flight when it fired", 0))),
         opt("occurrence", integer("repetition index", 0)), opt("error", spec::string("why it failed to apply or revert"))});
    auto audit = nullable(object("the data audit",
        {req("acked", integer("ops acknowledged", 0)), req("present", integer("acknowledged ops found", 0)),
         req("lost", integer("acknowledged ops absent", 0)), req("duplicates", integer("ops stored twice", 0)),
         req("in_doubt", integer("sent, never acknowledged", 0)), req("order_violations", integer("out of stream order", 0)),
         req("diverged", integer("counters or views off", 0)), req("lost_ids", array("first 100 lost op ids", spec::string("id"))),
         opt("source", enumeration("how data was read", {"api", "sql"}))}));
    auto generator = object("the generator's own health",
        {req("cpu", number("CPU share of one core used by syncstorm, 0..N")), req("lag_p99", nullable(number("generator.lag p99, ms"))),
         req("saturated", boolean("latency verdicts are inconclusive")), opt("reason", spec::string("why saturated")),
         opt("threads", integer("worker threads", 1)), opt("late", integer("arrivals sent late (> 1 ms)", 0))});
    auto metric = any("name -> {unit, count, ok, errors, min, mean, p50, p90, p99, p99_9, p99_99, max}");
    return object("report.json (DESIGN §9)",
        {req("schema_version", integer("format version", 1)), req("syncstorm_version", spec::string("version")),
         req("seed", integer("seed", 0)), req("scenario", any("the scenario as run (${env:} unresolved)")),
         opt("time_scale", number("--time-scale")), req("started_at", spec::string("UTC ISO 8601")),
         req("ended_at", spec::string("UTC ISO 8601")), opt("duration_s", number("run length")),
         req("outcome", enumeration("outcome", {"pass", "fail", "inconclusive", "aborted", "error"})),
         req("exit_code", integer("process exit code", 0, 5)), opt("reason", spec::string("why error, aborted or inconclusive")),
         req("verdicts", array("per rule", verdict)), req("metrics", metric),
         opt("series", any("per-second series per timed metric: name -> [[t_s, count, errors, p50_ms, p99_ms, max_ms], ...]")),
         opt("gauges", any("per-second series per gauge (queue.depth, ws.connected, ...): name -> [[t_s, value at the end of the second], ...]")),
         req("faults", array("per fault occurrence", fault)), req("audit", audit), req("generator", generator),
         opt("events", array("lab and run events", any("an event"))), opt("run_dir", spec::string("run directory")),
         opt("errors", any("error buckets -> count"))});
  }();
  return root;
}

nlohmann::json report_schema() {
  auto s = to_schema(*report_spec());
  s["$schema"] = "https://json-schema.org/draft/2020-12/schema";
  s["$id"] = "https://syncstorm.dev/schema/report.json";
  s["title"] = "syncstorm report";
  return s;
}

}  // namespace syncstorm
