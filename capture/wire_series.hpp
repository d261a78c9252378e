// The names of the wire series (DESIGN §9 `wire.<series>`): one series per direction between
// named endpoints and per counter, `wire.<direction>.<counter>`, e.g. `wire.pods-db.retransmits`.
// Header-only and dependency-free, so the scenario validator (core/) knows the names without
// linking the capture; docs/architecture.md ("Wire capture") lists them with their meaning.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace syncstorm::capture {

// A link joins a client group to a server group; each has two directions: forward (client →
// server) at index 2 * link, reverse (server → client) at 2 * link + 1.
struct wire_link_name {
  std::string_view client, server;
};
inline constexpr std::array<wire_link_name, 3> wire_link_names = {{
    {"clients", "lb"},  // clients → the LB relays (127.0.0.1:lb_http, lb_ws), or the endpoints target
    {"lb", "pods"},     // HAProxy → the pods (pod address:port)
    {"pods", "db"},     // the pods → the DB relay (gateway:db_relay)
}};
inline constexpr std::size_t wire_direction_count = 2 * wire_link_names.size();

// "clients-lb", "lb-clients", "lb-pods", "pods-lb", "pods-db", "db-pods".
inline std::string wire_direction_name(std::size_t direction) {
  const auto& l = wire_link_names[direction / 2];
  return direction % 2 == 0 ? std::string(l.client) + "-" + std::string(l.server)
                            : std::string(l.server) + "-" + std::string(l.client);
}

// What each direction counts, per 100 ms step (charted per second).
enum class wire_counter : std::size_t {
  packets,          // every TCP segment
  bytes,            // their IP length (header and payload) as on the wire
  syn,              // SYN without ACK (connection attempts, retransmitted ones too)
  syn_ack,          // SYN with ACK
  rst,              // RST set
  fin,              // FIN set
  retransmits,      // a segment whose sequence range this flow has already carried
  zero_windows,     // a receiver advertising a zero window (not on SYN, FIN or RST)
  new_connections,  // the first SYN of a connection (its retransmissions are not counted again)
};
inline constexpr std::array<std::string_view, 9> wire_counter_names = {
    "packets", "bytes", "syn", "syn_ack", "rst", "fin", "retransmits", "zero_windows", "new_connections"};
inline constexpr std::size_t wire_counter_count = wire_counter_names.size();

inline std::string wire_series_name(std::size_t direction, std::size_t counter) {
  return "wire." + wire_direction_name(direction) + "." + std::string(wire_counter_names[counter]);
}

// The series a capture can produce: every direction of a lab; only clients-lb / lb-clients
// against an endpoints target (the endpoints are "the lb"; nothing behind them is visible).
inline std::vector<std::string> wire_series_names(bool lab) {
  std::vector<std::string> out;
  const std::size_t directions = lab ? wire_direction_count : 2;
  for (std::size_t d = 0; d < directions; ++d)
    for (std::size_t c = 0; c < wire_counter_count; ++c) out.push_back(wire_series_name(d, c));
  return out;
}

}  // namespace syncstorm::capture
