// The fault kinds and their backends. See faults.hpp; the step ops are in steps.hpp.
#include "injectors/faults.hpp"

#include "injectors/command.hpp"
#include "injectors/net_faults.hpp"
#include "labstack/lab.hpp"

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
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

int signal_number(const std::string& name) {
  if (name == "SIGTERM") return SIGTERM;
  if (name == "SIGINT") return SIGINT;
  if (name == "SIGQUIT") return SIGQUIT;
  return SIGKILL;
}

// A resolved and picked target set.
struct resolved {
  std::string backend;                 // lab, local, docker, kubectl, clients
  std::vector<std::string> names;      // units, pids, containers, pods, clients
  std::vector<std::string> kubectl;    // kubectl --context C -n NS
  std::string selector;                // k=v,k2=v2
  std::string key;                     // for the unreverted index
};

std::string sanitize(const std::string& s) {
  std::string o;
  for (char c : s) o += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-') ? c : '_';
  return o;
}

const lab_facts& need_lab(const fault_env& env, const std::string& what) {
  if (!env.lab) throw fault_error(what + ": found no lab in this run; expected target.lab (or a pid, pidfile, container or selector target)");
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
      for (const auto& p : lab.pods) if (glob_match(g, p)) candidates.push_back(p);
      if (candidates.empty()) throw fault_error("target.pods: found " + json(g).dump() + " matching no pod; expected a pod of the lab (pod-0 … pod-" + std::to_string(lab.pods.size() - 1) + ")");
      if (has_glob(g)) default_pick = default_pick_for_many;
    } else {
      for (const auto& n : t["pods"]) {
        std::string name = n;
        if (std::find(lab.pods.begin(), lab.pods.end(), name) == lab.pods.end())
          throw fault_error("target.pods: found " + json(name).dump() + "; expected a pod of the lab (pod-0 … pod-" + std::to_string(lab.pods.size() - 1) + ")");
        candidates.push_back(name);
      }
    }
  } else if (t.contains("role")) {
    std::string role = t["role"];
    if (role == "clients") {
      r.backend = "clients";
      if (env.dry_run && !env.clients) candidates = {"<the terminals of the run>"};
      else if (!env.clients) throw fault_error("target.role: found \"clients\" but no load model with terminals runs; expected a terminal load");
      else candidates = env.clients->clients();
      if (candidates.empty()) throw fault_error("target.role: found \"clients\" but no terminal exists yet");
      default_pick = default_pick_for_many;
    } else {
      const auto& lab = need_lab(env, "target.role");
      r.backend = "lab";
      r.key = "lab-" + lab.id;
      if (role == "db-primary") candidates = {lab.primary};
      else if (role == "lb") candidates = {"lb"};
      else if (role == "db-replica") {
        if (!lab.replica) throw fault_error("target.role: found \"db-replica\" but the lab has no replica; expected target.lab.replica true");
        candidates = {*lab.replica};
      }
    }
  } else if (t.contains("pid") || t.contains("pidfile")) {
    r.backend = "local";
    if (t.contains("pid")) {
      candidates = {std::to_string(t["pid"].get<long>())};
      r.key = "pid-" + candidates[0];
    } else {
      std::string pf = t["pidfile"];
      r.key = "pidfile-" + sanitize(pf);
      std::ifstream in(pf);
      long pid = 0;
      if (!(in >> pid) || pid <= 0) {
        if (env.dry_run) candidates = {"<pid in " + pf + ">"};
        else throw fault_error("target.pidfile: found no pid in " + pf + "; expected a file holding a process id");
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
    if (has_glob(c)) {
      default_pick = default_pick_for_many;
      if (env.dry_run) {
        candidates = {"<containers matching " + c + ">"};
      } else {
        auto out = run_command({"docker", "ps", "--format", "{{.Names}}"}, 30s);
        if (!out.ok()) throw fault_error("target.container: " + out.error);
        for (auto& n : words(out.output)) if (glob_match(c, n)) candidates.push_back(n);
        if (candidates.empty()) throw fault_error("target.container: found " + json(c).dump() + " matching no running container; expected a container name or glob");
      }
    } else {
      candidates = {c};
    }
  } else if (t.contains("selector")) {
    r.backend = "kubectl";
    const json& sel = t["selector"];
    std::string ctx = sel.value("context", "");
    if (ctx.empty()) ctx = kube_current_context();
    std::string why = refuse_context(ctx, env.safety);
    if (!why.empty()) throw fault_error("target.selector.context: " + why);
    std::string ns = sel.value("namespace", "default");
    r.kubectl = {"kubectl", "--context", ctx, "-n", ns};
    for (const auto& [k, v] : sel["labels"].items()) r.selector += (r.selector.empty() ? "" : ",") + k + "=" + v.get<std::string>();
    r.key = "kube-" + sanitize(ctx) + "-" + sanitize(ns);
    default_pick = default_pick_for_many;
    if (env.dry_run) {
      candidates = {"<pods matching " + r.selector + ">"};
    } else {
      auto argv = concat(r.kubectl, {"get", "pods", "-l", r.selector, "-o", "jsonpath={.items[*].metadata.name}"});
      auto out = run_command(argv, 30s);
      if (!out.ok()) throw fault_error("target.selector: " + out.error);
      candidates = words(out.output);
      if (candidates.empty()) throw fault_error("target.selector: found no pod with labels " + r.selector + " in " + ns + " (context " + ctx + ")");
    }
  } else {
    throw fault_error("target: found none of pods, role, pid, pidfile, container, selector");
  }
  if (env.dry_run && !candidates.empty() && candidates[0].front() == '<') {
    r.names = candidates;
    return r;
  }
  r.names = pick_targets(candidates, pick, default_pick, seed);
  return r;
}

lab_facts::proc unit_proc(const lab_facts& lab, const std::string& unit, bool dry) {
  auto it = lab.units.find(unit);
  if (it == lab.units.end() || it->second.pid <= 0) {
    if (dry || lab.planned) return {};
    throw fault_error(unit + ": not running now (nothing to act on)");
  }
  return it->second;
}

json signal_step(long pid, unsigned long long start, bool group, int sig, const std::string& sig_name, const std::string& what) {
  return {{"op", "signal"}, {"pid", pid}, {"start_time", start}, {"group", group}, {"signal", sig}, {"signal_name", sig_name}, {"what", what}};
}

json cmd(std::vector<std::string> argv, json extra = json::object()) {
  json s = {{"op", "command"}, {"argv", argv}};
  for (auto& [k, v] : extra.items()) s[k] = v;
  return s;
}

std::vector<std::string> exec_prefix(const resolved& r, const std::string& name) {
  if (r.backend == "docker") return {"docker", "exec", name};
  return concat(r.kubectl, {"exec", name, "--"});
}

// Bytes to allocate on a volume of `total` bytes with `avail` free so that it is filled to
// `percent` or leaves `leave` bytes.
std::int64_t fill_bytes(const fault_entry& f, std::uint64_t total, std::uint64_t avail, const std::string& where) {
  std::int64_t bytes;
  if (f.fields.contains("leave")) {
    std::uint64_t leave = size_value(f.fields["leave"]);
    bytes = static_cast<std::int64_t>(avail) - static_cast<std::int64_t>(leave);
    if (bytes <= 0) throw fault_error("disk_fill: " + where + " has " + std::to_string(avail) + " bytes free, already at most leave (" + std::to_string(leave) + ")");
  } else {
    double pc = percent_value(f.fields["percent"]);
    std::uint64_t used = total - avail;
    bytes = static_cast<std::int64_t>(static_cast<double>(total) * pc / 100.0) - static_cast<std::int64_t>(used);
    if (bytes <= 0) throw fault_error("disk_fill: " + where + " is already " + std::to_string(100.0 * static_cast<double>(used) / static_cast<double>(total)) + "% full");
  }
  return bytes;
}

void lab_kill_steps(prepared_fault& p, const lab_facts& lab, const std::vector<std::string>& units, int sig, const std::string& sig_name,
                    bool restart, bool dry) {
  for (const auto& u : units) {
    auto pr = unit_proc(lab, u, dry);
    p.targets.push_back({{"backend", "lab"}, {"name", u}, {"lab", lab.id}, {"pid", pr.pid}});
    p.apply.push_back({{"op", "lab_kill"}, {"lab", lab.id}, {"unit", u}, {"signal", sig}, {"signal_name", sig_name}, {"restart", restart}});
    p.undo.push_back({{"op", "lab_start_unit"}, {"lab", lab.id}, {"unit", u}, {"after_pid", pr.pid}, {"wait_ms", 90000}});
    if (pr.pid > 0) p.verify.push_back({{"op", "proc_gone"}, {"pid", pr.pid}, {"start_time", pr.start_time}, {"what", u}});
  }
  p.heals = restart;
}

// A pidfile under a lab's run/ directory names a lab unit: the lab's no-restart marker applies.
std::optional<std::pair<std::string, std::string>> lab_unit_of_pidfile(const std::string& pidfile) {
  static const std::regex re(R"(^(.*/lab-([a-z0-9]{1,8}))/run/([A-Za-z0-9_.-]+)\.pid$)");
  std::smatch m;
  std::string abs = fs::absolute(pidfile).lexically_normal().string();
  if (!std::regex_match(abs, m, re)) return std::nullopt;
  return std::make_pair(m[2].str(), m[3].str());
}

void kill_fault(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  std::string sig_name = f.fields.value("signal", "SIGKILL");
  int sig = signal_number(sig_name);
  bool restart = f.target.value("restart", true);
  resolved r = resolve(f, p.occurrence, env, "one");
  p.target_keys = {r.key};
  if (r.backend == "clients") throw fault_error("kill: found target.role \"clients\"; expected a client_crash fault for terminals");
  if (r.backend == "lab") {
    lab_kill_steps(p, *env.lab, r.names, sig, sig_name, restart, env.dry_run);
  } else if (r.backend == "local") {
    for (const auto& n : r.names) {
      long pid = n.front() == '<' ? 0 : std::stol(n);
      auto pi = pid ? read_proc(static_cast<pid_t>(pid)) : std::nullopt;
      unsigned long long st = pi ? pi->start_time : 0;
      p.targets.push_back({{"backend", "local"}, {"name", n}, {"pid", pid}, {"comm", pi ? pi->comm : ""}});
      std::optional<std::pair<std::string, std::string>> lab_unit;
      if (f.target.contains("pidfile")) lab_unit = lab_unit_of_pidfile(f.target["pidfile"]);
      if (lab_unit && !restart) p.apply.push_back({{"op", "marker"}, {"path", fs::path(f.target["pidfile"].get<std::string>()).parent_path().parent_path() / "norestart" / lab_unit->second}});
      p.apply.push_back(signal_step(pid, st, false, sig, sig_name, pi ? pi->comm : n));
      if (pid) p.verify.push_back({{"op", "proc_gone"}, {"pid", pid}, {"start_time", st}, {"what", n}});
      if (lab_unit) {
        // A crash between the marker and the signal must not leave the marker for a later death.
        if (!restart) p.undo.push_back({{"op", "remove_file"}, {"path", fs::path(f.target["pidfile"].get<std::string>()).parent_path().parent_path() / "norestart" / lab_unit->second}});
        p.undo.push_back({{"op", "lab_start_unit"}, {"lab", lab_unit->first}, {"unit", lab_unit->second}, {"after_pid", pid}, {"wait_ms", 90000}});
        p.heals = restart;
      } else {
        p.irreversible = true;  // nothing restarts an arbitrary process
        p.heals = true;
      }
    }
  } else if (r.backend == "docker") {
    for (const auto& c : r.names) {
      p.targets.push_back({{"backend", "docker"}, {"name", c}});
      p.apply.push_back(cmd({"docker", "kill", "--signal", sig_name, c}));
      p.undo.push_back(cmd({"docker", "start", c}, {{"ok_if", {"No such container"}},
                                                   {"verify", {{"argv", {"docker", "inspect", "-f", "{{.State.Running}}", c}}, {"expect", "true"}, {"gone_ok", "No such"}}}}));
    }
    p.heals = restart;
  } else {
    for (const auto& pod : r.names) {
      p.targets.push_back({{"backend", "kubectl"}, {"name", pod}, {"selector", r.selector}});
      auto argv = concat(r.kubectl, {"delete", "pod", pod, "--wait=false"});
      if (sig == SIGKILL) argv = concat(argv, {"--grace-period=0", "--force"});
      p.apply.push_back(cmd(argv));
    }
    p.undo.push_back(cmd(concat(r.kubectl, {"wait", "--for=condition=Ready", "pod", "-l", r.selector, "--timeout=120s"}), {{"timeout_ms", 130000}}));
    p.heals = true;
  }
}

void pause_fault(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  resolved r = resolve(f, p.occurrence, env, "one");
  p.target_keys = {r.key};
  if (r.backend == "clients") throw fault_error("pause: found target.role \"clients\"; expected a lab, process, container or pod target");
  if (r.backend == "lab" || r.backend == "local") {
    for (const auto& n : r.names) {
      long pid = 0;
      unsigned long long st = 0;
      if (r.backend == "lab") {
        auto pr = unit_proc(*env.lab, n, env.dry_run);
        pid = pr.pid;
        st = pr.start_time;
      } else if (n.front() != '<') {
        pid = std::stol(n);
        auto pi = read_proc(static_cast<pid_t>(pid));
        st = pi ? pi->start_time : 0;
      }
      // A lab unit is its own process group (PostgreSQL's backends, HAProxy's workers): stop all.
      bool group = r.backend == "lab";
      p.targets.push_back({{"backend", r.backend}, {"name", n}, {"pid", pid}});
      p.apply.push_back(signal_step(pid, st, group, SIGSTOP, "SIGSTOP", n));
      p.undo.push_back(signal_step(pid, st, group, SIGCONT, "SIGCONT", n));
      if (pid) p.verify.push_back({{"op", "proc_stopped"}, {"pid", pid}, {"start_time", st}, {"what", n}});
    }
  } else if (r.backend == "docker") {
    for (const auto& c : r.names) {
      p.targets.push_back({{"backend", "docker"}, {"name", c}});
      p.apply.push_back(cmd({"docker", "pause", c}));
      p.verify.push_back({{"op", "command"}, {"argv", {"docker", "inspect", "-f", "{{.State.Paused}}", c}}, {"expect", "true"}});
      p.undo.push_back(cmd({"docker", "unpause", c}, {{"ok_if", {"is not paused", "No such container"}},
                                                     {"verify", {{"argv", {"docker", "inspect", "-f", "{{.State.Paused}}", c}}, {"expect", "false"}, {"gone_ok", "No such"}}}}));
    }
  } else {
    for (const auto& pod : r.names) {
      p.targets.push_back({{"backend", "kubectl"}, {"name", pod}, {"selector", r.selector}});
      p.apply.push_back(cmd(concat(r.kubectl, {"exec", pod, "--", "kill", "-STOP", "1"})));
      p.undo.push_back(cmd(concat(r.kubectl, {"exec", pod, "--", "kill", "-CONT", "1"}), {{"ok_if", {"NotFound", "not found"}}}));
    }
  }
}

void rolling_restart_fault(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  std::string sig_name = f.fields.value("signal", "SIGTERM");
  int sig = signal_number(sig_name);
  std::int64_t wait_ms = f.fields.contains("wait_ready") ? duration_us(f.fields["wait_ready"]) / 1000 : 60000;
  resolved r = resolve(f, p.occurrence, env, "all");
  p.target_keys = {r.key};
  p.heals = true;
  if (r.backend == "lab") {
    for (const auto& u : r.names) {
      auto pr = unit_proc(*env.lab, u, env.dry_run);
      p.targets.push_back({{"backend", "lab"}, {"name", u}, {"lab", env.lab->id}, {"pid", pr.pid}});
      p.apply.push_back({{"op", "lab_kill"}, {"lab", env.lab->id}, {"unit", u}, {"signal", sig}, {"signal_name", sig_name}, {"restart", true}});
      p.apply.push_back({{"op", "lab_start_unit"}, {"lab", env.lab->id}, {"unit", u}, {"after_pid", "killed"}, {"wait_ms", wait_ms}});
      if (u != "lb" && !u.starts_with("db-")) p.apply.push_back({{"op", "lab_wait_lb_up"}, {"lab", env.lab->id}, {"unit", u}, {"wait_ms", wait_ms}});
      p.undo.push_back({{"op", "lab_start_unit"}, {"lab", env.lab->id}, {"unit", u}, {"wait_ms", wait_ms}});
    }
  } else if (r.backend == "docker") {
    for (const auto& c : r.names) {
      p.targets.push_back({{"backend", "docker"}, {"name", c}});
      p.apply.push_back(cmd({"docker", "restart", c}, {{"timeout_ms", wait_ms + 30000}}));
      p.undo.push_back(cmd({"docker", "start", c}, {{"ok_if", {"No such container"}}}));
    }
  } else if (r.backend == "kubectl") {
    p.targets.push_back({{"backend", "kubectl"}, {"name", "deployments matching " + r.selector}, {"selector", r.selector}});
    std::string timeout = "--timeout=" + std::to_string(std::max<std::int64_t>(1, wait_ms / 1000)) + "s";
    p.apply.push_back(cmd(concat(r.kubectl, {"rollout", "restart", "deployment", "-l", r.selector})));
    p.apply.push_back(cmd(concat(r.kubectl, {"rollout", "status", "deployment", "-l", r.selector, timeout}), {{"timeout_ms", wait_ms + 30000}}));
    p.undo.push_back(cmd(concat(r.kubectl, {"rollout", "status", "deployment", "-l", r.selector, timeout}), {{"timeout_ms", wait_ms + 30000}}));
  } else {
    throw fault_error("rolling_restart: found a " + r.backend + " target; expected pods, a container or a selector");
  }
}

void disk_fill_fault(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  std::string volume = f.fields.value("volume", "");
  std::string file = ".syncstorm-fill-" + sanitize(env.run_tag) + "-" + sanitize(p.id);
  if (f.target.contains("container") || f.target.contains("selector")) {
    resolved r = resolve(f, p.occurrence, env, "one");
    p.target_keys = {r.key};
    if (volume.empty() || volume.front() != '/') throw fault_error("disk_fill.volume: found " + json(volume).dump() + "; expected an absolute path inside the container");
    for (const auto& n : r.names) {
      auto pre = exec_prefix(r, n);
      std::string path = (fs::path(volume) / file).string();
      std::int64_t bytes = -1;
      if (!env.dry_run) {
        auto argv = concat(pre, {"df", "-P", "-B1", volume});
        auto out = run_command(argv, 30s);
        if (!out.ok()) throw fault_error("disk_fill: " + out.error);
        auto lines = out.output;
        auto nl = lines.find('\n');
        auto w = words(nl == std::string::npos ? "" : lines.substr(nl + 1));
        if (w.size() < 4) throw fault_error("disk_fill: " + command_line(argv) + ": found \"" + lines + "\"; expected df -P output");
        bytes = fill_bytes(f, std::stoull(w[1]), std::stoull(w[3]), n + ":" + volume);
      }
      p.targets.push_back({{"backend", r.backend}, {"name", n}, {"volume", volume}, {"file", path}, {"bytes", bytes}});
      auto fill = pre;
      fill.insert(fill.end(), {"fallocate", "-l", bytes >= 0 ? std::to_string(bytes) : std::string("<computed from df at fire time>"), path});
      p.apply.push_back(cmd(fill));
      auto rm = pre;
      rm.insert(rm.end(), {"rm", "-f", path});
      auto test = pre;
      test.insert(test.end(), {"test", "!", "-e", path});
      p.undo.push_back(cmd(rm, {{"ok_if", {"No such container", "NotFound"}}, {"verify", {{"argv", test}, {"expect", ""}, {"gone_ok", "No such"}}}}));
    }
    return;
  }
  std::string dir;
  if (volume.empty() || volume == "db") {
    const auto& lab = need_lab(env, "disk_fill.volume \"db\"");
    auto it = lab.data_dirs.find(lab.primary);
    dir = it != lab.data_dirs.end() ? it->second : lab.dir + "/" + lab.primary + "/data";
    p.target_keys = {"lab-" + lab.id};
    p.targets.push_back({{"backend", "lab"}, {"name", lab.primary}, {"lab", lab.id}, {"volume", dir}});
  } else {
    dir = volume;
    p.target_keys = {"path-" + sanitize(fs::absolute(dir).lexically_normal().string())};
    p.targets.push_back({{"backend", "local"}, {"name", dir}, {"volume", dir}});
  }
  std::string path = (fs::path(dir) / file).string();
  std::int64_t bytes = -1;
  struct statvfs sv{};
  if (::statvfs(dir.c_str(), &sv) == 0) {
    std::uint64_t total = static_cast<std::uint64_t>(sv.f_blocks) * sv.f_frsize, avail = static_cast<std::uint64_t>(sv.f_bavail) * sv.f_frsize;
    if (!env.dry_run) bytes = fill_bytes(f, total, avail, dir);
  } else if (!env.dry_run) {
    throw fault_error("disk_fill.volume: found " + json(dir).dump() + " that cannot be read (" + std::strerror(errno) + "); expected a directory on the volume to fill");
  }
  p.targets.back()["file"] = path;
  p.targets.back()["bytes"] = bytes;
  p.apply.push_back({{"op", "fill"}, {"path", path}, {"bytes", bytes}});
  p.verify.push_back({{"op", "file_allocated"}, {"path", path}, {"bytes", bytes}});
  p.undo.push_back({{"op", "remove_file"}, {"path", path}});
}

void db_failover_fault(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  p.heals = true;
  p.irreversible = true;  // the promoted replica stays primary; bringing the old one back is repair
  if (f.target.contains("container") || f.target.contains("selector") || f.target.contains("pid") || f.target.contains("pidfile")) {
    // A remote stack: kill its primary; the user's HA (e.g. Patroni) promotes; recovery is measured.
    fault_entry k = f;
    k.fields["signal"] = "SIGKILL";
    k.target["restart"] = true;
    kill_fault(p, k, env);
    p.undo.clear();
    p.heals = true;
    return;
  }
  const auto& lab = need_lab(env, "db_failover");
  if (!lab.replica && !lab.planned) throw fault_error("db_failover: found no replica in the lab (already promoted?); expected target.lab.replica true");
  p.target_keys = {"lab-" + lab.id};
  p.targets.push_back({{"backend", "lab"}, {"name", lab.primary}, {"lab", lab.id}, {"promote", lab.replica.value_or("db-1")}});
  p.apply.push_back({{"op", "lab_promote"}, {"lab", lab.id}});
  p.verify.push_back({{"op", "lab_primary"}, {"lab", lab.id}, {"unit", lab.replica.value_or("db-1")}});
}

void client_fault(prepared_fault& p, const fault_entry& f, const fault_env& env) {
  resolved r = resolve(f, p.occurrence, env, "one");
  if (r.backend != "clients") throw fault_error(f.kind + ": found a " + r.backend + " target; expected target.role \"clients\"");
  p.heals = true;
  std::uint64_t seed = occurrence_seed(env.seed, f.name, p.occurrence);
  for (const auto& c : r.names) {
    json t = {{"backend", "clients"}, {"name", c}};
    if (env.clients && c.front() != '<') t["journal"] = env.clients->journal_path(c);
    p.targets.push_back(t);
    if (f.kind == "client_crash") p.apply.push_back({{"op", "client_crash"}, {"client", c}});
    else p.apply.push_back({{"op", "journal_corrupt"}, {"client", c}, {"bytes", f.fields.value("bytes", 16)}, {"seed", seed}});
  }
}

step_result check_applied(const json& v) {
  std::string op = v.value("op", "");
  if (op == "proc_gone") {
    if (same_process(v["pid"].get<pid_t>(), v["start_time"].get<unsigned long long>())) return {false, v.value("what", "") + " (pid " + std::to_string(v["pid"].get<long>()) + ") is still alive", {}};
    return {true, {}, "gone"};
  }
  if (op == "proc_stopped") {
    auto p = read_proc(v["pid"].get<pid_t>());
    if (!p || p->start_time != v["start_time"].get<unsigned long long>()) return {false, v.value("what", "") + ": the process is gone", {}};
    if (p->state != 'T' && p->state != 't') return {false, v.value("what", "") + " (pid " + std::to_string(v["pid"].get<long>()) + ") is not stopped (state " + std::string(1, p->state) + ")", {}};
    return {true, {}, "stopped"};
  }
  if (op == "file_allocated") {
    struct stat st{};
    std::string path = v["path"];
    if (::stat(path.c_str(), &st) != 0) return {false, path + " does not exist", {}};
    auto want = v["bytes"].get<std::int64_t>();
    if (st.st_blocks * 512 < want * 99 / 100) return {false, path + " holds " + std::to_string(st.st_blocks * 512) + " bytes; expected " + std::to_string(want), {}};
    return {true, {}, "allocated"};
  }
  if (op == "lab_primary") {
    try {
      auto l = lab::lab::attach(v["lab"].get<std::string>());
      if (l.primary_unit() != v["unit"].get<std::string>()) return {false, "primary is " + l.primary_unit() + ", not " + v["unit"].get<std::string>(), {}};
      return {true, {}, "promoted"};
    } catch (const std::exception& e) {
      return {false, e.what(), {}};
    }
  }
  if (op == "command") {
    auto r = run_command(v["argv"].get<std::vector<std::string>>(), 30s);
    if (!r.ok()) return {false, r.error, {}};
    if (r.output.find(v["expect"].get<std::string>()) == std::string::npos)
      return {false, command_line(v["argv"]) + ": found \"" + r.output.substr(0, r.output.find('\n')) + "\"; expected \"" + v["expect"].get<std::string>() + "\"", {}};
    return {true, {}, "verified"};
  }
  return {true, {}, "nothing to check"};
}

}  // namespace

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
      f.replica = db.contains("replica") && db["replica"].is_string() ? std::optional<std::string>(db["replica"].get<std::string>()) : std::nullopt;
      f.data_dirs.clear();
      for (auto& [name, d] : db.value("instances", json::object()).items()) f.data_dirs[name] = d.value("data_dir", "");
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
  if (f.kind == "kill") kill_fault(p, f, env);
  else if (f.kind == "pause") pause_fault(p, f, env);
  else if (f.kind == "rolling_restart") rolling_restart_fault(p, f, env);
  else if (f.kind == "disk_fill") disk_fill_fault(p, f, env);
  else if (f.kind == "db_failover") db_failover_fault(p, f, env);
  else if (f.kind == "client_crash" || f.kind == "journal_corrupt") client_fault(p, f, env);
  else if (is_network_kind(f.kind)) network_fault(p, f, env);
  else throw fault_error(f.kind + ": not a fault kind the injectors implement");
  if (p.target_keys.empty() && env.lab) p.target_keys = {"lab-" + env.lab->id};
  return p;
}

std::vector<std::string> scenario_target_keys(const scenario& s) {
  std::vector<std::string> keys;
  for (const auto& f : s.faults) {
    const json& t = f.target;
    if (t.contains("pid")) keys.push_back("pid-" + std::to_string(t["pid"].get<long>()));
    else if (t.contains("pidfile")) keys.push_back("pidfile-" + sanitize(t["pidfile"].get<std::string>()));
    else if (t.contains("container")) keys.push_back("docker-" + sanitize(t["container"].get<std::string>()));
    else if (t.contains("selector")) {
      const json& sel = t["selector"];
      keys.push_back("kube-" + sanitize(sel.value("context", "current")) + "-" + sanitize(sel.value("namespace", "default")));
    } else if (f.kind == "disk_fill" && f.fields.contains("volume") && f.fields["volume"] != "db") {
      keys.push_back("path-" + sanitize(fs::absolute(f.fields["volume"].get<std::string>()).lexically_normal().string()));
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
