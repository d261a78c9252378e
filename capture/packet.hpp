// A captured frame's TCP/IP facts, parsed from its first bytes (a snaplen of 64 is enough for
// Ethernet + IPv4 + TCP without options; lengths come from the IP header, not from the captured
// length, so a short snapshot of a 64 KiB GSO segment still counts its full payload). Pure: no
// pcap type, no I/O; the link types are the pcap LINKTYPE_/DLT_ numbers as plain integers.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace syncstorm::capture {

// Link types the parser understands (pcap-linktype(7)).
namespace link_type {
inline constexpr int null = 0;         // BSD loopback: 4-byte host-order family
inline constexpr int ethernet = 1;     // DLT_EN10MB (Linux lo, bridges, veths)
inline constexpr int raw_dlt = 12;     // DLT_RAW as Linux libpcap reports it
inline constexpr int raw = 101;        // LINKTYPE_RAW (in files)
inline constexpr int linux_sll = 113;  // the "any" device
inline constexpr int linux_sll2 = 276;
}  // namespace link_type

// An IPv4 (mapped into ::ffff:0:0/96) or IPv6 address and a port.
struct endpoint {
  std::array<std::uint8_t, 16> addr{};
  std::uint16_t port = 0;
  friend bool operator==(const endpoint&, const endpoint&) = default;
};

// "10.1.2.3:8080" or "[::1]:80"; nullopt when it is neither.
std::optional<endpoint> parse_endpoint(const std::string& host_port);
// An address without a port ("10.1.2.3", "::1").
std::optional<std::array<std::uint8_t, 16>> parse_address(const std::string& host);
std::string to_string(const endpoint& e);

struct endpoint_hash {
  std::size_t operator()(const endpoint& e) const noexcept;
};

namespace tcp_flag {
inline constexpr std::uint8_t fin = 0x01, syn = 0x02, rst = 0x04, psh = 0x08, ack = 0x10;
}

struct tcp_segment {
  endpoint src, dst;
  std::uint32_t seq = 0;
  std::uint32_t payload = 0;  // TCP payload bytes (from the IP length)
  std::uint32_t ip_len = 0;   // the IP packet's length (header + payload)
  std::uint16_t window = 0;   // as sent (unscaled)
  std::uint8_t flags = 0;
};

// The TCP segment in a frame of `link` type, `caplen` bytes captured of `wire_len`; nullopt for
// anything else (ARP, UDP, fragments after the first, truncated headers). `wire_len` stands in
// for an IP length of 0 (segments beyond 64 KiB).
std::optional<tcp_segment> parse_tcp(int link, const std::uint8_t* data, std::size_t caplen, std::size_t wire_len);

// The destination port of a UDP datagram in a frame (IPv4, or IPv6 without extension headers);
// nullopt for anything else. The capture threads recognise their own flush markers with it.
std::optional<std::uint16_t> udp_dst_port(int link, const std::uint8_t* data, std::size_t caplen);

}  // namespace syncstorm::capture
