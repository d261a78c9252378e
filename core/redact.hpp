// Secrets never written (issue #24): every value a `${env:NAME}` reference resolves to
// (resolve_env registers it) is replaced by "[redacted]" in everything syncstorm writes: the run
// directory's files (report.json, report.html, junit.xml, summary.md, events.jsonl, compare.json,
// the ledger), stdout and stderr. Each secret is matched in four forms: as is, URL-encoded
// (upper- and lower-case hex), JSON-escaped, and base64 at each of the three byte alignments (the
// part of the encoding that does not depend on its neighbours, so `Basic base64(user:secret)`
// is caught too). Values shorter than 4 bytes, numbers and true/false/null are not treated as
// secrets (they would blank out ordinary text and break report.json's numbers).
//
// Not redacted: a packet capture (`capture`, opt-in) holds what was on the wire, and the
// resolved value must reach the target, so it is in memory and on the sockets.
//
// Threading: add_secret and apply may be called from any thread (one mutex).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace syncstorm::redact {

inline constexpr std::string_view marker = "[redacted]";
inline constexpr std::size_t min_secret = 4;

// Registers a resolved value (no-op below min_secret bytes or when already known).
void add_secret(std::string_view value);
// `text` with every form of every secret replaced by `marker`.
std::string apply(std::string_view text);
// Whether any secret is registered (callers may skip work when not).
bool active();
// The forms of one value that apply() looks for (for tests).
std::vector<std::string> forms_of(std::string_view value);
// Routes std::cout and std::cerr through apply() (a line or a flush at a time). Once, in main().
void install_console();
// Forgets every secret (tests).
void clear();
// base64 (RFC 4648 alphabet) without the trailing '=' padding.
std::string base64(std::string_view bytes);

}  // namespace syncstorm::redact
