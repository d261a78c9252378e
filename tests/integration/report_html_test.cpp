// Reports end to end. report.html opened in headless Chromium (Debian's `chromium`): the charts
// are in the rendered DOM, the console stays clean and the screenshot is a real picture. Real
// runs through the CLI against a local HTTP server whose reply delay the test sets: every
// output file is written, junit.xml passes the JUnit XSD, a secret from the environment is in
// no file and not on stdout/stderr, `syncstorm report` regenerates the outputs, `compare`
// passes a run against itself and fails one whose p99 doubled, and `run --baseline` does the
// same against the stored passing run.
#include "tests/support/report_fixture.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>

using json = nlohmann::json;
namespace t = syncstorm::test;
namespace fs = std::filesystem;

namespace {

std::string chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

std::size_t count_of(const std::string& hay, const std::string& needle) {
  std::size_t n = 0;
  for (auto p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + needle.size())) ++n;
  return n;
}

struct page_load {
  int exit_code = -1;
  std::string dom;      // --dump-dom output
  std::string console;  // console lines Chromium logged
};

// Loads `html` in headless Chromium (the flags of the issue, a throwaway profile); with
// `screenshot` also writes a 1280×2000 PNG there. Bounded by `timeout`.
page_load open_page(const fs::path& html, const fs::path& profile, const fs::path& screenshot = {}) {
  std::string flags =
      " --headless --no-sandbox --disable-gpu --disable-background-networking --disable-component-update"
      " --disable-sync --no-first-run --user-data-dir=" +
      profile.string() + " --window-size=1280,2000 --enable-logging=stderr --v=0";
  page_load p;
  auto err = profile.parent_path() / "chromium.err";
  if (!screenshot.empty()) {
    auto r = t::run("timeout 60 " + chromium() + flags + " --screenshot=" + screenshot.string() + " file://" +
                    html.string() + " >/dev/null 2>" + err.string());
    p.exit_code = r.exit_code;
  } else {
    auto r = t::run("timeout 60 " + chromium() + flags + " --dump-dom file://" + html.string() + " 2>" + err.string());
    p.exit_code = r.exit_code;
    p.dom = r.out;
  }
  std::istringstream lines(t::read_file(err));
  for (std::string l; std::getline(lines, l);)
    // Chromium 1xx logs `[pid:tid:time:INFO:CONSOLE:line] "message", source: url (line)`.
    if (l.find(":CONSOLE") != std::string::npos || l.find("Uncaught") != std::string::npos) p.console += l + "\n";
  return p;
}

// A server on 127.0.0.1:port answering 200 after `delay_ms`, logging each Authorization header.
class delayed_server {
 public:
  delayed_server(int port, int delay_ms, const fs::path& dir) {
    auto script = dir / ("server-" + std::to_string(port) + ".py");
    t::write_file(script, R"PY(
import sys, time, http.server, socketserver
delay = int(sys.argv[2]) / 1000.0
log = open(sys.argv[3], "a", buffering=1)
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        log.write("auth=%s\n" % self.headers.get("Authorization"))
        time.sleep(delay)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
)PY");
    log_ = dir / ("requests-" + std::to_string(port) + ".log");
    proc_ = std::make_unique<t::child>("exec python3 " + script.string() + " " + std::to_string(port) + " " +
                                       std::to_string(delay_ms) + " " + log_.string());
    if (!t::wait_port(port)) throw std::runtime_error("test HTTP server did not start");
  }
  std::string log() const { return t::read_file(log_); }

 private:
  fs::path log_;
  std::unique_ptr<t::child> proc_;
};

json scenario(int port) {
  return json::parse(R"({"name": "reports-e2e", "duration": "3s", "seed": 5,
    "target": {"endpoints": {"http": "http://127.0.0.1:)" +
                     std::to_string(port) + R"("},
               "headers": {"Authorization": "Bearer ${env:SYNCSTORM_TEST_SECRET}"}},
    "load": [{"name": "api", "model": "http", "connections": 16, "timeout": "2s",
              "request": {"method": "GET", "path": "/v1/x"},
              "phases": [{"name": "steady", "for": "3s", "rate": 50}]}],
    "slas": [{"name": "p90", "metric": "http.latency", "stat": "p90", "max": "1s"},
             {"name": "ok", "metric": "http.requests", "stat": "ratio", "min": "95%"}]})");
}

fs::path newest_run_dir(const fs::path& out) {
  fs::path best;
  for (auto& e : fs::directory_iterator(out))
    if (e.is_directory() && (best.empty() || e.path().filename() > best.filename())) best = e.path();
  if (best.empty()) throw std::runtime_error("no run directory in " + out.string());
  return best;
}

}  // namespace

TEST(report_html, opens_in_headless_chromium_with_charts_and_a_clean_console) {
  if (chromium().empty()) SYNCSTORM_SKIP_OR_FAIL("chromium missing (scripts/setup.sh installs it)");
  t::temp_dir d;
  auto run = d.path() / "run";
  fs::create_directories(run);
  t::write_file(run / "report.json", t::sample_report().dump(2));
  auto r = t::run(t::bin() + " report " + run.string() + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.out;
  for (const char* f : {"junit.xml", "summary.md", "report.html"}) EXPECT_TRUE(fs::exists(run / f)) << f;

  // The console detector can fail: a page that logs an error is caught.
  auto bad = d.path() / "bad.html";
  t::write_file(bad, "<!DOCTYPE html><html><body><script>console.error('broken-on-purpose')</script></body></html>");
  auto probe = open_page(bad, d.path() / "profile-probe");
  ASSERT_EQ(probe.exit_code, 0);
  ASSERT_NE(probe.console.find("broken-on-purpose"), std::string::npos)
      << "the console check sees nothing; stderr format changed?";

  auto page = open_page(run / "report.html", d.path() / "profile-dom");
  ASSERT_EQ(page.exit_code, 0) << page.console;
  EXPECT_EQ(page.console, "") << "console messages on report.html";
  // The rendered DOM holds the charts: timeline, latency, throughput and levels.
  EXPECT_GE(count_of(page.dom, "class=\"chart\""), 10u);
  for (const char* id : {"timeline-chart", "chart-push-latency-latency", "chart-push-latency-throughput",
                         "chart-fanout-delivery-latency", "chart-queue-depth-level", "chart-ws-connected-level"})
    EXPECT_NE(page.dom.find(std::string("id=\"") + id + "\""), std::string::npos) << id;
  EXPECT_GE(count_of(page.dom, "<polyline"), 15u);
  EXPECT_GE(count_of(page.dom, "class=\"fault\""), 2u);
  EXPECT_NE(page.dom.find("1 of 5 rules failed"), std::string::npos);

  auto png = d.path() / "report.png";
  auto shot = open_page(run / "report.html", d.path() / "profile-shot", png);
  ASSERT_EQ(shot.exit_code, 0) << shot.console;
  EXPECT_EQ(shot.console, "");
  ASSERT_TRUE(fs::exists(png));
  std::string bytes = t::read_file(png);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  // A blank 1280×2000 page compresses to a few KB; text and charts make it far larger.
  EXPECT_GT(bytes.size(), 60'000u);
  if (const char* keep = std::getenv("SYNCSTORM_SCREENSHOT_OUT"))
    fs::copy_file(png, keep, fs::copy_options::overwrite_existing);
}

TEST(report_cli, real_runs_outputs_secret_compare_and_baseline) {
  bool have_xmllint = t::run("command -v xmllint >/dev/null").exit_code == 0;
  if (!have_xmllint) SYNCSTORM_SKIP_OR_FAIL("xmllint missing (scripts/setup.sh installs libxml2-utils)");
  t::temp_dir d;
  const std::string secret = "tok-" + std::to_string(::getpid()) + "-" + std::to_string(std::random_device{}());
  setenv("SYNCSTORM_TEST_SECRET", secret.c_str(), 1);
  int fast_port = t::free_port();
  delayed_server fast(fast_port, 50, d.path());
  int slow_port = t::free_port();
  delayed_server slow(slow_port, 100, d.path());
  auto out = d.path() / "runs";
  auto base_dir = d.path() / "baselines";
  auto run_once = [&](int port, const std::string& tag) {
    auto f = d.path() / ("s-" + tag + ".json");
    t::write_file(f, scenario(port).dump());
    auto log = d.path() / ("out-" + tag + ".txt");
    auto r = t::run(t::bin() + " run " + f.string() + " --out " + out.string() + " --threads 1 --baseline " +
                    base_dir.string() + " --max-regression 10% > " + log.string() + " 2>&1");
    r.out = t::read_file(log);
    return r;
  };

  auto a = run_once(fast_port, "a");
  ASSERT_EQ(a.exit_code, 0) << a.out;
  fs::path run_a = newest_run_dir(out);
  EXPECT_NE(a.out.find("baseline: none yet for reports-e2e"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("baseline: stored "), std::string::npos) << a.out;
  for (const char* f : {"report.json", "junit.xml", "summary.md", "report.html", "scenario.json", "events.jsonl"})
    EXPECT_TRUE(fs::exists(run_a / f)) << f;
  auto x = t::run("xmllint --noout --schema " + t::source_dir() + "/tests/data/junit.xsd " +
                  (run_a / "junit.xml").string() + " 2>&1");
  EXPECT_EQ(x.exit_code, 0) << x.out;
  json rep = json::parse(t::read_file(run_a / "report.json"));
  EXPECT_TRUE(rep.contains("gauges"));
  EXPECT_GE(rep["series"]["http.latency@api"].size(), 2u);

  // The regenerated outputs are the written ones (the renderers are pure functions of report.json).
  std::string html_before = t::read_file(run_a / "report.html");
  fs::remove(run_a / "junit.xml");
  auto regen = t::run(t::bin() + " report " + run_a.string() + " 2>&1");
  EXPECT_EQ(regen.exit_code, 0) << regen.out;
  EXPECT_TRUE(fs::exists(run_a / "junit.xml"));
  EXPECT_EQ(t::read_file(run_a / "report.html"), html_before);

  // Against itself: no regression.
  auto same = t::run(t::bin() + " compare " + run_a.string() + " " + run_a.string() + " --max-regression 10% 2>&1");
  EXPECT_EQ(same.exit_code, 0) << same.out;
  EXPECT_NE(same.out.find("compare: ok"), std::string::npos) << same.out;

  // The server twice as slow: p99 doubles; the baseline run and compare both fail at 10%.
  sleep(1);  // run directories are named by the second
  auto b = run_once(slow_port, "b");
  EXPECT_EQ(b.exit_code, 1) << b.out;
  fs::path run_b = newest_run_dir(out);
  ASSERT_NE(run_b, run_a);
  EXPECT_NE(b.out.find("compare: REGRESSION"), std::string::npos) << b.out;
  EXPECT_EQ(b.out.find("baseline: stored"), std::string::npos) << "a regressed run must not become the baseline\n"
                                                               << b.out;
  EXPECT_TRUE(fs::exists(run_b / "compare.json"));
  auto worse =
      t::run(t::bin() + " compare " + run_a.string() + " " + run_b.string() + " --max-regression 10% --json 2>&1");
  EXPECT_EQ(worse.exit_code, 1) << worse.out;
  json cj = json::parse(worse.out);
  bool p99_regressed = false;
  for (const auto& m : cj["metrics"])
    if (m["subject"] == "http.latency@api" && m["what"] == "p99")
      p99_regressed = m["regression"].get<bool>() && m["change_pct"].get<double>() > 10;
  EXPECT_TRUE(p99_regressed) << worse.out;
  auto bad_flag = t::run(t::bin() + " compare " + run_a.string() + " " + run_b.string() + " --max-regression ten 2>&1");
  EXPECT_EQ(bad_flag.exit_code, 2);
  EXPECT_EQ(bad_flag.out, "--max-regression: found \"ten\"; expected a percentage like 10%\n");

  // The secret went over the wire but is in no file and was never printed.
  EXPECT_NE(fast.log().find("auth=Bearer " + secret), std::string::npos);
  for (const auto& root : {out, base_dir}) {
    for (auto& e : fs::recursive_directory_iterator(root)) {
      if (e.is_regular_file()) {
        EXPECT_EQ(t::read_file(e.path()).find(secret), std::string::npos) << e.path();
      }
    }
  }
  for (const auto* r : {&a, &b, &same, &worse, &regen}) EXPECT_EQ(r->out.find(secret), std::string::npos);
  unsetenv("SYNCSTORM_TEST_SECRET");
}
