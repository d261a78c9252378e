// The syncstorm command line (CLI11). Each subcommand lives in its own cli/*.cpp and registers
// itself in cli/commands.hpp; main registers the built-in load models and fault kinds, then
// dispatches. Single-threaded until a command starts work.
#include "cli/commands.hpp"
#include "core/redact.hpp"
#include "engine/registry.hpp"

int main(int argc, char** argv) {
  syncstorm::redact::install_console();  // no resolved ${env:} value on stdout or stderr
  syncstorm::engine::register_builtins();
  return syncstorm::cli::run_cli(argc, argv);
}
