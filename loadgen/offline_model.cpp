// The offline model as a configuration of the terminal model. See offline_model.hpp.
#include "loadgen/offline_model.hpp"

#include <stdexcept>

#include "core/scenario.hpp"

namespace syncstorm::loadgen {

terminal_config offline_config_from(const std::string& name, const nlohmann::json& f,
                                    const std::vector<phase_spec>& phases, const nlohmann::json& target,
                                    const std::string& base_url, const std::string& run_dir, const std::string& run_tag,
                                    std::uint64_t seed, bool resolve, const std::string& where) {
  terminal_config c = offline_settings_from(name, f, phases, where);
  bind_terminal(c, target, base_url, run_dir, run_tag, seed, resolve);
  return c;
}

terminal_config offline_settings_from(const std::string& name, const nlohmann::json& f,
                                      const std::vector<phase_spec>& phases, const std::string& where) {
  using json = nlohmann::json;
  auto bad = [&](const std::string& key, const json& found, const std::string& expected) {
    throw std::invalid_argument(where + "." + key + ": found " + found.dump() + "; expected " + expected);
  };
  if (!f.contains("clients") || !f["clients"].is_number_integer() || f["clients"].get<std::int64_t>() < 1)
    bad("clients", f.value("clients", json()), "an integer >= 1");
  // The terminal keys the offline model shares, under their own names.
  json t = json::object();
  for (const char* k :
       {"rate", "ops", "keys", "batch", "timeout", "retry", "breaker", "conflict", "journal", "drain", "stream_prefix"})
    if (f.contains(k)) t[k] = f[k];
  t["stores"] = f["clients"];
  t["terminals_per_store"] = 1;
  if (!t.contains("stream_prefix")) t["stream_prefix"] = name + "-c";
  terminal_config c = terminal_settings_from(name, t, phases, where);
  c.client_prefix = "c";

  if (f.contains("offline")) {
    const json& ws = f["offline"];
    for (std::size_t i = 0; i < ws.size(); ++i) {
      const std::string p = "offline[" + std::to_string(i) + "]";
      const std::int64_t at = duration_us(ws[i].at("at"));
      const std::int64_t len = duration_us(ws[i].at("for"));
      if (at < 0) bad(p + ".at", ws[i]["at"], "a duration >= 0");
      if (len <= 0) bad(p + ".for", ws[i]["for"], "a positive duration like \"20s\"");
      c.offline.windows.push_back({at, at + len});
    }
  }
  if (f.contains("random")) {
    const json& r = f["random"];
    const double duty = percent_value(r.at("duty_cycle"));
    if (duty < 0 || duty > 100) bad("random.duty_cycle", r["duty_cycle"], "a percentage from 0% to 100%");
    c.offline.duty_cycle = duty / 100.0;
    c.offline.period_us = duration_us(r.at("period"));
    if (c.offline.period_us < min_offline_period_us) bad("random.period", r["period"], "a duration >= 1s");
  }
  if (c.offline.empty()) bad("offline", f.value("offline", json()), "offline windows or a random duty cycle above 0%");
  return c;
}

}  // namespace syncstorm::loadgen
