// Baselines. See baseline.hpp.
#include "reports/baseline.hpp"
#include "core/redact.hpp"
#include "core/json_limits.hpp"

#include <iterator>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <ostream>
#include <sstream>

namespace syncstorm::reports {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string scenario_of(const json& r) {
  if (r.contains("scenario") && r["scenario"].is_object()) return r["scenario"].value("name", "scenario");
  return "scenario";
}

// "2024-05-01T12:00:03.250Z" -> "20240501T120003.250Z": sortable and safe as a file name.
std::string stamp_of(const json& r) {
  std::string s;
  for (char ch : r.value("started_at", std::string("unknown"))) {
    if (ch == '-' || ch == ':') continue;
    s += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.') ? ch : '_';
  }
  return s.empty() ? "unknown" : s;
}

bool is_report_file(const fs::directory_entry& e) {
  return e.is_regular_file() && e.path().extension() == ".json" && e.path().filename().string()[0] != '.';
}

}  // namespace

fs::path baseline_folder(const std::string& dir, const std::string& scenario) {
  std::string n;
  for (char ch : scenario)
    n += (std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' || ch == '-') ? ch : '_';
  if (n.empty() || n == "." || n == "..") n = "_" + n;
  return fs::path(dir) / n;
}

std::vector<fs::path> stored_baselines(const std::string& dir, const std::string& scenario) {
  std::vector<fs::path> files;
  fs::path folder = baseline_folder(dir, scenario);
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return files;
  for (const auto& e : fs::directory_iterator(folder, ec))
    if (is_report_file(e)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

fs::path store_baseline(const std::string& dir, const json& report, std::size_t keep) {
  fs::path folder = baseline_folder(dir, scenario_of(report));
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw std::runtime_error(folder.string() + ": cannot create (" + ec.message() + ")");
  std::string stamp = stamp_of(report);
  fs::path file = folder / (stamp + ".json");
  for (int i = 2; fs::exists(file); ++i) file = folder / (stamp + "-" + std::to_string(i) + ".json");
  fs::path tmp = folder / ("." + file.filename().string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << redact::apply(report.dump(2, ' ', false, json::error_handler_t::replace)) << "\n";
    if (!out) throw std::runtime_error(tmp.string() + ": cannot write");
  }
  fs::rename(tmp, file, ec);
  if (ec) throw std::runtime_error(file.string() + ": cannot write (" + ec.message() + ")");
  auto files = stored_baselines(dir, scenario_of(report));
  keep = std::max<std::size_t>(keep, 1);
  for (std::size_t i = 0; i + keep < files.size(); ++i) fs::remove(files[i], ec);
  return file;
}

int apply_baseline(const json& report, const std::string& run_dir, const baseline_options& o, int exit_code,
                   std::ostream& out, std::ostream& err) {
  if (o.dir.empty()) return exit_code;
  const bool passed = report.value("outcome", "") == "pass" && exit_code == 0;
  auto problem = [&](const std::string& what) {
    err << "--baseline " << o.dir << ": " << what << "\n";
    return (exit_code == 0 || exit_code == 5) ? 3 : exit_code;
  };
  std::string name = scenario_of(report);
  // A run that errored or was interrupted measured too little to compare; it keeps its code.
  if (exit_code == 2 || exit_code == 3 || exit_code == 4) {
    out << "baseline: not compared (" << report.value("outcome", "error") << ")\n";
    return exit_code;
  }
  auto files = stored_baselines(o.dir, name);
  bool regressed = false;
  if (files.empty()) {
    out << "baseline: none yet for " << name << " in " << o.dir << "\n";
  } else {
    const fs::path& newest = files.back();
    std::ifstream in(newest);
    json base = parse_bounded(std::string(std::istreambuf_iterator<char>(in), {}));
    if (base.is_discarded() || !base.is_object())
      return problem("found invalid JSON in " + newest.string() + "; expected a report.json");
    comparison c = compare_reports(base, report, o.compare);
    out << "baseline: " << newest.string() << "\n" << format_comparison(c);
    json j = comparison_json(c);
    j["base_file"] = newest.string();
    std::ofstream cj(fs::path(run_dir) / "compare.json", std::ios::trunc);
    cj << redact::apply(j.dump(2, ' ', false, json::error_handler_t::replace)) << "\n";
    regressed = c.regressed;
  }
  if (passed && !regressed) {
    try {
      fs::path stored = store_baseline(o.dir, report, o.keep);
      out << "baseline: stored " << stored.string() << " (keeping " << o.keep << ")\n";
    } catch (const std::exception& e) {
      return problem(e.what());
    }
  }
  if (regressed && (exit_code == 0 || exit_code == 5)) return 1;
  return exit_code;
}

}  // namespace syncstorm::reports
