// The data audit (see audit.hpp): one pass over the ops and one over the changes, hash maps keyed
// by views into the input's strings (the input outlives run_audit), so 1,000,000 ops take a few
// hash lookups each; order violations are counted as inversions by merge sort, O(n log n) per
// (client, stream). Pure and single-threaded; the output is deterministic for a given input.
#include "core/audit.hpp"

#include "core/digest.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace syncstorm {
namespace {

constexpr std::size_t max_listed = 100;
constexpr double relative_tolerance = 1e-9;

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

bool is_kind(const std::string& kind, std::string_view word) {
  if (kind.size() != word.size()) return false;
  for (std::size_t i = 0; i < kind.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(kind[i])) != word[i]) return false;
  return true;
}

// An integral number as an integer (exact up to 2^63), nullopt for any other value.
std::optional<std::int64_t> integral(const nlohmann::json& v) {
  if (v.is_number_integer()) return v.get<std::int64_t>();
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (std::isfinite(d) && std::floor(d) == d && std::fabs(d) < 9.0e18) return static_cast<std::int64_t>(d);
  }
  return std::nullopt;
}

// Two numbers agree exactly when both are integral (counters are integers), else within a
// relative 1e-9 (a sum of fractional deltas carries rounding that grows with its size).
bool same_number(double a, double b) {
  if (std::floor(a) == a && std::floor(b) == b && std::fabs(a) < 9.0e18 && std::fabs(b) < 9.0e18)
    return static_cast<std::int64_t>(a) == static_cast<std::int64_t>(b);
  return std::fabs(a - b) <= relative_tolerance * std::max({1.0, std::fabs(a), std::fabs(b)});
}

// The canonical text payload_digest hashes: sorted keys (nlohmann's objects are ordered maps),
// integral numbers as integers. Deeper than 256 levels, the rest is one marker.
void canonical(const nlohmann::json& v, std::string& out, int depth) {
  if (depth > 256) {
    out += "\"<deep>\"";
    return;
  }
  switch (v.type()) {
    case nlohmann::json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, x] : v.items()) {
        if (!first) out += ',';
        first = false;
        out += nlohmann::json(k).dump();
        out += ':';
        canonical(x, out, depth + 1);
      }
      out += '}';
      break;
    }
    case nlohmann::json::value_t::array: {
      out += '[';
      for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += ',';
        canonical(v[i], out, depth + 1);
      }
      out += ']';
      break;
    }
    case nlohmann::json::value_t::number_float:
      if (auto n = integral(v)) {
        out += std::to_string(*n);
        break;
      }
      out += v.dump();
      break;
    default:
      out += v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
}

const char* kind_name(char k) { return k == 'd' ? "add" : k == 's' ? "set" : "append"; }

// A stored value as the report shows it: itself when short, else an excerpt.
nlohmann::json shown(const nlohmann::json& v) {
  std::string text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() <= 200) return v;
  return text.substr(0, 200) + "…";
}

// The first field of op's stored copy c that differs from what the client sent.
std::optional<audit_result::mismatch> differs(const audit_op& op, const audit_change& c) {
  using m = audit_result::mismatch;
  if ((c.fields & cf_stream) && c.stream != op.stream) return m{op.id, "stream", op.stream, c.stream};
  if ((c.fields & cf_seq) && c.seq != op.seq) return m{op.id, "seq", op.seq, c.seq};
  if ((c.fields & cf_kind) && !is_kind(c.kind, kind_name(op.kind)))
    return m{op.id, "kind", kind_name(op.kind), shown(c.kind)};
  if ((c.fields & cf_key) && op.kind != 'a' && c.key != op.key) return m{op.id, "key", op.key, shown(c.key)};
  // A delta is one number sent and stored as text: it must come back as exactly that number.
  if ((c.fields & cf_delta) && op.kind == 'd' && op.delta != c.delta) return m{op.id, "delta", op.delta, c.delta};
  if ((c.fields & cf_value) && op.kind != 'd' && op.digest && payload_digest(c.value) != *op.digest)
    return m{op.id, "payload", op.kind == 's' ? shown(op.value) : nlohmann::json(nullptr), shown(c.value)};
  return std::nullopt;
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
      continue;
    }
    // Integers stay integers (exact); a fraction anywhere makes the sum a double.
    const auto base = value.is_number() ? integral(value) : std::optional<std::int64_t>(0);
    const bool whole_delta = std::floor(c->delta) == c->delta && std::fabs(c->delta) < 9.0e18;
    if (base && whole_delta)
      value = *base + static_cast<std::int64_t>(c->delta);
    else
      value = (value.is_number() ? value.get<double>() : 0.0) + c->delta;
  }
  return value;
}

}  // namespace

bool same_value(const nlohmann::json& a, const nlohmann::json& b) {
  if (a.is_number() && b.is_number()) {
    auto x = integral(a), y = integral(b);
    if (x && y) return *x == *y;
    return same_number(a.get<double>(), b.get<double>());
  }
  return a == b;
}

std::uint64_t payload_digest(const nlohmann::json& v) {
  std::string text;
  canonical(v, text, 0);
  return fnv1a(text);
}

std::uint64_t change_digest(std::string_view id, std::string_view kind, std::string_view key, double delta,
                            const nlohmann::json& value) {
  std::string text;
  text.reserve(id.size() + kind.size() + key.size() + 64);
  text.append(id).push_back('\0');
  for (char ch : kind) text.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(ch))));
  text.push_back('\0');
  text.append(key).push_back('\0');
  canonical(nlohmann::json(delta), text, 0);
  text.push_back('\0');
  canonical(value, text, 0);
  return fnv1a(text);
}

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
          if (auto m = differs(op, *it->second.first)) {
            ++r.mismatched;
            if (r.mismatched_ids.size() < max_listed) r.mismatched_ids.push_back(std::move(*m));
          }
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
    if (copies > 0 && !op.rebased)
      stream_order[joined(op.client, op.stream, '\0')].emplace_back(op.seq, it->second.first->order);
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
  // Phantoms, first the changes no client created (listed in server order).
  r.phantoms = r.unknown;
  if (r.unknown > 0) {
    std::unordered_set<std::string_view> listed;
    for (const auto& c : in.changes)
      if (r.phantom_ids.size() < max_listed && !known.contains(c.id) && listed.insert(c.id).second)
        r.phantom_ids.push_back(c.id);
  }

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

  // Then the records no client wrote: a key no op touched, or a key only sets wrote whose value
  // is none of the values sent for it.
  struct written {
    bool add = false;
    std::unordered_set<std::uint64_t> sets;
  };
  std::unordered_map<std::string, written> by_key;
  for (const auto& op : in.ops) {
    if (op.kind == 'a') continue;
    written& w = by_key[joined(op.stream, op.key, '\0')];
    if (op.kind == 'd')
      w.add = true;
    else
      w.sets.insert(op.digest ? *op.digest : payload_digest(op.value));
  }
  std::vector<std::string> phantom_keys;
  for (const auto& rec : in.records) {
    std::string k = joined(rec.stream, rec.key, '\0');
    auto w = by_key.find(k);
    if (w != by_key.end() && (w->second.add || w->second.sets.contains(payload_digest(rec.value)))) continue;
    k[k.find('\0')] = '/';
    phantom_keys.push_back(std::move(k));
  }
  std::sort(phantom_keys.begin(), phantom_keys.end());
  r.phantoms += phantom_keys.size();
  if (phantom_keys.size() > max_listed) phantom_keys.resize(max_listed);
  r.phantom_keys = std::move(phantom_keys);
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

  const bool keys_written =
      std::any_of(in.ops.begin(), in.ops.end(), [](const audit_op& op) { return op.kind == 's' || op.kind == 'd'; });
  if (!keys_written && in.views.empty())
    r.convergence = "not judged: no load wrote set or add ops (only op ids and each client's seq order were judged)";

  // Fanout deliveries against the stored change at each cursor.
  if (!in.delivered.empty() || in.delivery_disagreements > 0) {
    r.deliveries_judged = true;
    r.fanout_mismatched = in.delivery_disagreements;
    if (in.orders_are_cursors) {
      std::unordered_map<std::string, const audit_change*> at;
      at.reserve(in.changes.size());
      for (const auto& c : in.changes) at.emplace(joined(c.stream, std::to_string(c.order), '@'), &c);
      for (const auto& d : in.delivered) {
        std::string k = joined(d.stream, std::to_string(d.cursor), '@');
        auto c = at.find(k);
        if (c != at.end() && change_digest(c->second->id, c->second->kind, c->second->key, c->second->delta,
                                           c->second->value) == d.digest)
          continue;
        ++r.fanout_mismatched;
        if (r.fanout_mismatched_ids.size() < max_listed) r.fanout_mismatched_ids.push_back(std::move(k));
      }
    }
  }

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
      {"mismatched", mismatched},
      {"phantoms", phantoms},
      {"phantom_ids", phantom_ids},
      {"phantom_keys", phantom_keys},
  };
  if (deliveries_judged) {
    j["fanout_mismatched"] = fanout_mismatched;
    j["fanout_mismatched_ids"] = fanout_mismatched_ids;
  }
  nlohmann::json mm = nlohmann::json::array();
  for (const auto& m : mismatched_ids)
    mm.push_back({{"id", m.id}, {"field", m.field}, {"sent", m.sent}, {"stored", m.stored}});
  j["mismatched_ids"] = std::move(mm);
  if (!source.empty()) j["source"] = source.substr(0, source.find(' '));
  return j;
}

}  // namespace syncstorm
