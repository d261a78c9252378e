// See fault_runner.hpp.
#include "injectors/fault_runner.hpp"

#include "injectors/fault_kind.hpp"

#include "injectors/net_faults.hpp"

#include "injectors/ledger.hpp"
#include "injectors/reaper.hpp"
#include "labstack/lab.hpp"

#include <unistd.h>

#include <algorithm>

namespace syncstorm::injectors {

using json = nlohmann::json;
using steady = std::chrono::steady_clock;

namespace {
json seconds_or_null(const std::optional<std::int64_t>& us) {
  return us ? json(static_cast<double>(*us) / 1e6) : json(nullptr);
}
}  // namespace

json fault_record::to_report() const {
  json j = {{"name", name},
            {"kind", kind},
            {"targets", targets},
            {"scheduled_at", static_cast<double>(scheduled_us) / 1e6},
            {"applied_at", seconds_or_null(applied_us)},
            {"reverted_at", seconds_or_null(reverted_us)},
            {"recovery_s", nullptr},
            {"ready_s", nullptr},
            {"detect_s", nullptr},
            {"inflight_ops", nullptr},
            {"occurrence", occurrence}};
  if (!error.empty()) j["error"] = error;
  return j;
}

struct fault_runner::occurrence {
  planned_fault pf;
  const fault_entry* fe = nullptr;
  fault_record rec;
  std::thread th;
};

fault_runner::fault_runner(fault_runner_config c) : c_(std::move(c)) {}

fault_runner::~fault_runner() { stop_and_revert(); }

std::int64_t fault_runner::now_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - start_).count();
}

void fault_runner::event(const std::string& name, json fields) {
  if (c_.on_event) c_.on_event(name, std::move(fields));
}

void start_run_ledger(const std::string& run_dir) {
  ledger l = ledger::create(run_dir + "/ledger.jsonl");
  index_add_run(run_dir);  // before the reaper, which acts only on runs the index lists
  auto me = read_proc(::getpid());
  l.append(
      {{"step", "controller"}, {"pid", static_cast<long>(::getpid())}, {"start_time", me ? me->start_time : 0ULL}});
  start_reaper(run_dir);
}

void end_run_ledger(const std::string& run_dir) {
  ledger l(run_dir + "/ledger.jsonl");
  ledger_view v = read_ledger(l.path());
  l.append({{"step", "run_end"}, {"unreverted", v.unreverted().size()}});
  if (v.unreverted().empty()) index_remove(run_dir);
}

void fault_runner::start(steady::time_point run_start) {
  start_ = run_start;
  start_mono_us_ = mono_now_us() - now_us();
  // The controller creates the ledger (never adopts one found there) unless the run's proxy
  // started it already.
  ledger_ = c_.ledger_started ? std::make_unique<ledger>(c_.run_dir + "/ledger.jsonl")
                              : std::make_unique<ledger>(ledger::create(c_.run_dir + "/ledger.jsonl"));
  if (!c_.ledger_started) index_add_run(c_.run_dir);
  if (!c_.ledger_started) {
    auto me = read_proc(::getpid());
    ledger_->append({{"step", "controller"},
                     {"pid", static_cast<long>(::getpid())},
                     {"start_time", me ? me->start_time : 0ULL},
                     {"run_start_mono_us", start_mono_us_}});
    if (c_.start_reaper) start_reaper(c_.run_dir);
  }
  report_network_preflight();
  scheduler_ = std::thread([this] { scheduler(); });
  if (c_.start_reaper || c_.ledger_started) reaper_watch_ = std::thread([this] { watch_reaper(); });
}

// The reaper is what reverts when this process dies: if it died first (killed, OOM), faults
// applied from then on would have no undo outside this process. Started again; said once.
bool fault_runner::ensure_reaper() {
  if (!(c_.start_reaper || c_.ledger_started) || reaper_alive(c_.run_dir)) return true;
  std::string why;
  try {
    start_reaper(c_.run_dir);
  } catch (const std::exception& e) {
    why = e.what();
  }
  int n;
  {
    std::lock_guard lock(mu_);
    n = ++reapers_restarted_;
  }
  const std::string line =
      why.empty() ? "the reaper (" + c_.run_dir + "/reaper.log) was gone; started another"
                  : "the reaper (" + c_.run_dir + "/reaper.log) was gone and could not be started again: " + why;
  if (c_.log) c_.log(line);
  event("reaper_restarted", {{"restarts", n}, {"ok", why.empty()}, {"error", why}});
  return why.empty();
}

void fault_runner::watch_reaper() {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; })) {
    lock.unlock();
    ensure_reaper();
    lock.lock();
  }
}

// Network faults: say plainly that tc netem is absent (the fault proxy does the job) and list
// partition rules that dead runs left behind (tagged syncstorm:<run>; `syncstorm revert` on that
// run removes them).
void fault_runner::report_network_preflight() {
  bool network = false, partition = false;
  for (const auto& f : c_.s->faults) {
    const auto settings = settings_or_parse(f);
    const auto* net = dynamic_cast<const network_settings*>(settings.get());
    network = network || net;
    partition = partition || (net && net->action == net_action::partition);
  }
  if (!network) return;
  if (std::string why = netem_unavailable_reason(); !why.empty() && c_.log) c_.log(why);
  if (!partition) return;
  auto left = leftover_partition_rules(c_.env.run_tag);
  for (const auto& line : left)
    if (c_.log)
      c_.log("leftover partition rule of another run (run `syncstorm revert` on it, or iptables -D): " + line);
  if (!left.empty()) event("leftover_rules", {{"rules", left}});
}

void fault_runner::scheduler() {
  for (const auto& pf : c_.p->faults) {
    std::unique_lock lock(mu_);
    cv_.wait_until(lock, start_ + std::chrono::microseconds(pf.at_us), [&] { return stopping_; });
    if (stopping_) return;
    auto fe = std::find_if(c_.s->faults.begin(), c_.s->faults.end(), [&](auto& f) { return f.name == pf.name; });
    if (fe == c_.s->faults.end()) continue;
    auto o = std::make_unique<occurrence>();
    o->pf = pf;
    o->fe = &*fe;
    o->rec.id = pf.name + "#" + std::to_string(pf.occurrence);
    o->rec.name = pf.name;
    o->rec.kind = pf.kind;
    o->rec.occurrence = pf.occurrence;
    o->rec.scheduled_us = pf.at_us;
    occurrence* raw = o.get();
    occ_.push_back(std::move(o));
    raw->th = std::thread([this, raw] { run_occurrence(*raw); });
  }
}

void fault_runner::run_occurrence(occurrence& o) {
  fault_record& rec = o.rec;
  auto fail = [&](const std::string& step, const std::string& why) {
    std::lock_guard lock(mu_);
    if (!rec.failed) rec.error = step + ": " + why;
    rec.failed = true;
  };
  fault_env env = c_.env;
  prepared_fault p;
  try {
    if (!c_.lab_id.empty()) env.lab = lab_facts::of(lab::lab::attach(c_.lab_id));
    p = prepare_fault(*o.fe, o.pf.occurrence, env);
  } catch (const std::exception& e) {
    fail("resolve", e.what());
    if (c_.log) c_.log("fault " + rec.id + " (" + rec.kind + "): not applied: " + rec.error);
    event("fault_failed",
          {{"fault", rec.name}, {"id", rec.id}, {"kind", rec.kind}, {"step", "resolve"}, {"error", rec.error}});
    return;
  }
  {
    std::lock_guard lock(mu_);
    rec.targets = p.targets;
    if (!p.target_keys.empty()) index_add(p.target_keys, c_.run_dir);
  }
  // Nothing is applied without a reaper to undo it if this process dies.
  if (!ensure_reaper()) {
    fail("reaper", "no reaper running for " + c_.run_dir + " and none could be started: not applied");
    event("fault_failed",
          {{"fault", rec.name}, {"id", rec.id}, {"kind", rec.kind}, {"step", "reaper"}, {"error", rec.error}});
    return;
  }
  std::int64_t ttl_rel = o.pf.revert_us ? *o.pf.revert_us + 30'000'000 : c_.s->duration_us + 120'000'000;
  try {
    ledger_->append({{"step", "apply"},
                     {"phase", "intent"},
                     {"id", rec.id},
                     {"fault", rec.name},
                     {"kind", rec.kind},
                     {"occurrence", rec.occurrence},
                     {"targets", p.targets},
                     {"undo", p.undo},
                     {"apply", p.apply},
                     {"ttl_mono_us", start_mono_us_ + ttl_rel},
                     {"target_keys", p.target_keys},
                     {"scheduled_at", static_cast<double>(rec.scheduled_us) / 1e6},
                     {"irreversible", p.irreversible}});
  } catch (const std::exception& e) {
    fail("ledger", e.what());
    event("fault_failed",
          {{"fault", rec.name}, {"id", rec.id}, {"kind", rec.kind}, {"step", "ledger"}, {"error", rec.error}});
    return;
  }
  injector inj(p, env.clients);
  std::int64_t applying = now_us();
  step_result a = inj.apply();
  ledger_->append(
      {{"step", "apply"}, {"phase", "done"}, {"id", rec.id}, {"ok", a.ok}, {"error", a.error}, {"did", a.did}});
  bool applied = a.ok;
  if (!a.ok) {
    fail("apply", a.error);
    if (c_.log) c_.log("fault " + rec.id + " (" + rec.kind + "): apply failed: " + a.error);
    event("fault_failed",
          {{"fault", rec.name}, {"id", rec.id}, {"kind", rec.kind}, {"step", "apply"}, {"error", a.error}});
  } else {
    {
      std::lock_guard lock(mu_);
      rec.applied_us = applying;
    }
    step_result v = inj.verify();
    ledger_->append({{"step", "verify"}, {"id", rec.id}, {"ok", v.ok}, {"error", v.error}});
    if (!v.ok) {
      fail("verify", v.error);
      event("fault_failed",
            {{"fault", rec.name}, {"id", rec.id}, {"kind", rec.kind}, {"step", "verify"}, {"error", v.error}});
    }
    if (c_.log)
      c_.log("fault " + rec.id + " (" + rec.kind + ") applied at " + std::to_string(applying / 1000) + " ms: " + a.did);
    event("fault_applied", {{"fault", rec.name},
                            {"id", rec.id},
                            {"kind", rec.kind},
                            {"targets", p.targets},
                            {"scheduled_s", static_cast<double>(rec.scheduled_us) / 1e6},
                            {"applied_s", static_cast<double>(applying) / 1e6},
                            {"did", a.did}});
    // Hold the fault: until its `for` ends, or (no `for`) until the run stops unless it heals.
    std::unique_lock lock(mu_);
    if (o.pf.revert_us)
      cv_.wait_until(lock, start_ + std::chrono::microseconds(*o.pf.revert_us), [&] { return stopping_; });
    else if (!p.heals && v.ok)
      cv_.wait(lock, [&] { return stopping_; });
  }
  // Undo always happens, also after a failed apply (it may have half-taken; undo is idempotent).
  // A ledger that cannot be written (its disk full beyond the reserve) never stops the revert.
  ledger_->try_append({{"step", "revert"}, {"phase", "intent"}, {"id", rec.id}});
  step_result r = inj.revert();
  step_result vr = r.ok ? inj.verify_reverted() : r;
  if (r.ok) ledger_->try_append({{"step", "verify_reverted"}, {"id", rec.id}, {"ok", vr.ok}, {"error", vr.error}});
  if (!ledger_->try_append({{"step", "revert"},
                            {"phase", "done"},
                            {"id", rec.id},
                            {"ok", vr.ok},
                            {"error", vr.error},
                            {"did", r.did}}) &&
      c_.log)
    c_.log("fault " + rec.id + ": reverted, but the ledger " + ledger_->path() +
           " could not record it (a later revert finds nothing to undo)");
  if (!vr.ok) {
    fail("revert", vr.error);
    if (c_.log) c_.log("fault " + rec.id + " (" + rec.kind + "): revert failed: " + vr.error);
    event("fault_failed",
          {{"fault", rec.name}, {"id", rec.id}, {"kind", rec.kind}, {"step", "revert"}, {"error", vr.error}});
    return;
  }
  if (!applied) return;
  std::int64_t t = now_us();
  {
    std::lock_guard lock(mu_);
    rec.reverted_us = t;
  }
  if (c_.log)
    c_.log("fault " + rec.id + " (" + rec.kind + ") reverted at " + std::to_string(t / 1000) + " ms" +
           (r.did.empty() ? "" : ": " + r.did));
  event("fault_reverted", {{"fault", rec.name},
                           {"id", rec.id},
                           {"kind", rec.kind},
                           {"reverted_s", static_cast<double>(t) / 1e6},
                           {"did", r.did}});
}

void fault_runner::stop_and_revert() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  cv_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
  if (reaper_watch_.joinable()) reaper_watch_.join();
  for (auto& o : occ_)
    if (o->th.joinable()) o->th.join();
  if (!ledger_ || !c_.end_ledger) return;
  ledger_view v = read_ledger(ledger_->path());
  try {
    ledger_->append({{"step", "run_end"}, {"unreverted", v.unreverted().size()}});
  } catch (const std::exception&) {
  }
  if (v.unreverted().empty()) index_remove(c_.run_dir);
}

std::vector<fault_record> fault_runner::records() const {
  std::lock_guard lock(mu_);
  std::vector<fault_record> out;
  for (const auto& o : occ_) out.push_back(o->rec);
  std::stable_sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.scheduled_us < b.scheduled_us; });
  return out;
}

std::string fault_runner::first_error() const {
  for (const auto& r : records())
    if (r.failed) return "fault " + r.id + " (" + r.kind + ") " + r.error;
  return {};
}

}  // namespace syncstorm::injectors
