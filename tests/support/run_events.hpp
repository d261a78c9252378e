// Reading a run's events.jsonl from a test while the run goes on: every parsable line, a bounded
// wait for the first event that matches, and the run directory of `syncstorm run --out OUT` once it
// exists. Test-only; single-threaded use.
#pragma once

#include "tests/support/test_util.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace syncstorm::test {

inline std::vector<nlohmann::json> read_events(const std::filesystem::path& p) {
  std::vector<nlohmann::json> out;
  std::ifstream in(p);
  for (std::string line; std::getline(in, line);) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

// The first event `match` accepts within `limit` (the file is read again every 100 ms).
inline std::optional<nlohmann::json> wait_event(const std::filesystem::path& events,
                                                const std::function<bool(const nlohmann::json&)>& match,
                                                std::chrono::seconds limit) {
  auto until = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < until) {
    for (auto& e : read_events(events))
      if (match(e)) return e;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return std::nullopt;
}

// The run directory under `out` once the run has made it (≤ 60 s), or empty.
inline std::filesystem::path wait_run_dir(const std::filesystem::path& out) {
  for (int i = 0; i < 600; ++i) {
    try {
      return only_run_dir(out);
    } catch (...) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return {};
}

}  // namespace syncstorm::test
