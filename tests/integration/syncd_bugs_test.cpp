// Each syncd bug mode (DESIGN §3) produces exactly the defect it names, and the correct server
// does not: these are what syncstorm's detectors are tested against. One PostgreSQL for the
// binary, a fresh database and a fresh syncd per test.
#include "tests/integration/syncd_support.hpp"

#include <algorithm>
#include <map>
#include <set>

using namespace syncd_test;

namespace {

class syncd_bugs : public syncd_suite {};

json appends(const std::string& prefix, const std::string& stream, int n, int first = 1) {
  json ops = json::array();
  for (int i = first; i < first + n; ++i) ops.push_back(op_append(prefix + std::to_string(i), stream, i));
  return ops;
}

std::string quoted_ids(const json& ops) {
  std::string s;
  for (const auto& op : ops) s += (s.empty() ? "'" : ",'") + op["id"].get<std::string>() + "'";
  return s;
}

std::vector<std::int64_t> cseqs_of(const std::vector<json>& frames) {
  std::vector<std::int64_t> v;
  for (const auto& f : frames) v.push_back(f["cseq"].get<std::int64_t>());
  return v;
}

}  // namespace

TEST_F(syncd_bugs, ack_before_commit_loses_the_batch_when_killed_after_the_ack) {
  auto db = fresh_db();
  {
    // Correct server: acked means committed, a kill right after the ack loses nothing.
    syncd_process good(db.dsn, "good");
    ASSERT_TRUE(good.wait_ready());
    json ops = appends("g", "s", 5);
    ASSERT_EQ(http_post(good.port(), "/v1/push", push_body(ops)).status, 200);
    good.kill9();
    EXPECT_EQ(pg().psql("SELECT count(*) FROM syncd_changes WHERE id IN (" + quoted_ids(ops) + ")", db.name), "5");
  }
  syncd_process bad(db.dsn, "bad", {"--bug", "ack-before-commit"});
  ASSERT_TRUE(bad.wait_ready());
  json ops = appends("b", "s", 5);
  const auto t0 = std::chrono::steady_clock::now();
  auto r = http_post(bad.port(), "/v1/push", push_body(ops));
  bad.kill9();  // well inside the 500 ms before the commit
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body_json()["acked"].size(), 5u);
  ASSERT_LT(took, 400ms) << "the kill came too late to prove anything";
  std::this_thread::sleep_for(700ms);
  EXPECT_EQ(pg().psql("SELECT count(*) FROM syncd_changes WHERE id IN (" + quoted_ids(ops) + ")", db.name), "0");

  // Without a kill the late commit does land, about 500 ms after the ack.
  syncd_process late(db.dsn, "late", {"--bug", "ack-before-commit"});
  ASSERT_TRUE(late.wait_ready());
  json ops2 = appends("l", "s", 3);
  ASSERT_EQ(http_post(late.port(), "/v1/push", push_body(ops2)).status, 200);
  EXPECT_EQ(pg().psql("SELECT count(*) FROM syncd_changes WHERE id IN (" + quoted_ids(ops2) + ")", db.name), "0");
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(pg().psql("SELECT count(*) FROM syncd_changes WHERE id IN (" + quoted_ids(ops2) + ")", db.name), "3");
  EXPECT_EQ(late.terminate(), 0);
}

TEST_F(syncd_bugs, drop_every_acks_but_never_stores_and_logs_exactly_the_dropped_ids) {
  auto db = fresh_db();
  const auto bug_log = test_root() / "dropped.log";
  syncd_process s(db.dsn, "drop", {"--bug", "drop-every=3", "--bug-log", bug_log.string()});
  ASSERT_TRUE(s.wait_ready());
  std::set<std::string> pushed;
  for (int b = 0; b < 3; ++b) {
    json ops = appends("d" + std::to_string(b) + "-", "s", 10);
    ops.push_back(op_add("d" + std::to_string(b) + "-add", "s", 11, "stock", 1));
    auto r = http_post(s.port(), "/v1/push", push_body(ops));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.body_json()["acked"].size(), ops.size());  // every op acked, dropped or not
    for (const auto& op : ops) pushed.insert(op["id"].get<std::string>());
  }
  std::set<std::string> present;
  for (const auto& c : all_changes(s.port(), "s")) present.insert(c["id"].get<std::string>());
  std::set<std::string> absent;
  std::set_difference(pushed.begin(), pushed.end(), present.begin(), present.end(),
                      std::inserter(absent, absent.end()));

  std::set<std::string> logged;
  std::ifstream in(bug_log);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) logged.insert(line);
  EXPECT_EQ(absent.size(), 11u);  // 33 ops, every third
  EXPECT_EQ(logged, absent);
  // A dropped add did not count either.
  auto rec = http_get(s.port(), "/v1/records?stream=s").body_json();
  std::int64_t adds_present = 0;
  for (int b = 0; b < 3; ++b) adds_present += present.count("d" + std::to_string(b) + "-add");
  ASSERT_EQ(rec["records"].size(), adds_present ? 1u : 0u);
  if (adds_present) {
    EXPECT_EQ(rec["records"][0]["value"], adds_present);
  }
}

TEST_F(syncd_bugs, dup_every_stores_every_nth_op_twice) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "dup", {"--bug", "dup-every=4"});
  ASSERT_TRUE(s.wait_ready());
  json ops = appends("u", "s", 20);
  auto r = http_post(s.port(), "/v1/push", push_body(ops));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body_json()["acked"].size(), 20u);
  std::map<std::string, int> count;
  auto changes = all_changes(s.port(), "s");
  for (const auto& c : changes) ++count[c["id"].get<std::string>()];
  EXPECT_EQ(changes.size(), 25u);
  for (int i = 1; i <= 20; ++i) EXPECT_EQ(count["u" + std::to_string(i)], i % 4 == 0 ? 2 : 1) << i;
  // Both copies carry their own cseq, still gap-free.
  for (std::size_t i = 0; i < changes.size(); ++i) EXPECT_EQ(changes[i]["cseq"], static_cast<int>(i + 1));
}

TEST_F(syncd_bugs, dup_apply_adds_a_retried_delta_again) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "dupapply", {"--bug", "dup-apply"});
  ASSERT_TRUE(s.wait_ready());
  json add = json::array({op_add("x1", "s", 1, "stock", 5)});
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(add)).status, 200);
  auto r = http_post(s.port(), "/v1/push", push_body(add));  // the client's retry
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.body_json()["acked"], json::array({"x1"}));
  auto rec = http_get(s.port(), "/v1/records?stream=s").body_json();
  ASSERT_EQ(rec["records"].size(), 1u);
  EXPECT_EQ(rec["records"][0]["value"], 10);         // acked deltas sum to 5: diverged
  EXPECT_EQ(all_changes(s.port(), "s").size(), 1u);  // stored once: not a duplicate
  // Only adds: a retried append or set changes nothing.
  json app = json::array({op_append("y1", "s", 2)});
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(app)).status, 200);
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(app)).status, 200);
  EXPECT_EQ(all_changes(s.port(), "s").size(), 2u);
}

TEST_F(syncd_bugs, slow_ack_replies_late_after_the_commit) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "slow", {"--bug", "slow-ack=400"});
  ASSERT_TRUE(s.wait_ready());
  const auto t0 = std::chrono::steady_clock::now();
  http_reply r;
  std::thread pusher([&] { r = http_post(s.port(), "/v1/push", push_body(appends("w", "s", 2))); });
  // While the ack is held back, the data is already committed.
  std::string visible = "0";
  for (int i = 0; i < 30 && visible == "0"; ++i) {
    std::this_thread::sleep_for(10ms);
    visible = pg().psql("SELECT count(*) FROM syncd_changes", db.name);
  }
  const auto seen_at = std::chrono::steady_clock::now() - t0;
  pusher.join();
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(visible, "2");
  EXPECT_LT(seen_at, 350ms);
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 3000ms);
}

TEST_F(syncd_bugs, fanout_skip_every_leaves_out_every_nth_frame) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "skip", {"--bug", "fanout-skip-every=3"});
  ASSERT_TRUE(s.wait_ready());
  ws_client sub(s.port(), "/v1/ws?streams=f&after=0");
  ASSERT_TRUE(sub.connected()) << sub.error();
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(appends("f", "f", 12))).status, 200);
  auto frames = sub.collect(12, 1500ms);
  EXPECT_EQ(cseqs_of(frames), (std::vector<std::int64_t>{1, 2, 4, 5, 7, 8, 10, 11}));
  // The changes themselves are all stored: only the fanout skipped.
  EXPECT_EQ(all_changes(s.port(), "f").size(), 12u);
}

TEST_F(syncd_bugs, fanout_reorder_swaps_adjacent_frames) {
  auto db = fresh_db();
  syncd_process s(db.dsn, "reorder", {"--bug", "fanout-reorder"});
  ASSERT_TRUE(s.wait_ready());
  ws_client sub(s.port(), "/v1/ws?streams=r&after=0");
  ASSERT_TRUE(sub.connected()) << sub.error();
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(appends("r", "r", 6))).status, 200);
  auto frames = sub.collect(6);
  EXPECT_EQ(cseqs_of(frames), (std::vector<std::int64_t>{2, 1, 4, 3, 6, 5}));
  // A frame with no successor is not lost, only late.
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(appends("r", "r", 1, 7))).status, 200);
  frames = sub.collect(1);
  EXPECT_EQ(cseqs_of(frames), (std::vector<std::int64_t>{7}));
}

TEST_F(syncd_bugs, correct_fanout_is_complete_and_ordered) {
  // The contrast for the two fanout bugs: same traffic, no bug, every frame in order.
  auto db = fresh_db();
  syncd_process s(db.dsn, "good");
  ASSERT_TRUE(s.wait_ready());
  ws_client sub(s.port(), "/v1/ws?streams=r&after=0");
  ASSERT_TRUE(sub.connected()) << sub.error();
  ASSERT_EQ(http_post(s.port(), "/v1/push", push_body(appends("r", "r", 12))).status, 200);
  auto frames = sub.collect(12);
  EXPECT_EQ(cseqs_of(frames), (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}));
}
