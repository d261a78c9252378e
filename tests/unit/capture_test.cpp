// The capture's pure logic over synthetic packets (issue #13): frame parsing, direction
// classification from a lab's addresses and ports, the flow table's retransmission and
// new-connection verdicts, per-step bucketing, the wire store's series, pcap rotation naming,
// the capture configuration a scenario gives, and the validator's knowledge of the wire.*
// names. The capture threads themselves run in tests/integration/capture_test.cpp.
#include "capture/capture.hpp"
#include "capture/flows.hpp"
#include "capture/packet.hpp"
#include "capture/pcap_files.hpp"
#include "capture/wire.hpp"
#include "core/scenario.hpp"
#include "reports/writers.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <arpa/inet.h>

#include <cstring>
#include <vector>

using json = nlohmann::json;
namespace cap = syncstorm::capture;

namespace {

struct seg_spec {
  std::string src = "10.0.0.10", dst = "10.0.0.1";
  std::uint16_t sport = 40000, dport = 5432;
  std::uint32_t seq = 1000;
  std::uint8_t flags = cap::tcp_flag::ack;
  std::uint16_t window = 512;
  std::uint32_t payload = 0;
};

void put16(std::vector<std::uint8_t>& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
void put32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

// Ethernet + IPv4 + TCP (20-byte header, or 32 with options), payload not included (as a
// snapshot would cut it): the lengths say how much there was.
std::vector<std::uint8_t> ipv4_frame(const seg_spec& s, bool tcp_options = false, std::uint16_t vlan = 0) {
  const std::size_t tcp_len = tcp_options ? 32 : 20;
  const std::size_t eth = vlan ? 18 : 14;
  std::vector<std::uint8_t> b(eth + 20 + tcp_len, 0);
  if (vlan) {
    put16(b, 12, 0x8100);
    put16(b, 14, vlan);
    put16(b, 16, 0x0800);
  } else {
    put16(b, 12, 0x0800);
  }
  std::size_t ip = eth;
  b[ip] = 0x45;
  put16(b, ip + 2, static_cast<std::uint16_t>(20 + tcp_len + s.payload));
  put16(b, ip + 6, 0x4000);  // DF
  b[ip + 8] = 64;
  b[ip + 9] = 6;
  inet_pton(AF_INET, s.src.c_str(), b.data() + ip + 12);
  inet_pton(AF_INET, s.dst.c_str(), b.data() + ip + 16);
  std::size_t t = ip + 20;
  put16(b, t, s.sport);
  put16(b, t + 2, s.dport);
  put32(b, t + 4, s.seq);
  b[t + 12] = static_cast<std::uint8_t>((tcp_len / 4) << 4);
  b[t + 13] = s.flags;
  put16(b, t + 14, s.window);
  return b;
}

cap::tcp_segment seg(const seg_spec& s) {
  auto f = ipv4_frame(s);
  auto p = cap::parse_tcp(cap::link_type::ethernet, f.data(), f.size(), f.size() + s.payload);
  EXPECT_TRUE(p.has_value());
  return *p;
}

// A `lab status --json` with the fields the capture reads (as labstack/lab.cpp writes them).
json lab_status(bool namespaces) {
  json units = {{"db-0", {{"role", "db-primary"}, {"status", "ready"}}},
                {"lb", {{"role", "lb"}}},
                {"pod-0", {{"role", "pod"}, {"address", namespaces ? "10.9.8.10:8080" : "127.0.5.1:21010"}}},
                {"pod-1", {{"role", "pod"}, {"address", namespaces ? "10.9.8.11:8080" : "127.0.5.2:21010"}}}};
  return {{"network",
           {{"mode", namespaces ? "namespaces" : "loopback"},
            {"bridge", namespaces ? "ssb-t1" : ""},
            {"gateway", namespaces ? "10.9.8.1" : ""}}},
          {"paths",
           {{"lb_http", {{"listen", "127.0.0.1:21001"}}},
            {"lb_ws", {{"listen", "127.0.0.1:21002"}}},
            {"db", {{"listen", namespaces ? "10.9.8.1:21005" : "127.0.0.1:21005"}}}}},
          {"ports",
           {{"db-0", 21000},
            {"haproxy_http", 21003},
            {"haproxy_ws", 21004},
            {"lb_http", 21001},
            {"lb_ws", 21002},
            {"db_relay", 21005},
            {"pod", namespaces ? 8080 : 21010}}},
          {"units", units}};
}

std::size_t dir_index(const std::string& name) {
  for (std::size_t d = 0; d < cap::wire_direction_count; ++d)
    if (cap::wire_direction_name(d) == name) return d;
  ADD_FAILURE() << "no direction " << name;
  return 0;
}

std::uint64_t count_of(const syncstorm::metrics_shard& m, const std::string& name) {
  const auto* t = m.find(name);
  return t ? t->count() : 0;
}

}  // namespace

TEST(capture_packet, parses_ipv4_tcp_behind_ethernet_and_vlan_with_lengths_from_the_ip_header) {
  seg_spec s;
  s.flags = cap::tcp_flag::psh | cap::tcp_flag::ack;
  s.payload = 1448;
  s.seq = 0xfffffff0;
  for (std::uint16_t vlan : {0, 42}) {
    auto f = ipv4_frame(s, true, vlan);
    // Only the headers were captured (snaplen), the frame was 1448 bytes longer.
    auto p = cap::parse_tcp(cap::link_type::ethernet, f.data(), f.size(), f.size() + s.payload);
    ASSERT_TRUE(p) << "vlan " << vlan;
    EXPECT_EQ(cap::to_string(p->src), "10.0.0.10:40000");
    EXPECT_EQ(cap::to_string(p->dst), "10.0.0.1:5432");
    EXPECT_EQ(p->seq, 0xfffffff0u);
    EXPECT_EQ(p->payload, 1448u);
    EXPECT_EQ(p->ip_len, 20u + 32u + 1448u);
    EXPECT_EQ(p->flags, cap::tcp_flag::psh | cap::tcp_flag::ack);
    EXPECT_EQ(p->window, 512);
  }
}

TEST(capture_packet, other_link_types_ipv6_and_what_is_not_a_tcp_segment) {
  seg_spec s;
  s.payload = 10;
  auto eth = ipv4_frame(s);
  // Linux cooked v1 (16-byte header, protocol at 14) and v2 (20 bytes, protocol at 0), raw IP.
  std::vector<std::uint8_t> sll(16, 0), sll2(20, 0);
  sll[14] = 0x08;
  sll2[0] = 0x08;
  sll.insert(sll.end(), eth.begin() + 14, eth.end());
  sll2.insert(sll2.end(), eth.begin() + 14, eth.end());
  std::vector<std::uint8_t> raw(eth.begin() + 14, eth.end());
  EXPECT_TRUE(cap::parse_tcp(cap::link_type::linux_sll, sll.data(), sll.size(), sll.size() + 10));
  EXPECT_TRUE(cap::parse_tcp(cap::link_type::linux_sll2, sll2.data(), sll2.size(), sll2.size() + 10));
  EXPECT_TRUE(cap::parse_tcp(cap::link_type::raw, raw.data(), raw.size(), raw.size() + 10));
  EXPECT_FALSE(cap::parse_tcp(999, eth.data(), eth.size(), eth.size()));
  // Truncated TCP header, UDP, a later fragment.
  EXPECT_FALSE(cap::parse_tcp(cap::link_type::ethernet, eth.data(), 14 + 20 + 10, eth.size()));
  auto udp = eth;
  udp[14 + 9] = 17;
  EXPECT_FALSE(cap::parse_tcp(cap::link_type::ethernet, udp.data(), udp.size(), udp.size()));
  auto frag = eth;
  put16(frag, 14 + 6, 0x2010);
  EXPECT_FALSE(cap::parse_tcp(cap::link_type::ethernet, frag.data(), frag.size(), frag.size()));
  // An IP length of 0 (a segment beyond 64 KiB): the frame's length stands in.
  auto big = eth;
  put16(big, 14 + 2, 0);
  auto p = cap::parse_tcp(cap::link_type::ethernet, big.data(), big.size(), 14 + 20 + 20 + 100000);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->payload, 100000u);
  // IPv6 with a destination-options header before TCP.
  std::vector<std::uint8_t> v6(14 + 40 + 8 + 20, 0);
  put16(v6, 12, 0x86dd);
  v6[14] = 0x60;
  put16(v6, 14 + 4, 8 + 20 + 5);
  v6[14 + 6] = 60;
  v6[14 + 39] = 1;  // src ::1
  v6[14 + 55] = 1;  // dst ::1
  v6[14 + 40] = 6;  // next: TCP
  v6[14 + 41] = 0;  // 8 bytes
  std::size_t t = 14 + 48;
  put16(v6, t, 1234);
  put16(v6, t + 2, 80);
  v6[t + 12] = 0x50;
  v6[t + 13] = cap::tcp_flag::syn;
  auto q = cap::parse_tcp(cap::link_type::ethernet, v6.data(), v6.size(), v6.size() + 5);
  ASSERT_TRUE(q);
  EXPECT_EQ(cap::to_string(q->dst), "[::1]:80");
  EXPECT_EQ(q->payload, 5u);
  EXPECT_EQ(q->flags, cap::tcp_flag::syn);
}

TEST(capture_packet, endpoints_parse_and_print) {
  auto e = cap::parse_endpoint("127.0.0.1:20001");
  ASSERT_TRUE(e);
  EXPECT_EQ(cap::to_string(*e), "127.0.0.1:20001");
  auto v6 = cap::parse_endpoint("[::1]:443");
  ASSERT_TRUE(v6);
  EXPECT_EQ(cap::to_string(*v6), "[::1]:443");
  EXPECT_FALSE(cap::parse_endpoint("127.0.0.1"));
  EXPECT_FALSE(cap::parse_endpoint("127.0.0.1:0"));
  EXPECT_FALSE(cap::parse_endpoint("127.0.0.1:70000"));
  EXPECT_FALSE(cap::parse_endpoint("nohost:80"));
}

TEST(capture_wire_map, a_lab_s_paths_give_the_six_directions_and_nothing_else_is_named) {
  auto m = cap::lab_wire_map(lab_status(true));
  auto dir = [&](const char* src, std::uint16_t sp, const char* dst, std::uint16_t dp) {
    seg_spec s;
    s.src = src;
    s.sport = sp;
    s.dst = dst;
    s.dport = dp;
    int d = m.direction(seg(s));
    return d < 0 ? std::string("-") : cap::wire_direction_name(static_cast<std::size_t>(d));
  };
  EXPECT_EQ(dir("127.0.0.1", 50000, "127.0.0.1", 21001), "clients-lb");
  EXPECT_EQ(dir("127.0.0.1", 21002, "127.0.0.1", 50000), "lb-clients");
  EXPECT_EQ(dir("10.9.8.2", 41000, "10.9.8.11", 8080), "lb-pods");
  EXPECT_EQ(dir("10.9.8.10", 8080, "10.9.8.3", 41000), "pods-lb");
  EXPECT_EQ(dir("10.9.8.10", 33000, "10.9.8.1", 21005), "pods-db");
  EXPECT_EQ(dir("10.9.8.1", 21005, "10.9.8.11", 33001), "db-pods");
  // The relay's own hops (relay → HAProxy, relay → PostgreSQL) and strangers are not named.
  EXPECT_EQ(dir("127.0.0.1", 50000, "127.0.0.1", 21003), "-");
  EXPECT_EQ(dir("127.0.0.1", 50000, "127.0.0.1", 21000), "-");
  EXPECT_EQ(dir("10.9.8.12", 8080, "10.9.8.3", 41000), "-");
  auto j = m.to_json();
  EXPECT_EQ(j["lb-pods"], json({"10.9.8.10:8080", "10.9.8.11:8080"}));
  EXPECT_EQ(j["pods-db"], json({"10.9.8.1:21005"}));
  EXPECT_EQ(j["clients-lb"].size(), 2u);
  EXPECT_THROW(cap::lab_wire_map(json::object()), std::invalid_argument);
}

TEST(capture_wire_map, lab_interfaces_and_default_filters) {
  EXPECT_EQ(cap::lab_interfaces(lab_status(true)), (std::vector<std::string>{"ssb-t1", "lo"}));
  EXPECT_EQ(cap::lab_interfaces(lab_status(false)), (std::vector<std::string>{"lo"}));
  // On lo only the lab's ports (not the pods' 8080, which is inside their namespaces).
  EXPECT_EQ(cap::lab_default_filter(lab_status(true), "lo"),
            "tcp and (port 21000 or port 21001 or port 21002 or port 21003 or port 21004 or port 21005)");
  EXPECT_EQ(cap::lab_default_filter(lab_status(true), "ssb-t1"), "");
  // A loopback lab: the pods' own ports are on lo too.
  EXPECT_EQ(cap::lab_default_filter(lab_status(false), "lo"),
            "tcp and (port 21000 or port 21001 or port 21002 or port 21003 or port 21004 or port 21005 or port 21010)");
}

TEST(capture_flows, syn_retransmission_and_new_connections) {
  cap::flow_table ft;
  seg_spec s;
  s.flags = cap::tcp_flag::syn;
  s.seq = 7000;
  auto v = ft.observe(seg(s), 1000);
  EXPECT_TRUE(v.new_connection);
  EXPECT_FALSE(v.retransmit);
  // The same SYN again (the partition dropped it): a retransmission, not a second connection.
  v = ft.observe(seg(s), 1'001'000);
  EXPECT_FALSE(v.new_connection);
  EXPECT_TRUE(v.retransmit);
  // The SYN-ACK's direction is a flow of its own.
  seg_spec sa = s;
  std::swap(sa.src, sa.dst);
  std::swap(sa.sport, sa.dport);
  sa.flags = cap::tcp_flag::syn | cap::tcp_flag::ack;
  sa.seq = 90000;
  v = ft.observe(seg(sa), 1'002'000);
  EXPECT_FALSE(v.new_connection);
  EXPECT_FALSE(v.retransmit);
  // Ports reused with a fresh ISN: a new connection.
  s.seq = 123456;
  v = ft.observe(seg(s), 2'000'000);
  EXPECT_TRUE(v.new_connection);
  EXPECT_FALSE(v.retransmit);
  EXPECT_EQ(ft.size(), 2u);
}

TEST(capture_flows, data_seen_again_is_a_retransmission_acks_and_keepalives_are_not) {
  cap::flow_table ft;
  seg_spec s;
  s.flags = cap::tcp_flag::syn;
  s.seq = 0xffffff00;  // wraps within the test
  ft.observe(seg(s), 0);
  auto send = [&](std::uint32_t seq, std::uint32_t len, std::uint8_t flags = cap::tcp_flag::ack | cap::tcp_flag::psh) {
    seg_spec d = s;
    d.seq = seq;
    d.payload = len;
    d.flags = flags;
    return ft.observe(seg(d), 10);
  };
  std::uint32_t next = 0xffffff01;
  EXPECT_FALSE(send(next, 200).retransmit);  // crosses 2^32
  EXPECT_FALSE(send(next + 200, 100).retransmit);
  EXPECT_TRUE(send(next + 200, 100).retransmit);                     // the same seq and length again
  EXPECT_TRUE(send(next, 300).retransmit);                           // repacketized: the first two as one
  EXPECT_TRUE(send(next + 250, 100).retransmit);                     // overlapping the end, then new data
  EXPECT_FALSE(send(next + 350, 50).retransmit);                     // continues after it
  EXPECT_FALSE(send(next + 400, 0, cap::tcp_flag::ack).retransmit);  // a pure ACK
  EXPECT_FALSE(send(next + 399, 0, cap::tcp_flag::ack).retransmit);  // Linux keep-alive (seq - 1, no data)
  EXPECT_FALSE(send(next + 399, 1, cap::tcp_flag::ack).retransmit);  // keep-alive with one garbage byte
  EXPECT_FALSE(send(next + 400, 0, cap::tcp_flag::fin | cap::tcp_flag::ack).retransmit);
  EXPECT_TRUE(send(next + 400, 0, cap::tcp_flag::fin | cap::tcp_flag::ack).retransmit);  // FIN again
  EXPECT_FALSE(send(next + 401, 0, cap::tcp_flag::rst).retransmit);
}

TEST(capture_flows, a_flow_joined_midstream_starts_clean_and_the_table_is_bounded) {
  cap::flow_table ft(2, 5'000'000, 1'000'000);
  seg_spec a;
  a.seq = 500;
  a.payload = 100;
  EXPECT_FALSE(ft.observe(seg(a), 0).retransmit);  // first seen mid-stream
  EXPECT_TRUE(ft.observe(seg(a), 10).retransmit);
  seg_spec b = a;
  b.sport = 40001;
  seg_spec c = a;
  c.sport = 40002;
  ft.observe(seg(b), 20);
  ft.observe(seg(c), 30);  // the table is full: not tracked
  EXPECT_EQ(ft.size(), 2u);
  EXPECT_EQ(ft.untracked(), 1u);
  EXPECT_FALSE(ft.observe(seg(c), 40).retransmit);  // never called one when untracked
  // Closed (RST) flows go after closed_us, idle ones after idle_us.
  seg_spec r = b;
  r.flags = cap::tcp_flag::rst;
  ft.observe(seg(r), 50);
  ft.sweep(2'000'000);
  EXPECT_EQ(ft.size(), 1u);
  ft.sweep(6'000'000);
  EXPECT_EQ(ft.size(), 0u);
}

TEST(capture_bucketer, sums_per_step_and_hands_over_finished_steps) {
  std::vector<std::pair<std::int64_t, cap::step_counts>> out;
  cap::step_bucketer b(100'000, [&](std::int64_t step, const cap::step_counts& c) { out.emplace_back(step, c); });
  b.add(10'000, 0, cap::wire_counter::packets);
  b.add(90'000, 0, cap::wire_counter::packets);
  b.add(95'000, 4, cap::wire_counter::bytes, 1500);
  EXPECT_TRUE(out.empty());
  b.add(250'000, 0, cap::wire_counter::packets);  // step 2: step 0 is handed over
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].first, 0);
  EXPECT_EQ(out[0].second[0][0], 2u);
  EXPECT_EQ(out[0].second[4][1], 1500u);
  // A count for an earlier step (out of order) goes over on its own.
  b.add(150'000, 1, cap::wire_counter::rst);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].first, 1);
  EXPECT_EQ(out[1].second[1][static_cast<std::size_t>(cap::wire_counter::rst)], 1u);
  b.advance(299'000);  // still in step 2
  EXPECT_EQ(out.size(), 2u);
  b.advance(300'000);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].first, 2);
  b.flush();  // nothing pending
  EXPECT_EQ(out.size(), 3u);
}

TEST(capture_analyzer, a_connection_through_a_partition_and_a_reset_lands_in_its_series) {
  auto m = cap::lab_wire_map(lab_status(true));
  cap::wire_store store(m);
  cap::wire_analyzer a(m, store.resolution_us(),
                       [&](std::int64_t step, const cap::step_counts& c) { store.add(step, c); });
  const std::int64_t origin = 1'700'000'000'000'000;  // the capture's clock (µs) when the run started
  seg_spec up;                                        // pod-0 → db relay
  up.src = "10.9.8.10";
  up.sport = 33000;
  up.dst = "10.9.8.1";
  up.dport = 21005;
  seg_spec down = up;
  std::swap(down.src, down.dst);
  std::swap(down.sport, down.dport);
  // Before the run's start: the handshake is tracked but not counted.
  up.flags = cap::tcp_flag::syn;
  up.seq = 100;
  a.on_segment(origin - 5'000'000, origin, seg(up));
  down.flags = cap::tcp_flag::syn | cap::tcp_flag::ack;
  down.seq = 9000;
  a.on_segment(origin - 4'999'000, origin, seg(down));
  // In the run: a query sent three times (the first two lost beyond the capture point).
  up.flags = cap::tcp_flag::ack | cap::tcp_flag::psh;
  up.seq = 101;
  up.payload = 60;
  for (std::int64_t t : {1'000'000, 1'200'000, 1'600'000}) a.on_segment(origin + t, origin, seg(up));
  // The relay answers with a zero window, then resets.
  down.flags = cap::tcp_flag::ack;
  down.seq = 9001;
  down.window = 0;
  a.on_segment(origin + 1'700'000, origin, seg(down));
  down.flags = cap::tcp_flag::rst;
  a.on_segment(origin + 2'000'000, origin, seg(down));
  // A stranger.
  seg_spec other;
  other.dport = 9;
  a.on_segment(origin + 2'100'000, origin, seg(other));
  a.flush();
  auto shard = store.snapshot();
  EXPECT_EQ(count_of(shard, "wire.pods-db.packets"), 3u);
  EXPECT_EQ(count_of(shard, "wire.pods-db.bytes"), 3u * (40 + 60));
  EXPECT_EQ(count_of(shard, "wire.pods-db.retransmits"), 2u);
  EXPECT_EQ(count_of(shard, "wire.pods-db.syn"), 0u);  // before the start
  EXPECT_EQ(count_of(shard, "wire.pods-db.new_connections"), 0u);
  EXPECT_EQ(count_of(shard, "wire.db-pods.zero_windows"), 1u);
  EXPECT_EQ(count_of(shard, "wire.db-pods.rst"), 1u);
  EXPECT_EQ(count_of(shard, "wire.db-pods.packets"), 2u);
  // The retransmissions are at 1.2 s and 1.6 s on the run's clock.
  const auto* r = shard.find("wire.pods-db.retransmits");
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->fine().steps().size(), 2u);
  EXPECT_EQ(r->fine().steps()[0], 12);
  EXPECT_EQ(r->fine().steps()[1], 16);
  // Every series of the lab exists, quiet ones at 0 (a rule reads 0, not "not measured").
  for (const auto& n : cap::wire_series_names(true)) EXPECT_NE(shard.find(n), nullptr) << n;
  EXPECT_EQ(count_of(shard, "wire.clients-lb.packets"), 0u);
  EXPECT_EQ(a.totals().tcp, 8u);
  EXPECT_EQ(a.totals().classified, 7u);
  EXPECT_EQ(a.totals().before_start, 2u);
  EXPECT_EQ(dir_index("db-pods"), 5u);
}

TEST(capture_pcap_files, names_and_rotation_at_max_file) {
  EXPECT_EQ(cap::pcap_file_name("lo", 0), "lo-000.pcap");
  EXPECT_EQ(cap::pcap_file_name("ssb-abc", 12), "ssb-abc-012.pcap");
  EXPECT_EQ(cap::pcap_file_name("eth0.100@x/y", 1000), "eth0.100_x_y-1000.pcap");
  EXPECT_EQ(cap::pcap_file_name("..", 1), "_..-001.pcap");
  cap::pcap_rotation r(24 + 3 * (16 + 100));
  EXPECT_TRUE(r.needs_new_file(100));  // nothing open yet
  r.opened();
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(r.needs_new_file(100));
    r.wrote(100);
  }
  EXPECT_EQ(r.bytes(), 24u + 3 * 116);
  EXPECT_TRUE(r.needs_new_file(1));
  r.opened();
  EXPECT_EQ(r.files(), 2u);
  // A record larger than max_file still goes into a file (one per file).
  cap::pcap_rotation tiny(10);
  tiny.opened();
  EXPECT_FALSE(tiny.needs_new_file(500));
  tiny.wrote(500);
  EXPECT_TRUE(tiny.needs_new_file(500));
}

TEST(capture_config, from_a_scenario_and_a_lab) {
  json doc = {
      {"name", "c"},
      {"target", {{"lab", json::object()}}},
      {"load", {{{"name", "p"}, {"model", "http"}, {"phases", {{{"name", "a"}, {"for", "5s"}, {"rate", 200000}}}}}}},
      {"capture", {{"interfaces", "lab"}, {"snaplen", 96}, {"max_file", "2MiB"}}}};
  auto cfg = cap::capture_config_for(doc, lab_status(true), {}, "/tmp/x");
  ASSERT_EQ(cfg.interfaces.size(), 2u);
  EXPECT_EQ(cfg.interfaces[0].name, "ssb-t1");
  EXPECT_EQ(cfg.interfaces[0].filter, "");
  EXPECT_EQ(cfg.interfaces[1].name, "lo");
  EXPECT_EQ(cfg.interfaces[1].filter,
            "tcp and (port 21000 or port 21001 or port 21002 or port 21003 or port 21004 or port 21005)");
  EXPECT_EQ(cfg.snaplen, 96);
  EXPECT_EQ(cfg.max_file, 2u << 20);
  EXPECT_TRUE(cfg.pcap);
  EXPECT_EQ(cfg.ring, 256u << 20);  // 200k req/s: the cap
  doc["capture"] = {{"interfaces", {"lo"}}, {"filter", "tcp port 80"}, {"pcap", false}, {"ring", "4MiB"}};
  cfg = cap::capture_config_for(doc, lab_status(true), {}, "/tmp/x");
  ASSERT_EQ(cfg.interfaces.size(), 1u);
  EXPECT_EQ(cfg.interfaces[0].filter, "tcp port 80");
  EXPECT_FALSE(cfg.pcap);
  EXPECT_EQ(cfg.ring, 4u << 20);
  // An endpoints target: its addresses are "the lb".
  json ep = {{"name", "e"},
             {"target", {{"endpoints", {{"http", "http://127.0.0.1:8080"}}}}},
             {"load", doc["load"]},
             {"capture", {{"interfaces", {"eth0"}}}}};
  cfg = cap::capture_config_for(ep, json(), cap::resolve_url_endpoints({"http://127.0.0.1:8080/x", "wss://[::1]/ws"}),
                                "/tmp/x");
  EXPECT_EQ(cfg.map.to_json(), json({{"clients-lb", {"127.0.0.1:8080", "[::1]:443"}}}));
  EXPECT_EQ(cfg.interfaces[0].filter, "");
  EXPECT_THROW(cap::capture_config_for(json{{"capture", {{"interfaces", "lab"}}}}, json(), {}, "/tmp/x"),
               std::invalid_argument);
}

TEST(capture_config, the_default_ring_follows_the_scenario_within_bounds) {
  auto doc = [](json load) { return json{{"load", {load}}}; };
  json small = {{"model", "http"}, {"phases", {{{"name", "a"}, {"for", "1s"}, {"rate", 10}}}}};
  EXPECT_EQ(cap::default_ring_bytes(doc(small), 128), 16u << 20);
  // 2,000 transactions/s from 100 terminals: 32k packets/s × 2 s × 192 bytes ≈ 12 MiB → the floor;
  // 20,000/s: ~117 MiB.
  json term = {{"model", "terminal"},
               {"stores", 10},
               {"terminals_per_store", 10},
               {"rate", 200},
               {"phases", {{{"name", "a"}, {"for", "1s"}}}}};
  EXPECT_EQ(cap::default_ring_bytes(doc(term), 128), static_cast<std::uint64_t>(20000.0 * 16 * 2 * 192));
  term["rate"] = 20;
  EXPECT_EQ(cap::default_ring_bytes(doc(term), 128), 16u << 20);
}

TEST(capture_validation, wire_names_are_known_metrics_and_a_typo_gets_a_hint) {
  json doc = {
      {"name", "w"},
      {"target", {{"lab", {{"pods", 2}}}}},
      {"load", {{{"name", "p"}, {"model", "http"}, {"phases", {{{"name", "a"}, {"for", "5s"}, {"rate", 10}}}}}}},
      {"capture", {{"interfaces", "lab"}}},
      {"slas", {{{"name", "r"}, {"metric", "wire.pods-db.retransmits"}, {"stat", "count"}, {"max", 0}}}}};
  EXPECT_TRUE(syncstorm::validate_document(doc).empty()) << syncstorm::validate_document(doc)[0];
  auto info = syncstorm::metric_lookup(doc, "wire.db-pods.rst");
  ASSERT_TRUE(info);
  EXPECT_EQ(info->unit, syncstorm::metric_unit::count);
  doc["slas"][0]["metric"] = "wire.pods-db.retransmit";
  auto errs = syncstorm::validate_document(doc);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_NE(errs[0].find("scenario.slas[0].metric: found \"wire.pods-db.retransmit\""), std::string::npos) << errs[0];
  EXPECT_NE(errs[0].find("(did you mean \"wire.pods-db.retransmits\"?)"), std::string::npos) << errs[0];
  EXPECT_NE(errs[0].find("wire.clients-lb.new_connections"), std::string::npos) << errs[0];
  // Without capture there are no wire series.
  doc["slas"][0]["metric"] = "wire.pods-db.retransmits";
  json no_capture = doc;
  no_capture.erase("capture");
  EXPECT_FALSE(syncstorm::validate_document(no_capture).empty());
  // An endpoints target has only clients-lb / lb-clients, and needs interface names.
  json ep = doc;
  ep["target"] = {{"endpoints", {{"http", "http://127.0.0.1:9"}}}};
  ep["capture"] = {{"interfaces", {"lo"}}};
  ep["slas"][0]["metric"] = "wire.lb-clients.rst";
  EXPECT_TRUE(syncstorm::validate_document(ep).empty());
  ep["slas"][0]["metric"] = "wire.pods-db.retransmits";
  EXPECT_FALSE(syncstorm::validate_document(ep).empty());
  ep["slas"][0]["metric"] = "wire.lb-clients.rst";
  ep["capture"] = {{"interfaces", "lab"}};
  errs = syncstorm::validate_document(ep);
  ASSERT_EQ(errs.size(), 1u);
  EXPECT_EQ(
      errs[0],
      "scenario.capture.interfaces: found \"lab\" but the target is not a lab; expected interface names like [\"lo\"]");
  ep["capture"] = {{"interfaces", {"lo"}}, {"max_file", "1KiB"}, {"ring", "16KiB"}};
  errs = syncstorm::validate_document(ep);
  ASSERT_EQ(errs.size(), 2u);
  EXPECT_EQ(errs[0], "scenario.capture.max_file: found \"1KiB\"; expected at least \"64KiB\"");
  EXPECT_EQ(errs[1], "scenario.capture.ring: found \"16KiB\"; expected at least \"1MiB\"");
}

TEST(capture_validation, environment_problems_name_the_interface_and_the_filter) {
  json doc = {{"capture", {{"interfaces", {"lo", "nosuch0"}}, {"filter", "tcp port"}}}};
  auto errs = cap::environment_problems(doc);
  std::vector<std::string> mine;
  for (const auto& e : errs)
    if (e.find("CAP_NET_RAW") == std::string::npos) mine.push_back(e);
  ASSERT_EQ(mine.size(), 2u);
  EXPECT_EQ(mine[0].rfind(
                "scenario.capture.interfaces[1]: found \"nosuch0\"; expected a network interface of this machine (", 0),
            0u)
      << mine[0];
  EXPECT_NE(mine[0].find("lo"), std::string::npos);
  EXPECT_EQ(mine[1].rfind("scenario.capture.filter: found \"tcp port\"; expected a BPF filter libpcap compiles (", 0),
            0u)
      << mine[1];
  // The capability line appears exactly when the process lacks CAP_NET_RAW.
  EXPECT_EQ(errs.size() - mine.size(), cap::has_cap_net_raw() ? 0u : 1u);
  EXPECT_TRUE(cap::environment_problems(json{{"name", "x"}}).empty());
}

TEST(capture_report, the_html_charts_wire_series_per_counter_under_the_latency_charts) {
  json series = json::object();
  series["http.latency"] = {{0, 10, 0, 1.0, 2.0, 3.0}, {1, 10, 0, 1.0, 2.0, 3.0}};
  series["wire.pods-db.retransmits"] = {{3, 5, 0, 0, 0, 0}, {4, 7, 0, 0, 0, 0}};
  series["wire.db-pods.retransmits"] = {{3, 1, 0, 0, 0, 0}};
  series["wire.pods-db.packets"] = {{0, 100, 0, 0, 0, 0}};
  series["wire.pods-db.rst"] = json::array();
  json report = {{"schema_version", 1},
                 {"scenario", {{"name", "w"}}},
                 {"outcome", "pass"},
                 {"exit_code", 0},
                 {"duration_s", 6},
                 {"verdicts", json::array()},
                 {"faults", {{{"name", "cut"}, {"kind", "partition"}, {"applied_at", 2.5}, {"reverted_at", 5.0}}}},
                 {"metrics", {{"http.latency", {{"unit", "ms"}, {"count", 20}}}}},
                 {"series", series},
                 {"gauges", {{"queue.depth", {{0, 1}, {1, 2}}}}},
                 {"capture",
                  {{"interfaces",
                    {{{"name", "lo"},
                      {"filter", "tcp"},
                      {"packets", 9},
                      {"classified", 8},
                      {"kernel", {{"dropped", 3}}},
                      {"files", {{{"path", "/r/capture/lo-000.pcap"}, {"packets", 9}}}}}}},
                   {"packets", 9},
                   {"dropped", 3},
                   {"files", {"/r/capture/lo-000.pcap"}},
                   {"resolution_ms", 100}}}};
  std::string html = syncstorm::reports::html(report);
  auto at = [&](const std::string& s) { return html.find(s); };
  ASSERT_NE(at("<h2>Wire</h2>"), std::string::npos);
  EXPECT_LT(at("chart-http-latency-latency"), at("<h2>Wire</h2>"));
  EXPECT_LT(at("<h2>Wire</h2>"), at("<h2>Levels</h2>"));
  // One chart per counter with data, a line per direction; none for a counter with no rows.
  ASSERT_NE(at("id=\"chart-wire-retransmits\""), std::string::npos);
  std::string retx = html.substr(at("id=\"chart-wire-retransmits\""));
  retx = retx.substr(0, retx.find("</svg>"));
  EXPECT_NE(retx.find("<title>pods-db</title>"), std::string::npos);
  EXPECT_NE(retx.find("<title>db-pods</title>"), std::string::npos);
  EXPECT_NE(retx.find("class=\"fault\""), std::string::npos);  // the fault window shaded
  EXPECT_NE(at("id=\"chart-wire-packets\""), std::string::npos);
  EXPECT_EQ(at("id=\"chart-wire-rst\""), std::string::npos);
  // The capture table: the drop is flagged, the file named.
  EXPECT_NE(at("lo-000.pcap (9)"), std::string::npos);
  EXPECT_NE(at("rules on wire.* are inconclusive"), std::string::npos);
  std::string md = syncstorm::reports::summary_md(report);
  EXPECT_NE(md.find("Capture: 9 packets on lo, **3 dropped**"), std::string::npos) << md;
}
