// See command.hpp.
#include "injectors/command.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace syncstorm::injectors {

std::string command_line(const std::vector<std::string>& argv) {
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

namespace {

std::string last_line(const std::string& s) {
  std::size_t end = s.find_last_not_of(" \r\n\t");
  if (end == std::string::npos) return {};
  std::size_t start = s.rfind('\n', end);
  return s.substr(start == std::string::npos ? 0 : start + 1, end - (start == std::string::npos ? 0 : start + 1) + 1);
}

}  // namespace

command_result run_command(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  command_result r;
  if (argv.empty()) {
    r.error = "empty command";
    return r;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    r.error = command_line(argv) + ": pipe: " + std::strerror(errno);
    return r;
  }
  int errpipe[2];  // reports an execvp failure to the parent
  if (::pipe2(errpipe, O_CLOEXEC) != 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    r.error = command_line(argv) + ": pipe: " + std::strerror(errno);
    return r;
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) {
    r.error = command_line(argv) + ": fork: " + std::strerror(errno);
    for (int fd : {fds[0], fds[1], errpipe[0], errpipe[1]}) ::close(fd);
    return r;
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::execvp(args[0], args.data());
    int e = errno;
    (void)!::write(errpipe[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(fds[1]);
  ::close(errpipe[1]);
  int exec_errno = 0;
  if (::read(errpipe[0], &exec_errno, sizeof exec_errno) != static_cast<ssize_t>(sizeof exec_errno)) exec_errno = 0;
  ::close(errpipe[0]);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long>(left, 1000)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) continue;
    ssize_t got = ::read(fds[0], buf, sizeof buf);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;
    if (r.output.size() < (1u << 20)) r.output.append(buf, static_cast<std::size_t>(got));
  }
  ::close(fds[0]);
  if (timed_out) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
  }
  int st = 0;
  while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  std::string line = command_line(argv);
  if (exec_errno) {
    r.error = line + ": cannot run " + argv[0] + ": " + std::strerror(exec_errno);
  } else if (timed_out) {
    r.error = line + ": no answer within " + std::to_string(timeout.count()) + " ms (killed)";
  } else if (WIFEXITED(st)) {
    r.exit_code = WEXITSTATUS(st);
    if (r.exit_code != 0) {
      std::string tail = last_line(r.output);
      r.error = line + ": exit " + std::to_string(r.exit_code) + (tail.empty() ? "" : ": " + tail);
    }
  } else {
    r.error = line + ": killed by signal " + std::to_string(WTERMSIG(st));
  }
  return r;
}

}  // namespace syncstorm::injectors
