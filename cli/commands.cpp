// Dispatch of the syncstorm CLI: collects the registered subcommands, parses argv with CLI11,
// maps flag errors to exit 2 and runs the chosen action.
#include "cli/commands.hpp"

#include <algorithm>
#include <iostream>
#include <utility>
#include <vector>

namespace syncstorm::cli {
namespace {

std::vector<std::pair<int, setup_fn>>& registry() {
  static std::vector<std::pair<int, setup_fn>> r;
  return r;
}

}  // namespace

registration::registration(int order, setup_fn setup) { registry().emplace_back(order, std::move(setup)); }

int run_cli(int argc, char** argv) {
  CLI::App app{"syncstorm: chaos-engineering and load-testing harness for offline-first sync stacks", "syncstorm"};
  app.set_version_flag("--version", std::string("syncstorm ") + SYNCSTORM_VERSION);
  app.require_subcommand(1);
  auto& r = registry();
  std::stable_sort(r.begin(), r.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<std::pair<CLI::App*, action>> actions;
  for (auto& [order, setup] : r) {
    std::size_t before = app.get_subcommands({}).size();
    action act = setup(app);
    auto subs = app.get_subcommands({});
    if (subs.size() > before) actions.emplace_back(subs.back(), std::move(act));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "syncstorm: " << e.what() << "\n";
    return 2;
  }
  for (auto& [sub, act] : actions) {
    if (sub->parsed()) return act();
  }
  return 2;
}

}  // namespace syncstorm::cli
