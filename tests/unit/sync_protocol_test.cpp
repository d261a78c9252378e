// The sync protocol client: v1 rendering and parsing, a differently shaped profile, per-op
// results with a named error counted as acked, malformed replies, profile errors.
#include "core/json_limits.hpp"
#include "loadgen/sync_protocol.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

using namespace syncstorm::loadgen;
using json = nlohmann::json;

namespace {

std::vector<sync_op> three_ops() {
  sync_op a{"r-s0-t0-1", "store-0", 1, 100, op_kind::append, "", 0, 0, json{{"total_cents", 250}}};
  sync_op d{"r-s0-t0-2", "store-0", 2, 200, op_kind::add, "c1", -3, 0, nullptr};
  sync_op s{"r-s0-t0-3", "store-0", 3, 300, op_kind::set, "v2", 0, 4, json{{"by", "s0-t0"}}};
  return {a, d, s};
}

}  // namespace

TEST(sync_protocol, v1_push_body) {
  const sync_profile p;
  const json body = json::parse(render_push(p, "s0-t0", three_ops()));
  EXPECT_EQ(body["client"], "s0-t0");
  ASSERT_EQ(body["ops"].size(), 3u);
  const json& a = body["ops"][0];
  EXPECT_EQ(a["id"], "r-s0-t0-1");
  EXPECT_EQ(a["kind"], "append");
  EXPECT_EQ(a["seq"], 1);
  EXPECT_FALSE(a.contains("key"));
  EXPECT_FALSE(a.contains("delta"));
  EXPECT_FALSE(a.contains("base_version"));
  EXPECT_EQ(a["body"]["total_cents"], 250);
  const json& d = body["ops"][1];
  EXPECT_EQ(d["key"], "c1");
  EXPECT_TRUE(d["delta"].is_number_integer());
  EXPECT_EQ(d["delta"], -3);
  EXPECT_FALSE(d.contains("body"));
  const json& s = body["ops"][2];
  EXPECT_EQ(s["base_version"], 4);
  EXPECT_EQ(s["body"]["by"], "s0-t0");
}

TEST(sync_protocol, v1_push_reply) {
  const sync_profile p;
  auto r = parse_push_reply(
      p, R"({"acked":["a","b"],"conflicts":[{"id":"c","key":"v1","version":7,"value":{"x":1}}],"cseq":12})");
  EXPECT_FALSE(r.malformed) << r.reason;
  EXPECT_EQ(r.acked, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(r.conflicts.size(), 1u);
  EXPECT_EQ(r.conflicts[0].id, "c");
  EXPECT_EQ(r.conflicts[0].key, "v1");
  EXPECT_EQ(r.conflicts[0].version, 7);
  EXPECT_EQ(r.conflicts[0].value["x"], 1);
}

// Issue #23: a reply nested 200,000 deep once overflowed the stack (dump() in an error line).
// Every parser refuses it as a counted protocol error, saying why, in a line of printable text.
TEST(sync_protocol, deeply_nested_replies_are_refused_not_crashed_on) {
  const sync_profile p;
  const std::string deep = std::string(200000, '[') + std::string(200000, ']');
  auto r = parse_push_reply(p, "{\"acked\": " + deep + "}");
  EXPECT_TRUE(r.malformed);
  EXPECT_NE(r.reason.find("push reply nests deeper than 64 levels"), std::string::npos) << r.reason.substr(0, 200);
  EXPECT_LT(r.reason.size(), 200u);
  EXPECT_TRUE(parse_changes(p, "{\"changes\": " + deep + "}").malformed);
  EXPECT_TRUE(parse_records(p, deep).malformed);
  std::string reason;
  EXPECT_FALSE(parse_change_frame(p, deep, reason));
  EXPECT_NE(reason.find("change frame nests deeper"), std::string::npos);
  // 64 levels are fine (a reply is judged on its content, not refused for its depth).
  std::string ok = "{\"acked\": [\"a\"], \"x\": " + std::string(62, '[') + std::string(62, ']') + "}";
  auto fine = parse_push_reply(p, ok);
  EXPECT_FALSE(fine.malformed) << fine.reason;
  // Not JSON, with bytes that are not UTF-8: the reason stays printable ASCII.
  auto bad = parse_push_reply(p, std::string("\xff\xfe\x01garbage", 10));
  EXPECT_TRUE(bad.malformed);
  for (char c : bad.reason) EXPECT_TRUE(c >= 0x20 && c < 0x7f) << static_cast<int>(static_cast<unsigned char>(c));
}

TEST(sync_protocol, malformed_replies_are_counted_not_thrown) {
  const sync_profile p;
  for (const char* body :
       {"", "not json", "{\"acked\": 3}", "{\"conflicts\": []}", "{\"acked\": [1.5]}",
        "{\"acked\": [], \"conflicts\": 7}", "{\"acked\": [], \"conflicts\": [{\"id\": \"x\"}]}", "[1,2]"}) {
    auto r = parse_push_reply(p, body);
    EXPECT_TRUE(r.malformed) << body;
    EXPECT_FALSE(r.reason.empty()) << body;
    EXPECT_TRUE(r.acked.empty());
  }
  auto c = parse_changes(p, "{\"changes\": {}}");
  EXPECT_TRUE(c.malformed);
  EXPECT_NE(c.reason.find("/changes"), std::string::npos) << c.reason;
  EXPECT_TRUE(parse_changes(p, "{\"changes\": [{\"cseq\": 1}]}").malformed);  // no id
  EXPECT_TRUE(parse_records(p, "{}").malformed);
}

TEST(sync_protocol, v1_changes_and_records) {
  const sync_profile p;
  auto c = parse_changes(
      p,
      R"({"changes":[{"cseq":5,"id":"a","stream":"store-0","seq":1,"t_us":1,"commit_us":99,"kind":"add","key":"c1","delta":-3,"value":4}],"next":5})");
  ASSERT_FALSE(c.malformed) << c.reason;
  ASSERT_EQ(c.changes.size(), 1u);
  EXPECT_EQ(c.changes[0].cursor, "5");
  EXPECT_EQ(c.changes[0].delta, -3);
  EXPECT_EQ(c.changes[0].commit_us, 99);
  EXPECT_EQ(c.next, "5");
  const std::string stream = "store 0";
  EXPECT_EQ(changes_target(p, nullptr, "0", 500), "/v1/changes?after=0&limit=500");
  EXPECT_EQ(changes_target(p, &stream, "7", 10), "/v1/changes?stream=store%200&after=7&limit=10");
  EXPECT_EQ(records_target(p, "store-1"), "/v1/records?stream=store-1");
  EXPECT_EQ(ws_target(p, {"a", "b"}, "9"), "/v1/ws?streams=a,b&after=9");
  auto rec = parse_records(p, R"({"records":[{"key":"v1","value":{"x":1},"version":3}]})");
  ASSERT_FALSE(rec.malformed);
  ASSERT_EQ(rec.records.size(), 1u);
  EXPECT_EQ(rec.records[0].version, 3);
  std::string why;
  auto f = parse_change_frame(p, R"({"cseq":"8","id":"z","stream":"s"})", why);
  ASSERT_TRUE(f);
  EXPECT_EQ(f->cursor, "8");
  EXPECT_FALSE(parse_change_frame(p, "{", why));
  EXPECT_FALSE(why.empty());
}

// The second API of docs/profiles.md (and tests/integration/profile_test.cpp).
const char* const other_profile = R"({
  "push": {"path": "/api/sync", "method": "PUT",
           "body": {"device": "{{client}}", "mutations": "{{ops}}"},
           "op": {"uid": "{{id}}", "store": "{{stream}}", "n": "{{seq}}", "type": "{{kind}}",
                  "field": "{{key}}", "by": "{{delta}}", "if_version": "{{base_version}}", "data": "{{value}}",
                  "ref": "{{client}}/{{seq}}"},
           "ack": {"results": "/results", "id": "/uid", "status": "/outcome", "ok": ["applied", "duplicate"],
                   "conflict": ["stale"]},
           "conflicts": {"id": "/uid", "key": "/field", "version": "/current/version", "value": "/current/data"}},
  "changes": {"path": "/api/feed", "feed": "per_stream", "stream_param": "store", "cursor_param": "since",
              "limit_param": "max", "list": "/items", "next": "/since", "id": "/uid", "stream": "/store",
              "seq": "/n", "cursor": "/pos", "kind": "/type", "key": "/field", "delta": "/by", "value": "/data"}
})";

TEST(sync_protocol, a_differently_shaped_profile) {
  const sync_profile p = parse_profile(json::parse(other_profile));
  EXPECT_EQ(p.push_path, "/api/sync");
  EXPECT_EQ(p.push_method, "PUT");
  EXPECT_TRUE(p.ack_by_results);
  EXPECT_TRUE(p.changes_per_stream);
  const json body = json::parse(render_push(p, "s1-t2", three_ops()));
  EXPECT_EQ(body["device"], "s1-t2");
  ASSERT_EQ(body["mutations"].size(), 3u);
  EXPECT_EQ(body["mutations"][0]["uid"], "r-s0-t0-1");
  EXPECT_EQ(body["mutations"][0]["ref"], "s1-t2/1");  // spliced into a longer string
  EXPECT_FALSE(body["mutations"][0].contains("field"));
  EXPECT_EQ(body["mutations"][1]["by"], -3);
  EXPECT_EQ(body["mutations"][2]["if_version"], 4);
  EXPECT_FALSE(body["mutations"][2].contains("by"));

  // Per-op results: "duplicate" counts as acked (the id was already stored), "stale" is a
  // conflict with the current version, anything else is rejected.
  auto r = parse_push_reply(p, R"({"results":[
      {"uid":"a","outcome":"applied"}, {"uid":"b","outcome":"duplicate"},
      {"uid":"c","outcome":"stale","field":"v2","current":{"version":9,"data":{"by":"x"}}},
      {"uid":"d","outcome":"rejected","why":"bad"}]})");
  ASSERT_FALSE(r.malformed) << r.reason;
  EXPECT_EQ(r.acked, (std::vector<std::string>{"a", "b"}));
  ASSERT_EQ(r.conflicts.size(), 1u);
  EXPECT_EQ(r.conflicts[0].id, "c");
  EXPECT_EQ(r.conflicts[0].version, 9);
  EXPECT_EQ(r.conflicts[0].key, "v2");
  EXPECT_EQ(r.rejected, std::vector<std::string>{"d"});
  EXPECT_TRUE(parse_push_reply(p, R"({"results":[{"uid":"a"}]})").malformed);
  EXPECT_TRUE(parse_push_reply(p, R"({"acked":["a"]})").malformed);

  const std::string stream = "store-1";
  EXPECT_EQ(changes_target(p, &stream, "", 100), "/api/feed?store=store-1&max=100");
  auto c = parse_changes(p, R"({"items":[{"pos":3,"uid":"a","store":"store-1","n":1,"type":"append"}],"since":"3"})");
  ASSERT_FALSE(c.malformed) << c.reason;
  EXPECT_EQ(c.changes[0].id, "a");
  EXPECT_EQ(c.changes[0].stream, "store-1");
  EXPECT_EQ(c.next, "3");
}

TEST(sync_protocol, profile_errors_name_the_path) {
  auto errs = profile_errors(json::parse(R"({"push": {"ack": {"acked": 3}, "bogus": 1, "op": {"x": "{{nope}}"}},
                                             "changes": {"feed": "sometimes"}})"));
  ASSERT_EQ(errs.size(), 4u);
  auto has = [&](const std::string& s) {
    for (auto& e : errs)
      if (e.find(s) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(has("scenario.target.profile.push.ack.acked: found 3; expected a JSON pointer")) << errs[0];
  EXPECT_TRUE(has("scenario.target.profile.push.bogus: found an unknown key"));
  EXPECT_TRUE(has("scenario.target.profile.push.op.x: found placeholder {{nope}}"));
  EXPECT_TRUE(has("scenario.target.profile.changes.feed: found \"sometimes\""));
  EXPECT_THROW(parse_profile(json::parse(R"({"push": {"path": "nopath"}})")), std::invalid_argument);
  EXPECT_TRUE(profile_errors(nullptr).empty());
  EXPECT_TRUE(profile_errors(json::parse(other_profile)).empty());
}

// --- CouchDB-style APIs (issue #27): the shipped couchdb profile, acks by a boolean or by the
// absence of an error member, fixed query parameters, opaque string cursors, no records.

TEST(sync_protocol, couchdb_profile_by_name) {
  const sync_profile p = parse_profile(json("couchdb"));
  EXPECT_EQ(p.name, "couchdb");
  EXPECT_EQ(profile_label(p), "the couchdb profile");
  ASSERT_EQ(p.kinds.size(), 1u);
  EXPECT_EQ(p.kinds[0], op_kind::append);
  EXPECT_FALSE(p.has_records);
  EXPECT_FALSE(p.has_ws);
  EXPECT_EQ(push_target(p), "/_bulk_docs");
  const auto names = shipped_profile_names();
  EXPECT_NE(std::find(names.begin(), names.end(), "couchdb"), names.end());
  // Every shipped profile parses without a problem.
  for (const auto& n : names) EXPECT_TRUE(profile_errors(json(n)).empty()) << n;
  auto errs = profile_errors(json("couch"));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(errs[0],
            "scenario.target.profile: found \"couch\"; expected an object or the name of a shipped profile (couchdb)");
}

TEST(sync_protocol, couchdb_push_body_is_bulk_docs) {
  const sync_profile p = parse_profile(json("couchdb"));
  sync_op a{"r-s0-t0-1", "store-0", 1, 100, op_kind::append, "", 0, 0, json{{"total_cents", 250}}};
  const json body = json::parse(render_push(p, "s0-t0", {a}));
  ASSERT_TRUE(body["docs"].is_array());
  const json& d = body["docs"][0];
  EXPECT_EQ(d["_id"], "r-s0-t0-1");
  EXPECT_EQ(d["stream"], "store-0");
  EXPECT_EQ(d["client"], "s0-t0");
  EXPECT_EQ(d["seq"], 1);
  EXPECT_EQ(d["value"]["total_cents"], 250);
}

TEST(sync_protocol, couchdb_bulk_docs_reply) {
  const sync_profile p = parse_profile(json("couchdb"));
  // Stored, already stored (an append's conflict means "have it"), refused.
  auto r = parse_push_reply(p, R"([{"ok": true, "id": "a", "rev": "1-x"},
                                   {"id": "b", "error": "conflict", "reason": "Document update conflict"},
                                   {"id": "c", "error": "forbidden", "reason": "no"}])");
  ASSERT_FALSE(r.malformed) << r.reason;
  EXPECT_EQ(r.acked, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.rejected, (std::vector<std::string>{"c"}));
  EXPECT_TRUE(r.conflicts.empty());
  // A reply that is not the per-doc array is a counted protocol error, not a crash.
  EXPECT_TRUE(parse_push_reply(p, R"({"error": "not_found", "reason": "no_db_file"})").malformed);
  EXPECT_TRUE(parse_push_reply(p, R"([{"rev": "1-x"}])").malformed);
  EXPECT_TRUE(parse_push_reply(p, "<html>").malformed);
}

TEST(sync_protocol, ack_by_boolean_flag_and_missing_status) {
  // Flag only: true acks; false falls back to the status.
  const sync_profile p =
      parse_profile(json::parse(R"({"push": {"ack": {"results": "/r", "id": "/id", "ok_flag": "/success",
                                                                 "status": "/why", "conflict": ["stale"]},
                                                       "conflicts": {"version": "/v"}}})"));
  auto r =
      parse_push_reply(p, R"({"r": [{"id": "1", "success": true}, {"id": "2", "success": false, "why": "stale", "v": 3},
                                         {"id": "3", "success": false, "why": "quota"}]})");
  ASSERT_FALSE(r.malformed) << r.reason;
  EXPECT_EQ(r.acked, (std::vector<std::string>{"1"}));
  ASSERT_EQ(r.conflicts.size(), 1u);
  EXPECT_EQ(r.conflicts[0].version, 3);
  EXPECT_EQ(r.rejected, (std::vector<std::string>{"3"}));
  // Without missing_status a result with no status is malformed.
  EXPECT_TRUE(parse_push_reply(p, R"({"r": [{"id": "4"}]})").malformed);
  // A boolean status matched against "ok": [true].
  const sync_profile b =
      parse_profile(json::parse(R"({"push": {"ack": {"results": "", "status": "/done", "ok": [true]}}})"));
  auto rb = parse_push_reply(b, R"([{"id": "x", "done": true}, {"id": "y", "done": false}])");
  EXPECT_EQ(rb.acked, (std::vector<std::string>{"x"}));
  EXPECT_EQ(rb.rejected, (std::vector<std::string>{"y"}));
}

TEST(sync_protocol, fixed_query_parameters_on_every_path) {
  const sync_profile p = parse_profile(json::parse(R"({"push": {"path": "/p", "query": {"w": 2, "batch": "ok"}},
    "changes": {"path": "/c", "query": {"include_docs": "true"}, "cursor_param": "since"},
    "records": {"path": "/r", "query": {"all": true}}, "ws": {"path": "/w", "query": {"v": "1 2"}}})"));
  EXPECT_EQ(push_target(p), "/p?batch=ok&w=2");
  EXPECT_EQ(changes_target(p, nullptr, "0", 10), "/c?include_docs=true&since=0&limit=10");
  EXPECT_EQ(records_target(p, "s"), "/r?all=true&stream=s");
  EXPECT_EQ(ws_target(p, {"a"}, ""), "/w?v=1%202&streams=a");
  auto errs = profile_errors(json::parse(R"({"changes": {"query": ["x"]}})"));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("scenario.target.profile.changes.query: found [\"x\"]; expected an object"), std::string::npos)
      << errs[0];
}

TEST(sync_protocol, opaque_string_cursors) {
  // CouchDB 2+: seq and last_seq are opaque strings; they are kept and sent back as text.
  const sync_profile p = parse_profile(json("couchdb"));
  auto page = parse_changes(p, R"({"results": [
      {"seq": "1-g1AAAAEzeJzLYWBgYMpgTmHgz8tPSTV0MDQy1zMAQsMcoEQiQ1L9____szKYE", "id": "r-s0-t0-1",
       "changes": [{"rev": "1-a"}], "doc": {"_id": "r-s0-t0-1", "stream": "store-0", "seq": 1, "kind": "append"}},
      {"seq": "2-g1AAAAEzeJzLYWBgYMpgTmHgz8tPSTV0MDQy1zMAQsMcoEQiQ1L9____szKYx", "id": "_design/x",
       "changes": [{"rev": "1-b"}], "doc": {"_id": "_design/x"}}],
    "last_seq": "2-g1AAAAEzeJzLYWBgYMpgTmHgz8tPSTV0MDQy1zMAQsMcoEQiQ1L9____szKYx", "pending": 0})");
  ASSERT_FALSE(page.malformed) << page.reason;
  ASSERT_EQ(page.changes.size(), 2u);
  EXPECT_EQ(page.changes[0].id, "r-s0-t0-1");
  EXPECT_EQ(page.changes[0].stream, "store-0");
  EXPECT_EQ(page.changes[0].seq, 1);
  EXPECT_EQ(page.changes[0].cursor.substr(0, 6), "1-g1AA");
  EXPECT_EQ(page.changes[1].stream, "");  // a design document: no stream, filtered out by the audit
  EXPECT_EQ(page.next.substr(0, 2), "2-");
  EXPECT_EQ(changes_target(p, nullptr, page.next, 1000).substr(0, 44), "/_changes?include_docs=true&since=2-g1AAAAEz");
  // pouchdb-server's integer sequences work the same way.
  auto ints = parse_changes(p, R"({"results": [{"seq": 7, "id": "a", "doc": {"stream": "s"}}], "last_seq": 7})");
  ASSERT_FALSE(ints.malformed);
  EXPECT_EQ(ints.next, "7");
}

TEST(sync_protocol, profile_without_records_or_ws) {
  const sync_profile p = parse_profile(json::parse(R"({"records": null, "ws": null, "ops": ["append", "add"]})"));
  EXPECT_FALSE(p.has_records);
  EXPECT_FALSE(p.has_ws);
  EXPECT_EQ(p.kinds, (std::vector<op_kind>{op_kind::append, op_kind::add}));
  auto errs = profile_errors(json::parse(R"({"ops": ["append", "delete"]})"));
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find(
                "scenario.target.profile.ops: found [\"append\",\"delete\"]; expected a non-empty array of op kinds"),
            std::string::npos);
}

// core/json_limits.hpp's line_excerpt, the one line the audit reader makes of what a server sent
// (an error body, a cursor): valid UTF-8 whatever the bytes, cut between characters. A 500 whose
// body held a 0x80 byte once ended a run in std::terminate when report.json was written.
TEST(line_excerpt, keeps_utf8_replaces_the_rest_and_cuts_between_characters) {
  using syncstorm::line_excerpt;
  EXPECT_EQ(line_excerpt("a\tb\r\nc\x7f"
                         "d"),
            "a b  c d");
  EXPECT_EQ(line_excerpt("na\xc3\xafve \xe2\x80\x93 \xe2\x9c\x93 \xf0\x9f\x98\x80"),
            "na\xc3\xafve \xe2\x80\x93 \xe2\x9c\x93 \xf0\x9f\x98\x80");
  EXPECT_EQ(line_excerpt("x\x80y"), "x?y");             // a lone continuation byte
  EXPECT_EQ(line_excerpt("\xc0\xaf"), "??");            // overlong '/'
  EXPECT_EQ(line_excerpt("\xed\xa0\x80"), "???");       // a UTF-16 surrogate
  EXPECT_EQ(line_excerpt("\xf4\x90\x80\x80"), "????");  // past U+10FFFF
  EXPECT_EQ(line_excerpt("ok\xe2\x82"), "ok??");        // cut short at the end
  EXPECT_EQ(line_excerpt("\xff\xfe"
                         "A"),
            "??A");
  // The cut: never inside a character, marked with "…".
  std::string e_acute;
  for (int i = 0; i < 100; ++i) e_acute += "\xc3\xa9";
  const std::string cut = line_excerpt(e_acute, 15);
  EXPECT_EQ(cut, "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xe2\x80\xa6");
  EXPECT_EQ(line_excerpt("abc", 3), "abc");
  EXPECT_EQ(line_excerpt("abcd", 3), "abc\xe2\x80\xa6");
  // Random bytes: always strict-UTF-8 JSON text (the report's writers), one line, bounded.
  std::mt19937 rng(7);
  for (int n = 0; n < 20000; ++n) {
    std::string s(rng() % 64, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);
    const std::string out = line_excerpt(s, 40);
    ASSERT_NO_THROW((void)nlohmann::json(out).dump()) << n;
    ASSERT_EQ(out.find('\n'), std::string::npos);
    ASSERT_LE(out.size(), 43u);
  }
}
