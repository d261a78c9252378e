// The terminal model against the real lab (PostgreSQL, HAProxy, syncd pods): every op of a
// 10 s run is acked and stored exactly once, counters equal the sum of the acked deltas; with
// every pod killed mid-run errors are counted, the terminals recover and nothing acked is lost;
// with syncd's slow-ack bug push.latency shows the delay. Journals, crash and corruption hooks
// are exercised on the same lab.
//
// Threading: the model runs on a worker_pool; the test thread drives the lab and reads the
// stack back with blocking HTTP calls after the pool stopped.
#include "core/net.hpp"
#include "labstack/lab.hpp"
#include "loadgen/terminal_model.hpp"
#include "tests/support/lab_fixture.hpp"
#include "tests/support/test_util.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using namespace syncstorm::loadgen;
namespace sl = syncstorm::lab;
namespace t = syncstorm::test;
using tcp = net::ip::tcp;

std::string get(const std::string& base_url, const std::string& target) {
  auto hp = base_url.substr(base_url.find("://") + 3);
  auto c = hp.rfind(':');
  net::io_context io;
  tcp::socket sock(io);
  sock.connect({net::ip::make_address(hp.substr(0, c)), static_cast<unsigned short>(std::stoi(hp.substr(c + 1)))});
  timeval tv{10, 0};
  ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  http::request<http::empty_body> req{http::verb::get, target, 11};
  req.set(http::field::host, "lab");
  req.set(http::field::connection, "close");
  http::write(sock, req);
  beast::flat_buffer buf;
  http::response<http::string_body> res;
  http::read(sock, buf, res);
  if (res.result_int() != 200)
    throw std::runtime_error("GET " + target + ": " + std::to_string(res.result_int()) + " " + res.body());
  return res.body();
}

// Every change of the global feed, paged.
std::vector<server_change> all_changes(const std::string& base) {
  sync_profile p;
  std::vector<server_change> out;
  std::string cursor = "0";
  for (int page = 0; page < 10'000; ++page) {
    auto pg = parse_changes(p, get(base, changes_target(p, nullptr, cursor, 1000)));
    if (pg.malformed) throw std::runtime_error(pg.reason);
    if (pg.changes.empty()) break;
    for (auto& c : pg.changes) out.push_back(std::move(c));
    cursor = pg.next;
  }
  return out;
}

struct run_result {
  syncstorm::metrics_shard metrics;
  std::vector<syncstorm::audit_op> ops;
  std::vector<std::pair<std::string, json>> events;
};

std::string random_tag() {
  std::random_device rd;
  return "it" + std::to_string(rd() % 1'000'000'000);
}

terminal_config base_config(const std::string& url, const std::string& journal_dir) {
  terminal_config c;
  c.name = "pos";
  c.url = url;
  c.stores = 2;
  c.terminals_per_store = 3;
  c.phases = {phase_spec{"steady", 10'000'000, 20.0, std::nullopt}};
  c.pct_append = 50;
  c.pct_add = 30;
  c.pct_set = 20;
  c.keys = 4;
  c.batch = {10, 100'000};
  c.timeout_us = 2'000'000;
  c.retry = {50'000, 1'000'000, 6, 1'000'000};
  c.breaker = {3, 1'000'000, 1};
  c.drain_us = 15'000'000;
  c.journal_dir = journal_dir;
  c.run_tag = random_tag();
  c.stream_prefix = c.run_tag + "-store-";
  return c;
}

// Runs the model for `for_`, calling `during(model, elapsed)` at each step of `step`.
run_result run(terminal_config c, std::chrono::milliseconds for_,
               const std::function<void(terminal_model&, std::chrono::milliseconds)>& during = {},
               std::chrono::milliseconds step = 500ms) {
  run_result r;
  std::mutex mu;
  c.on_event = [&](const std::string& e, const json& f) {
    std::lock_guard<std::mutex> l(mu);
    r.events.emplace_back(e, f);
  };
  auto model = make_terminal_model(c);
  const auto start = run_clock::now();
  worker_pool pool(2, start);
  pool.start({model.get()});
  for (auto at = step; at <= for_; at += step) {
    pool.run_until(start + at);
    if (during) during(*model, at);
  }
  model->stop();
  r.metrics = pool.stop(std::chrono::milliseconds(c.drain_us / 1000 + 2000));
  model->collect(r.ops);
  return r;
}

const syncstorm::timed_metric& metric(const syncstorm::metrics_shard& m, const std::string& n) {
  static const syncstorm::timed_metric empty;
  const auto* x = m.find(n);
  return x ? *x : empty;
}

std::uint64_t errors(const syncstorm::metrics_shard& m) {
  std::uint64_t n = 0;
  for (const char* b : {"connect", "read", "write", "status", "timeout", "protocol"})
    n += metric(m, std::string("push.errors.") + b + "@pos").count();
  return n;
}

// Every op acked; on the server exactly once; counters = sum of acked deltas.
void expect_stored_exactly_once(const std::string& base, const run_result& r, const std::string& tag) {
  std::size_t acked = 0;
  std::map<std::string, const syncstorm::audit_op*> by_id;
  for (const auto& op : r.ops) {
    by_id[op.id] = &op;
    if (op.state == syncstorm::audit_op_state::acked)
      ++acked;
    else
      ADD_FAILURE() << op.id << " not acked: state " << static_cast<int>(op.state);
  }
  EXPECT_EQ(acked, r.ops.size());
  std::map<std::string, int> seen;
  for (const auto& c : all_changes(base))
    if (c.id.rfind(tag + "-", 0) == 0) ++seen[c.id];
  std::size_t missing = 0, dups = 0;
  for (const auto& op : r.ops) {
    const int n = seen.count(op.id) ? seen[op.id] : 0;
    if (n == 0) ++missing;
    if (n > 1) ++dups;
  }
  EXPECT_EQ(missing, 0u);
  EXPECT_EQ(dups, 0u);
  EXPECT_EQ(seen.size(), r.ops.size()) << "the server holds ids this run did not create";
  // Counters: the server's value of each add key = the sum of its acked deltas.
  std::map<std::pair<std::string, std::string>, double> sums;
  std::set<std::string> streams;
  for (const auto& op : r.ops) {
    streams.insert(op.stream);
    if (op.kind == 'd') sums[{op.stream, op.key}] += op.delta;
  }
  sync_profile p;
  std::size_t checked = 0;
  for (const auto& s : streams) {
    auto rec = parse_records(p, get(base, records_target(p, s)));
    ASSERT_FALSE(rec.malformed) << rec.reason;
    for (const auto& x : rec.records) {
      if (x.key[0] != 'c') continue;
      const double want = sums[{s, x.key}];
      EXPECT_DOUBLE_EQ(x.value.get<double>(), want) << s << "/" << x.key;
      ++checked;
    }
  }
  std::size_t keys = 0;
  for (auto& [k, v] : sums) keys += 1, (void)v;
  EXPECT_EQ(checked, keys);
}

class terminal_lab : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_ = t::lab_unavailable_reason();
    if (!skip_.empty()) return;
    sl::lab_options o;
    o.id = "itterm";
    o.pods = 2;
    o.check_interval_ms = 200;
    o.check_fall = 2;
    o.check_rise = 2;
    o.restart_delay_us = 1'000'000;
    lab_ = std::make_unique<t::scoped_lab>(o);
  }
  static void TearDownTestSuite() {
    if (!skip_.empty()) return;
    lab_.reset();  // down; its errors are failures
  }
  void SetUp() override {
    if (!skip_.empty()) SYNCSTORM_SKIP_OR_FAIL(skip_);
    ASSERT_TRUE(lab_ && lab_->ok()) << "lab up failed: " << (lab_ ? lab_->error() : "");
  }
  static sl::lab& lab() { return **lab_; }
  static inline std::unique_ptr<t::scoped_lab> lab_;
  static inline std::string skip_;
};

TEST_F(terminal_lab, every_op_is_acked_and_stored_exactly_once) {
  t::temp_dir d;
  auto c = base_config(lab().lb_http_url(), d.str());
  const std::string tag = c.run_tag;
  auto r = run(c, 10s);
  std::cout << "ops " << r.ops.size() << " attempts " << metric(r.metrics, "push.requests@pos").count() << " errors "
            << errors(r.metrics) << " conflicts " << metric(r.metrics, "conflicts@pos").count() << " push p99 "
            << metric(r.metrics, "push.latency@pos").hist().percentile(99) << " µs\n";
  EXPECT_GE(r.ops.size(), 190u);
  EXPECT_LE(r.ops.size(), 201u);
  expect_stored_exactly_once(lab().lb_http_url(), r, tag);
  EXPECT_EQ(metric(r.metrics, "push.e2e@pos").count(), r.ops.size());
  // The one arrival loop: every op's arrival timed (generator.lag) and late ones counted.
  EXPECT_EQ(metric(r.metrics, "generator.lag").count(), r.ops.size());
  EXPECT_NE(r.metrics.find("generator.late"), nullptr);
  EXPECT_EQ(metric(r.metrics, "local.write@pos").count(), r.ops.size());
  EXPECT_EQ(metric(r.metrics, "availability.ops@pos").ok_count(), r.ops.size());
  EXPECT_EQ(metric(r.metrics, "availability.ops@pos").error_count(), 0u);
  EXPECT_EQ(errors(r.metrics), 0u);
  const auto* depth = r.metrics.find_gauge("queue.depth@pos");
  ASSERT_NE(depth, nullptr);
  EXPECT_GT(depth->fine().size(), 50u);  // set every 100 ms
  EXPECT_EQ(depth->last(), 0.0);
  // 6 terminals sharing 4 set keys per store of 3 terminals: lww conflicts happen and resolve.
  std::cout << "lww conflicts resolved: " << metric(r.metrics, "conflicts@pos").count() << "\n";
}

TEST_F(terminal_lab, killed_pods_cost_errors_not_acked_data) {
  t::temp_dir d;
  auto c = base_config(lab().lb_http_url(), d.str());
  const std::string tag = c.run_tag;
  bool killed = false;
  auto r = run(c, 10s, [&](terminal_model&, std::chrono::milliseconds at) {
    if (at >= 4s && !killed) {
      killed = true;
      for (const auto& p : lab().pods()) lab().kill_pod(p.name, SIGKILL, true);
    }
  });
  ASSERT_TRUE(killed);
  std::uint64_t opened = metric(r.metrics, "breaker.open@pos").count();
  std::size_t breaker_events = 0;
  for (auto& [e, f] : r.events) breaker_events += e.rfind("breaker_", 0) == 0;
  std::cout << "ops " << r.ops.size() << " errors " << errors(r.metrics) << " breaker openings " << opened << " events "
            << r.events.size() << "\n";
  EXPECT_GT(errors(r.metrics), 0u);
  EXPECT_GT(metric(r.metrics, "availability.attempts@pos").error_count(), 0u);
  EXPECT_EQ(breaker_events >= opened * 2, true);  // every opening also half-opened (and closed or reopened)
  for (auto& p : lab().pods()) EXPECT_TRUE(lab().wait_ready(p.name, 30s)) << p.name;
  expect_stored_exactly_once(lab().lb_http_url(), r, tag);
}

TEST_F(terminal_lab, crash_replays_the_journal_and_corruption_is_detected_and_repaired) {
  t::temp_dir d;
  auto c = base_config(lab().lb_http_url(), d.str());
  c.fsync = fsync_policy::always;
  c.phases = {phase_spec{"steady", 6'000'000, 20.0, std::nullopt}};
  const std::string tag = c.run_tag;
  auto r = run(c, 6s, [&](terminal_model& m, std::chrono::milliseconds at) {
    if (at == 2000ms) m.crash(0);
    if (at == 3000ms) m.journal_corrupt(1, 4);
    if (at == 4000ms) {
      m.journal_corrupt(2, 4);
      m.crash(2);
    }
  });
  std::map<std::string, int> events;
  for (auto& [e, f] : r.events) ++events[e];
  EXPECT_EQ(events["client_crash"], 2);
  EXPECT_GE(events["journal_corrupt"], 2);
  EXPECT_GE(metric(r.metrics, "journal.corrupt@pos").count(), 2u);
  // Corruption while alive loses nothing: every op still acked and stored once. A crash after
  // corruption may forget ops past the bad record; those were never acked, so nothing acked
  // is lost either way. Here they were all pushed before (fsync always, 100 ms batches), so
  // every op of the run is acked.
  std::size_t acked = 0;
  for (auto& op : r.ops) acked += op.state == syncstorm::audit_op_state::acked;
  std::cout << "ops " << r.ops.size() << " acked " << acked << "\n";
  std::map<std::string, int> seen;
  for (const auto& ch : all_changes(lab().lb_http_url()))
    if (ch.id.rfind(tag + "-", 0) == 0) ++seen[ch.id];
  for (auto& op : r.ops) {
    if (op.state == syncstorm::audit_op_state::acked) {
      EXPECT_EQ(seen[op.id], 1) << op.id;
    }
  }
  EXPECT_GE(acked + 20, r.ops.size());
}

TEST(terminal_slow_ack, push_latency_shows_the_bug) {
  const std::string skip = t::lab_unavailable_reason();
  if (!skip.empty()) SYNCSTORM_SKIP_OR_FAIL(skip);
  sl::lab_options o;
  o.id = "itterms";
  o.pods = 1;
  o.bug = "slow-ack=200";
  t::scoped_lab lab(o);
  ASSERT_TRUE(lab.ok()) << "lab up failed: " << lab.error();
  t::temp_dir d;
  auto c = base_config(lab->lb_http_url(), d.str());
  c.stores = 1;
  c.terminals_per_store = 2;
  c.phases = {phase_spec{"steady", 4'000'000, 10.0, std::nullopt}};
  auto r = run(c, 4s);
  const auto& lat = metric(r.metrics, "push.latency@pos");
  std::cout << "push p50 " << lat.hist().percentile(50) << " µs, e2e p50 "
            << metric(r.metrics, "push.e2e@pos").hist().percentile(50) << "\n";
  EXPECT_GE(lat.hist().percentile(50), 200'000);
  EXPECT_GE(metric(r.metrics, "push.e2e@pos").hist().percentile(50), 200'000);
  std::size_t acked = 0;
  for (auto& op : r.ops) acked += op.state == syncstorm::audit_op_state::acked;
  EXPECT_EQ(acked, r.ops.size());
}

}  // namespace
