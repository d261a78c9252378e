// Fuzzes the capture's frame parser (capture/packet.cpp): what the capture threads hand it is
// whatever crosses the captured interfaces, first `caplen` bytes of each frame.
// Input: byte 0 picks the link type (Ethernet, Linux SLL and SLL2, BSD null, raw as DLT 12 and
// LINKTYPE 101, or an unknown one), byte 1 the snap length (0: the whole frame; else 1..255
// bytes), bytes 2-3 how much longer the frame was on the wire (big endian); the rest is the
// frame. Every input is also read as endpoint text ("10.1.2.3:8080", "[::1]:80").
// The frame is copied into a buffer of exactly caplen bytes, so ASan sees any read past it.
// Properties: no crash; a TCP segment's payload never exceeds its IP length.
#include "capture/packet.hpp"
#include "fuzz/fuzz_util.hpp"

#include <array>
#include <memory>

namespace {

using namespace syncstorm;
namespace link_type = capture::link_type;

constexpr std::array<int, 7> links = {link_type::ethernet,
                                      link_type::linux_sll,
                                      link_type::linux_sll2,
                                      link_type::null,
                                      link_type::raw_dlt,
                                      link_type::raw,
                                      105 /* 802.11: not understood */};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::input in(data, size);
  const int link = links[in.byte() % links.size()];
  const std::size_t snap = in.byte();
  const std::size_t extra = std::size_t{in.byte()} << 8 | in.byte();
  const std::string_view frame = in.rest();
  const std::size_t caplen = snap == 0 ? frame.size() : std::min(snap, frame.size());
  const std::size_t wire_len = frame.size() + extra;
  auto buf = std::make_unique<std::uint8_t[]>(caplen);
  std::copy(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(caplen), buf.get());
  if (auto s = capture::parse_tcp(link, buf.get(), caplen, wire_len)) {
    if (s->payload > s->ip_len) fuzz::violated("a TCP payload longer than its IP packet");
    (void)capture::to_string(s->src);
    (void)capture::endpoint_hash{}(s->dst);
  }
  (void)capture::udp_dst_port(link, buf.get(), caplen);
  // The same bytes as the address text a scenario gives (target endpoints, capture filters).
  const std::string text(frame);
  if (auto e = capture::parse_endpoint(text)) {
    auto again = capture::parse_endpoint(capture::to_string(*e));
    if (!again || !(*again == *e)) fuzz::violated("parse_endpoint(to_string(e)) != e");
  }
  (void)capture::parse_address(text);
  return 0;
}
