// The fault kinds and their backends. See faults.hpp; the step ops are in steps.hpp.
#include "injectors/faults.hpp"

#include "injectors/detail/fault_support.hpp"
#include "injectors/fault_kind.hpp"

#include "injectors/command.hpp"
#include "injectors/net_faults.hpp"
#include "labstack/lab.hpp"
#include "labstack/lab_state.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

namespace syncstorm::injectors {
namespace detail {

using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

int signal_number(const std::string& name) {
  if (name == "SIGTERM") return SIGTERM;
  if (name == "SIGINT") return SIGINT;
  if (name == "SIGQUIT") return SIGQUIT;
  return SIGKILL;
}

std::string sanitize(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return o;
}

const lab_facts& need_lab(const fault_env& env, const std::string& what) {
  if (!env.lab)
    throw fault_error(
        what + ": found no lab in this run; expected target.lab (or a pid, pidfile, container or selector target)");
  return *env.lab;
}

std::string kube_current_context() {
  auto r = run_command({"kubectl", "config", "current-context"}, 15s);
  if (!r.ok()) throw fault_error("kubectl config current-context: " + r.error);
  std::string c = r.output;
  while (!c.empty() && (c.back() == '\n' || c.back() == ' ')) c.pop_back();
  return c;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

std::vector<std::string> concat(std::vector<std::string> a, std::initializer_list<std::string> b) {
  for (const auto& x : b) a.push_back(x);
  return a;
}

bool has_glob(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

resolved resolve(const fault_entry& f, int occ, const fault_env& env, const std::string& default_pick_for_many) {
  const json& t = f.target;
  resolved r;
  json pick = t.value("pick", json());
  std::uint64_t seed = occurrence_seed(env.seed, f.name, occ);
  std::vector<std::string> candidates;
  std::string default_pick = "all";
  if (t.contains("pods")) {
    const auto& lab = need_lab(env, "target.pods");
    r.backend = "lab";
    r.key = "lab-" + lab.id;
    if (t["pods"].is_string()) {
      std::string g = t["pods"];
      for (const auto& p : lab.pods)
        if (glob_match(g, p)) candidates.push_back(p);
      if (candidates.empty())
        throw fault_error("target.pods: found " + json(g).dump() +
                          " matching no pod; expected a pod of the lab (pod-0 … pod-" +
                          std::to_string(lab.pods.size() - 1) + ")");
      if (has_glob(g)) default_pick = default_pick_for_many;
    } else {
      for (const auto& n : t["pods"]) {
        std::string name = n;
        if (std::find(lab.pods.begin(), lab.pods.end(), name) == lab.pods.end())
          throw fault_error("target.pods: found " + json(name).dump() + "; expected a pod of the lab (pod-0 … pod-" +
                            std::to_string(lab.pods.size() - 1) + ")");
        candidates.push_back(name);
      }
    }
  } else if (t.contains("role")) {
    std::string role = t["role"];
    if (role == "clients") {
      r.backend = "clients";
      if (env.dry_run && !env.clients)
        candidates = {"<the terminals of the run>"};
      else if (!env.clients)
        throw fault_error(
            "target.role: found \"clients\" but no load model with terminals runs; expected a terminal load");
      else
        candidates = env.clients->clients();
      if (candidates.empty()) throw fault_error("target.role: found \"clients\" but no terminal exists yet");
      default_pick = default_pick_for_many;
    } else {
      const auto& lab = need_lab(env, "target.role");
      r.backend = "lab";
      r.key = "lab-" + lab.id;
      if (role == "db-primary")
        candidates = {lab.primary};
      else if (role == "lb")
        candidates = {"lb"};
      else if (role == "db-replica") {
        if (!lab.replica)
          throw fault_error(
              "target.role: found \"db-replica\" but the lab has no replica; expected target.lab.replica true");
        candidates = {*lab.replica};
      }
    }
  } else if (t.contains("pid") || t.contains("pidfile")) {
    r.backend = "local";
    if (t.contains("pid")) {
      candidates = {std::to_string(t["pid"].get<long>())};
      r.key = "pid-" + candidates[0];
      std::string why = refuse_pid_target(candidates[0], env.safety);
      if (!why.empty()) throw fault_error("target.pid: " + why);
    } else {
      std::string pf = t["pidfile"];
      r.key = "pidfile-" + sanitize(pf);
      // A pid file of the run's own lab names a lab unit: syncstorm's own part, allowed.
      if (!own_lab_pidfile(pf)) {
        std::string why = refuse_pidfile(pf, env.safety);
        if (!why.empty()) throw fault_error("target.pidfile: " + why);
      }
      std::ifstream in(pf);
      long pid = 0;
      if (!(in >> pid) || pid <= 0) {
        if (env.dry_run)
          candidates = {"<pid in " + pf + ">"};
        else
          throw fault_error("target.pidfile: found no pid in " + pf + "; expected a file holding a process id");
      } else {
        candidates = {std::to_string(pid)};
      }
    }
    if (!env.dry_run || candidates[0].front() != '<') {
      std::string why = refuse_pid(static_cast<pid_t>(std::stol(candidates[0])));
      if (!why.empty()) throw fault_error("target: " + why);
    }
  } else if (t.contains("container")) {
    r.backend = "docker";
    std::string why = refuse_docker_host(env.safety);
    if (!why.empty()) throw fault_error("target.container: " + why);
    std::string c = t["container"];
    r.key = "docker-" + sanitize(c);
    if (std::string why = refuse_container(c, env.safety); !why.empty()) throw fault_error("target.container: " + why);
    if (has_glob(c)) {
      default_pick = default_pick_for_many;
      if (env.dry_run) {
        candidates = {"<containers matching " + c + ">"};
      } else {
        auto out = run_command({"docker", "ps", "--format", "{{.Names}}"}, 30s);
        if (!out.ok()) throw fault_error("target.container: " + out.error);
        for (auto& n : words(out.output))
          if (glob_match(c, n)) candidates.push_back(n);
        if (candidates.empty())
          throw fault_error("target.container: found " + json(c).dump() +
                            " matching no running container; expected a container name or glob");
      }
    } else {
      candidates = {c};
    }
  } else if (t.contains("selector")) {
    r.backend = "kubectl";
    const json& sel = t["selector"];
    // An empty selector matches every pod of the namespace (`-l ""`), and `rollout restart` then
    // restarts every deployment in it: refused here as well as by validation.
    if (!sel.contains("labels") || !sel["labels"].is_object() || sel["labels"].empty())
      throw fault_error(
          "target.selector.labels: found none; expected at least one label (an empty selector matches every pod of the namespace)");
    std::string ctx = sel.value("context", "");
    if (ctx.empty()) ctx = kube_current_context();
    std::string why = refuse_context(ctx, env.safety);
    if (!why.empty()) throw fault_error("target.selector.context: " + why);
    std::string ns = sel.value("namespace", "default");
    why = refuse_namespace(ctx, ns, env.safety);
    if (!why.empty()) throw fault_error("target.selector.namespace: " + why);
    r.kubectl = {"kubectl", "--context", ctx, "-n", ns};
    for (const auto& [k, v] : sel["labels"].items())
      r.selector += (r.selector.empty() ? "" : ",") + k + "=" + v.get<std::string>();
    r.key = "kube-" + sanitize(ctx) + "-" + sanitize(ns);
    default_pick = default_pick_for_many;
    if (env.dry_run) {
      candidates = {"<pods matching " + r.selector + ">"};
    } else {
      auto argv = concat(r.kubectl, {"get", "pods", "-l", r.selector, "-o", "jsonpath={.items[*].metadata.name}"});
      auto out = run_command(argv, 30s);
      if (!out.ok()) throw fault_error("target.selector: " + out.error);
      candidates = words(out.output);
      if (candidates.empty())
        throw fault_error("target.selector: found no pod with labels " + r.selector + " in " + ns + " (context " + ctx +
                          ")");
    }
  } else {
    throw fault_error("target: found none of pods, role, pid, pidfile, container, selector");
  }
  if (env.dry_run && !candidates.empty() && candidates[0].front() == '<') {
    r.names = candidates;
    return r;
  }
  r.names = pick_targets(candidates, pick, default_pick, seed);
  if (r.backend == "docker")
    for (const auto& n : r.names)
      if (std::string why = refuse_container(n, env.safety); !why.empty())
        throw fault_error("target.container: " + why);
  if (r.backend == "local" || r.backend == "docker" || r.backend == "kubectl")
    if (std::string why = refuse_target_count(r.names.size(), env.safety); !why.empty())
      throw fault_error("target: " + why);
  return r;
}

bool own_lab_path(const std::string& path) {
  std::error_code ec;
  fs::path real = fs::weakly_canonical(fs::absolute(path), ec);
  if (ec) return false;
  fs::path root = fs::weakly_canonical(lab::labs_root(), ec);
  if (ec) return false;
  auto rel = real.lexically_relative(root);
  if (rel.empty() || rel.begin() == rel.end()) return false;
  std::string first = rel.begin()->string();
  if (!first.starts_with("lab-") || first.size() < 5) return false;
  std::string id = first.substr(4);
  if (id.size() > 8 || id.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789") != std::string::npos) return false;
  return fs::exists(lab::state_path_of(id), ec);
}

bool own_lab_pidfile(const std::string& pidfile) { return lab_unit_of_pidfile(pidfile) && own_lab_path(pidfile); }

lab_facts::proc unit_proc(const lab_facts& lab, const std::string& unit, bool dry) {
  auto it = lab.units.find(unit);
  if (it == lab.units.end() || it->second.pid <= 0) {
    if (dry || lab.planned) return {};
    throw fault_error(unit + ": not running now (nothing to act on)");
  }
  return it->second;
}

json signal_step(long pid, unsigned long long start, bool group, int sig, const std::string& sig_name,
                 const std::string& what) {
  return {{"op", "signal"},          {"pid", pid},  {"start_time", start}, {"group", group}, {"signal", sig},
          {"signal_name", sig_name}, {"what", what}};
}

json cmd(std::vector<std::string> argv, json extra) {
  json s = {{"op", "command"}, {"argv", argv}};
  for (auto& [k, v] : extra.items()) s[k] = v;
  return s;
}

std::vector<std::string> exec_prefix(const resolved& r, const std::string& name) {
  if (r.backend == "docker") return {"docker", "exec", "--", name};
  return concat(r.kubectl, {"exec", name, "--"});
}

void lab_kill_steps(prepared_fault& p, const lab_facts& lab, const std::vector<std::string>& units, int sig,
                    const std::string& sig_name, bool restart, bool dry) {
  for (const auto& u : units) {
    auto pr = unit_proc(lab, u, dry);
    p.targets.push_back({{"backend", "lab"}, {"name", u}, {"lab", lab.id}, {"pid", pr.pid}});
    p.apply.push_back({{"op", "lab_kill"},
                       {"lab", lab.id},
                       {"unit", u},
                       {"signal", sig},
                       {"signal_name", sig_name},
                       {"restart", restart}});
    p.undo.push_back(
        {{"op", "lab_start_unit"}, {"lab", lab.id}, {"unit", u}, {"after_pid", pr.pid}, {"wait_ms", 90000}});
    if (pr.pid > 0)
      p.verify.push_back({{"op", "proc_gone"}, {"pid", pr.pid}, {"start_time", pr.start_time}, {"what", u}});
  }
  p.heals = restart;
}

step_result check_applied(const json& v) {
  std::string op = v.value("op", "");
  if (op == "proc_gone") {
    if (same_process(v["pid"].get<pid_t>(), v["start_time"].get<unsigned long long>()))
      return {false, v.value("what", "") + " (pid " + std::to_string(v["pid"].get<long>()) + ") is still alive", {}};
    return {true, {}, "gone"};
  }
  if (op == "proc_stopped") {
    auto p = read_proc(v["pid"].get<pid_t>());
    if (!p || p->start_time != v["start_time"].get<unsigned long long>())
      return {false, v.value("what", "") + ": the process is gone", {}};
    if (p->state != 'T' && p->state != 't')
      return {false,
              v.value("what", "") + " (pid " + std::to_string(v["pid"].get<long>()) + ") is not stopped (state " +
                  std::string(1, p->state) + ")",
              {}};
    return {true, {}, "stopped"};
  }
  if (op == "file_allocated") {
    struct stat st {};
    std::string path = v["path"];
    if (::stat(path.c_str(), &st) != 0) return {false, path + " does not exist", {}};
    auto want = v["bytes"].get<std::int64_t>();
    if (st.st_blocks * 512 < want * 99 / 100)
      return {false,
              path + " holds " + std::to_string(st.st_blocks * 512) + " bytes; expected " + std::to_string(want),
              {}};
    return {true, {}, "allocated"};
  }
  if (op == "lab_primary") {
    try {
      auto l = lab::lab::attach(v["lab"].get<std::string>());
      if (l.primary_unit() != v["unit"].get<std::string>())
        return {false, "primary is " + l.primary_unit() + ", not " + v["unit"].get<std::string>(), {}};
      return {true, {}, "promoted"};
    } catch (const std::exception& e) {
      return {false, e.what(), {}};
    }
  }
  if (op == "command") {
    auto r = run_command(v["argv"].get<std::vector<std::string>>(), 30s);
    if (!r.ok()) return {false, r.error, {}};
    if (r.output.find(v["expect"].get<std::string>()) == std::string::npos)
      return {false,
              command_line(v["argv"]) + ": found \"" + r.output.substr(0, r.output.find('\n')) + "\"; expected \"" +
                  v["expect"].get<std::string>() + "\"",
              {}};
    return {true, {}, "verified"};
  }
  return {true, {}, "nothing to check"};
}

}  // namespace detail

using namespace detail;

lab_facts lab_facts::of(const lab::lab& l) {
  lab_facts f;
  f.id = l.id();
  f.dir = l.dir();
  json st = l.status();
  for (const auto& p : l.pods()) f.pods.push_back(p.name);
  f.primary = l.primary_unit();
  f.replica = l.replica_unit();
  const json units = st.value("units", json::object());
  for (auto& [name, u] : units.items()) {
    if (!u.is_object()) continue;
    long pid = u.value("pid", 0L);
    if (pid <= 0) continue;
    auto pi = read_proc(static_cast<pid_t>(pid));
    if (pi) f.units[name] = {pid, pi->start_time};
  }
  const json db = st.value("db", json::object());
  const json instances = db.is_object() ? db.value("instances", json::object()) : json::object();
  for (auto& [name, d] : instances.items())
    if (d.is_object()) f.data_dirs[name] = d.value("data_dir", "");
  return f;
}

lab_facts lab_facts::from_scenario(const json& t) {
  lab_facts f;
  f.planned = true;
  f.id = "<lab id>";
  f.dir = "/var/tmp/syncstorm/lab-<id>";
  int pods = t.value("pods", 2);
  for (int i = 0; i < pods; ++i) f.pods.push_back("pod-" + std::to_string(i));
  f.primary = "db-0";
  if (t.value("replica", false)) f.replica = "db-1";
  f.data_dirs["db-0"] = f.dir + "/db-0/data";
  if (t.contains("id")) {
    // A running lab (target.lab.id): its id, and its pods and databases when its state file is
    // there to read (nothing is contacted for a dry run).
    f.id = t["id"].get<std::string>();
    try {
      auto l = lab::lab::attach(f.id);
      f.dir = l.dir();
      f.pods.clear();
      for (const auto& p : l.pods()) f.pods.push_back(p.name);
      json db = l.state().value("db", json::object());
      f.primary = db.value("primary", f.primary);
      f.replica = db.contains("replica") && db["replica"].is_string()
                      ? std::optional<std::string>(db["replica"].get<std::string>())
                      : std::nullopt;
      f.data_dirs.clear();
      const json instances = db.value("instances", json::object());  // named: items() would outlive a temporary
      for (auto& [name, d] : instances.items()) f.data_dirs[name] = d.value("data_dir", "");
    } catch (const std::exception&) {
      f.dir = "/var/tmp/syncstorm/lab-" + f.id;
    }
  }
  return f;
}

prepared_fault prepare_fault(const fault_entry& f, int occurrence, const fault_env& env) {
  prepared_fault p;
  p.name = f.name;
  p.kind = f.kind;
  p.occurrence = occurrence;
  p.id = f.name + "#" + std::to_string(occurrence);
  const fault_kind* k = find_fault_kind(f.kind);
  if (!k || !k->prepare) throw fault_error(f.kind + ": not a fault kind the injectors implement");
  k->prepare(p, f, env);
  if (p.target_keys.empty() && env.lab) p.target_keys = {"lab-" + env.lab->id};
  return p;
}

std::vector<std::string> scenario_target_keys(const scenario& s) {
  std::vector<std::string> keys;
  for (const auto& f : s.faults) {
    const json& t = f.target;
    if (t.contains("pid"))
      keys.push_back("pid-" + std::to_string(t["pid"].get<long>()));
    else if (t.contains("pidfile"))
      keys.push_back("pidfile-" + sanitize(t["pidfile"].get<std::string>()));
    else if (t.contains("container"))
      keys.push_back("docker-" + sanitize(t["container"].get<std::string>()));
    else if (t.contains("selector")) {
      const json& sel = t["selector"];
      keys.push_back("kube-" + sanitize(sel.value("context", "current")) + "-" +
                     sanitize(sel.value("namespace", "default")));
    } else if (const fault_kind* k = find_fault_kind(f.kind); k && k->target_keys) {
      k->target_keys(f, keys);
    }
    // A lab target is a lab this run starts: no earlier run can have left faults on it (a lab
    // fault's key names its lab, "lab-<id>", for `revert` and the reaper). A running lab the
    // run attaches to (target.lab.id) is another matter: a crashed run may have left faults on
    // it, and two runs on it at once would undo each other's.
  }
  if (s.target.contains("lab") && s.target["lab"].is_object() && s.target["lab"].contains("id") && !s.faults.empty())
    keys.push_back("lab-" + s.target["lab"]["id"].get<std::string>());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  return keys;
}

std::vector<std::string> refuse_scenario_targets(const scenario& s, const safety_policy& policy) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i < s.faults.size(); ++i) {
    const fault_entry& f = s.faults[i];
    const json& t = f.target;
    const std::string at = "faults[" + std::to_string(i) + "]";
    auto refuse = [&](const std::string& path, const std::string& why) {
      if (!why.empty()) out.push_back(at + path + ": " + why);
    };
    if (t.contains("pid") && t["pid"].is_number_integer()) {
      refuse(".target.pid", refuse_pid_target(std::to_string(t["pid"].get<long>()), policy));
    } else if (t.contains("pidfile") && t["pidfile"].is_string()) {
      std::string pf = t["pidfile"];
      if (!own_lab_pidfile(pf)) refuse(".target.pidfile", refuse_pidfile(pf, policy));
    } else if (t.contains("container") && t["container"].is_string()) {
      refuse(".target.container", refuse_docker_host(policy));
      refuse(".target.container", refuse_container(t["container"], policy));
    } else if (t.contains("selector") && t["selector"].is_object()) {
      const json& sel = t["selector"];
      std::string ctx = sel.value("context", "");
      if (!ctx.empty()) {
        refuse(".target.selector.context", refuse_context(ctx, policy));
        refuse(".target.selector.namespace", refuse_namespace(ctx, sel.value("namespace", "default"), policy));
      } else if (policy.kube_contexts.empty()) {
        refuse(".target.selector",
               "the current kubectl context: refused: the allowlist holds no context (allow one with --allow-context, "
               "$SYNCSTORM_ALLOW_CONTEXTS or \"contexts\" in the allow file)");
      }
    }
    const bool external =
        t.contains("pid") || t.contains("pidfile") || t.contains("container") || t.contains("selector");
    if (external && t.contains("pick") && t["pick"].is_object() && t["pick"].contains("n") &&
        t["pick"]["n"].is_number_unsigned())
      refuse(".target.pick", refuse_target_count(t["pick"]["n"].get<std::size_t>(), policy));
    // disk_fill on a local directory (not the lab's "db", not inside a container or pod).
    if (f.kind == "disk_fill" && !external && f.fields.contains("volume") && f.fields["volume"].is_string()) {
      std::string vol = f.fields["volume"];
      if (vol != "db" && !vol.empty() && vol.front() == '/' && !own_lab_path(vol))
        refuse(".volume", refuse_path(vol, policy));
    }
  }
  if (s.capture.is_object() && s.capture.contains("interfaces") && s.capture["interfaces"].is_array())
    for (std::size_t i = 0; i < s.capture["interfaces"].size(); ++i)
      if (s.capture["interfaces"][i].is_string())
        if (std::string why = refuse_interface(s.capture["interfaces"][i], policy); !why.empty())
          out.push_back("capture.interfaces[" + std::to_string(i) + "]: " + why);
  return out;
}

step_result injector::apply() {
  step_result all{true, {}, {}};
  long killed = 0;
  for (auto step : p_.apply) {
    if (step.value("after_pid", json()) == "killed") step["after_pid"] = killed;
    step_result r = run_step(step, false, clients_);
    if (r.pid) killed = r.pid;
    if (!r.ok) return r;
    all.did += (all.did.empty() ? "" : "; ") + r.did;
  }
  return all;
}

step_result injector::verify() {
  step_result all{true, {}, {}};
  for (const auto& v : p_.verify) {
    step_result r;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    do {
      r = check_applied(v);
      if (r.ok) break;
      std::this_thread::sleep_for(50ms);
    } while (std::chrono::steady_clock::now() < deadline);
    if (!r.ok) return r;
  }
  return all;
}

step_result injector::revert() { return revert_steps(json(p_.undo), clients_); }

step_result injector::verify_reverted() {
  step_result r = verify_reverted_steps(json(p_.undo));
  if (!r.ok || !clients_) return r;
  for (const auto& t : p_.targets) {
    if (t.value("backend", "") != "clients") continue;
    std::string c = t["name"];
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (!clients_->recovered(c) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(50ms);
    if (!clients_->recovered(c)) return {false, "terminal " + c + " did not recover within 60 s", {}};
  }
  return r;
}

step_result revert_steps(const json& undo, client_control* clients) {
  step_result all{true, {}, {}};
  for (const auto& s : undo) {
    step_result r = run_step(s, true, clients);
    if (!r.ok) {
      all.ok = false;
      all.error += (all.error.empty() ? "" : "; ") + r.error;
    } else {
      all.did += (all.did.empty() ? "" : "; ") + r.did;
    }
  }
  return all;
}

step_result verify_reverted_steps(const json& undo) {
  step_result all{true, {}, {}};
  for (const auto& s : undo) {
    step_result r;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    do {
      r = check_undone(s);
      if (r.ok) break;
      std::this_thread::sleep_for(100ms);
    } while (std::chrono::steady_clock::now() < deadline);
    if (!r.ok) {
      all.ok = false;
      all.error += (all.error.empty() ? "" : "; ") + r.error;
    }
  }
  return all;
}

}  // namespace syncstorm::injectors
