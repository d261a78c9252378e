// A small typed model of JSON documents: a tree of `node`s that says, per key, what a value
// must be (duration, rate, size, enum, object with known keys, array, ...). From one tree come
// the validator (every problem, one line each, "PATH: found X; expected Y"), the JSON Schema
// (2020-12), and the --time-scale rewrite. Built once at start-up, then read-only: safe to
// share across threads.
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace syncstorm::spec {

using json = nlohmann::json;

enum class type {
  string,
  integer,
  number,
  boolean,
  duration,   // "30s", "1h30m", or a number of seconds
  rate,       // "50/s" or a number per second
  size,       // "256MiB" or a number of bytes
  percent,    // 0..100 or "90%"
  bandwidth,  // "10Mbit/s"
  enumeration,
  object,  // known keys (fields); unknown keys are errors
  tagged,  // an object whose `tag` key picks which extra fields apply (load model, fault kind)
  array,
  string_map,  // free keys, string values (headers)
  choice,      // one of several alternative nodes (e.g. pick: "one" | {"n": 3})
  any,
};

struct field;
struct node;
using node_ptr = std::shared_ptr<const node>;

// Problems go here, one line each, in the order they are found.
using errors = std::vector<std::string>;

struct variant {
  std::vector<field> fields;
  bool available = true;  // implemented in this build
  std::string doc;
};

struct node {
  type t = type::any;
  std::string doc;
  std::string expect;  // words for "expected ..." when the generic ones don't fit
  // numbers
  std::optional<double> minimum, maximum;
  // strings
  std::string pattern;              // ECMA regex the whole string must match
  std::vector<std::string> values;  // enumeration
  // objects
  std::vector<field> fields;
  std::vector<std::vector<std::string>> exactly_one, at_least_one, at_most_one;
  // tagged objects: `tag` names the key, `variants` its values
  std::string tag;
  std::string tag_noun;  // "model", "kind" (for messages)
  std::map<std::string, variant> variants;
  // arrays
  node_ptr items;
  std::size_t min_items = 0;
  // choices
  std::vector<node_ptr> alternatives;
  // --time-scale multiplies this value (a duration)
  bool time_scaled = false;
  // null is also accepted (report fields that may be unknown)
  bool nullable = false;
  // A hook for checks the shape can't say (cross-field); appends to errors.
  std::function<void(const json& value, const std::string& path, errors& out)> check;
};

struct field {
  std::string name;
  node_ptr n;
  bool required = false;
};

// Node builders.
node_ptr string(std::string doc, std::string pattern = {}, std::string expect = {});
node_ptr integer(std::string doc, std::optional<double> min = {}, std::optional<double> max = {});
node_ptr number(std::string doc, std::optional<double> min = {}, std::optional<double> max = {});
node_ptr boolean(std::string doc);
node_ptr duration(std::string doc, bool time_scaled = false);
node_ptr rate(std::string doc);
node_ptr size(std::string doc);
node_ptr percent(std::string doc);
node_ptr bandwidth(std::string doc);
node_ptr enumeration(std::string doc, std::vector<std::string> values);
node_ptr object(std::string doc, std::vector<field> fields);
node_ptr array(std::string doc, node_ptr items, std::size_t min_items = 0);
node_ptr string_map(std::string doc);
node_ptr choice(std::string doc, std::vector<node_ptr> alternatives, std::string expect);
node_ptr any(std::string doc);
node_ptr nullable(node_ptr n);
// A modified copy (for adding constraints to a builder's result).
node_ptr with(node_ptr n, const std::function<void(node&)>& edit);

field req(std::string name, node_ptr n);
field opt(std::string name, node_ptr n);

// Validates `value` against `n`; appends one line per problem.
void validate(const json& value, const node& n, const std::string& path, errors& out);

// JSON Schema (draft 2020-12) for `n`.
json to_schema(const node& n);

// Multiplies every time_scaled duration in `value` by `factor`, in place (values that don't
// parse are left alone: validation reports them).
void scale_time(json& value, const node& n, double factor);

// "found ...": a short rendering of a JSON value for messages.
std::string render(const json& value);

// The closest candidate within edit distance 2 (or a prefix match), or empty.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace syncstorm::spec
