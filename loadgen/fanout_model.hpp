// The `fanout` load model (DESIGN §5): WebSocket subscribers over streams, each change received
// matched to its push. The model pushes its own changes at the phases' rate (POST /v1/push on a
// few keep-alive connections per worker) and keeps, per op, when its ack arrived; every
// subscriber matches the frames it receives against them.
//
// Scenario keys (load entry; fanout_config_from maps them):
//   subscribers, streams (stream i is "<stream_prefix><i>", default prefix "store-", the terminal
//   model's stores, so terminal traffic on those streams arrives too), streams_per_subscriber (1:
//   subscriber i takes streams i, i+1, … mod streams), rate (changes/s pushed by this model; a
//   phase's rate/to overrides it; 0 pushes nothing), connect_rate (new connections per second
//   per process, default 500), reconnect {base 100ms, max 10s} (backoff with full jitter),
//   storm (default false; true: after a drop everyone reconnects at once, without pacing or
//   backoff: a reconnect storm),
//   repair (true: a hole reconnects with after=), gap_grace (1s), drain (5s), timeout (5s: a
//   push; a connect with its WebSocket handshake), idle_timeout (30s: no frame nor pong; the
//   client pings at half of it), views (100: subscribers that keep a materialized view),
//   keys (4), push_connections (4 per worker), max_batch (200), spread_sources (true),
//   server_header ("X-Served-By": the WebSocket handshake reply's header that names the server;
//   syncd sends its pod name, an LB can add its backend's: HAProxy `http-response set-header
//   X-Served-By %s`; "" turns attribution off).
//
// Own ops: on stream s, op seq k (1, 2, …) has id "<run tag>-<load>-<s>-<k>", client
// "<load>-<s>", kind `append` for odd k and `add` (delta 1..3 on key "fanout-c<k/2 mod keys>")
// for even k. A stream's ops are pushed one batch at a time, in seq order, retried until acked
// (or the drain ends), so commit order is seq order and a subscriber sees a hole as a seq jump.
//
// Subscriptions. Before the first connect the model reads each stream's records once (the
// snapshot; protocol v1 gives the commit cursor they are consistent with in the reply's /cseq;
// a profile without it starts at cursor 0 with an empty view, so the first connect replays the
// stream's history). Every subscriber's first connect passes after=<its streams' lowest snapshot
// cursor>, so EVERY own op (all pushed after the snapshot) must reach EVERY subscriber of its
// stream, however late the subscriber connected: the server replays what came before. Later
// connects pass after=<resume cursor> (ws_logic.hpp): reconnects replay what was lost in between.
//
// Metrics (each "<metric>@<load name>"; the pool adds the plain name):
//   fanout.delivery         own op: receipt − the push's ack (this process's clock). A frame may
//                           beat its own ack (the server commits, then answers the push and
//                           notifies subscribers; the frame's path can be shorter than the
//                           reply's): that delivery is ≤ 0, recorded as 0 and counted in
//                           fanout.early. A frame repaired by a replay counts its real delay.
//   fanout.delivery.commit  every fresh frame (own ops and other clients' changes on the
//                           subscribed streams): receipt (our wall clock) − commit_us (the
//                           server's wall clock). On the lab both are this machine's clock; on
//                           remote stacks it includes the clocks' offset (NTP: ~ms); < 0 → 0.
//   fanout.catchup          fresh frames of changes committed (own ops: acked) before the
//                           subscriber first connected: they arrive in its first replay, a wait
//                           that belongs to the ramp; counted, not timed in the two above.
//   fanout.early, fanout.frames (fresh frames), fanout.foreign (of those, other clients'),
//   fanout.duplicates (an own op again on the same connection range), fanout.out_of_order
//   (a cursor lower than the previous frame's on one connection), fanout.gaps (holes open
//   longer than gap_grace), fanout.repaired (own ops first received in a replay),
//   fanout.reconnects (connections after the first, any cause), ws.dropped (established
//   connections lost: the server closed them, a read failed or they went idle; each also kept
//   with its server for collect_drops), fanout.missing (at the end, one
//   count: for every subscriber and each of its streams, the own ops acknowledged to the
//   pusher that the subscriber never received), ws.connected (gauge), ws.connect (connect and
//   handshake time), ws.errors.<bucket> (connect, status: handshake refused, read, timeout,
//   protocol: a frame that does not parse, closed: the server closed), push.latency,
//   push.requests, push.errors.<bucket>.
//
// Stop: no new pushes; pushes in flight finish (retried until acked) and subscribers keep
// reading until every acked op reached them or `drain` passed; then connections close and
// fanout.missing is recorded. The pool's stop grace must exceed `drain` (+1 s).
//
// Sockets: when the WebSocket target is 127.0.0.1, subscriber i binds its socket to
// 127.0.0.(2 + i mod 253) (IP_BIND_ADDRESS_NO_PORT), so each source address gets its own
// ephemeral ports. RLIMIT_NOFILE's soft limit is raised to the hard one in start().
//
// Memory per subscriber (bench/README.md): its bookkeeping (two numbers per stream unless it
// has holes), a WebSocket stream over a plain socket without permessage-deflate, a frame
// buffer that only grows to the largest frame, no timer or strand of its own (one watchdog
// per worker enforces connect deadlines, holes and the drain; sleeps allocate a timer only
// while sleeping); views only for the sampled subscribers.
//
// Threading: the model is shared by the workers; subscriber i and stream s's pusher live on
// workers i % W and s % W. Ack times are atomics written by the pushing worker and read by the
// subscribers' workers. collect(), collect_views() and missing() only after the pool stopped.
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
#include "core/timeline.hpp"
#include "loadgen/arrivals.hpp"
#include "loadgen/http_model.hpp"
#include "loadgen/sync_protocol.hpp"
#include "loadgen/workers.hpp"

namespace syncstorm::loadgen {

struct fanout_config {
  std::string name;                                          // the load entry's name
  std::string http_url;                                      // the sync API's base URL (pushes, records)
  std::string ws_url;                                        // the WebSocket base URL, ws(s)://host:port[/prefix]
  std::vector<std::pair<std::string, std::string>> headers;  // resolved in memory; never logged
  tls_spec tls;
  sync_profile profile;
  std::size_t subscribers = 1, streams = 1, streams_per_subscriber = 1;
  std::vector<phase_spec> phases;  // this model's push rate (total)
  double connect_rate = 500;       // new connections per second (process)
  std::int64_t reconnect_base_us = 100'000, reconnect_max_us = 10'000'000;
  bool storm = false;
  bool repair = true;
  std::int64_t gap_grace_us = 1'000'000;
  std::int64_t drain_us = 5'000'000;
  std::int64_t timeout_us = 5'000'000;
  std::int64_t idle_timeout_us = 30'000'000;
  std::size_t views = 100;
  std::size_t keys = 4;
  std::size_t push_connections = 4;  // per worker
  std::size_t max_batch = 200;
  bool spread_sources = true;
  std::string stream_prefix = "store-";
  std::string server_header = "X-Served-By";
  std::string run_tag = "run";
  std::uint64_t seed = 1;
  // Optional, called on worker threads (thread-safe): `push_error` and `ws_error`, the first
  // three failures of each error bucket per worker, with the reason and a truncated, printable
  // sample of the reply or frame (never the whole of it).
  std::function<void(const std::string& event, const nlohmann::json& fields)> on_event;
};

// Maps a validated load entry onto a config (see the keys above). `base_http_url` and
// `base_ws_url` are the lab's lb_http_url()/lb_ws_url(), or empty for target.endpoints.http/ws
// (ws defaults to the http endpoint with ws:// or wss://). Throws std::invalid_argument with one
// line naming `where` + the key.
fanout_config fanout_config_from(const std::string& name, const nlohmann::json& fields,
                                 const std::vector<phase_spec>& phases, const nlohmann::json& target,
                                 const std::string& base_http_url, const std::string& base_ws_url,
                                 const std::string& run_tag, std::uint64_t seed, bool resolve,
                                 const std::string& where = "scenario.load[]");
// fanout_config_from is these two: the entry's own keys (parsed once when the scenario loads),
// then the target, the run and the environment.
fanout_config fanout_settings_from(const std::string& name, const nlohmann::json& fields,
                                   const std::vector<phase_spec>& phases, const std::string& where);
void bind_fanout(fanout_config& c, const nlohmann::json& target, const std::string& base_http_url,
                 const std::string& base_ws_url, const std::string& run_tag, std::uint64_t seed, bool resolve);

class fanout_model final : public load_model {
 public:
  struct impl;
  explicit fanout_model(std::unique_ptr<impl> p);
  ~fanout_model() override;

  std::string_view name() const override;
  // The first call (controller thread) resolves the hosts, raises RLIMIT_NOFILE and reads the
  // streams' records snapshot (blocking, retried for ~5 s); throws std::runtime_error when the
  // API cannot be read.
  void start(worker& w) override;
  void stop() override;

  // Connections this model holds at its peak: subscribers + push connections per worker.
  std::size_t planned_connections(std::size_t workers) const noexcept;

  // The model's own ops with their fate (audit.hpp), after the pool stopped.
  void collect(std::vector<audit_op>& out) const;
  // The sampled subscribers' views (subscriber "<load>-sub<i>"), after the pool stopped.
  void collect_views(std::vector<audit_view>& out) const;
  // One entry per (stream, cursor) any subscriber received, with the change's digest, and how
  // many cursors were received with two different changes (audit: fanout.mismatched).
  void collect_deliveries(std::vector<audit_delivery>& out, std::uint64_t& disagreements) const;
  // Every established connection lost, with the server its handshake reply named (timeline.hpp
  // attributes them to faults), after the pool stopped.
  void collect_drops(std::vector<ws_drop>& out) const;
  // The streams this model subscribes to (for the audit's read).
  std::vector<std::string> stream_names() const;
  // fanout.missing summed over the workers (also in the metrics), after the pool stopped.
  std::uint64_t missing() const noexcept;

 private:
  std::unique_ptr<impl> impl_;
};

// Validates (URLs, counts, TLS files, profile); throws std::invalid_argument naming the field.
std::unique_ptr<fanout_model> make_fanout_model(const fanout_config& config);

}  // namespace syncstorm::loadgen
