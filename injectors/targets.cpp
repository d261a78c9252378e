// See targets.hpp.
#include "injectors/targets.hpp"

#include <fnmatch.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

namespace syncstorm::injectors {

bool glob_match(const std::string& pattern, const std::string& name) {
  return ::fnmatch(pattern.c_str(), name.c_str(), 0) == 0;
}

std::uint64_t occurrence_seed(std::uint64_t scenario_seed, const std::string& fault, int occurrence) {
  // FNV-1a over the name, mixed with the seed and the occurrence (splitmix64 finish).
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : fault) h = (h ^ c) * 1099511628211ull;
  std::uint64_t z = scenario_seed ^ h ^ (static_cast<std::uint64_t>(occurrence) * 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::vector<std::string> pick_targets(const std::vector<std::string>& candidates, const nlohmann::json& pick,
                                      const std::string& default_pick, std::uint64_t seed) {
  if (candidates.empty()) return {};
  nlohmann::json p = pick.is_null() ? nlohmann::json(default_pick) : pick;
  std::size_t n = 1;
  bool random = true;
  if (p.is_string()) {
    std::string s = p;
    if (s == "all") return candidates;
    if (s == "one") return {candidates.front()};
    n = 1;  // "random"
  } else if (p.is_object() && p.contains("n")) {
    n = p["n"].get<std::size_t>();
  } else if (p.is_object() && p.contains("percent")) {
    const auto& v = p["percent"];
    double pc = v.is_number() ? v.get<double>() : std::atof(v.get<std::string>().c_str());
    n = static_cast<std::size_t>(std::ceil(pc / 100.0 * static_cast<double>(candidates.size()) - 1e-9));
    n = std::max<std::size_t>(1, n);
  }
  if (n >= candidates.size()) return candidates;
  // A seeded partial Fisher-Yates over the indices; the result keeps the candidates' order.
  std::vector<std::size_t> idx(candidates.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  std::mt19937_64 rng(seed);
  for (std::size_t i = 0; i < n && random; ++i) {
    std::uniform_int_distribution<std::size_t> d(i, idx.size() - 1);
    std::swap(idx[i], idx[d(rng)]);
  }
  idx.resize(n);
  std::sort(idx.begin(), idx.end());
  std::vector<std::string> out;
  for (auto i : idx) out.push_back(candidates[i]);
  return out;
}

std::optional<proc_info> read_proc(pid_t pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(in, s)) return std::nullopt;
  auto open = s.find('('), close = s.rfind(')');
  if (open == std::string::npos || close == std::string::npos) return std::nullopt;
  proc_info p;
  p.comm = s.substr(open + 1, close - open - 1);
  std::istringstream rest(s.substr(close + 2));
  std::vector<std::string> f;
  std::string x;
  while (rest >> x) f.push_back(x);
  // rest starts at field 3 (state): index k holds field k + 3.
  if (f.size() < 20) return std::nullopt;
  p.state = f[0].empty() ? '?' : f[0][0];
  p.ppid = static_cast<pid_t>(std::atol(f[1].c_str()));
  p.pgrp = static_cast<pid_t>(std::atol(f[2].c_str()));
  p.start_time = std::strtoull(f[19].c_str(), nullptr, 10);
  return p;
}

bool same_process(pid_t pid, unsigned long long start_time) {
  auto p = read_proc(pid);
  return p && p->start_time == start_time && p->state != 'Z' && p->state != 'X';
}

std::string refuse_pid(pid_t pid) {
  std::string who = "pid " + std::to_string(pid);
  if (pid <= 1) return who + ": refused: init (pid 1) is never a fault target";
  auto p = read_proc(pid);
  if (!p || p->state == 'Z' || p->state == 'X') return who + ": no such process";
  if (p->ppid == 2 || pid == 2) return who + " (" + p->comm + "): refused: a kernel thread";
  for (pid_t a = ::getpid(); a > 1;) {
    if (a == pid)
      return who + " (" + p->comm +
             "): refused: syncstorm itself or one of its ancestors (the run, its shell or CI runner)";
    auto ap = read_proc(a);
    if (!ap) break;
    a = ap->ppid;
  }
  if (::geteuid() != 0) {
    struct stat st {};
    if (::stat(("/proc/" + std::to_string(pid)).c_str(), &st) == 0 && st.st_uid != ::geteuid())
      return who + " (" + p->comm + "): refused: owned by uid " + std::to_string(st.st_uid) + ", not by this user";
  }
  return {};
}

}  // namespace syncstorm::injectors
