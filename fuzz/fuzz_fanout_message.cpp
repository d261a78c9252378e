// Fuzzes what a fanout subscriber reads (loadgen/fanout_model.cpp, `subscribe_loop` and
// `handle_frame`): WebSocket frames from the server through Beast's client-side websocket::stream,
// set up as the model sets it up (read_message_max 4 MiB, permessage-deflate off, no automatic
// fragmentation), over Beast's in-memory test stream; each message then parsed as a change frame
// (parse_change_frame, loadgen/sync_protocol.cpp) and, as handle_frame does, fed to the
// subscriber's delivery bookkeeping (loadgen/detail/ws_logic.hpp). The model's handshake and idle
// timeouts are not set: they only arm timers for asynchronous operations, which the frame loop
// here does not use.
// Input: byte 0 bit 0 picks the mode (0: WebSocket bytes after a completed handshake; 1: the rest
// is one message, straight to the frame parser), byte 1 the stream's read size (1..256 bytes per
// read); the rest is what the server sends.
// Properties: no crash, no exception; a frame that does not parse has a short valid UTF-8 reason.
#include "core/net.hpp"
#include "fuzz/fuzz_util.hpp"
#include "loadgen/detail/ws_logic.hpp"
#include "loadgen/sync_protocol.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket/detail/hybi13.hpp>
#include <boost/beast/websocket/stream.hpp>

#include <charconv>

namespace {

using namespace syncstorm;
using error_code = boost::system::error_code;

// The model's limit on one message (fanout_model.cpp sets it inline: 4 * 1024 * 1024).
constexpr std::size_t fanout_read_message_max = 4 * 1024 * 1024;

// One subscriber on streams "a" and "b", as handle_frame drives it: the frame's stream picks the
// slot, its cursor (text, as the model's to_int reads it: the whole text a decimal integer) the
// position, and an id with the model's own prefix makes the seq an own op.
struct subscriber_view {
  loadgen::detail::delivery_tracker tracker{std::vector<std::int64_t>{0, 0}};
  std::int64_t now_us = 0;

  void frame(const loadgen::server_change& c) {
    std::int64_t cursor = 0;
    auto [end, ec] = std::from_chars(c.cursor.data(), c.cursor.data() + c.cursor.size(), cursor);
    if (ec != std::errc() || end != c.cursor.data() + c.cursor.size()) return;  // protocol error
    std::size_t slot = c.stream == "a" ? 0 : c.stream == "b" ? 1 : 2;
    if (slot == 2) return;
    const std::string prefix = "run-fan-" + c.stream + "-";
    const std::int64_t own = c.id.size() > prefix.size() && c.id.starts_with(prefix) && c.seq >= 1 ? c.seq : 0;
    now_us += 1000;
    (void)tracker.on_frame(slot, cursor, own, now_us);
    if (tracker.hole_since()) (void)tracker.count_gap();
    (void)tracker.resume_cursor();
  }
};

void message(subscriber_view& sub, std::string_view text) {
  static const loadgen::sync_profile v1{};
  std::string reason;
  auto c = loadgen::parse_change_frame(v1, text, reason);
  if (!c) {
    fuzz::check_reason(reason, 512, "parse_change_frame");
    return;
  }
  sub.frame(*c);
}

// A completed client handshake over `client`, the server's reply followed by `server_bytes`.
// Returns false if the handshake failed (it cannot, short of a Beast change).
template <class Ws>
bool handshake(net::io_context& ioc, Ws& ws, beast::test::stream& server, std::string_view server_bytes) {
  error_code hec = net::error::would_block;
  ws.async_handshake("127.0.0.1", "/v1/ws?streams=a,b&after=0", [&](error_code ec) { hec = ec; });
  ioc.poll();  // the request is written and the read of the reply is pending
  const std::string request(server.str());
  const std::string_view field = "Sec-WebSocket-Key: ";
  const auto at = request.find(field);
  if (at == std::string::npos) return false;
  const auto end = request.find("\r\n", at);
  beast::websocket::detail::sec_ws_accept_type accept;
  beast::websocket::detail::make_sec_ws_accept(
      accept, std::string_view(request).substr(at + field.size(), end - at - field.size()));
  std::string reply =
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ";
  reply.append(accept.data(), accept.size());
  reply += "\r\n\r\n";
  reply += server_bytes;
  ws.next_layer().append(reply);
  ws.next_layer().close_remote();  // after these bytes the server is gone: reads end with eof
  ioc.poll();
  return !hec;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const std::uint8_t mode = in.byte();
  const std::size_t read_size = std::size_t{in.byte()} + 1;
  subscriber_view sub;
  if (mode & 1) {
    message(sub, in.rest());
    return 0;
  }
  static net::io_context ioc;
  ioc.restart();
  beast::test::stream server(ioc);
  beast::websocket::stream<beast::test::stream> ws(ioc);
  ws.next_layer().connect(server);
  ws.next_layer().read_size(read_size);
  beast::websocket::permessage_deflate pmd;
  pmd.client_enable = false;
  ws.set_option(pmd);
  ws.read_message_max(fanout_read_message_max);
  ws.auto_fragment(false);
  if (!handshake(ioc, ws, server, in.rest())) fuzz::violated("the in-memory WebSocket handshake failed");
  beast::flat_buffer buffer;
  for (int n = 0; n < 10'000; ++n) {
    error_code ec;
    ws.read(buffer, ec);
    if (ec) break;
    message(sub, std::string_view(static_cast<const char*>(buffer.data().data()), buffer.size()));
    buffer.consume(buffer.size());
  }
  return 0;
}
