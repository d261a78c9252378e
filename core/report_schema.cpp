// report.json's spec. Keys beyond §9's minimum are listed here too, so nothing the writer emits
// is undocumented.
#include "core/report_schema.hpp"

namespace syncstorm {

using namespace spec;

spec::node_ptr report_spec() {
  static const node_ptr root = [] {
    auto seconds = [](std::string doc) { return nullable(number(std::move(doc) + " (seconds from the run's start)")); };
    auto verdict = object(
        "one rule's verdict",
        {req("name", spec::string("rule name")), req("metric", spec::string("metric")),
         req("stat", spec::string("stat")), req("window", spec::string("window")),
         req("value", nullable(number("measured value, in `unit`"))),
         req("bound", nullable(number("the bound, in `unit`"))), req("op", enumeration("comparison", {"<=", ">="})),
         req("pass", boolean("the rule held")), req("warn", boolean("the softer warn bound was broken")),
         req("inconclusive", boolean("could not be judged")),
         opt("unit", enumeration("unit of value and bound", {"ms", "count", "percent", "per_s", "value"})),
         opt("samples", integer("samples behind the value", 0)),
         opt("reason", spec::string("why inconclusive, or what failed")),
         opt("warn_bound", nullable(number("the warn bound"))),
         opt("load", spec::string("load entry the rule is limited to"))});
    auto fault =
        object("one fault occurrence",
               {req("name", spec::string("fault name")), req("kind", spec::string("fault kind")),
                req("targets", array("resolved targets", any("a target"))), req("scheduled_at", seconds("scheduled")),
                req("applied_at", seconds("applied")), req("reverted_at", seconds("reverted")),
                req("recovery_s", nullable(number("client-visible recovery, seconds after the fault"))),
                req("ready_s", nullable(number("server-side readiness, seconds after the fault"))),
                req("detect_s", nullable(number("first failure seen, seconds after the fault"))),
                req("inflight_ops", nullable(integer("ops in flight when it fired", 0))),
                opt("occurrence", integer("repetition index", 0)),
                opt("error", spec::string("why it failed to apply or revert")),
                opt("recovery_unbounded", boolean("never recovered within the run (recovery_s is null)")),
                opt("ready_unbounded", boolean("never ready again within the run (ready_s is null)")),
                opt("baseline", object("the pre-fault band recovery is judged against",
                                       {req("ratio", number("success ratio before the fault, percent")),
                                        req("p99_ms", number("p99 before the fault, ms"))}))});
    auto audit = nullable(object(
        "the data audit",
        {req("acked", integer("ops acknowledged", 0)),
         req("present", integer("acknowledged ops found", 0)),
         req("lost", integer("acknowledged ops absent", 0)),
         req("duplicates", integer("ops stored twice", 0)),
         req("in_doubt", integer("sent, never acknowledged", 0)),
         req("order_violations", integer("out of stream order", 0)),
         req("diverged", integer("counters or views off", 0)),
         req("lost_ids", array("first 100 lost op ids", spec::string("id"))),
         opt("source", enumeration("how data was read", {"api", "sql"})),
         opt("ops", integer("ops the clients created", 0)),
         opt("convergence",
             spec::string("\"judged\", or \"not judged: …\" when no op wrote a key and no subscriber kept a view")),
         opt("in_doubt_present", integer("in-doubt ops the server stored anyway (not a loss)", 0)),
         opt("rejected", integer("ops definitively refused (queued conflicts, per-op errors)", 0)),
         opt("rejected_present", integer("refused ops the server stored anyway", 0)),
         opt("unsent", integer("ops that never left the client", 0)),
         opt("unsent_present", integer("unsent ops the server has anyway", 0)),
         opt("unknown", integer("stored changes no client created", 0)),
         opt("diverged_views", integer("subscriber views that differ from the records", 0)),
         opt("lost_oldest_age_us",
             nullable(integer("RPO as an age: run end minus the oldest lost op's creation, µs", 0))),
         opt("duplicate_ids", array("first 100 duplicated op ids", spec::string("id"))),
         opt("diverged_keys", array("first 100 diverged keys (stream/key)", spec::string("stream/key"))),
         opt("diverged_view_ids",
             array("first 100 diverged views (subscriber/stream)", spec::string("subscriber/stream"))),
         opt("mismatched",
             integer("acknowledged ops stored with another stream, seq, kind, key, delta or payload than sent", 0)),
         opt("mismatched_ids",
             array("first 100 mismatched ops with the first field that differs",
                   object("one op",
                          {req("id", spec::string("op id")),
                           req("field", enumeration("the field", {"stream", "seq", "kind", "key", "delta", "payload"})),
                           req("sent", any("what the client sent (null: a payload known by its digest only)")),
                           req("stored", any("what the server stored (an excerpt when long)"))}))),
         opt("phantoms",
             integer("stored values no client wrote: changes of unknown ids and records no sent value explains", 0)),
         opt("phantom_ids", array("first 100 stored change ids no client created", spec::string("id"))),
         opt("phantom_keys", array("first 100 records no client wrote (stream/key)", spec::string("stream/key"))),
         opt("fanout_mismatched",
             integer("fanout.mismatched: delivered changes unlike the stored change at their cursor, "
                     "and cursors received with two different changes (present when some subscriber received a change)",
                     0)),
         opt("fanout_mismatched_ids",
             array("first 100 mismatched deliveries (stream@cursor)", spec::string("stream@cursor"))),
         opt("inflight", array("per fault: ops in flight when it was applied",
                               object("one fault", {req("name", spec::string("fault name")),
                                                    req("ops", integer("ops in flight", 0))})))}));
    auto generator = object(
        "the generator's own health",
        {req("cpu", number("CPU share of one core used by syncstorm, 0..N")),
         req("lag_p99", nullable(number("generator.lag p99, ms"))),
         req("saturated", boolean("latency verdicts are inconclusive")), opt("reason", spec::string("why saturated")),
         opt("threads", integer("worker threads", 1)), opt("late", integer("arrivals sent late (> 1 ms)", 0))});
    auto metric = any("name -> {unit, count, ok, errors, min, mean, p50, p90, p99, p99_9, p99_99, max}");
    return object(
        "report.json (DESIGN §9)",
        {req("schema_version", integer("format version", 1)),
         req("syncstorm_version", spec::string("version")),
         req("seed", integer("seed", 0)),
         req("scenario", any("the scenario as run (${env:} unresolved)")),
         opt("time_scale", number("--time-scale")),
         req("started_at", spec::string("UTC ISO 8601")),
         req("ended_at", spec::string("UTC ISO 8601")),
         opt("duration_s", number("run length")),
         req("outcome", enumeration("outcome", {"pass", "fail", "inconclusive", "aborted", "error"})),
         req("exit_code", integer("process exit code", 0, 5)),
         opt("reason", spec::string("why error, aborted or inconclusive")),
         req("verdicts", array("per rule", verdict)),
         req("metrics", metric),
         opt("series",
             any("per-second series per timed metric: name -> [[t_s, count, errors, p50_ms, p99_ms, max_ms], ...]")),
         opt("gauges",
             any("per-second series per gauge (queue.depth, ws.connected, ...): name -> [[t_s, value at the end of the second], ...]")),
         req("faults", array("per fault occurrence", fault)),
         req("audit", audit),
         req("generator", generator),
         opt("events", array("lab and run events", any("an event"))),
         opt("run_dir", spec::string("run directory")),
         opt("errors", any("error buckets -> count")),
         opt("capture",
             object(
                 "the wire capture (capture/)",
                 {req("interfaces",
                      array(
                          "per interface",
                          any("name, filter, link_type, packets, bytes, tcp, classified, before_start, "
                              "flows_untracked, kernel {received, dropped, if_dropped}, files [{path, packets, bytes}], warning, error"))),
                  req("packets", integer("packets captured (and written, with pcap)", 0)),
                  req("dropped", integer("packets the kernel ring dropped (pcap_stats ps_drop)", 0)),
                  req("if_dropped", integer("packets the interfaces dropped (ps_ifdrop; informational)", 0)),
                  req("files", array("pcap files written", spec::string("a path"))),
                  req("pcap", boolean("pcap files were written")), req("snaplen", integer("bytes kept per packet", 0)),
                  req("ring_bytes", integer("kernel ring per interface", 0)),
                  req("max_file_bytes", integer("pcap rotation size", 0)),
                  req("resolution_ms", integer("step of the wire series", 1)),
                  req("endpoints", any("direction -> the server endpoints it was classified by")),
                  req("complete", boolean("nothing was dropped and no capture thread failed"))})),
         opt("ws_drops",
             object("established WebSockets lost, attributed to faults by the server each named (fanout loads)",
                    {req("total", integer("connections lost", 0)),
                     req("faulted", integer("on a server a fault had down or cut at the time", 0)),
                     req("bystanders", integer("on a server no fault touched at the time", 0)),
                     req("unattributed", integer("on a server that did not name itself", 0))})),
         opt("safety",
             object(
                 "the operator's allowlist in force: what faults and capture could touch beyond the run's own parts",
                 {req("allow",
                      any("kind (pids, pidfiles, containers, docker_hosts, contexts, namespaces, paths, interfaces) -> [glob, ...]")),
                  req("max_fault_targets", integer("targets one fault occurrence may hit outside the lab", 1)),
                  req("sources",
                      array("where it came from: flags, $SYNCSTORM_ALLOW_*, file PATH", spec::string("a source"))),
                  req("narrowed_by_scenario", boolean("the scenario's safety keys narrowed it"))}))});
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
