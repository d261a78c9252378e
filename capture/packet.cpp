// Frame parsing. See packet.hpp.
#include "capture/packet.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace syncstorm::capture {
namespace {

std::uint16_t be16(const std::uint8_t* p) { return static_cast<std::uint16_t>(p[0] << 8 | p[1]); }
std::uint32_t be32(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) << 24 | static_cast<std::uint32_t>(p[1]) << 16 |
         static_cast<std::uint32_t>(p[2]) << 8 | p[3];
}

std::array<std::uint8_t, 16> mapped_v4(const std::uint8_t* p) {
  std::array<std::uint8_t, 16> a{};
  a[10] = 0xff;
  a[11] = 0xff;
  std::memcpy(a.data() + 12, p, 4);
  return a;
}

constexpr std::uint16_t ethertype_ipv4 = 0x0800, ethertype_ipv6 = 0x86dd;

// The TCP header at `p` (len bytes captured) carrying `payload_and_header` bytes of TCP.
std::optional<tcp_segment> tcp_at(const std::uint8_t* p, std::size_t len, std::uint32_t tcp_total, tcp_segment s) {
  if (len < 20) return std::nullopt;
  std::uint32_t off = static_cast<std::uint32_t>(p[12] >> 4) * 4;
  if (off < 20 || tcp_total < off) return std::nullopt;
  s.src.port = be16(p);
  s.dst.port = be16(p + 2);
  s.seq = be32(p + 4);
  s.flags = p[13];
  s.window = be16(p + 14);
  s.payload = tcp_total - off;
  return s;
}

std::optional<tcp_segment> ipv4_at(const std::uint8_t* p, std::size_t len, std::size_t wire_len) {
  if (len < 20 || (p[0] >> 4) != 4) return std::nullopt;
  std::size_t ihl = static_cast<std::size_t>(p[0] & 0x0f) * 4;
  if (ihl < 20 || len < ihl) return std::nullopt;
  if (p[9] != 6) return std::nullopt;                    // not TCP
  if ((be16(p + 6) & 0x1fff) != 0) return std::nullopt;  // a later fragment: no TCP header
  std::uint32_t total = be16(p + 2);
  // 0 for segments beyond 64 KiB (BIG TCP / GSO): the frame's own length says it.
  if (total == 0) total = static_cast<std::uint32_t>(wire_len);
  if (total < ihl) return std::nullopt;
  tcp_segment s;
  s.src.addr = mapped_v4(p + 12);
  s.dst.addr = mapped_v4(p + 16);
  s.ip_len = total;
  return tcp_at(p + ihl, len - ihl, total - static_cast<std::uint32_t>(ihl), s);
}

std::optional<tcp_segment> ipv6_at(const std::uint8_t* p, std::size_t len, std::size_t wire_len) {
  if (len < 40 || (p[0] >> 4) != 6) return std::nullopt;
  std::uint32_t payload = be16(p + 4);
  if (payload == 0) payload = wire_len > 40 ? static_cast<std::uint32_t>(wire_len - 40) : 0;  // jumbogram
  tcp_segment s;
  std::memcpy(s.src.addr.data(), p + 8, 16);
  std::memcpy(s.dst.addr.data(), p + 24, 16);
  s.ip_len = payload + 40;
  std::uint8_t next = p[6];
  std::size_t at = 40;
  std::uint32_t left = payload;
  // Hop-by-hop, routing and destination options may precede TCP; a fragment header ends it
  // unless it is the first fragment.
  for (int i = 0; i < 8; ++i) {
    if (next == 6) return tcp_at(p + at, len - at, left, s);
    if (len < at + 8) return std::nullopt;
    std::size_t ext;
    if (next == 0 || next == 43 || next == 60)
      ext = (static_cast<std::size_t>(p[at + 1]) + 1) * 8;
    else if (next == 44) {
      if ((be16(p + at + 2) & 0xfff8) != 0) return std::nullopt;
      ext = 8;
    } else
      return std::nullopt;
    if (ext > left || len < at + ext) return std::nullopt;
    next = p[at];
    at += ext;
    left -= static_cast<std::uint32_t>(ext);
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::array<std::uint8_t, 16>> parse_address(const std::string& host) {
  std::uint8_t buf[16];
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) return mapped_v4(buf);
  std::string h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  if (inet_pton(AF_INET6, h.c_str(), buf) == 1) {
    std::array<std::uint8_t, 16> a{};
    std::memcpy(a.data(), buf, 16);
    return a;
  }
  return std::nullopt;
}

std::optional<endpoint> parse_endpoint(const std::string& host_port) {
  auto colon = host_port.rfind(':');
  if (colon == std::string::npos || colon + 1 == host_port.size()) return std::nullopt;
  std::string host = host_port.substr(0, colon), port = host_port.substr(colon + 1);
  if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
  unsigned long n = std::stoul(port);
  if (n == 0 || n > 65535) return std::nullopt;
  auto a = parse_address(host);
  if (!a) return std::nullopt;
  return endpoint{*a, static_cast<std::uint16_t>(n)};
}

std::string to_string(const endpoint& e) {
  char buf[INET6_ADDRSTRLEN] = {};
  static const std::uint8_t v4_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(e.addr.data(), v4_prefix, 12) == 0) {
    inet_ntop(AF_INET, e.addr.data() + 12, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(e.port);
  }
  inet_ntop(AF_INET6, e.addr.data(), buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(e.port);
}

std::size_t endpoint_hash::operator()(const endpoint& e) const noexcept {
  std::uint64_t a, b;
  std::memcpy(&a, e.addr.data(), 8);
  std::memcpy(&b, e.addr.data() + 8, 8);
  std::uint64_t h = a * 0x9e3779b97f4a7c15ull ^ (b + 0x632be59bd9b4e019ull + (a << 6));
  h ^= static_cast<std::uint64_t>(e.port) * 0xff51afd7ed558ccdull;
  return static_cast<std::size_t>(h ^ (h >> 31));
}

namespace {

// Where a frame's IP header starts and which version it claims (4 or 6), past the link header.
struct l3 {
  int version = 0;
  std::size_t offset = 0;
};

std::optional<l3> l3_of(int link, const std::uint8_t* p, std::size_t len) {
  auto by_type = [](std::uint16_t type, std::size_t at) -> std::optional<l3> {
    if (type == ethertype_ipv4) return l3{4, at};
    if (type == ethertype_ipv6) return l3{6, at};
    return std::nullopt;
  };
  switch (link) {
    case link_type::ethernet: {
      if (len < 14) return std::nullopt;
      std::uint16_t type = be16(p + 12);
      std::size_t at = 14;
      // 802.1Q / 802.1ad tags.
      for (int i = 0; i < 2 && (type == 0x8100 || type == 0x88a8); ++i) {
        if (len < at + 4) return std::nullopt;
        type = be16(p + at + 2);
        at += 4;
      }
      return by_type(type, at);
    }
    case link_type::linux_sll:
      if (len < 16) return std::nullopt;
      return by_type(be16(p + 14), 16);
    case link_type::linux_sll2:
      if (len < 20) return std::nullopt;
      return by_type(be16(p), 20);
    case link_type::null: {
      if (len < 4) return std::nullopt;
      std::uint32_t family;
      std::memcpy(&family, p, 4);
      if (family == 2) return l3{4, 4};
      if (family == 24 || family == 28 || family == 30) return l3{6, 4};
      return std::nullopt;
    }
    case link_type::raw:
    case link_type::raw_dlt:
      if (len < 1) return std::nullopt;
      return l3{(p[0] >> 4) == 4 ? 4 : 6, 0};
    default:
      return std::nullopt;
  }
}

}  // namespace

std::optional<tcp_segment> parse_tcp(int link, const std::uint8_t* data, std::size_t caplen, std::size_t wire_len) {
  auto at = l3_of(link, data, caplen);
  if (!at) return std::nullopt;
  const std::size_t rest = wire_len > at->offset ? wire_len - at->offset : 0;
  return at->version == 4 ? ipv4_at(data + at->offset, caplen - at->offset, rest)
                          : ipv6_at(data + at->offset, caplen - at->offset, rest);
}

std::optional<std::uint16_t> udp_dst_port(int link, const std::uint8_t* data, std::size_t caplen) {
  auto at = l3_of(link, data, caplen);
  if (!at) return std::nullopt;
  const std::uint8_t* p = data + at->offset;
  std::size_t len = caplen - at->offset;
  if (at->version == 4) {
    if (len < 20 || (p[0] >> 4) != 4 || p[9] != 17 || (be16(p + 6) & 0x1fff) != 0) return std::nullopt;
    std::size_t ihl = static_cast<std::size_t>(p[0] & 0x0f) * 4;
    if (ihl < 20 || len < ihl + 8) return std::nullopt;
    return be16(p + ihl + 2);
  }
  if (len < 48 || (p[0] >> 4) != 6 || p[6] != 17) return std::nullopt;
  return be16(p + 42);
}

}  // namespace syncstorm::capture
