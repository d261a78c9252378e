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

// What a load entry asks of the target's protocol profile (for check_profile_use).
struct profile_use {
  bool writes_ops = false;  // pushes an op mix (terminal, offline): its kinds must be ones the API takes
  bool records = false;     // reads the records endpoint (fanout, bootstrap)
  bool ws = false;          // subscribes to the WebSocket feed (fanout)
};

// Validation of one load entry against target.profile (a reference check of the sync models),
// appending one line per problem to `out`: the profile's own problems (each line once, however
// many entries use the profile), an op kind the API does not take
// ("scenario.load[0].ops.set: found 10; expected 0 under the couchdb profile (only append ops)"),
// `set`/`add` ops with a profile that has no records endpoint (the audit could not judge them),
// and a model that needs an endpoint the profile has not (`"ws": null`, `"records": null`).
// `entry` is the load entry as written; nothing is thrown.
void check_profile_use(const nlohmann::json& target, const nlohmann::json& entry, const std::string& path,
                       profile_use use, std::vector<std::string>& out);

}  // namespace syncstorm::loadgen
