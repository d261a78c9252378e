// labstack/postgres.hpp against a real PostgreSQL 15: init, start, roles and databases, a
// synchronous streaming replica, promotion, stop modes and clean-up. Single-threaded; every
// instance lives under /var/tmp/syncstorm/test-pg-<pid>/ and is destroyed even on failure.
#include "labstack/postgres.hpp"

#include <gtest/gtest.h>

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

    primary->create_user("syncd");
    primary->create_user("syncd");  // idempotent
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
    EXPECT_EQ(primary->psql("SELECT sync_state FROM pg_stat_replication WHERE application_name = 'replica1'"),
              "sync");
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
