// `syncstorm validate SCENARIO...` and `syncstorm schema [--report]`.
#include "cli/commands.hpp"
#include "core/report_schema.hpp"
#include "core/scenario.hpp"

#include <iostream>
#include <memory>

namespace syncstorm::cli {
namespace {

registration validate_reg{10, [](CLI::App& app) -> action {
                            auto files = std::make_shared<std::vector<std::string>>();
                            auto sets = std::make_shared<std::vector<std::string>>();
                            auto* sub = app.add_subcommand(
                                "validate", "check scenario files against the contract; print every problem");
                            sub->add_option("scenario", *files, "scenario files")->required();
                            sub->add_option("--set", *sets, "PATH=VALUE applied before validation (as for run)");
                            return [files, sets]() -> int {
                              int rc = 0;
                              for (const auto& f : *files) {
                                load_options opt;
                                opt.sets = *sets;
                                auto r = load_scenario_file(f, opt);
                                if (!r.errors.empty()) {
                                  for (const auto& e : r.errors) std::cerr << f << ": " << e << "\n";
                                  rc = 2;
                                } else {
                                  std::cout << "ok: " << f << " (" << r.value->name << ")\n";
                                }
                              }
                              return rc;
                            };
                          }};

registration schema_reg{11, [](CLI::App& app) -> action {
                          auto report = std::make_shared<bool>(false);
                          auto* sub = app.add_subcommand(
                              "schema", "print the scenario's JSON Schema (2020-12), or report.json's with --report");
                          sub->add_flag("--report", *report, "the schema of report.json");
                          return [report]() -> int {
                            std::cout << (*report ? report_schema() : scenario_registry::instance().schema()).dump(2)
                                      << "\n";
                            return 0;
                          };
                        }};

}  // namespace
}  // namespace syncstorm::cli
