// `syncstorm revert RUN_DIR` (DESIGN §9): reverts, from the run's ledger alone, every fault the
// run left applied; prints what it reverted or "nothing to revert". Exit 0 done, 2 not a run
// directory, 3 something could not be reverted (or the run is still going).
// `syncstorm reaper RUN_DIR` (hidden): the detached process a run starts before its first fault
// (injectors/reaper.hpp). Single-threaded.
#include "cli/commands.hpp"
#include "injectors/reaper.hpp"

#include <unistd.h>

#include <iostream>
#include <memory>

namespace syncstorm::cli {
namespace {

registration revert_reg{70, [](CLI::App& app) -> action {
                          auto dir = std::make_shared<std::string>();
                          auto* sub = app.add_subcommand(
                              "revert", "revert the faults a run left applied (from RUN_DIR/ledger.jsonl)");
                          sub->add_option("run_dir", *dir, "run directory")->required();
                          return [dir]() -> int { return injectors::revert_run(*dir, std::cout, std::cerr); };
                        }};

registration reaper_reg{71, [](CLI::App& app) -> action {
                          auto dir = std::make_shared<std::string>();
                          auto fd = std::make_shared<int>(-1);
                          auto* sub = app.add_subcommand("reaper", "internal: the detached reverter of a run's faults");
                          sub->group("");  // hidden from --help
                          sub->add_option("run_dir", *dir, "run directory")->required();
                          sub->add_option("--ready-fd", *fd, "write one byte here once running");
                          return [dir, fd]() -> int { return injectors::reaper_main(*dir, *fd); };
                        }};

}  // namespace
}  // namespace syncstorm::cli
