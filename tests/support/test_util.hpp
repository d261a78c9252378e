// Helpers shared by the tests: temporary directories that remove themselves, running a command
// and capturing its output and exit code, free loopback ports, and a small HTTP server (Python's
// standard library) that records what it received. Test-only; single-threaded use.
#pragma once

#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace syncstorm::test {

// CI runs with CI=true: there a required integration test that cannot run must fail, not skip,
// since a skip would hide a missing install step or privilege.
inline bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci && std::string(ci) != "" && std::string(ci) != "false" && std::string(ci) != "0";
}

inline std::string env_or(const char* name, const std::string& def) {
  const char* v = std::getenv(name);
  return v ? v : def;
}

inline std::string bin() { return env_or("SYNCSTORM_BIN", "syncstorm"); }
inline std::string source_dir() { return env_or("SYNCSTORM_SOURCE_DIR", "."); }

// A new directory (under the temp directory unless a base is given) removed, recursively, when
// this goes out of scope.
class temp_dir {
 public:
  temp_dir() : temp_dir(std::filesystem::temp_directory_path()) {}
  // Under `base`, e.g. /dev/shm for a directory on tmpfs.
  explicit temp_dir(const std::filesystem::path& base) {
    std::string tmpl = (base / "syncstorm-test-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string str() const { return path_.string(); }

 private:
  std::filesystem::path path_;
};

struct command_result {
  int exit_code = -1;
  std::string out;  // stdout and stderr when merged
};

// Runs `cmd` with /bin/sh; stdout captured (append "2>&1" to merge stderr).
inline command_result run(const std::string& cmd) {
  command_result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  std::size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

// Why the real lab parts cannot run here (root, PostgreSQL 15, HAProxy, the built syncd), or
// empty when they can.
inline std::string lab_unavailable_reason() {
  if (::geteuid() != 0) return "needs root (PostgreSQL runs as the postgres user; namespaces; tmpfs mounts)";
  for (auto p : {"/usr/lib/postgresql/15/bin/postgres", "/usr/sbin/haproxy"})
    if (::access(p, X_OK) != 0) return std::string("missing ") + p + " (run scripts/setup.sh)";
  const char* b = std::getenv("SYNCSTORM_BUILD_DIR");
  if (!b || ::access((std::string(b) + "/labstack/syncd").c_str(), X_OK) != 0)
    return "missing $SYNCSTORM_BUILD_DIR/labstack/syncd (build the syncd target)";
  return {};
}

// A loopback TCP port that was free a moment ago.
inline int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

// A child process killed (SIGKILL to its process group) and reaped on destruction.
class child {
 public:
  explicit child(const std::string& shell_cmd) {
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      execl("/bin/sh", "sh", "-c", shell_cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~child() { stop(); }
  void stop() {
    if (pid_ > 0) {
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// Waits until something accepts on 127.0.0.1:port (bounded).
// The one run directory `syncstorm run --out OUT` made; throws when OUT holds none or several.
inline std::filesystem::path only_run_dir(const std::filesystem::path& out) {
  std::vector<std::filesystem::path> dirs;
  if (std::filesystem::exists(out))
    for (auto& e : std::filesystem::directory_iterator(out)) dirs.push_back(e.path());
  if (dirs.size() != 1)
    throw std::runtime_error("expected one run directory in " + out.string() + ", found " +
                             std::to_string(dirs.size()));
  return dirs[0];
}

inline bool wait_port(int port, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    int rc = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    close(fd);
    if (rc == 0) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return false;
}

// A threaded HTTP/1.1 keep-alive server on 127.0.0.1:port (Python's standard library) for GET and
// POST. `prelude` runs once (module level; sys.argv[2] is `arg`); `handle` is the body of
// `handle_one(self)`, indented by 8 spaces. Stopped (its process group killed) with this object.
class python_http_server {
 public:
  python_http_server(int port, const std::filesystem::path& dir, const std::string& prelude, const std::string& handle,
                     const std::string& arg = "-") {
    auto script = dir / ("server-" + std::to_string(port) + ".py");
    write_file(script, "import sys, http.server, socketserver\n" + prelude + R"PY(
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall
    def handle_one(self):
)PY" + handle + R"PY(
    do_GET = do_POST = handle_one
    def log_message(self, *a): pass
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
S(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
)PY");
    proc_ = std::make_unique<child>("exec python3 " + script.string() + " " + std::to_string(port) + " " + arg);
    if (!wait_port(port)) throw std::runtime_error("test HTTP server did not start");
  }

 private:
  std::unique_ptr<child> proc_;
};

// An HTTP/1.1 keep-alive server on 127.0.0.1:port answering 200 "ok" to everything, appending
// each request's path, Authorization header and body to `log` (one line per request).
class recording_http_server {
 public:
  recording_http_server(int port, const std::filesystem::path& dir)
      : log_(dir / "requests.log"),
        server_(port, dir, "log = open(sys.argv[2], \"a\", buffering=1)\n",
                R"PY(        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode() if n else ""
        log.write("path=%s auth=%s body=%s\n" % (self.path, self.headers.get("Authorization"), body))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok"))PY",
                log_.string()) {}
  std::string log() const { return read_file(log_); }

 private:
  std::filesystem::path log_;
  python_http_server server_;
};

}  // namespace syncstorm::test

// A skip with the reason on a developer's machine; a failure with the reason in CI.
#define SYNCSTORM_SKIP_OR_FAIL(why)                                            \
  do {                                                                         \
    if (::syncstorm::test::in_ci()) {                                          \
      GTEST_FAIL() << "required integration test cannot run in CI: " << (why); \
    } else {                                                                   \
      GTEST_SKIP() << (why);                                                   \
    }                                                                          \
  } while (0)
