// See command.hpp. The process itself is process/runner.hpp's; this file shapes its result into
// the one-line errors the fault steps report.
#include "injectors/command.hpp"

#include "process/runner.hpp"

#include <stdexcept>

namespace syncstorm::injectors {

std::string command_line(const std::vector<std::string>& argv) { return process::render_argv(argv); }

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
  const std::string line = command_line(argv);
  process::run_result p;
  try {
    process::spawn_options o;
    o.argv = argv;
    p = process::run(std::move(o), timeout);
  } catch (const std::exception& e) {
    // Not found in PATH, or a set-up step / the exec failed: the runner's reason, one line.
    r.error = line + ": cannot run " + argv[0] + ": " + e.what();
    return r;
  }
  r.output = std::move(p.output);
  if (p.timed_out) {
    r.error = line + ": no answer within " + std::to_string(timeout.count()) + " ms (killed)";
  } else if (p.signal != 0) {
    r.error = line + ": killed by signal " + std::to_string(p.signal);
  } else {
    r.exit_code = p.exit_code;
    if (r.exit_code != 0) {
      std::string tail = last_line(r.output);
      r.error = line + ": exit " + std::to_string(r.exit_code) + (tail.empty() ? "" : ": " + tail);
    }
  }
  return r;
}

}  // namespace syncstorm::injectors
