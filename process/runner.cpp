// See runner.hpp. The child side of spawn_impl only makes async-signal-safe system calls (until
// exec, or until a child_main runs); every allocation happens before the fork.
#include "process/runner.hpp"

#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace syncstorm::process {
namespace {

// What the child reports on the error pipe: {step, errno} when a step failed, or {pid_report,
// pid} (a daemon's grandchild says who it is). Eight-byte writes to a pipe are atomic.
enum class child_step : int { setsid, setns, setrlimit, dup, chdir, setgid, setgroups, setuid, exec, fork, pid_report };

const char* step_name(child_step s) {
  switch (s) {
    case child_step::setsid:
      return "setsid/setpgid";
    case child_step::setns:
      return "setns";
    case child_step::setrlimit:
      return "setrlimit(RLIMIT_NOFILE)";
    case child_step::dup:
      return "dup2";
    case child_step::chdir:
      return "chdir";
    case child_step::setgid:
      return "setgid";
    case child_step::setgroups:
      return "setgroups";
    case child_step::setuid:
      return "setuid";
    case child_step::exec:
      return "execve";
    case child_step::fork:
      return "fork (daemon)";
    case child_step::pid_report:
      return "?";
  }
  return "?";
}

struct fd_guard {
  int fd = -1;
  fd_guard() = default;
  explicit fd_guard(int f) : fd(f) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() { reset(); }
  void reset(int f = -1) {
    if (fd >= 0) ::close(fd);
    fd = f;
  }
};

void child_report(int err_fd, child_step step, int value) {
  int msg[2] = {static_cast<int>(step), value};
  ssize_t ignored = ::write(err_fd, msg, sizeof msg);
  (void)ignored;
}

[[noreturn]] void child_fail(int err_fd, child_step step) {
  child_report(err_fd, step, errno);
  _exit(127);
}

std::string what_runs(const spawn_options& o) {
  return o.argv.empty() ? std::string("a forked child") : "`" + render_argv(o.argv) + "`";
}

// `out_fd` >= 0: the child's stdout/stderr (capture pipe); else o.log_path or /dev/null.
pid_t spawn_impl(const spawn_options& o, int out_fd) {
  if (o.argv.empty() && !o.child_main) throw std::runtime_error("spawn: empty argv and no child_main");
  const std::string program = o.child_main ? std::string() : resolve_program(o.argv[0]);
  const std::string label = o.child_main ? what_runs(o) : program;
  for (const auto& [from, to] : o.pass_fds)
    if (from < 0 || to < 3)
      throw std::runtime_error("spawn " + label + ": pass_fds: expected an open fd passed as fd 3 or above");

  // Environment: inherited, minus what extra_env and the marker replace.
  std::vector<std::string> env_strings = o.extra_env;
  if (!o.lab_id.empty()) env_strings.push_back(std::string(lab_marker_env) + "=" + o.lab_id);
  uid_t uid = 0;
  gid_t gid = 0;
  if (o.user) {
    struct passwd pw {};
    struct passwd* res = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r(o.user->c_str(), &pw, buf.data(), buf.size(), &res) != 0 || !res)
      throw std::runtime_error("spawn " + label + ": found no user named \"" + *o.user + "\"");
    uid = pw.pw_uid;
    gid = pw.pw_gid;
    env_strings.push_back(std::string("HOME=") + pw.pw_dir);
    env_strings.push_back("USER=" + *o.user);
    env_strings.push_back("LOGNAME=" + *o.user);
  }
  auto key_of = [](const std::string& kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> env_all;
  for (char** e = environ; e && *e; ++e) {
    std::string kv = *e;
    bool replaced = false;
    for (auto& x : env_strings)
      if (key_of(x) == key_of(kv)) replaced = true;
    if (!replaced) env_all.push_back(std::move(kv));
  }
  for (auto& x : env_strings) env_all.push_back(x);
  std::vector<char*> envp;
  for (auto& s : env_all) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = o.argv;
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  // For a child_main: the fd ranges to close (everything from 3 up but the passed fds).
  std::vector<int> keep;
  for (const auto& p : o.pass_fds) keep.push_back(p.second);
  std::sort(keep.begin(), keep.end());
  std::vector<int> moved(o.pass_fds.size(), -1);  // the child's copies of the passed fds, above every target

  fd_guard devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (devnull.fd < 0) throw std::runtime_error("spawn: cannot open /dev/null: " + std::string(std::strerror(errno)));
  fd_guard log;
  if (out_fd < 0 && !o.log_path.empty()) {
    log.reset(::open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (log.fd < 0)
      throw std::runtime_error("spawn " + label + ": cannot open log " + o.log_path + ": " + std::strerror(errno));
  }
  const int child_out = out_fd >= 0 ? out_fd : (log.fd >= 0 ? log.fd : devnull.fd);
  fd_guard ns;
  if (!o.netns.empty()) {
    std::string p = "/run/netns/" + o.netns;
    ns.reset(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (ns.fd < 0)
      throw std::runtime_error("spawn " + label + ": cannot open network namespace " + p + ": " + std::strerror(errno));
  }
  int errp[2];
  if (::pipe2(errp, O_CLOEXEC) != 0) throw std::runtime_error("spawn: pipe2 failed");
  fd_guard err_r(errp[0]), err_w(errp[1]);
  struct rlimit rl {};
  if (o.nofile) {
    struct rlimit cur {};
    ::getrlimit(RLIMIT_NOFILE, &cur);
    rl.rlim_cur = rl.rlim_max = *o.nofile;
    if (::geteuid() != 0 && rl.rlim_max > cur.rlim_max) rl.rlim_cur = rl.rlim_max = cur.rlim_max;
  }
  const char* cwd = o.cwd.empty() ? nullptr : o.cwd.c_str();
  const bool as_user = o.user.has_value();

  const pid_t parent = ::getpid();
  if (o.child_main) std::fflush(nullptr);  // what stdio holds is written once, not again by the child
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("spawn " + label + ": fork failed: " + std::strerror(errno));
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    int efd = err_w.fd;
    if (o.daemon) {
      if (::setsid() < 0) child_fail(efd, child_step::setsid);
      pid_t grandchild = ::fork();
      if (grandchild < 0) child_fail(efd, child_step::fork);
      if (grandchild > 0) ::_exit(0);
      child_report(efd, child_step::pid_report, static_cast<int>(::getpid()));
    }
    if (o.parent_death_signal && !o.daemon) {
      ::prctl(PR_SET_PDEATHSIG, o.parent_death_signal);
      if (::getppid() != parent) ::_exit(0);  // the parent died before the prctl
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction act {};
    act.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) {
      if (s == SIGKILL || s == SIGSTOP) continue;
      sigaction(s, &act, nullptr);
    }
    act.sa_handler = SIG_IGN;
    for (int s : o.ignore_signals) sigaction(s, &act, nullptr);
    if (!o.daemon && (o.new_session ? ::setsid() < 0 : ::setpgid(0, 0) < 0)) child_fail(efd, child_step::setsid);
    if (ns.fd >= 0 && ::setns(ns.fd, CLONE_NEWNET) != 0) child_fail(efd, child_step::setns);
    if (o.nofile && ::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      // Without CAP_SYS_RESOURCE the hard limit cannot rise: take as much as it allows.
      struct rlimit cur {};
      ::getrlimit(RLIMIT_NOFILE, &cur);
      cur.rlim_cur = rl.rlim_cur < cur.rlim_max ? rl.rlim_cur : cur.rlim_max;
      if (::setrlimit(RLIMIT_NOFILE, &cur) != 0) child_fail(efd, child_step::setrlimit);
    }
    if (::dup2(devnull.fd, 0) < 0 || ::dup2(child_out, 1) < 0 || ::dup2(child_out, 2) < 0)
      child_fail(efd, child_step::dup);
    // Everything else the parent had open must not leak into a long-lived process.
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    if (!keep.empty()) {
      // First every passed fd and the error pipe above the highest target, then each passed fd
      // to its number: no target overwrites a source or the pipe.
      const int above = keep.back() + 1;
      for (std::size_t i = 0; i < o.pass_fds.size(); ++i)
        if ((moved[i] = ::fcntl(o.pass_fds[i].first, F_DUPFD_CLOEXEC, above)) < 0) child_fail(efd, child_step::dup);
      const int e = ::fcntl(efd, F_DUPFD_CLOEXEC, above);
      if (e < 0) child_fail(efd, child_step::dup);
      efd = e;
      for (std::size_t i = 0; i < o.pass_fds.size(); ++i)
        if (::dup2(moved[i], o.pass_fds[i].second) < 0) child_fail(efd, child_step::dup);
    }
    if (cwd && ::chdir(cwd) != 0) child_fail(efd, child_step::chdir);
    if (as_user) {
      if (::setgroups(1, &gid) != 0) child_fail(efd, child_step::setgroups);
      if (::setgid(gid) != 0) child_fail(efd, child_step::setgid);
      if (::setuid(uid) != 0) child_fail(efd, child_step::setuid);
    }
    if (o.child_main) {
      // Set up: close every fd from 3 up but the passed ones (the error pipe too, which tells
      // the parent), then run.
      unsigned from = 3;
      for (int k : keep) {
        if (static_cast<unsigned>(k) > from) ::syscall(SYS_close_range, from, static_cast<unsigned>(k) - 1, 0U);
        from = static_cast<unsigned>(k) + 1;
      }
      ::syscall(SYS_close_range, from, ~0U, 0U);
      environ = envp.data();  // extra_env and the lab marker, as an exec'd program gets them
      ::_exit(o.child_main());
    }
    ::execve(program.c_str(), argv.data(), envp.data());
    child_fail(efd, child_step::exec);
  }
  // Parent: also set the group here so a signal to -pid right after spawn cannot miss.
  if (!o.new_session && !o.daemon) ::setpgid(pid, pid);
  err_w.reset();
  if (o.daemon) {
    // The intermediate child exits at once (after the second fork).
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    pid = -1;
  }
  // Read until EOF (exec or child_main closed the pipe) or a failure report.
  for (;;) {
    int msg[2] = {0, 0};
    ssize_t n;
    do {
      n = ::read(err_r.fd, msg, sizeof msg);
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(sizeof msg)) break;
    if (static_cast<child_step>(msg[0]) == child_step::pid_report) {
      pid = static_cast<pid_t>(msg[1]);
      continue;
    }
    if (!o.daemon) {
      int st = 0;
      while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
      }
    }
    throw std::runtime_error("cannot start " + what_runs(o) + ": " + step_name(static_cast<child_step>(msg[0])) +
                             " failed: " + std::strerror(msg[1]));
  }
  if (pid <= 0)
    throw std::runtime_error("cannot start " + what_runs(o) + ": the daemon's child did not report its pid");
  return pid;
}

}  // namespace

std::string resolve_program(const std::string& prog) {
  if (prog.find('/') != std::string::npos) return prog;
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  // Root's PATH may lack the sbin directories where ip and iptables live.
  p += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= p.size()) {
    std::size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string dir = p.substr(start, end - start);
    if (!dir.empty()) {
      std::string cand = dir + "/" + prog;
      if (::access(cand.c_str(), X_OK) == 0) return cand;
    }
    start = end + 1;
  }
  throw std::runtime_error("cannot start `" + prog + "`: found no executable of that name in PATH");
}

pid_t spawn(const spawn_options& o) { return spawn_impl(o, -1); }

run_result run(spawn_options o, std::chrono::milliseconds timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("run: pipe2 failed");
  fd_guard rd(p[0]), wr(p[1]);
  o.daemon = false;  // run() waits for its command
  pid_t pid = spawn_impl(o, wr.fd);
  wr.reset();
  ::fcntl(rd.fd, F_SETFL, O_NONBLOCK);
  run_result r;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[8192];
  auto drain = [&] {
    for (;;) {
      ssize_t n = ::read(rd.fd, buf, sizeof buf);
      if (n <= 0) return n == 0;
      if (r.output.size() < (1u << 20)) r.output.append(buf, static_cast<std::size_t>(n));
    }
  };
  bool eof = false;
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      r.timed_out = true;
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    if (!eof) {
      struct pollfd pfd {
        rd.fd, POLLIN, 0
      };
      ::poll(&pfd, 1, 20);
      eof = drain();
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  }
  // A daemon the command left behind may hold the pipe: take what is there, do not wait for EOF.
  drain();
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

std::string run_checked(const std::string& what, spawn_options o, std::chrono::milliseconds timeout) {
  auto argv = o.argv;
  run_result r = run(std::move(o), timeout);
  if (r.exit_code != 0) {
    std::string out = r.output;
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
    std::string how = r.timed_out ? "timed out after " + std::to_string(timeout.count()) + " ms"
                      : r.signal  ? "was killed by signal " + std::to_string(r.signal)
                                  : "exited " + std::to_string(r.exit_code);
    throw std::runtime_error(what + ": `" + render_argv(argv) + "` " + how + "; expected exit 0" +
                             (out.empty() ? "" : ": " + out));
  }
  return r.output;
}

std::string render_argv(const std::vector<std::string>& argv) {
  std::string out;
  for (const auto& a : argv) {
    if (!out.empty()) out += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`*?[]{}()<>|&;#~!") == std::string::npos;
    if (plain) {
      out += a;
    } else {
      out += '\'';
      for (char c : a) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
      out += '\'';
    }
  }
  return out;
}

}  // namespace syncstorm::process
