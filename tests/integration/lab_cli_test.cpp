// Integration tests of `syncstorm lab up|status|down` through the CLI ($SYNCSTORM_BIN): flag
// errors exit 2 with one line naming the flag; a lab with a tmpfs database volume comes up,
// reports itself and serves a push; a loopback-only lab (the unprivileged layout) does too;
// `down` (twice) and `down` after a `lab up` killed halfway leave no process, namespace, link,
// iptables rule, mount, listening port or file of the lab behind.
//
// Threading: single-threaded; the CLI runs as child processes that the tests reap.
#include "tests/support/test_util.hpp"
#include "labstack/lab.hpp"
#include "labstack/lab_process.hpp"
#include "labstack/lab_state.hpp"
#include "labstack/netns.hpp"
#include "labstack/supervisor.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;
namespace sl = syncstorm::lab;

std::string bin() {
  const char* b = std::getenv("SYNCSTORM_BIN");
  return b ? b : "";
}

sl::run_result cli(std::vector<std::string> args, std::chrono::milliseconds timeout = 120s) {
  sl::spawn_options o;
  o.argv = {bin()};
  o.argv.insert(o.argv.end(), args.begin(), args.end());
  return sl::run_command(o, timeout);
}

std::string why_not_runnable() {
  if (bin().empty() || ::access(bin().c_str(), X_OK) != 0) return "SYNCSTORM_BIN is not set to the syncstorm CLI";
  return syncstorm::test::lab_unavailable_reason();
}

// Every kind of thing a lab makes, looked for by the lab's id and by what its state recorded.
void expect_nothing_left(const std::string& id, const json& state) {
  const std::string dir = sl::lab_dir(id);
  auto procs = sl::find_lab_processes(
      id, {"ss-sup-" + id, "ss-rly-" + id}, dir + "/",
      {"postgres", "postmaster", "initdb", "pg_basebackup", "pg_ctl", "psql", "haproxy", "syncd"});
  EXPECT_TRUE(procs.empty()) << "process " << procs.front() << " of lab " << id << " survived";
  for (auto& l : sl::network_leftovers(id)) ADD_FAILURE() << "left behind: " << l;
  for (auto& ns : state.value("created", json::object()).value("namespaces", json::array()))
    EXPECT_FALSE(std::filesystem::exists("/run/netns/" + ns.get<std::string>())) << ns;
  const std::string mounts = syncstorm::test::read_file("/proc/self/mounts");
  EXPECT_EQ(mounts.find(dir), std::string::npos) << "a mount under " << dir << " remains";
  const json ports = state.value("ports", json::object());
  const bool pods_in_namespaces = state.value("network", json::object()).value("mode", "") == "namespaces";
  for (auto& [a, p] : sl::tcp_listeners()) {
    for (auto& [k, v] : ports.items()) {
      if (k == "pod" && pods_in_namespaces) continue;
      EXPECT_NE(static_cast<int>(p), v.get<int>()) << "port " << k << " still listened on at " << a;
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir)) << dir << " remains";
  if (state.value("sysctls", json::object()).contains("ip_local_port_range")) {
    auto norm = [](std::string v) {
      std::replace(v.begin(), v.end(), '\t', ' ');
      while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
      return v;
    };
    const std::string now = norm(syncstorm::test::read_file("/proc/sys/net/ipv4/ip_local_port_range"));
    const std::string orig = norm(state["sysctls"]["ip_local_port_range"].value("original", ""));
    const std::string set = norm(state["sysctls"]["ip_local_port_range"].value("set", ""));
    // The range is global: a lab that other tests started beside this one may have set it before
    // this lab read its "original", and restored the true original on its own `down` since. So
    // the check is that this lab's own setting is not left behind, unless another lab (which
    // sets the same range) is still up.
    std::vector<std::string> others;
    for (const auto& other : sl::list_lab_ids())
      if (other != id) others.push_back(other);
    if (others.empty()) {
      EXPECT_TRUE(now == orig || now != set)
          << "ip_local_port_range left at the lab's " << set << " (original " << orig << ")";
    }
  }
}

json state_of(const std::string& id) {
  try {
    return sl::state_file(sl::state_path_of(id)).read();
  } catch (...) {
    return json::object();
  }
}

class lab_cli : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string why = why_not_runnable();
    if (!why.empty()) SYNCSTORM_SKIP_OR_FAIL(why);
  }
  // Whatever a test made, gone even when it failed.
  void TearDown() override {
    for (auto& id : ids_) sl::lab::down(id);
  }
  std::vector<std::string> ids_;
};

TEST_F(lab_cli, flag_errors_name_the_flag_and_exit_2) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"lab", "up", "--pods", "0"}, "--pods"},
      {{"lab", "up", "--db-volume", "12x"}, "--db-volume"},
      {{"lab", "up", "--network", "wifi"}, "--network"},
      {{"lab", "up", "--id", "Not-Valid"}, "--id"},
      {{"lab", "up", "--restart-delay", "soon"}, "--restart-delay"},
      {{"lab", "status", "--id", "a/b"}, "--id"},
      {{"lab", "up", "--pods", "two"}, "--pods"},
  };
  for (auto& [args, flag] : cases) {
    auto r = cli(args, 20s);
    std::string line = r.output;
    while (!line.empty() && line.back() == '\n') line.pop_back();
    EXPECT_EQ(r.exit_code, 2) << sl::render_argv(args) << ": " << r.output;
    EXPECT_EQ(line.find('\n'), std::string::npos) << "more than one line: " << r.output;
    EXPECT_NE(line.find(flag), std::string::npos) << "does not name " << flag << ": " << r.output;
  }
}

TEST_F(lab_cli, up_status_down_with_a_db_volume) {
  const std::string id = "itcli";
  ids_.push_back(id);
  sl::lab::down(id);
  auto up = cli({"lab", "up", "--id", id, "--pods", "1", "--db-volume", "128MiB", "--check-interval", "200",
                 "--restart-delay", "500ms"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  EXPECT_NE(up.output.find("ready"), std::string::npos) << up.output;

  auto st = cli({"lab", "status", "--json", "--id", id}, 20s);
  ASSERT_EQ(st.exit_code, 0) << st.output;
  json s = json::parse(st.output);
  EXPECT_EQ(s["phase"], "ready");
  EXPECT_EQ(s["units"]["pod-0"]["status"], "ready");
  const std::string data_dir = s["db"]["instances"]["db-0"]["data_dir"];
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(data_dir.c_str(), &vfs), 0);
  const double size = static_cast<double>(vfs.f_blocks) * static_cast<double>(vfs.f_frsize);
  EXPECT_NEAR(size, 128.0 * 1024 * 1024, 1024 * 1024) << "the data dir is not on a 128MiB volume";
  EXPECT_NE(syncstorm::test::read_file("/proc/self/mounts").find(data_dir + " tmpfs"), std::string::npos);

  // A push through the LB, with curl as any client would.
  const std::string url = s["lb"]["http_url"];
  sl::spawn_options curl;
  curl.argv = {"curl",
               "-s",
               "-m",
               "10",
               "-X",
               "POST",
               "-H",
               "content-type: application/json",
               "--data",
               R"({"client":"cli","ops":[{"id":"cli-1","stream":"s-cli","seq":1,"t_us":1,"kind":"append"}]})",
               url + "/v1/push"};
  auto pushed = sl::run_command(curl, 20s);
  EXPECT_NE(pushed.output.find("\"cli-1\""), std::string::npos) << pushed.output;

  // The text form names the addresses too.
  auto text = cli({"lab", "status", "--id", id}, 20s);
  EXPECT_NE(text.output.find(url), std::string::npos) << text.output;

  json before = state_of(id);
  auto down = cli({"lab", "down", "--id", id}, 120s);
  EXPECT_EQ(down.exit_code, 0) << down.output;
  expect_nothing_left(id, before);
  auto again = cli({"lab", "down", "--id", id}, 60s);
  EXPECT_EQ(again.exit_code, 0) << again.output;
  auto gone = cli({"lab", "status", "--id", id}, 20s);
  EXPECT_EQ(gone.exit_code, 3) << gone.output;
}

TEST_F(lab_cli, loopback_lab_puts_pods_on_their_own_127_addresses) {
  const std::string id = "itloop";
  ids_.push_back(id);
  sl::lab::down(id);
  auto up = cli({"lab", "up", "--id", id, "--pods", "2", "--network", "loopback", "--check-interval", "200"});
  ASSERT_EQ(up.exit_code, 0) << up.output;
  json s = json::parse(cli({"lab", "status", "--json", "--id", id}, 20s).output);
  EXPECT_EQ(s["network"]["mode"], "loopback");
  const std::string a0 = s["units"]["pod-0"]["address"], a1 = s["units"]["pod-1"]["address"];
  EXPECT_EQ(a0.rfind("127.0.0.", 0), 0u) << a0;
  EXPECT_EQ(a1.rfind("127.0.0.", 0), 0u) << a1;
  EXPECT_NE(a0.substr(0, a0.find(':')), a1.substr(0, a1.find(':')));
  int code = 0;
  const std::string url = s["lb"]["http_url"];
  auto hp = url.substr(7);
  EXPECT_TRUE(sl::probe_http(hp.substr(0, hp.find(':')),
                             static_cast<std::uint16_t>(std::stoi(hp.substr(hp.find(':') + 1))), "/readyz", 5s, &code))
      << code;
  json before = state_of(id);
  EXPECT_EQ(cli({"lab", "down", "--id", id}, 120s).exit_code, 0);
  expect_nothing_left(id, before);
}

// `lab up` killed with SIGKILL at two points (while the network is being made; while the
// database volume and PostgreSQL are up), then `lab down`.
TEST_F(lab_cli, down_cleans_up_after_an_up_killed_halfway) {
  struct kill_point {
    std::string name;
    std::function<bool(const json&)> reached;
  };
  const std::vector<kill_point> points = {
      {"network",
       [](const json& s) { return !s.value("created", json::object()).value("namespaces", json::array()).empty(); }},
      {"database",
       [](const json& s) {
         return s.value("units", json::object())
                    .value("db-0", json::object())
                    .value("runtime", json::object())
                    .value("status", "") == "ready";
       }},
  };
  for (auto& point : points) {
    SCOPED_TRACE("killed at " + point.name);
    const std::string id = "ithalf";
    ids_.push_back(id);
    sl::lab::down(id);
    sl::spawn_options o;
    o.argv = {bin(), "lab", "up", "--id", id, "--pods", "2", "--replica", "--db-volume", "128MiB"};
    o.log_path = "/tmp/syncstorm-ithalf-up.log";
    const pid_t pid = sl::spawn(o);
    bool reached = false;
    const auto deadline = std::chrono::steady_clock::now() + 60s;
    json s;
    while (std::chrono::steady_clock::now() < deadline) {
      s = state_of(id);
      if (point.reached(s)) {
        reached = true;
        break;
      }
      int st = 0;
      if (::waitpid(pid, &st, WNOHANG) == pid) break;  // finished (or failed) before the point
      std::this_thread::sleep_for(5ms);
    }
    ::kill(pid, SIGKILL);
    int st = 0;
    ::waitpid(pid, &st, 0);
    EXPECT_TRUE(reached) << "lab up never reached the " << point.name
                         << " step: " << syncstorm::test::read_file(o.log_path);
    std::this_thread::sleep_for(300ms);  // let orphans of the killed CLI take a step
    json before = state_of(id);
    EXPECT_NE(before.value("phase", ""), "ready");
    auto down = cli({"lab", "down", "--id", id}, 120s);
    EXPECT_EQ(down.exit_code, 0) << down.output;
    expect_nothing_left(id, before);
  }
}

}  // namespace
