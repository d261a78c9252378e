// Integration tests of the lab (issue 5's acceptance) against one shared lab with a replica:
// a push through the LB is stored; a WebSocket subscriber through HAProxy survives the kill of
// its pod (reconnecting with after=) and misses nothing; a killed pod is marked down by HAProxy
// within fall × interval, restarted by the supervisor and ready again, each step an event;
// pushes keep going across a primary kill + promote and an SQL audit finds every acked op;
// after `down` nothing of the lab remains (processes, network, mounts, ports, files, and no
// dynamic shared memory of the killed servers in /dev/shm).
//
// Threading: the tests drive the lab from the main thread; pushers run on plain threads with
// blocking sockets; the WebSocket subscriber runs on its own io_context thread.
#include "tests/support/lab_fixture.hpp"
#include "tests/support/test_util.hpp"
#include "core/net.hpp"
#include "labstack/haproxy.hpp"
#include "labstack/lab.hpp"
#include "labstack/lab_process.hpp"
#include "labstack/lab_state.hpp"
#include "labstack/netns.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <thread>

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
using tcp = net::ip::tcp;
namespace sl = syncstorm::lab;
using syncstorm::test::psql;

constexpr const char* lab_id = "itstack";
constexpr int check_interval_ms = 200;
constexpr int check_fall = 2;
constexpr int check_rise = 2;
constexpr std::int64_t restart_delay_us = 2'000'000;

std::pair<std::string, std::uint16_t> split_url(const std::string& url) {
  auto hp = url.substr(url.find("://") + 3);
  auto c = hp.rfind(':');
  return {hp.substr(0, c), static_cast<std::uint16_t>(std::stoi(hp.substr(c + 1)))};
}

struct http_reply {
  int status = 0;
  std::string body;
  std::string error;
};

// One request on a fresh connection, bounded by SO_RCVTIMEO/SO_SNDTIMEO.
http_reply http_call(const std::string& base_url, http::verb verb, const std::string& target,
                     const std::string& body = {}) {
  http_reply r;
  try {
    auto [host, port] = split_url(base_url);
    net::io_context io;
    tcp::socket sock(io);
    sock.connect({net::ip::make_address(host), port});
    timeval tv{5, 0};
    ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(sock.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host);
    req.set(http::field::connection, "close");
    if (!body.empty()) {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
      req.prepare_payload();
    }
    http::write(sock, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(sock, buf, res);
    r.status = static_cast<int>(res.result_int());
    r.body = res.body();
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  return r;
}

json push_op(const std::string& url, const std::string& id, const std::string& stream, int seq) {
  json body = {{"client", "lab-test"},
               {"ops", {{{"id", id}, {"stream", stream}, {"seq", seq}, {"t_us", sl::unix_us()}, {"kind", "append"}}}}};
  auto r = http_call(url, http::verb::post, "/v1/push", body.dump());
  if (r.status != 200) return {{"status", r.status}, {"error", r.error + r.body}};
  try {
    json j = json::parse(r.body);
    j["status"] = 200;
    return j;
  } catch (...) {
    return {{"status", 0}, {"error", "bad json: " + r.body}};
  }
}

bool acked(const json& reply, const std::string& id) {
  if (reply.value("status", 0) != 200) return false;
  for (auto& a : reply.value("acked", json::array()))
    if (a == id) return true;
  return false;
}

// Pushes one op per request on `stream`, each retried with its own id until acked (ids are
// idempotent), until stopped. Records acked ids and when each was acked.
class pusher {
 public:
  pusher(std::string url, std::string stream, std::chrono::milliseconds gap = 20ms)
      : url_(std::move(url)), stream_(std::move(stream)), gap_(gap) {
    thread_ = std::thread([this] { loop(); });
  }
  ~pusher() { stop(); }
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<std::pair<std::string, std::int64_t>> acked_ops() {
    std::lock_guard<std::mutex> g(mu_);
    return acked_;
  }
  int failures() const { return failures_; }

 private:
  void loop() {
    int seq = 0;
    while (!stop_) {
      ++seq;
      const std::string id = stream_ + "-" + std::to_string(seq);
      while (!stop_) {
        json r = push_op(url_, id, stream_, seq);
        if (acked(r, id)) {
          std::lock_guard<std::mutex> g(mu_);
          acked_.emplace_back(id, sl::mono_us());
          break;
        }
        ++failures_;
        std::this_thread::sleep_for(50ms);
      }
      std::this_thread::sleep_for(gap_);
    }
  }
  std::string url_, stream_;
  std::chrono::milliseconds gap_;
  std::atomic<bool> stop_{false};
  std::atomic<int> failures_{0};
  std::mutex mu_;
  std::vector<std::pair<std::string, std::int64_t>> acked_;
  std::thread thread_;
};

// A WebSocket subscriber of one stream that reconnects with after=<last cseq> when its
// connection breaks, as the fanout model does.
class subscriber {
 public:
  subscriber(std::string ws_url, std::string stream) : url_(std::move(ws_url)), stream_(std::move(stream)) {
    net::co_spawn(io_, run(), net::detached);
    thread_ = std::thread([this] { io_.run(); });
  }
  ~subscriber() { stop(); }
  void stop() {
    io_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::set<std::string> ids() {
    std::lock_guard<std::mutex> g(mu_);
    return ids_;
  }
  int duplicates() const { return duplicates_; }
  int connects() const { return connects_; }
  int disconnects() const { return disconnects_; }
  bool connected() const { return connected_; }

 private:
  net::awaitable<void> run() {
    constexpr auto tuple = net::as_tuple(net::use_awaitable);
    auto [host, port] = split_url(url_);
    for (;;) {
      websocket::stream<tcp::socket> ws(io_);
      auto [cec] = co_await ws.next_layer().async_connect({net::ip::make_address(host), port}, tuple);
      if (!cec) {
        std::string target = "/v1/ws?streams=" + stream_ + "&after=" + std::to_string(last_cseq_);
        auto [hec] = co_await ws.async_handshake(host + ":" + std::to_string(port), target, tuple);
        if (!hec) {
          ++connects_;
          connected_ = true;
          for (;;) {
            beast::flat_buffer buf;
            auto [rec, n] = co_await ws.async_read(buf, tuple);
            if (rec) break;
            try {
              json f = json::parse(beast::buffers_to_string(buf.data()));
              std::lock_guard<std::mutex> g(mu_);
              if (!ids_.insert(f.at("id").get<std::string>()).second) ++duplicates_;
              last_cseq_ = std::max(last_cseq_, f.at("cseq").get<std::int64_t>());
            } catch (...) {
            }
          }
          connected_ = false;
          ++disconnects_;
        }
      }
      net::steady_timer t(io_, 100ms);
      co_await t.async_wait(tuple);
    }
  }
  net::io_context io_;
  std::string url_, stream_;
  std::mutex mu_;
  std::set<std::string> ids_;
  std::int64_t last_cseq_ = 0;
  std::atomic<int> duplicates_{0}, connects_{0}, disconnects_{0};
  std::atomic<bool> connected_{false};
  std::thread thread_;
};

// Waits for the first event matching `pred` (events appended at or after `since_mono_us`).
std::optional<json> wait_event(const sl::lab& l, std::int64_t since_mono_us,
                               const std::function<bool(const json&)>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (auto& e : l.events())
      if (e.value("mono_us", std::int64_t{0}) >= since_mono_us && pred(e)) return e;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(20ms);
  }
}

// PostgreSQL's POSIX dynamic shared memory segments in /dev/shm (PostgreSQL.<handle>).
std::set<std::string> dev_shm_segments() {
  std::set<std::string> out;
  std::error_code ec;
  for (auto& e : std::filesystem::directory_iterator("/dev/shm", ec))
    if (e.path().filename().string().rfind("PostgreSQL.", 0) == 0) out.insert(e.path().string());
  return out;
}

// Of `files`, those no process has mapped: a live server (another test's, or an initdb) maps its
// segments; a killed one's stay unmapped for good.
std::vector<std::string> unmapped(const std::set<std::string>& files) {
  std::set<std::string> mapped;
  std::error_code ec;
  for (auto& p : std::filesystem::directory_iterator("/proc", ec)) {
    std::ifstream maps(p.path() / "maps");
    for (std::string line; std::getline(maps, line);)
      if (auto at = line.find("/dev/shm/PostgreSQL."); at != std::string::npos) mapped.insert(line.substr(at));
  }
  std::vector<std::string> out;
  for (auto& f : files)
    if (!mapped.count(f)) out.push_back(f);
  return out;
}

class lab_stack : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    skip_reason_ = syncstorm::test::lab_unavailable_reason();
    if (!skip_reason_.empty()) return;
    sl::lab::down(lab_id);  // a previous run that crashed
    shm_before_ = dev_shm_segments();
    sl::lab_options o;
    o.id = lab_id;
    o.pods = 2;
    o.replica = true;
    o.check_interval_ms = check_interval_ms;
    o.check_fall = check_fall;
    o.check_rise = check_rise;
    o.restart_delay_us = restart_delay_us;
    o.syncd_path = std::string(std::getenv("SYNCSTORM_BUILD_DIR")) + "/labstack/syncd";
    try {
      const auto t0 = std::chrono::steady_clock::now();
      lab_.emplace(sl::lab::up(o));
      std::cout << "lab up in "
                << std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()
                << " ms\n";
      status_ = lab_->status();
    } catch (const std::exception& e) {
      up_error_ = e.what();
    }
  }

  static void TearDownTestSuite() {
    if (!skip_reason_.empty()) return;
    auto errors = sl::lab::down(lab_id);
    for (auto& e : errors) ADD_FAILURE() << "lab down: " << e;
    lab_.reset();
  }

  void SetUp() override {
    if (!skip_reason_.empty()) SYNCSTORM_SKIP_OR_FAIL(skip_reason_);
    ASSERT_TRUE(lab_.has_value()) << "lab up failed: " << up_error_;
  }

  static inline std::optional<sl::lab> lab_;
  static inline json status_;
  static inline std::string up_error_;
  static inline std::string skip_reason_;
  static inline std::set<std::string> shm_before_;
};

TEST_F(lab_stack, status_reports_addresses_of_every_part) {
  json s = lab_->status();
  EXPECT_EQ(s["phase"], "ready");
  EXPECT_EQ(s["network"]["mode"], "namespaces") << s["network"].dump();
  EXPECT_TRUE(s["supervisor"]["answering"].get<bool>());
  for (auto p : {"lb_http", "lb_ws", "db"}) EXPECT_FALSE(s["paths"][p]["listen"].get<std::string>().empty()) << p;
  auto pods = lab_->pods();
  ASSERT_EQ(pods.size(), 2u);
  for (auto& p : pods) {
    EXPECT_GT(p.pid, 0) << p.name;
    EXPECT_EQ(p.status, "ready") << p.name;
    EXPECT_FALSE(p.netns.empty()) << p.name;
    EXPECT_EQ(s["units"][p.name]["lb"], "UP") << p.name;
  }
  EXPECT_NE(pods[0].address, pods[1].address);
  EXPECT_EQ(s["db"]["primary"], "db-0");
  EXPECT_EQ(s["db"]["replica"], "db-1");
  EXPECT_EQ(psql(lab_->db_dsn(), "SELECT sync_state FROM pg_stat_replication"), "sync\n");
  for (auto& [k, v] : s["ports"].items()) EXPECT_NE(v.get<int>(), 5432) << k;
}

TEST_F(lab_stack, push_through_the_lb_is_stored) {
  const std::string id = "push-" + std::to_string(sl::unix_us());
  json r = push_op(lab_->lb_http_url(), id, "s-push", 1);
  ASSERT_TRUE(acked(r, id)) << r.dump();
  EXPECT_EQ(psql(lab_->db_dsn(), "SELECT count(*) FROM syncd_changes WHERE id = '" + id + "'"), "1\n");
  auto ch = http_call(lab_->lb_http_url(), http::verb::get, "/v1/changes?stream=s-push&after=0");
  ASSERT_EQ(ch.status, 200) << ch.error << ch.body;
  EXPECT_NE(ch.body.find(id), std::string::npos) << ch.body;
}

TEST_F(lab_stack, killed_pod_is_marked_down_restarted_and_ready_with_events) {
  const std::string pod = "pod-1";
  ASSERT_TRUE(lab_->wait_ready(pod, 10s));
  const std::int64_t t0 = sl::mono_us();
  const pid_t old_pid = lab_->kill_pod(pod, SIGKILL, true);
  ASSERT_GT(old_pid, 0);
  auto named = [&](const std::string& ev) {
    return [=](const json& e) { return e.value("event", "") == ev && e.value("name", "") == pod; };
  };
  auto died = wait_event(*lab_, t0, named("pod_died"), 5s);
  ASSERT_TRUE(died) << "no pod_died event";
  EXPECT_EQ(died->value("signal", 0), SIGKILL);
  EXPECT_TRUE(died->value("restart", false));

  auto down = wait_event(
      *lab_, t0,
      [&](const json& e) { return e.value("event", "") == "lb_server_down" && e.value("server", "") == pod; }, 5s);
  ASSERT_TRUE(down) << "HAProxy never marked " << pod << " down";
  // fall × interval, plus one interval of check phase, the 100 ms stats poll and a margin.
  const std::int64_t bound_us = (check_fall * check_interval_ms + check_interval_ms + 100 + 400) * 1000;
  const std::int64_t detect_us = down->value("mono_us", std::int64_t{0}) - died->value("mono_us", std::int64_t{0});
  EXPECT_LE(detect_us, bound_us) << "marked down after " << detect_us << " µs";
  std::cout << "pod died → LB down: " << detect_us / 1000 << " ms (bound " << bound_us / 1000 << " ms)\n";

  auto restarted =
      wait_event(*lab_, t0, named("pod_restarted"), std::chrono::milliseconds(restart_delay_us / 1000 + 5000));
  ASSERT_TRUE(restarted) << "the supervisor did not restart " << pod;
  const std::int64_t delay = restarted->value("mono_us", std::int64_t{0}) - died->value("mono_us", std::int64_t{0});
  EXPECT_GE(delay, restart_delay_us - 50'000);
  EXPECT_NE(restarted->value("pid", 0L), static_cast<long>(old_pid));

  auto ready = wait_event(*lab_, t0, named("pod_ready"), 15s);
  ASSERT_TRUE(ready) << pod << " never became ready";
  auto up = wait_event(
      *lab_, restarted->value("mono_us", std::int64_t{0}),
      [&](const json& e) { return e.value("event", "") == "lb_server_up" && e.value("server", "") == pod; }, 10s);
  ASSERT_TRUE(up) << "HAProxy never marked " << pod << " up again";
  EXPECT_LE(died->value("mono_us", 0L), down->value("mono_us", 0L));
  EXPECT_LE(restarted->value("mono_us", 0L), ready->value("mono_us", 0L));
  EXPECT_LE(ready->value("mono_us", 0L), up->value("mono_us", 0L) + 1000);
  auto pods = lab_->pods();
  EXPECT_EQ(pods[1].restarts, 1);
}

TEST_F(lab_stack, a_norestart_marker_keeps_a_pod_killed_by_pid_down_until_started) {
  const std::string pod = "pod-0";
  ASSERT_TRUE(lab_->wait_ready(pod, 10s));
  const std::string dir = lab_->dir();
  long pid = 0;
  std::ifstream(dir + "/run/" + pod + ".pid") >> pid;
  ASSERT_GT(pid, 0);
  std::ofstream(dir + "/norestart/" + pod).flush();
  const std::int64_t t0 = sl::mono_us();
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  auto died = wait_event(
      *lab_, t0, [&](const json& e) { return e.value("event", "") == "pod_died" && e.value("name", "") == pod; }, 5s);
  ASSERT_TRUE(died);
  EXPECT_FALSE(died->value("restart", true));
  EXPECT_FALSE(std::filesystem::exists(dir + "/norestart/" + pod)) << "the marker is consumed by the death";
  std::this_thread::sleep_for(std::chrono::milliseconds(restart_delay_us / 1000 + 300));
  auto pods = lab_->pods();
  EXPECT_EQ(pods[0].status, "dead");
  EXPECT_EQ(pods[0].pid, 0);
  lab_->start_unit(pod);
  EXPECT_TRUE(lab_->wait_ready(pod, 15s));
}

TEST_F(lab_stack, killed_replica_is_restarted_and_replication_is_synchronous_again) {
  ASSERT_TRUE(lab_->replica_unit().has_value());
  const std::string replica = *lab_->replica_unit();
  const std::int64_t t0 = sl::mono_us();
  lab_->kill_unit(replica, SIGKILL, true);
  for (auto ev : {"db_died", "db_restarted", "db_ready"}) {
    auto e = wait_event(
        *lab_, t0, [&](const json& x) { return x.value("event", "") == ev && x.value("name", "") == replica; }, 20s);
    ASSERT_TRUE(e) << "no " << ev << " event for " << replica;
  }
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  std::string state;
  while (std::chrono::steady_clock::now() < deadline) {
    state = psql(lab_->db_dsn(), "SELECT sync_state FROM pg_stat_replication");
    if (state == "sync\n") break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(state, "sync\n");
  const std::string id = "after-replica-" + std::to_string(sl::unix_us());
  EXPECT_TRUE(acked(push_op(lab_->lb_http_url(), id, "s-rep", 1), id));
}

TEST_F(lab_stack, websocket_subscriber_survives_the_kill_of_its_pod) {
  for (auto& p : lab_->pods()) ASSERT_TRUE(lab_->wait_ready(p.name, 20s)) << p.name;
  const std::string stream = "s-ws-" + std::to_string(sl::unix_us() % 100000);
  subscriber sub(lab_->lb_ws_url(), stream);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!sub.connected() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(20ms);
  ASSERT_TRUE(sub.connected()) << "the subscriber could not connect through " << lab_->lb_ws_url();

  // Which pod carries it: the be_ws server with a session (this test's is the only one).
  const std::string sock = lab_->status()["lb"]["stats_socket"];
  std::string its_pod;
  for (int i = 0; i < 50 && its_pod.empty(); ++i) {
    for (auto& r : sl::haproxy_show_stat(sock))
      if (r.backend == "be_ws" && r.server != "BACKEND" && r.current_sessions > 0)
        its_pod = r.server.substr(0, r.server.find('.'));
    if (its_pod.empty()) std::this_thread::sleep_for(20ms);
  }
  ASSERT_FALSE(its_pod.empty()) << "found no be_ws session in HAProxy's stats";

  pusher p(lab_->lb_http_url(), stream, 20ms);
  std::this_thread::sleep_for(1s);
  lab_->kill_pod(its_pod, SIGKILL, true);
  std::this_thread::sleep_for(3s);
  p.stop();
  auto acked_ops = p.acked_ops();
  ASSERT_GT(acked_ops.size(), 20u);

  std::set<std::string> missing;
  const auto settle = std::chrono::steady_clock::now() + 15s;
  for (;;) {
    auto got = sub.ids();
    missing.clear();
    for (auto& [id, t] : acked_ops)
      if (!got.count(id)) missing.insert(id);
    if (missing.empty() || std::chrono::steady_clock::now() >= settle) break;
    std::this_thread::sleep_for(50ms);
  }
  sub.stop();
  EXPECT_GE(sub.disconnects(), 1) << "the subscriber's connection survived the kill of " << its_pod << "?";
  EXPECT_GE(sub.connects(), 2) << "the subscriber never reconnected";
  EXPECT_TRUE(missing.empty()) << missing.size() << " of " << acked_ops.size()
                               << " acked ops never reached the subscriber, e.g. " << *missing.begin();
  EXPECT_EQ(sub.duplicates(), 0);
  std::cout << "acked " << acked_ops.size() << ", push retries " << p.failures() << ", ws connects " << sub.connects()
            << ", pod killed: " << its_pod << "\n";
  for (auto& q : lab_->pods()) lab_->wait_ready(q.name, 20s);
}

TEST_F(lab_stack, failover_to_the_replica_keeps_every_acked_op) {
  for (auto& p : lab_->pods()) ASSERT_TRUE(lab_->wait_ready(p.name, 20s)) << p.name;
  const std::string tag = std::to_string(sl::unix_us() % 100000);
  const std::string old_dsn = lab_->db_dsn();
  std::vector<std::unique_ptr<pusher>> pushers;
  for (int k = 0; k < 3; ++k)
    pushers.push_back(std::make_unique<pusher>(lab_->lb_http_url(), "s-fo" + tag + "-" + std::to_string(k), 10ms));
  std::this_thread::sleep_for(1500ms);

  const std::string primary = lab_->primary_unit();
  const std::int64_t t_kill = sl::mono_us();
  lab_->kill_unit(primary, SIGKILL, false);
  auto died = wait_event(
      *lab_, t_kill, [&](const json& e) { return e.value("event", "") == "db_died" && e.value("name", "") == primary; },
      5s);
  ASSERT_TRUE(died) << "no db_died event";
  EXPECT_FALSE(died->value("restart", true));
  std::this_thread::sleep_for(300ms);
  lab_->promote_replica();
  const std::int64_t t_promoted = sl::mono_us();
  std::this_thread::sleep_for(3s);
  for (auto& p : pushers) p->stop();

  EXPECT_EQ(lab_->primary_unit(), "db-1");
  EXPECT_FALSE(lab_->replica_unit().has_value());
  EXPECT_NE(lab_->db_dsn(), old_dsn);
  EXPECT_EQ(psql(lab_->db_dsn(), "SELECT pg_is_in_recovery()"), "f\n");
  ASSERT_TRUE(wait_event(
      *lab_, t_kill, [](const json& e) { return e.value("event", "") == "db_promoted"; }, 1s));

  std::vector<std::string> all_acked;
  std::size_t after_promote = 0;
  for (auto& p : pushers)
    for (auto& [id, t] : p->acked_ops()) {
      all_acked.push_back(id);
      if (t > t_promoted) ++after_promote;
    }
  EXPECT_GT(after_promote, 10u) << "the pods did not write to the new primary";

  // The SQL audit, on the new primary.
  std::string out = psql(lab_->db_dsn(), "SELECT id FROM syncd_changes WHERE stream LIKE 's-fo" + tag + "-%'");
  std::set<std::string> stored;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) stored.insert(line);
  std::vector<std::string> lost;
  for (auto& id : all_acked)
    if (!stored.count(id)) lost.push_back(id);
  EXPECT_TRUE(lost.empty()) << lost.size() << " of " << all_acked.size()
                            << " acked ops are not in the new primary, e.g. " << lost.front();
  std::cout << "acked " << all_acked.size() << " (" << after_promote << " after the promote), stored " << stored.size()
            << ", lost " << lost.size() << "\n";
  // The fenced primary stays down.
  auto st = lab_->status();
  EXPECT_EQ(st["units"][primary]["role"], "db-fenced");
  EXPECT_EQ(st["units"][primary]["pid"], 0);
}

// Runs last (declaration order): down, then every kind of leftover is looked for.
TEST_F(lab_stack, down_leaves_nothing_behind) {
  json s = lab_->status();
  std::vector<int> ports;
  for (auto& [k, v] : s["ports"].items()) ports.push_back(v.get<int>());
  const std::string dir = lab_->dir();
  auto errors = lab_->down();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_TRUE(sl::find_lab_processes(lab_id, {"ss-sup-itstack", "ss-rly-itstack"}, dir + "/",
                                     {"postgres", "initdb", "pg_basebackup", "psql", "haproxy", "syncd"})
                  .empty());
  auto left = sl::network_leftovers(lab_id);
  EXPECT_TRUE(left.empty()) << left.front();
  std::ifstream mounts("/proc/self/mounts");
  std::string m((std::istreambuf_iterator<char>(mounts)), std::istreambuf_iterator<char>());
  EXPECT_EQ(m.find(dir), std::string::npos);
  for (auto& [a, p] : sl::tcp_listeners())
    for (int q : ports) EXPECT_NE(static_cast<int>(p), q) << "still listening on " << a << ":" << p;
  EXPECT_FALSE(std::filesystem::exists(dir));
  // The primary and the replica were killed with SIGKILL: their dynamic shared memory went with
  // the data directory (dynamic_shared_memory_type mmap), none of it is left in /dev/shm.
  std::set<std::string> shm_new;
  for (auto& f : dev_shm_segments())
    if (!shm_before_.count(f)) shm_new.insert(f);
  auto shm_left = unmapped(shm_new);
  EXPECT_TRUE(shm_left.empty()) << shm_left.size() << " segments left in /dev/shm, e.g. " << shm_left.front();
  // Twice is fine.
  EXPECT_TRUE(sl::lab::down(lab_id).empty());
}

}  // namespace
