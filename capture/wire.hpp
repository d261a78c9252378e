// From segments to the wire series: which named direction a segment travels (the lab's
// addresses and ports), what it counts (flags, retransmissions, new connections), bucketed per
// 100 ms step and handed to a thread-safe store of `wire.<direction>.<counter>` metrics that the
// engine merges into the run's metrics (so rules with windows work on them as on any count).
//
// Threading: wire_map is immutable once built and shared by the capture threads; a
// wire_analyzer and its step_bucketer belong to one capture thread; wire_store is locked (it is
// touched once per step per thread, and by the engine's snapshots).
#pragma once

#include "capture/flows.hpp"
#include "capture/packet.hpp"
#include "capture/wire_series.hpp"
#include "core/metrics.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace syncstorm::capture {

// Server endpoints per link (wire_link_names): a segment to one of link L's servers travels
// direction 2L (client → server), one from it 2L + 1 (server → client).
class wire_map {
 public:
  void add_server(std::size_t link, const endpoint& e);
  // The direction of a segment, or -1 when it joins no named endpoints.
  int direction(const tcp_segment& s) const;
  bool has_link(std::size_t link) const;
  bool empty() const noexcept { return servers_.empty(); }
  // {"clients-lb": ["127.0.0.1:20001", ...], ...}: what each link's servers are.
  nlohmann::json to_json() const;

 private:
  std::unordered_map<endpoint, std::uint8_t, endpoint_hash> servers_;
};

// The lab's named endpoints from `lab status --json` (labstack/lab.hpp status()): clients → lb
// are the lb_http and lb_ws relay listeners, lb → pods the pods' addresses, pods → db the db
// relay's listener. Throws std::invalid_argument naming a field that is missing or malformed.
wire_map lab_wire_map(const nlohmann::json& status);
// "lab" as interfaces: the bridge (lb ↔ pods, pods ↔ db) and lo (clients ↔ lb) when the pods
// are in namespaces; only lo in a loopback lab.
std::vector<std::string> lab_interfaces(const nlohmann::json& status);
// The default BPF filter on an interface of the lab: on lo, TCP on the lab's own ports (the
// loopback carries other labs and programs); on the bridge, nothing (only the lab is there).
std::string lab_default_filter(const nlohmann::json& status, const std::string& interface);

using step_counts = std::array<std::array<std::uint64_t, wire_counter_count>, wire_direction_count>;

// Sums counts per step of `resolution_us` and hands each finished step to the sink (a step that
// saw nothing is never handed). Time normally moves forward; a count for an earlier step than
// the current one (packets a moment out of order) goes to the sink on its own.
class step_bucketer {
 public:
  using sink = std::function<void(std::int64_t step, const step_counts&)>;
  step_bucketer(std::int64_t resolution_us, sink s);

  void add(std::int64_t at_us, std::size_t direction, wire_counter c, std::uint64_t n = 1);
  // Hands the current step over once at_us is past it (call when idle so live views keep up).
  void advance(std::int64_t at_us);
  void flush();

 private:
  std::int64_t resolution_us_;
  sink sink_;
  std::int64_t step_ = -1;
  bool dirty_ = false;
  step_counts counts_{};
};

// What one interface saw, beyond the series.
struct wire_totals {
  std::uint64_t frames = 0;        // every frame handed to the analyzer
  std::uint64_t tcp = 0;           // TCP segments among them
  std::uint64_t classified = 0;    // segments on a named direction
  std::uint64_t before_start = 0;  // segments before the run's clock started (in the pcap, not the series)
};

// One capture thread's analysis: classify, track flows, count.
class wire_analyzer {
 public:
  // map must outlive the analyzer.
  wire_analyzer(const wire_map& map, std::int64_t resolution_us, step_bucketer::sink sink);

  // A frame of link type `link` captured at packet_us (the capture's clock, µs) on a run whose
  // clock started at origin_us on that clock: before it, flows are tracked but nothing is
  // counted in the series. Flows age on the capture's clock, so the run's start ages nothing.
  void on_frame(std::int64_t packet_us, std::int64_t origin_us, int link, const std::uint8_t* data, std::size_t caplen,
                std::size_t wire_len);
  void on_segment(std::int64_t packet_us, std::int64_t origin_us, const tcp_segment& s);
  void advance(std::int64_t run_us) { bucketer_.advance(run_us); }
  void flush() { bucketer_.flush(); }

  const wire_totals& totals() const noexcept { return totals_; }
  const flow_table& flows() const noexcept { return flows_; }

 private:
  const wire_map& map_;
  flow_table flows_;
  step_bucketer bucketer_;
  wire_totals totals_;
};

// The wire series as timed metrics (counts only, added at the step's start), every series of
// the map's links created up front so a quiet direction reads as 0, not as unmeasured.
class wire_store {
 public:
  explicit wire_store(const wire_map& map, std::int64_t resolution_us = fine_resolution_us);
  void add(std::int64_t step, const step_counts& counts);
  metrics_shard snapshot() const;
  std::int64_t resolution_us() const noexcept { return resolution_us_; }

 private:
  mutable std::mutex mu_;
  metrics_shard shard_;
  std::array<std::array<timed_metric*, wire_counter_count>, wire_direction_count> refs_{};
  std::int64_t resolution_us_;
};

}  // namespace syncstorm::capture
