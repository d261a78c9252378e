// See outcome.hpp.
#include "engine/outcome.hpp"

#include <algorithm>
#include <csignal>

namespace syncstorm::engine {

outcome outcome_of(const outcome_input& in) {
  if (!in.invalid.empty()) return {"error", 2, in.invalid};
  if (!in.error.empty()) return {"error", 3, in.error};
  if (in.interrupted || in.signal != 0)
    return {"aborted", 4, std::string("interrupted by ") + (in.signal == SIGINT ? "SIGINT" : "SIGTERM")};
  const bool any_fail =
      in.abort || std::any_of(in.rules.begin(), in.rules.end(), [](auto& r) { return !r.inconclusive && !r.pass; });
  if (any_fail)
    return {"fail", 1, in.abort ? "aborted early: " + in.abort->first + ": " + in.abort->second : std::string()};
  if (std::any_of(in.rules.begin(), in.rules.end(), [](auto& r) { return r.inconclusive; }))
    return {"inconclusive", 5, "a rule could not be judged"};
  return {"pass", 0, {}};
}

}  // namespace syncstorm::engine
