// PostgreSQL instance management through the server's own tools (initdb, pg_ctl, pg_basebackup,
// psql, pg_isready), so the library needs no libpq. Each tool runs through lab_process's
// run_command (output captured, killed at a deadline); when we are root it runs as the `run_as`
// user. Blocking, single-threaded per instance.
#include "labstack/postgres.hpp"

#include "labstack/lab_process.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <netinet/in.h>
#include <arpa/inet.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

namespace syncstorm::lab {
namespace {

namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

struct os_user {
  uid_t uid = 0;
  gid_t gid = 0;
};

// The owner of what we create for the server, or nullopt when we are not root (we own it).
std::optional<os_user> server_user(const std::string& name) {
  if (geteuid() != 0) return std::nullopt;
  passwd* pw = getpwnam(name.c_str());
  if (pw == nullptr) throw std::runtime_error("postgres: OS user '" + name + "' does not exist");
  return os_user{pw->pw_uid, pw->pw_gid};
}

// Options for running a PostgreSQL tool: as the server user when we are root, in the state dir
// (when it exists), carrying the lab's marker, with NOTICEs off (their text would end up in
// the captured output that psql() returns).
spawn_options tool(const postgres_options& o, std::vector<std::string> argv) {
  spawn_options s;
  s.argv = std::move(argv);
  s.lab_id = o.lab_id;
  std::error_code ec;
  s.cwd = fs::is_directory(o.state_dir, ec) ? o.state_dir.string() : "/";
  if (geteuid() == 0) s.user = o.run_as;
  s.extra_env = {"PGOPTIONS=-c client_min_messages=warning"};
  return s;
}

std::string tail(const std::string& s, std::size_t n = 2000) {
  std::string t = s.size() > n ? "..." + s.substr(s.size() - n) : s;
  while (!t.empty() && (t.back() == '\n' || t.back() == ' ')) t.pop_back();
  return t;
}

void check_name(const std::string& what, const std::string& name) {
  bool ok = !name.empty() && name.size() < 63 && (std::islower(static_cast<unsigned char>(name[0])) || name[0] == '_');
  for (char c : name)
    ok = ok && (std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '_');
  if (!ok) throw std::runtime_error("postgres: " + what + " '" + name + "': expected [a-z_][a-z0-9_]*");
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const fs::path& p, const std::string& text, const std::optional<os_user>& owner) {
  {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out << text;
    if (!out) throw std::runtime_error("postgres: cannot write " + p.string());
  }
  if (owner && chown(p.c_str(), owner->uid, owner->gid) != 0)
    throw std::runtime_error("postgres: chown " + p.string() + ": " + std::strerror(errno));
}

void make_dir(const fs::path& p, mode_t mode, const std::optional<os_user>& owner) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) throw std::runtime_error("postgres: cannot create " + p.string() + ": " + ec.message());
  if (chmod(p.c_str(), mode) != 0)
    throw std::runtime_error("postgres: chmod " + p.string() + ": " + std::strerror(errno));
  if (owner && chown(p.c_str(), owner->uid, owner->gid) != 0)
    throw std::runtime_error("postgres: chown " + p.string() + ": " + std::strerror(errno));
}

// A secret file: created 0600 (never readable by others, not even for a moment), owned by
// `owner`, written to a temporary name and renamed over `p`, never following a link.
void write_secret(const fs::path& p, const std::string& text, const std::optional<os_user>& owner) {
  const fs::path tmp = p.string() + ".tmp";
  ::unlink(tmp.c_str());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("postgres: cannot create " + tmp.string() + ": " + std::strerror(errno));
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  if (ok && owner) ok = ::fchown(fd, owner->uid, owner->gid) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), p.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw std::runtime_error("postgres: cannot write " + p.string() + ": " + std::strerror(ok ? errno : err));
  }
}

// 32 random hex digits: the cluster's password (getrandom, from the kernel's CSPRNG).
std::string random_password() {
  unsigned char b[16];
  std::size_t got = 0;
  while (got < sizeof b) {
    ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw std::runtime_error(std::string("postgres: getrandom: ") + std::strerror(errno));
    got += static_cast<std::size_t>(n);
  }
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s += hex[c >> 4];
    s += hex[c & 15];
  }
  return s;
}

// The password a passfile written by this file holds (its only line: `*:*:*:*:<password>`).
std::string password_in(const fs::path& passfile) {
  std::string text = read_file(passfile);
  auto colon = text.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("postgres: no password in " + passfile.string());
  std::string pw = text.substr(colon + 1);
  while (!pw.empty() && (pw.back() == '\n' || pw.back() == '\r')) pw.pop_back();
  return pw;
}

// The OS user that `local` (unix socket) connections come from: the one the tools run as.
std::string local_os_user(const std::string& run_as) {
  if (geteuid() == 0) return run_as;
  passwd* pw = getpwuid(geteuid());
  return pw ? pw->pw_name : run_as;
}

std::string ms_to_s(std::chrono::milliseconds t) {
  return std::to_string(std::max<long long>(1, (t.count() + 999) / 1000));
}

const char* mode_name(stop_mode m) {
  switch (m) {
    case stop_mode::smart:
      return "smart";
    case stop_mode::fast:
      return "fast";
    case stop_mode::immediate:
      return "immediate";
  }
  return "fast";
}

constexpr const char* include_file = "syncstorm.conf";
constexpr const char* override_file = "syncstorm.override.conf";

std::map<std::string, std::string> parse_settings(const std::string& text) {
  std::map<std::string, std::string> m;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (line.empty() || line[0] == '#' || eq == std::string::npos) continue;
    auto trim = [](std::string s) {
      s.erase(0, s.find_first_not_of(" \t"));
      s.erase(s.find_last_not_of(" \t") + 1);
      return s;
    };
    m[trim(line.substr(0, eq))] = trim(line.substr(eq + 1));
  }
  return m;
}

}  // namespace

postgres_instance::postgres_instance(postgres_options options) : options_(std::move(options)) {
  if (options_.state_dir.empty()) throw std::runtime_error("postgres: state_dir is required");
  if (options_.port == 0) throw std::runtime_error("postgres: port is required");
  if (options_.port == 5432) throw std::runtime_error("postgres: port 5432 is reserved for the system's PostgreSQL");
  options_.state_dir = fs::absolute(options_.state_dir);
  if (options_.data_dir.empty()) options_.data_dir = options_.state_dir / "data";
  options_.data_dir = fs::absolute(options_.data_dir);
  if (options_.bin_dir.empty() && fs::exists("/usr/lib/postgresql/15/bin/pg_ctl"))
    options_.bin_dir = "/usr/lib/postgresql/15/bin";
  const auto sock = (socket_dir() / (".s.PGSQL." + std::to_string(options_.port))).string();
  if (sock.size() >= sizeof(sockaddr_un{}.sun_path))
    throw std::runtime_error("postgres: unix socket path too long (" + std::to_string(sock.size()) +
                             " bytes): " + sock + "; use a shorter state_dir");
}

fs::path postgres_instance::socket_dir() const { return options_.state_dir / "run"; }
fs::path postgres_instance::log_file() const { return options_.state_dir / "postgres.log"; }

std::string postgres_instance::host() const {
  auto comma = options_.listen_addresses.find(',');
  std::string h = options_.listen_addresses.substr(0, comma);
  if (h.empty() || h == "*" || h == "0.0.0.0") return "127.0.0.1";
  return h;
}

std::string postgres_instance::conninfo(const std::string& dbname, const std::string& user,
                                        const std::string& extra) const {
  std::string s = "host=" + host() + " port=" + std::to_string(options_.port) + " dbname=" + dbname + " user=" + user;
  s += " passfile=" + password_file().string();
  if (!extra.empty()) s += " " + extra;
  return s;
}

std::string postgres_instance::uri(const std::string& dbname, const std::string& user) const {
  return "postgresql://" + user + "@" + host() + ":" + std::to_string(options_.port) + "/" + dbname +
         "?passfile=" + password_file().string();
}

fs::path postgres_instance::password_file() const { return options_.state_dir / "pgpass"; }
fs::path postgres_instance::server_password_file() const { return options_.state_dir / "pgpass.server"; }

void postgres_instance::write_password_files(const std::string& password) {
  const std::string line = "*:*:*:*:" + password + "\n";
  write_secret(password_file(), line, std::nullopt);
  write_secret(server_password_file(), line, server_user(options_.run_as));
}

fs::path postgres_instance::bin(const char* name) const {
  return options_.bin_dir.empty() ? fs::path(name) : options_.bin_dir / name;
}

bool postgres_instance::initialized() const { return fs::exists(options_.data_dir / "PG_VERSION"); }

void postgres_instance::prepare_dirs() {
  auto user = server_user(options_.run_as);
  make_dir(options_.state_dir, 0755, user);
  make_dir(socket_dir(), 0700, user);  // only the server's user (and root) reach the socket
  make_dir(options_.data_dir, 0700, user);
}

void postgres_instance::write_config(const std::optional<std::string>& primary_conninfo) {
  auto user = server_user(options_.run_as);
  const auto& o = options_;
  std::map<std::string, std::string> s = {
      {"listen_addresses", "'" + o.listen_addresses + "'"},
      {"port", std::to_string(o.port)},
      {"unix_socket_directories", "'" + socket_dir().string() + "'"},
      {"max_connections", std::to_string(o.max_connections)},
      {"shared_buffers", o.shared_buffers},
      {"wal_level", "replica"},
      {"max_wal_senders", std::to_string(o.max_wal_senders)},
      {"max_replication_slots", std::to_string(o.max_wal_senders)},
      {"wal_keep_size", "'512MB'"},
      {"hot_standby", "on"},
      {"fsync", o.fsync ? "on" : "off"},
      // Dynamic shared memory in files under the data directory (pg_dynshmem/), not in
      // /dev/shm: a postmaster killed with SIGKILL (pod and db kills) leaves its POSIX segments
      // behind, and a removed data directory takes these with it.
      {"dynamic_shared_memory_type", "mmap"},
      // A replica's first start (from a base backup) syncs its data directory: one syncfs(2)
      // instead of an fsync per file (4-5 s on a busy disk).
      {"recovery_init_sync_method", "syncfs"},
      {"synchronous_commit", o.synchronous_commit},
      {"synchronous_standby_names", "''"},
      {"wal_sender_timeout", "'10s'"},
      {"wal_receiver_timeout", "'10s'"},
      {"wal_retrieve_retry_interval", "'1s'"},
      {"tcp_keepalives_idle", "5"},
      {"tcp_keepalives_interval", "2"},
      {"tcp_keepalives_count", "3"},
      {"logging_collector", "off"},
      {"log_line_prefix", "'%m [%p] '"},
      {"log_min_messages", "warning"},
  };
  if (primary_conninfo) s["primary_conninfo"] = "'" + *primary_conninfo + "'";
  for (const auto& [k, v] : o.settings) s[k] = v;

  std::string conf = "# Written by syncstorm (labstack/postgres.cpp); rewritten on init.\n";
  for (const auto& [k, v] : s) conf += k + " = " + v + "\n";
  write_file(o.data_dir / include_file, conf, user);

  // postgresql.conf includes ours (and the runtime overrides, last so they win) once.
  const auto main_conf = o.data_dir / "postgresql.conf";
  std::string text = read_file(main_conf);
  const std::string marker = "# syncstorm includes\n";
  if (text.find(marker) == std::string::npos) {
    text += "\n" + marker + "include_if_exists '" + std::string(include_file) + "'\ninclude_if_exists '" +
            override_file + "'\n";
    write_file(main_conf, text, user);
  }

  // No `trust` anywhere (issue #24): over the unix socket (its directory 0700) only the
  // server's OS user, as `postgres` (peer); over TCP, from the lab's own networks only, with the
  // cluster's password (SCRAM), which clients read from the passfile named in their conninfo.
  std::string hba =
      "# Written by syncstorm: peer on the socket, SCRAM passwords on the lab's own networks.\n"
      "local all postgres peer map=syncstorm\nlocal replication postgres peer map=syncstorm\n";
  for (const auto& net : o.hba_networks)
    hba += "host all all " + net + " scram-sha-256\nhost replication all " + net + " scram-sha-256\n";
  write_file(o.data_dir / "pg_hba.conf", hba, user);
  write_file(o.data_dir / "pg_ident.conf", "syncstorm " + local_os_user(o.run_as) + " postgres\n", user);
}

void postgres_instance::init() {
  if (initialized()) throw std::runtime_error("postgres: " + options_.data_dir.string() + " is already initialized");
  prepare_dirs();
  // The superuser's password from a file only the server's user reads (never on a command line),
  // removed once initdb has read it; clients find it in the passfiles.
  const std::string password = random_password();
  write_password_files(password);
  const fs::path pwfile = options_.state_dir / ".initdb-password";
  write_secret(pwfile, password + "\n", server_user(options_.run_as));
  struct remove_pwfile {
    fs::path p;
    ~remove_pwfile() { ::unlink(p.c_str()); }
  } remove{pwfile};
  run_command_checked("postgres",
                      tool(options_, {bin("initdb").string(), "-D", options_.data_dir.string(), "-U", "postgres",
                                      "--auth-local=peer", "--auth-host=scram-sha-256", "--pwfile=" + pwfile.string(),
                                      "--encoding=UTF8", "--locale=C.UTF-8", "--no-instructions",
                                      // A lab's cluster is disposable: no fsync of the fresh files (3-4 s).
                                      "--no-sync"}),
                      std::chrono::minutes(3));
  write_config(std::nullopt);
}

void postgres_instance::init_replica(const postgres_instance& primary, const std::string& application_name) {
  check_name("application_name", application_name);
  if (running()) throw std::runtime_error("postgres: cannot rebuild " + options_.data_dir.string() + " while it runs");
  std::error_code ec;
  if (fs::exists(options_.data_dir))
    for (const auto& entry : fs::directory_iterator(options_.data_dir)) fs::remove_all(entry.path(), ec);
  prepare_dirs();
  auto user = server_user(options_.run_as);
  // The primary's password (a base backup copies its catalog, so it is this cluster's too).
  write_password_files(password_in(primary.password_file()));
  spawn_options backup = tool(options_, {bin("pg_basebackup").string(), "-D", options_.data_dir.string(), "-h",
                                         primary.host(), "-p", std::to_string(primary.port()), "-U", "postgres", "-X",
                                         "stream", "-c", "fast", "--no-password", "--no-sync"});
  backup.extra_env.push_back("PGPASSFILE=" + server_password_file().string());
  run_command_checked("postgres", backup, std::chrono::minutes(5));
  // The copy carries the primary's runtime overrides (its synchronous_standby_names): drop them.
  fs::remove(options_.data_dir / override_file, ec);
  write_config("host=" + primary.host() + " port=" + std::to_string(primary.port()) +
               " user=postgres passfile=" + server_password_file().string() + " application_name=" + application_name +
               " connect_timeout=3 keepalives_idle=5 keepalives_interval=2 keepalives_count=3");
  write_file(options_.data_dir / "standby.signal", "", user);
}

void postgres_instance::start(std::chrono::milliseconds timeout) {
  if (!initialized()) throw std::runtime_error("postgres: " + options_.data_dir.string() + " is not initialized");
  if (running()) {
    wait_ready(timeout);
    return;
  }
  // The socket dir may be gone (e.g. a data dir that outlived its state dir).
  make_dir(socket_dir(), 0700, server_user(options_.run_as));
  const auto deadline = clock_type::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now());
    auto r = run_command(tool(options_, {bin("pg_ctl").string(), "start", "-D", options_.data_dir.string(), "-l",
                                         log_file().string(), "-w", "-t", ms_to_s(left), "-s"}),
                         left + std::chrono::seconds(5));
    if (r.exit_code == 0) break;
    // After a kill -9, old backends may hold the shared memory for a moment: retry.
    std::string log = tail(read_file(log_file()), 1500);
    bool transient = log.find("still in use") != std::string::npos || log.find("lock file") != std::string::npos;
    if (!transient || clock_type::now() + std::chrono::milliseconds(500) >= deadline)
      throw std::runtime_error("postgres: pg_ctl start failed for " + options_.data_dir.string() + " (exit " +
                               std::to_string(r.exit_code) + "): " + tail(r.output) + "; log: " + log);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  }
  wait_ready(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_type::now()) +
             std::chrono::seconds(1));
}

void postgres_instance::stop(stop_mode mode, std::chrono::milliseconds timeout) {
  if (!running()) return;
  auto r = run_command(tool(options_, {bin("pg_ctl").string(), "stop", "-D", options_.data_dir.string(), "-m",
                                       mode_name(mode), "-w", "-t", ms_to_s(timeout), "-s"}),
                       timeout + std::chrono::seconds(5));
  if (r.exit_code != 0 && running())
    throw std::runtime_error("postgres: pg_ctl stop -m " + std::string(mode_name(mode)) + " failed for " +
                             options_.data_dir.string() + ": " + tail(r.output));
}

void postgres_instance::promote(std::chrono::milliseconds timeout) {
  const auto deadline = clock_type::now() + timeout;
  run_command_checked("postgres",
                      tool(options_, {bin("pg_ctl").string(), "promote", "-D", options_.data_dir.string(), "-w", "-t",
                                      ms_to_s(timeout), "-s"}),
                      timeout + std::chrono::seconds(5));
  while (in_recovery()) {
    if (clock_type::now() >= deadline)
      throw std::runtime_error("postgres: " + options_.data_dir.string() + " still in recovery after promote");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

void postgres_instance::reload() {
  run_command_checked("postgres",
                      tool(options_, {bin("pg_ctl").string(), "reload", "-D", options_.data_dir.string(), "-s"}),
                      std::chrono::seconds(30));
}

std::optional<pid_t> postgres_instance::pid() const {
  std::ifstream in(options_.data_dir / "postmaster.pid");
  long p = 0;
  if (!(in >> p) || p <= 0) return std::nullopt;
  // A stale file after a crash may name a reused pid: it must be a postgres process.
  std::string comm = read_file("/proc/" + std::to_string(p) + "/comm");
  if (comm.rfind("postgres", 0) != 0 && comm.rfind("postmaster", 0) != 0) return std::nullopt;
  return static_cast<pid_t>(p);
}

bool postgres_instance::ready() const {
  auto r = run_command(
      tool(options_, {bin("pg_isready").string(), "-q", "-h", host(), "-p", std::to_string(options_.port), "-t", "2"}),
      std::chrono::seconds(5));
  return r.exit_code == 0;
}

void postgres_instance::wait_ready(std::chrono::milliseconds timeout) const {
  const auto deadline = clock_type::now() + timeout;
  while (!ready()) {
    if (clock_type::now() >= deadline)
      throw std::runtime_error("postgres: " + host() + ":" + std::to_string(options_.port) + " not ready after " +
                               std::to_string(timeout.count()) + " ms; log: " + tail(read_file(log_file()), 1500));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

bool postgres_instance::in_recovery() const { return psql("SELECT pg_is_in_recovery()") == "t"; }

std::string postgres_instance::psql(const std::string& sql, const std::string& dbname) const {
  std::string out = run_command_checked(
      "postgres",
      tool(options_, {bin("psql").string(), "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-h", socket_dir().string(), "-p",
                      std::to_string(options_.port), "-U", "postgres", "-d", dbname, "-c", sql}),
      std::chrono::seconds(60));
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

void postgres_instance::set_settings(const std::map<std::string, std::string>& settings) {
  if (!initialized()) throw std::runtime_error("postgres: " + options_.data_dir.string() + " is not initialized");
  const auto path = options_.data_dir / override_file;
  auto current = parse_settings(fs::exists(path) ? read_file(path) : std::string{});
  for (const auto& [k, v] : settings) current[k] = v;
  std::string text = "# Written by syncstorm: runtime overrides (set_settings).\n";
  for (const auto& [k, v] : current) text += k + " = " + v + "\n";
  write_file(path, text, server_user(options_.run_as));
  if (running()) reload();
}

void postgres_instance::set_synchronous_standby_names(const std::string& names) {
  if (names.find('\'') != std::string::npos)
    throw std::runtime_error("postgres: synchronous_standby_names must not contain quotes: " + names);
  set_settings({{"synchronous_standby_names", "'" + names + "'"}});
}

void postgres_instance::create_user(const std::string& name, bool superuser) {
  check_name("user", name);
  // The cluster's password, so the passfile (`*` for the user) serves every role over TCP. The
  // server reads it from its own passfile: the password is never on psql's command line.
  const std::string file = server_password_file().string();
  if (file.find('\'') != std::string::npos) throw std::runtime_error("postgres: a quote in " + file);
  psql("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '" + name +
       "') THEN EXECUTE format('CREATE ROLE %I LOGIN" + (superuser ? " SUPERUSER" : "") + " PASSWORD %L', '" + name +
       "', rtrim(split_part(pg_read_file('" + file + "'), ':', 5), E'\\n')); END IF; END$$");
}

void postgres_instance::create_database(const std::string& name, const std::string& owner) {
  check_name("database", name);
  check_name("owner", owner);
  if (psql("SELECT 1 FROM pg_database WHERE datname = '" + name + "'") == "1") return;
  psql("CREATE DATABASE " + name + " OWNER " + owner);
}

void postgres_instance::destroy() {
  if (running()) {
    try {
      stop(stop_mode::immediate, std::chrono::seconds(20));
    } catch (const std::exception&) {
    }
    if (auto p = pid()) {
      kill(*p, SIGKILL);
      for (int i = 0; i < 50 && pid(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  std::error_code ec;
  const auto rel = options_.data_dir.lexically_relative(options_.state_dir);
  const bool data_inside = !rel.empty() && *rel.begin() != "..";
  if (!data_inside && fs::exists(options_.data_dir))
    for (const auto& entry : fs::directory_iterator(options_.data_dir, ec)) fs::remove_all(entry.path(), ec);
  fs::remove_all(options_.state_dir, ec);
}

postgres_guard::~postgres_guard() {
  try {
    instance_.destroy();
  } catch (...) {
  }
}

std::uint16_t pick_free_port(const std::string& address) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw std::runtime_error("pick_free_port: socket: " + std::string(std::strerror(errno)));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    if (inet_pton(AF_INET, address.c_str(), &sa.sin_addr) != 1) {
      close(fd);
      throw std::runtime_error("pick_free_port: not an IPv4 address: " + address);
    }
    socklen_t len = sizeof sa;
    bool ok = bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) == 0 &&
              getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) == 0;
    close(fd);
    if (!ok) throw std::runtime_error("pick_free_port: bind " + address + ": " + std::strerror(errno));
    std::uint16_t port = ntohs(sa.sin_port);
    if (port != 5432) return port;
  }
  throw std::runtime_error("pick_free_port: no port found on " + address);
}

}  // namespace syncstorm::lab
