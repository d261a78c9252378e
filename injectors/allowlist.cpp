// The operator's allowlist. See allowlist.hpp.
#include "injectors/allowlist.hpp"

#include "core/json_limits.hpp"
#include "injectors/targets.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace syncstorm::injectors {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// One kind of allowed target: its list in the policy, its flag, variable and file key.
struct kind_info {
  std::vector<std::string> safety_policy::*list;
  std::vector<std::string> allow_flags::*flag_list;
  const char* flag;  // --allow-pid
  const char* env;   // SYNCSTORM_ALLOW_PIDS
  const char* key;   // "pids"
};

constexpr kind_info kinds[] = {
    {&safety_policy::pids, &allow_flags::pids, "--allow-pid", "SYNCSTORM_ALLOW_PIDS", "pids"},
    {&safety_policy::pidfiles, &allow_flags::pidfiles, "--allow-pidfile", "SYNCSTORM_ALLOW_PIDFILES", "pidfiles"},
    {&safety_policy::containers, &allow_flags::containers, "--allow-container", "SYNCSTORM_ALLOW_CONTAINERS",
     "containers"},
    {&safety_policy::docker_hosts, &allow_flags::docker_hosts, "--allow-docker-host", "SYNCSTORM_ALLOW_DOCKER_HOSTS",
     "docker_hosts"},
    {&safety_policy::kube_contexts, &allow_flags::contexts, "--allow-context", "SYNCSTORM_ALLOW_CONTEXTS", "contexts"},
    {&safety_policy::namespaces, &allow_flags::namespaces, "--allow-namespace", "SYNCSTORM_ALLOW_NAMESPACES",
     "namespaces"},
    {&safety_policy::paths, &allow_flags::paths, "--allow-path", "SYNCSTORM_ALLOW_PATHS", "paths"},
    {&safety_policy::interfaces, &allow_flags::interfaces, "--allow-interface", "SYNCSTORM_ALLOW_INTERFACES",
     "interfaces"},
};

const kind_info& kind_of(std::vector<std::string> safety_policy::*list) {
  for (const auto& k : kinds)
    if (k.list == list) return k;
  return kinds[0];
}

std::vector<std::string> split_list(const std::string& v) {
  std::vector<std::string> out;
  std::stringstream ss(v);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == ' ') item.erase(item.begin());
    while (!item.empty() && item.back() == ' ') item.pop_back();
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

// An entry is a non-empty glob of printable characters; paths must be absolute.
std::string check_entry(const kind_info& k, const std::string& where, const std::string& v) {
  if (v.size() > 4096)
    return where + ": found an entry of " + std::to_string(v.size()) + " bytes; expected at most 4096";
  for (unsigned char c : v)
    if (c < 0x20 || c == 0x7f)
      return where + ": found " + json(v).dump() + " with a control character; expected a name or glob";
  if ((k.list == &safety_policy::paths || k.list == &safety_policy::pidfiles) && v.front() != '/')
    return where + ": found " + json(v).dump() + "; expected an absolute path";
  if (k.list == &safety_policy::pids && v.find_first_not_of("0123456789*?[]-") != std::string::npos)
    return where + ": found " + json(v).dump() + "; expected a process id (or a glob of digits)";
  return {};
}

void add(safety_policy& p, const kind_info& k, const std::string& where, const std::string& v,
         std::vector<std::string>& errors) {
  if (auto e = check_entry(k, where, v); !e.empty()) {
    errors.push_back(e);
    return;
  }
  auto& list = p.*(k.list);
  std::string entry = v;
  if (k.list == &safety_policy::paths && entry.size() > 1 && entry.back() == '/') entry.pop_back();
  if (std::find(list.begin(), list.end(), entry) == list.end()) list.push_back(entry);
}

std::optional<std::size_t> parse_cap(const std::string& where, const std::string& v, std::vector<std::string>& errors) {
  if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos && v.size() <= 6) {
    std::size_t n = std::stoul(v);
    if (n >= 1 && n <= 100000) return n;
  }
  errors.push_back(where + ": found " + json(v).dump() + "; expected a whole number from 1 to 100000");
  return std::nullopt;
}

// The allow file is trusted like sudoers: a regular file (not a symlink) owned by root or by this
// user, writable by nobody else.
void read_allow_file(safety_policy& p, const std::string& path, bool given, std::vector<std::string>& errors) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (given)
      errors.push_back("allow file " + path + ": found nothing (" + std::strerror(errno) +
                       "); expected a JSON allow file");
    return;
  }
  if (!S_ISREG(st.st_mode)) {
    errors.push_back("allow file " + path + ": found " + (S_ISLNK(st.st_mode) ? "a symbolic link" : "no regular file") +
                     "; expected a regular file");
    return;
  }
  if (st.st_uid != 0 && st.st_uid != ::geteuid()) {
    errors.push_back("allow file " + path + ": found owner uid " + std::to_string(st.st_uid) +
                     "; expected root or this user (uid " + std::to_string(::geteuid()) + ")");
    return;
  }
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    errors.push_back("allow file " + path + ": found it writable by group or others (mode " + [&] {
      char b[8];
      std::snprintf(b, sizeof b, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return std::string(b);
    }() + "); expected it writable by its owner alone (chmod go-w)");
    return;
  }
  if (st.st_size > (1 << 20)) {
    errors.push_back("allow file " + path + ": found " + std::to_string(st.st_size) + " bytes; expected at most 1 MiB");
    return;
  }
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  json doc = parse_bounded(ss.str());  // within the nesting bound (core/json_limits.hpp)
  if (doc.is_discarded() || !doc.is_object()) {
    errors.push_back("allow file " + path +
                     ": found no JSON object; expected {\"pids\": [...], \"containers\": [...], ...}");
    return;
  }
  p.sources.push_back("file " + path);
  for (const auto& [key, v] : doc.items()) {
    std::string where = "allow file " + path + ": " + key;
    if (key == "max_fault_targets") {
      if (v.is_number_unsigned() && v.get<std::uint64_t>() >= 1 && v.get<std::uint64_t>() <= 100000)
        p.max_targets = v.get<std::size_t>();
      else
        errors.push_back(where + ": found " + v.dump().substr(0, 40) + "; expected a whole number from 1 to 100000");
      continue;
    }
    const kind_info* k = nullptr;
    for (const auto& x : kinds)
      if (key == x.key) k = &x;
    if (!k) {
      errors.push_back(
          where +
          ": found an unknown key; expected pids, pidfiles, containers, docker_hosts, contexts, namespaces, paths, "
          "interfaces or max_fault_targets");
      continue;
    }
    if (!v.is_array()) {
      errors.push_back(where + ": found " + std::string(v.type_name()) + "; expected an array");
      continue;
    }
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::string w = where + "[" + std::to_string(i) + "]";
      if (v[i].is_string())
        add(p, *k, w, v[i].get<std::string>(), errors);
      else if (k->list == &safety_policy::pids && v[i].is_number_unsigned())
        add(p, *k, w, std::to_string(v[i].get<std::uint64_t>()), errors);
      else
        errors.push_back(w + ": found " + std::string(v[i].type_name()) + "; expected a string");
    }
  }
}

bool matches_any(const std::vector<std::string>& globs, const std::string& name) {
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) { return glob_match(g, name); });
}

// The value as a shell would need it after the flag.
std::string shell_word(const std::string& v) {
  if (!v.empty() && v.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._:@%+=,-") ==
                        std::string::npos)
    return v;
  std::string q = "'";
  for (char c : v) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string how_to_allow(const kind_info& k, const std::string& value) {
  return "allow it with " + std::string(k.flag) + " " + shell_word(value) + ", $" + k.env + " or \"" + k.key +
         "\" in the allow file";
}

}  // namespace

safety_policy operator_policy(const allow_flags& flags, std::vector<std::string>& errors) {
  safety_policy p;
  bool any_flag = false;
  for (const auto& k : kinds)
    for (const auto& v : flags.*(k.flag_list))
      for (const auto& item : split_list(v)) {
        add(p, k, k.flag, item, errors);
        any_flag = true;
      }
  if (flags.max_targets) {
    if (*flags.max_targets < 1 || *flags.max_targets > 100000)
      errors.push_back("--max-fault-targets: found " + std::to_string(*flags.max_targets) + "; expected 1 to 100000");
    else
      p.max_targets = *flags.max_targets;
    any_flag = true;
  }
  if (any_flag) p.sources.push_back("flags");
  for (const auto& k : kinds)
    if (const char* v = std::getenv(k.env); v && *v) {
      for (const auto& item : split_list(v)) add(p, k, std::string("$") + k.env, item, errors);
      p.sources.push_back(std::string("$") + k.env);
    }
  if (const char* v = std::getenv("SYNCSTORM_MAX_FAULT_TARGETS"); v && *v && !flags.max_targets) {
    if (auto n = parse_cap("$SYNCSTORM_MAX_FAULT_TARGETS", v, errors)) p.max_targets = *n;
    p.sources.push_back("$SYNCSTORM_MAX_FAULT_TARGETS");
  }
  if (!flags.file.empty())
    read_allow_file(p, flags.file, true, errors);
  else if (const char* f = std::getenv("SYNCSTORM_ALLOW_FILE"); f && *f)
    read_allow_file(p, f, true, errors);
  else
    read_allow_file(p, "/etc/syncstorm/allow.json", false, errors);
  return p;
}

void narrow_by_scenario(safety_policy& p, const nlohmann::json& document, std::vector<std::string>& errors) {
  if (!document.is_object() || !document.contains("safety") || !document["safety"].is_object()) return;
  const json& s = document["safety"];
  auto narrow = [&](const char* key, std::vector<std::string> safety_policy::*list) {
    if (!s.contains(key) || !s[key].is_array()) return;
    const kind_info& k = kind_of(list);
    std::vector<std::string> kept;
    for (std::size_t i = 0; i < s[key].size(); ++i) {
      if (!s[key][i].is_string()) continue;  // validation names it
      std::string v = s[key][i];
      if (!matches_any(p.*list, v)) {
        errors.push_back("safety." + std::string(key) + "[" + std::to_string(i) + "]: found " + json(v).dump() +
                         ", which the operator has not allowed; expected a value also given with " + k.flag + " or $" +
                         k.env + " (a scenario's safety keys only narrow the operator's allowlist)");
        continue;
      }
      kept.push_back(v);
    }
    p.*list = kept;
    p.narrowed = true;
  };
  narrow("allow_contexts", &safety_policy::kube_contexts);
  narrow("allow_docker_hosts", &safety_policy::docker_hosts);
}

nlohmann::json safety_policy::to_json() const {
  json allow = json::object();
  for (const auto& k : kinds) allow[k.key] = this->*(k.list);
  return {
      {"allow", allow}, {"max_fault_targets", max_targets}, {"sources", sources}, {"narrowed_by_scenario", narrowed}};
}

std::string refuse_pid_target(const std::string& pid, const safety_policy& p) {
  if (matches_any(p.pids, pid)) return {};
  return "pid " + pid + ": refused: not in the operator's allowlist (" +
         how_to_allow(kind_of(&safety_policy::pids), pid) + ")";
}

std::string refuse_pidfile(const std::string& path, const safety_policy& p) {
  std::string abs = fs::absolute(path).lexically_normal().string();
  if (matches_any(p.pidfiles, abs)) return {};
  return "pidfile " + abs + ": refused: not in the operator's allowlist (" +
         how_to_allow(kind_of(&safety_policy::pidfiles), abs) + ")";
}

std::string refuse_container(const std::string& name, const safety_policy& p) {
  if (matches_any(p.containers, name)) return {};
  return "container " + json(name).dump() + ": refused: not in the operator's allowlist (" +
         how_to_allow(kind_of(&safety_policy::containers), name) + ")";
}

std::string refuse_context(const std::string& context, const safety_policy& p) {
  if (matches_any(p.kube_contexts, context)) return {};
  return "kubectl context \"" + context + "\": refused: not in the allowlist (" +
         how_to_allow(kind_of(&safety_policy::kube_contexts), context) + ")";
}

std::string refuse_namespace(const std::string& context, const std::string& ns, const safety_policy& p) {
  if (matches_any(p.namespaces, ns) || matches_any(p.namespaces, context + "/" + ns)) return {};
  return "kubectl namespace \"" + ns + "\" (context " + context + "): refused: not in the allowlist (" +
         how_to_allow(kind_of(&safety_policy::namespaces), context + "/" + ns) + ")";
}

std::string refuse_path(const std::string& dir, const safety_policy& p) {
  // Symbolic links resolved: a link inside an allowed directory cannot lead out of it.
  std::error_code ec;
  fs::path real = fs::weakly_canonical(fs::absolute(dir), ec);
  if (ec) real = fs::absolute(dir).lexically_normal();
  std::string r = real.string();
  for (const auto& a : p.paths) {
    if (glob_match(a, r)) return {};
    std::string prefix = a == "/" ? a : a + "/";
    if (r == a || (r.starts_with(prefix) && a.find_first_of("*?[") == std::string::npos)) return {};
  }
  return "path " + r + ": refused: not in the operator's allowlist (" +
         how_to_allow(kind_of(&safety_policy::paths), r) + ")";
}

std::string refuse_interface(const std::string& name, const safety_policy& p) {
  if (name == "lo" || matches_any(p.interfaces, name)) return {};
  return "interface " + json(name).dump() + ": refused: not in the operator's allowlist (" +
         how_to_allow(kind_of(&safety_policy::interfaces), name) + ")";
}

std::string refuse_docker_host(const safety_policy& p) {
  const char* h = std::getenv("DOCKER_HOST");
  std::string host = h ? h : "";
  if (host.empty() || host.starts_with("unix://") || host.starts_with("tcp://127.") ||
      host.starts_with("tcp://localhost") || host.starts_with("tcp://[::1]"))
    return {};
  if (matches_any(p.docker_hosts, host)) return {};
  return "DOCKER_HOST \"" + host + "\": refused: not local and not in the allowlist (" +
         how_to_allow(kind_of(&safety_policy::docker_hosts), host) + ")";
}

std::string refuse_target_count(std::size_t n, const safety_policy& p) {
  if (n <= p.max_targets) return {};
  return "resolved " + std::to_string(n) + " targets: refused: more than the cap of " + std::to_string(p.max_targets) +
         " targets for one fault (raise it with --max-fault-targets, $SYNCSTORM_MAX_FAULT_TARGETS or \"max_fault_targets\" in the "
         "allow file, or pick fewer)";
}

std::optional<std::pair<std::string, std::string>> lab_unit_of_pidfile(const std::string& pidfile) {
  static const std::regex re(R"(^(.*/lab-([a-z0-9]{1,8}))/run/([A-Za-z0-9_.-]+)\.pid$)");
  std::smatch m;
  std::string abs = fs::absolute(pidfile).lexically_normal().string();
  if (!std::regex_match(abs, m, re)) return std::nullopt;
  return std::make_pair(m[2].str(), m[3].str());
}

}  // namespace syncstorm::injectors
