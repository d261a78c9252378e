// Fuzzes the sync protocol's reply parsers (loadgen/sync_protocol.cpp), which read what the
// server under test sends: push replies, changes pages, records pages and single change frames,
// for protocol v1, the shipped couchdb profile and a per-op-results profile with conflicts.
// Input: byte 0 picks the reply kind (bits 0-1) and the profile (bits 2-3); the rest is the body.
// Properties: the parsers never throw (a bad reply is `malformed` with a reason, or nullopt);
// reasons are short valid UTF-8; a page that is not malformed has a usable shape.
#include "fuzz/fuzz_util.hpp"
#include "fuzz/nesting_mutator.hpp"
#include "loadgen/sync_protocol.hpp"

#include <array>

namespace {

using namespace syncstorm;
using namespace syncstorm::loadgen;
using nlohmann::json;

const std::array<sync_profile, 3>& profiles() {
  static const std::array<sync_profile, 3> p = [] {
    // Per-op results with a conflict status (DESIGN §4's alternative ack shape).
    const json results = json::parse(R"({"push": {"ack": {"results": "/results", "id": "/id", "status": "/status",
      "ok": ["ok", "duplicate"], "conflict": ["stale"]}, "conflicts": {"list": "/conflicts"}}})");
    return std::array<sync_profile, 3>{sync_profile{}, parse_profile(*shipped_profile("couchdb"), "couchdb"),
                                       parse_profile(results)};
  }();
  return p;
}

constexpr std::size_t max_reason = 512;

}  // namespace

// Deep nesting as one mutation in eight (fuzz/nesting_mutator.hpp).
SYNCSTORM_FUZZ_NESTING_MUTATOR()

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t sel = in.byte();
  const sync_profile& p = profiles()[((sel >> 2) & 3) % 3];
  const std::string_view body = in.rest();
  switch (sel & 3) {
    case 0: {
      push_reply r = parse_push_reply(p, body);
      if (r.malformed) {
        fuzz::check_reason(r.reason, max_reason, "parse_push_reply");
        if (!r.acked.empty() || !r.conflicts.empty() || !r.rejected.empty())
          fuzz::violated("a malformed push reply with results");
      }
      break;
    }
    case 1: {
      changes_page page = parse_changes(p, body);
      if (page.malformed) {
        fuzz::check_reason(page.reason, max_reason, "parse_changes");
        if (!page.changes.empty()) fuzz::violated("a malformed changes page with changes");
      }
      for (const auto& c : page.changes)
        if (c.id.empty()) fuzz::violated("a change without an id");
      break;
    }
    case 2: {
      records_page page = parse_records(p, body);
      if (page.malformed) fuzz::check_reason(page.reason, max_reason, "parse_records");
      break;
    }
    default: {
      std::string reason;
      auto c = parse_change_frame(p, body, reason);
      if (!c)
        fuzz::check_reason(reason, max_reason, "parse_change_frame");
      else if (c->id.empty())
        fuzz::violated("a change frame without an id");
      break;
    }
  }
  return 0;
}
