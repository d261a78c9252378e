// A PostgreSQL 15 instance that syncstorm owns: initdb, configure, start, stop, readiness, roles
// and databases, and the replica operations (pg_basebackup streaming replica, synchronous
// standby names, promote). Used by the lab orchestration and by the integration tests.
//
// Everything an instance creates lives under its state dir (data/, run/ for the unix socket,
// postgres.log). PostgreSQL refuses to run as root: when the caller is root, every server-side
// command (initdb, pg_ctl, pg_basebackup) runs as the `run_as` user (default `postgres`) and the
// state dir is chowned to it. Client commands (psql, pg_isready) connect over the unix socket.
//
// The server is a separate process: a `postgres_instance` object only names it, so a later
// process (e.g. `syncstorm lab down`) can attach to the same state dir and stop it. Destroying
// the object does not stop the server; `postgres_guard` does, for tests.
//
// Errors are `std::runtime_error` with the command, its exit status and its output.
// Not thread-safe: one thread drives an instance at a time. Calls block (this is set-up code).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace syncstorm::lab {

struct postgres_options {
  // Root of everything this instance creates. Parent dirs are created (mode 0755).
  std::filesystem::path state_dir;
  // Data directory; default `state_dir/data`. Point it at a mounted, size-limited volume to
  // make disk faults real (the mount point must be empty or absent before init).
  std::filesystem::path data_dir;
  // TCP: comma-separated addresses for `listen_addresses`; the first is the one clients use.
  std::string listen_addresses = "127.0.0.1";
  std::uint16_t port = 0;  // required; never 5432 in syncstorm
  // Networks allowed (SCRAM password auth) for normal and replication connections, besides
  // the unix socket (peer, the server's OS user only).
  std::vector<std::string> hba_networks = {"127.0.0.0/8"};
  // Server binaries; empty = /usr/lib/postgresql/15/bin when it exists, else looked up on PATH.
  std::filesystem::path bin_dir;
  std::string run_as = "postgres";  // OS user for server-side commands when we are root
  std::string synchronous_commit = "on";
  bool fsync = true;
  int max_connections = 300;
  int max_wal_senders = 10;
  std::string shared_buffers = "128MB";
  // Non-empty: every tool and the server itself carry SYNCSTORM_LAB=<lab_id> in their
  // environment (labstack/lab_process.hpp), so `lab down` can find them by marker.
  std::string lab_id;
  // Extra postgresql.conf settings (name → value, written verbatim, so quote strings: "'x'").
  std::map<std::string, std::string> settings;
};

enum class stop_mode { smart, fast, immediate };

class postgres_instance {
 public:
  // Names an instance; touches nothing on disk. Throws if `state_dir` or `port` is missing or
  // the unix socket path would be too long.
  explicit postgres_instance(postgres_options options);

  const postgres_options& options() const { return options_; }
  const std::filesystem::path& data_dir() const { return options_.data_dir; }
  std::filesystem::path socket_dir() const;  // state_dir/run
  std::filesystem::path log_file() const;    // state_dir/postgres.log
  std::string host() const;                  // first of listen_addresses
  std::uint16_t port() const { return options_.port; }

  // libpq conninfo over TCP to `host():port()`, user `user`, with `passfile=password_file()`
  // (never the password itself); `extra` is appended verbatim (e.g. "connect_timeout=2").
  std::string conninfo(const std::string& dbname = "postgres", const std::string& user = "postgres",
                       const std::string& extra = {}) const;
  // The same as a `postgresql://` URI (syncd's --db accepts both).
  std::string uri(const std::string& dbname = "postgres", const std::string& user = "postgres") const;
  // The cluster's password as a libpq passfile (`*:*:*:*:<password>`), 0600: state_dir/pgpass
  // owned by the caller (for clients), state_dir/pgpass.server owned by `run_as` (the replica's
  // pg_basebackup and primary_conninfo). Written by init() and init_replica().
  std::filesystem::path password_file() const;
  std::filesystem::path server_password_file() const;

  // True once initdb (or a base backup) has populated the data dir.
  bool initialized() const;
  // initdb (UTF8) with a random superuser password, and the configuration: no `trust`; peer
  // on the unix socket (directory 0700) for the server's OS user only, SCRAM passwords from
  // `hba_networks`. Throws if already initialized.
  void init();
  // Makes this instance a streaming replica of `primary`: removes any data dir, runs
  // pg_basebackup (WAL streamed), writes standby.signal and primary_conninfo with
  // `application_name` (the name `synchronous_standby_names` refers to). Not started.
  void init_replica(const postgres_instance& primary, const std::string& application_name);

  // pg_ctl start and wait until it accepts connections (throws on timeout, with the log tail).
  void start(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // pg_ctl stop; a no-op when not running.
  void stop(stop_mode mode = stop_mode::fast, std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // pg_ctl promote (replica → primary) and wait until it accepts writes.
  void promote(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  // Re-reads the configuration (pg_ctl reload).
  void reload();

  // The postmaster pid from postmaster.pid, if that process is alive.
  std::optional<pid_t> pid() const;
  bool running() const { return pid().has_value(); }
  // pg_isready over TCP: accepting connections now.
  bool ready() const;
  void wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // True when the server is in recovery (a standby).
  bool in_recovery() const;

  // Set postgresql.conf settings in the instance's own include file and reload if running.
  // Values are written verbatim (quote strings).
  void set_settings(const std::map<std::string, std::string>& settings);
  // e.g. "FIRST 1 (replica1)" or "" to turn synchronous replication off; reloads.
  void set_synchronous_standby_names(const std::string& names);

  // Idempotent role and database creation (names: [a-z_][a-z0-9_]*).
  void create_user(const std::string& name, bool superuser = false);
  void create_database(const std::string& name, const std::string& owner = "postgres");
  // Runs SQL through psql as the superuser (ON_ERROR_STOP); returns unaligned, tuples-only
  // output (`psql -Atq`).
  std::string psql(const std::string& sql, const std::string& dbname = "postgres") const;

  // Stops the server (immediate) if running and removes the state dir (and a data dir outside
  // it). Idempotent.
  void destroy();

 private:
  std::filesystem::path bin(const char* name) const;
  void write_config(const std::optional<std::string>& primary_conninfo);
  void write_password_files(const std::string& password);
  void prepare_dirs();

  postgres_options options_;
};

// Test helper: owns an instance and destroys it (stop + remove state dir) when it goes out of
// scope, even when a test fails or throws.
class postgres_guard {
 public:
  explicit postgres_guard(postgres_options options) : instance_(std::move(options)) {}
  ~postgres_guard();
  postgres_guard(const postgres_guard&) = delete;
  postgres_guard& operator=(const postgres_guard&) = delete;

  postgres_instance& operator*() { return instance_; }
  postgres_instance* operator->() { return &instance_; }

 private:
  postgres_instance instance_;
};

// A TCP port on `address` that was free a moment ago (bind to port 0, read it back). Never 5432.
std::uint16_t pick_free_port(const std::string& address = "127.0.0.1");

}  // namespace syncstorm::lab
