// The fault proxy's pure logic (fault set, token bucket, HTTP/1.1 request tracker) with a fake
// clock, and the Chaos Mesh NetworkChaos manifests checked against the CRD's documented fields
// (chaos-mesh.org/v1alpha1: spec.action, mode, value, selector.namespaces/labelSelectors,
// direction, target, delay.latency/jitter/correlation, bandwidth.rate/limit/buffer, loss.loss,
// duration).
#include "injectors/net_faults.hpp"
#include "proxy/fault_proxy.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <regex>

using json = nlohmann::json;
namespace proxy = syncstorm::proxy;
namespace inj = syncstorm::injectors;

TEST(fault_proxy, faults_combine_per_direction_and_clear_by_id) {
  proxy::path_faults pf;
  pf.set("a", {{"kind", "latency"}, {"direction", "down"}, {"latency_us", 200000}});
  pf.set("b", {{"kind", "jitter"}, {"direction", "both"}, {"latency_us", 0}, {"spread_us", 5000}});
  pf.set("c", {{"kind", "bandwidth"}, {"direction", "up"}, {"rate_bps", 10e6}});
  EXPECT_EQ(pf.effect(proxy::direction::down).delay_us, 200000);
  EXPECT_EQ(pf.effect(proxy::direction::up).delay_us, 0);
  EXPECT_EQ(pf.effect(proxy::direction::up).spread_us, 5000);
  EXPECT_DOUBLE_EQ(pf.effect(proxy::direction::up).rate_Bps, 10e6 / 8);
  EXPECT_EQ(pf.effect(proxy::direction::down).rate_Bps, 0);
  EXPECT_EQ(pf.clear("a"), 1u);
  EXPECT_EQ(pf.clear("a"), 0u);  // idempotent
  EXPECT_EQ(pf.effect(proxy::direction::down).delay_us, 0);
  pf.set("d", {{"kind", "http_error"}, {"percent", 10}, {"status", 502}});
  EXPECT_DOUBLE_EQ(pf.http_error_percent(), 10);
  EXPECT_EQ(pf.http_error_status(), 502);
  EXPECT_EQ(pf.clear("*"), 3u);
  EXPECT_TRUE(pf.empty());
  EXPECT_TRUE(pf.effect(proxy::direction::up).idle());
  EXPECT_THROW(pf.set("x", {{"kind", "nope"}}), std::invalid_argument);
  EXPECT_THROW(pf.set("x", {{"kind", "http_error"}, {"status", 404}}), std::invalid_argument);
  EXPECT_THROW(pf.set("x", {{"kind", "bandwidth"}}), std::invalid_argument);
}

TEST(fault_proxy, token_bucket_never_exceeds_rate_plus_burst) {
  proxy::token_bucket b;
  std::int64_t now = 0;
  b.configure(1'250'000, 16384, now);  // 10 Mbit/s
  std::uint64_t sent = 0;
  // A sender that always has 16 KiB ready and waits what the bucket says.
  while (now < 10'000'000) {
    std::int64_t w = b.take(16384, now);
    now += w;
    sent += 16384;
  }
  double rate = static_cast<double>(sent) / 10.0;
  EXPECT_LE(rate, 1'250'000 * 1.01 + 16384 / 10.0);
  EXPECT_GE(rate, 1'250'000 * 0.98);
  proxy::token_bucket off;
  EXPECT_EQ(off.take(1 << 20, 0), 0);
}

TEST(fault_proxy, http_tracker_drops_whole_requests_chunked_ones_too_and_answers_each) {
  proxy::http_request_tracker t;
  std::string a = "POST /v1/push HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
  std::string b = "GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n";
  std::string stream = a + b + a;
  std::vector<bool> plan = {false, true, false};
  std::size_t k = 0;
  std::string forwarded;
  int answers = 0;
  // Fed in awkward pieces: boundaries fall inside headers and bodies.
  for (std::size_t off = 0; off < stream.size(); off += 7) {
    std::size_t n = std::min<std::size_t>(7, stream.size() - off);
    auto r = t.feed(stream.data() + off, n, [&] { return plan[k++]; });
    for (auto& s : r.segments)
      if (s.forward) forwarded.append(stream, off + s.offset, s.length);
    for (auto& ans : r.answers) {
      EXPECT_FALSE(ans.close);
      ++answers;
    }
  }
  EXPECT_EQ(forwarded, a + a);
  EXPECT_EQ(answers, 1);
  EXPECT_EQ(t.requests(), 3u);
  EXPECT_TRUE(t.tracking());
  // Chunked requests are framed too (chunk extensions, trailers, a chunk size split across
  // reads), whichever piece sizes the bytes arrive in; the stream stays tracked.
  std::string ch1 =
      "POST /v1/push HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n10\r\n0123456789abcdef\r\n0\r\nX-Trailer: t\r\n\r\n";
  std::string ch2 = "POST /v1/push HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
  const std::string chunked = ch1 + a + ch2 + b;
  for (std::size_t piece : {1, 2, 5, 13, 4096}) {
    proxy::http_request_tracker c;
    std::vector<bool> drop = {true, false, true, false};
    std::size_t asked = 0;
    std::string fwd;
    std::vector<std::size_t> answered_at;  // stream offsets
    for (std::size_t off = 0; off < chunked.size(); off += piece) {
      std::size_t n = std::min(piece, chunked.size() - off);
      auto r = c.feed(chunked.data() + off, n, [&] { return drop[asked++]; });
      for (auto& s : r.segments)
        if (s.forward) fwd.append(chunked, off + s.offset, s.length);
      for (auto& ans : r.answers) {
        EXPECT_FALSE(ans.close) << "piece " << piece;
        answered_at.push_back(off + ans.after);
      }
    }
    EXPECT_EQ(fwd, a + b) << "piece " << piece;
    EXPECT_EQ(answered_at, (std::vector<std::size_t>{ch1.size(), ch1.size() + a.size() + ch2.size()}))
        << "piece " << piece;
    EXPECT_EQ(c.requests(), 4u);
    EXPECT_TRUE(c.tracking()) << "piece " << piece;
  }
  // An upgrade: the request is framed, then the stream is no longer HTTP and is forwarded as is;
  // a dropped one is answered with close.
  std::string up = "GET /v1/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
  std::string frames = "\x81\x05hello";
  proxy::http_request_tracker u;
  auto ru = u.feed((up + frames).data(), up.size() + frames.size(), [] { return false; });
  ASSERT_EQ(ru.segments.size(), 1u);
  EXPECT_EQ(ru.segments[0].length, up.size() + frames.size());
  EXPECT_FALSE(u.tracking());
  proxy::http_request_tracker ud;
  auto rud = ud.feed(up.data(), up.size(), [] { return true; });
  ASSERT_EQ(rud.answers.size(), 1u);
  EXPECT_TRUE(rud.answers[0].close);
  EXPECT_EQ(rud.answers[0].after, up.size());
  // Bytes that are not HTTP: tracking stops; a dropped request is answered with close.
  proxy::http_request_tracker g;
  std::string junk = "NOT HTTP AT ALL\r\n\r\n";
  auto rg = g.feed(junk.data(), junk.size(), [] { return true; });
  ASSERT_EQ(rg.answers.size(), 1u);
  EXPECT_TRUE(rg.answers[0].close);
  EXPECT_FALSE(g.tracking());
  auto resp = proxy::http_error_response(503, false);
  EXPECT_TRUE(resp.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
  EXPECT_NE(resp.find("Content-Length: "), std::string::npos);
}

namespace {

syncstorm::fault_entry entry(std::string kind, json fields, json target = json::object()) {
  syncstorm::fault_entry f;
  f.name = "f";
  f.kind = std::move(kind);
  f.fields = std::move(fields);
  f.target = std::move(target);
  f.for_us = 30'000'000;
  return f;
}

// The value of "key: value" at an exact indentation under the manifest (simple YAML as emitted).
std::string field(const std::string& yaml, const std::string& indent_key) {
  std::regex re("(^|\\n)" + indent_key + ": ([^\\n]*)");
  std::smatch m;
  if (!std::regex_search(yaml, m, re)) return "<missing " + indent_key + ">";
  std::string v = m[2];
  if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
  return v;
}

}  // namespace

TEST(chaos_mesh, network_chaos_manifests_carry_the_crd_fields) {
  std::vector<std::pair<std::string, std::string>> labels = {{"app", "syncd"}};
  auto delay = inj::network_chaos_yaml(
      entry("latency", {{"latency", "200ms"}, {"spread", "20ms"}, {"direction", "down"}}, {{"pick", "all"}}),
      "syncstorm-run-lat-0", "shop", labels);
  EXPECT_EQ(field(delay, "apiVersion"), "chaos-mesh.org/v1alpha1");
  EXPECT_EQ(field(delay, "kind"), "NetworkChaos");
  EXPECT_EQ(field(delay, "  name"), "syncstorm-run-lat-0");
  EXPECT_EQ(field(delay, "  namespace"), "shop");
  EXPECT_EQ(field(delay, "  action"), "delay");
  EXPECT_EQ(field(delay, "  mode"), "all");
  EXPECT_EQ(field(delay, "  direction"), "to");
  EXPECT_EQ(field(delay, "    latency"), "200ms");
  EXPECT_EQ(field(delay, "    jitter"), "20ms");
  EXPECT_EQ(field(delay, "  duration"), "30s");
  EXPECT_NE(
      delay.find("  selector:\n    namespaces:\n      - \"shop\"\n    labelSelectors:\n      \"app\": \"syncd\"\n"),
      std::string::npos)
      << delay;

  auto bw = inj::network_chaos_yaml(
      entry("bandwidth", {{"rate", "10Mbit/s"}, {"direction", "up"}}, {{"pick", {{"n", 2}}}}), "b", "shop", labels);
  EXPECT_EQ(field(bw, "  action"), "bandwidth");
  EXPECT_EQ(field(bw, "  mode"), "fixed");
  EXPECT_EQ(field(bw, "  value"), "2");
  EXPECT_EQ(field(bw, "  direction"), "from");
  EXPECT_EQ(field(bw, "    rate"), "10mbps");
  // limit and buffer: unsigned integers (bytes), required by the CRD.
  EXPECT_TRUE(std::regex_match(field(bw, "    limit"), std::regex("[0-9]+"))) << bw;
  EXPECT_TRUE(std::regex_match(field(bw, "    buffer"), std::regex("[0-9]+"))) << bw;

  auto loss =
      inj::network_chaos_yaml(entry("blackhole", json::object(), {{"pick", {{"percent", 50}}}}), "l", "shop", labels);
  EXPECT_EQ(field(loss, "  action"), "loss");
  EXPECT_EQ(field(loss, "  mode"), "fixed-percent");
  EXPECT_EQ(field(loss, "  value"), "50");
  EXPECT_EQ(field(loss, "    loss"), "100");

  auto part = inj::network_chaos_yaml(
      entry("partition", {{"from", "pods"}, {"to", {"app=postgres"}}, {"symmetric", false}}), "p", "shop", labels);
  EXPECT_EQ(field(part, "  action"), "partition");
  EXPECT_EQ(field(part, "  direction"), "to");
  EXPECT_NE(
      part.find(
          "  target:\n    mode: all\n    selector:\n      namespaces:\n        - \"shop\"\n      labelSelectors:\n        \"app\": \"postgres\"\n"),
      std::string::npos)
      << part;

  EXPECT_THROW(inj::network_chaos_yaml(entry("reset", json::object()), "r", "shop", labels), inj::fault_error);
  EXPECT_THROW(inj::network_chaos_yaml(entry("partition", {{"from", "pods"}, {"to", "db"}}), "r", "shop", labels),
               inj::fault_error);
}
