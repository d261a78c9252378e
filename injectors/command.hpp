// External commands for the remote backends (docker, kubectl) and the fake ones the tests put on
// PATH: run by the one subprocess runner (process/runner.hpp: never a shell, PATH as the runner
// resolves it), stdout and stderr captured together, a deadline after which the command's
// process group is killed. Thread-safe (each call owns its child).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace syncstorm::injectors {

struct command_result {
  int exit_code = -1;  // -1: did not run or was killed at the deadline
  std::string output;  // stdout and stderr, as printed
  std::string error;   // empty on exit 0; else one line: what ran, how it ended, last output line
  bool ok() const { return error.empty(); }
};

command_result run_command(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout = std::chrono::seconds(30));

// `a b 'c d'`: argv as a copy-pasteable line for --dry-run and the ledger (process::render_argv).
std::string command_line(const std::vector<std::string>& argv);

}  // namespace syncstorm::injectors
