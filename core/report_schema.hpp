// The shape of report.json (DESIGN §9), as a spec tree: `syncstorm schema --report` prints its
// JSON Schema and the tests validate written reports against it. Read-only after start-up.
#pragma once

#include "core/spec.hpp"

namespace syncstorm {

inline constexpr int report_schema_version = 1;

spec::node_ptr report_spec();
nlohmann::json report_schema();

}  // namespace syncstorm
