// run_audit on synthetic data with known answers: nothing lost, lost ids (exact, in creation
// order, capped at 100, oldest age), duplicates, in-doubt ops stored or not, order violations,
// add/set divergence (and none from stored in-doubt ops), views against records, unknown ids,
// per-fault in-flight ops, to_json's report fields, and 1,000,000 ops.
#include "core/audit.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace syncstorm;
using json = nlohmann::json;

namespace {

audit_op op(std::string id, std::string client, std::string stream, std::int64_t seq, std::int64_t created_us,
            audit_op_state state = audit_op_state::acked) {
  audit_op o;
  o.id = std::move(id);
  o.client = std::move(client);
  o.stream = std::move(stream);
  o.seq = seq;
  o.kind = 'a';
  o.created_us = created_us;
  o.state = state;
  if (state != audit_op_state::unsent) o.first_sent_us = created_us + 10;
  if (state == audit_op_state::acked) o.acked_us = created_us + 100;
  return o;
}

audit_op add_op(std::string id, std::string client, std::string stream, std::int64_t seq, std::string key, double delta,
                std::int64_t created_us, audit_op_state state = audit_op_state::acked) {
  audit_op o = op(std::move(id), std::move(client), std::move(stream), seq, created_us, state);
  o.kind = 'd';
  o.key = std::move(key);
  o.delta = delta;
  return o;
}

audit_change change_of(const audit_op& o, std::int64_t order) {
  audit_change c;
  c.id = o.id;
  c.stream = o.stream;
  c.key = o.key;
  c.kind = o.kind == 'd' ? "add" : o.kind == 's' ? "set" : "append";
  c.seq = o.seq;
  c.order = order;
  c.delta = o.delta;
  c.value = o.value;
  return c;
}

audit_record record(std::string stream, std::string key, json value, std::int64_t version = 1) {
  return {std::move(stream), std::move(key), std::move(value), version};
}

// Every op stored once, in creation order.
audit_input all_stored(std::vector<audit_op> ops) {
  audit_input in;
  in.ops = std::move(ops);
  std::int64_t order = 0;
  for (const auto& o : in.ops) in.changes.push_back(change_of(o, ++order));
  return in;
}

}  // namespace

TEST(audit, nothing_lost_when_every_acked_op_is_stored) {
  std::vector<audit_op> ops;
  for (int i = 1; i <= 50; ++i) ops.push_back(op("c1-" + std::to_string(i), "c1", "s1", i, i * 1000));
  auto in = all_stored(ops);
  in.run_end_us = 1'000'000;
  auto r = run_audit(in);
  EXPECT_EQ(r.ops, 50u);
  EXPECT_EQ(r.acked, 50u);
  EXPECT_EQ(r.present, 50u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(r.in_doubt, 0u);
  EXPECT_EQ(r.order_violations, 0u);
  EXPECT_EQ(r.diverged, 0u);
  EXPECT_EQ(r.unknown, 0u);
  EXPECT_TRUE(r.lost_ids.empty());
  EXPECT_FALSE(r.lost_oldest_age_us.has_value());
}

TEST(audit, lost_ids_are_exact_in_creation_order_and_capped_at_100) {
  audit_input in;
  // Created out of input order: creation times run backwards through the input.
  for (int i = 0; i < 300; ++i) in.ops.push_back(op("op-" + std::to_string(i), "c", "s", i + 1, (300 - i) * 10));
  std::int64_t order = 0;
  for (int i = 0; i < 300; ++i)
    if (i % 2 == 0) in.changes.push_back(change_of(in.ops[i], ++order));  // odd i lost: 150
  in.run_end_us = 10'000;
  auto r = run_audit(in);
  EXPECT_EQ(r.acked, 300u);
  EXPECT_EQ(r.present, 150u);
  EXPECT_EQ(r.lost, 150u);
  ASSERT_EQ(r.lost_ids.size(), 100u);
  // Oldest first: op-299 (created at 10 µs), op-297, …
  for (std::size_t k = 0; k < 100; ++k) EXPECT_EQ(r.lost_ids[k], "op-" + std::to_string(299 - 2 * k)) << k;
  ASSERT_TRUE(r.lost_oldest_age_us.has_value());
  EXPECT_EQ(*r.lost_oldest_age_us, 10'000 - 10);
}

TEST(audit, lost_ids_keep_input_order_among_ops_created_at_the_same_time) {
  audit_input in;
  for (const char* id : {"b", "a", "c"}) in.ops.push_back(op(id, "c", "s", 1, 500));
  auto r = run_audit(in);
  EXPECT_EQ(r.lost, 3u);
  EXPECT_EQ(r.lost_ids, (std::vector<std::string>{"b", "a", "c"}));
}

TEST(audit, n_copies_of_an_op_count_n_minus_one_duplicates) {
  auto in = all_stored({op("x", "c", "s", 1, 1), op("y", "c", "s", 2, 2), op("z", "c", "s", 3, 3)});
  in.changes.push_back(change_of(in.ops[0], 10));                                  // x twice
  for (int k = 0; k < 3; ++k) in.changes.push_back(change_of(in.ops[2], 11 + k));  // z four times
  auto r = run_audit(in);
  EXPECT_EQ(r.duplicates, 1u + 3u);
  EXPECT_EQ(r.duplicate_ids, (std::vector<std::string>{"x", "z"}));
  EXPECT_EQ(r.present, 3u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.order_violations, 0u);  // each op's first copy is in seq order
}

TEST(audit, in_doubt_ops_are_never_a_loss_stored_or_not) {
  audit_input in;
  in.ops = {op("a", "c", "s", 1, 1), op("d1", "c", "s", 2, 2, audit_op_state::in_doubt),
            op("d2", "c", "s", 3, 3, audit_op_state::in_doubt), op("r", "c", "s", 4, 4, audit_op_state::rejected),
            op("u", "c", "s", 5, 5, audit_op_state::unsent)};
  in.changes = {change_of(in.ops[0], 1), change_of(in.ops[1], 2)};  // d1 stored, d2 not
  auto r = run_audit(in);
  EXPECT_EQ(r.acked, 1u);
  EXPECT_EQ(r.present, 1u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.in_doubt, 2u);
  EXPECT_EQ(r.in_doubt_present, 1u);
  EXPECT_EQ(r.rejected, 1u);
  EXPECT_EQ(r.unsent, 1u);
  EXPECT_EQ(r.rejected_present, 0u);
  EXPECT_EQ(r.unsent_present, 0u);
  EXPECT_EQ(r.unknown, 0u);
}

TEST(audit, order_violations_count_inverted_pairs_per_client_and_stream) {
  audit_input in;
  for (int i = 1; i <= 4; ++i) in.ops.push_back(op("a" + std::to_string(i), "ca", "s", i, i));
  for (int i = 1; i <= 3; ++i) in.ops.push_back(op("b" + std::to_string(i), "cb", "s", i, i));
  for (int i = 1; i <= 2; ++i) in.ops.push_back(op("t" + std::to_string(i), "ca", "t", i, i));
  // ca/s stored as seq 4,1,2,3: three inverted pairs (4 before each of 1,2,3).
  in.changes = {change_of(in.ops[3], 1), change_of(in.ops[0], 2), change_of(in.ops[1], 3), change_of(in.ops[2], 4)};
  // cb/s stored as 3,2,1: three pairs.
  in.changes.push_back(change_of(in.ops[6], 5));
  in.changes.push_back(change_of(in.ops[5], 6));
  in.changes.push_back(change_of(in.ops[4], 7));
  // ca/t in order; interleaving across clients and streams is never a violation.
  in.changes.push_back(change_of(in.ops[7], 0));
  in.changes.push_back(change_of(in.ops[8], 8));
  auto r = run_audit(in);
  EXPECT_EQ(r.order_violations, 6u);
  EXPECT_EQ(r.lost, 0u);
}

TEST(audit, a_set_rebased_after_a_conflict_is_not_an_order_violation) {
  // Seq 1 (a set) conflicted and was pushed again on the server's version after 2 and 3 were
  // acked: stored last by design. The same order without the rebase is two violations.
  auto in = all_stored({op("1", "c", "s", 1, 1), op("2", "c", "s", 2, 2), op("3", "c", "s", 3, 3)});
  in.changes = {change_of(in.ops[1], 1), change_of(in.ops[2], 2), change_of(in.ops[0], 3)};
  EXPECT_EQ(run_audit(in).order_violations, 2u);
  in.ops[0].rebased = true;
  auto r = run_audit(in);
  EXPECT_EQ(r.order_violations, 0u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.present, 3u);
}

TEST(audit, a_lost_op_between_others_is_not_an_order_violation) {
  auto in = all_stored({op("1", "c", "s", 1, 1), op("2", "c", "s", 2, 2), op("3", "c", "s", 3, 3)});
  in.changes.erase(in.changes.begin() + 1);
  auto r = run_audit(in);
  EXPECT_EQ(r.lost, 1u);
  EXPECT_EQ(r.order_violations, 0u);
}

TEST(audit, add_key_diverges_when_its_value_is_not_the_sum_of_distinct_stored_deltas) {
  auto in = all_stored({add_op("a1", "c", "s", 1, "stock", 5, 1), add_op("a2", "c", "s", 2, "stock", -2, 2),
                        add_op("b1", "c", "s", 3, "cash", 1.5, 3), add_op("b2", "c", "s", 4, "cash", 2.25, 4)});
  // A duplicate copy of a1 (dup-every) is not counted twice in the sum.
  in.changes.push_back(change_of(in.ops[0], 99));
  in.records = {record("s", "stock", 3), record("s", "cash", 3.75)};
  auto good = run_audit(in);
  EXPECT_EQ(good.diverged, 0u);
  EXPECT_EQ(good.duplicates, 1u);

  // dup-apply: the retried a1 moved the counter again, though it is stored once.
  in.records[0].value = 8;
  auto bad = run_audit(in);
  EXPECT_EQ(bad.diverged, 1u);
  EXPECT_EQ(bad.diverged_keys, (std::vector<std::string>{"s/stock"}));
  EXPECT_EQ(bad.lost, 0u);
}

TEST(audit, counter_values_agree_within_the_tolerance) {
  auto in = all_stored({add_op("a", "c", "s", 1, "k", 0.1, 1), add_op("b", "c", "s", 2, "k", 0.2, 2)});
  in.records = {record("s", "k", 0.3)};  // 0.1 + 0.2 != 0.3 in binary
  EXPECT_EQ(run_audit(in).diverged, 0u);
  in.records[0].value = 0.30001;
  EXPECT_EQ(run_audit(in).diverged, 1u);
}

TEST(audit, set_key_diverges_when_its_value_is_not_the_last_stored_set_by_order) {
  audit_input in;
  audit_op s1 = op("s1", "c1", "s", 1, 1), s2 = op("s2", "c2", "s", 1, 2), s3 = op("s3", "c1", "s", 2, 3);
  for (auto* o : {&s1, &s2, &s3}) {
    o->kind = 's';
    o->key = "price";
  }
  s1.value = {{"p", 1}};
  s2.value = {{"p", 2}};
  s3.value = {{"p", 3}};
  in.ops = {s1, s2, s3};
  // Stored order: s1, s3, s2 (s2's cursor is the highest): s2's value is the last.
  in.changes = {change_of(s1, 1), change_of(s3, 2), change_of(s2, 3)};
  in.records = {record("s", "price", {{"p", 2}}, 3)};
  EXPECT_EQ(run_audit(in).diverged, 0u);
  in.records[0].value = {{"p", 3}};  // the creation-order last, not the stored last
  auto r = run_audit(in);
  EXPECT_EQ(r.diverged, 1u);
  EXPECT_EQ(r.diverged_keys, (std::vector<std::string>{"s/price"}));
}

TEST(audit, a_key_with_sets_and_adds_is_replayed_in_server_order) {
  audit_input in;
  audit_op a = add_op("a", "c", "s", 1, "k", 4, 1), s = op("s", "c", "s", 2, 2),
           b = add_op("b", "c", "s", 3, "k", 1, 3);
  s.kind = 's';
  s.key = "k";
  s.value = 10;
  in.ops = {a, s, b};
  in.changes = {change_of(a, 1), change_of(s, 2), change_of(b, 3)};
  in.records = {record("s", "k", 11, 3)};
  EXPECT_EQ(run_audit(in).diverged, 0u);
}

TEST(audit, no_false_divergence_from_in_doubt_ops_that_were_stored) {
  // The acked deltas sum to 3; an in-doubt +10 was stored too, so the server's 13 is right.
  auto in = all_stored({add_op("a", "c", "s", 1, "k", 1, 1), add_op("b", "c", "s", 2, "k", 2, 2),
                        add_op("d", "c", "s", 3, "k", 10, 3, audit_op_state::in_doubt)});
  in.ops.push_back(add_op("e", "c", "s", 4, "k", 100, 4, audit_op_state::in_doubt));  // not stored
  in.records = {record("s", "k", 13, 3)};
  auto r = run_audit(in);
  EXPECT_EQ(r.diverged, 0u);
  EXPECT_EQ(r.in_doubt, 2u);
  EXPECT_EQ(r.in_doubt_present, 1u);
  EXPECT_EQ(r.lost, 0u);
}

TEST(audit, a_missing_record_or_one_without_history_diverges) {
  auto in = all_stored({add_op("a", "c", "s", 1, "k", 1, 1)});
  EXPECT_EQ(run_audit(in).diverged, 1u);  // the stored add has no record
  in.records = {record("s", "k", 1), record("s", "ghost", 7)};
  auto r = run_audit(in);
  EXPECT_EQ(r.diverged, 1u);
  EXPECT_EQ(r.diverged_keys, (std::vector<std::string>{"s/ghost"}));
}

TEST(audit, views_are_compared_with_the_servers_records) {
  auto in = all_stored({add_op("a", "c", "s", 1, "k", 2, 1), add_op("b", "c", "t", 1, "j", 5, 2)});
  in.records = {record("s", "k", 2), record("t", "j", 5)};
  in.views = {{"sub-1", "s", {record("s", "k", 2.0)}},
              {"sub-2", "s", {record("s", "k", 1)}},                        // stale value
              {"sub-3", "t", {}},                                           // missing a key
              {"sub-4", "t", {record("t", "j", 5), record("t", "x", 1)}}};  // an extra key
  auto r = run_audit(in);
  EXPECT_EQ(r.diverged_views, 3u);
  EXPECT_EQ(r.diverged, 3u);  // the keys themselves agree
  EXPECT_EQ(r.diverged_view_ids, (std::vector<std::string>{"sub-2/s", "sub-3/t", "sub-4/t"}));
}

TEST(audit, changes_no_client_created_are_unknown_not_judged) {
  auto in = all_stored({op("a", "c", "s", 1, 1)});
  audit_change other;
  other.id = "someone-else";
  other.stream = "s";
  other.kind = "append";
  other.order = 2;
  in.changes.push_back(other);
  in.changes.push_back(other);
  auto r = run_audit(in);
  EXPECT_EQ(r.unknown, 2u);
  EXPECT_EQ(r.duplicates, 0u);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_EQ(r.present, 1u);
}

TEST(audit, inflight_per_fault_counts_ops_sent_and_not_yet_acked_when_it_fired) {
  audit_input in;
  auto mk = [](std::string id, std::int64_t sent, std::int64_t acked, audit_op_state st) {
    audit_op o;
    o.id = std::move(id);
    o.client = "c";
    o.stream = "s";
    o.first_sent_us = sent;
    o.acked_us = acked;
    o.state = st;
    return o;
  };
  in.ops = {mk("done-before", 100, 900, audit_op_state::acked),    // acked before 1000
            mk("acked-after", 500, 1500, audit_op_state::acked),   // in flight at 1000
            mk("at-the-edge", 1000, 1000, audit_op_state::acked),  // acked at 1000: not in flight
            mk("never-acked", 800, -1, audit_op_state::in_doubt),  // in flight at 1000 and 2000
            mk("sent-later", 1200, 1300, audit_op_state::acked),   // in flight at neither
            mk("unsent", -1, -1, audit_op_state::unsent)};
  in.faults = {{"kill-pod", 1000}, {"partition", 2000}};
  auto r = run_audit(in);
  ASSERT_EQ(r.inflight.size(), 2u);
  EXPECT_EQ(r.inflight[0].name, "kill-pod");
  EXPECT_EQ(r.inflight[0].ops, 2u);
  EXPECT_EQ(r.inflight[1].name, "partition");
  EXPECT_EQ(r.inflight[1].ops, 1u);
}

TEST(audit, to_json_has_the_report_fields) {
  auto in = all_stored({op("a", "c", "s", 1, 5), op("b", "c", "s", 2, 6)});
  in.changes.pop_back();
  in.run_end_us = 106;
  in.source = "api http://127.0.0.1:8080";
  in.faults = {{"kill", 20}};
  json j = run_audit(in).to_json();
  for (const char* k : {"acked", "present", "lost", "duplicates", "in_doubt", "order_violations", "diverged"})
    EXPECT_TRUE(j[k].is_number_unsigned()) << k;
  EXPECT_EQ(j["lost"], 1);
  EXPECT_EQ(j["lost_ids"], json::array({"b"}));
  EXPECT_EQ(j["lost_oldest_age_us"], 100);
  EXPECT_EQ(j["source"], "api");
  EXPECT_EQ(j["inflight"], json::parse(R"([{"name": "kill", "ops": 2}])"));
  audit_input empty;
  json e = run_audit(empty).to_json();
  EXPECT_TRUE(e["lost_oldest_age_us"].is_null());
  EXPECT_FALSE(e.contains("source"));
}

TEST(audit, a_million_ops_with_known_losses_duplicates_and_one_divergence) {
  constexpr int n = 1'000'000, clients = 1000;
  audit_input in;
  in.ops.reserve(n);
  in.changes.reserve(n);
  for (int i = 0; i < n; ++i) {
    const int c = i % clients, seq = i / clients + 1;
    const std::string client = "c" + std::to_string(c), stream = "s" + std::to_string((i / 10) % 50);
    if (i % 10 == 0)
      in.ops.push_back(add_op(client + "-" + std::to_string(seq), client, stream, seq, "stock", 1, i));
    else
      in.ops.push_back(op(client + "-" + std::to_string(seq), client, stream, seq, i));
  }
  std::int64_t order = 0;
  for (int i = 0; i < n; ++i) {
    if (i % 1000 == 7) continue;  // 1000 lost (appends)
    in.changes.push_back(change_of(in.ops[i], ++order));
    if (i % 5000 == 3) in.changes.push_back(change_of(in.ops[i], ++order));  // 200 duplicates
  }
  // Each stream's counter: 100,000 adds spread over 50 streams = 2000 each; one is off by one.
  for (int s = 0; s < 50; ++s) in.records.push_back(record("s" + std::to_string(s), "stock", s == 17 ? 2001 : 2000));
  in.run_end_us = n;
  auto r = run_audit(in);
  EXPECT_EQ(r.ops, static_cast<std::uint64_t>(n));
  EXPECT_EQ(r.acked, static_cast<std::uint64_t>(n));
  EXPECT_EQ(r.lost, 1000u);
  EXPECT_EQ(r.present, static_cast<std::uint64_t>(n - 1000));
  EXPECT_EQ(r.duplicates, 200u);
  EXPECT_EQ(r.order_violations, 0u);
  EXPECT_EQ(r.diverged, 1u);
  EXPECT_EQ(r.diverged_keys, (std::vector<std::string>{"s17/stock"}));
  ASSERT_EQ(r.lost_ids.size(), 100u);
  EXPECT_EQ(r.lost_ids.front(), in.ops[7].id);
  EXPECT_EQ(r.lost_ids.back(), in.ops[99'007].id);
  EXPECT_EQ(*r.lost_oldest_age_us, n - 7);
}

// With no op writing a key (append only: a profile without records, issue #27) there is nothing
// to converge, and the report says so; one add op makes it judged again.
TEST(audit, convergence_is_not_judged_without_key_ops) {
  audit_input in;
  in.ops = {op("a1", "c", "s", 1, 10), op("a2", "c", "s", 2, 20)};
  in.changes = {change_of(in.ops[0], 1), change_of(in.ops[1], 2)};
  audit_result r = run_audit(in);
  EXPECT_EQ(r.lost, 0u);
  EXPECT_NE(r.convergence.find("not judged"), std::string::npos) << r.convergence;
  EXPECT_EQ(r.to_json()["convergence"], r.convergence);
  in.ops.push_back(add_op("d1", "c", "s", 3, "k", 2, 30));
  in.changes.push_back(change_of(in.ops[2], 3));
  in.records = {{"s", "k", json(2), 1}};
  r = run_audit(in);
  EXPECT_EQ(r.convergence, "judged");
  EXPECT_EQ(r.diverged, 0u);
}

// Issue #25: every kind of fault in one synthetic history, each found exactly.
namespace {

audit_op set_op(std::string id, std::string client, std::string stream, std::int64_t seq, std::string key, json value,
                std::int64_t created_us) {
  audit_op o = op(std::move(id), std::move(client), std::move(stream), seq, created_us);
  o.kind = 's';
  o.key = std::move(key);
  o.value = std::move(value);
  o.digest = payload_digest(o.value);
  return o;
}

audit_op append_op(std::string id, std::string client, std::string stream, std::int64_t seq, json body,
                   std::int64_t created_us) {
  audit_op o = op(std::move(id), std::move(client), std::move(stream), seq, created_us);
  o.digest = payload_digest(body);
  o.value = std::move(body);  // what change_of stores
  return o;
}

}  // namespace

TEST(audit, each_kind_of_fault_is_found_exactly) {
  audit_input in;
  // c/s: ten appends with payloads; one lost (a3), one duplicated (a4), one stored with another
  // payload (a5), one with another seq (a6); a8 and a9 stored in the opposite order.
  for (int i = 1; i <= 10; ++i)
    in.ops.push_back(append_op("a" + std::to_string(i), "c", "s", i, {{"total_cents", 100 * i}}, i));
  // A counter on s/k: +2, +3, -1 = 4, stored as 5 (off by one).
  in.ops.push_back(add_op("d1", "c", "s", 11, "k", 2, 11));
  in.ops.push_back(add_op("d2", "c", "s", 12, "k", 3, 12));
  in.ops.push_back(add_op("d3", "c", "s", 13, "k", -1, 13));
  // A set key whose record holds a value no client sent (a phantom), and one that is fine.
  in.ops.push_back(set_op("s1", "c", "s", 14, "v0", {{"by", "c"}, {"seq", 14}}, 14));
  in.ops.push_back(set_op("s2", "c", "s", 15, "v1", {{"by", "c"}, {"seq", 15}}, 15));
  std::int64_t order = 0;
  for (const auto& o : in.ops) {
    if (o.id == "a3") continue;                                             // lost
    if (o.id == "a9") continue;                                             // stored before a8, below
    if (o.id == "a8") in.changes.push_back(change_of(in.ops[8], ++order));  // a9 first
    in.changes.push_back(change_of(o, ++order));
    if (o.id == "a4") in.changes.push_back(change_of(o, ++order));  // duplicated
    if (o.id == "a5") in.changes.back().value = {{"total_cents", 501}};
    if (o.id == "a6") in.changes.back().seq = 66;
  }
  // A change no client created: a phantom too.
  audit_change stranger;
  stranger.id = "zz-1";
  stranger.stream = "s";
  stranger.kind = "append";
  stranger.order = ++order;
  in.changes.push_back(stranger);
  in.records = {record("s", "k", 5), record("s", "v0", {{"by", "mallory"}}),
                record("s", "v1", {{"by", "c"}, {"seq", 15}})};

  auto r = run_audit(in);
  EXPECT_EQ(r.lost, 1u);
  EXPECT_EQ(r.lost_ids, std::vector<std::string>{"a3"});
  EXPECT_EQ(r.duplicates, 1u);
  EXPECT_EQ(r.duplicate_ids, std::vector<std::string>{"a4"});
  ASSERT_EQ(r.mismatched, 2u);
  EXPECT_EQ(r.mismatched_ids[0].id, "a5");
  EXPECT_EQ(r.mismatched_ids[0].field, "payload");
  EXPECT_EQ(r.mismatched_ids[0].stored, json({{"total_cents", 501}}));
  EXPECT_EQ(r.mismatched_ids[1].id, "a6");
  EXPECT_EQ(r.mismatched_ids[1].field, "seq");
  EXPECT_EQ(r.mismatched_ids[1].sent, 6);
  EXPECT_EQ(r.mismatched_ids[1].stored, 66);
  EXPECT_EQ(r.order_violations, 1u);  // a9 before a8 (a6's wrong seq is a mismatch; order is by the sent seq)
  EXPECT_EQ(r.unknown, 1u);
  EXPECT_EQ(r.phantoms, 2u);
  EXPECT_EQ(r.phantom_ids, std::vector<std::string>{"zz-1"});
  EXPECT_EQ(r.phantom_keys, std::vector<std::string>{"s/v0"});
  // k is off by one; v0 holds a value its set history does not explain.
  EXPECT_EQ(r.diverged_keys, (std::vector<std::string>{"s/k", "s/v0"}));
  EXPECT_EQ(r.diverged, 2u);

  const json j = r.to_json();
  EXPECT_EQ(j["mismatched"], 2);
  EXPECT_EQ(j["mismatched_ids"][0],
            json({{"id", "a5"}, {"field", "payload"}, {"sent", nullptr}, {"stored", {{"total_cents", 501}}}}));
  EXPECT_EQ(j["phantoms"], 2);
  EXPECT_EQ(j["phantom_keys"], json({"s/v0"}));

  // The correct history of the same ops: every detector quiet.
  audit_input good;
  good.ops = in.ops;
  order = 0;
  for (const auto& o : good.ops) good.changes.push_back(change_of(o, ++order));
  good.records = {record("s", "k", 4), record("s", "v0", {{"by", "c"}, {"seq", 14}}),
                  record("s", "v1", {{"by", "c"}, {"seq", 15}})};
  auto g = run_audit(good);
  EXPECT_EQ(g.lost + g.duplicates + g.mismatched + g.phantoms + g.order_violations + g.diverged, 0u)
      << g.to_json().dump();
}

TEST(audit, each_field_of_a_stored_copy_is_compared_when_the_server_reports_it) {
  auto in = all_stored({add_op("d", "c", "s", 1, "k", 2, 1)});
  in.records = {record("s", "k", 2)};
  EXPECT_EQ(run_audit(in).mismatched, 0u);
  auto with = [&](auto change) {
    audit_input x = in;
    change(x.changes[0]);
    return run_audit(x);
  };
  auto r = with([](audit_change& c) { c.stream = "t"; });
  EXPECT_EQ(r.mismatched, 1u) << r.to_json().dump();
  EXPECT_EQ(r.mismatched_ids.at(0).field, "stream");
  EXPECT_EQ(with([](audit_change& c) { c.kind = "set"; }).mismatched_ids.at(0).field, "kind");
  EXPECT_EQ(with([](audit_change& c) { c.kind = "ADD"; }).mismatched, 0u);  // kinds compare case-insensitively
  EXPECT_EQ(with([](audit_change& c) { c.key = "k2"; }).mismatched_ids.at(0).field, "key");
  EXPECT_EQ(with([](audit_change& c) { c.delta = 3; }).mismatched_ids.at(0).field, "delta");
  EXPECT_EQ(with([](audit_change& c) { c.delta = 2.0000000001; }).mismatched_ids.at(0).field,
            "delta");  // integers: exact
  // A field the server's feed does not have (a profile without that pointer) is not compared.
  EXPECT_EQ(with([](audit_change& c) {
              c.delta = 3;
              c.fields = cf_all & ~cf_delta;
            }).mismatched,
            0u);
  EXPECT_EQ(with([](audit_change& c) {
              c.seq = 9;
              c.fields = cf_stream | cf_kind;
            }).mismatched,
            0u);
  // Only acked ops are judged: an in-doubt op stored with another delta is not a mismatch.
  audit_input doubt = in;
  doubt.ops[0].state = audit_op_state::in_doubt;
  doubt.changes[0].delta = 5;
  EXPECT_EQ(run_audit(doubt).mismatched, 0u);
}

TEST(audit, payload_digests_survive_a_server_that_re_encodes_numbers_and_keys) {
  EXPECT_EQ(payload_digest(json::parse(R"({"a": 5, "b": [1, 2.0]})")),
            payload_digest(json::parse(R"({"b": [1.0, 2], "a": 5.0})")));
  EXPECT_NE(payload_digest(json::parse(R"({"a": 5})")), payload_digest(json::parse(R"({"a": 5.5})")));
  EXPECT_NE(payload_digest(json::parse(R"({"a": 5})")), payload_digest(json::parse(R"({"a": "5"})")));
  EXPECT_NE(payload_digest(json::parse(R"({"a": 5})")), payload_digest(json::parse(R"({"a": 5, "corrupted": true})")));
  EXPECT_NE(payload_digest(json()), payload_digest(json::object()));
}

TEST(audit, counters_are_exact_integers_even_past_double_precision) {
  // 2^53 + 1 is not a double: summed as doubles the off-by-one below would vanish.
  const std::int64_t big = (std::int64_t{1} << 53);
  auto in = all_stored({add_op("d1", "c", "s", 1, "k", 1, 1)});
  in.changes[0].kind = "set";
  in.changes[0].value = big;  // a set to 2^53 first, then +1
  in.ops[0].kind = 's';
  in.ops[0].value = big;
  in.ops.push_back(add_op("d2", "c", "s", 2, "k", 1, 2));
  in.changes.push_back(change_of(in.ops[1], 2));
  in.records = {record("s", "k", big + 1)};
  EXPECT_EQ(run_audit(in).diverged, 0u);
  in.records = {record("s", "k", big + 2)};
  EXPECT_EQ(run_audit(in).diverged, 1u);
  // And a small fractional sum is judged within its relative tolerance, not flagged.
  auto frac = all_stored({add_op("f1", "c", "s", 1, "k", 0.1, 1), add_op("f2", "c", "s", 2, "k", 0.2, 2)});
  frac.records = {record("s", "k", 0.3)};
  EXPECT_EQ(run_audit(frac).diverged, 0u);
  frac.records = {record("s", "k", 0.30001)};
  EXPECT_EQ(run_audit(frac).diverged, 1u);
}

TEST(audit, fanout_deliveries_are_compared_with_the_stored_change_at_their_cursor) {
  auto in = all_stored({op("a1", "c", "s", 1, 1), op("a2", "c", "s", 2, 2), op("a3", "c", "s", 3, 3)});
  in.changes[1].value = {{"total_cents", 250}};
  auto delivered = [&](const audit_change& c) {
    return audit_delivery{c.stream, c.order, change_digest(c.id, c.kind, c.key, c.delta, c.value)};
  };
  for (const auto& c : in.changes) in.delivered.push_back(delivered(c));
  auto r = run_audit(in);
  EXPECT_TRUE(r.deliveries_judged);
  EXPECT_EQ(r.fanout_mismatched, 0u);
  // A frame that carried another value, a frame at a cursor the server has no change at, and a
  // cursor two subscribers were sent different changes for.
  audit_change other = in.changes[1];
  other.value = {{"total_cents", 251}};
  in.delivered[1] = delivered(other);
  in.delivered.push_back({"s", 99, 7});
  in.delivery_disagreements = 1;
  r = run_audit(in);
  EXPECT_EQ(r.fanout_mismatched, 3u);
  EXPECT_EQ(r.fanout_mismatched_ids, (std::vector<std::string>{"s@2", "s@99"}));
  EXPECT_EQ(r.to_json()["fanout_mismatched"], 3);
  // Positions, not cursors: only the subscribers' disagreements are judged.
  in.orders_are_cursors = false;
  EXPECT_EQ(run_audit(in).fanout_mismatched, 1u);
  // No deliveries: not judged, and the report has no field.
  auto none = all_stored({op("a1", "c", "s", 1, 1)});
  EXPECT_FALSE(run_audit(none).deliveries_judged);
  EXPECT_FALSE(run_audit(none).to_json().contains("fanout_mismatched"));
  // Kind is compared case-insensitively, numbers canonically.
  audit_change upper = in.changes[0];
  upper.kind = "APPEND";
  EXPECT_EQ(
      change_digest(upper.id, upper.kind, upper.key, upper.delta, upper.value),
      change_digest(in.changes[0].id, in.changes[0].kind, in.changes[0].key, in.changes[0].delta, in.changes[0].value));
}
