// fork/exec for the lab (see lab_process.hpp). The child side of spawn_impl only makes
// async-signal-safe system calls; every allocation happens before the fork.
#include "labstack/lab_process.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace syncstorm::lab {
namespace {

// Where the child failed before exec: written to the error pipe with errno.
enum class child_step : int { setsid, setns, setrlimit, dup, chdir, setgid, setgroups, setuid,
                              exec };

const char* step_name(child_step s) {
  switch (s) {
    case child_step::setsid: return "setsid/setpgid";
    case child_step::setns: return "setns";
    case child_step::setrlimit: return "setrlimit(RLIMIT_NOFILE)";
    case child_step::dup: return "dup2";
    case child_step::chdir: return "chdir";
    case child_step::setgid: return "setgid";
    case child_step::setgroups: return "setgroups";
    case child_step::setuid: return "setuid";
    case child_step::exec: return "execve";
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

[[noreturn]] void child_fail(int err_fd, child_step step) {
  int msg[2] = {static_cast<int>(step), errno};
  ssize_t ignored = ::write(err_fd, msg, sizeof msg);
  (void)ignored;
  _exit(127);
}

// `out_fd` >= 0: the child's stdout/stderr (capture pipe); else o.log_path or /dev/null.
pid_t spawn_impl(const spawn_options& o, int out_fd) {
  if (o.argv.empty()) throw std::runtime_error("spawn: empty argv");
  const std::string program = resolve_program(o.argv[0]);

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
      throw std::runtime_error("spawn " + program + ": found no user named \"" + *o.user + "\"");
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

  fd_guard devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (devnull.fd < 0) throw std::runtime_error("spawn: cannot open /dev/null: " + std::string(std::strerror(errno)));
  fd_guard log;
  if (out_fd < 0 && !o.log_path.empty()) {
    log.reset(::open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (log.fd < 0)
      throw std::runtime_error("spawn " + program + ": cannot open log " + o.log_path + ": " +
                               std::strerror(errno));
  }
  const int child_out = out_fd >= 0 ? out_fd : (log.fd >= 0 ? log.fd : devnull.fd);
  fd_guard ns;
  if (!o.netns.empty()) {
    std::string p = "/run/netns/" + o.netns;
    ns.reset(::open(p.c_str(), O_RDONLY | O_CLOEXEC));
    if (ns.fd < 0)
      throw std::runtime_error("spawn " + program + ": cannot open network namespace " + p + ": " +
                               std::strerror(errno));
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
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("spawn " + program + ": fork failed: " + std::strerror(errno));
  if (pid == 0) {
    // Child: async-signal-safe calls only.
    if (o.parent_death_signal) {
      ::prctl(PR_SET_PDEATHSIG, o.parent_death_signal);
      if (::getppid() != parent) ::_exit(0);  // the parent died before the prctl
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    for (int s = 1; s < NSIG; ++s) {
      if (s == SIGKILL || s == SIGSTOP) continue;
      sigaction(s, &dfl, nullptr);
    }
    if (o.new_session ? ::setsid() < 0 : ::setpgid(0, 0) < 0) child_fail(err_w.fd, child_step::setsid);
    if (ns.fd >= 0 && ::setns(ns.fd, CLONE_NEWNET) != 0) child_fail(err_w.fd, child_step::setns);
    if (o.nofile && ::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
      // Without CAP_SYS_RESOURCE the hard limit cannot rise: take as much as it allows.
      struct rlimit cur {};
      ::getrlimit(RLIMIT_NOFILE, &cur);
      cur.rlim_cur = rl.rlim_cur < cur.rlim_max ? rl.rlim_cur : cur.rlim_max;
      if (::setrlimit(RLIMIT_NOFILE, &cur) != 0) child_fail(err_w.fd, child_step::setrlimit);
    }
    if (::dup2(devnull.fd, 0) < 0 || ::dup2(child_out, 1) < 0 || ::dup2(child_out, 2) < 0)
      child_fail(err_w.fd, child_step::dup);
    // Everything else the parent had open must not leak into a long-lived lab process.
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    if (cwd && ::chdir(cwd) != 0) child_fail(err_w.fd, child_step::chdir);
    if (as_user) {
      if (::setgroups(1, &gid) != 0) child_fail(err_w.fd, child_step::setgroups);
      if (::setgid(gid) != 0) child_fail(err_w.fd, child_step::setgid);
      if (::setuid(uid) != 0) child_fail(err_w.fd, child_step::setuid);
    }
    ::execve(program.c_str(), argv.data(), envp.data());
    child_fail(err_w.fd, child_step::exec);
  }
  // Parent: also set the group here so a signal to -pid right after spawn cannot miss.
  if (!o.new_session) ::setpgid(pid, pid);
  err_w.reset();
  int msg[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(err_r.fd, msg, sizeof msg);
  } while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof msg)) {
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    throw std::runtime_error("cannot start `" + render_argv(o.argv) + "`: " +
                             step_name(static_cast<child_step>(msg[0])) + " failed: " +
                             std::strerror(msg[1]));
  }
  return pid;
}

}  // namespace

pid_t spawn(const spawn_options& o) { return spawn_impl(o, -1); }

run_result run_command(spawn_options o, std::chrono::milliseconds timeout) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw std::runtime_error("run: pipe2 failed");
  fd_guard rd(p[0]), wr(p[1]);
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
      struct pollfd pfd {rd.fd, POLLIN, 0};
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

std::string run_command_checked(const std::string& what, spawn_options o, std::chrono::milliseconds timeout) {
  auto argv = o.argv;
  run_result r = run_command(std::move(o), timeout);
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
  std::string s;
  for (auto& a : argv) {
    if (!s.empty()) s += ' ';
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"$\\;&|<>*?()") == std::string::npos;
    if (plain) {
      s += a;
    } else {
      s += '\'';
      for (char c : a) s += c == '\'' ? std::string("'\\''") : std::string(1, c);
      s += '\'';
    }
  }
  return s;
}

bool process_alive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = s.rfind(')');
  if (rp == std::string::npos || rp + 2 >= s.size()) return false;
  char state = s[rp + 2];
  return state != 'Z' && state != 'X';
}

std::optional<std::uint64_t> process_start_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return std::nullopt;
  std::istringstream in(s.substr(rp + 2));
  std::string field;
  // Fields after comm start at 3 (state); starttime is field 22.
  for (int i = 3; i <= 22; ++i) {
    if (!(in >> field)) return std::nullopt;
  }
  try {
    return std::stoull(field);
  } catch (...) {
    return std::nullopt;
  }
}

std::vector<pid_t> find_lab_processes(const std::string& lab_id, const std::vector<std::string>& comms,
                                      const std::string& path_hint,
                                      const std::vector<std::string>& hint_comms) {
  std::vector<pid_t> out;
  if (lab_id.empty()) return out;
  const std::string marker = std::string(lab_marker_env) + "=" + lab_id;
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  const pid_t self = ::getpid();
  while (struct dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long v = std::strtol(e->d_name, &end, 10);
    if (!end || *end != '\0' || v <= 0) continue;
    pid_t pid = static_cast<pid_t>(v);
    if (pid == self) continue;
    std::string base = std::string("/proc/") + e->d_name;
    bool hit = false, hint_comm = false;
    {
      std::ifstream c(base + "/comm");
      std::string comm;
      std::getline(c, comm);
      for (auto& x : comms)
        if (comm == x.substr(0, 15)) hit = true;
      for (auto& x : hint_comms)
        if (comm == x.substr(0, 15)) hint_comm = true;
    }
    if (!hit && hint_comm && !path_hint.empty()) {
      std::ifstream f(base + "/cmdline", std::ios::binary);
      std::string cmdline((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      hit = cmdline.find(path_hint) != std::string::npos;
    }
    if (!hit) {
      std::ifstream f(base + "/environ", std::ios::binary);
      std::string env((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      std::size_t pos = 0;
      while (pos < env.size()) {
        std::size_t z = env.find('\0', pos);
        if (z == std::string::npos) z = env.size();
        if (env.compare(pos, z - pos, marker) == 0) {
          hit = true;
          break;
        }
        pos = z + 1;
      }
    }
    if (hit && process_alive(pid)) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

void set_process_name(const std::string& name) {
  ::prctl(PR_SET_NAME, name.substr(0, 15).c_str(), 0, 0, 0);
}

std::vector<pid_t> terminate_processes(const std::vector<pid_t>& pids, int sig,
                                       std::chrono::milliseconds grace) {
  const pid_t own_group = ::getpgrp();
  auto signal_all = [&](int s) {
    for (pid_t p : pids) {
      if (p <= 1 || p == ::getpid()) continue;
      pid_t g = ::getpgid(p);
      if (g == p && g != own_group) ::kill(-p, s);
      ::kill(p, s);
    }
  };
  auto wait_gone = [&](std::chrono::milliseconds limit) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    for (;;) {
      std::vector<pid_t> left;
      for (pid_t p : pids) {
        int st = 0;
        ::waitpid(p, &st, WNOHANG);  // ours: reap; not ours: ECHILD, harmless
        if (process_alive(p)) left.push_back(p);
      }
      if (left.empty() || std::chrono::steady_clock::now() >= deadline) return left;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  signal_all(sig);
  auto left = wait_gone(grace);
  if (!left.empty() && sig != SIGKILL) {
    signal_all(SIGKILL);
    left = wait_gone(std::chrono::seconds(5));
  }
  return left;
}

std::int64_t unix_us() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

std::int64_t mono_us() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000 + ts.tv_nsec / 1000;
}

}  // namespace syncstorm::lab
