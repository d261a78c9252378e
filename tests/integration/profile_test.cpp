// The terminal model against a second, differently shaped sync API served by the test itself
// (Python's standard library): other paths and method, an envelope {"device", "mutations"},
// per-op results "applied" / "duplicate" / "stale" / "rejected", a per-stream changes feed with
// another cursor name. The API drops the reply of every 5th push after applying it (503), so
// the retried ops come back as "duplicate" and must count as acked; it refuses every op with
// seq 5 ("rejected"); terminals of one store share one set key, so stale sets happen. This is
// the worked example of docs/profiles.md.
#include "loadgen/terminal_model.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <map>
#include <mutex>

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace syncstorm::loadgen;
namespace t = syncstorm::test;

const char* const server_py = R"PY(
import sys, json, threading, http.server, socketserver
from urllib.parse import urlparse, parse_qs
lock = threading.Lock()
seen = {}        # uid -> stored mutation
feed = []        # stored mutations in order, with "pos"
versions = {}    # (store, field) -> (version, data)
stats = {"pushes": 0, "dropped_replies": 0, "duplicates": 0, "stale": 0, "rejected": 0}
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, code, obj):
        b = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(n))
        if urlparse(self.path).path != "/api/sync" or self.headers.get("X-Api-Key") != "k-123":
            return self.reply(404, {"error": "no"})
        results = []
        with lock:
            stats["pushes"] += 1
            for m in body["mutations"]:
                uid = m["uid"]
                if uid in seen:
                    stats["duplicates"] += 1
                    results.append({"uid": uid, "outcome": "duplicate"}); continue
                if m["n"] == 5:
                    stats["rejected"] += 1
                    results.append({"uid": uid, "outcome": "rejected", "why": "policy"}); continue
                if m["type"] == "set":
                    k = (m["store"], m["field"])
                    ver, data = versions.get(k, (0, None))
                    if m.get("if_version", 0) != ver:
                        stats["stale"] += 1
                        results.append({"uid": uid, "outcome": "stale", "field": m["field"],
                                        "current": {"version": ver, "data": data}}); continue
                    versions[k] = (ver + 1, m.get("data"))
                rec = dict(m); rec["pos"] = len(feed) + 1; rec["device"] = body["device"]
                feed.append(rec); seen[uid] = rec
                results.append({"uid": uid, "outcome": "applied"})
            # Every 5th push arms a drop; the next push whose ops were all applied loses its
            # reply (a push with stale or rejected results is answered: those are not stored,
            # so a retry would meet them again and the counts would not line up).
            if stats["pushes"] % 5 == 0: stats["armed"] = 1
            drop = stats.get("armed", 0) == 1 and all(r["outcome"] == "applied" for r in results)
            if drop: stats["dropped_replies"] += 1; stats["armed"] = 0
        if drop:
            return self.reply(503, {"error": "reply lost"})
        self.reply(200, {"results": results})
    def do_GET(self):
        u = urlparse(self.path); q = parse_qs(u.query)
        if u.path == "/api/stats":
            with lock: return self.reply(200, stats)
        if u.path != "/api/feed":
            return self.reply(404, {"error": "no"})
        store = q.get("store", [None])[0]; since = int(q.get("since", ["0"])[0]); mx = int(q.get("max", ["100"])[0])
        with lock:
            items = [r for r in feed if r["pos"] > since and r["store"] == store][:mx]
        self.reply(200, {"items": items, "since": str(items[-1]["pos"]) if items else str(since)})
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
)PY";

const char* const profile_json = R"({
  "push": {"path": "/api/sync", "method": "PUT",
           "body": {"device": "{{client}}", "mutations": "{{ops}}"},
           "op": {"uid": "{{id}}", "store": "{{stream}}", "n": "{{seq}}", "type": "{{kind}}",
                  "field": "{{key}}", "by": "{{delta}}", "if_version": "{{base_version}}", "data": "{{value}}"},
           "ack": {"results": "/results", "id": "/uid", "status": "/outcome",
                   "ok": ["applied", "duplicate"], "conflict": ["stale"]},
           "conflicts": {"id": "/uid", "key": "/field", "version": "/current/version", "value": "/current/data"}},
  "changes": {"path": "/api/feed", "feed": "per_stream", "stream_param": "store", "cursor_param": "since",
              "limit_param": "max", "list": "/items", "next": "/since", "id": "/uid", "stream": "/store",
              "seq": "/n", "cursor": "/pos", "kind": "/type", "key": "/field", "delta": "/by", "value": "/data"}
})";

struct api_server {
  explicit api_server(const t::temp_dir& d) : port(t::free_port()) {
    t::write_file(d.path() / "api.py", server_py);
    proc = std::make_unique<t::child>("exec python3 " + (d.path() / "api.py").string() + " " + std::to_string(port));
    if (!t::wait_port(port)) throw std::runtime_error("the test's sync API did not start");
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port); }
  int port;
  std::unique_ptr<t::child> proc;
};

// A blocking GET through curl-free means: python's urllib is the client here too.
json get_json(const std::string& url) {
  auto r = t::run(
      "python3 -c 'import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=10).read().decode())' '" +
      url + "'");
  return json::parse(r.out);
}

struct outcome {
  syncstorm::metrics_shard metrics;
  std::vector<syncstorm::audit_op> ops;
};

outcome run_against(const api_server& api, const t::temp_dir& d, conflict_policy policy) {
  terminal_config c;
  c.name = "other";
  c.url = api.url();
  c.profile = parse_profile(json::parse(profile_json));
  c.headers = {{"X-Api-Key", "k-123"}};
  c.stores = 2;
  c.terminals_per_store = 2;
  c.phases = {phase_spec{"steady", 4'000'000, 20.0, std::nullopt}};
  c.pct_append = 40;
  c.pct_add = 20;
  c.pct_set = 40;
  c.keys = 1;  // the two terminals of a store write one value: stale sets
  c.batch = {4, 50'000};
  c.timeout_us = 2'000'000;
  c.retry = {20'000, 200'000, 0, 1'000'000};
  c.conflict = policy;
  c.drain_us = 10'000'000;
  c.journal_dir = (d.path() / "journals").string();
  c.run_tag = policy == conflict_policy::lww ? "lww" : "queue";
  auto model = make_terminal_model(c);
  const auto start = run_clock::now();
  worker_pool pool(2, start);
  pool.start({model.get()});
  pool.run_until(start + 4s);
  model->stop();
  outcome o;
  o.metrics = pool.stop(12s);
  model->collect(o.ops);
  return o;
}

std::uint64_t count(const syncstorm::metrics_shard& m, const std::string& n) {
  const auto* x = m.find(n);
  return x ? x->count() : 0;
}

TEST(profile, a_second_api_shape_acks_duplicates_conflicts_and_rejections) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) SYNCSTORM_SKIP_OR_FAIL("python3 not found");
  t::temp_dir d;
  api_server api(d);
  auto o = run_against(api, d, conflict_policy::lww);
  const json stats = get_json(api.url() + "/api/stats");
  std::cout << "server " << stats.dump() << " | ops " << o.ops.size() << " conflicts "
            << count(o.metrics, "conflicts@other") << " status errors " << count(o.metrics, "push.errors.status@other")
            << "\n";
  ASSERT_GE(o.ops.size(), 70u);

  // Replies lost after the server applied the push: counted as status errors, the retry got
  // "duplicate" for those ops, and that counts as acked.
  EXPECT_GT(stats["dropped_replies"].get<int>(), 0);
  EXPECT_GT(stats["duplicates"].get<int>(), 0);
  EXPECT_EQ(count(o.metrics, "push.errors.status@other"), stats["dropped_replies"].get<std::uint64_t>());
  // Stale sets: lww rebased them on the version in the result and they went through.
  EXPECT_GT(stats["stale"].get<int>(), 0);
  EXPECT_EQ(count(o.metrics, "conflicts@other"), stats["stale"].get<std::uint64_t>());

  std::size_t acked = 0, rejected = 0;
  for (const auto& op : o.ops) {
    if (op.seq == 5) {
      EXPECT_EQ(op.state, syncstorm::audit_op_state::rejected) << op.id;
      ++rejected;
    } else {
      EXPECT_EQ(op.state, syncstorm::audit_op_state::acked) << op.id;
      acked += op.state == syncstorm::audit_op_state::acked;
    }
  }
  EXPECT_EQ(rejected, 4u);  // one per terminal
  EXPECT_EQ(count(o.metrics, "push.rejected@other"), 4u);
  const auto* fate = o.metrics.find("availability.ops@other");
  ASSERT_NE(fate, nullptr);
  EXPECT_EQ(fate->ok_count(), acked);
  EXPECT_EQ(fate->error_count(), rejected);

  // The per-stream feed, read through the same profile: every acked op stored exactly once.
  const sync_profile p = parse_profile(json::parse(profile_json));
  std::map<std::string, int> stored;
  for (const std::string s : {"store-0", "store-1"}) {
    std::string cursor;
    for (int page = 0; page < 100; ++page) {
      auto r = t::run(
          "python3 -c 'import sys,urllib.request;sys.stdout.write(urllib.request.urlopen(sys.argv[1],timeout=10).read().decode())' '" +
          api.url() + changes_target(p, &s, cursor, 25) + "'");
      auto pg = parse_changes(p, r.out);
      ASSERT_FALSE(pg.malformed) << pg.reason;
      if (pg.changes.empty()) break;
      for (auto& c : pg.changes) {
        EXPECT_EQ(c.stream, s);
        ++stored[c.id];
      }
      cursor = pg.next;
    }
  }
  for (const auto& op : o.ops)
    if (op.state == syncstorm::audit_op_state::acked) {
      EXPECT_EQ(stored[op.id], 1) << op.id;
    }
  EXPECT_EQ(stored.size(), acked);
}

TEST(profile, the_queue_policy_keeps_stale_sets_aside) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0) SYNCSTORM_SKIP_OR_FAIL("python3 not found");
  t::temp_dir d;
  api_server api(d);
  auto o = run_against(api, d, conflict_policy::queue);
  const json stats = get_json(api.url() + "/api/stats");
  std::size_t kept = 0;
  for (const auto& op : o.ops)
    if (op.seq != 5 && op.state == syncstorm::audit_op_state::rejected) {
      EXPECT_EQ(op.kind, 's') << op.id;
      ++kept;
    }
  std::cout << "stale " << stats["stale"] << " kept aside " << kept << "\n";
  EXPECT_GT(kept, 0u);
  // Never retried: one conflict per op kept aside, and the server saw each stale set once.
  EXPECT_EQ(count(o.metrics, "conflicts@other"), kept);
  EXPECT_EQ(stats["stale"].get<std::size_t>(), kept);
}

}  // namespace
