// The shipped protocol profiles (profiles/*.json), built into the binary so that
// `"profile": "couchdb"` works wherever syncstorm runs. The table is generated at configure time
// by loadgen/CMakeLists.txt from the files in profiles/ (shipped_profiles.cpp in the build tree);
// re-running CMake picks up an edited or added file. Read-only static data; any thread.
#pragma once

#include <string_view>
#include <vector>

namespace syncstorm::loadgen::detail {

struct shipped_profile_text {
  std::string_view name;  // the file's name without .json
  std::string_view text;  // its JSON, as written
};

const std::vector<shipped_profile_text>& shipped_profiles();

}  // namespace syncstorm::loadgen::detail
