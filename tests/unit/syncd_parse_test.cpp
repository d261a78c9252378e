// Unit tests for syncd's pure parts: push validation and its 400 reasons, query parsing,
// stream names, and the --bug / --listen flags (syncd/protocol, syncd/options; the
// syncstorm_syncd_parse library).
#include "syncd/options.hpp"
#include "syncd/protocol.hpp"

#include <gtest/gtest.h>

using namespace syncstorm::syncd;
using nlohmann::json;

namespace {

std::string push_error(const json& body) {
  push_batch b;
  std::string error;
  EXPECT_FALSE(parse_push(body.dump(), b, error));
  return error;
}

json op(const char* kind) { return {{"id", "o1"}, {"stream", "s"}, {"seq", 1}, {"t_us", 10}, {"kind", kind}}; }

}  // namespace

TEST(syncd_parse, push_accepts_the_three_kinds_and_normalizes) {
  json add = op("add");
  add["key"] = "stock";
  add["delta"] = -3;
  json set = op("set");
  set["id"] = "o2";
  set["key"] = "price";
  set["body"] = {{"v", 1}};
  json app = op("append");
  app["id"] = "o3";
  app["extra"] = "ignored";
  push_batch b;
  std::string error;
  ASSERT_TRUE(parse_push(json{{"client", "c"}, {"ops", {add, set, app}}}.dump(), b, error)) << error;
  EXPECT_EQ(b.client, "c");
  EXPECT_EQ(b.ids, (std::vector<std::string>{"o1", "o2", "o3"}));
  EXPECT_EQ(b.ops[1]["base_version"], 0);  // a set without base_version creates
  EXPECT_FALSE(b.ops[2].contains("extra"));
  auto param = json::parse(db_ops_param(b, {op_action::store, op_action::drop, op_action::dup}));
  EXPECT_FALSE(param[0].contains("action"));
  EXPECT_EQ(param[1]["action"], "d");
  EXPECT_EQ(param[2]["action"], "D");
  EXPECT_EQ(json::parse(ack_all_body(b))["acked"], json({"o1", "o2", "o3"}));
}

TEST(syncd_parse, push_errors_name_the_field_what_was_found_and_what_was_expected) {
  push_batch b;
  std::string error;
  EXPECT_FALSE(parse_push("{nope", b, error));
  EXPECT_EQ(error, "body: found invalid JSON; expected {\"client\": C, \"ops\": [...]}");
  EXPECT_EQ(push_error(json::array()), "body: found []; expected an object {\"client\": C, \"ops\": [...]}");
  EXPECT_EQ(push_error(json{{"client", "c"}}), "ops: found nothing; expected an array of ops");
  EXPECT_EQ(push_error(json{{"ops", {op("mul")}}}), "ops[0].kind: found \"mul\"; expected one of append, add, set");
  json no_key = op("add");
  no_key["delta"] = 1;
  EXPECT_EQ(push_error(json{{"ops", {op("append"), no_key}}}),
            "ops[1].key: found nothing; expected a key for a `add` op");
  json bad_delta = op("add");
  bad_delta["key"] = "k";
  bad_delta["delta"] = "5";
  EXPECT_EQ(push_error(json{{"ops", {bad_delta}}}), "ops[0].delta: found \"5\"; expected a number for an `add` op");
  json bad_base = op("set");
  bad_base["key"] = "k";
  bad_base["base_version"] = -1;
  EXPECT_EQ(push_error(json{{"ops", {bad_base}}}), "ops[0].base_version: found -1; expected an integer >= 0");
  json bad_stream = op("append");
  bad_stream["stream"] = "a,b";
  EXPECT_NE(push_error(json{{"ops", {bad_stream}}}).find("ops[0].stream: found \"a,b\""), std::string::npos);
  json no_id = op("append");
  no_id.erase("id");
  EXPECT_EQ(push_error(json{{"ops", {no_id}}}),
            "ops[0].id: found nothing; expected a string of 1-200 bytes without NUL");
  json nul_key = op("add");
  nul_key["key"] = std::string("a\0b", 3);
  nul_key["delta"] = 1;
  EXPECT_NE(push_error(json{{"ops", {nul_key}}}).find("ops[0].key: found"), std::string::npos);
  json huge_seq = op("append");
  huge_seq["seq"] = std::uint64_t{1} << 63;  // does not fit a bigint
  EXPECT_EQ(push_error(json{{"ops", {huge_seq}}}), "ops[0].seq: found 9223372036854775808; expected an integer >= 0");
  // A reason may cut a UTF-8 sequence; the 400 body is still valid JSON.
  EXPECT_TRUE(json::accept(error_body(std::string("found \"\xc3"))));
  json neg_seq = op("append");
  neg_seq["seq"] = -4;
  EXPECT_EQ(push_error(json{{"ops", {neg_seq}}}), "ops[0].seq: found -4; expected an integer >= 0");
}

TEST(syncd_parse, targets_streams_and_counts) {
  auto t = parse_target("/v1/ws?streams=a%2Cb,c&after=12&flag");
  EXPECT_EQ(t.path, "/v1/ws");
  ASSERT_NE(t.param("streams"), nullptr);
  EXPECT_EQ(*t.param("streams"), "a,b,c");  // decoded before splitting: %2C is a separator too
  EXPECT_EQ(*t.param("after"), "12");
  EXPECT_EQ(*t.param("flag"), "");
  EXPECT_EQ(t.param("none"), nullptr);
  std::vector<std::string> streams;
  std::string error;
  EXPECT_TRUE(parse_stream_list("store-1,store-2,,", streams, error));
  EXPECT_EQ(streams, (std::vector<std::string>{"store-1", "store-2"}));
  EXPECT_FALSE(parse_stream_list("", streams, error));
  EXPECT_FALSE(parse_stream_list("ok,bad\"quote", streams, error));
  EXPECT_FALSE(parse_stream_list("a,b,c", streams, error, 2));
  EXPECT_EQ(parse_count("42"), 42);
  EXPECT_FALSE(parse_count("-1"));
  EXPECT_FALSE(parse_count("4x"));
  EXPECT_FALSE(parse_count(""));
  EXPECT_EQ(pg_text_array({"a", "b c"}), "{\"a\",\"b c\"}");
}

TEST(syncd_parse, bug_modes) {
  bug_modes m;
  std::string error;
  ASSERT_TRUE(parse_bug_modes("drop-every=5,fanout-reorder,slow-ack=250", m, error)) << error;
  EXPECT_EQ(m.drop_every, 5u);
  EXPECT_TRUE(m.fanout_reorder);
  EXPECT_EQ(m.slow_ack_ms, 250u);
  EXPECT_FALSE(m.ack_before_commit);
  EXPECT_EQ(m.describe(), "drop-every=5,slow-ack=250,fanout-reorder");
  ASSERT_TRUE(parse_bug_modes("ack-before-commit,dup-every=2,dup-apply,fanout-skip-every=7", m, error));
  EXPECT_TRUE(m.ack_before_commit && m.dup_apply);
  EXPECT_EQ(m.dup_every, 2u);
  EXPECT_EQ(m.fanout_skip_every, 7u);
  ASSERT_TRUE(parse_bug_modes("fanout-stale-replay", m, error)) << error;
  EXPECT_TRUE(m.fanout_stale_replay);
  EXPECT_EQ(m.describe(), "fanout-stale-replay");
  ASSERT_TRUE(parse_bug_modes("corrupt-every=10", m, error)) << error;
  EXPECT_EQ(m.corrupt_every, 10u);
  EXPECT_TRUE(m.any());
  EXPECT_EQ(m.describe(), "corrupt-every=10");
  EXPECT_FALSE(parse_bug_modes("corrupt-every=0", m, error));
  ASSERT_TRUE(parse_bug_modes("none", m, error));
  EXPECT_FALSE(m.any());
  EXPECT_EQ(m.describe(), "none");
  EXPECT_FALSE(parse_bug_modes("drop-every=0", m, error));
  EXPECT_EQ(error, "--bug: found \"drop-every=0\"; expected drop-every=N with N >= 1");
  EXPECT_FALSE(parse_bug_modes("drop-every", m, error));
  EXPECT_FALSE(parse_bug_modes("dup-apply=3", m, error));
  EXPECT_FALSE(parse_bug_modes("lose-everything", m, error));
  EXPECT_NE(error.find("expected one of ack-before-commit"), std::string::npos);
}

TEST(syncd_parse, listen_addresses) {
  std::string addr, error;
  std::uint16_t port = 0;
  ASSERT_TRUE(parse_listen("127.0.0.2:8081", addr, port, error));
  EXPECT_EQ(addr, "127.0.0.2");
  EXPECT_EQ(port, 8081);
  ASSERT_TRUE(parse_listen(":9000", addr, port, error));
  EXPECT_EQ(addr, "0.0.0.0");
  ASSERT_TRUE(parse_listen("[::1]:9000", addr, port, error));
  EXPECT_EQ(addr, "::1");
  EXPECT_FALSE(parse_listen("localhost", addr, port, error));
  EXPECT_FALSE(parse_listen("127.0.0.1:70000", addr, port, error));
}

// Issue #23: a push nested 200,000 deep once crashed syncd (dump() in its 400 reason). It is a
// 400 whose reason says why, and never repeats the client's value whole.
TEST(syncd_parse, deeply_nested_push_is_a_400_not_a_crash) {
  push_batch b;
  std::string error;
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  EXPECT_FALSE(parse_push("{\"client\": \"c\", \"ops\": " + deep + "}", b, error));
  EXPECT_NE(error.find("nested deeper than 64 levels"), std::string::npos) << error.substr(0, 200);
  EXPECT_FALSE(
      parse_push("{\"client\": \"c\", \"ops\": [" + std::string(60, '[') + std::string(60, ']') + "]}", b, error));
  EXPECT_LT(error.size(), 200u) << error;
}
