// Fuzzes the fault ledger's replay (injectors/ledger.cpp, read_ledger): RUN_DIR/ledger.jsonl
// as the reaper and `syncstorm revert` read it after the controller is gone, and the undo steps
// they then run: for each occurrence in `unreverted()`, its `intent["undo"]`
// (injectors/reaper.cpp, revert_from_ledger). The file is an in-memory file (memfd) named by its
// /proc/self/fd path, so the real reading code runs.
//
// The property asserted (what the replay is meant to guarantee, ledger.hpp): every undo step the
// replay yields belongs to an occurrence the ledger records the run as having started to apply,
// and comes from that record: an occurrence exists only from an `apply` `intent` line (written
// before anything is touched) with its id; its undo steps are the latest such intent's, or those
// an `apply` `done` line for the same id wrote after that intent ("the apply may have learned
// more"); and an occurrence whose latest intent is followed by a `revert` `done` with ok true
// yields nothing. This is checked against an independent replay of the lines below.
//
// SYNCSTORM_FUZZ_LEDGER_CREATED=1 asserts more: an undo step that removes a file is yielded only
// when the ledger records the apply as done and ok (the file it removes is then one the apply
// created). It does not hold (see docs/architecture.md, "Fuzzing and sanitizers"): the replay
// yields an occurrence's undo whatever its apply recorded, by design (a half-taken apply must be
// undone), and a `fill` that failed because something was already at its path is "undone" by
// removing that something. This mode is there to reproduce it, not run in CI.
//
// Also a finding of this target, since fixed in read_ledger: fields were read with
// json::value<T>, which threw nlohmann::json::type_error for a line whose field had another type
// than the writers write ("ok": 1, "pid": "x", "id": 5; an uncaught exception in the reaper and in
// `syncstorm revert`), and converted a float in "pid", "start_time" or "ttl_mono_us" with a cast
// that is undefined when out of range. Such a line is now a bad line; the replay below reads the
// format the same way (a line is a record only with its fields of the writers' types), and any
// exception out of read_ledger is a finding (regression seeds: corpus/fuzz_ledger/known_*).
#include "core/json_limits.hpp"
#include "fuzz/fuzz_util.hpp"
#include "injectors/ledger.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <map>

namespace {

using namespace syncstorm;
using nlohmann::json;

bool env_flag(const char* name) {
  const char* e = std::getenv(name);
  return e && *e && std::string(e) != "0";
}
// The stricter property (see the top).
bool check_created() {
  static const bool on = env_flag("SYNCSTORM_FUZZ_LEDGER_CREATED");
  return on;
}

using memfile = fuzz::memfile;

// What the lines say about one occurrence, replayed independently of read_ledger.
struct recorded {
  std::vector<json> undo_sources;  // the latest intent's undo, then later apply-done undos
  bool reverted = false;           // a revert done ok:true after the latest intent
  bool applied_ok = false;         // an apply done ok:true after the latest intent
};

std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// A record has its fields of the types the writers give them (ledger.hpp's format): text for
// step, phase, id, fault, kind and error, integers for pid, start_time and ttl_mono_us, a
// boolean ok.
bool well_typed(const json& j) {
  for (const char* k : {"step", "phase", "id", "fault", "kind", "error"})
    if (auto it = j.find(k); it != j.end() && !it->is_string()) return false;
  for (const char* k : {"pid", "start_time", "ttl_mono_us"})
    if (auto it = j.find(k); it != j.end() && !it->is_number_integer()) return false;
  if (auto it = j.find("ok"); it != j.end() && !it->is_boolean()) return false;
  return true;
}

std::map<std::string, recorded> replay(std::string_view text) {
  std::map<std::string, recorded> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    const json j = parse_bounded(line);  // as read_ledger parses a line
    if (j.is_discarded() || !j.is_object() || !well_typed(j)) continue;
    const std::string step = text_of(j, "step"), phase = text_of(j, "phase"), id = text_of(j, "id");
    if (id.empty()) continue;
    const auto ok_it = j.find("ok");
    const bool ok = ok_it != j.end() && ok_it->is_boolean() && ok_it->get<bool>();
    if (step == "apply" && phase == "intent") {
      recorded& r = out[id];
      r = recorded{};
      r.undo_sources.push_back(j.contains("undo") ? j["undo"] : json::array());
      continue;
    }
    auto r = out.find(id);
    if (r == out.end()) continue;
    if (step == "apply" && phase == "done") {
      if (j.contains("undo")) r->second.undo_sources.push_back(j["undo"]);
      r->second.applied_ok = ok;
    } else if (step == "revert" && phase == "done" && ok) {
      r->second.reverted = true;
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const memfile file;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  file.write(text);
  const injectors::ledger_view v = injectors::read_ledger(file.path);  // nothing may escape it
  const auto lines = replay(text);
  for (const injectors::ledger_fault* f : v.unreverted()) {
    const json undo = f->intent.value("undo", json::array());  // as revert_from_ledger takes it
    auto r = lines.find(f->id);
    if (r == lines.end()) fuzz::violated("undo steps for " + f->id + ", which no apply intent names");
    if (undo.empty()) continue;
    if (r->second.reverted) fuzz::violated("undo steps for " + f->id + ", which the ledger records as reverted");
    bool from_record = false;
    for (const json& u : r->second.undo_sources) from_record = from_record || u == undo;
    if (!from_record) fuzz::violated("undo steps for " + f->id + " that none of its records lists: " + undo.dump());
    if (check_created() && !r->second.applied_ok && undo.is_array())
      for (const json& s : undo)
        if (s.is_object() && text_of(s, "op") == "remove_file")
          fuzz::violated("undo " + s.dump() + " for " + f->id +
                         ", whose apply the ledger does not record as done and ok");
  }
  return 0;
}
