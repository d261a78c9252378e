// The syncstorm command line (CLI11). Each subcommand lives in its own cli/*.cpp and registers
// itself in cli/commands.hpp; main only dispatches. Single-threaded until a command starts work.
#include "harness/cli/commands.hpp"

int main(int argc, char** argv) { return syncstorm::cli::run_cli(argc, argv); }
