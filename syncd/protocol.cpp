// Protocol v1 parsing and rendering (see protocol.hpp). No shared state.
#include "syncd/protocol.hpp"

#include "core/json_limits.hpp"
#include <charconv>
#include <cmath>
#include <cstdint>

namespace syncstorm::syncd {
namespace {

using nlohmann::json;

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else if (s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Never the whole of a client's value (and never invalid UTF-8) in an error line.
std::string found(const json& j) { return json_excerpt(j, 40); }

std::string at(std::size_t i, const char* field) { return "ops[" + std::to_string(i) + "]." + field; }

// An integer that fits PostgreSQL's bigint; `min` is 0 for counts and versions.
bool is_int64(const json& j, std::int64_t min) {
  if (j.is_number_unsigned()) return j.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX);
  return j.is_number_integer() && j.get<std::int64_t>() >= min;
}

// PostgreSQL text cannot hold NUL; JSON strings can.
bool has_nul(const std::string& s) { return s.find('\0') != std::string::npos; }

}  // namespace

const std::string* target::param(std::string_view name) const {
  for (const auto& [k, v] : query)
    if (k == name) return &v;
  return nullptr;
}

target parse_target(std::string_view raw) {
  target t;
  auto q = raw.find('?');
  t.path = percent_decode(raw.substr(0, q));
  if (q == std::string_view::npos) return t;
  std::string_view rest = raw.substr(q + 1);
  while (!rest.empty()) {
    auto amp = rest.find('&');
    auto item = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    if (item.empty()) continue;
    auto eq = item.find('=');
    t.query.emplace_back(percent_decode(item.substr(0, eq)),
                         eq == std::string_view::npos ? std::string{} : percent_decode(item.substr(eq + 1)));
  }
  return t;
}

bool valid_stream(std::string_view s) {
  if (s.empty() || s.size() > 200) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7f || c == ',' || c == '"' || c == '\\' || c == '{' || c == '}') return false;
  return true;
}

bool parse_stream_list(std::string_view text, std::vector<std::string>& out, std::string& error, std::size_t max) {
  out.clear();
  while (!text.empty()) {
    auto comma = text.find(',');
    auto item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    if (item.empty()) continue;
    if (!valid_stream(item)) {
      error = "streams: found \"" + std::string(item.substr(0, 40)) +
              "\"; expected 1-200 bytes without control characters, quotes, backslashes or braces";
      return false;
    }
    out.emplace_back(item);
  }
  if (out.empty()) {
    error = "streams: found nothing; expected streams=S1,S2";
    return false;
  }
  if (out.size() > max) {
    error = "streams: found " + std::to_string(out.size()) + " streams; expected at most " + std::to_string(max);
    return false;
  }
  return true;
}

std::optional<std::int64_t> parse_count(std::string_view s) {
  std::int64_t v = 0;
  if (s.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

bool parse_push(std::string_view body, push_batch& out, std::string& error) {
  if (body.size() > max_push_body) {
    error = "body: found " + std::to_string(body.size()) + " bytes; expected at most " + std::to_string(max_push_body);
    return false;
  }
  bool too_deep = false;
  json doc = parse_bounded(body, max_json_depth, &too_deep);
  if (doc.is_discarded()) {
    error = too_deep ? "body: found JSON nested deeper than " + std::to_string(max_json_depth) +
                           " levels; expected {\"client\": C, \"ops\": [...]}"
                     : "body: found invalid JSON; expected {\"client\": C, \"ops\": [...]}";
    return false;
  }
  if (!doc.is_object()) {
    error = "body: found " + found(doc) + "; expected an object {\"client\": C, \"ops\": [...]}";
    return false;
  }
  push_batch b;
  if (auto c = doc.find("client"); c != doc.end() && !c->is_null()) {
    if (!c->is_string() || c->get_ref<const std::string&>().size() > 200 || has_nul(c->get_ref<const std::string&>())) {
      error = "client: found " + found(*c) + "; expected a string of at most 200 bytes without NUL";
      return false;
    }
    b.client = c->get<std::string>();
  }
  auto ops = doc.find("ops");
  if (ops == doc.end() || !ops->is_array()) {
    error = "ops: found " + (ops == doc.end() ? std::string("nothing") : found(*ops)) + "; expected an array of ops";
    return false;
  }
  if (ops->size() > max_push_ops) {
    error = "ops: found " + std::to_string(ops->size()) + " ops; expected at most " + std::to_string(max_push_ops);
    return false;
  }
  b.ids.reserve(ops->size());
  for (std::size_t i = 0; i < ops->size(); ++i) {
    const json& op = (*ops)[i];
    if (!op.is_object()) {
      error = "ops[" + std::to_string(i) + "]: found " + found(op) + "; expected an object";
      return false;
    }
    auto field = [&](const char* name) -> const json* {
      auto it = op.find(name);
      return it == op.end() || it->is_null() ? nullptr : &*it;
    };
    const json* id = field("id");
    if (!id || !id->is_string() || id->get_ref<const std::string&>().empty() ||
        id->get_ref<const std::string&>().size() > 200 || has_nul(id->get_ref<const std::string&>())) {
      error =
          at(i, "id") + ": found " + (id ? found(*id) : "nothing") + "; expected a string of 1-200 bytes without NUL";
      return false;
    }
    const json* stream = field("stream");
    if (!stream || !stream->is_string() || !valid_stream(stream->get_ref<const std::string&>())) {
      error = at(i, "stream") + ": found " + (stream ? found(*stream) : "nothing") +
              "; expected a string of 1-200 bytes without control characters, commas, quotes, backslashes or braces";
      return false;
    }
    const json* seq = field("seq");
    if (!seq || !is_int64(*seq, 0)) {
      error = at(i, "seq") + ": found " + (seq ? found(*seq) : "nothing") + "; expected an integer >= 0";
      return false;
    }
    const json* t_us = field("t_us");
    if (!t_us || !is_int64(*t_us, INT64_MIN)) {
      error = at(i, "t_us") + ": found " + (t_us ? found(*t_us) : "nothing") +
              "; expected an integer (microseconds since the epoch)";
      return false;
    }
    const json* kind = field("kind");
    const std::string k = kind && kind->is_string() ? kind->get<std::string>() : std::string{};
    if (k != "append" && k != "add" && k != "set") {
      error = at(i, "kind") + ": found " + (kind ? found(*kind) : "nothing") + "; expected one of append, add, set";
      return false;
    }
    json norm = {{"id", *id}, {"stream", *stream}, {"seq", *seq}, {"t_us", *t_us}, {"kind", k}};
    const json* key = field("key");
    if (key && (!key->is_string() || key->get_ref<const std::string&>().empty() ||
                key->get_ref<const std::string&>().size() > 200 || has_nul(key->get_ref<const std::string&>()))) {
      error = at(i, "key") + ": found " + found(*key) + "; expected a string of 1-200 bytes without NUL";
      return false;
    }
    if (!key && k != "append") {
      error = at(i, "key") + ": found nothing; expected a key for a `" + k + "` op";
      return false;
    }
    if (key) norm["key"] = *key;
    if (k == "add") {
      const json* delta = field("delta");
      if (!delta || !delta->is_number() || (delta->is_number_float() && !std::isfinite(delta->get<double>()))) {
        error =
            at(i, "delta") + ": found " + (delta ? found(*delta) : "nothing") + "; expected a number for an `add` op";
        return false;
      }
      norm["delta"] = *delta;
    }
    if (k == "set") {
      const json* base = field("base_version");
      if (base && !is_int64(*base, 0)) {
        error = at(i, "base_version") + ": found " + found(*base) + "; expected an integer >= 0";
        return false;
      }
      norm["base_version"] = base ? *base : json(0);
    }
    if (const json* b = field("body")) norm["body"] = *b;
    b.ids.push_back(id->get<std::string>());
    b.ops.push_back(std::move(norm));
  }
  out = std::move(b);
  return true;
}

std::string db_ops_param(const push_batch& batch, const std::vector<op_action>& actions) {
  if (actions.empty()) return batch.ops.dump();
  json ops = batch.ops;
  for (std::size_t i = 0; i < ops.size() && i < actions.size(); ++i)
    if (actions[i] != op_action::store) ops[i]["action"] = std::string(1, static_cast<char>(actions[i]));
  return ops.dump();
}

std::string ack_all_body(const push_batch& batch) {
  return json{{"acked", batch.ids}, {"conflicts", json::array()}, {"cseq", 0}}.dump();
}

std::string error_body(std::string_view reason) {
  // Reasons quote client bytes, maybe cut inside a UTF-8 sequence: replace, never throw.
  return json{{"error", reason}}.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string pg_text_array(const std::vector<std::string>& items) {
  std::string s = "{";
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i) s += ',';
    s += '"';
    s += items[i];  // valid_stream() excludes quotes, backslashes and braces
    s += '"';
  }
  s += '}';
  return s;
}

}  // namespace syncstorm::syncd
