// Finding and ending the lab's processes (see lab_process.hpp).
#include "labstack/lab_process.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <thread>

namespace syncstorm::lab {

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
                                      const std::string& path_hint, const std::vector<std::string>& hint_comms) {
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

void set_process_name(const std::string& name) { ::prctl(PR_SET_NAME, name.substr(0, 15).c_str(), 0, 0, 0); }

std::vector<pid_t> terminate_processes(const std::vector<pid_t>& pids, int sig, std::chrono::milliseconds grace) {
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
