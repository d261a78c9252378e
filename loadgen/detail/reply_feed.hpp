// The HTTP client's framing of one reply (loadgen/http_client.cpp), apart from its sockets so
// that the fuzz target fuzz_http_response drives the same code: what the buffer holds is put
// into the parser; at the end of the stream a reply delimited by the close ends. Beast in a
// header: include it from .cpp files only.
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>

namespace syncstorm::loadgen::detail {

enum class feed_state {
  done,          // the reply is whole (bytes past it stay in the buffer)
  need_more,     // read more, then feed again
  bad,           // not HTTP, or over a limit (`ec` says which)
  closed_empty,  // the stream ended before any byte of a reply
  closed_mid,    // the stream ended inside a reply
};

// `eof`: the stream has ended (nothing more will come after the buffer).
template <class Parser>
feed_state feed_reply(Parser& parser, boost::beast::flat_buffer& buffer, bool eof, boost::system::error_code& ec) {
  namespace http = boost::beast::http;
  ec = {};
  for (;;) {
    if (buffer.size() != 0) {
      const std::size_t used = parser.put(buffer.data(), ec);
      buffer.consume(used);
      if (parser.is_done()) return feed_state::done;
      if (ec == http::error::need_more)
        ec = {};
      else if (ec)
        return feed_state::bad;
      else if (used != 0)
        continue;
    }
    if (!eof) return feed_state::need_more;
    if (!parser.got_some()) return feed_state::closed_empty;
    parser.put_eof(ec);
    if (ec || !parser.is_done()) return feed_state::closed_mid;
    return feed_state::done;
  }
}

}  // namespace syncstorm::loadgen::detail
