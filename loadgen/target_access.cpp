// See target_access.hpp.
#include "loadgen/target_access.hpp"

#include <stdexcept>

#include "core/scenario.hpp"

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
    throw std::invalid_argument("scenario.target.endpoints.http: found nothing; expected the sync API's URL for load " + load);
  return resolve ? resolve_env(base) : base;
}

}  // namespace syncstorm::loadgen
