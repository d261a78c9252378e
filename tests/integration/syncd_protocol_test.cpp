// syncd against a real PostgreSQL 15 (issue 4 acceptance): push → ack → stored, idempotent op
// ids, `add` sums, stale `set` conflicts; changes paging and records; WebSocket replay then
// live; two pods on one database pushed concurrently give a subscriber a gap-free ordered cseq
// sequence; /readyz follows the database; storage full is 507; SIGTERM drains and closes
// WebSockets with 1012. One PostgreSQL for the binary, a fresh database per test.
#include "tests/integration/syncd_support.hpp"

#include <algorithm>
#include <atomic>
#include <set>

using namespace syncd_test;

namespace {

class syncd_protocol : public syncd_suite {};

std::vector<std::string> ids_of(const std::vector<json>& changes) {
  std::vector<std::string> ids;
  for (const auto& c : changes) ids.push_back(c["id"].get<std::string>());
  return ids;
}

json record_of(const json& records, const std::string& key) {
  for (const auto& r : records["records"])
    if (r["key"] == key) return r;
  return nullptr;
}

}  // namespace

TEST_F(syncd_protocol, push_ack_store_idempotent_add_sums_stale_set_conflicts) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "p1");
  ASSERT_TRUE(s.wait_ready());
  EXPECT_EQ(http_get(s.port(), "/healthz").status, 200);

  json ops = json::array({op_append("a1", "s1", 1), op_add("k1", "s1", 2, "stock", 5),
                          op_add("k2", "s1", 3, "stock", 7), op_set("p1", "s1", 4, "price", 0, "1.99")});
  auto r = http_post(s.port(), "/v1/push", push_body(ops));
  ASSERT_EQ(r.status, 200) << r.error << r.body;
  json ack = r.body_json();
  EXPECT_EQ(ack["acked"], json::array({"a1", "k1", "k2", "p1"}));
  EXPECT_TRUE(ack["conflicts"].empty());
  EXPECT_EQ(ack["cseq"], 4);

  // Stored: one change per op, in order, with the fields a subscriber needs.
  auto changes = all_changes(s.port(), "s1");
  ASSERT_EQ(changes.size(), 4u);
  EXPECT_EQ(ids_of(changes), (std::vector<std::string>{"a1", "k1", "k2", "p1"}));
  for (std::size_t i = 0; i < changes.size(); ++i) {
    EXPECT_EQ(changes[i]["cseq"], static_cast<int>(i + 1));
    for (const char* f :
         {"cseq", "id", "stream", "seq", "t_us", "commit_us", "kind", "key", "value", "delta", "version"})
      EXPECT_TRUE(changes[i].contains(f)) << f << " missing in " << changes[i].dump();
  }
  EXPECT_EQ(changes[0]["value"], json({{"n", 1}}));
  EXPECT_EQ(changes[1]["delta"], 5);
  EXPECT_EQ(changes[2]["value"], 12);  // the counter after this add
  EXPECT_EQ(changes[3]["value"], "1.99");
  EXPECT_GE(changes[0]["commit_us"].get<std::int64_t>(), changes[0]["t_us"].get<std::int64_t>());

  auto rec = http_get(s.port(), "/v1/records?stream=s1").body_json();
  EXPECT_EQ(record_of(rec, "stock")["value"], 12);
  EXPECT_EQ(record_of(rec, "stock")["version"], 2);
  EXPECT_EQ(record_of(rec, "price")["value"], "1.99");
  EXPECT_EQ(record_of(rec, "price")["version"], 1);

  // The same ids again: acked again, nothing changes (no new change, counter not re-added).
  r = http_post(s.port(), "/v1/push", push_body(ops));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body_json()["acked"], json::array({"a1", "k1", "k2", "p1"}));
  EXPECT_EQ(r.body_json()["cseq"], 4);
  EXPECT_EQ(all_changes(s.port(), "s1").size(), 4u);
  EXPECT_EQ(http_get(s.port(), "/v1/records?stream=s1").body_json(), rec);

  // add ops sum across pushes (negative deltas too); a known id inside a new batch is skipped.
  r = http_post(s.port(), "/v1/push",
                push_body(json::array({op_add("k3", "s1", 5, "stock", -2), op_add("k1", "s1", 2, "stock", 5)})));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body_json()["acked"], json::array({"k3", "k1"}));
  rec = http_get(s.port(), "/v1/records?stream=s1").body_json();
  EXPECT_EQ(record_of(rec, "stock")["value"], 10);

  // A stale set is a conflict: returned with the current version and value, not applied.
  r = http_post(s.port(), "/v1/push", push_body(json::array({op_set("p2", "s1", 6, "price", 0, "2.49")})));
  ASSERT_EQ(r.status, 200) << r.body;
  json res = r.body_json();
  EXPECT_TRUE(res["acked"].empty());
  ASSERT_EQ(res["conflicts"].size(), 1u);
  EXPECT_EQ(res["conflicts"][0]["id"], "p2");
  EXPECT_EQ(res["conflicts"][0]["key"], "price");
  EXPECT_EQ(res["conflicts"][0]["version"], 1);
  EXPECT_EQ(res["conflicts"][0]["value"], "1.99");
  rec = http_get(s.port(), "/v1/records?stream=s1").body_json();
  EXPECT_EQ(record_of(rec, "price")["value"], "1.99");
  EXPECT_EQ(record_of(rec, "price")["version"], 1);
  // Rebased on the returned version, the same id applies.
  r = http_post(s.port(), "/v1/push", push_body(json::array({op_set("p2", "s1", 6, "price", 1, "2.49")})));
  EXPECT_EQ(r.body_json()["acked"], json::array({"p2"}));
  rec = http_get(s.port(), "/v1/records?stream=s1").body_json();
  EXPECT_EQ(record_of(rec, "price")["value"], "2.49");
  EXPECT_EQ(record_of(rec, "price")["version"], 2);

  // Paging: the global feed with after/limit → next.
  auto page = http_get(s.port(), "/v1/changes?after=0&limit=2").body_json();
  ASSERT_EQ(page["changes"].size(), 2u);
  EXPECT_EQ(page["next"], 2);
  page = http_get(s.port(), "/v1/changes?after=2&limit=100").body_json();
  ASSERT_EQ(page["changes"].size(), 4u);  // k2, p1, k3, p2
  EXPECT_EQ(page["changes"][0]["cseq"], 3);
  EXPECT_EQ(page["next"], 6);
  page = http_get(s.port(), "/v1/changes?after=6").body_json();
  EXPECT_TRUE(page["changes"].empty());
  EXPECT_EQ(page["next"], 6);
  EXPECT_TRUE(all_changes(s.port(), "other").empty());

  // Malformed requests: 400 with a reason naming the field.
  r = http_post(s.port(), "/v1/push", "{not json");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body_json()["error"].get<std::string>().find("body"), std::string::npos);
  r = http_post(s.port(), "/v1/push",
                push_body(json::array({{{"id", "x"}, {"stream", "s1"}, {"seq", 1}, {"t_us", 1}, {"kind", "mul"}}})));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body_json()["error"], "ops[0].kind: found \"mul\"; expected one of append, add, set");
  r = http_post(s.port(), "/v1/push",
                push_body(json::array(
                    {op_append("ok", "s1", 1),
                     {{"id", "y"}, {"stream", "s1"}, {"seq", 1}, {"t_us", 1}, {"kind", "add"}, {"key", "k"}}})));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body_json()["error"].get<std::string>().find("ops[1].delta"), std::string::npos);
  // PostgreSQL refuses what JSON allows (a NUL in a jsonb string): still the client's fault, 400.
  r = http_post(s.port(), "/v1/push",
                push_body(json::array({op_set("z1", "s1", 9, "note", 0, std::string("a\0b", 3))})));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(http_get(s.port(), "/v1/changes?after=x").status, 400);
  EXPECT_EQ(http_get(s.port(), "/v1/records").status, 400);
  EXPECT_EQ(http_get(s.port(), "/v1/nothing").status, 404);
  EXPECT_EQ(http_get(s.port(), "/v1/push").status, 405);
  // Nothing of the rejected batches was stored.
  EXPECT_EQ(all_changes(s.port()).size(), 6u);
  EXPECT_EQ(s.terminate(), 0);
}

TEST_F(syncd_protocol, websocket_replays_after_cseq_then_goes_live_and_metrics_count) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "p1");
  ASSERT_TRUE(s.wait_ready());
  json ops = json::array();
  for (int i = 1; i <= 10; ++i) ops.push_back(op_append("a" + std::to_string(i), i % 2 ? "a" : "b", i));
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(ops)).status, 200);

  // after=4 on stream a: the a-changes with cseq 5, 7, 9 are replayed, then live ones follow.
  ws_client sub(s.port(), "/v1/ws?streams=a&after=4");
  ASSERT_TRUE(sub.connected()) << sub.error();
  ws_client all(s.port(), "/v1/ws?streams=a,b&after=0");
  ASSERT_TRUE(all.connected()) << all.error();
  // A subscriber without after= is live from what the pod's fanout listener has published when
  // it subscribes (ws_session.cpp: hub.subscribe's live_from), which may lag the commit: wait
  // until the listener has read the first push (cseq 10), or a loaded machine hands `live` the
  // first push's b-changes (CI of fc66cb2: cseq 2 where 12 was expected).
  bool caught_up = false;
  for (int i = 0; i < 100 && !caught_up; ++i) {
    caught_up = http_get(s.port(), "/metrics").body.find("syncd_fanout_last_cseq{pod=\"p1\"} 10") != std::string::npos;
    if (!caught_up) std::this_thread::sleep_for(50ms);
  }
  ASSERT_TRUE(caught_up) << "the fanout listener did not read the first push within 5 s";
  ws_client live(s.port(), "/v1/ws?streams=b");
  ASSERT_TRUE(live.connected()) << live.error();
  auto replayed = sub.collect(3);
  ASSERT_EQ(replayed.size(), 3u);
  EXPECT_EQ(replayed[0]["cseq"], 5);
  EXPECT_EQ(replayed[1]["cseq"], 7);
  EXPECT_EQ(replayed[2]["cseq"], 9);
  EXPECT_EQ(replayed[0]["id"], "a5");
  EXPECT_EQ(replayed[0]["stream"], "a");
  EXPECT_EQ(replayed[0]["kind"], "append");
  // The subscriber without after= may have registered a moment after the push; give it time.
  std::this_thread::sleep_for(200ms);

  json more = json::array({op_append("a11", "a", 11), op_add("k", "b", 12, "stock", 3), op_append("a13", "a", 13)});
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(more)).status, 200);
  auto next = sub.collect(2);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0]["cseq"], 11);
  EXPECT_EQ(next[1]["cseq"], 13);
  EXPECT_FALSE(sub.next(300ms).has_value());  // nothing else: no duplicate of the replay

  auto everything = all.collect(13);
  ASSERT_EQ(everything.size(), 13u);
  for (int i = 0; i < 13; ++i) EXPECT_EQ(everything[i]["cseq"], i + 1);
  EXPECT_EQ(everything[11]["kind"], "add");
  EXPECT_EQ(everything[11]["delta"], 3);
  EXPECT_EQ(everything[11]["value"], 3);
  EXPECT_EQ(everything[11]["version"], 1);

  auto live_frames = live.collect(1);
  ASSERT_EQ(live_frames.size(), 1u);  // only what was committed after it subscribed
  EXPECT_EQ(live_frames[0]["cseq"], 12);

  // A long history replays completely and in order (paged, with backpressure).
  for (int b = 0; b < 5; ++b) {
    json batch = json::array();
    for (int i = 0; i < 1000; ++i) batch.push_back(op_append("big" + std::to_string(b * 1000 + i), "big", i));
    ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(batch)).status, 200);
  }
  {
    ws_client big(s.port(), "/v1/ws?streams=big&after=0");
    ASSERT_TRUE(big.connected()) << big.error();
    auto frames = big.collect(5000);
    ASSERT_EQ(frames.size(), 5000u);
    for (std::size_t i = 0; i < frames.size(); ++i) ASSERT_EQ(frames[i]["id"], "big" + std::to_string(i)) << "at " << i;
  }

  // A subscription without streams is refused before the upgrade.
  ws_client bad(s.port(), "/v1/ws?after=0");
  EXPECT_FALSE(bad.connected());

  // Counters move when a write completes (a moment after the client has the frame) and when the
  // server notices a closed subscriber.
  http_reply m;
  for (int i = 0; i < 20; ++i) {
    m = http_get(s.port(), "/metrics");
    if (m.body.find("syncd_fanout_sent_total{pod=\"p1\"} 5019") != std::string::npos &&
        m.body.find("syncd_ws_subscribers{pod=\"p1\"} 3") != std::string::npos)
      break;
    std::this_thread::sleep_for(100ms);
  }
  ASSERT_EQ(m.status, 200);
  for (const char* needle :
       {"syncd_http_requests_total{pod=\"p1\",route=\"push\",code=\"200\"} 7",
        "syncd_push_ops_total{pod=\"p1\",result=\"acked\"} 5013", "syncd_ws_subscribers{pod=\"p1\"} 3",
        "syncd_fanout_sent_total{pod=\"p1\"} 5019", "syncd_db_errors_total{pod=\"p1\",class=\"connection\"}",
        "syncd_db_ready{pod=\"p1\"} 1", "syncd_push_duration_seconds_count{pod=\"p1\"} 7"})
    EXPECT_NE(m.body.find(needle), std::string::npos) << needle << "\n" << m.body;
}

TEST_F(syncd_protocol, two_pods_concurrent_pushes_reach_a_subscriber_gap_free_in_cseq_order) {
  auto db = fresh_db();
  syncd_process p1(db.dsn, "p1");
  syncd_process p2(db.dsn, "p2");
  ASSERT_TRUE(p1.wait_ready());
  ASSERT_TRUE(p2.wait_ready());
  ws_client sub(p1.port(), "/v1/ws?streams=s0,s1,s2,s3&after=0");
  ASSERT_TRUE(sub.connected()) << sub.error();

  constexpr int writers = 4, batches = 40, per_batch = 10;
  constexpr std::size_t total = writers * batches * per_batch;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < writers; ++w)
    threads.emplace_back([&, w] {
      const std::uint16_t port = w % 2 ? p2.port() : p1.port();
      for (int b = 0; b < batches; ++b) {
        json ops = json::array();
        for (int i = 0; i < per_batch; ++i) {
          const int n = b * per_batch + i;
          const std::string stream = "s" + std::to_string((w + n) % 4);
          const std::string id = "w" + std::to_string(w) + "-" + std::to_string(n);
          ops.push_back(n % 3 ? op_append(id, stream, n) : op_add(id, stream, n, "stock", 1));
        }
        auto r = http_post(port, "/v1/push", push_body(ops, "w" + std::to_string(w)));
        if (r.status != 200 || r.body_json()["acked"].size() != per_batch) ++failures;
      }
    });
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures.load(), 0);

  auto frames = sub.collect(total, 5s, 60s);
  ASSERT_EQ(frames.size(), total);
  std::set<std::string> ids;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    ASSERT_EQ(frames[i]["cseq"].get<std::int64_t>(), static_cast<std::int64_t>(i + 1)) << "gap or reorder at " << i;
    ids.insert(frames[i]["id"].get<std::string>());
  }
  EXPECT_EQ(ids.size(), total);
  EXPECT_FALSE(sub.next(500ms).has_value());
  // Both pods committed: the pod column is not in the frame, so check the database.
  EXPECT_EQ(pg().psql("SELECT count(DISTINCT pod) FROM syncd_changes", db.name), "2");
  // The counters agree on both pods.
  auto r1 = http_get(p1.port(), "/v1/records?stream=s0").body_json();
  auto r2 = http_get(p2.port(), "/v1/records?stream=s0").body_json();
  EXPECT_EQ(r1["records"], r2["records"]);
}

TEST_F(syncd_protocol, readyz_fails_while_the_database_is_down_and_recovers) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "p1");
  ASSERT_TRUE(s.wait_ready());
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(json::array({op_append("before", "s", 1)}))).status, 200);

  pg().stop(lab::stop_mode::fast);
  int ready_status = 200;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (ready_status == 200 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(100ms);
    ready_status = http_get(s.port(), "/readyz").status;
  }
  EXPECT_EQ(ready_status, 503);
  EXPECT_EQ(http_get(s.port(), "/healthz").status, 200);  // alive, just not ready
  auto r = http_post(s.port(), "/v1/push", push_body(json::array({op_append("during", "s", 2)})));
  EXPECT_EQ(r.status, 503) << r.body;

  pg().start();
  EXPECT_TRUE(s.wait_ready(20s));
  r = http_post(s.port(), "/v1/push", push_body(json::array({op_append("after", "s", 3)})));
  EXPECT_EQ(r.status, 200) << r.body;
  auto ids = ids_of(all_changes(s.port(), "s"));
  EXPECT_EQ(ids, (std::vector<std::string>{"before", "after"}));
  EXPECT_NE(s.log().find("\"event\":\"db_unreachable\""), std::string::npos);
}

TEST_F(syncd_protocol, storage_full_is_507_and_nothing_is_stored) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "p1");
  ASSERT_TRUE(s.wait_ready());
  // PostgreSQL's own disk-full error class (53100), raised where a full disk would fail.
  pg().psql(
      "CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE EXCEPTION 'could not extend file: No space left on device' USING ERRCODE = 'disk_full'; END $$; "
      "CREATE TRIGGER disk_full BEFORE INSERT ON syncd_changes FOR EACH ROW EXECUTE FUNCTION disk_full()",
      db.name);
  auto r =
      http_post(s.port(), "/v1/push", push_body(json::array({op_append("x1", "s", 1), op_add("x2", "s", 2, "k", 1)})));
  EXPECT_EQ(r.status, 507) << r.body;
  EXPECT_NE(r.body.find("No space left"), std::string::npos) << r.body;
  pg().psql("DROP TRIGGER disk_full ON syncd_changes", db.name);
  // The failed transaction left nothing behind: the same ids now apply once.
  r = http_post(s.port(), "/v1/push", push_body(json::array({op_append("x1", "s", 1), op_add("x2", "s", 2, "k", 1)})));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body_json()["cseq"], 2);
  EXPECT_EQ(record_of(http_get(s.port(), "/v1/records?stream=s").body_json(), "k")["value"], 1);
}

TEST_F(syncd_protocol, sigterm_drains_in_flight_pushes_and_closes_websockets_with_1012) {
  auto db = fresh_db();
  // slow-ack keeps a push in flight across the signal.
  syncd_process s(db.dsn, "p1", {"--bug", "slow-ack=1500"});
  ASSERT_TRUE(s.wait_ready());
  ws_client sub(s.port(), "/v1/ws?streams=s&after=0");
  ASSERT_TRUE(sub.connected()) << sub.error();

  http_reply in_flight;
  std::thread pusher(
      [&] { in_flight = http_post(s.port(), "/v1/push", push_body(json::array({op_append("d1", "s", 1)}))); });
  std::this_thread::sleep_for(500ms);
  ASSERT_EQ(::kill(s.pid(), SIGTERM), 0);

  auto code = sub.wait_closed(10s);
  ASSERT_TRUE(code.has_value()) << sub.error();
  EXPECT_EQ(*code, 1012);
  pusher.join();
  EXPECT_EQ(in_flight.status, 200) << in_flight.error;
  EXPECT_EQ(s.terminate(20s), 0);  // already exiting: this only waits
  std::string log = s.log();
  EXPECT_NE(log.find("\"event\":\"shutdown_begin\""), std::string::npos) << log;
  EXPECT_NE(log.find("\"sessions_left\":0"), std::string::npos) << log;
  // The in-flight push was committed before the ack.
  EXPECT_EQ(pg().psql("SELECT count(*) FROM syncd_changes WHERE id = 'd1'", db.name), "1");
}
