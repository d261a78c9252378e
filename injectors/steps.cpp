// See steps.hpp.
#include "injectors/steps.hpp"

#include "injectors/command.hpp"
#include "injectors/net_faults.hpp"
#include "injectors/run_proxy.hpp"
#include "injectors/targets.hpp"
#include "labstack/lab.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <thread>

namespace syncstorm::injectors {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

std::string sig_name(const json& s) {
  if (s.contains("signal_name")) return s["signal_name"];
  return "signal " + std::to_string(s.value("signal", 0));
}

// A unit's live view through the supervisor: pid, status, lb status, role.
json unit_status(const lab::lab& l, const std::string& unit) {
  json st = l.status();
  return st["units"].value(unit, json::object());
}

// Attaches to the lab a step names; nullopt when the lab no longer exists (an undo then has
// nothing to do: `lab down` removed every process and file).
std::optional<lab::lab> attach(const json& s, std::string& error) {
  try {
    return lab::lab::attach(s.at("lab").get<std::string>());
  } catch (const std::exception& e) {
    error = e.what();
    return std::nullopt;
  }
}

step_result start_unit(const json& s, bool undoing) {
  std::string err;
  auto l = attach(s, err);
  std::string unit = s.at("unit");
  if (!l)
    return undoing ? step_done("lab " + s.value("lab", "") + " is gone: nothing to bring back") : step_failed(err);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(s.value("wait_ms", 60000));
  try {
    long after = s.value("after_pid", 0L);
    // First let the supervisor see the death we caused (the pid changes or drops to 0). An undo
    // waits only when that process is really dead: a crash between the intent and the kill
    // leaves it alive, and then there is nothing to wait for.
    auto dead = [&] {
      auto p = read_proc(static_cast<pid_t>(after));
      return !p || p->state == 'Z' || p->state == 'X';
    };
    while (after > 0 && std::chrono::steady_clock::now() < deadline) {
      json u = unit_status(*l, unit);
      if (u.value("pid", 0L) != after) break;
      if (undoing && !dead()) break;
      std::this_thread::sleep_for(20ms);
    }
    json u = unit_status(*l, unit);
    if (u.value("role", "") == "db-fenced") return step_done(unit + " is a fenced old primary: left down");
    std::string status = u.value("status", "");
    bool started = false;
    if (u.value("pid", 0L) == 0 && status != "restarting") {
      l->start_unit(unit);
      started = true;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (!l->wait_ready(unit, std::max(left, 1ms))) {
      json now = unit_status(*l, unit);
      return step_failed(unit + ": not ready within " + std::to_string(s.value("wait_ms", 60000)) + " ms (status " +
                         now.value("status", "?") + ")");
    }
    return step_done(unit + (started ? " started and ready" : " ready"));
  } catch (const std::exception& e) {
    return step_failed(unit + ": " + e.what());
  }
}

step_result wait_lb_up(const json& s) {
  std::string err;
  auto l = attach(s, err);
  if (!l) return step_failed(err);
  std::string unit = s.at("unit");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(s.value("wait_ms", 60000));
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      last = unit_status(*l, unit).value("lb", "");
      if (last == "UP" || last == "no check") return step_done(unit + " UP in HAProxy");
    } catch (const std::exception& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(50ms);
  }
  return step_failed(unit + ": HAProxy did not mark it UP within " + std::to_string(s.value("wait_ms", 60000)) +
                     " ms (last: " + last + ")");
}

step_result fill(const json& s) {
  std::string path = s.at("path");
  auto bytes = s.at("bytes").get<std::int64_t>();
  // Created here and never adopted or followed (a link or a file planted at the name is refused),
  // so the revert's unlink removes only what this step made.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST)
    return step_failed("fill " + path + ": found something already there; expected to create the file");
  if (fd < 0) return step_failed("fill " + path + ": " + std::strerror(errno));
  int rc = bytes > 0 ? ::posix_fallocate(fd, 0, bytes) : 0;
  ::fsync(fd);
  ::close(fd);
  if (rc != 0) return step_failed("fill " + path + " with " + std::to_string(bytes) + " bytes: " + std::strerror(rc));
  return step_done("filled " + path + " with " + std::to_string(bytes) + " bytes");
}

step_result command(const json& s, bool undoing) {
  std::vector<std::string> argv = s.at("argv");
  auto r = run_command(argv, std::chrono::milliseconds(s.value("timeout_ms", 60000)));
  if (r.ok()) return step_done(command_line(argv));
  for (const auto& ok : s.value("ok_if", json::array()))
    if (r.output.find(ok.get<std::string>()) != std::string::npos)
      return step_done(command_line(argv) + " (already so: " + ok.get<std::string>() + ")");
  (void)undoing;
  return step_failed(r.error);
}

}  // namespace

step_result run_step(const json& s, bool undoing, client_control* clients) {
  try {
    std::string op = s.at("op");
    if (auto r = run_net_step(s, undoing)) return *r;
    if (auto r = run_proxy_step(s)) return *r;
    if (op == "signal") {
      pid_t pid = s.at("pid").get<pid_t>();
      auto start = s.value("start_time", 0ULL);
      if (!same_process(pid, start)) {
        if (undoing)
          return step_done("pid " + std::to_string(pid) + " (" + s.value("what", "") + ") is gone: nothing to " +
                           sig_name(s));
        return step_failed("pid " + std::to_string(pid) + " (" + s.value("what", "") +
                           "): the process is gone (or its pid was reused)");
      }
      int sig = s.at("signal").get<int>();
      bool group = s.value("group", false);
      int rc = group ? ::kill(-pid, sig) : ::kill(pid, sig);
      if (rc != 0 && group) rc = ::kill(pid, sig);
      if (rc != 0) return step_failed(sig_name(s) + " pid " + std::to_string(pid) + ": " + std::strerror(errno));
      return step_done(sig_name(s) + (group ? " process group " : " pid ") + std::to_string(pid) + " (" +
                       s.value("what", "") + ")");
    }
    if (op == "lab_kill") {
      std::string err;
      auto l = attach(s, err);
      if (!l) return step_failed(err);
      pid_t pid = l->kill_unit(s.at("unit"), s.at("signal").get<int>(), s.value("restart", true));
      step_result r = step_done(sig_name(s) + " " + s.at("unit").get<std::string>() + " (pid " + std::to_string(pid) +
                                ")" + (s.value("restart", true) ? "" : ", no restart"));
      r.pid = pid;
      return r;
    }
    if (op == "lab_start_unit") return start_unit(s, undoing);
    if (op == "lab_wait_lb_up") return wait_lb_up(s);
    if (op == "lab_promote") {
      std::string err;
      auto l = attach(s, err);
      if (!l) return step_failed(err);
      std::string was = l->primary_unit();
      l->promote_replica();
      return step_done("promoted the replica; " + was + " fenced, primary now " + l->primary_unit());
    }
    if (op == "marker") {
      std::string path = s.at("path");
      int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
      if (fd < 0 && errno == EEXIST) {
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode)) return step_done(path + " was already there");
        return step_failed("marker " + path + ": found something other than a file there");
      }
      if (fd < 0) return step_failed("marker " + path + ": " + std::strerror(errno));
      ::close(fd);
      return step_done("created " + path);
    }
    if (op == "fill") return fill(s);
    if (op == "remove_file") {
      std::string path = s.at("path");
      if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return step_failed("remove " + path + ": " + std::strerror(errno));
      return step_done("removed " + path);
    }
    if (op == "command") return command(s, undoing);
    if (op == "client_crash" || op == "journal_corrupt") {
      if (!clients)
        return undoing ? step_done("the run's clients are gone with it")
                       : step_failed(op + ": no client model in this run");
      if (op == "client_crash")
        clients->crash(s.at("client"));
      else
        clients->corrupt_journal(s.at("client"), s.value("bytes", 16), s.value("seed", 1ULL));
      return step_done(op + " " + s.at("client").get<std::string>());
    }
    return step_failed("unknown step op \"" + op + "\"");
  } catch (const std::exception& e) {
    return step_failed(std::string("step ") + s.dump() + ": " + e.what());
  }
}

step_result check_undone(const json& s) {
  try {
    std::string op = s.at("op");
    if (auto r = check_net_undone(s)) return *r;
    if (auto r = check_proxy_step_undone(s)) return *r;
    if (op == "signal") {
      pid_t pid = s.at("pid").get<pid_t>();
      auto p = read_proc(pid);
      if (!p || p->start_time != s.value("start_time", 0ULL)) return step_done("pid " + std::to_string(pid) + " gone");
      if (s.value("signal", 0) == SIGCONT && (p->state == 'T' || p->state == 't'))
        return step_failed("pid " + std::to_string(pid) + " (" + s.value("what", "") + ") is still stopped");
      return step_done("pid " + std::to_string(pid) + " running (state " + std::string(1, p->state) + ")");
    }
    if (op == "lab_start_unit") {
      std::string err;
      auto l = attach(s, err);
      if (!l) return step_done("lab gone");
      json u = unit_status(*l, s.at("unit"));
      if (u.value("role", "") == "db-fenced") return step_done("fenced");
      if (u.value("pid", 0L) > 0 && u.value("status", "") == "ready")
        return step_done(s.at("unit").get<std::string>() + " ready");
      return step_failed(s.at("unit").get<std::string>() + " is " + u.value("status", "?") + ", not ready");
    }
    if (op == "remove_file") {
      std::error_code ec;
      if (fs::exists(s.at("path").get<std::string>(), ec))
        return step_failed(s.at("path").get<std::string>() + " still exists");
      return step_done("gone");
    }
    if (op == "command" && s.contains("verify")) {
      const json& v = s["verify"];
      auto r = run_command(v.at("argv").get<std::vector<std::string>>(), std::chrono::milliseconds(30000));
      std::string out = r.output;
      while (!out.empty() && (out.back() == '\n' || out.back() == ' ' || out.back() == '\r')) out.pop_back();
      if (!r.ok() && !v.value("gone_ok", std::string()).empty() &&
          r.output.find(v["gone_ok"].get<std::string>()) != std::string::npos)
        return step_done("target gone");
      if (!r.ok()) return step_failed(r.error);
      if (out.find(v.at("expect").get<std::string>()) == std::string::npos)
        return step_failed(command_line(v.at("argv")) + ": found \"" + out + "\"; expected \"" +
                           v.at("expect").get<std::string>() + "\"");
      return step_done("verified");
    }
    return step_done("nothing to check");
  } catch (const std::exception& e) {
    return step_failed(std::string("verify ") + s.dump() + ": " + e.what());
  }
}

std::string describe_step(const json& s) {
  std::string op = s.value("op", "");
  if (auto d = describe_net_step(s)) return *d;
  auto pid_text = [&] {
    long pid = s.value("pid", 0L);
    return pid > 0 ? std::to_string(pid) : std::string("<pid at fire time>");
  };
  if (op == "signal")
    return "kill(" + std::string(s.value("group", false) ? "-" : "") + pid_text() + ", " + sig_name(s) + ")  # " +
           s.value("what", "");
  if (op == "lab_kill")
    return "lab " + s.value("lab", "<lab>") + ": supervisor kill " + s.value("unit", "") + " with " + sig_name(s) +
           (s.value("restart", true) ? " (restarted by the supervisor)" : " (no restart)");
  if (op == "lab_start_unit")
    return "lab " + s.value("lab", "<lab>") + ": ensure " + s.value("unit", "") + " is running and ready";
  if (op == "lab_wait_lb_up")
    return "lab " + s.value("lab", "<lab>") + ": wait until HAProxy marks " + s.value("unit", "") + " UP";
  if (op == "lab_promote")
    return "lab " + s.value("lab", "<lab>") + ": fence the primary, pg_ctl promote the replica, repoint the db path";
  if (op == "proxy_stop")
    return "stop the run's proxy (SIGTERM the pid in " + s.value("pidfile", "") + " if it is still that relay)";
  if (op == "marker") return "touch " + s.value("path", "");
  if (op == "fill") {
    auto b = s.value("bytes", std::int64_t{-1});
    return "fallocate -l " + (b >= 0 ? std::to_string(b) : std::string("<computed from statvfs at fire time>")) + " " +
           s.value("path", "");
  }
  if (op == "remove_file") return "rm -f " + s.value("path", "");
  if (op == "command") return command_line(s.value("argv", std::vector<std::string>{}));
  if (op == "client_crash") return "crash terminal " + s.value("client", "") + " (restart from its journal)";
  if (op == "journal_corrupt")
    return "flip " + std::to_string(s.value("bytes", 16)) + " bytes in the journal of " + s.value("client", "");
  return s.dump();
}

}  // namespace syncstorm::injectors
