// Protocol v1 and protocol profiles: rendering push bodies from templates, parsing replies by
// JSON pointers. Pure and thread-agnostic (a sync_profile is a read-only value). Reply parsers
// never throw: a reply that does not have the profile's shape is `malformed` with a reason.
#include "loadgen/sync_protocol.hpp"

#include "core/json_limits.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>
#include <stdexcept>

#include "loadgen/detail/shipped_profiles.hpp"

namespace syncstorm::loadgen {
namespace {

using json = nlohmann::json;

// A JSON pointer (RFC 6901) resolved without exceptions: nullptr when a step is missing.
const json* resolve(const json& doc, std::string_view ptr) {
  const json* cur = &doc;
  std::size_t i = 0;
  if (ptr.empty()) return cur;
  if (ptr[0] != '/') return nullptr;
  while (i < ptr.size()) {
    ++i;  // the '/'
    std::string token;
    while (i < ptr.size() && ptr[i] != '/') {
      if (ptr[i] == '~' && i + 1 < ptr.size()) {
        token += ptr[i + 1] == '1' ? '/' : '~';
        i += 2;
      } else {
        token += ptr[i++];
      }
    }
    if (cur->is_object()) {
      auto it = cur->find(token);
      if (it == cur->end()) return nullptr;
      cur = &*it;
    } else if (cur->is_array()) {
      if (token.empty() || token.size() > 9 || token.find_first_not_of("0123456789") != std::string::npos)
        return nullptr;
      const std::size_t idx = std::stoul(token);
      if (idx >= cur->size()) return nullptr;
      cur = &(*cur)[idx];
    } else {
      return nullptr;
    }
  }
  return cur;
}

std::string shown(const json& v) { return json_excerpt(v, 80); }

// A reply parsed within the nesting bound (core/json_limits.hpp); a discarded value with `reason`
// set when it is not JSON or nests too deep.
json parse_reply(std::string_view body, const char* what, std::string& reason) {
  bool deep = false;
  json doc = parse_bounded(body, max_json_depth, &deep);
  if (doc.is_discarded())
    reason =
        std::string(what) +
        (deep ? " nests deeper than " + std::to_string(max_json_depth) + " levels: " : std::string(" is not JSON: ")) +
        text_excerpt(body, 80);
  return doc;
}

// Scalars that identify something (an id, a cursor, a status) as text: strings as they are,
// integers in decimal. Anything else: nullopt.
std::optional<std::string> as_text(const json* v) {
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (v->is_number_integer() || v->is_number_unsigned()) return v->dump();
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e15)
      return std::to_string(static_cast<std::int64_t>(d));
  }
  return std::nullopt;
}

// A per-op result's status as text: as_text, plus booleans as "true" / "false".
std::optional<std::string> status_text(const json* v) {
  if (v && v->is_boolean()) return std::string(v->get<bool>() ? "true" : "false");
  return as_text(v);
}

std::optional<std::int64_t> as_int(const json* v) {
  if (!v) return std::nullopt;
  if (v->is_number_integer()) return v->get<std::int64_t>();
  if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (v->is_number_float()) {
    const double d = v->get<double>();
    if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9e18) return static_cast<std::int64_t>(d);
    return std::nullopt;
  }
  if (v->is_string()) {
    const auto& s = v->get_ref<const std::string&>();
    if (s.empty() || s.size() > 19) return std::nullopt;
    std::size_t i = s[0] == '-' ? 1 : 0;
    if (i == s.size() || s.find_first_not_of("0123456789", i) != std::string::npos) return std::nullopt;
    // 19 digits may still be past INT64_MAX: out of range is "not an integer", never a throw.
    std::int64_t n = 0;
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return n;
  }
  return std::nullopt;
}

std::optional<double> as_number(const json* v) {
  if (!v) return std::nullopt;
  if (v->is_number()) return v->get<double>();
  if (v->is_string()) {
    // PostgreSQL numerics sometimes travel as strings.
    const auto& s = v->get_ref<const std::string&>();
    char* end = nullptr;
    const double d = std::strtod(s.c_str(), &end);
    if (!s.empty() && end == s.c_str() + s.size() && std::isfinite(d)) return d;
  }
  return std::nullopt;
}

// --- profile parsing -------------------------------------------------------------------------

class profile_reader {
 public:
  explicit profile_reader(std::string where) : where_(std::move(where)) {}

  std::vector<std::string> errors;

  // Checks that `obj` (at path) is an object holding only `allowed` keys.
  bool object_at(const json& obj, const std::string& path, std::initializer_list<const char*> allowed) {
    if (!obj.is_object()) {
      errors.push_back(path + ": found " + shown(obj) + "; expected an object");
      return false;
    }
    for (const auto& [k, v] : obj.items()) {
      bool ok = false;
      for (const char* a : allowed) ok |= k == a;
      if (!ok) {
        std::string list;
        for (const char* a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        errors.push_back(path + "." + k + ": found an unknown key; expected one of " + list);
      }
    }
    return true;
  }

  void pointer(const json& obj, const std::string& path, const char* key, std::string& out, bool allow_empty = false) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!it->is_string() ||
        (it->get_ref<const std::string&>().empty() ? !allow_empty : (*it).get<std::string>()[0] != '/')) {
      errors.push_back(path + "." + key + ": found " + shown(*it) + "; expected a JSON pointer like \"/" +
                       std::string(key) + "\"");
      return;
    }
    out = it->get<std::string>();
  }

  void text(const json& obj, const std::string& path, const char* key, std::string& out, bool is_path = false) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!it->is_string() || it->get_ref<const std::string&>().empty() ||
        (is_path && it->get<std::string>()[0] != '/') ||
        it->get<std::string>().find_first_of(" \r\n") != std::string::npos) {
      errors.push_back(path + "." + key + ": found " + shown(*it) + "; expected " +
                       (is_path ? "a path starting with \"/\"" : "a non-empty string without spaces"));
      return;
    }
    out = it->get<std::string>();
  }

  void strings(const json& obj, const std::string& path, const char* key, std::vector<std::string>& out) {
    auto it = obj.find(key);
    if (it == obj.end()) return;
    std::vector<std::string> v;
    bool ok = it->is_array() && !it->empty();
    if (ok)
      for (const auto& s : *it) {
        if (auto t = status_text(&s))
          v.push_back(*t);
        else
          ok = false;
      }
    if (!ok) {
      errors.push_back(path + "." + key + ": found " + shown(*it) + "; expected a non-empty array of statuses");
      return;
    }
    out = std::move(v);
  }

  // Fixed query parameters: an object of names to scalar values (sent as text, percent-encoded).
  void query(const json& obj, const std::string& path, query_params& out) {
    auto it = obj.find("query");
    if (it == obj.end()) return;
    bool ok = it->is_object();
    query_params q;
    if (ok)
      for (const auto& [k, v] : it->items()) {
        auto t = status_text(&v);
        if (k.empty() || !t)
          ok = false;
        else
          q.emplace_back(k, *t);
      }
    if (!ok) {
      errors.push_back(path + ".query: found " + shown(*it) +
                       "; expected an object of parameter names to strings, like {\"include_docs\": \"true\"}");
      return;
    }
    out = std::move(q);
  }

  // A template: placeholders must be known names.
  void check_template(const json& t, const std::string& path, const std::set<std::string>& names) {
    if (t.is_object()) {
      for (const auto& [k, v] : t.items()) check_template(v, path + "." + k, names);
    } else if (t.is_array()) {
      for (std::size_t i = 0; i < t.size(); ++i) check_template(t[i], path + "[" + std::to_string(i) + "]", names);
    } else if (t.is_string()) {
      const auto& s = t.get_ref<const std::string&>();
      std::size_t at = 0;
      while ((at = s.find("{{", at)) != std::string::npos) {
        const auto end = s.find("}}", at);
        if (end == std::string::npos) {
          errors.push_back(path + ": found " + shown(t) + "; expected \"{{\" closed by \"}}\"");
          return;
        }
        const std::string name = s.substr(at + 2, end - at - 2);
        if (!names.count(name)) {
          std::string list;
          for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
          errors.push_back(path + ": found placeholder {{" + name + "}}; expected one of " + list);
        }
        at = end + 2;
      }
    }
  }

  sync_profile read(const json& j) {
    sync_profile p;
    if (j.is_null()) return p;
    if (j.is_string()) {
      // A shipped profile by name (profiles/<name>.json, built in).
      const json* doc = shipped_profile(j.get<std::string>());
      if (!doc) {
        std::string list;
        for (const auto& n : shipped_profile_names()) list += (list.empty() ? "" : ", ") + n;
        errors.push_back(where_ + ": found " + shown(j) + "; expected an object or the name of a shipped profile (" +
                         list + ")");
        return p;
      }
      p = read_object(*doc);
      p.name = j.get<std::string>();
      return p;
    }
    return read_object(j);
  }

  sync_profile read_object(const json& j) {
    sync_profile p;
    if (!object_at(j, where_, {"description", "ops", "push", "changes", "records", "ws"})) return p;
    if (auto it = j.find("description"); it != j.end() && !it->is_string())
      errors.push_back(where_ + ".description: found " + shown(*it) + "; expected a string");
    if (auto it = j.find("ops"); it != j.end()) {
      std::vector<op_kind> kinds;
      bool ok = it->is_array() && !it->empty();
      if (ok)
        for (const auto& k : *it) {
          if (k == "append")
            kinds.push_back(op_kind::append);
          else if (k == "add")
            kinds.push_back(op_kind::add);
          else if (k == "set")
            kinds.push_back(op_kind::set);
          else
            ok = false;
        }
      if (ok)
        p.kinds = std::move(kinds);
      else
        errors.push_back(where_ + ".ops: found " + shown(*it) +
                         "; expected a non-empty array of op kinds (\"append\", \"add\", \"set\")");
    }
    const std::set<std::string> op_names = {"id",  "stream", "seq",          "t_us",  "kind",
                                            "key", "delta",  "base_version", "value", "client"};
    if (auto it = j.find("push"); it != j.end()) {
      const std::string w = where_ + ".push";
      if (object_at(*it, w, {"path", "query", "method", "body", "op", "ack", "conflicts"})) {
        const json& o = *it;
        text(o, w, "path", p.push_path, true);
        query(o, w, p.push_query);
        text(o, w, "method", p.push_method);
        if (o.contains("body")) {
          if (!o["body"].is_object())
            errors.push_back(w + ".body: found " + shown(o["body"]) + "; expected an object (the envelope template)");
          else {
            check_template(o["body"], w + ".body", {"client", "ops"});
            if (o["body"].dump().find("{{ops}}") == std::string::npos)
              errors.push_back(w + ".body: found no \"{{ops}}\"; expected the envelope to hold the ops");
            p.push_body = o["body"];
          }
        }
        if (o.contains("op")) {
          if (!o["op"].is_object())
            errors.push_back(w + ".op: found " + shown(o["op"]) + "; expected an object (one op's template)");
          else {
            check_template(o["op"], w + ".op", op_names);
            p.push_op = o["op"];
          }
        }
        if (o.contains("ack")) {
          const std::string a = w + ".ack";
          if (object_at(o["ack"], a,
                        {"acked", "results", "id", "status", "ok", "conflict", "ok_flag", "missing_status"})) {
            const json& ack = o["ack"];
            if (ack.contains("acked") && ack.contains("results"))
              errors.push_back(a + ": found both \"acked\" and \"results\"; expected one of them");
            pointer(ack, a, "acked", p.acked_ptr, true);
            if (ack.contains("results")) {
              p.ack_by_results = true;
              pointer(ack, a, "results", p.results_ptr, true);
              pointer(ack, a, "id", p.result_id_ptr, true);
              pointer(ack, a, "status", p.result_status_ptr, true);
              strings(ack, a, "ok", p.result_ok);
              strings(ack, a, "conflict", p.result_conflict);
              pointer(ack, a, "ok_flag", p.result_flag_ptr);
              if (auto ms = ack.find("missing_status"); ms != ack.end()) {
                if (auto t = status_text(&*ms))
                  p.missing_status = *t;
                else
                  errors.push_back(a + ".missing_status: found " + shown(*ms) + "; expected a status like \"ok\"");
              }
            } else {
              for (const char* k : {"id", "status", "ok", "conflict", "ok_flag", "missing_status"})
                if (ack.contains(k))
                  errors.push_back(a + "." + k + ": found a per-op result key; expected \"results\" beside it");
            }
          }
        }
        if (o.contains("conflicts")) {
          const std::string c = w + ".conflicts";
          if (o["conflicts"].is_null()) {
            p.conflicts_ptr.clear();
          } else if (object_at(o["conflicts"], c, {"list", "id", "key", "version", "value"})) {
            const json& cf = o["conflicts"];
            pointer(cf, c, "list", p.conflicts_ptr, true);
            pointer(cf, c, "id", p.conflict_id_ptr, true);
            pointer(cf, c, "key", p.conflict_key_ptr, true);
            pointer(cf, c, "version", p.conflict_version_ptr, true);
            pointer(cf, c, "value", p.conflict_value_ptr, true);
          }
        }
      }
    }
    if (auto it = j.find("changes"); it != j.end()) {
      const std::string w = where_ + ".changes";
      if (object_at(*it, w,
                    {"path", "query", "feed", "stream_param", "cursor_param", "limit_param", "list", "next", "id",
                     "stream", "seq", "cursor", "commit_us", "kind", "key", "delta", "value"})) {
        const json& o = *it;
        text(o, w, "path", p.changes_path, true);
        query(o, w, p.changes_query);
        if (o.contains("feed")) {
          if (o["feed"] == "global")
            p.changes_per_stream = false;
          else if (o["feed"] == "per_stream")
            p.changes_per_stream = true;
          else
            errors.push_back(w + ".feed: found " + shown(o["feed"]) + "; expected \"global\" or \"per_stream\"");
        }
        text(o, w, "stream_param", p.stream_param);
        text(o, w, "cursor_param", p.cursor_param);
        text(o, w, "limit_param", p.limit_param);
        pointer(o, w, "list", p.changes_ptr, true);
        pointer(o, w, "next", p.next_ptr);
        pointer(o, w, "id", p.change_id_ptr);
        pointer(o, w, "stream", p.change_stream_ptr);
        pointer(o, w, "seq", p.change_seq_ptr);
        pointer(o, w, "cursor", p.change_cursor_ptr);
        pointer(o, w, "commit_us", p.change_commit_ptr);
        pointer(o, w, "kind", p.change_kind_ptr);
        pointer(o, w, "key", p.change_key_ptr);
        pointer(o, w, "delta", p.change_delta_ptr);
        pointer(o, w, "value", p.change_value_ptr);
      }
    }
    if (auto it = j.find("records"); it != j.end() && it->is_null()) {
      p.has_records = false;
    } else if (it != j.end()) {
      const std::string w = where_ + ".records";
      if (object_at(*it, w, {"path", "query", "stream_param", "list", "key", "value", "version"})) {
        const json& o = *it;
        text(o, w, "path", p.records_path, true);
        query(o, w, p.records_query);
        text(o, w, "stream_param", p.records_stream_param);
        pointer(o, w, "list", p.records_ptr, true);
        pointer(o, w, "key", p.record_key_ptr);
        pointer(o, w, "value", p.record_value_ptr);
        pointer(o, w, "version", p.record_version_ptr);
      }
    }
    if (auto it = j.find("ws"); it != j.end() && it->is_null()) {
      p.has_ws = false;
    } else if (it != j.end()) {
      const std::string w = where_ + ".ws";
      if (object_at(*it, w, {"path", "query", "streams_param", "cursor_param"})) {
        const json& o = *it;
        text(o, w, "path", p.ws_path, true);
        query(o, w, p.ws_query);
        text(o, w, "streams_param", p.ws_streams_param);
        text(o, w, "cursor_param", p.ws_cursor_param);
      }
    }
    return p;
  }

 private:
  std::string where_;
};

// --- templates -------------------------------------------------------------------------------

// Value of placeholder `name` for `op`, or nullopt when the op has none (the member is left out).
std::optional<json> op_value(const sync_op& op, std::string_view client, std::string_view name) {
  if (name == "id") return json(op.id);
  if (name == "stream") return json(op.stream);
  if (name == "seq") return json(op.seq);
  if (name == "t_us") return json(op.t_us);
  if (name == "kind") return json(std::string(to_string(op.kind)));
  if (name == "client") return json(std::string(client));
  if (name == "key") {
    if (op.kind == op_kind::append || op.key.empty()) return std::nullopt;
    return json(op.key);
  }
  if (name == "delta") {
    if (op.kind != op_kind::add) return std::nullopt;
    if (std::isfinite(op.delta) && op.delta == std::floor(op.delta) && std::fabs(op.delta) < 9e15)
      return json(static_cast<std::int64_t>(op.delta));
    return json(op.delta);
  }
  if (name == "base_version") {
    if (op.kind != op_kind::set) return std::nullopt;
    return json(op.base_version);
  }
  if (name == "value") {
    if (op.kind == op_kind::set) return op.value;
    if (op.kind == op_kind::append && !op.value.is_null()) return op.value;
    return std::nullopt;
  }
  return std::nullopt;
}

using lookup_fn = std::optional<json> (*)(const void* ctx, std::string_view name);

// Replaces placeholders in `t`. Returns nullopt when `t` is exactly a placeholder without a value.
std::optional<json> expand(const json& t, const void* ctx, lookup_fn lookup) {
  if (t.is_string()) {
    const auto& s = t.get_ref<const std::string&>();
    if (s.size() > 4 && s.rfind("{{", 0) == 0 && s.find("}}") == s.size() - 2)
      return lookup(ctx, std::string_view(s).substr(2, s.size() - 4));
    if (s.find("{{") == std::string::npos) return t;
    std::string out;
    std::size_t at = 0;
    while (at < s.size()) {
      const auto open = s.find("{{", at);
      const auto close = open == std::string::npos ? std::string::npos : s.find("}}", open);
      if (close == std::string::npos) {
        out += s.substr(at);
        break;
      }
      out += s.substr(at, open - at);
      if (auto v = lookup(ctx, std::string_view(s).substr(open + 2, close - open - 2)))
        out += v->is_string() ? v->get<std::string>() : v->dump();
      at = close + 2;
    }
    return json(out);
  }
  if (t.is_object()) {
    json o = json::object();
    for (const auto& [k, v] : t.items())
      if (auto e = expand(v, ctx, lookup)) o[k] = std::move(*e);
    return o;
  }
  if (t.is_array()) {
    json a = json::array();
    for (const auto& v : t)
      if (auto e = expand(v, ctx, lookup)) a.push_back(std::move(*e));
    return a;
  }
  return t;
}

const json& v1_op_template() {
  static const json t = {
      {"id", "{{id}}"},     {"stream", "{{stream}}"}, {"seq", "{{seq}}"},     {"t_us", "{{t_us}}"},
      {"kind", "{{kind}}"}, {"key", "{{key}}"},       {"delta", "{{delta}}"}, {"base_version", "{{base_version}}"},
      {"body", "{{value}}"}};
  return t;
}

struct op_ctx {
  const sync_op* op;
  std::string_view client;
};

struct envelope_ctx {
  std::string_view client;
  const json* ops;
};

std::string percent_encode(std::string_view s) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
      out += static_cast<char>(c);
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

void add_param(std::string& target, std::string_view name, std::string_view encoded_value) {
  target += target.find('?') == std::string::npos ? '?' : '&';
  target += name;
  target += '=';
  target += encoded_value;
}

// `path` with the profile's fixed query parameters.
std::string with_query(const std::string& path, const query_params& q) {
  std::string t = path;
  for (const auto& [k, v] : q) add_param(t, percent_encode(k), percent_encode(v));
  return t;
}

std::optional<server_change> read_change(const sync_profile& p, const json& e, std::string& reason) {
  server_change c;
  auto id = as_text(resolve(e, p.change_id_ptr));
  if (!id || id->empty()) {
    reason = "change " + shown(e) + ": no id at " + p.change_id_ptr;
    return std::nullopt;
  }
  c.id = std::move(*id);
  if (auto s = resolve(e, p.change_stream_ptr); s && s->is_string()) {
    c.stream = s->get<std::string>();
    c.fields |= 1;
  }
  if (auto s = as_int(resolve(e, p.change_seq_ptr))) {
    c.seq = *s;
    c.fields |= 2;
  }
  if (auto s = as_text(resolve(e, p.change_cursor_ptr))) c.cursor = *s;
  if (auto s = as_int(resolve(e, p.change_commit_ptr))) c.commit_us = *s;
  if (auto s = resolve(e, p.change_kind_ptr); s && s->is_string()) {
    c.kind = s->get<std::string>();
    c.fields |= 4;
  }
  if (auto s = resolve(e, p.change_key_ptr); s && s->is_string()) {
    c.key = s->get<std::string>();
    c.fields |= 8;
  }
  if (auto s = as_number(resolve(e, p.change_delta_ptr))) {
    c.delta = *s;
    c.fields |= 16;
  }
  if (auto s = resolve(e, p.change_value_ptr)) {
    c.value = *s;
    c.fields |= 32;
  }
  return c;
}

}  // namespace

std::string_view to_string(op_kind k) noexcept {
  switch (k) {
    case op_kind::append:
      return "append";
    case op_kind::add:
      return "add";
    case op_kind::set:
      return "set";
  }
  return "append";
}

std::vector<std::string> profile_errors(const nlohmann::json& j, std::string_view where) {
  profile_reader r{std::string(where)};
  r.read(j);
  return r.errors;
}

sync_profile parse_profile(const nlohmann::json& j, std::string_view where) {
  profile_reader r{std::string(where)};
  sync_profile p = r.read(j);
  if (!r.errors.empty()) throw std::invalid_argument(r.errors.front());
  return p;
}

std::string render_push(const sync_profile& p, std::string_view client, const std::vector<sync_op>& ops) {
  const json& op_t = p.push_op.is_null() ? v1_op_template() : p.push_op;
  json rendered = json::array();
  for (const auto& op : ops) {
    op_ctx ctx{&op, client};
    auto e = expand(op_t, &ctx, [](const void* c, std::string_view name) {
      const auto* x = static_cast<const op_ctx*>(c);
      return op_value(*x->op, x->client, name);
    });
    rendered.push_back(e ? std::move(*e) : json::object());
  }
  envelope_ctx ctx{client, &rendered};
  auto body = expand(p.push_body, &ctx, [](const void* c, std::string_view name) -> std::optional<json> {
    const auto* x = static_cast<const envelope_ctx*>(c);
    if (name == "client") return json(std::string(x->client));
    if (name == "ops") return *x->ops;
    if (name == "count") return json(x->ops->size());
    return std::nullopt;
  });
  return (body ? *body : json::object()).dump(-1, ' ', false, json::error_handler_t::replace);
}

push_reply parse_push_reply(const sync_profile& p, std::string_view body) {
  push_reply r;
  const json doc = parse_reply(body, "push reply", r.reason);
  if (doc.is_discarded()) {
    r.malformed = true;
    return r;
  }
  auto malformed = [&](std::string why) {
    r = push_reply{};
    r.malformed = true;
    r.reason = std::move(why);
    return r;
  };
  auto read_conflict = [&](const json& e) -> std::optional<push_conflict> {
    push_conflict c;
    auto id = as_text(resolve(e, p.conflict_id_ptr));
    if (!id) return std::nullopt;
    c.id = *id;
    if (auto k = resolve(e, p.conflict_key_ptr); k && k->is_string()) c.key = k->get<std::string>();
    if (auto v = as_int(resolve(e, p.conflict_version_ptr)))
      c.version = *v;
    else
      return std::nullopt;  // a conflict without the current version cannot be rebased
    if (auto v = resolve(e, p.conflict_value_ptr)) c.value = *v;
    return c;
  };
  if (!p.ack_by_results) {
    const json* acked = resolve(doc, p.acked_ptr);
    if (!acked || !acked->is_array())
      return malformed("push reply " + p.acked_ptr + ": found " + (acked ? shown(*acked) : "nothing") +
                       "; expected an array of op ids");
    for (const auto& a : *acked) {
      auto id = as_text(&a);
      if (!id)
        return malformed("push reply " + p.acked_ptr + ": found " + shown(a) + " in the list; expected an op id");
      r.acked.push_back(std::move(*id));
    }
  } else {
    const json* results = resolve(doc, p.results_ptr);
    if (!results || !results->is_array())
      return malformed("push reply " + (p.results_ptr.empty() ? std::string("(root)") : p.results_ptr) + ": found " +
                       (results ? shown(*results) : "nothing") + "; expected an array of per-op results");
    for (const auto& e : *results) {
      auto id = as_text(resolve(e, p.result_id_ptr));
      if (id && !p.result_flag_ptr.empty()) {
        if (const json* f = resolve(e, p.result_flag_ptr); f && f->is_boolean() && f->get<bool>()) {
          r.acked.push_back(std::move(*id));
          continue;
        }
      }
      const json* status_at = resolve(e, p.result_status_ptr);
      auto status = status_text(status_at);
      if (!status_at && p.missing_status) status = p.missing_status;
      if (!id || !status)
        return malformed("push reply result " + shown(e) + ": expected an id at " + p.result_id_ptr +
                         " and a status at " + p.result_status_ptr);
      if (std::find(p.result_ok.begin(), p.result_ok.end(), *status) != p.result_ok.end()) {
        r.acked.push_back(std::move(*id));
      } else if (std::find(p.result_conflict.begin(), p.result_conflict.end(), *status) != p.result_conflict.end()) {
        auto c = read_conflict(e);
        if (!c)
          return malformed("push reply conflict " + shown(e) + ": expected an id and an integer version at " +
                           p.conflict_version_ptr);
        r.conflicts.push_back(std::move(*c));
      } else {
        r.rejected.push_back(std::move(*id));
      }
    }
  }
  if (!p.conflicts_ptr.empty()) {
    if (const json* list = resolve(doc, p.conflicts_ptr); list && !list->is_null()) {
      if (!list->is_array())
        return malformed("push reply " + p.conflicts_ptr + ": found " + shown(*list) +
                         "; expected an array of conflicts");
      for (const auto& e : *list) {
        auto c = read_conflict(e);
        if (!c)
          return malformed("push reply conflict " + shown(e) + ": expected an id at " + p.conflict_id_ptr +
                           " and an integer version at " + p.conflict_version_ptr);
        r.conflicts.push_back(std::move(*c));
      }
    }
  }
  return r;
}

std::vector<std::string> shipped_profile_names() {
  std::vector<std::string> out;
  for (const auto& s : detail::shipped_profiles()) out.emplace_back(s.name);
  std::sort(out.begin(), out.end());
  return out;
}

const nlohmann::json* shipped_profile(std::string_view name) {
  // Parsed once, on first use (thread-safe static initialisation).
  static const std::vector<std::pair<std::string, json>> parsed = [] {
    std::vector<std::pair<std::string, json>> v;
    for (const auto& s : detail::shipped_profiles()) v.emplace_back(std::string(s.name), json::parse(s.text));
    return v;
  }();
  for (const auto& [n, doc] : parsed)
    if (n == name) return &doc;
  return nullptr;
}

std::string profile_label(const sync_profile& p) {
  return p.name.empty() ? std::string("target.profile") : "the " + p.name + " profile";
}

std::string push_target(const sync_profile& p) { return with_query(p.push_path, p.push_query); }

std::string changes_target(const sync_profile& p, const std::string* stream, std::string_view cursor,
                           std::size_t limit) {
  std::string t = with_query(p.changes_path, p.changes_query);
  if (stream) add_param(t, p.stream_param, percent_encode(*stream));
  if (!cursor.empty()) add_param(t, p.cursor_param, percent_encode(cursor));
  if (limit != 0) add_param(t, p.limit_param, std::to_string(limit));
  return t;
}

std::string records_target(const sync_profile& p, const std::string& stream) {
  std::string t = with_query(p.records_path, p.records_query);
  add_param(t, p.records_stream_param, percent_encode(stream));
  return t;
}

std::string ws_target(const sync_profile& p, const std::vector<std::string>& streams, std::string_view cursor) {
  std::string t = with_query(p.ws_path, p.ws_query);
  std::string list;
  for (const auto& s : streams) list += (list.empty() ? "" : ",") + percent_encode(s);
  add_param(t, p.ws_streams_param, list);
  if (!cursor.empty()) add_param(t, p.ws_cursor_param, percent_encode(cursor));
  return t;
}

changes_page parse_changes(const sync_profile& p, std::string_view body) {
  changes_page page;
  std::string not_json;
  const json doc = parse_reply(body, "changes reply", not_json);
  auto malformed = [&](std::string why) {
    page = changes_page{};
    page.malformed = true;
    page.reason = std::move(why);
    return page;
  };
  if (doc.is_discarded()) return malformed(not_json);
  const json* list = resolve(doc, p.changes_ptr);
  if (!list || !list->is_array())
    return malformed("changes reply " + p.changes_ptr + ": found " + (list ? shown(*list) : "nothing") +
                     "; expected an array of changes");
  page.changes.reserve(list->size());
  for (const auto& e : *list) {
    std::string reason;
    auto c = read_change(p, e, reason);
    if (!c) return malformed(reason);
    page.changes.push_back(std::move(*c));
  }
  if (auto next = as_text(resolve(doc, p.next_ptr)))
    page.next = *next;
  else if (const json* n = resolve(doc, p.next_ptr); n && !n->is_null())
    return malformed("changes reply " + p.next_ptr + ": found " + shown(*n) + "; expected a cursor");
  else if (!page.changes.empty())
    page.next = page.changes.back().cursor;
  return page;
}

std::optional<server_change> parse_change_frame(const sync_profile& p, std::string_view frame, std::string& reason) {
  const json doc = parse_reply(frame, "change frame", reason);
  if (doc.is_discarded()) return std::nullopt;
  return read_change(p, doc, reason);
}

records_page parse_records(const sync_profile& p, std::string_view body) {
  records_page page;
  std::string not_json;
  const json doc = parse_reply(body, "records reply", not_json);
  auto malformed = [&](std::string why) {
    page = records_page{};
    page.malformed = true;
    page.reason = std::move(why);
    return page;
  };
  if (doc.is_discarded()) return malformed(not_json);
  const json* list = resolve(doc, p.records_ptr);
  if (!list || !list->is_array())
    return malformed("records reply " + p.records_ptr + ": found " + (list ? shown(*list) : "nothing") +
                     "; expected an array of records");
  for (const auto& e : *list) {
    server_record r;
    const json* key = resolve(e, p.record_key_ptr);
    if (!key || !key->is_string()) return malformed("record " + shown(e) + ": no key at " + p.record_key_ptr);
    r.key = key->get<std::string>();
    if (const json* v = resolve(e, p.record_value_ptr)) r.value = *v;
    if (auto v = as_int(resolve(e, p.record_version_ptr))) r.version = *v;
    page.records.push_back(std::move(r));
  }
  return page;
}

}  // namespace syncstorm::loadgen
