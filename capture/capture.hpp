// Wire capture with libpcap (DESIGN §1, §7; issue #13): one capture thread per interface, each
// with its own TPACKET_V3 ring (pcap_set_buffer_size) and, with `pcap`, its own rotated pcap
// files; each thread parses, classifies and counts its packets (capture/wire.hpp) into a shared,
// locked store of wire.* series. No packet work happens on the load workers.
//
// Lifetime: a capture_session opens every interface in its constructor (throwing on the first
// that cannot be opened, after closing the others), runs until stop() (or its destructor), then
// drains each ring, takes pcap_stats and closes its files. set_origin() places packets on the
// run's clock; before it, packets are written to the pcap and their flows tracked, but nothing
// is counted in the series.
//
// Threading: the constructor, set_origin, stop and the accessors may be called from any one
// controlling thread; snapshot_since may be called while the capture runs.
#pragma once

#include "capture/wire.hpp"
#include "core/metrics.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace syncstorm::capture {

struct interface_config {
  std::string name;
  std::string filter;  // BPF; empty: everything
};

struct capture_config {
  std::vector<interface_config> interfaces;
  bool pcap = true;
  int snaplen = 128;
  std::uint64_t max_file = 256ull << 20;  // rotate pcap files at this size
  std::uint64_t ring = 32ull << 20;       // kernel ring per interface
  int timeout_ms = 100;                   // a TPACKET_V3 block is handed over after this at most
  std::string dir;                        // pcap files go here (created)
  wire_map map;
};

// The capture a scenario asks for: its `capture` object, the target's named endpoints and the
// interfaces ("lab": the lab's, see lab_interfaces), a lab's default filters, the ring (given, or
// sized from the scenario with default_ring_bytes). lab_status is `lab status --json` for a lab
// target, null otherwise (then `servers` are the endpoints target's addresses).
capture_config capture_config_for(const nlohmann::json& scenario_doc, const nlohmann::json& lab_status,
                                  const std::vector<endpoint>& servers, const std::string& dir);

// The ring when the scenario does not give one: room for 2 s of packets at the scenario's peak
// (an estimate: its peak request rate × 16 packets per request across the lab's hops), each
// packet taking its snaplen plus 64 bytes of ring overhead; at least 16 MiB, at most 256 MiB.
std::uint64_t default_ring_bytes(const nlohmann::json& scenario_doc, int snaplen);

// host:port of each URL's authority (http, https, ws, wss; default ports), resolved.
std::vector<endpoint> resolve_url_endpoints(const std::vector<std::string>& urls);

// What validate checks beyond the document for a scenario with `capture` (every problem one
// line): CAP_NET_RAW in the effective set, the named interfaces exist, the filter compiles.
std::vector<std::string> environment_problems(const nlohmann::json& scenario_doc);
// Whether this process holds CAP_NET_RAW in its effective set (/proc/self/status CapEff).
bool has_cap_net_raw();

class capture_session {
 public:
  explicit capture_session(capture_config cfg);
  ~capture_session();
  capture_session(const capture_session&) = delete;
  capture_session& operator=(const capture_session&) = delete;

  void set_origin(std::chrono::steady_clock::time_point run_start);
  // The series from the step holding from_us on (whole-run counts), for live views.
  metrics_shard snapshot_since(std::int64_t from_us) const;
  // Stops every thread, drains the rings, takes pcap_stats, closes the files. Idempotent.
  void stop();

  // After stop(): every series, the `capture` object of report.json, and the kernel's drops.
  metrics_shard series() const;
  nlohmann::json report() const;
  std::uint64_t dropped() const;
  // "lo: 12 of 30000 packets dropped in the kernel ring" for every interface that dropped, or
  // a capture thread's error; empty when nothing was lost.
  std::string loss_reason() const;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace syncstorm::capture
