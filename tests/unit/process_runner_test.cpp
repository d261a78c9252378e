// process/runner.hpp, the one subprocess runner: captured runs and their deadline, start failures
// as exceptions naming the step, daemons re-parented away from the caller, fds passed by number
// and nothing else leaked, a forked child_main, ignored signals, one quoting rule.
#include "process/runner.hpp"

#include "tests/support/test_util.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <string_view>
#include <thread>

namespace {

namespace p = syncstorm::process;
namespace t = syncstorm::test;
using namespace std::chrono_literals;

p::spawn_options sh(const std::string& script) {
  p::spawn_options o;
  o.argv = {"sh", "-c", script};
  return o;
}

// The parent pid in /proc/<pid>/stat, or -1.
pid_t parent_of(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return -1;
  char state = 0;
  int ppid = -1;
  if (std::sscanf(s.c_str() + rp + 1, " %c %d", &state, &ppid) != 2) return -1;
  return ppid;
}

TEST(process_runner, run_captures_output_and_exit_code) {
  auto r = p::run(sh("echo out; echo err >&2; exit 3"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_EQ(r.signal, 0);
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.output.find("out\n"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("err\n"), std::string::npos) << r.output;
  EXPECT_EQ(p::run_checked("echo", sh("printf hello")), "hello");
  try {
    p::run_checked("the step", sh("echo broken; exit 4"));
    ADD_FAILURE() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "the step: `sh -c 'echo broken; exit 4'` exited 4; expected exit 0: broken");
  }
}

TEST(process_runner, a_deadline_kills_the_whole_process_group) {
  const auto t0 = std::chrono::steady_clock::now();
  auto r = p::run(sh("sleep 30 & sleep 30"), 300ms);
  EXPECT_TRUE(r.timed_out);
  EXPECT_EQ(r.signal, SIGKILL);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10s);
}

TEST(process_runner, start_failures_are_exceptions_naming_the_step) {
  try {
    p::spawn_options o;
    o.argv = {"syncstorm-no-such-program-xyz"};
    p::run(o);
    ADD_FAILURE() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              "cannot start `syncstorm-no-such-program-xyz`: found no executable of that name in PATH");
  }
  t::temp_dir d;
  const std::string plain = d.str() + "/not-executable";
  t::write_file(plain, "#!/bin/sh\n");
  try {
    p::spawn_options o;
    o.argv = {plain};
    p::spawn(o);
    ADD_FAILURE() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("execve failed: Permission denied"), std::string::npos) << e.what();
  }
  try {
    auto o = sh("true");
    o.cwd = d.str() + "/missing";
    p::spawn(o);
    ADD_FAILURE() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("chdir failed: No such file or directory"), std::string::npos) << e.what();
  }
}

TEST(process_runner, passed_fds_arrive_by_number_and_nothing_else_leaks) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  int stray = ::open("/dev/null", O_RDONLY);  // not close-on-exec: must not reach the child anyway
  ASSERT_GE(stray, 0);
  auto o = sh("echo via-3 >&3; ls /proc/self/fd");
  o.pass_fds = {{pipe_fds[1], 3}};
  auto r = p::run(o);
  ::close(pipe_fds[1]);
  char buf[64] = {};
  ssize_t n = ::read(pipe_fds[0], buf, sizeof buf - 1);
  ::close(pipe_fds[0]);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "via-3\n");
  // ls sees 0, 1, 2, 3 and its own directory fd: never `stray`.
  EXPECT_EQ(r.output.find("\n" + std::to_string(stray) + "\n"), std::string::npos) << r.output;
  ::close(stray);
}

TEST(process_runner, a_daemon_is_not_the_callers_child_and_its_pid_is_returned) {
  t::temp_dir d;
  const std::string pidfile = d.str() + "/pid";
  auto o = sh("echo $$ > " + pidfile + "; exec sleep 30");
  o.daemon = true;
  o.log_path = d.str() + "/log";
  pid_t pid = p::spawn(o);
  ASSERT_GT(pid, 0);
  std::string written;
  for (int i = 0; i < 200 && written.empty(); ++i) {
    std::this_thread::sleep_for(10ms);
    std::ifstream f(pidfile);
    std::getline(f, written);
  }
  EXPECT_EQ(written, std::to_string(pid));
  EXPECT_NE(parent_of(pid), ::getpid());
  EXPECT_NE(::getsid(pid), ::getsid(0));  // a session of its own making,
  EXPECT_NE(::getsid(pid), pid);          // which it does not lead (no controlling terminal ever)
  int st = 0;
  EXPECT_EQ(::waitpid(pid, &st, WNOHANG), -1);  // not ours to reap
  ::kill(pid, SIGKILL);
}

TEST(process_runner, a_child_main_runs_in_the_fork_with_only_its_passed_fds) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  int stray = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(stray, 0);
  p::spawn_options o;
  o.pass_fds = {{pipe_fds[1], 7}};
  o.child_main = [stray] {
    const bool stray_closed = ::fcntl(stray, F_GETFD) < 0;
    const char msg[] = "from-child";
    (void)!::write(7, msg, sizeof msg - 1);
    return stray_closed ? 42 : 1;
  };
  pid_t pid = p::spawn(o);
  ::close(pipe_fds[1]);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 42);
  char buf[32] = {};
  ssize_t n = ::read(pipe_fds[0], buf, sizeof buf - 1);
  ::close(pipe_fds[0]);
  ::close(stray);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0), "from-child");
}

TEST(process_runner, a_child_main_sees_extra_env_and_the_lab_marker) {
  ::setenv("SYNCSTORM_RUNNER_TEST_KEEP", "inherited", 1);
  ::setenv("SYNCSTORM_RUNNER_TEST_REPLACE", "old", 1);
  p::spawn_options o;
  o.extra_env = {"SYNCSTORM_RUNNER_TEST_REPLACE=new", "SYNCSTORM_RUNNER_TEST_ADD=added"};
  o.lab_id = "envtest";
  o.child_main = [] {
    auto is = [](const char* k, std::string_view v) {
      const char* x = std::getenv(k);
      return x && v == x;
    };
    return is("SYNCSTORM_RUNNER_TEST_KEEP", "inherited") && is("SYNCSTORM_RUNNER_TEST_REPLACE", "new") &&
                   is("SYNCSTORM_RUNNER_TEST_ADD", "added") && is(p::lab_marker_env, "envtest")
               ? 42
               : 1;
  };
  pid_t pid = p::spawn(o);
  int st = 0;
  ASSERT_EQ(::waitpid(pid, &st, 0), pid);
  ::unsetenv("SYNCSTORM_RUNNER_TEST_KEEP");
  ::unsetenv("SYNCSTORM_RUNNER_TEST_REPLACE");
  ASSERT_TRUE(WIFEXITED(st));
  EXPECT_EQ(WEXITSTATUS(st), 42);
  EXPECT_EQ(std::getenv("SYNCSTORM_RUNNER_TEST_ADD"), nullptr);  // the parent's environment is untouched
}

TEST(process_runner, ignored_signals_stay_ignored_across_exec) {
  auto o = sh("kill -INT $$; echo alive");
  o.ignore_signals = {SIGINT};
  auto r = p::run(o, 10s);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.output, "alive\n");
  r = p::run(sh("kill -INT $$; echo alive"), 10s);
  EXPECT_EQ(r.signal, SIGINT);
}

TEST(process_runner, one_quoting_rule) {
  EXPECT_EQ(p::render_argv({"docker", "exec", "a b", "it's", "", "[x]", "plain-1.2:3"}),
            "docker exec 'a b' 'it'\\''s' '' '[x]' plain-1.2:3");
}

}  // namespace
