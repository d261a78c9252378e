// Files syncstorm writes outside its ledger (issue #24): never through a link, never adopting
// what is there, replaced whole. Thread-safe.
#pragma once

#include <string>

namespace syncstorm::injectors {

// Writes `text` to a name of this process's own beside `path` (O_CREAT|O_EXCL|O_NOFOLLOW, mode
// 0600, fsynced), then renames it over `path`. Empty on success, else why (one line naming the
// file); on failure nothing is left at the temporary name.
std::string replace_file(const std::string& path, const std::string& text);

}  // namespace syncstorm::injectors
