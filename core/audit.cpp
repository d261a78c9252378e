// The data audit (see audit.hpp): one pass over the ops and one over the changes, hash maps keyed
// by views into the input's strings (the input outlives run_audit), so 1,000,000 ops take a few
// hash lookups each; order violations are counted as inversions by merge sort, O(n log n) per
// (client, stream). Pure and single-threaded; the output is deterministic for a given input.
#include "core/audit.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <string_view>
#include <unordered_map>

namespace syncstorm {
namespace {

constexpr std::size_t max_listed = 100;
constexpr double number_tolerance = 1e-6;

// Per stored op id: how many copies, and the first copy (lowest order; input order on a tie).
struct stored {
  std::uint32_t copies = 0;
  const audit_change* first = nullptr;
};

std::string joined(std::string_view a, std::string_view b, char sep) {
  std::string s;
  s.reserve(a.size() + b.size() + 1);
  s.append(a);
  s.push_back(sep);
  s.append(b);
  return s;
}

// JSON equality where two numbers are equal within the tolerance (5, 5.0 and 5.0000000001 agree).
bool same_value(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number() && b.is_number()) return std::fabs(a.get<double>() - b.get<double>()) <= number_tolerance;
  return a == b;
}

bool is_kind(const std::string& kind, std::string_view word) {
  if (kind.size() != word.size()) return false;
  for (std::size_t i = 0; i < kind.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(kind[i])) != word[i]) return false;
  return true;
}

// Pairs i < j with v[i] > v[j]; sorts v. Merge sort with one scratch buffer.
std::uint64_t count_inversions(std::vector<std::int64_t>& v) {
  std::vector<std::int64_t> tmp(v.size());
  std::uint64_t inversions = 0;
  for (std::size_t width = 1; width < v.size(); width *= 2) {
    for (std::size_t lo = 0; lo < v.size(); lo += 2 * width) {
      const std::size_t mid = std::min(lo + width, v.size()), hi = std::min(lo + 2 * width, v.size());
      std::size_t i = lo, j = mid, k = lo;
      while (i < mid && j < hi) {
        if (v[j] < v[i]) {
          inversions += mid - i;
          tmp[k++] = v[j++];
        } else {
          tmp[k++] = v[i++];
        }
      }
      while (i < mid) tmp[k++] = v[i++];
      while (j < hi) tmp[k++] = v[j++];
    }
    v.swap(tmp);
  }
  return inversions;
}

// Replays a key's distinct stored ops in server order: a set replaces the value, an add adds
// its delta to it (a non-number counts as 0, as syncd does).
nlohmann::json replay(std::vector<const audit_change*>& history) {
  std::sort(history.begin(), history.end(),
            [](const audit_change* a, const audit_change* b) { return a->order < b->order; });
  nlohmann::json value;  // null: no history
  for (const audit_change* c : history) {
    if (is_kind(c->kind, "set")) {
      value = c->value;
    } else {
      const double base = value.is_number() ? value.get<double>() : 0.0;
      value = base + c->delta;
    }
  }
  return value;
}

}  // namespace

audit_result run_audit(const audit_input& in) {
  audit_result r;
  r.source = in.source;
  r.ops = in.ops.size();

  // What the server stored, per op id.
  std::unordered_map<std::string_view, stored> by_id;
  by_id.reserve(in.changes.size());
  for (const auto& c : in.changes) {
    auto& s = by_id[c.id];
    ++s.copies;
    if (!s.first || c.order < s.first->order) s.first = &c;
  }

  // Ops in creation order (input order on a tie): lost_ids and duplicate_ids follow it.
  std::vector<std::size_t> created(in.ops.size());
  std::iota(created.begin(), created.end(), std::size_t{0});
  std::stable_sort(created.begin(), created.end(),
                   [&](std::size_t a, std::size_t b) { return in.ops[a].created_us < in.ops[b].created_us; });

  std::unordered_map<std::string_view, const audit_op*> known;
  known.reserve(in.ops.size());
  // Per (client, stream): (seq, server order of the first copy) of each stored op.
  std::unordered_map<std::string, std::vector<std::pair<std::int64_t, std::int64_t>>> stream_order;
  std::optional<std::int64_t> oldest_lost_created;
  for (std::size_t idx : created) {
    const audit_op& op = in.ops[idx];
    if (!known.emplace(op.id, &op).second) continue;  // an id created twice is one op
    auto it = by_id.find(op.id);
    const std::uint32_t copies = it == by_id.end() ? 0 : it->second.copies;
    switch (op.state) {
      case audit_op_state::acked:
        ++r.acked;
        if (copies > 0) {
          ++r.present;
        } else {
          ++r.lost;
          if (r.lost_ids.size() < max_listed) r.lost_ids.push_back(op.id);
          if (!oldest_lost_created) oldest_lost_created = op.created_us;  // creation order: the first is the oldest
        }
        break;
      case audit_op_state::in_doubt:
        ++r.in_doubt;
        if (copies > 0) ++r.in_doubt_present;
        break;
      case audit_op_state::rejected:
        ++r.rejected;
        if (copies > 0) ++r.rejected_present;
        break;
      case audit_op_state::unsent:
        ++r.unsent;
        if (copies > 0) ++r.unsent_present;
        break;
    }
    if (copies > 1) {
      r.duplicates += copies - 1;
      if (r.duplicate_ids.size() < max_listed) r.duplicate_ids.push_back(op.id);
    }
    // A rebased set is a new write: it lands after the ops acked while it was being resolved.
    if (copies > 0 && !op.rebased) stream_order[joined(op.client, op.stream, '\0')].emplace_back(op.seq, it->second.first->order);
  }
  if (oldest_lost_created) r.lost_oldest_age_us = in.run_end_us - *oldest_lost_created;

  for (auto& [group, ops] : stream_order) {
    std::sort(ops.begin(), ops.end());  // by seq (then order: equal seqs are never a violation)
    std::vector<std::int64_t> orders(ops.size());
    for (std::size_t i = 0; i < ops.size(); ++i) orders[i] = ops[i].second;
    r.order_violations += count_inversions(orders);
  }

  for (const auto& [id, s] : by_id)
    if (!known.contains(id)) r.unknown += s.copies;

  // Counters and values: each key's server record against the history of its distinct stored
  // ops (unknown writers included: it is the server's own history).
  std::unordered_map<std::string, std::vector<const audit_change*>> history;
  for (const auto& [id, s] : by_id) {
    const audit_change& c = *s.first;
    if (is_kind(c.kind, "add") || is_kind(c.kind, "set")) history[joined(c.stream, c.key, '\0')].push_back(&c);
  }
  std::unordered_map<std::string, const audit_record*> records;
  records.reserve(in.records.size());
  for (const auto& rec : in.records) records.emplace(joined(rec.stream, rec.key, '\0'), &rec);

  std::vector<std::string> diverged;
  for (auto& [k, h] : history) {
    const nlohmann::json expected = replay(h);
    auto rec = records.find(k);
    if (rec == records.end() || !same_value(rec->second->value, expected)) diverged.push_back(k);
  }
  for (const auto& [k, rec] : records)
    if (!history.contains(k)) diverged.push_back(k);  // a value no stored op explains
  std::sort(diverged.begin(), diverged.end());
  r.diverged = diverged.size();
  for (std::size_t i = 0; i < diverged.size() && i < max_listed; ++i) {
    std::string& k = diverged[i];
    k[k.find('\0')] = '/';
    r.diverged_keys.push_back(std::move(k));
  }

  // Convergence: every subscriber's view of a stream equals the server's records of it.
  if (!in.views.empty()) {
    std::unordered_map<std::string_view, std::size_t> per_stream;
    for (const auto& rec : in.records) ++per_stream[rec.stream];
    for (const auto& v : in.views) {
      auto n = per_stream.find(v.stream);
      bool same = v.records.size() == (n == per_stream.end() ? 0 : n->second);
      for (std::size_t i = 0; same && i < v.records.size(); ++i) {
        auto rec = records.find(joined(v.stream, v.records[i].key, '\0'));
        same = rec != records.end() && same_value(rec->second->value, v.records[i].value);
      }
      if (same) continue;
      ++r.diverged_views;
      if (r.diverged_view_ids.size() < max_listed) r.diverged_view_ids.push_back(v.subscriber + "/" + v.stream);
    }
  }
  r.diverged += r.diverged_views;

  const bool keys_written = std::any_of(in.ops.begin(), in.ops.end(), [](const audit_op& op) { return op.kind == 's' || op.kind == 'd'; });
  if (!keys_written && in.views.empty())
    r.convergence = "not judged: no load wrote set or add ops (only op ids and each client's seq order were judged)";

  // Per fault: ops sent by the time it was applied and not acknowledged by then.
  for (const auto& f : in.faults) {
    audit_result::fault_inflight fi{f.name, 0};
    for (const auto& op : in.ops)
      if (op.first_sent_us >= 0 && op.first_sent_us <= f.applied_us && (op.acked_us < 0 || op.acked_us > f.applied_us))
        ++fi.ops;
    r.inflight.push_back(std::move(fi));
  }
  return r;
}

nlohmann::json audit_result::to_json() const {
  nlohmann::json inflight_json = nlohmann::json::array();
  for (const auto& f : inflight) inflight_json.push_back({{"name", f.name}, {"ops", f.ops}});
  nlohmann::json j = {
      {"acked", acked},
      {"present", present},
      {"lost", lost},
      {"duplicates", duplicates},
      {"in_doubt", in_doubt},
      {"order_violations", order_violations},
      {"diverged", diverged},
      {"lost_ids", lost_ids},
      {"ops", ops},
      {"convergence", convergence},
      {"in_doubt_present", in_doubt_present},
      {"rejected", rejected},
      {"rejected_present", rejected_present},
      {"unsent", unsent},
      {"unsent_present", unsent_present},
      {"unknown", unknown},
      {"diverged_views", diverged_views},
      {"lost_oldest_age_us", lost_oldest_age_us ? nlohmann::json(*lost_oldest_age_us) : nlohmann::json()},
      {"duplicate_ids", duplicate_ids},
      {"diverged_keys", diverged_keys},
      {"diverged_view_ids", diverged_view_ids},
      {"inflight", std::move(inflight_json)},
  };
  if (!source.empty()) j["source"] = source.substr(0, source.find(' '));
  return j;
}

}  // namespace syncstorm
