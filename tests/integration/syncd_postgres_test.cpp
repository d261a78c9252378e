// labstack/postgres.hpp against a real PostgreSQL 15: init, start, roles and databases, a
// synchronous streaming replica, promotion, stop modes and clean-up; no `trust` (peer on a 0700
// socket directory, SCRAM passwords from a passfile over TCP). Single-threaded; every
// instance lives under /var/tmp/syncstorm/test-pg-<pid>/ and is destroyed even on failure.
#include "labstack/lab_process.hpp"
#include "labstack/postgres.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <pwd.h>

#include <filesystem>
#include <string>

#include <signal.h>
#include <unistd.h>

namespace lab = syncstorm::lab;
namespace fs = std::filesystem;

namespace {

fs::path test_root() { return fs::path("/var/tmp/syncstorm") / ("test-pg-" + std::to_string(getpid())); }

lab::postgres_options options_for(const std::string& name) {
  lab::postgres_options o;
  o.state_dir = test_root() / name;
  o.port = lab::pick_free_port();
  o.shared_buffers = "32MB";
  return o;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// psql with `argv` (after the binary), as OS user `user` (empty: this process's), with
// PGPASSFILE pointing nowhere: only what `dsn` names.
lab::run_result psql_as(const std::string& user, std::vector<std::string> argv) {
  lab::spawn_options o;
  o.argv = {"/usr/lib/postgresql/15/bin/psql", "-X", "-Atq", "-w"};
  o.argv.insert(o.argv.end(), argv.begin(), argv.end());
  o.extra_env = {"PGPASSFILE=/nonexistent"};
  if (!user.empty()) o.user = user;
  o.cwd = "/";
  return lab::run_command(o, std::chrono::seconds(20));
}

struct root_cleanup {
  ~root_cleanup() {
    std::error_code ec;
    fs::remove_all(test_root(), ec);
  }
};

}  // namespace

TEST(syncd_postgres, primary_replica_promote) {
  root_cleanup cleanup_root;
  lab::postgres_guard primary(options_for("primary"));
  ASSERT_FALSE(primary->initialized());
  ASSERT_FALSE(primary->running());
  primary->init();
  ASSERT_TRUE(primary->initialized());
  EXPECT_THROW(primary->init(), std::runtime_error);
  primary->start();
  ASSERT_TRUE(primary->running());
  ASSERT_TRUE(primary->ready());
  ASSERT_TRUE(primary->pid().has_value());
  EXPECT_FALSE(primary->in_recovery());

  // No trust (issue #24). The socket's directory is the server user's alone; pg_hba says peer
  // and SCRAM, never trust; the conninfo names a 0600 passfile, never a password.
  struct stat sd {};
  ASSERT_EQ(stat(primary->socket_dir().c_str(), &sd), 0);
  EXPECT_EQ(sd.st_mode & 07777, 0700u);
  EXPECT_EQ(sd.st_uid, getpwnam("postgres")->pw_uid);
  const std::string hba = slurp(primary->data_dir() / "pg_hba.conf");
  EXPECT_EQ(hba.find("trust"), std::string::npos) << hba;
  EXPECT_NE(hba.find("scram-sha-256"), std::string::npos) << hba;
  struct stat pf {};
  ASSERT_EQ(stat(primary->password_file().c_str(), &pf), 0);
  EXPECT_EQ(pf.st_mode & 07777, 0600u);
  const std::string dsn = primary->conninfo();
  EXPECT_NE(dsn.find("passfile=" + primary->password_file().string()), std::string::npos) << dsn;
  EXPECT_EQ(dsn.find("password"), std::string::npos) << dsn;
  const std::string port = std::to_string(primary->port());
  auto with = psql_as("", {"-d", dsn, "-c", "SELECT 1"});
  EXPECT_EQ(with.exit_code, 0) << with.output;
  auto without =
      psql_as("", {"-d", "host=127.0.0.1 port=" + port + " dbname=postgres user=postgres", "-c", "SELECT 1"});
  EXPECT_NE(without.exit_code, 0) << "TCP without the password got in";
  EXPECT_NE(without.output.find("password"), std::string::npos) << without.output;
  auto wrong = psql_as(
      "", {"-d", "host=127.0.0.1 port=" + port + " dbname=postgres user=postgres password=guess", "-c", "SELECT 1"});
  EXPECT_NE(wrong.exit_code, 0) << "a wrong password got in";
  auto other = psql_as("nobody", {"-h", primary->socket_dir().string(), "-p", port, "-U", "postgres", "-d", "postgres",
                                  "-c", "SELECT 1"});
  EXPECT_NE(other.exit_code, 0) << "another local user reached the socket: " << other.output;

  primary->create_user("syncd");
  primary->create_user("syncd");  // idempotent
  auto as_role = psql_as("", {"-d", primary->conninfo("syncdb_missing_ok", "syncd"), "-c", "SELECT 1"});
  EXPECT_NE(as_role.output.find("syncdb_missing_ok"), std::string::npos)
      << "a created role signs in with the passfile: " << as_role.output;
  primary->create_database("syncdb", "syncd");
  primary->create_database("syncdb", "syncd");
  EXPECT_EQ(primary->psql("SELECT current_setting('wal_level')"), "replica");
  EXPECT_EQ(primary->psql("SELECT current_setting('fsync')"), "on");
  EXPECT_EQ(primary->psql("SELECT current_setting('port')"), std::to_string(primary->port()));
  EXPECT_THROW(primary->create_user("Bad-Name"), std::runtime_error);
  EXPECT_THROW(primary->psql("SELECT * FROM no_such_table"), std::runtime_error);
  primary->psql("CREATE TABLE t (v int)", "syncdb");

  lab::postgres_guard replica(options_for("replica"));
  replica->init_replica(*primary, "replica1");
  replica->start();
  EXPECT_TRUE(replica->in_recovery());
  primary->set_synchronous_standby_names("FIRST 1 (replica1)");
  EXPECT_EQ(primary->psql("SHOW synchronous_standby_names"), "FIRST 1 (replica1)");

  // A synchronous commit waits for the standby: once it returns, the replica has the row.
  primary->psql("INSERT INTO t VALUES (42)", "syncdb");
  EXPECT_EQ(primary->psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica1'"), "sync");
  std::string seen;
  for (int i = 0; i < 50 && seen != "42"; ++i) {
    seen = replica->psql("SELECT coalesce(max(v), 0) FROM t", "syncdb");
    if (seen != "42") usleep(100'000);
  }
  EXPECT_EQ(seen, "42");

  // Failover: kill the primary, promote the replica; it takes writes and has no sync standby.
  auto old_pid = primary->pid();
  ASSERT_TRUE(old_pid.has_value());
  primary->stop(lab::stop_mode::immediate);
  EXPECT_FALSE(primary->running());
  replica->promote();
  EXPECT_FALSE(replica->in_recovery());
  EXPECT_EQ(replica->psql("SHOW synchronous_standby_names"), "");
  replica->psql("INSERT INTO t VALUES (43)", "syncdb");
  EXPECT_EQ(replica->psql("SELECT count(*) FROM t", "syncdb"), "2");

  // A killed postmaster restarts cleanly.
  replica->stop(lab::stop_mode::fast);
  primary->start();
  ASSERT_TRUE(primary->pid().has_value());
  kill(*primary->pid(), SIGKILL);
  for (int i = 0; i < 50 && primary->running(); ++i) usleep(100'000);
  EXPECT_FALSE(primary->running());
  primary->start(std::chrono::seconds(30));
  EXPECT_TRUE(primary->ready());

  const auto dir = primary->options().state_dir;
  primary->destroy();
  EXPECT_FALSE(fs::exists(dir));
  primary->destroy();  // idempotent
}
