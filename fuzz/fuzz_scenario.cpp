// Fuzzes what `syncstorm validate FILE [--set PATH=VALUE]...` does with a file's text
// (cli/validate_cmd.cpp): core/scenario.cpp's load_scenario_file (read, bounded JSON parse,
// --set, the spec tree's validation in core/spec.cpp, cross-references, each built-in model's and
// fault kind's check and parse), with the built-ins registered as the CLI registers them. The
// file is an in-memory file (memfd) named by its /proc/self/fd path, so the real file-reading
// function runs. The capture's environment check (cli/capture_check.cpp, which looks at this
// machine's interfaces) is not part of the libraries and not run.
// Input: the file's text up to the first NUL byte; after it, up to four --set assignments, one
// per line.
// Properties: load_scenario_file reports every problem in its error list and never throws (an
// exception out of it would end `syncstorm validate` in std::terminate, so none is caught here);
// each error is one line (DESIGN §9); a scenario that loads loads again from its own document.
#include "core/scenario.hpp"
#include "engine/registry.hpp"
#include "fuzz/fuzz_util.hpp"
#include "fuzz/nesting_mutator.hpp"

#include <sys/mman.h>
#include <unistd.h>

namespace {

using namespace syncstorm;

using memfile = fuzz::memfile;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  engine::register_builtins();
  return 0;
}

// Deep nesting as one mutation in eight (fuzz/nesting_mutator.hpp).
SYNCSTORM_FUZZ_NESTING_MUTATOR()

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const memfile file;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  file.write(input.substr(0, nul));
  load_options opt;
  if (nul != std::string_view::npos) {
    std::string_view sets = input.substr(nul + 1);
    while (!sets.empty() && opt.sets.size() < 4) {
      const auto nl = sets.find('\n');
      opt.sets.emplace_back(sets.substr(0, nl));
      sets = nl == std::string_view::npos ? std::string_view{} : sets.substr(nl + 1);
    }
  }
  load_result r = load_scenario_file(file.path, opt);
  // Errors go to the console only (validate and run print them, exit 2); they may quote the
  // file's own bytes, so only their one-line shape is checked.
  for (const auto& e : r.errors)
    if (e.find('\n') != std::string::npos) fuzz::violated("a multi-line error: " + e);
  if (r.value) {
    load_result again = load_scenario(r.value->document, load_options{});
    if (!again.value)
      fuzz::violated("a loaded scenario's own document does not load again: " +
                     (again.errors.empty() ? "" : again.errors.front()));
  }
  return 0;
}
