// A fault kind that only the tests know: `touch` creates the file `<dir>/touched` when applied
// and removes it at revert, through the ledger's own marker and remove_file steps (so the reaper
// and `syncstorm revert` can undo it without knowing the kind). It lives in this file alone
// (keys, settings, check, prepare, registration), with no edit anywhere in the injectors or the
// engine: the proof that a fault kind is one file.
#include "injectors/fault_kind.hpp"

#include <filesystem>

namespace syncstorm::tests {
namespace {

using namespace spec;

struct touch_settings final : fault_settings {
  std::string dir;
};

injectors::fault_kind touch_kind() {
  injectors::fault_kind k;
  k.info.name = "touch";
  k.info.doc = "create <dir>/touched while applied (tests only)";
  k.info.fields = {req("dir", spec::string("an existing directory"))};
  k.info.needs_target = false;
  k.info.check = [](const nlohmann::json& f, const reference_context&, const std::string& p, spec::errors& out) {
    const std::string dir = f.value("dir", "");
    if (!dir.starts_with("/"))
      out.push_back(p + ".dir: found " + nlohmann::json(dir).dump() + "; expected an absolute directory path");
  };
  k.info.parse = [](const fault_entry& f, const std::string&) -> std::shared_ptr<const fault_settings> {
    auto s = std::make_shared<touch_settings>();
    s->dir = f.fields.value("dir", "");
    return s;
  };
  k.prepare = [](injectors::prepared_fault& p, const fault_entry& f, const injectors::fault_env&) {
    const std::string path =
        (std::filesystem::path(injectors::settings_of<touch_settings>(f)->dir) / "touched").string();
    p.targets.push_back({{"backend", "local"}, {"name", path}});
    p.apply.push_back({{"op", "marker"}, {"path", path}});
    p.undo.push_back({{"op", "remove_file"}, {"path", path}});
  };
  return k;
}

const injectors::fault_kind_registrar registered{touch_kind()};

}  // namespace
}  // namespace syncstorm::tests
