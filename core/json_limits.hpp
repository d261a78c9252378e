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

// Untrusted text that may be UTF-8 (an error body, a server's message, a cursor) as one line for
// an error message: at most `max_bytes` of it, cut between characters ("…" marks the cut); valid
// UTF-8 characters kept, control characters shown as a space, every byte that is not part of a
// valid UTF-8 character (overlong forms, surrogates and code points past U+10FFFF included) as
// '?'. The line is valid UTF-8 wherever it is written.
inline std::string line_excerpt(std::string_view text, std::size_t max_bytes = 160) {
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  while (i < text.size()) {
    const unsigned char c = byte(i);
    std::size_t len = 0;
    if (c < 0x80) {
      len = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
    }
    bool valid = len > 0 && i + len <= text.size();
    for (std::size_t k = 1; valid && k < len; ++k) valid = (byte(i + k) & 0xC0) == 0x80;
    if (valid && len == 3) {
      const unsigned char c1 = byte(i + 1);
      valid = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0);  // overlong, surrogate
    } else if (valid && len == 4) {
      const unsigned char c1 = byte(i + 1);
      valid = !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);  // overlong, past U+10FFFF
    }
    if (!valid) len = 1;
    if (out.size() + (valid ? len : 1) > max_bytes) {
      out += "…";
      return out;
    }
    if (!valid)
      out += '?';
    else if (len == 1)
      out += (c < 0x20 || c == 0x7f) ? ' ' : static_cast<char>(c);
    else
      out.append(text.substr(i, len));
    i += len;
  }
  return out;
}

}  // namespace syncstorm
