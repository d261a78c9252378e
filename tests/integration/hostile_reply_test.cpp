// A server that answers every push and every read with JSON nested 200,000 deep (issue #23: this
// once killed `syncstorm run` with SIGSEGV, leaving no report). The run must count each reply as a
// `protocol` error, end on its own with a verdict, and write a complete report.
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace t = syncstorm::test;
using json = nlohmann::json;

namespace {

// Answers 200 with `{"acked": [[[…]]], "changes": [[[…]]], "records": [[[…]]]}` to everything.
std::unique_ptr<t::python_http_server> hostile_server(int port, const std::filesystem::path& dir) {
  return std::make_unique<t::python_http_server>(port, dir, R"PY(
deep = "[" * 200000 + "]" * 200000
body = ('{"acked": %s, "changes": %s, "next": 1, "records": %s}' % (deep, deep, deep)).encode()
)PY",
                                                 R"PY(        n = int(self.headers.get("Content-Length") or 0)
        if n: self.rfile.read(n)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body))PY");
}

}  // namespace

TEST(hostile_reply, deeply_nested_replies_are_counted_errors_and_the_run_reports) {
  t::temp_dir d;
  const int port = t::free_port();
  auto server = hostile_server(port, d.path());
  json sc = {
      {"name", "hostile"},
      {"duration", "3s"},
      {"target", {{"endpoints", {{"http", "http://127.0.0.1:" + std::to_string(port)}}}}},
      {"load", json::array({{{"name", "lanes"},
                             {"model", "terminal"},
                             {"stores", 2},
                             {"terminals_per_store", 1},
                             {"rate", 5},
                             {"timeout", "2s"},
                             {"drain", "2s"},
                             {"retry", {{"base", "50ms"}, {"max", "200ms"}}},
                             {"phases", json::array({{{"name", "steady"}, {"for", "3s"}}})}}})},
      {"slas",
       json::array({{{"name", "all-synced"}, {"metric", "availability.ops"}, {"stat", "ratio"}, {"min", "99%"}}})}};
  t::write_file(d.path() / "s.json", sc.dump());
  auto r =
      t::run(t::bin() + " run " + (d.path() / "s.json").string() + " --out " + (d.path() / "runs").string() + " 2>&1");
  // A verdict (fail, error or inconclusive), never a signal.
  EXPECT_TRUE(r.exit_code == 1 || r.exit_code == 3 || r.exit_code == 5) << "exit " << r.exit_code << "\n"
                                                                        << r.out.substr(0, 3000);
  const auto dir = t::only_run_dir(d.path() / "runs");
  const json rep = json::parse(t::read_file(dir / "report.json"));
  EXPECT_EQ(rep["exit_code"], r.exit_code);
  ASSERT_TRUE(rep["metrics"].contains("push.errors.protocol")) << rep["errors"].dump();
  EXPECT_GT(rep["metrics"]["push.errors.protocol"]["count"].get<std::uint64_t>(), 5u);
  EXPECT_TRUE(std::filesystem::exists(dir / "report.html"));
  EXPECT_TRUE(std::filesystem::exists(dir / "junit.xml"));
  // Every event line is JSON (no reason broke the log).
  std::istringstream events(t::read_file(dir / "events.jsonl"));
  for (std::string line; std::getline(events, line);)
    EXPECT_FALSE(json::parse(line, nullptr, false).is_discarded()) << line.substr(0, 200);
}
