// The lab's orchestration (see lab.hpp): `up` plans and records, creates the network and the
// database volumes, initializes PostgreSQL, then hands every long-running process to the
// supervisor and waits for each to be ready; `down` undoes all of it from the state file and by
// name. Blocking set-up code; no threads of its own.
#include "labstack/lab.hpp"

#include "labstack/haproxy.hpp"
#include "labstack/lab_process.hpp"
#include "labstack/lab_state.hpp"
#include "labstack/netns.hpp"
#include "labstack/postgres.hpp"
#include "labstack/supervisor.hpp"
#include "proxy/relay.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace syncstorm::lab {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using std::chrono::milliseconds;

constexpr const char* db_name = "syncstorm";
constexpr const char* replica_app_name = "syncstorm_replica";
constexpr std::uint64_t pod_nofile = 262144;

std::string tail_of(const std::string& path, std::size_t n = 1200) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (s.size() > n) s = "..." + s.substr(s.size() - n);
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The syncd executable: options, $SYNCSTORM_SYNCD, beside this program (or in ../labstack,
// the build tree's layout), $SYNCSTORM_BUILD_DIR/labstack, then PATH.
std::string find_syncd(const std::string& configured) {
  std::vector<std::string> tried;
  auto ok = [&](const std::string& p) {
    tried.push_back(p);
    return !p.empty() && ::access(p.c_str(), X_OK) == 0;
  };
  if (!configured.empty()) {
    if (ok(configured)) return fs::absolute(configured).string();
    throw std::runtime_error("lab: syncd: found no executable at " + configured + "; expected the syncd binary");
  }
  if (const char* e = std::getenv("SYNCSTORM_SYNCD"); e && *e && ok(e)) return e;
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (auto cand : {self.parent_path() / "syncd", self.parent_path().parent_path() / "labstack" / "syncd",
                      self.parent_path().parent_path().parent_path() / "labstack" / "syncd"})
      if (ok(cand.string())) return cand.string();
  }
  if (const char* b = std::getenv("SYNCSTORM_BUILD_DIR"); b && *b) {
    std::string cand = std::string(b) + "/labstack/syncd";
    if (ok(cand)) return cand;
  }
  for (auto dir : {"/usr/local/bin", "/usr/bin"}) {
    std::string cand = std::string(dir) + "/syncd";
    if (ok(cand)) return cand;
  }
  std::string list;
  for (auto& t : tried) list += (list.empty() ? "" : ", ") + t;
  throw std::runtime_error("lab: syncd: found no executable (tried " + list +
                           "); expected $SYNCSTORM_SYNCD or a build with the syncd target");
}

bool port_bindable(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_ANY);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0;
  ::close(fd);
  return ok;
}

// Ports in 20000–29999 (below the default ephemeral range): not listened on, not bindable by
// someone else, not claimed by another lab.
class port_picker {
 public:
  port_picker(const std::string& id, const std::vector<json>& other_states) {
    for (auto& [a, p] : tcp_listeners()) avoid_.insert(p);
    for (auto& s : other_states)
      for (json items_of = s.value("ports", json::object()); auto& [k, v] : items_of.items())
        if (v.is_number_integer()) avoid_.insert(v.get<std::uint16_t>());
    avoid_.insert(5432);
    cursor_ = static_cast<std::uint16_t>(20000 + std::hash<std::string>{}(id) % 9000);
  }
  std::uint16_t next() {
    for (int i = 0; i < 10000; ++i) {
      std::uint16_t p = cursor_;
      cursor_ = cursor_ >= 29999 ? 20000 : static_cast<std::uint16_t>(cursor_ + 1);
      if (avoid_.count(p) || !port_bindable(p)) continue;
      avoid_.insert(p);
      return p;
    }
    throw std::runtime_error("lab: found no free TCP port in 20000–29999; expected one per lab listener");
  }

 private:
  std::set<std::uint16_t> avoid_;
  std::uint16_t cursor_;
};

std::vector<json> other_lab_states(const std::string& id) {
  std::vector<json> out;
  for (auto& other : list_lab_ids()) {
    if (other == id) continue;
    try {
      out.push_back(state_file(state_path_of(other)).read());
    } catch (const std::exception&) {
    }
  }
  return out;
}

postgres_instance db_instance(const json& st, const std::string& unit) {
  const json& d = st.at("db").at("instances").at(unit);
  postgres_options o;
  o.state_dir = d.at("state_dir").get<std::string>();
  o.data_dir = d.at("data_dir").get<std::string>();
  o.port = d.at("port").get<std::uint16_t>();
  o.listen_addresses = "127.0.0.1";
  o.hba_networks = {"127.0.0.0/8"};
  o.lab_id = st.value("id", "");  // initdb, pg_basebackup, psql carry the lab's marker
  for (json items_of = d.value("settings", json::object()); auto& [k, v] : items_of.items())
    o.settings[k] = v.get<std::string>();
  return postgres_instance(o);
}

std::string endpoint(const std::string& host, std::uint16_t port) { return host + ":" + std::to_string(port); }

std::optional<std::uint32_t> postgres_uid() {
  if (::geteuid() != 0) return std::nullopt;
  struct passwd* pw = ::getpwnam("postgres");
  if (!pw)
    throw std::runtime_error("lab: found no `postgres` user; expected the postgresql-15 package (scripts/setup.sh)");
  return pw->pw_uid;
}

void mount_volume(const std::string& path, std::uint64_t bytes, const state_file& st) {
  if (::geteuid() != 0)
    throw std::runtime_error("lab: db_volume: found euid " + std::to_string(::geteuid()) +
                             "; expected root to mount a size-limited tmpfs");
  struct passwd* pw = ::getpwnam("postgres");
  fs::create_directories(path);
  st.update([&](json& j) {
    auto& m = j["created"]["mounts"];
    if (!m.is_array()) m = json::array();
    m.push_back(path);
  });
  std::string opts = "size=" + std::to_string(bytes) + ",mode=0700";
  if (pw) opts += ",uid=" + std::to_string(pw->pw_uid) + ",gid=" + std::to_string(pw->pw_gid);
  if (::mount("tmpfs", path.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0)
    throw std::runtime_error("lab: db_volume: mount tmpfs (" + opts + ") on " + path + ": " + std::strerror(errno));
}

// Mount points at or under `dir`, deepest first.
std::vector<std::string> mounts_under(const std::string& dir) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mounts");
  std::string dev, mp, rest;
  while (in >> dev >> mp) {
    std::getline(in, rest);
    if (mp == dir || mp.rfind(dir + "/", 0) == 0) out.push_back(mp);
  }
  std::sort(out.begin(), out.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  return out;
}

// RLIMIT_NOFILE a lab process can get: `wanted` when the hard limit allows it or we may raise it
// (CAP_SYS_RESOURCE, up to fs.nr_open); otherwise the hard limit.
std::uint64_t achievable_nofile(std::uint64_t wanted) {
  rlimit r{};
  ::getrlimit(RLIMIT_NOFILE, &r);
  if (r.rlim_max >= wanted) return wanted;
  bool cap_sys_resource = false;
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("CapEff:", 0) == 0) cap_sys_resource = (std::stoull(line.substr(7), nullptr, 16) >> 24) & 1;
  if (!cap_sys_resource) return r.rlim_max;
  std::uint64_t nr_open = 1048576;
  std::ifstream("/proc/sys/fs/nr_open") >> nr_open;
  return std::min<std::uint64_t>(wanted, nr_open);
}

json unit_def(const std::string& role, std::vector<std::string> argv, const std::string& log) {
  return {{"role", role}, {"kind", "exec"}, {"argv", argv}, {"log", log}, {"restart", true}};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

json lab_options::to_json() const {
  json j = {{"pods", pods},
            {"replica", replica},
            {"bug", bug},
            {"restart_delay_us", restart_delay_us},
            {"check_interval_ms", check_interval_ms},
            {"check_fall", check_fall},
            {"check_rise", check_rise},
            {"keep", keep},
            {"network", network}};
  j["db_volume_bytes"] = db_volume_bytes ? json(*db_volume_bytes) : json(nullptr);
  return j;
}

// ---------------------------------------------------------------------------------------------

std::string lab::dir() const { return lab_dir(id_); }
std::string lab::state_path() const { return state_path_of(id_); }
std::string lab::events_path() const { return dir() + "/events.jsonl"; }
json lab::state() const { return state_file(state_path()).read(); }

json lab::supervisor(const json& request) const {
  json a = supervisor_request(dir() + "/supervisor.sock", request, milliseconds(10000));
  if (!a.value("ok", false))
    throw std::runtime_error("lab " + id_ + ": supervisor refused " + request.value("cmd", "?") + ": " +
                             a.value("error", a.dump()));
  return a;
}

lab lab::attach(const std::string& id_or_path) {
  std::string id = id_or_path;
  if (!valid_lab_id(id)) {
    fs::path p(id_or_path);
    if (p.filename() == "state.json") p = p.parent_path();
    std::string name = p.filename().string();
    if (name.empty()) name = p.parent_path().filename().string();
    id = name.rfind("lab-", 0) == 0 ? name.substr(4) : std::string();
  }
  if (!valid_lab_id(id) || !state_file(state_path_of(id)).exists())
    throw std::runtime_error("lab: found no lab \"" + id_or_path + "\" (no " +
                             (valid_lab_id(id) ? state_path_of(id) : labs_root() + "/lab-<id>/state.json") +
                             "); expected the id of a lab that is up");
  return lab(id);
}

lab lab::up(const lab_options& o) {
  if (o.pods < 1 || o.pods > 200)
    throw std::runtime_error("lab: pods: found " + std::to_string(o.pods) + "; expected 1 to 200");
  if (o.network != "auto" && o.network != "namespaces" && o.network != "loopback")
    throw std::runtime_error("lab: network: found \"" + o.network + "\"; expected auto, namespaces or loopback");
  if (o.db_volume_bytes && *o.db_volume_bytes < (96ull << 20))
    throw std::runtime_error("lab: db_volume: found " + std::to_string(*o.db_volume_bytes) +
                             " bytes; expected at least 96MiB (PostgreSQL needs ~50MiB to start)");
  if (o.restart_delay_us < 0) throw std::runtime_error("lab: restart_delay: found a negative delay; expected >= 0");
  std::string id = o.id.empty() ? random_lab_id() : o.id;
  if (!valid_lab_id(id))
    throw std::runtime_error("lab: id: found \"" + id + "\"; expected 1 to 8 characters of [a-z0-9]");
  const std::string syncd = find_syncd(o.syncd_path);

  const std::string dir = lab_dir(id);
  const state_file st(state_path_of(id));
  if (st.exists()) {
    json old;
    try {
      old = st.read();
    } catch (const std::exception&) {
    }
    long sup = old.value("supervisor", json::object()).value("pid", 0L);
    if (sup > 0 && process_alive(static_cast<pid_t>(sup)))
      throw std::runtime_error("lab " + id + ": found it already up (phase " + old.value("phase", "?") +
                               ", supervisor pid " + std::to_string(sup) +
                               "); expected no lab with this id — run `syncstorm lab down --id " + id + "` first");
  }
  if (fs::exists(dir)) down(id);  // remnants of a lab that is not running

  if (std::string why = secure_labs_root(); !why.empty()) throw std::runtime_error("lab " + id + ": " + why);
  fs::create_directories(dir + "/logs");
  ::chmod(dir.c_str(), 0755);
  const std::string events = dir + "/events.jsonl";
  st.update([&](json& j) {
    j = {{"version", 1},
         {"id", id},
         {"dir", dir},
         {"events", events},
         {"phase", "creating"},
         {"created_us", unix_us()},
         {"creator_pid", static_cast<long>(::getpid())},
         {"options", o.to_json()},
         {"created", json::object()},
         {"units", json::object()},
         {"unit_order", json::array()}};
  });
  append_event(events, {{"event", "lab_creating"}, {"id", id}});

  lab l(id);
  std::string step = "plan";
  try {
    // -- plan: network mode, addresses, ports ---------------------------------------------------
    std::string why;
    bool ns = false;
    if (o.network == "namespaces" || o.network == "auto") {
      ns = namespaces_supported("ss-" + id + "-probe", &why);
      if (!ns && o.network == "namespaces")
        throw std::runtime_error("network: found namespaces unavailable (" + why + "); expected root with `ip netns`");
    } else {
      why = "loopback requested";
    }
    auto others = other_lab_states(id);
    port_picker ports(id, others);
    std::vector<json> other_nets;
    for (auto& s : others) other_nets.push_back(s.value("network", json::object()));
    const std::uint16_t pod_port = ns ? 8080 : ports.next();
    network_layout net = plan_network(id, o.pods, ns, other_nets, pod_port);
    json port_map = {{"db-0", ports.next()},    {"haproxy_http", ports.next()}, {"haproxy_ws", ports.next()},
                     {"lb_http", ports.next()}, {"lb_ws", ports.next()},        {"db_relay", ports.next()},
                     {"pod", pod_port}};
    if (o.replica) port_map["db-1"] = ports.next();
    json net_j = net.to_json();
    net_j["mode"] = ns ? "namespaces" : "loopback";
    if (!ns) net_j["why_not_namespaces"] = why;

    const std::string relay_ctl = dir + "/relay.sock";
    const std::string stats_sock = dir + "/haproxy.sock";
    const std::string db_relay_host = net.gateway;
    auto port_of = [&](const char* k) { return port_map.at(k).get<std::uint16_t>(); };
    json paths = {{"lb_http",
                   {{"listen", endpoint("127.0.0.1", port_of("lb_http"))},
                    {"upstream", endpoint("127.0.0.1", port_of("haproxy_http"))},
                    {"sources", {"127.0.0.1", "127.0.2.1", "127.0.2.2", "127.0.2.3"}}}},
                  {"lb_ws",
                   {{"listen", endpoint("127.0.0.1", port_of("lb_ws"))},
                    {"upstream", endpoint("127.0.0.1", port_of("haproxy_ws"))},
                    {"sources", {"127.0.0.1", "127.0.2.1", "127.0.2.2", "127.0.2.3"}}}},
                  {"db",
                   {{"listen", endpoint(db_relay_host, port_of("db_relay"))},
                    {"upstream", endpoint("127.0.0.1", port_of("db-0"))}}}};
    st.update([&](json& j) {
      j["privileged"] = ::geteuid() == 0;
      j["network"] = net_j;
      j["ports"] = port_map;
      j["paths"] = paths;
      j["relay"] = {{"control", relay_ctl}};
      j["lb"] = {{"stats_socket", stats_sock}, {"config", dir + "/haproxy.cfg"}};
      j["phase"] = "creating";
    });

    // -- host: sysctls, network, volumes --------------------------------------------------------
    step = "host tuning";
    if (ns) {
      std::vector<std::uint16_t> reserve;
      for (auto& [k, v] : port_map.items()) reserve.push_back(v.get<std::uint16_t>());
      tune_host(reserve, st);
    }
    step = "network";
    create_network(id, net, st);

    step = "database volume";
    std::map<std::string, std::pair<std::string, std::string>> db_dirs;  // unit → state dir, data dir
    std::vector<std::string> db_units = {"db-0"};
    if (o.replica) db_units.push_back("db-1");
    for (auto& u : db_units) {
      std::string sdir = dir + "/" + u;
      std::string ddir = sdir + "/data";
      if (o.db_volume_bytes) mount_volume(ddir, *o.db_volume_bytes, st);
      db_dirs[u] = {sdir, ddir};
    }
    json volume_settings = json::object();
    if (o.db_volume_bytes) {
      // A small volume must not fill up at idle: keep little WAL around.
      volume_settings = {{"max_wal_size", "'96MB'"}, {"min_wal_size", "'32MB'"}, {"wal_keep_size", "'32MB'"}};
    }
    st.update([&](json& j) {
      j["db"] = {{"name", db_name}, {"primary", "db-0"}, {"replica", o.replica ? json("db-1") : json(nullptr)}};
      for (auto& u : db_units)
        j["db"]["instances"][u] = {{"state_dir", db_dirs[u].first},
                                   {"data_dir", db_dirs[u].second},
                                   {"port", port_map.at(u)},
                                   {"settings", volume_settings}};
    });

    // -- PostgreSQL primary ------------------------------------------------------------------------
    step = "initdb (db-0)";
    postgres_uid();
    auto primary = db_instance(st.read(), "db-0");
    primary.init();
    const std::string pg_bin = "/usr/lib/postgresql/15/bin/postgres";
    auto db_unit = [&](const std::string& u, const std::string& role) {
      auto inst = db_instance(st.read(), u);
      json d = unit_def(role, {pg_bin, "-D", inst.data_dir().string()}, inst.log_file().string());
      if (::geteuid() == 0) d["user"] = "postgres";
      d["cwd"] = inst.options().state_dir.string();
      d["stop_signal"] = SIGINT;  // fast shutdown
      d["probe"] = {{"kind", "pg"}, {"host", "127.0.0.1"}, {"port", inst.port()}};
      return d;
    };
    st.update([&](json& j) {
      j["units"]["db-0"] = db_unit("db-0", "db-primary");
      j["unit_order"].push_back("db-0");
    });

    step = "supervisor";
    st.update([&](json& j) { j["supervisor"] = {{"status", "starting"}, {"comm", "ss-sup-" + id}}; });
    start_supervisor(st.path());
    step = "start db-0";
    l.supervisor({{"cmd", "start"}, {"unit", "db-0"}});
    l.wait_ready("db-0", o.ready_timeout);
    step = "create database";
    primary.create_database(db_name);

    if (o.replica) {
      step = "pg_basebackup (db-1)";
      auto replica = db_instance(st.read(), "db-1");
      replica.init_replica(primary, replica_app_name);
      st.update([&](json& j) {
        j["units"]["db-1"] = db_unit("db-1", "db-replica");
        j["unit_order"].push_back("db-1");
      });
      step = "start db-1";
      l.supervisor({{"cmd", "start"}, {"unit", "db-1"}});
      l.wait_ready("db-1", o.ready_timeout);
      step = "synchronous replication";
      primary.set_synchronous_standby_names(replica_app_name);
      const auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
      for (;;) {
        std::string s = primary.psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = '" +
                                     std::string(replica_app_name) + "'");
        if (s == "sync") break;
        if (std::chrono::steady_clock::now() >= deadline)
          throw std::runtime_error("found replica sync_state \"" + s + "\"; expected \"sync\"");
        std::this_thread::sleep_for(milliseconds(100));
      }
    }

    // -- relay --------------------------------------------------------------------------------------
    step = "relay";
    st.update([&](json& j) {
      json d = {{"role", "relay"},
                {"kind", "relay"},
                {"log", dir + "/logs/relay.log"},
                {"restart", true},
                {"nofile", pod_nofile}};
      json addrs = json::array();
      for (auto& [k, p] : j["paths"].items()) addrs.push_back(p["listen"]);
      d["probe"] = {{"kind", "tcp"}, {"addrs", addrs}};
      j["units"]["relay"] = d;
      j["unit_order"].push_back("relay");
    });
    l.supervisor({{"cmd", "start"}, {"unit", "relay"}});
    l.wait_ready("relay", o.ready_timeout);

    // -- pods ----------------------------------------------------------------------------------------
    step = "pods";
    // The password from db-0's passfile (a promoted replica has the same one), never in the DSN:
    // the DSN is on syncd's command line.
    const std::string pod_dsn = "host=" + db_relay_host + " port=" + std::to_string(port_of("db_relay")) +
                                " dbname=" + db_name + " user=postgres passfile=" + primary.password_file().string();
    st.update([&](json& j) {
      j["db"]["pod_dsn"] = pod_dsn;
      for (auto& p : net.pods) {
        std::vector<std::string> argv = {syncd,        "--db", pod_dsn, "--listen", endpoint(p.address, pod_port),
                                         "--pod-name", p.name};
        if (!o.bug.empty()) {
          argv.insert(argv.end(), {"--bug", o.bug, "--bug-log", dir + "/logs/" + p.name + ".bug.log"});
        }
        json d = unit_def("pod", argv, dir + "/logs/" + p.name + ".log");
        d["netns"] = p.netns;
        d["nofile"] = pod_nofile;
        d["address"] = p.address;
        d["port"] = pod_port;
        d["probe"] = {{"kind", "http"}, {"host", p.address}, {"port", pod_port}, {"path", "/readyz"}};
        j["units"][p.name] = d;
        j["unit_order"].push_back(p.name);
      }
    });
    for (auto& p : net.pods) l.supervisor({{"cmd", "start"}, {"unit", p.name}});
    for (auto& p : net.pods) l.wait_ready(p.name, o.ready_timeout);

    // -- HAProxy ---------------------------------------------------------------------------------------
    step = "haproxy";
    haproxy_config hc;
    hc.stats_socket = stats_sock;
    hc.http_bind = endpoint("127.0.0.1", port_of("haproxy_http"));
    hc.ws_bind = endpoint("127.0.0.1", port_of("haproxy_ws"));
    for (auto& p : net.pods) hc.servers.push_back({p.name, p.address, pod_port});
    hc.sources = net.lb_sources;
    // 50,000 clients need 2 fds each in HAProxy: maxconn 60,000 when RLIMIT_NOFILE can reach
    // ~120k, else what the hard limit allows (HAProxy refuses to start otherwise).
    const std::uint64_t nofile = achievable_nofile(2 * 60000 + 1000);
    hc.maxconn = static_cast<int>(std::clamp<std::uint64_t>((nofile > 512 ? nofile - 256 : 256) / 2, 128, 60000));
    st.update([&](json& j) {
      j["limits"] = {{"nofile", nofile}, {"haproxy_maxconn", hc.maxconn}};
      if (hc.maxconn < 50000)
        j["limits"]["note"] = "RLIMIT_NOFILE hard limit " + std::to_string(nofile) +
                              " cannot be raised (no CAP_SYS_RESOURCE): HAProxy sized for " +
                              std::to_string(hc.maxconn) + " connections instead of 50,000";
    });
    hc.check_interval_ms = o.check_interval_ms;
    hc.fall = o.check_fall;
    hc.rise = o.check_rise;
    {
      std::ofstream cfg(dir + "/haproxy.cfg");
      cfg << render_haproxy_config(hc);
      if (!cfg) throw std::runtime_error("cannot write " + dir + "/haproxy.cfg");
    }
    step = "haproxy config check";
    spawn_options check;
    check.argv = {"haproxy", "-c", "-f", dir + "/haproxy.cfg"};
    run_command_checked("haproxy -c", check, std::chrono::seconds(20));
    st.update([&](json& j) {
      json d = unit_def("lb", {"haproxy", "-db", "-f", dir + "/haproxy.cfg"}, dir + "/logs/haproxy.log");
      d["nofile"] = nofile;
      d["stop_signal"] = SIGTERM;  // hard stop: `down` should not wait for WebSockets to end
      d["probe"] = {{"kind", "haproxy"}, {"socket", stats_sock}};
      j["units"]["lb"] = d;
      j["unit_order"].push_back("lb");
    });
    step = "start haproxy";
    l.supervisor({{"cmd", "start"}, {"unit", "lb"}});
    l.wait_ready("lb", o.ready_timeout);
    step = "LB backends up";
    {
      const auto deadline = std::chrono::steady_clock::now() + o.ready_timeout;
      for (;;) {
        json s = l.supervisor({{"cmd", "status"}});
        bool all = true;
        // Fully "UP", not "UP 1/2" (up, but the last check failed): the lab starts settled.
        for (auto& p : net.pods) all = all && s["lb"].contains(p.name) && s["lb"][p.name].value("status", "") == "UP";
        if (all) break;
        if (std::chrono::steady_clock::now() >= deadline)
          throw std::runtime_error("found HAProxy servers " + s["lb"].dump() + "; expected every pod \"UP\"");
        std::this_thread::sleep_for(milliseconds(50));
      }
      int code = 0;
      while (!probe_http("127.0.0.1", port_of("lb_http"), "/healthz", milliseconds(1000), &code)) {
        if (std::chrono::steady_clock::now() >= deadline)
          throw std::runtime_error("found GET /healthz through the LB answering " + std::to_string(code) +
                                   "; expected 200");
        std::this_thread::sleep_for(milliseconds(50));
      }
    }
    st.update([&](json& j) {
      j["phase"] = "ready";
      j["ready_us"] = unix_us();
    });
    append_event(events, {{"event", "lab_ready"}, {"id", id}});
    return l;
  } catch (const std::exception& e) {
    std::string msg = "lab up " + id + ": " + step + ": " + e.what();
    // Name the log of what failed, when there is one.
    try {
      json s = st.read();
      for (json items_of = s.value("units", json::object()); auto& [name, u] : items_of.items()) {
        std::string status = u.value("runtime", json::object()).value("status", "");
        if (status == "restarting" || status == "dead" ||
            (status == "starting" && step.find(name) != std::string::npos))
          msg += "; " + name + " log: " + tail_of(u.value("log", ""));
      }
    } catch (...) {
    }
    // SYNCSTORM_LAB_KEEP_FAILED=1 leaves a failed lab in place for a post-mortem.
    const char* keep = std::getenv("SYNCSTORM_LAB_KEEP_FAILED");
    if (keep && std::string(keep) == "1") {
      msg += "; kept " + dir + " (SYNCSTORM_LAB_KEEP_FAILED=1)";
    } else {
      for (auto& x : down(id)) msg += "; cleanup: " + x;
    }
    throw std::runtime_error(msg);
  }
}

bool lab::wait_ready(const std::string& unit, milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    json s = supervisor({{"cmd", "status"}});
    json u = s["units"].value(unit, json::object());
    const std::string status = u.value("status", "");
    if (status == "ready") return true;
    // While the lab comes up, a death is a failure to report, not something to wait out.
    const bool coming_up = state().value("phase", "") != "ready";
    if (coming_up && (status == "dead" || status == "restarting"))
      throw std::runtime_error(unit + " died while starting (" + u.value("last_exit", json()).dump() +
                               "); log: " + tail_of(state()["units"][unit].value("log", "")));
    if (std::chrono::steady_clock::now() >= deadline) {
      if (coming_up)
        throw std::runtime_error(unit + " not ready after " + std::to_string(timeout.count()) + " ms (status " +
                                 status + "); log: " + tail_of(state()["units"][unit].value("log", "")));
      return false;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
}

std::vector<std::string> lab::down() { return down(id_); }

std::vector<std::string> lab::down(const std::string& id) {
  std::vector<std::string> errors;
  if (!valid_lab_id(id)) return {"lab id \"" + id + "\": expected 1 to 8 characters of [a-z0-9]"};
  const std::string dir = lab_dir(id);
  // SYNCSTORM_LAB_DEBUG: how long each phase of the teardown took, on stderr.
  auto phase_start = std::chrono::steady_clock::now();
  auto phase_done = [&](const char* what) {
    if (!std::getenv("SYNCSTORM_LAB_DEBUG")) return;
    auto now = std::chrono::steady_clock::now();
    std::fprintf(stderr, "lab down %s: %s took %lld ms\n", id.c_str(), what,
                 static_cast<long long>(std::chrono::duration_cast<milliseconds>(now - phase_start).count()));
    phase_start = now;
  };
  const state_file st(state_path_of(id));
  json s = json::object();
  try {
    if (st.exists()) s = st.read();
  } catch (const std::exception& e) {
    errors.push_back(std::string("state unreadable, cleaning up by name: ") + e.what());
  }
  try {
    if (st.exists()) st.update([](json& j) { j["phase"] = "stopping"; });
  } catch (...) {
  }

  // 1. The supervisor stops its units (graceful, bounded), or dies trying.
  const std::string sup_comm = "ss-sup-" + id;
  const std::string rly_comm = "ss-rly-" + id;
  long sup_pid = s.value("supervisor", json::object()).value("pid", 0L);
  try {
    json a =
        supervisor_request(dir + "/supervisor.sock", {{"cmd", "shutdown"}, {"grace_ms", 5000}}, milliseconds(3000));
    if (a.value("ok", false)) sup_pid = a.value("pid", sup_pid);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (sup_pid > 0 && process_alive(static_cast<pid_t>(sup_pid)) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(20));
  } catch (const std::exception&) {
    // No supervisor answering: the sweep below handles everything.
  }
  phase_done("supervisor shutdown");
  // 2. Sweep: whatever still carries the lab's marker, comm or (PostgreSQL tools) its dir.
  //    The supervisor goes first so it restarts nothing.
  for (pid_t p : find_lab_processes(id, {sup_comm})) {
    if (auto c = std::ifstream("/proc/" + std::to_string(p) + "/comm"); c) {
      std::string comm;
      std::getline(c, comm);
      if (comm == sup_comm) terminate_processes({p}, SIGKILL, milliseconds(2000));
    }
  }
  const std::vector<std::string> tools = {"postgres", "postmaster", "initdb",  "pg_basebackup", "pg_ctl",
                                          "psql",     "pg_isready", "haproxy", "syncd"};
  const bool debug = std::getenv("SYNCSTORM_LAB_DEBUG") != nullptr;
  for (int round = 0; round < 5; ++round) {
    auto pids = find_lab_processes(id, {sup_comm, rly_comm}, dir + "/", tools);
    if (pids.empty()) break;
    if (debug)
      for (pid_t p : pids) {
        std::ifstream c("/proc/" + std::to_string(p) + "/cmdline");
        std::string cmd((std::istreambuf_iterator<char>(c)), std::istreambuf_iterator<char>());
        std::replace(cmd.begin(), cmd.end(), '\0', ' ');
        std::fprintf(stderr, "lab down %s: round %d: leftover pid %d: %s\n", id.c_str(), round, static_cast<int>(p),
                     cmd.c_str());
      }
    auto left = terminate_processes(pids, round == 0 ? SIGTERM : SIGKILL, milliseconds(round == 0 ? 3000 : 2000));
    if (round == 4)
      for (pid_t p : left) errors.push_back("process " + std::to_string(p) + " survived SIGKILL");
  }

  phase_done("processes");
  // 3. Network, rules, sysctls.
  for (auto& e : destroy_network(id, s)) errors.push_back(e);
  phase_done("network");

  // 4. Mounts (recorded and found), then the files.
  std::set<std::string> mps;
  for (auto& m : s.value("created", json::object()).value("mounts", json::array())) mps.insert(m.get<std::string>());
  for (auto& m : mounts_under(dir)) mps.insert(m);
  std::vector<std::string> ordered(mps.begin(), mps.end());
  std::sort(ordered.begin(), ordered.end(), [](auto& a, auto& b) { return a.size() > b.size(); });
  for (auto& m : ordered) {
    auto cur = mounts_under(m);
    if (std::find(cur.begin(), cur.end(), m) == cur.end()) continue;
    if (::umount2(m.c_str(), 0) != 0 && ::umount2(m.c_str(), MNT_DETACH) != 0)
      errors.push_back("mount " + m + ": " + std::strerror(errno));
  }
  phase_done("mounts");
  if (mounts_under(dir).empty()) {
    std::error_code ec;
    fs::remove_all(dir, ec);
    if (ec) errors.push_back("remove " + dir + ": " + ec.message());
  } else {
    errors.push_back("kept " + dir + ": something is still mounted under it");
  }
  phase_done("files");
  return errors;
}

// ---------------------------------------------------------------------------------------------

std::string lab::lb_http_url() const {
  return "http://" + state().at("paths").at("lb_http").at("listen").get<std::string>();
}
std::string lab::lb_ws_url() const { return "ws://" + state().at("paths").at("lb_ws").at("listen").get<std::string>(); }

std::string lab::db_dsn() const {
  json s = state();
  std::string primary = s.at("db").at("primary");
  return "host=127.0.0.1 port=" + std::to_string(s["db"]["instances"][primary].at("port").get<int>()) +
         " dbname=" + db_name + " user=postgres passfile=" + db_instance(s, primary).password_file().string();
}

std::optional<std::string> lab::replica_dsn() const {
  json s = state();
  json r = s.at("db").value("replica", json());
  if (!r.is_string()) return std::nullopt;
  const std::string unit = r.get<std::string>();
  return "host=127.0.0.1 port=" + std::to_string(s["db"]["instances"][unit].at("port").get<int>()) +
         " dbname=" + db_name + " user=postgres passfile=" + db_instance(s, unit).password_file().string();
}

std::string lab::pod_db_dsn() const { return state().at("db").at("pod_dsn"); }

std::string lab::primary_unit() const { return state().at("db").at("primary"); }

std::optional<std::string> lab::replica_unit() const {
  json r = state().at("db").value("replica", json());
  if (r.is_string()) return r.get<std::string>();
  return std::nullopt;
}

std::vector<pod_info> lab::pods() const {
  json s = state();
  std::vector<pod_info> out;
  for (auto& name : s.value("unit_order", json::array())) {
    const json& u = s["units"][name.get<std::string>()];
    if (u.value("role", "") != "pod") continue;
    pod_info p;
    p.name = name;
    p.address = u.value("address", "");
    p.port = u.value("port", std::uint16_t{0});
    p.netns = u.value("netns", "");
    const json rt = u.value("runtime", json::object());
    p.pid = static_cast<pid_t>(rt.value("pid", 0L));
    p.status = rt.value("status", "stopped");
    p.restarts = rt.value("restarts", 0);
    out.push_back(p);
  }
  return out;
}

pid_t lab::kill_pod(const std::string& name, int signal, bool restart) {
  json s = state();
  if (s["units"].value(name, json::object()).value("role", "") != "pod")
    throw std::runtime_error("lab " + id_ + ": pod: found \"" + name + "\"; expected a pod name like pod-0");
  return kill_unit(name, signal, restart);
}

pid_t lab::kill_unit(const std::string& unit, int signal, bool restart) {
  json a = supervisor({{"cmd", "kill"}, {"unit", unit}, {"signal", signal}, {"restart", restart}});
  return static_cast<pid_t>(a.value("pid", 0L));
}

void lab::start_unit(const std::string& unit) { supervisor({{"cmd", "start"}, {"unit", unit}}); }

void lab::promote_replica() {
  const state_file st(state_path());
  json s = st.read();
  const std::string old_primary = s.at("db").at("primary");
  json rep = s.at("db").value("replica", json());
  if (!rep.is_string())
    throw std::runtime_error("lab " + id_ + ": promote: found no replica; expected a lab started with replica");
  const std::string replica = rep.get<std::string>();
  const std::int64_t t0 = mono_us();
  append_event(events_path(), {{"event", "db_promoting"}, {"name", replica}, {"from", old_primary}});

  // Fence first: the old primary must never come back while the replica takes over.
  st.update([&](json& j) {
    j["units"][old_primary]["restart"] = false;
    j["units"][old_primary]["role"] = "db-fenced";
  });
  supervisor({{"cmd", "reload"}});
  json sup = supervisor({{"cmd", "status"}});
  if (sup["units"][old_primary].value("pid", 0L) > 0) {
    try {
      supervisor({{"cmd", "kill"}, {"unit", old_primary}, {"signal", SIGKILL}, {"restart", false}});
    } catch (const std::exception&) {
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (supervisor({{"cmd", "status"}})["units"][old_primary].value("pid", 0L) > 0 &&
           std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(milliseconds(20));
  } else if (sup["units"][old_primary].value("status", "") == "restarting") {
    supervisor({{"cmd", "stop"}, {"unit", old_primary}});
  }

  auto inst = db_instance(s, replica);
  inst.promote(std::chrono::seconds(60));
  const std::string upstream = endpoint("127.0.0.1", inst.port());
  st.update([&](json& j) {
    j["db"]["primary"] = replica;
    j["db"]["replica"] = nullptr;
    j["db"]["fenced"] = old_primary;
    j["units"][replica]["role"] = "db-primary";
  });
  supervisor({{"cmd", "reload"}});
  set_path_upstream("db", upstream, true);
  append_event(events_path(),
               {{"event", "db_promoted"}, {"name", replica}, {"from", old_primary}, {"after_us", mono_us() - t0}});
}

std::string lab::path_listen(const std::string& path) const {
  json s = state();
  if (!s.value("paths", json::object()).contains(path))
    throw std::runtime_error("lab " + id_ + ": path: found \"" + path + "\"; expected lb_http, lb_ws or db");
  return s["paths"][path].at("listen");
}

std::string lab::path_upstream(const std::string& path) const {
  json s = state();
  if (!s.value("paths", json::object()).contains(path))
    throw std::runtime_error("lab " + id_ + ": path: found \"" + path + "\"; expected lb_http, lb_ws or db");
  return s["paths"][path].at("upstream");
}

void lab::set_path_upstream(const std::string& path, const std::string& upstream, bool reset_open) {
  path_upstream(path);  // validates the name
  state_file(state_path()).update([&](json& j) { j["paths"][path]["upstream"] = upstream; });
  json a =
      proxy::relay_control(state().at("relay").at("control"),
                           {{"cmd", "set_upstream"}, {"path", path}, {"upstream", upstream}, {"reset", reset_open}});
  if (!a.value("ok", false))
    throw std::runtime_error("lab " + id_ + ": relay refused set_upstream " + path + ": " + a.value("error", a.dump()));
  append_event(events_path(),
               {{"event", "path_upstream"}, {"path", path}, {"upstream", upstream}, {"reset", a.value("reset", 0)}});
}

std::vector<json> lab::events() const { return read_events(events_path()); }

json lab::status() const {
  json s = state();
  json out = {{"id", id_},
              {"dir", dir()},
              {"phase", s.value("phase", "?")},
              {"privileged", s.value("privileged", false)},
              {"options", s.value("options", json::object())}};
  json live = nullptr;
  try {
    live = supervisor_request(dir() + "/supervisor.sock", {{"cmd", "status"}}, milliseconds(2000));
  } catch (const std::exception&) {
  }
  long sup_pid = s.value("supervisor", json::object()).value("pid", 0L);
  out["supervisor"] = {{"pid", sup_pid},
                       {"alive", sup_pid > 0 && process_alive(static_cast<pid_t>(sup_pid))},
                       {"answering", live.is_object()},
                       {"control", dir() + "/supervisor.sock"}};
  const json net = s.value("network", json::object());
  out["network"] = {{"mode", net.value("mode", "?")},
                    {"subnet", net.value("subnet", "")},
                    {"bridge", net.value("bridge", "")},
                    {"gateway", net.value("gateway", "")},
                    {"lb_sources", net.value("lb_sources", json::array())}};
  if (net.contains("why_not_namespaces")) out["network"]["why_not_namespaces"] = net["why_not_namespaces"];
  const json paths = s.value("paths", json::object());
  json relay_live = nullptr;
  try {
    relay_live = proxy::relay_control(s.at("relay").at("control"), {{"cmd", "status"}}, milliseconds(2000));
  } catch (const std::exception&) {
  }
  out["paths"] = json::object();
  for (auto& [name, p] : paths.items()) {
    json e = {{"listen", p.value("listen", "")}, {"upstream", p.value("upstream", "")}};
    if (relay_live.is_object() && relay_live["paths"].contains(name)) {
      for (auto k : {"active", "accepted", "upstream_failures", "bytes_up", "bytes_down", "faults", "injected_errors",
                     "injected_resets"})
        e[k] = relay_live["paths"][name][k];
    }
    out["paths"][name] = e;
  }
  if (paths.contains("lb_http") && paths.contains("lb_ws")) {
    const json ports = s.value("ports", json::object());
    const json lb = s.value("lb", json::object());
    out["lb"] = {{"http_url", "http://" + paths["lb_http"].value("listen", "")},
                 {"ws_url", "ws://" + paths["lb_ws"].value("listen", "")},
                 {"haproxy_http", "127.0.0.1:" + std::to_string(ports.value("haproxy_http", 0))},
                 {"haproxy_ws", "127.0.0.1:" + std::to_string(ports.value("haproxy_ws", 0))},
                 {"stats_socket", lb.value("stats_socket", "")},
                 {"config", lb.value("config", "")},
                 {"servers", live.is_object() ? live["lb"] : json(nullptr)}};
  }
  if (s.contains("db") && s["db"].is_object()) {
    json db = {{"name", s["db"].value("name", db_name)},
               {"primary", s["db"].value("primary", "")},
               {"replica", s["db"].value("replica", json())},
               {"pod_dsn", s["db"].value("pod_dsn", "")}};
    try {
      db["dsn"] = db_dsn();
    } catch (...) {
    }
    for (json items_of = s["db"].value("instances", json::object()); auto& [u, d] : items_of.items())
      db["instances"][u] = {{"port", d.value("port", 0)}, {"data_dir", d.value("data_dir", "")}};
    out["db"] = db;
  }
  out["units"] = json::object();
  for (auto& name : s.value("unit_order", json::array())) {
    const std::string n = name;
    const json u = s.value("units", json::object()).value(n, json::object());
    json e = {{"role", u.value("role", "")}, {"log", u.value("log", "")}};
    json rt = live.is_object() && live["units"].contains(n) ? live["units"][n] : u.value("runtime", json::object());
    for (auto k : {"pid", "status", "restarts", "last_exit"})
      if (rt.contains(k)) e[k] = rt[k];
    if (u.contains("address")) e["address"] = endpoint(u.value("address", ""), u.value("port", std::uint16_t{0}));
    if (u.contains("netns") && !u.value("netns", "").empty()) e["netns"] = u["netns"];
    if (live.is_object() && live["lb"].contains(n)) e["lb"] = live["lb"][n].value("status", "");
    out["units"][n] = e;
  }
  out["ports"] = s.value("ports", json::object());
  out["limits"] = s.value("limits", json::object());
  out["created"] = s.value("created", json::object());
  out["sysctls"] = s.value("sysctls", json::object());
  out["files"] = {
      {"state", state_path()},   {"events", events_path()},    {"supervisor_log", dir() + "/supervisor.log"},
      {"logs", dir() + "/logs"}, {"pidfiles", dir() + "/run"}, {"norestart", dir() + "/norestart"}};
  return out;
}

}  // namespace syncstorm::lab
