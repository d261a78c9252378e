// See loads.hpp.
#include "engine/loads.hpp"

#include <algorithm>
#include <stdexcept>

namespace syncstorm::engine {

// The clients of every load that has some, as one client_control (names are "<load>/<client>",
// unique across loads).
class load_stage::all_clients final : public injectors::client_control {
 public:
  explicit all_clients(std::vector<injectors::client_control*> parts) : parts_(std::move(parts)) {}
  std::vector<std::string> clients() const override {
    std::vector<std::string> out;
    for (auto* p : parts_)
      for (auto& c : p->clients()) out.push_back(std::move(c));
    return out;
  }
  void crash(const std::string& client) override { owner(client).crash(client); }
  void corrupt_journal(const std::string& client, int bytes, std::uint64_t seed) override {
    owner(client).corrupt_journal(client, bytes, seed);
  }
  bool recovered(const std::string& client) const override { return owner(client).recovered(client); }
  std::string journal_path(const std::string& client) const override { return owner(client).journal_path(client); }

 private:
  injectors::client_control& owner(const std::string& client) const {
    for (auto* p : parts_) {
      auto names = p->clients();
      if (std::find(names.begin(), names.end(), client) != names.end()) return *p;
    }
    throw std::invalid_argument("no terminal " + client);
  }
  std::vector<injectors::client_control*> parts_;
};

void load_stage::build(const scenario& s, const load_context& base) {
  for (std::size_t i = 0; i < s.loads.size(); ++i) {
    const auto& l = s.loads[i];
    const model_kind* kind = find_model(l.model);
    if (!kind || !kind->build)
      throw std::invalid_argument("load " + l.name + ": model " + l.model + " is not implemented in this build");
    load_context ctx = base;
    ctx.seed = s.seed + i;
    ctx.where = "scenario.load[" + std::to_string(i) + "]";
    loads_.push_back(kind->build(l, ctx));
  }
  std::vector<injectors::client_control*> parts;
  for (auto& l : loads_)
    if (auto* c = l->clients()) parts.push_back(c);
  if (!parts.empty()) clients_ = std::make_shared<all_clients>(std::move(parts));
}

std::vector<loadgen::load_model*> load_stage::models() const {
  std::vector<loadgen::load_model*> out;
  for (const auto& l : loads_) out.push_back(&l->model());
  return out;
}

std::int64_t load_stage::drain_us() const {
  std::int64_t writers = 0, after = 0;
  for (const auto& l : loads_) {
    std::int64_t& d = l->drains_after_writers() ? after : writers;
    d = std::max(d, l->drain_us());
  }
  return writers + after;  // the views' drain begins when the writers' ended
}

std::size_t load_stage::planned_connections(std::size_t threads) const {
  std::size_t n = 0;
  for (const auto& l : loads_) n += l->planned_connections(threads);
  return n;
}

bool load_stage::audited() const {
  return std::any_of(loads_.begin(), loads_.end(), [](const auto& l) { return l->audited(); });
}

injectors::client_control* load_stage::clients() { return clients_.get(); }

void load_stage::collect(audit_input& in) const {
  for (const auto& l : loads_) l->collect(in);
}

delivery_totals load_stage::delivery() const {
  delivery_totals t;
  for (const auto& l : loads_) l->collect_delivery(t);
  return t;
}

}  // namespace syncstorm::engine
