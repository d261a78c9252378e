// The load models a run can build, one registration per model. A model's file
// (engine/models/<name>.cpp) declares its keys, defaults, typed settings, metrics, checks and
// factory in one model_kind and registers it here; register_model also hands the contract part
// (keys, metrics, checks, parse) to the scenario registry, so validation, `syncstorm schema`
// and loading know the model. The engine asks only the registry: it never compares model names.
//
// What a built load offers the engine besides the load_model the pool runs is load_instance:
// its drain, the connections it will hold, the op records for the audit, the fanout judgements,
// the clients the client faults act on. Each has a neutral default, so a model implements only
// what it has.
//
// Threading: registration happens before any run (static initialisation or register_builtins),
// single-threaded; the registry is read-only afterwards.
#pragma once

#include "core/audit.hpp"
#include "core/scenario.hpp"
#include "core/timeline.hpp"

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace syncstorm::loadgen {
class load_model;
}
namespace syncstorm::injectors {
class client_control;
}

namespace syncstorm::engine {

// What a load is built against in a run.
struct load_context {
  const scenario* s = nullptr;
  const nlohmann::json* target = nullptr;  // as the models reach it (the run proxy's URLs with target.proxy)
  std::string http_base, ws_base;          // the lab's load balancer; empty for an endpoints target
  std::string run_dir, run_tag;
  std::uint64_t seed = 1;  // this entry's: the scenario's seed + its index
  std::string where;       // "scenario.load[i]"
  std::function<void(const std::string& event, const nlohmann::json& fields)> on_event;  // thread-safe
};

// What --dry-run knows: placeholders for what only a run can tell.
struct plan_context {
  const scenario* s = nullptr;
  std::string http_base;  // the target's HTTP base, or "http://<lab load balancer>"
  std::size_t threads = 1;
};

// After the drain, what fanout-like loads judged: changes never delivered and dropped sockets.
struct delivery_totals {
  bool any = false;  // some load delivers changes (fanout.missing is measured)
  std::uint64_t missing = 0;
  std::vector<ws_drop> drops;
};

class load_instance {
 public:
  virtual ~load_instance() = default;
  virtual loadgen::load_model& model() = 0;
  // How long stopping may wait for it to finish what it holds.
  virtual std::int64_t drain_us() const { return 0; }
  // Its drain starts only when the other loads' writers ended theirs (fanout views wait for
  // the final records), so the run's drain bound is the writers' plus its own.
  virtual bool drains_after_writers() const { return false; }
  // Sockets it will hold at its peak over `threads` workers (the limits preflight).
  virtual std::size_t planned_connections(std::size_t threads) const {
    (void)threads;
    return 0;
  }
  // It keeps client-side op records: the audit reads the stack back for them.
  virtual bool audited() const { return false; }
  // Its ops and views, after the pool stopped.
  virtual void collect(audit_input& in) const { (void)in; }
  virtual void collect_delivery(delivery_totals& t) const { (void)t; }
  // The clients the client faults act on, named "<load>/<client>"; null when it has none.
  virtual injectors::client_control* clients() { return nullptr; }
};

struct model_kind {
  load_model_info info;  // the contract: keys, metrics, checks, parse (see core/scenario.hpp)
  // Builds the entry for a run; throws std::exception with one line on a setup failure.
  std::function<std::unique_ptr<load_instance>(const load_entry& entry, const load_context& ctx)> build;
  // --dry-run's lines for the entry (each "  load <name>: …\n").
  std::function<std::string(const load_entry& entry, const plan_context& ctx)> describe;
};

void register_model(model_kind kind);
const model_kind* find_model(const std::string& name);

// The built-in models (engine/models/) and fault kinds (injectors/). Idempotent.
void register_builtins();

// A registration from a file's static initialiser: `const model_registrar r{model_kind{…}};`.
struct model_registrar {
  explicit model_registrar(model_kind kind) { register_model(std::move(kind)); }
};

}  // namespace syncstorm::engine
