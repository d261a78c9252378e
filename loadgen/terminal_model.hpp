// The `terminal` load model (DESIGN §5): POS lanes, `stores × terminals_per_store` terminals, a
// store being a stream ("store-<i>"). Each terminal writes every transaction (one op: append,
// add or set, by the mix) to its checksummed journal first (journal.hpp), queues it, and a
// batcher pushes the queue to the sync API over the terminal's own keep-alive connection with a
// per-request timeout, exponential backoff with full jitter, a retry limit after which the
// batch is parked, and a circuit breaker (terminal_logic.hpp). Sync is continuous (the batcher
// decides) or periodic (every `every`, the whole queue in batches of max_ops). Conflicts on `set`
// follow the policy: lww rebases on the server's version and retries; queue keeps the op aside
// (state rejected, counted in `conflicts`, never retried).
//
// Scenario keys (load entry; terminal_config_from maps them):
//   stores, terminals_per_store, rate (per terminal), ops {append, add, set: percent, sum 100;
//   default 70/20/10}, keys (per store; default 8: add ops use "c0".."c<k-1>", set ops
//   "v0".."v<k-1>", so counters and values never share a record), batch {max_ops 50, max_wait
//   100ms}, timeout 5s, retry {base 100ms, max 10s, limit 8 (0: never park), park_for 30s},
//   breaker {threshold 5, open_for 5s, half_open_probes 1}, sync {mode continuous|periodic,
//   every 60s}, conflict lww|queue (lww), journal {fsync always|batch|never (batch), dir (the
//   run directory's journals/)}, drain (30s: how long stop() keeps pushing what is queued).
//   target: endpoints.http (or the lab), headers (`${env:NAME}` resolved in memory only), tls,
//   profile (sync_protocol.hpp).
// Rates: the load entry's `rate` is per terminal. A phase's `rate`/`to` is the TOTAL rate of the
// load entry (all terminals together), so phases read like the http model's; a phase without
// either runs at rate × terminals. Arrivals follow the plan on the run clock (open model,
// arrivals.hpp): each worker takes its terminals' share of the total and deals its arrivals
// round-robin over them.
//
// Op ids: "<run tag>-<load>-s<store>-t<terminal>-<seq>", seq from 1 per terminal. The seq counter is
// treated like a device's persistent counter: a crash does not reset it, so ids stay unique
// even when a corrupt journal lost its tail. `add` deltas are integers in -3..+3 (never 0);
// `set` values are {"by": client, "seq": seq} with base_version = the version the terminal
// expects the key to have after its own earlier sets on it (0 at first; each set it creates
// counts one; a conflict or its own acked set teaches it). lww rebases the sets of one reply on
// one key in their order, each on the one before.
//
// Journal semantics (journal.hpp): ops are appended before they are queued (local.write: the
// append, with the fsync under `always`); under `batch` the journal is fsynced once before each
// push (local.fsync). crash(i): the terminal drops its memory (queue, breaker, backoff, known
// versions, its connection; a push in flight is abandoned) and replays its journal; a corrupt
// journal is counted (journal.corrupt, event journal_corrupt) and cut to its good prefix; the
// pending ops of the good prefix are pushed again (op ids are idempotent, so the server's view
// comes back in its acks: ops it has are acked again, the rest are stored). Ops whose records
// were past the corruption are unknown to the terminal from then on: they keep their audit state
// (in_doubt if ever sent, else unsent). journal_corrupt(i, bytes): flips `bytes` bytes at a
// seeded offset in terminal i's journal, then the terminal verifies it at once; on a detection
// it counts it and rewrites a good journal from its memory (every op still queued), losing
// nothing.
//
// Metrics (the worker's shard; each as "<metric>@<load name>", the pool adds the plain name):
//   local.write          journal append of one op (ok=false on an I/O error)
//   local.fsync          `batch` policy: the fsync before a push
//   push.latency         each push attempt, send → reply (ok=false on any failure)
//   push.e2e             per op: created → acked
//   push.requests        one count per attempt; push.errors.<bucket> per failure: connect, read,
//                        write, status (non-2xx: 503, 507, ...), timeout, protocol (not HTTP, or
//                        a reply the profile cannot read)
//   availability.attempts one per attempt, ok = succeeded
//   availability.ops     one per op when its fate is final: ok = acked; a rejected op (queue
//                        conflict, per-op error) and, at the end of the drain, every op not acked
//                        count as not ok
//   conflicts            one per conflict reply (lww retries count again)
//   push.rejected        ops a per-op result refused
//   push.parked          batches parked after the retry limit
//   breaker.open         openings of a terminal's breaker
//   journal.corrupt      corruptions detected
//   queue.depth (gauge)  ops held locally, not yet acked nor rejected, summed over the worker's
//                        terminals; set every 100 ms
//   generator.lag        (plain name, like the http model) arrival issued − intended
// Events (config.on_event, called on a worker thread; it must be thread-safe): breaker_open,
// breaker_half_open, breaker_closed, batch_parked, journal_corrupt, client_crash; fields hold
// "load", "terminal" and "at_s" (run seconds) plus details. Header values are never logged.
//
// The online gate (the `offline` model is this model with an offline plan, offline_model.hpp):
// while a terminal's window is open it keeps journaling and queueing but never touches the
// network; its connection is dropped (a push in flight is cut: its ops stay queued, in doubt,
// counted in offline.cut, not as a failed attempt). When the window ends it reconnects at once
// (backoff and parking forgotten, as a device told the network is back) and drains. stop()
// ends every window: the drain runs online. Extra metrics when a plan is set:
//   offline.resume_time  per reconnect with a backlog: reconnect → first ack
//   offline.drain_time   per reconnect with a backlog: reconnect → every op created before the
//                        reconnect acked or rejected; ok=false (the time so far) when the client
//                        went offline again or the drain ended first
//   offline.peak_queue   per reconnect: ops held at reconnect (value = count)
//   offline.cut          pushes cut by a window opening
// Events client_offline / client_online carry "window_start_s"/"window_end_s" (the plan) and,
// for client_online, "queued" and "reason" ("window_end" or "stop").
//
// Threading: the model object is shared by the workers; terminal i lives on worker i % W and is
// touched only on that worker's thread. crash() and journal_corrupt() may be called from any
// thread (they post to the owning worker); collect() only after the pool stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/audit.hpp"
#include "loadgen/arrivals.hpp"
#include "loadgen/http_model.hpp"
#include "loadgen/journal.hpp"
#include "loadgen/offline_logic.hpp"
#include "loadgen/sync_protocol.hpp"
#include "loadgen/terminal_logic.hpp"
#include "loadgen/workers.hpp"

namespace syncstorm::loadgen {

// Called on a worker thread with an event name and its fields (no secrets in them).
using model_event_fn = std::function<void(const std::string& event, const nlohmann::json& fields)>;

struct terminal_config {
  std::string name;                                          // the load entry's name
  std::string url;                                           // the sync API's base URL, http(s)://host:port[/prefix]
  std::vector<std::pair<std::string, std::string>> headers;  // resolved in memory; never logged
  tls_spec tls;
  sync_profile profile;
  std::size_t stores = 1, terminals_per_store = 1;
  std::vector<phase_spec> phases;  // TOTAL rates of the load entry
  int pct_append = 70, pct_add = 20, pct_set = 10;
  std::size_t keys = 8;
  batch_policy batch;
  std::int64_t timeout_us = 5'000'000;
  retry_policy retry;
  breaker_policy breaker;
  bool periodic = false;
  std::int64_t every_us = 60'000'000;
  conflict_policy conflict = conflict_policy::lww;
  fsync_policy fsync = fsync_policy::batch;
  std::string journal_dir = "journals";
  std::string journal_dir_setting;  // journal.dir as written (may hold ${env:}); empty: run_dir/journals
  std::int64_t drain_us = 30'000'000;
  std::string run_tag = "run";  // op id prefix: unique per run
  std::string stream_prefix = "store-";
  // Non-empty: terminal i is named "<client_prefix><i>" (journal "<name>-<client>.journal")
  // instead of "s<store>-t<terminal>"; the offline model names its clients "c<i>".
  std::string client_prefix;
  // The online gate (the `offline` model): each terminal's offline windows on the run clock,
  // from this plan over the phases' total length (offline_logic.hpp). Empty: always online.
  offline_plan offline;
  std::uint64_t seed = 1;
  model_event_fn on_event;  // optional
};

// Maps a validated load entry onto a config. `fields` is the entry (load_entry::fields),
// `phases` its phases (a phase with neither rate nor to runs at rate × terminals), `target` the
// scenario's target, `base_url` the API's base (the lab's lb_http_url, or empty for
// target.endpoints.http), `run_dir` the run directory (journals go to run_dir/journals unless
// journal.dir is set), `run_tag` a random tag of this run, `resolve` whether to resolve
// `${env:}` (false for a dry run). Throws std::invalid_argument with one line naming
// `where` + the key ("scenario.load[0].ops: found percentages summing to 90; expected 100").
// terminal_config_from is terminal_settings_from (the entry's own keys, with defaults, parsed once
// when the scenario loads) followed by bind_terminal (the target, the run and the environment).
terminal_config terminal_config_from(const std::string& name, const nlohmann::json& fields,
                                     const std::vector<phase_spec>& phases, const nlohmann::json& target,
                                     const std::string& base_url, const std::string& run_dir,
                                     const std::string& run_tag, std::uint64_t seed, bool resolve,
                                     const std::string& where = "scenario.load[]");
terminal_config terminal_settings_from(const std::string& name, const nlohmann::json& fields,
                                       const std::vector<phase_spec>& phases, const std::string& where);
void bind_terminal(terminal_config& c, const nlohmann::json& target, const std::string& base_url,
                   const std::string& run_dir, const std::string& run_tag, std::uint64_t seed, bool resolve);

class terminal_model final : public load_model {
 public:
  struct impl;
  explicit terminal_model(std::unique_ptr<impl> p);
  ~terminal_model() override;

  std::string_view name() const override;
  void start(worker& w) override;
  // No new transactions; terminals keep pushing what is queued until empty or `drain` passed.
  void stop() override;

  std::size_t terminals() const noexcept;
  // "s<store>-t<terminal>" of terminal i (0-based, store-major), or "<client_prefix><i>".
  std::string client(std::size_t terminal) const;
  std::string journal_path(std::size_t terminal) const;
  // Terminal i's offline windows (normalized; empty without an offline plan).
  std::vector<offline_window> offline_windows(std::size_t terminal) const;

  // Fault hooks (client_crash, journal_corrupt); any thread, asynchronous (posted to the
  // terminal's worker); ignored before start() and once the pool stopped. Out-of-range
  // terminals are ignored.
  void crash(std::size_t terminal);
  void journal_corrupt(std::size_t terminal, std::size_t bytes);
  // True once every crash/journal_corrupt request for `terminal` was carried out on its worker
  // (the journal replayed, or the damage detected and the journal rewritten). Any thread.
  bool settled(std::size_t terminal) const;

  // Every op every terminal created, with its fate (audit.hpp). After the pool stopped.
  void collect(std::vector<audit_op>& out) const;

 private:
  std::unique_ptr<impl> impl_;
};

// Validates the config (URL, counts, mix, policies, TLS files, profile) and creates the
// journal directory; throws std::invalid_argument naming the field. Host names are resolved in
// start().
std::unique_ptr<terminal_model> make_terminal_model(const terminal_config& config);

}  // namespace syncstorm::loadgen
