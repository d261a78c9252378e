// See target_access.hpp.
#include "loadgen/target_access.hpp"

#include <algorithm>
#include <stdexcept>

#include "core/scenario.hpp"
#include "loadgen/terminal_model.hpp"

namespace syncstorm::loadgen {

target_access target_access_from(const nlohmann::json& target, bool resolve) {
  target_access a;
  auto value = [&](const std::string& v) { return resolve ? resolve_env(v) : v; };
  if (target.contains("headers") && target["headers"].is_object())
    for (const auto& [k, v] : target["headers"].items())
      if (v.is_string()) a.headers.emplace_back(k, value(v.get<std::string>()));
  if (target.contains("tls") && target["tls"].is_object()) {
    const nlohmann::json& t = target["tls"];
    auto r = [&](const char* k) { return value(t.value(k, "")); };
    a.tls.ca_file = r("ca_file");
    a.tls.cert_file = r("cert_file");
    a.tls.key_file = r("key_file");
    a.tls.server_name = r("server_name");
    a.tls.verify = t.value("verify", true);
  }
  if (target.contains("profile")) a.profile = parse_profile(target["profile"], "scenario.target.profile");
  return a;
}

std::string target_http_url(const nlohmann::json& target, const std::string& base_url, const std::string& load,
                            bool resolve) {
  std::string base = base_url;
  if (base.empty() && target.contains("endpoints") && target["endpoints"].is_object())
    base = target["endpoints"].value("http", "");
  if (base.empty())
    throw std::invalid_argument("scenario.target.endpoints.http: found nothing; expected the sync API's URL for load " +
                                load);
  return resolve ? resolve_env(base) : base;
}

void check_profile_use(const nlohmann::json& target, const nlohmann::json& entry, const std::string& path,
                       profile_use use, std::vector<std::string>& out) {
  if (!target.is_object() || !target.contains("profile")) return;
  auto add = [&](std::string line) {
    if (std::find(out.begin(), out.end(), line) == out.end()) out.push_back(std::move(line));
  };
  const auto errs = profile_errors(target["profile"], "scenario.target.profile");
  for (const auto& e : errs) add(e);
  if (!errs.empty()) return;
  const sync_profile p = parse_profile(target["profile"], "scenario.target.profile");
  const std::string label = profile_label(p);
  const std::string model = entry.is_object() ? entry.value("model", "") : std::string();
  if (use.ws && !p.has_ws)
    add(path + ".model: found \"" + model + "\"; expected a model that needs no WebSocket feed (" + label +
        " has none)");
  if (use.records && !p.has_records)
    add(path + ".model: found \"" + model + "\"; expected a model that needs no records endpoint (" + label +
        " has none)");
  if (!use.writes_ops) return;

  // The entry's op mix as the terminal model reads it: `ops` as written, else its defaults.
  const terminal_config defaults;
  struct kind_pct {
    op_kind kind;
    const char* key;
    double pct;
  };
  std::vector<kind_pct> mix = {{op_kind::append, "append", static_cast<double>(defaults.pct_append)},
                               {op_kind::add, "add", static_cast<double>(defaults.pct_add)},
                               {op_kind::set, "set", static_cast<double>(defaults.pct_set)}};
  const bool written = entry.is_object() && entry.contains("ops") && entry["ops"].is_object();
  if (written)
    for (auto& m : mix) m.pct = entry["ops"].contains(m.key) ? percent_value(entry["ops"][m.key]) : 0;
  std::string allowed;
  for (op_kind k : p.kinds) allowed += (allowed.empty() ? "" : ", ") + std::string(to_string(k));
  std::vector<std::string> refused;
  for (const auto& m : mix) {
    if (m.pct <= 0) continue;
    const bool taken = std::find(p.kinds.begin(), p.kinds.end(), m.kind) != p.kinds.end();
    // A key's value can only be judged against the server's records.
    const bool needs_records = m.kind != op_kind::append && !p.has_records;
    if (taken && !needs_records) continue;
    if (!written) {
      refused.push_back(m.key);
      continue;
    }
    const std::string why =
        !taken ? "under " + label + " (only " + allowed + " ops)"
               : "under " + label + ": it has no records endpoint, so the audit could not judge " + m.key + " ops";
    add(path + ".ops." + m.key + ": found " + entry["ops"][m.key].dump() + "; expected 0 " + why);
  }
  if (!refused.empty()) {
    std::string list;
    for (const auto& r : refused) list += (list.empty() ? "" : ", ") + r;
    add(path + ".ops: found nothing (the default mix has " + list + " ops); expected an op mix of " +
        (p.has_records ? allowed : std::string("append")) + " ops only under " + label + ", like {\"append\": 100}");
  }
}

}  // namespace syncstorm::loadgen
