// RAII for the labs tests bring up: a lab a test (or a suite) started is taken down when its guard
// goes out of scope, also when an ASSERT_* returns early or the test throws, so a failing assertion
// never leaks a lab (its processes, namespaces, iptables rules, volumes). Two forms:
//   - scoped_lab: brought up and taken down through the library (lab::up, lab::down); a lab that
//     does not come up is an error to report, not an exception, so a suite can report it in each test;
//   - cli_lab_guard: a lab the CLI started (`syncstorm lab up`, or a run whose target is a lab),
//     taken down with `syncstorm lab down --id ID`.
// Test-only; single-threaded use.
#pragma once

#include "labstack/lab.hpp"
#include "process/runner.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <exception>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace syncstorm::test {

// The syncd this build made ($SYNCSTORM_BUILD_DIR/labstack/syncd), for lab_options::syncd_path.
inline std::string built_syncd() { return env_or("SYNCSTORM_BUILD_DIR", "build") + "/labstack/syncd"; }

// `sql` through psql on `dsn` (a lab's db_dsn()): its unaligned, tuples-only output; throws
// when psql fails.
inline std::string psql(const std::string& dsn, const std::string& sql) {
  process::spawn_options o;
  o.argv = {"/usr/lib/postgresql/15/bin/psql", "-X", "-Atq", "-v", "ON_ERROR_STOP=1", "-d", dsn, "-c", sql};
  return process::run_checked("psql", o, std::chrono::seconds(30));
}

class scoped_lab {
 public:
  // Takes down what a crashed earlier run left under `o.id` (which must be set), then brings the
  // lab up; when that throws, ok() is false and error() says why (what it left is taken down).
  explicit scoped_lab(lab::lab_options o) : id_(o.id) {
    lab::lab::down(id_);
    if (o.syncd_path.empty()) o.syncd_path = built_syncd();
    try {
      lab_.emplace(lab::lab::up(o));
    } catch (const std::exception& e) {
      error_ = e.what();
    }
  }
  // lab::down(id): each error it reports is a test failure.
  ~scoped_lab() {
    if (!taken_down_)
      for (auto& e : lab::lab::down(id_)) ADD_FAILURE() << "lab down " << id_ << ": " << e;
  }
  scoped_lab(const scoped_lab&) = delete;
  scoped_lab& operator=(const scoped_lab&) = delete;

  bool ok() const { return lab_.has_value(); }
  const std::string& error() const { return error_; }
  const std::string& id() const { return id_; }
  lab::lab& operator*() { return *lab_; }
  lab::lab* operator->() { return &*lab_; }

  // Takes the lab down now and returns lab::down's errors, for a test that checks them; the
  // destructor then does nothing.
  std::vector<std::string> down_now() {
    taken_down_ = true;
    lab_.reset();
    return lab::lab::down(id_);
  }

 private:
  std::string id_, error_;
  std::optional<lab::lab> lab_;
  bool taken_down_ = false;
};

// `syncstorm lab down --id ID` when this goes out of scope, for a lab the CLI started. The id may
// be given later (watch), once the test has read it from a run's events; nothing happens while
// there is none.
class cli_lab_guard {
 public:
  cli_lab_guard() = default;
  explicit cli_lab_guard(std::string id) : id_(std::move(id)) {}
  ~cli_lab_guard() {
    if (!id_.empty()) run(bin() + " lab down --id " + id_ + " >/dev/null 2>&1");
  }
  cli_lab_guard(const cli_lab_guard&) = delete;
  cli_lab_guard& operator=(const cli_lab_guard&) = delete;

  void watch(std::string id) { id_ = std::move(id); }
  // The test took the lab down itself (and checked how that went).
  void release() { id_.clear(); }

 private:
  std::string id_;
};

}  // namespace syncstorm::test
