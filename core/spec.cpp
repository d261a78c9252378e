// The spec tree's three readers: validation, JSON Schema generation and the time-scale rewrite.
// All recursive over the same `node`, so the schema and the validator cannot drift apart.
#include "core/spec.hpp"

#include "core/units.hpp"

#include <algorithm>
#include <cmath>
#include <regex>
#include <set>

namespace syncstorm::spec {
namespace {

constexpr const char* duration_pattern = R"(^([0-9]+(\.[0-9]+)?(us|ms|s|m|h|d))+$|^[0-9]+(\.[0-9]+)?$)";
constexpr const char* rate_pattern = R"(^[0-9]+(\.[0-9]+)?(/s|/m|/min|/h)?$)";
constexpr const char* size_pattern = R"(^[0-9]+(\.[0-9]+)?(B|KB|MB|GB|TB|K|KiB|M|MiB|G|GiB|TiB)?$)";
constexpr const char* percent_pattern = R"(^[0-9]+(\.[0-9]+)?%?$)";
constexpr const char* bandwidth_pattern =
    R"(^[0-9]+(\.[0-9]+)?(bit/s|bps|kbit/s|kbps|Kbit/s|Mbit/s|Mbps|Gbit/s|Gbps|B/s|KB/s|MB/s|GB/s|KiB/s|MiB/s|GiB/s)$)";

node_ptr make(type t, std::string doc) {
  auto n = std::make_shared<node>();
  n->t = t;
  n->doc = std::move(doc);
  return n;
}

std::string key_path(const std::string& path, const std::string& key) {
  bool ident = !key.empty() && std::all_of(key.begin(), key.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
  return ident ? path + "." + key : path + "[" + json(key).dump() + "]";
}

std::string number_text(double v) {
  if (std::floor(v) == v && std::abs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  return json(v).dump();
}

std::string range_words(const node& n) {
  if (n.minimum && n.maximum) {
    return " from " + number_text(*n.minimum) + " to " + number_text(*n.maximum);
  }
  if (n.minimum) return " of at least " + number_text(*n.minimum);
  if (n.maximum) return " of at most " + number_text(*n.maximum);
  return "";
}

std::string quoted_list(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += json(v[i]).dump();
  }
  return s;
}

std::string plain_list(const std::vector<std::string>& v) {
  std::string s;
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    s += v[i];
  }
  return s;
}

// What a value of this node looks like, for "expected ...".
std::string expectation(const node& n) {
  if (!n.expect.empty()) return n.expect;
  switch (n.t) {
    case type::string:
      return "a string";
    case type::integer:
      return "an integer" + range_words(n);
    case type::number:
      return "a number" + range_words(n);
    case type::boolean:
      return "true or false";
    case type::duration:
      return "a duration like \"30s\"";
    case type::rate:
      return "a rate like \"50/s\" or a number per second, at most 10000000/s";
    case type::size:
      return "a size like \"256MiB\" or a number of bytes";
    case type::percent:
      return "a percentage from 0 to 100 like \"90%\"";
    case type::bandwidth:
      return "a bandwidth like \"10Mbit/s\"";
    case type::enumeration:
      return "one of " + quoted_list(n.values);
    case type::object:
    case type::tagged:
      return "an object";
    case type::array:
      return "an array";
    case type::string_map:
      return "an object of string values";
    case type::choice:
      return "one of several forms";
    case type::any:
      return "any value";
  }
  return "a value";
}

bool check_range(const json& v, const node& n) {
  double d = v.get<double>();
  if (n.minimum && d < *n.minimum) return false;
  if (n.maximum && d > *n.maximum) return false;
  return true;
}

void validate_fields(const json& value, const std::vector<field>& fields, const node& n, const std::string& path,
                     errors& out, const std::string& skip_key) {
  // Keys that start with "$" (the scenario's "$schema") are metadata for editors: accepted, but
  // not offered in "expected one of" lists or did-you-mean hints.
  std::vector<std::string> names;
  for (const auto& f : fields)
    if (f.name.empty() || f.name[0] != '$') names.push_back(f.name);
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (it.key() == skip_key) continue;
    auto f = std::find_if(fields.begin(), fields.end(), [&](const field& x) { return x.name == it.key(); });
    if (f == fields.end()) {
      std::string msg = key_path(path, it.key()) + ": found unknown key " + json(it.key()).dump() +
                        "; expected one of: " + plain_list(names);
      auto hint = did_you_mean(it.key(), names);
      if (!hint.empty()) msg += " (did you mean " + json(hint).dump() + "?)";
      out.push_back(std::move(msg));
      continue;
    }
    validate(it.value(), *f->n, key_path(path, it.key()), out);
  }
  for (const auto& f : fields) {
    if (f.required && !value.contains(f.name)) {
      out.push_back(key_path(path, f.name) + ": found nothing; expected " + expectation(*f.n) + " (required)");
    }
  }
  auto present = [&](const std::vector<std::string>& keys) {
    std::vector<std::string> p;
    for (const auto& k : keys)
      if (value.contains(k)) p.push_back(k);
    return p;
  };
  for (const auto& group : n.exactly_one) {
    auto p = present(group);
    if (p.size() != 1) {
      out.push_back(path + ": found " + (p.empty() ? std::string("none of them") : "both " + quoted_list(p)) +
                    "; expected exactly one of " + quoted_list(group));
    }
  }
  for (const auto& group : n.at_least_one) {
    if (present(group).empty()) {
      out.push_back(path + ": found none of them; expected at least one of " + quoted_list(group));
    }
  }
  for (const auto& group : n.at_most_one) {
    auto p = present(group);
    if (p.size() > 1) {
      out.push_back(path + ": found both " + quoted_list(p) + "; expected at most one of " + quoted_list(group));
    }
  }
}

std::vector<std::string> available_tags(const node& n) {
  std::vector<std::string> v;
  for (const auto& [k, var] : n.variants)
    if (var.available) v.push_back(k);
  return v;
}

json field_schema(const std::vector<field>& fields, json& required) {
  json props = json::object();
  for (const auto& f : fields) {
    props[f.name] = to_schema(*f.n);
    if (f.required) required.push_back(f.name);
  }
  return props;
}

void add_group_constraints(const node& n, json& s) {
  json all = json::array();
  for (const auto& g : n.exactly_one) {
    json alts = json::array();
    for (const auto& k : g) {
      json others = json::array();
      for (const auto& o : g)
        if (o != k) others.push_back(json{{"required", {o}}});
      json alt = {{"required", {k}}};
      if (!others.empty()) alt["not"] = {{"anyOf", others}};
      alts.push_back(alt);
    }
    all.push_back({{"oneOf", alts}});
  }
  for (const auto& g : n.at_least_one) {
    json alts = json::array();
    for (const auto& k : g) alts.push_back({{"required", {k}}});
    all.push_back({{"anyOf", alts}});
  }
  for (const auto& g : n.at_most_one) {
    for (std::size_t i = 0; i < g.size(); ++i)
      for (std::size_t j = i + 1; j < g.size(); ++j) all.push_back({{"not", {{"required", {g[i], g[j]}}}}});
  }
  if (!all.empty()) {
    if (s.contains("allOf"))
      for (auto& x : all) s["allOf"].push_back(x);
    else
      s["allOf"] = all;
  }
}

std::size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      std::size_t sub = prev[j - 1] + (std::tolower(a[i - 1]) == std::tolower(b[j - 1]) ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

node_ptr string(std::string doc, std::string pattern, std::string expect) {
  auto n = std::make_shared<node>();
  n->t = type::string;
  n->doc = std::move(doc);
  n->pattern = std::move(pattern);
  n->expect = std::move(expect);
  return n;
}
node_ptr integer(std::string doc, std::optional<double> min, std::optional<double> max) {
  auto n = std::make_shared<node>();
  n->t = type::integer;
  n->doc = std::move(doc);
  n->minimum = min;
  n->maximum = max;
  return n;
}
node_ptr number(std::string doc, std::optional<double> min, std::optional<double> max) {
  auto n = std::make_shared<node>();
  n->t = type::number;
  n->doc = std::move(doc);
  n->minimum = min;
  n->maximum = max;
  return n;
}
node_ptr boolean(std::string doc) { return make(type::boolean, std::move(doc)); }
node_ptr duration(std::string doc, bool time_scaled) {
  auto n = std::make_shared<node>();
  n->t = type::duration;
  n->doc = std::move(doc);
  n->time_scaled = time_scaled;
  return n;
}
node_ptr rate(std::string doc) { return make(type::rate, std::move(doc)); }
node_ptr size(std::string doc) { return make(type::size, std::move(doc)); }
node_ptr percent(std::string doc) { return make(type::percent, std::move(doc)); }
node_ptr bandwidth(std::string doc) { return make(type::bandwidth, std::move(doc)); }
node_ptr enumeration(std::string doc, std::vector<std::string> values) {
  auto n = std::make_shared<node>();
  n->t = type::enumeration;
  n->doc = std::move(doc);
  n->values = std::move(values);
  return n;
}
node_ptr object(std::string doc, std::vector<field> fields) {
  auto n = std::make_shared<node>();
  n->t = type::object;
  n->doc = std::move(doc);
  n->fields = std::move(fields);
  return n;
}
node_ptr array(std::string doc, node_ptr items, std::size_t min_items) {
  auto n = std::make_shared<node>();
  n->t = type::array;
  n->doc = std::move(doc);
  n->items = std::move(items);
  n->min_items = min_items;
  return n;
}
node_ptr string_map(std::string doc) { return make(type::string_map, std::move(doc)); }
node_ptr choice(std::string doc, std::vector<node_ptr> alternatives, std::string expect) {
  auto n = std::make_shared<node>();
  n->t = type::choice;
  n->doc = std::move(doc);
  n->alternatives = std::move(alternatives);
  n->expect = std::move(expect);
  return n;
}
node_ptr any(std::string doc) { return make(type::any, std::move(doc)); }
node_ptr nullable(node_ptr n) {
  return with(std::move(n), [](node& x) { x.nullable = true; });
}
node_ptr with(node_ptr n, const std::function<void(node&)>& edit) {
  auto copy = std::make_shared<node>(*n);
  edit(*copy);
  return copy;
}
field req(std::string name, node_ptr n) { return field{std::move(name), std::move(n), true}; }
field opt(std::string name, node_ptr n) { return field{std::move(name), std::move(n), false}; }

std::string render(const json& value) {
  std::string s = value.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = 3;
  for (const auto& c : candidates) {
    std::size_t d = edit_distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  if (best.empty()) {
    for (const auto& c : candidates) {
      if (word.size() >= 3 && (c.starts_with(word) || word.starts_with(c))) return c;
    }
  }
  return best;
}

void validate(const json& value, const node& n, const std::string& path, errors& out) {
  if (n.nullable && value.is_null()) return;
  auto bad = [&] { out.push_back(path + ": found " + render(value) + "; expected " + expectation(n)); };
  std::size_t before = out.size();
  switch (n.t) {
    case type::any:
      break;
    case type::string:
      if (!value.is_string()) {
        bad();
        break;
      }
      if (!n.pattern.empty() &&
          !std::regex_match(value.get<std::string>(), std::regex(n.pattern, std::regex::ECMAScript)))
        bad();
      break;
    case type::integer:
      if (!value.is_number_integer() || !check_range(value, n)) bad();
      break;
    case type::number:
      if (!value.is_number() || !check_range(value, n)) bad();
      break;
    case type::boolean:
      if (!value.is_boolean()) bad();
      break;
    case type::duration: {
      std::optional<std::int64_t> us;
      // A number is seconds, within what a duration string may say (9e15 µs).
      if (value.is_number() && std::isfinite(value.get<double>()) && value.get<double>() >= 0 &&
          value.get<double>() <= 9.0e9)
        us = static_cast<std::int64_t>(value.get<double>() * 1e6);
      else if (value.is_string())
        us = units::parse_duration_us(value.get<std::string>());
      if (!us || (n.minimum && static_cast<double>(*us) < *n.minimum * 1e6)) bad();
      break;
    }
    case type::rate: {
      std::optional<double> r;
      if (value.is_number() && std::isfinite(value.get<double>()) && value.get<double>() >= 0 &&
          value.get<double>() <= units::max_rate)
        r = value.get<double>();
      else if (value.is_string())
        r = units::parse_rate(value.get<std::string>());
      if (!r) bad();
      break;
    }
    case type::size: {
      bool ok = (value.is_number_integer() && value.get<std::int64_t>() >= 0) ||
                (value.is_string() && units::parse_size(value.get<std::string>()));
      if (!ok) bad();
      break;
    }
    case type::percent: {
      bool ok = (value.is_number() && value.get<double>() >= 0 && value.get<double>() <= 100) ||
                (value.is_string() && units::parse_percent(value.get<std::string>()));
      if (!ok) bad();
      break;
    }
    case type::bandwidth:
      if (!value.is_string() || !units::parse_bandwidth_bps(value.get<std::string>())) bad();
      break;
    case type::enumeration:
      if (!value.is_string() ||
          std::find(n.values.begin(), n.values.end(), value.get<std::string>()) == n.values.end()) {
        std::string msg = path + ": found " + render(value) + "; expected " + expectation(n);
        if (value.is_string()) {
          auto hint = did_you_mean(value.get<std::string>(), n.values);
          if (!hint.empty()) msg += " (did you mean " + json(hint).dump() + "?)";
        }
        out.push_back(std::move(msg));
      }
      break;
    case type::string_map:
      if (!value.is_object()) {
        bad();
        break;
      }
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!it.value().is_string()) {
          out.push_back(key_path(path, it.key()) + ": found " + render(it.value()) + "; expected a string");
        }
      }
      break;
    case type::object:
      if (!value.is_object()) {
        bad();
        break;
      }
      validate_fields(value, n.fields, n, path, out, {});
      break;
    case type::tagged: {
      if (!value.is_object()) {
        bad();
        break;
      }
      auto tags = available_tags(n);
      if (!value.contains(n.tag)) {
        out.push_back(key_path(path, n.tag) + ": found nothing; expected a " + n.tag_noun + ", one of " +
                      quoted_list(tags) + " (required)");
        break;
      }
      const json& tv = value.at(n.tag);
      auto it = tv.is_string() ? n.variants.find(tv.get<std::string>()) : n.variants.end();
      if (it == n.variants.end() || !it->second.available) {
        std::string msg = key_path(path, n.tag) + ": found " + render(tv) + "; expected a " + n.tag_noun +
                          " this build runs, one of " + quoted_list(tags);
        if (it != n.variants.end())
          msg += " (" + render(tv) + " is in the design but not yet implemented)";
        else if (tv.is_string()) {
          std::vector<std::string> all;
          for (const auto& [k, v] : n.variants) all.push_back(k);
          auto hint = did_you_mean(tv.get<std::string>(), all);
          if (!hint.empty()) msg += " (did you mean " + json(hint).dump() + "?)";
        }
        out.push_back(std::move(msg));
        if (it == n.variants.end()) {
          // Unknown variant: its keys are unknown too, so check only the common ones present.
          for (const auto& f : n.fields) {
            if (value.contains(f.name)) validate(value.at(f.name), *f.n, key_path(path, f.name), out);
          }
          break;
        }
      }
      std::vector<field> all = n.fields;
      all.insert(all.end(), it->second.fields.begin(), it->second.fields.end());
      validate_fields(value, all, n, path, out, n.tag);
      break;
    }
    case type::array:
      if (!value.is_array()) {
        bad();
        break;
      }
      if (value.size() < n.min_items) {
        out.push_back(path + ": found " + std::to_string(value.size()) + " items; expected at least " +
                      std::to_string(n.min_items));
      }
      for (std::size_t i = 0; i < value.size(); ++i) {
        validate(value[i], *n.items, path + "[" + std::to_string(i) + "]", out);
      }
      break;
    case type::choice: {
      for (const auto& alt : n.alternatives) {
        errors tmp;
        validate(value, *alt, path, tmp);
        if (tmp.empty()) return n.check ? n.check(value, path, out) : void();
      }
      bad();
      break;
    }
  }
  if (n.check && out.size() == before) n.check(value, path, out);
}

json to_schema(const node& n) {
  if (n.nullable) {
    node copy = n;
    copy.nullable = false;
    json inner = to_schema(copy);
    json s = {{"anyOf", json::array({inner, {{"type", "null"}}})}};
    if (!n.doc.empty()) s["description"] = n.doc;
    return s;
  }
  json s = json::object();
  if (!n.doc.empty()) s["description"] = n.doc;
  switch (n.t) {
    case type::any:
      break;
    case type::string:
      s["type"] = "string";
      if (!n.pattern.empty()) s["pattern"] = n.pattern;
      break;
    case type::integer:
    case type::number:
      s["type"] = n.t == type::integer ? "integer" : "number";
      if (n.minimum) s["minimum"] = *n.minimum;
      if (n.maximum) s["maximum"] = *n.maximum;
      break;
    case type::boolean:
      s["type"] = "boolean";
      break;
    case type::duration:
      s["anyOf"] = json::array({{{"type", "number"}, {"minimum", 0}, {"maximum", 9.0e9}},
                                {{"type", "string"}, {"pattern", duration_pattern}}});
      break;
    case type::rate:
      s["anyOf"] = json::array({{{"type", "number"}, {"minimum", 0}, {"maximum", units::max_rate}},
                                {{"type", "string"}, {"pattern", rate_pattern}}});
      break;
    case type::size:
      s["anyOf"] =
          json::array({{{"type", "integer"}, {"minimum", 0}}, {{"type", "string"}, {"pattern", size_pattern}}});
      break;
    case type::percent:
      s["anyOf"] = json::array(
          {{{"type", "number"}, {"minimum", 0}, {"maximum", 100}}, {{"type", "string"}, {"pattern", percent_pattern}}});
      break;
    case type::bandwidth:
      s["type"] = "string";
      s["pattern"] = bandwidth_pattern;
      break;
    case type::enumeration:
      s["enum"] = n.values;
      break;
    case type::string_map:
      s["type"] = "object";
      s["additionalProperties"] = {{"type", "string"}};
      break;
    case type::object: {
      s["type"] = "object";
      json required = json::array();
      s["properties"] = field_schema(n.fields, required);
      if (!required.empty()) s["required"] = required;
      s["additionalProperties"] = false;
      add_group_constraints(n, s);
      break;
    }
    case type::tagged: {
      s["type"] = "object";
      s["required"] = {n.tag};
      s["properties"] = {{n.tag, {{"enum", available_tags(n)}}}};
      json branches = json::array();
      for (const auto& [tag, var] : n.variants) {
        if (!var.available) continue;
        std::vector<field> all = n.fields;
        all.insert(all.end(), var.fields.begin(), var.fields.end());
        json required = json::array({n.tag});
        json props = field_schema(all, required);
        props[n.tag] = {{"const", tag}};
        json then = {{"properties", props}, {"required", required}, {"additionalProperties", false}};
        if (!var.doc.empty()) then["description"] = var.doc;
        branches.push_back(
            {{"if", {{"properties", {{n.tag, {{"const", tag}}}}}, {"required", {n.tag}}}}, {"then", then}});
      }
      if (!branches.empty()) s["allOf"] = branches;
      add_group_constraints(n, s);
      break;
    }
    case type::array:
      s["type"] = "array";
      s["items"] = to_schema(*n.items);
      if (n.min_items) s["minItems"] = n.min_items;
      break;
    case type::choice: {
      json alts = json::array();
      for (const auto& a : n.alternatives) alts.push_back(to_schema(*a));
      s["anyOf"] = alts;
      break;
    }
  }
  return s;
}

void scale_time(json& value, const node& n, double factor) {
  switch (n.t) {
    case type::duration: {
      if (!n.time_scaled) return;
      std::optional<std::int64_t> us;
      if (value.is_number())
        us = static_cast<std::int64_t>(value.get<double>() * 1e6);
      else if (value.is_string())
        us = units::parse_duration_us(value.get<std::string>());
      if (us)
        value = units::format_duration(static_cast<std::int64_t>(std::llround(static_cast<double>(*us) * factor)));
      return;
    }
    case type::object:
      if (!value.is_object()) return;
      for (const auto& f : n.fields) {
        if (value.contains(f.name)) scale_time(value[f.name], *f.n, factor);
      }
      return;
    case type::tagged: {
      if (!value.is_object() || !value.contains(n.tag) || !value[n.tag].is_string()) return;
      auto it = n.variants.find(value[n.tag].get<std::string>());
      std::vector<field> all = n.fields;
      if (it != n.variants.end()) all.insert(all.end(), it->second.fields.begin(), it->second.fields.end());
      for (const auto& f : all) {
        if (value.contains(f.name)) scale_time(value[f.name], *f.n, factor);
      }
      return;
    }
    case type::array:
      if (!value.is_array()) return;
      for (auto& v : value) scale_time(v, *n.items, factor);
      return;
    case type::choice:
      for (const auto& alt : n.alternatives) {
        errors tmp;
        validate(value, *alt, "", tmp);
        if (tmp.empty()) {
          scale_time(value, *alt, factor);
          return;
        }
      }
      return;
    default:
      return;
  }
}

}  // namespace syncstorm::spec
