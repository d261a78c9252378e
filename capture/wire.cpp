// Classification, bucketing and the wire store. See wire.hpp.
#include "capture/wire.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace syncstorm::capture {

void wire_map::add_server(std::size_t link, const endpoint& e) {
  if (link >= wire_link_names.size()) throw std::invalid_argument("wire_map: no link " + std::to_string(link));
  servers_[e] = static_cast<std::uint8_t>(link);
}

int wire_map::direction(const tcp_segment& s) const {
  if (auto it = servers_.find(s.dst); it != servers_.end()) return 2 * it->second;
  if (auto it = servers_.find(s.src); it != servers_.end()) return 2 * it->second + 1;
  return -1;
}

bool wire_map::has_link(std::size_t link) const {
  return std::any_of(servers_.begin(), servers_.end(), [&](const auto& kv) { return kv.second == link; });
}

nlohmann::json wire_map::to_json() const {
  nlohmann::json out = nlohmann::json::object();
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& [e, link] : servers_) rows.emplace_back(wire_direction_name(2 * link), to_string(e));
  std::sort(rows.begin(), rows.end());
  for (const auto& [dir, ep] : rows) out[dir].push_back(ep);
  return out;
}

namespace {

std::string listen_of(const nlohmann::json& status, const char* path) {
  const auto& paths = status.value("paths", nlohmann::json::object());
  if (!paths.contains(path) || !paths[path].contains("listen") || !paths[path]["listen"].is_string())
    throw std::invalid_argument(std::string("lab status: found no paths.") + path +
                                ".listen; expected the relay's address");
  return paths[path]["listen"].get<std::string>();
}

endpoint endpoint_of(const std::string& text, const std::string& where) {
  auto e = parse_endpoint(text);
  if (!e) throw std::invalid_argument("lab status: " + where + ": found \"" + text + "\"; expected an address:port");
  return *e;
}

}  // namespace

wire_map lab_wire_map(const nlohmann::json& status) {
  wire_map m;
  m.add_server(0, endpoint_of(listen_of(status, "lb_http"), "paths.lb_http.listen"));
  m.add_server(0, endpoint_of(listen_of(status, "lb_ws"), "paths.lb_ws.listen"));
  // value() returns a copy: hold it for the loop (items() of a temporary would dangle).
  const nlohmann::json units = status.value("units", nlohmann::json::object());
  for (const auto& [name, u] : units.items()) {
    if (u.value("role", "") != "pod") continue;
    if (!u.contains("address") || !u["address"].is_string())
      throw std::invalid_argument("lab status: found no units." + name + ".address; expected the pod's address:port");
    m.add_server(1, endpoint_of(u["address"].get<std::string>(), "units." + name + ".address"));
  }
  m.add_server(2, endpoint_of(listen_of(status, "db"), "paths.db.listen"));
  return m;
}

std::vector<std::string> lab_interfaces(const nlohmann::json& status) {
  const auto net = status.value("network", nlohmann::json::object());
  std::string bridge = net.value("bridge", "");
  if (net.value("mode", "") == "namespaces" && !bridge.empty()) return {bridge, "lo"};
  return {"lo"};
}

std::string lab_default_filter(const nlohmann::json& status, const std::string& interface) {
  if (interface != "lo") return "";
  std::set<int> ports;
  const bool namespaces = status.value("network", nlohmann::json::object()).value("mode", "") == "namespaces";
  const nlohmann::json port_map = status.value("ports", nlohmann::json::object());
  const nlohmann::json units = status.value("units", nlohmann::json::object());
  for (const auto& [name, p] : port_map.items()) {
    // In namespaces the pods' port is inside each pod's namespace, not on lo.
    if (name == "pod" && namespaces) continue;
    if (p.is_number_integer()) ports.insert(p.get<int>());
  }
  if (!namespaces) {
    for (const auto& [name, u] : units.items())
      if (u.value("role", "") == "pod" && u.contains("address") && u["address"].is_string())
        if (auto e = parse_endpoint(u["address"].get<std::string>())) ports.insert(e->port);
  }
  if (ports.empty()) return "tcp";
  std::string f = "tcp and (";
  bool first = true;
  for (int p : ports) {
    f += (first ? "port " : " or port ") + std::to_string(p);
    first = false;
  }
  return f + ")";
}

step_bucketer::step_bucketer(std::int64_t resolution_us, sink s) : resolution_us_(resolution_us), sink_(std::move(s)) {
  if (resolution_us_ <= 0) throw std::invalid_argument("step_bucketer: resolution must be > 0");
}

void step_bucketer::add(std::int64_t at_us, std::size_t direction, wire_counter c, std::uint64_t n) {
  const std::int64_t step = at_us <= 0 ? 0 : at_us / resolution_us_;
  if (step < step_) {
    step_counts one{};
    one[direction][static_cast<std::size_t>(c)] = n;
    sink_(step, one);
    return;
  }
  if (step > step_) {
    flush();
    step_ = step;
  }
  counts_[direction][static_cast<std::size_t>(c)] += n;
  dirty_ = true;
}

void step_bucketer::advance(std::int64_t at_us) {
  if (dirty_ && at_us >= (step_ + 1) * resolution_us_) flush();
}

void step_bucketer::flush() {
  if (!dirty_) return;
  sink_(step_, counts_);
  counts_ = {};
  dirty_ = false;
}

wire_analyzer::wire_analyzer(const wire_map& map, std::int64_t resolution_us, step_bucketer::sink sink)
    : map_(map), bucketer_(resolution_us, std::move(sink)) {}

void wire_analyzer::on_frame(std::int64_t packet_us, std::int64_t origin_us, int link, const std::uint8_t* data,
                             std::size_t caplen, std::size_t wire_len) {
  ++totals_.frames;
  if (auto s = parse_tcp(link, data, caplen, wire_len)) on_segment(packet_us, origin_us, *s);
}

void wire_analyzer::on_segment(std::int64_t packet_us, std::int64_t origin_us, const tcp_segment& s) {
  ++totals_.tcp;
  const int d = map_.direction(s);
  // Flows are tracked from before the run's start, so the first retransmission after it is
  // recognised as one.
  const flow_verdict v = flows_.observe(s, packet_us);
  if (d < 0) return;
  ++totals_.classified;
  const std::int64_t run_us = packet_us - origin_us;
  if (packet_us < origin_us) {
    ++totals_.before_start;
    return;
  }
  const auto dir = static_cast<std::size_t>(d);
  bucketer_.add(run_us, dir, wire_counter::packets);
  bucketer_.add(run_us, dir, wire_counter::bytes, s.ip_len);
  const bool syn = s.flags & tcp_flag::syn, ack = s.flags & tcp_flag::ack, rst = s.flags & tcp_flag::rst,
             fin = s.flags & tcp_flag::fin;
  if (syn) bucketer_.add(run_us, dir, ack ? wire_counter::syn_ack : wire_counter::syn);
  if (rst) bucketer_.add(run_us, dir, wire_counter::rst);
  if (fin) bucketer_.add(run_us, dir, wire_counter::fin);
  if (v.retransmit) bucketer_.add(run_us, dir, wire_counter::retransmits);
  if (v.new_connection) bucketer_.add(run_us, dir, wire_counter::new_connections);
  if (s.window == 0 && !syn && !fin && !rst) bucketer_.add(run_us, dir, wire_counter::zero_windows);
}

wire_store::wire_store(const wire_map& map, std::int64_t resolution_us) : resolution_us_(resolution_us) {
  for (std::size_t d = 0; d < wire_direction_count; ++d) {
    if (!map.has_link(d / 2)) continue;
    for (std::size_t c = 0; c < wire_counter_count; ++c) refs_[d][c] = &shard_.metric(wire_series_name(d, c));
  }
}

void wire_store::add(std::int64_t step, const step_counts& counts) {
  std::lock_guard lock(mu_);
  const std::int64_t at = step * resolution_us_;
  for (std::size_t d = 0; d < wire_direction_count; ++d)
    for (std::size_t c = 0; c < wire_counter_count; ++c)
      if (counts[d][c] && refs_[d][c]) refs_[d][c]->add(at, counts[d][c]);
}

metrics_shard wire_store::snapshot() const {
  std::lock_guard lock(mu_);
  return shard_;
}

}  // namespace syncstorm::capture
