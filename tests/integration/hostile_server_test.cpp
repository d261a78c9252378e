// Runs against a hostile server (issue #23): tests/support/hostile_server.py answers every push,
// changes, records and http request, and every WebSocket handshake and frame, at a random moment
// in a random bad way (garbage status lines, header floods, bodies over any cap, broken chunked
// encoding, JSON 200,000 deep, NaN and out-of-range numbers, wrong types, invalid UTF-8, a reply
// drip-fed a byte a second, no reply at all, resets, and mutated replies from the fuzz corpora).
// Every run must end on its own within its duration + drain + 30 s, with exit 1, 3 or 5 (a
// verdict, never a signal) and a complete report, and count the bad replies as errors.
//
// SYNCSTORM_HOSTILE_SECONDS (default 30, the CI run) sets how long in total: runs of 30 s, each
// with its own seed; the `long` label runs 300 (tests/CMakeLists.txt).
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>

namespace t = syncstorm::test;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

int total_seconds() {
  const char* s = std::getenv("SYNCSTORM_HOSTILE_SECONDS");
  return s && std::atoi(s) > 0 ? std::atoi(s) : 30;
}

// Every load model that speaks to the target: terminals and offline clients pushing, fanout
// subscribers (WebSocket) and their pushes, a plain http load; an audit reads the stack back.
json scenario(int port, int seconds, int seed) {
  const std::string d = std::to_string(seconds) + "s";
  const std::string base = "http://127.0.0.1:" + std::to_string(port);
  return {
      {"name", "hostile"},
      {"duration", d},
      {"seed", seed},
      // The audit's own bounds (each request 2 s, one retry), so it ends within the 30 s.
      {"target",
       {{"endpoints", {{"http", base}, {"ws", "ws://127.0.0.1:" + std::to_string(port)}}},
        {"audit", {{"timeout", "2s"}, {"retries", 1}}}}},
      {"load", json::array({{{"name", "lanes"},
                             {"model", "terminal"},
                             {"stores", 2},
                             {"terminals_per_store", 2},
                             {"rate", 10},
                             {"timeout", "3s"},
                             {"drain", "2s"},
                             {"retry", {{"base", "50ms"}, {"max", "500ms"}}},
                             {"phases", json::array({{{"name", "steady"}, {"for", d}}})}},
                            {{"name", "field"},
                             {"model", "offline"},
                             {"clients", 3},
                             {"rate", 5},
                             {"timeout", "3s"},
                             {"offline", json::array({{{"at", "3s"}, {"for", "5s"}}})},
                             {"drain", "2s"},
                             {"retry", {{"base", "100ms"}, {"max", "1s"}}},
                             {"phases", json::array({{{"name", "steady"}, {"for", d}}})}},
                            {{"name", "subs"},
                             {"model", "fanout"},
                             {"subscribers", 8},
                             {"streams", 2},
                             {"rate", 2},
                             {"connect_rate", 50},
                             {"timeout", "3s"},
                             {"drain", "2s"},
                             {"reconnect", {{"base", "100ms"}, {"max", "1s"}}},
                             {"phases", json::array({{{"name", "steady"}, {"for", d}}})}},
                            {{"name", "get"},
                             {"model", "http"},
                             {"connections", 4},
                             {"timeout", "2s"},
                             {"request", {{"method", "GET"}, {"path", "/v1/changes?after=0"}}},
                             {"phases", json::array({{{"name", "steady"}, {"for", d}, {"rate", 20}}})}}})},
      {"slas", json::array({{{"name", "all-synced"}, {"metric", "availability.ops"}, {"stat", "ratio"}, {"min", "99%"}},
                            {{"name", "nothing-lost"}, {"metric", "audit.lost"}, {"stat", "max"}, {"max", 0}}})}};
}

}  // namespace

TEST(hostile_server, every_model_outlives_a_hostile_server_and_reports) {
  if (std::system("command -v python3 >/dev/null 2>&1") != 0)
    SYNCSTORM_SKIP_OR_FAIL("python3 is missing (the hostile server)");
  const int total = total_seconds();
  const int per_run = std::min(total, 30);
  const int runs = std::max(1, total / per_run);
  // The fuzz corpora (fuzz/corpus/*) are what gets mutated: replies, HTTP responses, frames.
  std::string corpora;
  const fs::path corpus_root = fs::path(t::source_dir()) / "fuzz" / "corpus";
  for (const char* c : {"fuzz_sync_reply", "fuzz_http_response", "fuzz_fanout_message"})
    if (fs::is_directory(corpus_root / c)) corpora += " " + (corpus_root / c).string();
  std::map<std::string, int> modes_seen;
  for (int i = 0; i < runs; ++i) {
    const int seed = 20261206 + i;
    SCOPED_TRACE("run " + std::to_string(i) + ", seed " + std::to_string(seed));
    t::temp_dir d;
    const int port = t::free_port();
    const fs::path server_log = d.path() / "server.log";
    t::child server("exec python3 " + (fs::path(t::source_dir()) / "tests" / "support" / "hostile_server.py").string() +
                    " " + std::to_string(port) + " " + std::to_string(seed) + corpora + " 2> " + server_log.string());
    ASSERT_TRUE(t::wait_port(port)) << t::read_file(server_log);
    t::write_file(d.path() / "s.json", scenario(port, per_run, seed).dump());
    // duration + the longest drain (2 s) + 30 s; `timeout -s KILL` only so that a hang fails
    // this test instead of CTest's timeout.
    const int limit = per_run + 2 + 30;
    const auto began = std::chrono::steady_clock::now();
    auto r = t::run("timeout -s KILL " + std::to_string(limit + 30) + " " + t::bin() + " run " +
                    (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " > " +
                    (d.path() / "run.log").string() + " 2>&1");
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
    const std::string log = t::read_file(d.path() / "run.log");
    EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 3 || r.exit_code == 5) << "exit " << r.exit_code << "\n"
                                                                          << log.substr(0, 4000);
    EXPECT_LE(took, limit) << "the run took " << took << " s; at most " << limit << " s";
    fs::path dir;
    try {
      dir = t::only_run_dir(d.path() / "runs");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "no run directory: " << e.what() << "\n" << log.substr(0, 4000);
      continue;
    }
    // A complete report: every file, report.json parses and says the exit code, every event line
    // is JSON.
    for (const char* f : {"report.json", "report.html", "junit.xml", "summary.md", "events.jsonl"})
      EXPECT_TRUE(fs::exists(dir / f)) << f;
    const json rep = json::parse(t::read_file(dir / "report.json"), nullptr, false);
    ASSERT_FALSE(rep.is_discarded()) << "report.json does not parse";
    EXPECT_EQ(rep.value("exit_code", -1), r.exit_code);
    EXPECT_TRUE(rep.contains("outcome")) << rep.dump().substr(0, 2000);
    EXPECT_TRUE(rep.contains("verdicts") && rep["verdicts"].is_array() && rep["verdicts"].size() == 2)
        << rep.dump().substr(0, 2000);
    // Every event line is JSON and short: error texts carry excerpts, never a whole reply. The
    // first failures of each bucket come with a truncated sample (push_error, ws_error).
    std::istringstream events(t::read_file(dir / "events.jsonl"));
    int bad_lines = 0, push_samples = 0, ws_samples = 0;
    std::size_t longest = 0;
    for (std::string line; std::getline(events, line);) {
      const json e = json::parse(line, nullptr, false);
      bad_lines += e.is_discarded();
      longest = std::max(longest, line.size());
      if (e.is_discarded()) continue;
      if (e.value("event", "") == "push_error") {
        ++push_samples;
        EXPECT_TRUE(e.contains("bucket") && e.contains("reason") && e.contains("load")) << line;
        if (e.contains("sample")) {
          EXPECT_LE(e["sample"].get<std::string>().size(), 203u) << line.substr(0, 500);
        }
      }
      ws_samples += e.value("event", "") == "ws_error";
    }
    EXPECT_EQ(bad_lines, 0);
    EXPECT_LE(longest, 4096u) << "an event line of " << longest << " bytes";
    EXPECT_GT(push_samples, 0);
    EXPECT_GT(ws_samples, 0);
    // The bad replies were counted as errors, in their buckets.
    std::uint64_t errors = 0;
    for (auto& [name, m] : rep["metrics"].items())
      if (name.find(".errors.") != std::string::npos && name.find('@') == std::string::npos && m.contains("count"))
        errors += m["count"].get<std::uint64_t>();
    EXPECT_GT(errors, 10u) << rep["metrics"].dump().substr(0, 3000);
    server.stop();
    std::istringstream used(t::read_file(server_log));
    for (std::string line; std::getline(used, line);)
      if (auto sp = line.find(' '); sp != std::string::npos && line.rfind("/", 0) == 0)
        ++modes_seen[line.substr(sp + 1)];
    std::cerr << "run " << i << " (seed " << seed << "): exit " << r.exit_code << " in " << took << " s, " << errors
              << " errors counted\n";
  }
  // The server really was hostile in many ways (it chose them at random).
  std::string seen;
  for (auto& [m, n] : modes_seen) seen += m + "=" + std::to_string(n) + " ";
  std::cerr << "server modes: " << seen << "\n";
  EXPECT_GE(modes_seen.size(), 15u) << seen;
}
