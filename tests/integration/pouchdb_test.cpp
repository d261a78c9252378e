// A stack nobody here wrote (issue #27): POS lanes (`terminal`) push to a real pouchdb-server
// (npm, pinned by scripts/setup.sh; Node.js) through the shipped `couchdb` profile, while the
// run's own `kill` fault SIGKILLs the server mid-run through its pidfile and the lab's
// supervisor (labstack/supervisor, one unit here) restarts it, as Kubernetes would.
//   durable (LevelDB under the test's directory): nothing lost, nothing duplicated, no push
//   counted as a protocol error, exit 0;
//   --in-memory (a restart loses everything): the audit finds the acknowledged ops that are
//   gone, `nothing-lost` fails, exit 1.
// The server runs under tests/support/pouchdb_launch.js, which also creates the database when
// it is missing (a restarted in-memory server has none). Everything listens on 127.0.0.1 only;
// the supervisor and the server are shut down and killed on every exit path (RAII).
#include "labstack/supervisor.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <csignal>
#include <fstream>

namespace t = syncstorm::test;
namespace lab = syncstorm::lab;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* pouchdb_version = "4.2.0";

std::string pouchdb_dir() {
  return t::env_or("SYNCSTORM_POUCHDB_DIR", std::string("/var/tmp/syncstorm/npm/pouchdb-server-") + pouchdb_version);
}

std::string node_path() {
  for (const char* p : {"/usr/bin/node", "/usr/local/bin/node", "/usr/bin/nodejs"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

// Why pouchdb-server cannot run here, or empty.
std::string unavailable_reason() {
  if (node_path().empty()) return "missing node (scripts/setup.sh installs Debian's nodejs)";
  if (::access((pouchdb_dir() + "/node_modules/.bin/pouchdb-server").c_str(), X_OK) != 0)
    return "missing pouchdb-server@" + std::string(pouchdb_version) + " in " + pouchdb_dir() +
           " (scripts/setup.sh installs it)";
  return {};
}

// One supervised pouchdb-server on 127.0.0.1:port with database `pos`: the supervisor is a
// detached process (its own session); the destructor shuts it down and kills what is left.
class supervised_pouchdb {
 public:
  supervised_pouchdb(const fs::path& dir, int port, bool in_memory) : dir_(dir), port_(port) {
    fs::create_directories(dir / "data");
    std::vector<std::string> argv = {node_path(),   t::source_dir() + "/tests/support/pouchdb_launch.js",
                                     pouchdb_dir(), std::to_string(port),
                                     "pos",         "--no-stdout-logs",
                                     "--config",    (dir / "data/config.json").string()};
    if (in_memory)
      argv.push_back("--in-memory");
    else
      argv.insert(argv.end(), {"--dir", (dir / "data").string() + "/"});
    json state = {{"id", "pouch"},
                  {"dir", dir.string()},
                  {"unit_order", {"pouchdb"}},
                  {"options", {{"restart_delay_us", 500000}}},
                  {"units",
                   {{"pouchdb",
                     {{"role", "pouchdb"},
                      {"kind", "exec"},
                      {"argv", argv},
                      {"cwd", (dir / "data").string()},
                      {"log", (dir / "pouchdb.log").string()},
                      {"probe", {{"kind", "http"}, {"host", "127.0.0.1"}, {"port", port}, {"path", "/pos"}}}}}}}};
    t::write_file(dir / "state.json", state.dump(2));
    sup_pid_ = lab::start_supervisor((dir / "state.json").string());
    lab::supervisor_request((dir / "supervisor.sock").string(), {{"cmd", "start"}, {"unit", "pouchdb"}});
  }
  ~supervised_pouchdb() {
    try {
      lab::supervisor_request((dir_ / "supervisor.sock").string(), {{"cmd", "shutdown"}, {"grace_ms", 2000}},
                              std::chrono::seconds(5));
    } catch (...) {
    }
    // Whatever did not go: the server by its pidfile, the supervisor by its pid.
    for (int i = 0; i < 50 && ::kill(sup_pid_, 0) == 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (auto pid = server_pid(); pid > 0) ::kill(pid, SIGKILL);
    if (sup_pid_ > 0) ::kill(sup_pid_, SIGKILL);
  }
  // Ready: the database answers (the launcher created it).
  bool wait_ready(std::chrono::seconds limit) const {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      int status = 0;
      if (lab::probe_http("127.0.0.1", static_cast<std::uint16_t>(port_), "/pos", std::chrono::milliseconds(500),
                          &status) &&
          status == 200)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  pid_t server_pid() const {
    std::ifstream in(dir_ / "run/pouchdb.pid");
    long pid = 0;
    in >> pid;
    return static_cast<pid_t>(pid);
  }
  fs::path pidfile() const { return dir_ / "run/pouchdb.pid"; }
  std::string log_tail() const {
    std::string s = t::read_file(dir_ / "pouchdb.log");
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  }

 private:
  fs::path dir_;
  int port_;
  pid_t sup_pid_ = -1;
};

json scenario(int port, const fs::path& pidfile) {
  return {{"name", "pouchdb-kill"},
          {"duration", "16s"},
          {"target",
           {{"endpoints", {{"http", "http://127.0.0.1:" + std::to_string(port) + "/pos"}}}, {"profile", "couchdb"}}},
          {"load",
           {{{"name", "pos"},
             {"model", "terminal"},
             {"stores", 2},
             {"terminals_per_store", 2},
             {"rate", "5/s"},
             {"ops", {{"append", 100}}},
             {"batch", {{"max_ops", 20}, {"max_wait", "100ms"}}},
             {"timeout", "2s"},
             {"retry", {{"base", "100ms"}, {"max", "1s"}, {"limit", 50}}},
             {"drain", "20s"},
             {"phases", {{{"name", "steady"}, {"for", "16s"}}}}}}},
          {"faults",
           {{{"name", "kill-pouchdb"},
             {"kind", "kill"},
             {"signal", "SIGKILL"},
             {"target", {{"pidfile", pidfile.string()}}},
             {"at", "8s"}}}},
          {"slas",
           {{{"name", "nothing-lost"}, {"metric", "audit.lost"}, {"stat", "max"}, {"max", 0}},
            {{"name", "no-duplicates"}, {"metric", "audit.duplicates"}, {"stat", "max"}, {"max", 0}}}}};
}

struct run_outcome {
  int exit_code = -1;
  json report;
  std::string out;
};

run_outcome run_against_pouchdb(bool in_memory) {
  run_outcome o;
  t::temp_dir tmp;  // scenario and runs
  // The server's files under /var/tmp (the supervisor's control socket needs a short path).
  char tmpl[] = "/var/tmp/syncstorm/pouch-XXXXXX";
  fs::create_directories("/var/tmp/syncstorm");
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  const fs::path dir = tmpl;
  struct cleanup {
    fs::path d;
    ~cleanup() {
      std::error_code ec;
      fs::remove_all(d, ec);
    }
  } remove_dir{dir};
  const int port = t::free_port();
  supervised_pouchdb server(dir, port, in_memory);
  if (!server.wait_ready(std::chrono::seconds(30))) {
    ADD_FAILURE() << "pouchdb-server did not come up on port " << port << ":\n" << server.log_tail();
    return o;
  }
  const pid_t first_pid = server.server_pid();
  const fs::path file = tmp.path() / "pouchdb.json";
  t::write_file(file, scenario(port, server.pidfile()).dump(2));
  // The server is the test's own, not the lab's: the operator allows its pid file (issue #24).
  auto r = t::run(t::bin() + " run " + file.string() + " --allow-pidfile " + server.pidfile().string() + " --out " +
                  (tmp.path() / "runs").string() + " 2>&1");
  o.exit_code = r.exit_code;
  o.out = r.out;
  try {
    o.report = json::parse(t::read_file(t::only_run_dir(tmp.path() / "runs") / "report.json"));
  } catch (const std::exception& e) {
    ADD_FAILURE() << "no report.json: " << e.what() << "\n" << r.out;
  }
  // The kill took and the supervisor restarted the server (a new pid).
  EXPECT_TRUE(server.wait_ready(std::chrono::seconds(10))) << server.log_tail();
  EXPECT_NE(server.server_pid(), first_pid) << "the server was not restarted";
  return o;
}

std::uint64_t error_count(const json& report, const std::string& name) {
  if (!report.contains("errors") || !report["errors"].contains(name)) return 0;
  return report["errors"][name].get<std::uint64_t>();
}

}  // namespace

TEST(pouchdb, durable_storage_survives_sigkill) {
  if (auto why = unavailable_reason(); !why.empty()) {
    if (t::in_ci()) FAIL() << "required integration test cannot run: " << why;
    GTEST_SKIP() << why;
  }
  auto o = run_against_pouchdb(false);
  ASSERT_TRUE(o.report.is_object()) << o.out;
  const json& a = o.report["audit"];
  ASSERT_TRUE(a.is_object()) << o.out;
  EXPECT_GT(a["acked"].get<std::uint64_t>(), 100u) << a.dump();
  EXPECT_EQ(a["lost"], 0) << a.dump();
  EXPECT_EQ(a["duplicates"], 0) << a.dump();
  // Through the couchdb profile too, each acked document holds what was sent (stream, seq, kind,
  // value read from /doc/…) and nothing else is in the database.
  EXPECT_EQ(a["mismatched"], 0) << a.dump();
  EXPECT_EQ(a["phantoms"], 0) << a.dump();
  // Not asserted: order_violations. After a SIGKILL pouchdb-server 4.2.0 may have stored part
  // of a `_bulk_docs` batch (a later doc of the batch but not an earlier one); the retry then
  // stores the earlier doc after it, which the audit reports as an order violation (seen: 2 in
  // 240 ops; 0 in the same run without the kill). That is the server's behaviour, not a loss.
  EXPECT_EQ(a.value("rejected", 0), 0) << a.dump();
  EXPECT_NE(a.value("convergence", std::string()).find("not judged"), std::string::npos) << a.dump();
  EXPECT_EQ(error_count(o.report, "push.errors.protocol"), 0u) << o.report["errors"].dump();
  // The kill really happened: the fault was applied and the pushes around it failed.
  ASSERT_EQ(o.report["faults"].size(), 1u);
  EXPECT_FALSE(o.report["faults"][0]["applied_at"].is_null()) << o.report["faults"].dump();
  std::uint64_t failed = 0;
  for (const auto& [k, v] : o.report["errors"].items())
    if (k.rfind("push.errors.", 0) == 0) failed += v.get<std::uint64_t>();
  EXPECT_GT(failed, 0u) << "no push failed around the kill: " << o.report["errors"].dump();
  EXPECT_EQ(o.exit_code, 0) << o.out;
  std::cout << "durable: acked " << a["acked"] << ", lost " << a["lost"] << ", duplicates " << a["duplicates"]
            << ", in doubt " << a["in_doubt"] << ", order violations " << a["order_violations"] << ", protocol errors "
            << error_count(o.report, "push.errors.protocol") << ", exit " << o.exit_code << "\n";
}

TEST(pouchdb, in_memory_restart_loss_is_found) {
  if (auto why = unavailable_reason(); !why.empty()) {
    if (t::in_ci()) FAIL() << "required integration test cannot run: " << why;
    GTEST_SKIP() << why;
  }
  auto o = run_against_pouchdb(true);
  ASSERT_TRUE(o.report.is_object()) << o.out;
  const json& a = o.report["audit"];
  ASSERT_TRUE(a.is_object()) << o.out;
  EXPECT_GT(a["lost"].get<std::uint64_t>(), 0u) << a.dump();
  EXPECT_EQ(error_count(o.report, "push.errors.protocol"), 0u) << o.report["errors"].dump();
  EXPECT_EQ(o.exit_code, 1) << o.out;
  bool failed_rule = false;
  for (const auto& v : o.report["verdicts"])
    if (v["name"] == "nothing-lost") failed_rule = !v["pass"].get<bool>();
  EXPECT_TRUE(failed_rule) << o.report["verdicts"].dump();
  std::cout << "in-memory: acked " << a["acked"] << ", lost " << a["lost"] << ", exit " << o.exit_code << "\n";
}
