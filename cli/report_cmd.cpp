// `syncstorm report RUN_DIR`: regenerates junit.xml, summary.md and report.html from the run's
// report.json (after an upgrade, or when a file was lost).
#include "cli/commands.hpp"
#include "core/json_limits.hpp"

#include <iterator>
#include "reports/writers.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

namespace syncstorm::cli {
namespace {

registration report_reg{40, [](CLI::App& app) -> action {
                          auto dir = std::make_shared<std::string>();
                          auto* sub = app.add_subcommand("report", "regenerate a run's outputs from its report.json");
                          sub->add_option("run_dir", *dir, "the run directory")->required();
                          return [dir]() -> int {
                            std::filesystem::path p = std::filesystem::path(*dir) / "report.json";
                            std::ifstream in(p);
                            if (!in) {
                              std::cerr << "RUN_DIR " << *dir << ": found no report.json; expected a run directory\n";
                              return 2;
                            }
                            nlohmann::json r = parse_bounded(std::string(std::istreambuf_iterator<char>(in), {}));
                            if (r.is_discarded() || !r.is_object()) {
                              std::cerr << p.string() << ": found invalid JSON; expected a report.json\n";
                              return 2;
                            }
                            try {
                              reports::write_all(*dir, r);
                            } catch (const std::exception& e) {
                              std::cerr << e.what() << "\n";
                              return 3;
                            }
                            std::cout << reports::verdict_table(r);
                            std::cout << "report: " << (std::filesystem::path(*dir) / "report.html").string() << "\n";
                            return 0;
                          };
                        }};

}  // namespace
}  // namespace syncstorm::cli
