// Subcommand registry of the syncstorm CLI. Each cli/*.cpp registers one subcommand from a
// static initializer (they are compiled into the executable, so none is dropped by the linker).
// Single-threaded: registration happens before main, dispatch in main.
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>

namespace syncstorm::cli {

// What a subcommand runs once chosen; returns the process exit code (DESIGN §9).
using action = std::function<int()>;

// Adds the subcommand (and its options) to `app` and returns the action to run when the user
// chose it. Option storage must outlive the call (capture shared_ptrs in the action).
using setup_fn = std::function<action(CLI::App& app)>;

struct registration {
  registration(int order, setup_fn setup);
};

// Parses argv, runs the chosen subcommand's action. Flag errors print one line naming the flag
// and exit 2 (DESIGN §9).
int run_cli(int argc, char** argv);

}  // namespace syncstorm::cli
