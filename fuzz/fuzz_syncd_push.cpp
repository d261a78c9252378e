// Fuzzes syncd's request parsing (syncd/protocol.cpp, from syncstorm_syncd_parse, the library of
// syncd's pure parts): a push body (parse_push) and what syncd does next with an accepted batch (the database
// parameter with per-op actions, the early ack body), and a request target (parse_target, then
// the `streams`, `after` and `limit` parameters as http_session.cpp and ws_session read them).
// Input: byte 0 bit 0 picks push body (0) or request target (1), byte 1 the per-op actions; the
// rest is the body or the target.
// Properties: no crash, no exception (syncd answers every bad request with a 400 and the reason);
// an accepted batch renders to JSON that parses back with the same ids; a push's reason is valid
// UTF-8 and every 400 body is JSON.
#include "fuzz/fuzz_util.hpp"
#include "fuzz/nesting_mutator.hpp"
#include "syncd/protocol.hpp"

namespace {

using namespace syncstorm;
using namespace syncstorm::syncd;
using nlohmann::json;

// The 400 body syncd sends with a reason: JSON, {"error": ...}, whatever the reason holds.
void answer_400(const std::string& reason) {
  const json j = json::parse(error_body(reason), nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("error")) fuzz::violated("error_body is not {\"error\": ...}");
}

void push(std::uint8_t action_bits, std::string_view body) {
  push_batch batch;
  std::string error;
  if (!parse_push(body, batch, error)) {
    // parse_push quotes values through found(): "never invalid UTF-8 in an error line".
    fuzz::check_reason(error, 512, "parse_push");
    answer_400(error);
    return;
  }
  if (batch.ids.size() != batch.ops.size()) fuzz::violated("ids and ops of different lengths");
  std::vector<op_action> actions;
  static constexpr op_action kinds[] = {op_action::store, op_action::drop, op_action::dup, op_action::corrupt};
  if (action_bits != 0)
    for (std::size_t i = 0; i < batch.ops.size(); ++i) actions.push_back(kinds[(action_bits >> (2 * (i % 4))) & 3]);
  const json again = json::parse(db_ops_param(batch, actions));
  if (!again.is_array() || again.size() != batch.ids.size()) fuzz::violated("db_ops_param lost ops");
  for (std::size_t i = 0; i < batch.ids.size(); ++i)
    if (again[i].value("id", "") != batch.ids[i]) fuzz::violated("db_ops_param changed an id");
  const json ack = json::parse(ack_all_body(batch));
  if (ack["acked"].size() != batch.ids.size()) fuzz::violated("ack_all_body lost ids");
}

void request_target(std::string_view raw) {
  const target t = parse_target(raw);
  std::vector<std::string> streams;
  std::string error;
  const std::string* s = t.param("streams");
  if (parse_stream_list(s ? *s : std::string_view{}, streams, error)) {
    for (const auto& st : streams)
      if (!valid_stream(st)) fuzz::violated("parse_stream_list accepted an invalid stream");
    (void)pg_text_array(streams);
  } else {
    // The reason quotes the client's bytes as they are; error_body() makes the 400 body valid.
    answer_400(error);
  }
  for (const char* name : {"after", "limit", "stream"})
    if (const std::string* v = t.param(name)) {
      auto n = parse_count(*v);
      if (n && *n < 0) fuzz::violated("parse_count returned a negative count");
    }
}

}  // namespace

// Deep nesting as one mutation in eight (fuzz/nesting_mutator.hpp).
SYNCSTORM_FUZZ_NESTING_MUTATOR()

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  const std::uint8_t actions = in.byte();
  if (mode & 1)
    request_target(in.rest());
  else
    push(actions, in.rest());
  return 0;
}
