// Fuzzes the HTTP client's reply read as the terminal model uses it (loadgen/http_client.cpp
// `async_request`, the push replies of loadgen/terminal_model.cpp): Beast's
// response_parser<string_body> with the model's limits, fed by the client's own framing step
// (loadgen/detail/reply_feed.hpp) through a flat_buffer kept across replies (keep-alive), then a
// 2xx body parsed as a push reply (loadgen/sync_protocol.cpp), as the model does. The bytes arrive
// in chunks whose sizes come from the input, so every split of the headers, chunk framing and
// body is reachable, and the end of the input is the server's close.
// Input: byte 0 picks the profile (bit 0: v1 or couchdb); bytes 1-4 are four chunk sizes
// (1..256, used in turn); the rest is what the server sends on one connection.
// Properties: no crash, no exception out of Beast or the reply parser, a body never over the
// limit, a reply reported whole only when the parser is done, and a malformed reply's reason
// short valid UTF-8.
#include "core/net.hpp"
#include "fuzz/fuzz_util.hpp"
#include "loadgen/sync_protocol.hpp"

#include "loadgen/detail/reply_feed.hpp"

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <cstring>

namespace {

using namespace syncstorm;
using error_code = boost::system::error_code;

// The terminal model's limits. Its body limit is a constant inside terminal_model.cpp
// (`body_limit = 16u << 20`, the site's body_limit), not in a header, so the value is repeated
// here; the header limit is Beast's default (the client does not set one), which a fresh parser
// has too.
constexpr std::uint64_t terminal_body_limit = 16u << 20;

const loadgen::sync_profile& profile(bool couchdb) {
  static const loadgen::sync_profile v1{};
  static const loadgen::sync_profile couch = loadgen::parse_profile(*loadgen::shipped_profile("couchdb"), "couchdb");
  return couchdb ? couch : v1;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const bool couchdb = in.byte() & 1;
  std::array<std::size_t, 4> sizes{};
  for (auto& s : sizes) s = std::size_t{in.byte()} + 1;
  std::string_view bytes = in.rest();
  std::size_t turn = 0;
  beast::flat_buffer buffer;  // one per connection, as in the client: leftovers feed the next reply
  bool eof = false;
  for (int response = 0; response < 8; ++response) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(terminal_body_limit);
    error_code ec;
    loadgen::detail::feed_state st;
    // The client's loop: feed, and while more is needed, one read_some (a chunk, or the close).
    while ((st = loadgen::detail::feed_reply(parser, buffer, eof, ec)) == loadgen::detail::feed_state::need_more) {
      if (bytes.empty()) {
        eof = true;
        continue;
      }
      const std::size_t want = std::min(sizes[turn++ % sizes.size()], bytes.size());
      const auto dst = buffer.prepare(want);
      std::memcpy(dst.data(), bytes.data(), want);
      buffer.commit(want);
      bytes.remove_prefix(want);
    }
    if (st != loadgen::detail::feed_state::done) break;
    if (!parser.is_done()) fuzz::violated("a reply reported whole before the parser was done");
    const auto& res = parser.get();
    const int status = static_cast<int>(res.result_int());
    const bool keep = res.keep_alive();
    if (res.body().size() > terminal_body_limit) fuzz::violated("a body over the parser's limit");
    if (status >= 200 && status <= 299) {
      auto reply = loadgen::parse_push_reply(profile(couchdb), res.body());
      if (reply.malformed) fuzz::check_reason(reply.reason, 512, "parse_push_reply");
    }
    if (!keep) break;
  }
  return 0;
}
