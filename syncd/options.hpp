// syncd's command line and its bug modes (DESIGN §3): parsed once at start, then read-only and
// shared by every thread. Parsing is pure (no I/O) so the unit tests can drive it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace syncstorm::syncd {

// Each field is one bug mode; all off by default. A detector is tested against each.
struct bug_modes {
  bool ack_before_commit = false;       // ack at once, commit 500 ms later
  std::uint32_t drop_every = 0;         // every Nth op acked but never stored
  std::uint32_t dup_every = 0;          // every Nth op stored twice
  std::uint32_t corrupt_every = 0;      // every Nth op stored with another payload (or delta)
  bool dup_apply = false;               // a retried `add` applies its delta again
  std::uint32_t slow_ack_ms = 0;        // reply this long after the commit
  std::uint32_t fanout_skip_every = 0;  // every Nth fanout frame not sent
  bool fanout_reorder = false;          // adjacent fanout frames swapped
  bool fanout_stale_replay = false;     // a resuming subscriber (after=) first gets an old change

  bool any() const;
  std::string describe() const;  // "drop-every=5,slow-ack=100" or "none"
};

// Parses "MODE[,MODE...]" (e.g. "drop-every=5,fanout-reorder"). On error returns false and sets
// `error` to a one-line reason naming the offending mode.
bool parse_bug_modes(std::string_view text, bug_modes& out, std::string& error);

struct options {
  std::string db;  // libpq conninfo or postgresql:// URI
  std::string listen_address = "127.0.0.1";
  std::uint16_t listen_port = 8080;
  bug_modes bugs;
  std::string bug_log;  // where dropped and corrupted op ids go; empty: stderr
  std::string pod_name = "syncd";
  unsigned db_pool = 4;  // pool connections (one thread each)
  unsigned threads = 2;  // io_context threads
  // Open connections (WebSockets included) above which a new one is closed at once; 0 until
  // main sets it from RLIMIT_NOFILE (all but 256 descriptors, kept for the database and files).
  std::uint64_t max_connections = 0;
};

// "ADDR:PORT" (ADDR may be empty for 0.0.0.0, or an IPv6 address in brackets).
bool parse_listen(std::string_view text, std::string& address, std::uint16_t& port, std::string& error);

}  // namespace syncstorm::syncd
