// The fault proxy in front of a user's endpoint (issue #9): no lab, a small HTTP server on
// loopback (tests/support's Python server) standing for the user's stack.
//   - `syncstorm run` with target.proxy: the http model's requests go through the run's proxy;
//     200 ms of downstream latency shows as ~200 ms on http.latency p50, http_error 10% as ~90%
//     of requests succeeding; after the run the proxy process is gone and `revert` finds nothing;
//   - a relay that dies mid-run is restarted on its ports with its fault set again; then the
//     controller SIGKILLed while the fault is applied: the proxy process is gone (parent-death
//     signal, else the reaper) and `revert` finds nothing;
//   - `syncstorm proxy` standalone: pass-through, a latency set over --request, cleared; its
//     control socket against hostile local clients (bounded lines, depth, time and sessions);
//   - validation of the new keys (one line, exit 2).
#include "tests/support/run_events.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cstring>
#include <optional>
#include <thread>

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

double verdict(const json& rep, const std::string& name) {
  for (const auto& v : rep["verdicts"])
    if (v["name"] == name) return v["value"].is_number() ? v["value"].get<double>() : -1;
  return -1;
}

json probe(const std::string& name, const std::string& metric, const std::string& stat, const std::string& window) {
  return {{"name", name},
          {"metric", metric},
          {"stat", stat},
          {"window", window},
          {"max", stat == "ratio" ? json(100) : json("1h")}};
}

// The relay process recorded in RUN_DIR/proxy/relay.pid, if it is still alive.
std::optional<long> live_proxy(const fs::path& rd) {
  std::istringstream in(t::read_file(rd / "proxy" / "relay.pid"));
  long pid = 0;
  unsigned long long start = 0;
  if (!(in >> pid >> start) || pid <= 0) return std::nullopt;
  std::string stat = t::read_file("/proc/" + std::to_string(pid) + "/stat");
  if (stat.empty()) return std::nullopt;
  auto c = stat.rfind(')');
  if (c == std::string::npos || stat[c + 2] == 'Z') return std::nullopt;
  std::string cmd = t::read_file("/proc/" + std::to_string(pid) + "/cmdline");
  if (cmd.find((rd / "proxy" / "config.json").string()) == std::string::npos) return std::nullopt;
  return pid;
}

bool python_missing() { return t::run("python3 -c 'print(1)' 2>/dev/null").out.find('1') == std::string::npos; }

}  // namespace

TEST(endpoint_proxy, latency_and_http_error_through_the_runs_proxy_then_it_is_gone) {
  if (python_missing()) SYNCSTORM_SKIP_OR_FAIL("python3 is missing (the test's HTTP server)");
  t::temp_dir d;
  const int port = t::free_port();
  t::recording_http_server server(port, d.path());
  json load = {{"name", "get"},
               {"model", "http"},
               {"connections", 32},
               {"timeout", "5s"},
               {"request", {{"method", "GET"}, {"path", "/item"}}},
               {"phases",
                {{{"name", "before"}, {"for", "4s"}, {"rate", 100}},
                 {{"name", "lat"}, {"for", "6s"}, {"rate", 100}},
                 {{"name", "mid"}, {"for", "3s"}, {"rate", 100}},
                 {{"name", "herr"}, {"for", "8s"}, {"rate", 100}},
                 {{"name", "tail"}, {"for", "2s"}, {"rate", 100}}}}};
  json doc = {
      {"name", "ep-proxy"},
      {"duration", "23s"},
      {"target", {{"endpoints", {{"http", "http://127.0.0.1:" + std::to_string(port)}}}, {"proxy", json::object()}}},
      {"load", {load}},
      {"faults",
       {{{"name", "lat"},
         {"kind", "latency"},
         {"direction", "down"},
         {"latency", "200ms"},
         {"at", "4s"},
         {"for", "6s"}},
        {{"name", "herr"},
         {"kind", "http_error"},
         {"path", "clients-endpoints"},
         {"percent", 10},
         {"status", 503},
         {"at", "13s"},
         {"for", "8s"}}}},
      {"slas",
       {probe("p50-before", "http.latency", "p50", "phase:get/before"),
        probe("p50-lat", "http.latency", "p50", "phase:get/lat"),
        probe("p50-mid", "http.latency", "p50", "phase:get/mid"),
        probe("ok-herr", "availability.attempts", "ratio", "phase:get/herr"),
        probe("ok-mid", "availability.attempts", "ratio", "phase:get/mid")}}};
  t::write_file(d.path() / "s.json", doc.dump());
  auto r =
      t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " 2>&1");
  fs::path rd = t::only_run_dir(d.path() / "runs");
  // 5: inconclusive when the shared machine saturated the generator; the values still count.
  EXPECT_TRUE(r.exit_code == 0 || r.exit_code == 5) << r.out;
  EXPECT_NE(r.out.find("proxy: the run's fault proxy in front of the endpoints: http 127.0.0.1:"), std::string::npos)
      << r.out;
  json rep = json::parse(t::read_file(rd / "report.json"));
  double before = verdict(rep, "p50-before"), lat = verdict(rep, "p50-lat"), mid = verdict(rep, "p50-mid");
  std::cerr << "http.latency p50 before " << before << " ms, with 200 ms latency " << lat << " ms, after " << mid
            << " ms; requests ok with http_error 10%: " << verdict(rep, "ok-herr") << "%\n";
  EXPECT_NEAR(lat - before, 200.0, 50.0) << "p50 before " << before << " ms, during " << lat << " ms";
  EXPECT_LT(mid, before + 50.0) << "p50 after the latency was reverted: " << mid << " ms";
  EXPECT_NEAR(verdict(rep, "ok-herr"), 90.0, 3.5);
  EXPECT_EQ(verdict(rep, "ok-mid"), 100.0);
  for (const auto& f : rep["faults"]) {
    EXPECT_FALSE(f.contains("error")) << f.dump();
    EXPECT_TRUE(f["reverted_at"].is_number()) << f.dump();
    EXPECT_EQ(f["targets"][0].value("backend", ""), "proxy") << f.dump();
  }
  // The server saw requests (through the proxy), the proxy is gone, the ledger has nothing left.
  const std::string seen = server.log();
  EXPECT_GT(std::count(seen.begin(), seen.end(), '\n'), 1500);
  EXPECT_FALSE(live_proxy(rd)) << t::read_file(rd / "proxy" / "relay.log");
  EXPECT_FALSE(fs::exists(rd / "proxy" / "control.sock"));
  auto rv = t::run(t::bin() + " revert " + rd.string() + " 2>&1");
  EXPECT_EQ(rv.exit_code, 0) << rv.out;
  EXPECT_NE(rv.out.find("nothing to revert"), std::string::npos) << rv.out;
}

TEST(endpoint_proxy, the_proxy_goes_when_the_controller_is_sigkilled) {
  if (python_missing()) SYNCSTORM_SKIP_OR_FAIL("python3 is missing (the test's HTTP server)");
  t::temp_dir d;
  const int port = t::free_port();
  t::recording_http_server server(port, d.path());
  json doc = {
      {"name", "ep-crash"},
      {"duration", "60s"},
      {"target",
       {{"endpoints", {{"http", "http://127.0.0.1:" + std::to_string(port)}}}, {"proxy", {{"listen", "127.0.0.1"}}}}},
      {"load",
       {{{"name", "get"},
         {"model", "http"},
         {"connections", 4},
         {"request", {{"path", "/"}}},
         {"phases", {{{"name", "p"}, {"for", "60s"}, {"rate", 20}}}}}}},
      {"faults", {{{"name", "slow"}, {"kind", "latency"}, {"latency", "50ms"}, {"at", "500ms"}, {"for", "50s"}}}}};
  t::write_file(d.path() / "s.json", doc.dump());
  t::child run("exec " + t::bin() + " run " + (d.path() / "s.json").string() + " --out " +
               (d.path() / "runs").string() + " > " + (d.path() / "log").string() + " 2>&1");
  fs::path rd = t::wait_run_dir(d.path() / "runs");
  ASSERT_FALSE(rd.empty()) << t::read_file(d.path() / "log");
  ASSERT_TRUE(t::wait_event(
      rd / "events.jsonl", [](const json& e) { return e["event"] == "fault_applied"; }, std::chrono::seconds(30)))
      << t::read_file(d.path() / "log");
  auto first = live_proxy(rd);
  ASSERT_TRUE(first) << t::read_file(d.path() / "log");
  // Supervised: a relay that dies is started again on its ports, with the fault set again.
  ::kill(static_cast<pid_t>(*first), SIGKILL);
  ASSERT_TRUE(t::wait_event(
      rd / "events.jsonl", [](const json& e) { return e["event"] == "proxy_restarted"; }, std::chrono::seconds(15)))
      << t::read_file(d.path() / "log");
  auto pid = live_proxy(rd);
  ASSERT_TRUE(pid);
  EXPECT_NE(*pid, *first);
  std::string control = (rd / "proxy" / "control.sock").string();
  auto st = t::run(t::bin() + " proxy --control " + control + " --request '{\"cmd\":\"status\"}' 2>&1");
  EXPECT_NE(st.out.find("\"kind\":\"latency\""), std::string::npos) << st.out;
  ::kill(run.pid(), SIGKILL);
  run.stop();
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = !live_proxy(rd);
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_TRUE(gone) << "proxy pid " << *pid << " outlived its controller\nreaper:\n" << t::read_file(rd / "reaper.log");
  // The reaper records the revert of the fault and of the proxy; then nothing is left.
  std::string rv;
  int code = -1;
  for (int i = 0; i < 100; ++i) {
    auto r = t::run(t::bin() + " revert " + rd.string() + " 2>&1");
    rv = r.out;
    code = r.exit_code;
    if (rv.find("nothing to revert") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(code, 0) << rv;
  EXPECT_NE(rv.find("nothing to revert"), std::string::npos) << rv << "\nreaper:\n" << t::read_file(rd / "reaper.log");
}

TEST(endpoint_proxy, standalone_proxy_passes_through_and_takes_faults_at_run_time) {
  if (python_missing()) SYNCSTORM_SKIP_OR_FAIL("python3 is missing (the test's HTTP server)");
  t::temp_dir d;
  const int port = t::free_port(), listen = t::free_port();
  t::recording_http_server server(port, d.path());
  const std::string sock = (d.path() / "ctl.sock").string();
  t::child proxy("exec " + t::bin() + " proxy --listen 127.0.0.1:" + std::to_string(listen) +
                 " --upstream localhost:" + std::to_string(port) + " --control " + sock + " --http > " +
                 (d.path() / "proxy.log").string() + " 2>&1");
  ASSERT_TRUE(t::wait_port(listen)) << t::read_file(d.path() / "proxy.log");
  const std::string url = "http://127.0.0.1:" + std::to_string(listen) + "/x";
  auto timed = [&] {
    auto r = t::run("curl -s -o /dev/null -m 5 -w '%{http_code} %{time_total}' " + url);
    int code = 0;
    double s = 0;
    std::istringstream(r.out) >> code >> s;
    return std::make_pair(code, s);
  };
  auto [c0, s0] = timed();
  EXPECT_EQ(c0, 200);
  EXPECT_LT(s0, 0.15);
  auto set = t::run(
      t::bin() + " proxy --control " + sock +
      R"( --request '{"cmd":"fault","path":"proxy","id":"t","fault":{"kind":"latency","direction":"down","latency_us":300000}}' 2>&1)");
  EXPECT_EQ(set.exit_code, 0) << set.out;
  auto [c1, s1] = timed();
  EXPECT_EQ(c1, 200);
  EXPECT_GT(s1, 0.28) << "300 ms of latency set at run time";
  auto bad = t::run(t::bin() + " proxy --control " + sock + " --request '{\"cmd\":\"fault\",\"path\":\"nope\"}' 2>&1");
  EXPECT_EQ(bad.exit_code, 3) << bad.out;
  EXPECT_NE(bad.out.find("path: found \\\"nope\\\""), std::string::npos) << bad.out;
  auto clear =
      t::run(t::bin() + " proxy --control " + sock + R"( --request '{"cmd":"clear","path":"proxy","id":"*"}' 2>&1)");
  EXPECT_NE(clear.out.find("\"cleared\":1"), std::string::npos) << clear.out;
  auto [c2, s2] = timed();
  EXPECT_EQ(c2, 200);
  EXPECT_LT(s2, 0.25);
  EXPECT_NE(
      t::read_file(d.path() / "proxy.log").find("-> 127.0.0.1:" + std::to_string(port) + " (HTTP/1.1), pass-through"),
      std::string::npos)
      << t::read_file(d.path() / "proxy.log");
  auto flags = t::run(t::bin() + " proxy --listen 127.0.0.1:1 2>&1");
  EXPECT_EQ(flags.exit_code, 2) << flags.out;
  EXPECT_NE(flags.out.find("--upstream: found nothing"), std::string::npos) << flags.out;
}

// http_error on chunked requests (issue #20): the proxy frames each request with Beast's parser,
// so a share of chunked POSTs on one keep-alive connection is answered with the injected 503
// and the rest reach the server whole, Content-Length requests between them too, and the
// connection stays open throughout. Before, the first chunked request stopped the request
// tracking: a dropped one closed the connection, and every request after it passed unfaulted.
TEST(endpoint_proxy, http_error_applies_to_chunked_requests_on_a_kept_connection) {
  if (python_missing()) SYNCSTORM_SKIP_OR_FAIL("python3 is missing (the test's HTTP server and client)");
  t::temp_dir d;
  const int port = t::free_port(), listen = t::free_port();
  const fs::path log = d.path() / "bodies.log";
  // The server decodes chunked bodies itself (http.server does not) and logs each body.
  t::python_http_server server(port, d.path(), "log = open(sys.argv[2], \"a\", buffering=1)\n",
                               R"PY(        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            body = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b""):
                        pass
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else b""
        log.write(body.decode() + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok"))PY",
                               log.string());
  const std::string sock = (d.path() / "ctl.sock").string();
  t::child proxy("exec " + t::bin() + " proxy --listen 127.0.0.1:" + std::to_string(listen) +
                 " --upstream 127.0.0.1:" + std::to_string(port) + " --control " + sock + " --http > " +
                 (d.path() / "proxy.log").string() + " 2>&1");
  ASSERT_TRUE(t::wait_port(listen)) << t::read_file(d.path() / "proxy.log");
  auto set = t::run(
      t::bin() + " proxy --control " + sock +
      R"( --request '{"cmd":"fault","path":"proxy","id":"e","fault":{"kind":"http_error","percent":50,"status":503,"seed":7}}' 2>&1)");
  ASSERT_EQ(set.exit_code, 0) << set.out;
  // 40 POSTs on one connection: three of every four chunked (two data chunks, one with an
  // extension, and a trailer), every fourth with a Content-Length.
  const fs::path client = d.path() / "client.py";
  t::write_file(client, R"PY(import http.client, json, socket, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=10)
c.connect()
first = c.sock
out = []
for i in range(40):
    body = b"op-%d-part2" % i
    if i % 4 == 3:
        c.request("POST", "/v1/push", body=body)
    else:
        head = b"op-%d-" % i
        raw = b"%x;ext=1\r\n%s\r\n5\r\npart2\r\n0\r\nX-Trailer: t\r\n\r\n" % (len(head), head)
        c.putrequest("POST", "/v1/push")
        c.putheader("Transfer-Encoding", "chunked")
        c.endheaders()
        c.send(raw)
    r = c.getresponse()
    r.read()
    out.append({"i": i, "status": r.status, "fault": r.getheader("X-Syncstorm-Fault"),
                "connection": r.getheader("Connection"), "same": c.sock is first})
print(json.dumps(out))
)PY");
  auto r = t::run("python3 " + client.string() + " " + std::to_string(listen) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out << t::read_file(d.path() / "proxy.log");
  json out = json::parse(r.out, nullptr, false);
  ASSERT_TRUE(out.is_array() && out.size() == 40) << r.out;
  std::string expected;
  int injected = 0, passed = 0, injected_chunked = 0, passed_chunked = 0;
  for (const auto& e : out) {
    const int i = e["i"];
    const bool chunked = i % 4 != 3;
    EXPECT_TRUE(e["same"].get<bool>()) << "request " << i << " came on a new connection: " << e.dump();
    if (e["status"] == 503) {
      EXPECT_EQ(e["fault"], "http_error") << e.dump();
      EXPECT_EQ(e["connection"], "keep-alive") << e.dump();
      ++injected;
      injected_chunked += chunked;
    } else {
      EXPECT_EQ(e["status"], 200) << e.dump();
      EXPECT_TRUE(e["fault"].is_null()) << e.dump();
      expected += "op-" + std::to_string(i) + "-part2\n";
      ++passed;
      passed_chunked += chunked;
    }
  }
  // At 50%, 30 chunked requests all passing or all dropped has odds of 2^-29.
  EXPECT_GT(injected_chunked, 0) << r.out;
  EXPECT_GT(passed_chunked, 0) << r.out;
  EXPECT_EQ(injected + passed, 40);
  // The server saw exactly the requests that were not answered by the proxy, whole and in order.
  EXPECT_EQ(t::read_file(log), expected);
  auto st = t::run(t::bin() + " proxy --control " + sock + " --request '{\"cmd\":\"status\"}' 2>&1");
  EXPECT_NE(st.out.find("\"injected_errors\":" + std::to_string(injected)), std::string::npos) << st.out;
}

namespace {

// A unix-socket client for the control socket: connects, sends `bytes`, reads the answer line
// (or EOF) within `limit`. Returns the answer, "<closed>" on EOF before any byte, "<timeout>".
std::string control_exchange(const std::string& path, const std::string& bytes, std::chrono::milliseconds limit) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.c_str(), path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    ::close(fd);
    return "<connect failed>";
  }
  for (std::size_t off = 0; off < bytes.size();) {
    ssize_t n = ::send(fd, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) break;  // the proxy closed it (e.g. over the line limit)
    off += static_cast<std::size_t>(n);
  }
  std::string out;
  const auto until = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  while (out.find('\n') == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
    pollfd p{fd, POLLIN, 0};
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) != 1) {
      ::close(fd);
      return out.empty() ? "<timeout>" : out;
    }
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out.empty() ? "<closed>" : out;
}

}  // namespace

// The proxy's control socket against hostile local clients (issue #23): a line over 64 KiB, a
// request nested 30,000 deep, a client that never finishes its line, non-objects, and 60
// clients holding sessions open: each gets an error or is closed, the proxy lives, and a status
// request answers once they are gone. The socket is its owner's alone (0600).
TEST(endpoint_proxy, the_control_socket_bounds_what_it_reads) {
  t::temp_dir d;
  const int port = t::free_port(), listen = t::free_port();
  const std::string sock = (d.path() / "ctl.sock").string();
  t::child proxy("exec " + t::bin() + " proxy --listen 127.0.0.1:" + std::to_string(listen) + " --upstream 127.0.0.1:" +
                 std::to_string(port) + " --control " + sock + " > " + (d.path() / "proxy.log").string() + " 2>&1");
  ASSERT_TRUE(t::wait_port(listen)) << t::read_file(d.path() / "proxy.log");
  struct stat st {};
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  using namespace std::chrono_literals;
  EXPECT_NE(control_exchange(sock, std::string(1 << 20, 'x'), 5s).find("over 64 KiB"), std::string::npos);
  EXPECT_NE(
      control_exchange(sock, std::string(30000, '[') + std::string(30000, ']') + "\n", 5s).find("nested too deep"),
      std::string::npos);
  EXPECT_NE(control_exchange(sock, "[1,2]\n", 5s).find("expected an object"), std::string::npos);
  EXPECT_NE(control_exchange(sock, "{\"cmd\": 5}\n", 5s).find("\"ok\":false"), std::string::npos);
  EXPECT_NE(control_exchange(sock, "\xff\xfe{\n", 5s).find("not JSON"), std::string::npos);
  const auto began = std::chrono::steady_clock::now();
  EXPECT_NE(control_exchange(sock, "{\"cmd\":", 5s).find("no request line within 2 s"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - began, 4s);
  // 60 clients that send nothing: 32 sessions at most, the rest closed at accept.
  std::vector<std::thread> idle;
  std::atomic<int> closed{0};
  for (int i = 0; i < 60; ++i)
    idle.emplace_back([&] {
      if (control_exchange(sock, "", 5s) == "<closed>") ++closed;
    });
  for (auto& th : idle) th.join();
  EXPECT_GE(closed.load(), 60 - 32);
  std::string status;
  for (int i = 0; i < 50 && status.find("\"ok\":true") == std::string::npos; ++i) {
    status = control_exchange(sock, "{\"cmd\":\"status\"}\n", 2s);
    if (status.find("\"ok\":true") == std::string::npos) std::this_thread::sleep_for(100ms);
  }
  EXPECT_NE(status.find("\"ok\":true"), std::string::npos) << status;
  EXPECT_NE(status.find("\"control_refused\":"), std::string::npos) << status;
  EXPECT_EQ(::kill(proxy.pid(), 0), 0) << "the proxy died\n" << t::read_file(d.path() / "proxy.log");
}

TEST(endpoint_proxy, the_new_keys_are_validated) {
  t::temp_dir d;
  auto validate = [&](const json& doc) {
    t::write_file(d.path() / "s.json", doc.dump());
    return t::run(t::bin() + " validate " + (d.path() / "s.json").string() + " 2>&1");
  };
  json load = {{"name", "get"},
               {"model", "http"},
               {"request", {{"path", "/"}}},
               {"phases", {{{"name", "p"}, {"for", "5s"}, {"rate", 1}}}}};
  json lat = {{"name", "lat"}, {"kind", "latency"}, {"latency", "10ms"}, {"at", "1s"}};
  json doc = {{"name", "v"},
              {"duration", "5s"},
              {"target", {{"endpoints", {{"http", "https://127.0.0.1:1"}}}}},
              {"load", {load}},
              {"faults", {lat}}};
  auto r = validate(doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(
      r.out.find(
          "scenario.faults[0]: found a latency fault on target.endpoints without target.proxy; expected target.proxy"),
      std::string::npos)
      << r.out;
  doc["target"]["proxy"] = {{"listen", "localhost"}};
  r = validate(doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario.target.proxy.listen: found \"localhost\"; expected an IP address"), std::string::npos)
      << r.out;
  doc["target"]["proxy"] = {{"listen", "127.0.0.1"}};
  doc["faults"][0]["path"] = "pods-db";
  doc["faults"].push_back({{"name", "e"}, {"kind", "http_error"}, {"percent", 5}, {"at", "1s"}});
  r = validate(doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario.faults[0].path: found \"pods-db\" without target.lab; expected \"clients-endpoints\""),
            std::string::npos)
      << r.out;
  EXPECT_NE(
      r.out.find(
          "scenario.faults[1].kind: found \"http_error\" with target.endpoints.http \"https://127.0.0.1:1\"; expected an http:// endpoint"),
      std::string::npos)
      << r.out;
  doc["target"]["proxy"] = json::object();
  doc["target"]["endpoints"]["http"] = "http://127.0.0.1:1";
  doc["faults"][0]["path"] = "clients-endpoints";
  r = validate(doc);
  EXPECT_EQ(r.exit_code, 0) << r.out;
  json lab_doc = {{"name", "v"},
                  {"duration", "5s"},
                  {"target", {{"lab", {{"pods", 2}}}, {"proxy", json::object()}}},
                  {"load", {load}}};
  r = validate(lab_doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario.target.proxy: found it without target.endpoints"), std::string::npos) << r.out;
  lab_doc["target"] = {{"lab", {{"id", "Bad-Id"}}}};
  r = validate(lab_doc);
  EXPECT_EQ(r.exit_code, 2) << r.out;
  EXPECT_NE(r.out.find("scenario.target.lab.id: found \"Bad-Id\""), std::string::npos) << r.out;
}
