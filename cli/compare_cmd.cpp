// `syncstorm compare BASE NEW [--max-regression PCT] [--min-delta-ms MS] [--json]` (DESIGN §9):
// per-rule and per-metric deltas of two runs (each a run directory or a report.json); exit 1
// when NEW regressed past the bound, 0 when not, 2 on bad input.
#include "cli/commands.hpp"
#include "core/json_limits.hpp"

#include <iterator>
#include "reports/compare.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

namespace syncstorm::cli {
namespace {

struct compare_flags {
  std::string base, next;
  std::string max_regression = "10%";
  double min_delta_ms = 1.0;
  bool json = false;
};

// The report behind a run directory or a report.json path; prints one line and returns a
// discarded value when it is neither.
nlohmann::json load_report(const std::string& arg, const char* which) {
  std::filesystem::path p(arg);
  if (std::filesystem::is_directory(p)) p /= "report.json";
  std::ifstream in(p);
  if (!in) {
    std::cerr << which << " " << arg << ": found no report.json; expected a run directory or a report.json\n";
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  nlohmann::json r = parse_bounded(std::string(std::istreambuf_iterator<char>(in), {}));
  if (r.is_discarded() || !r.is_object() || !r.contains("verdicts")) {
    std::cerr << which << " " << p.string() << ": found "
              << (r.is_discarded() ? "invalid JSON" : "JSON without verdicts")
              << "; expected a syncstorm report.json\n";
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  return r;
}

registration compare_reg{
    45, [](CLI::App& app) -> action {
      auto f = std::make_shared<compare_flags>();
      auto* sub =
          app.add_subcommand("compare", "compare two runs: per-rule and per-metric deltas; exit 1 on a regression");
      sub->add_option("base", f->base, "the base run (run directory or report.json)")->required();
      sub->add_option("new", f->next, "the new run (run directory or report.json)")->required();
      sub->add_option("--max-regression", f->max_regression, "worse by more than this fails, e.g. 10% (default 10%)");
      sub->add_option("--min-delta-ms", f->min_delta_ms, "latency changes up to this many ms never fail (default 1)");
      sub->add_flag("--json", f->json, "print the comparison as JSON");
      return [f]() -> int {
        auto pct = reports::parse_percent(f->max_regression);
        if (!pct) {
          std::cerr << "--max-regression: found \"" << f->max_regression << "\"; expected a percentage like 10%\n";
          return 2;
        }
        if (!(f->min_delta_ms >= 0)) {
          std::cerr << "--min-delta-ms: found " << f->min_delta_ms << "; expected a number >= 0\n";
          return 2;
        }
        auto base = load_report(f->base, "BASE");
        auto next = load_report(f->next, "NEW");
        if (base.is_discarded() || next.is_discarded()) return 2;
        reports::compare_options o;
        o.max_regression_pct = *pct;
        o.min_delta_ms = f->min_delta_ms;
        auto c = reports::compare_reports(base, next, o);
        if (f->json)
          std::cout << reports::comparison_json(c).dump(2) << "\n";
        else
          std::cout << reports::format_comparison(c);
        return c.regressed ? 1 : 0;
      };
    }};

}  // namespace
}  // namespace syncstorm::cli
