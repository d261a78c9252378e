// JSON from outside the process (server replies, WebSocket frames, syncd's requests, rows read
// back for the audit) parsed with a bound on nesting. nlohmann's parser is iterative, but dump(),
// copies and comparisons recurse: a reply nested 200,000 deep would overflow the stack later,
// far from the parse (issue #23). A document deeper than the bound is refused here, as if it were
// not JSON, so nothing deeper ever exists in the program. Header-only (syncd includes it without
// linking core); pure; thread-safe.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace syncstorm {

// No sync API needs more: a push reply is 3 levels, a change with a nested body a handful.
inline constexpr int max_json_depth = 64;

// The parsed value, or a discarded one (`is_discarded()`) when `text` is not JSON or nests
// deeper than `max_depth`; `too_deep` (if given) tells which.
inline nlohmann::json parse_bounded(std::string_view text, int max_depth = max_json_depth, bool* too_deep = nullptr) {
  bool deep = false;
  nlohmann::json::parser_callback_t cb = [&deep, max_depth](int depth, nlohmann::json::parse_event_t, nlohmann::json&) {
    if (depth >= max_depth) deep = true;
    return !deep;
  };
  nlohmann::json j = nlohmann::json::parse(text, cb, /*allow_exceptions=*/false);
  if (too_deep) *too_deep = deep;
  if (deep) return nlohmann::json(nlohmann::json::value_t::discarded);
  return j;
}

// At most `max_bytes` of a value's JSON text, for error messages: never the whole of an
// untrusted value ("…" marks the cut). Invalid UTF-8 is replaced.
inline std::string json_excerpt(const nlohmann::json& v, std::size_t max_bytes = 80) {
  std::string s = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (s.size() > max_bytes) {
    // Cut between characters, never inside one: the excerpt stays valid UTF-8 (JSON writers
    // that get it, report.json's and events.jsonl's, throw on anything else).
    std::size_t cut = max_bytes > 3 ? max_bytes - 3 : 0;
    while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
    s = s.substr(0, cut) + "...";
  }
  return s;
}

// At most `max_bytes` of untrusted text (a reply that is not JSON) for error messages: printable
// ASCII kept, every other byte shown as '?', so the line is valid UTF-8 wherever it is written.
inline std::string text_excerpt(std::string_view text, std::size_t max_bytes = 80) {
  std::string s;
  for (char c : text.substr(0, max_bytes)) s += (c >= 0x20 && c < 0x7f) ? c : '?';
  if (text.size() > max_bytes) s += "...";
  return s;
}

}  // namespace syncstorm
