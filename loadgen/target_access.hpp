// How the models reach a scenario's target (DESIGN §9 `target`): the sync API's base URL (the
// lab's load balancer, or target.endpoints.http), the headers sent on every request, the TLS
// settings and the protocol profile. `${env:NAME}` references are resolved in memory only, when
// asked (not for a dry run); the values are never logged. Pure; any thread.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "loadgen/http_model.hpp"
#include "loadgen/sync_protocol.hpp"

namespace syncstorm::loadgen {

struct target_access {
  std::vector<std::pair<std::string, std::string>> headers;  // target.headers, in order
  tls_spec tls;                                              // target.tls
  sync_profile profile;                                      // target.profile (v1 without it)
};

// Throws std::invalid_argument for a bad profile (naming scenario.target.profile…).
target_access target_access_from(const nlohmann::json& target, bool resolve);

// `base_url` when set (the lab's), else target.endpoints.http; throws std::invalid_argument
// ("scenario.target.endpoints.http: found nothing; expected the sync API's URL for load L").
std::string target_http_url(const nlohmann::json& target, const std::string& base_url, const std::string& load,
                            bool resolve);

}  // namespace syncstorm::loadgen
