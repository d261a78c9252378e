// Fuzzes the HTTP response read of the terminal model's client (loadgen/terminal_model.cpp:
// `async_push`): Beast's response_parser<string_body> with the model's limits, fed through a
// flat_buffer kept across responses (keep-alive), then a 2xx body parsed as a push reply
// (loadgen/sync_protocol.cpp), as the model does. The bytes arrive in chunks whose sizes come
// from the input, so every split of the headers, chunk framing and body is reachable.
// Input: byte 0 picks the profile (bit 0: v1 or couchdb); bytes 1-4 are four chunk sizes
// (1..256, used in turn); the rest is what the server sends on one connection.
// Properties: no crash, no exception out of Beast or the reply parser, a body never over the
// limit, and a malformed reply's reason short valid UTF-8.
#include "core/net.hpp"
#include "fuzz/fuzz_util.hpp"
#include "loadgen/sync_protocol.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>

namespace {

using namespace syncstorm;
using error_code = boost::system::error_code;

// The terminal model's limits. Its body limit is a constant inside terminal_model.cpp
// (`body_limit = 16u << 20`), not in a header, so the value is repeated here; the header limit
// is Beast's default (the model does not set one), which a fresh parser has too.
constexpr std::uint64_t terminal_body_limit = 16u << 20;

// A SyncReadStream over the fuzz input that hands out one chunk per read_some, sized in turn by
// `sizes`, then end of stream (the server closed).
class chunked_stream {
 public:
  chunked_stream(std::string_view bytes, std::array<std::size_t, 4> sizes) : bytes_(bytes), sizes_(sizes) {}

  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers, error_code& ec) {
    ec = {};
    if (bytes_.empty()) {
      ec = net::error::eof;
      return 0;
    }
    const std::size_t want = std::min(sizes_[turn_++ % sizes_.size()], bytes_.size());
    const std::size_t n = net::buffer_copy(buffers, net::buffer(bytes_.data(), want));
    bytes_.remove_prefix(n);
    return n;
  }
  template <class MutableBufferSequence>
  std::size_t read_some(const MutableBufferSequence& buffers) {
    error_code ec;
    const std::size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

 private:
  std::string_view bytes_;
  std::array<std::size_t, 4> sizes_;
  std::size_t turn_ = 0;
};

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
  chunked_stream stream(in.rest(), sizes);
  beast::flat_buffer buffer;  // one per connection, as in the model: leftovers feed the next read
  for (int response = 0; response < 8; ++response) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(terminal_body_limit);
    error_code ec;
    http::read(stream, buffer, parser, ec);
    if (ec) {
      (void)parser.got_some();  // the model asks, to tell a stale keep-alive connection
      break;
    }
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
