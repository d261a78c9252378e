// The bootstrap model against the real lab: a stream seeded with 100,000 changes (big pushes)
// is pulled from zero by new terminals page by page; bootstrap.time and pull.latency are
// reported, every client gets every change, and the seeded ops are all on the server.
//
// Threading: the model runs on a worker_pool; the test thread only starts and stops it.
#include "labstack/lab.hpp"
#include "loadgen/bootstrap_model.hpp"
#include "tests/support/lab_fixture.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <random>

namespace {

using namespace std::chrono_literals;
using namespace syncstorm::loadgen;
namespace sl = syncstorm::lab;
namespace t = syncstorm::test;

const syncstorm::timed_metric& metric(const syncstorm::metrics_shard& m, const std::string& n) {
  static const syncstorm::timed_metric empty;
  const auto* x = m.find(n);
  return x ? *x : empty;
}

TEST(bootstrap_lab, pulls_a_100k_change_stream_from_zero) {
  const std::string skip = t::lab_unavailable_reason();
  if (!skip.empty()) SYNCSTORM_SKIP_OR_FAIL(skip);
  sl::lab_options o;
  o.id = "itboot";
  o.pods = 2;
  t::scoped_lab lab(o);
  ASSERT_TRUE(lab.ok()) << lab.error();

  std::random_device rd;
  bootstrap_config c;
  c.name = "boot";
  c.http_url = lab->lb_http_url();
  c.clients = 4;
  c.changes = 100'000;
  c.page = 5000;
  c.seed_batch = 5000;
  c.phases = {phase_spec{"all", 60'000'000, 0.0, std::nullopt}};
  c.run_tag = "bt" + std::to_string(rd() % 1'000'000'000);
  auto model = make_bootstrap_model(c);
  const auto start = run_clock::now();
  worker_pool pool(2, start);
  pool.start({model.get()});
  const auto end = pool.run_until(start + 120s);
  EXPECT_EQ(end, worker_pool::run_end::drained) << "every client finished";
  model->stop();
  auto m = pool.stop(5s);
  const auto& time = metric(m, "bootstrap.time@boot");
  const auto& pull = metric(m, "pull.latency@boot");
  std::cout << "seeded 100000 changes in " << model->seed_us() / 1000 << " ms; bootstrap.time p50 "
            << time.hist().percentile(50) / 1000 << " ms max " << time.hist().max() / 1000 << " ms; pull.latency p99 "
            << pull.hist().percentile(99) / 1000 << " ms over " << pull.count() << " requests\n";
  EXPECT_EQ(time.ok_count(), 4u);
  EXPECT_EQ(time.error_count(), 0u);
  EXPECT_GT(time.hist().percentile(50), 0);
  // 100,000 / 5,000 = 20 full pages, one empty page, one records read per client.
  EXPECT_EQ(pull.ok_count(), 4u * 22);
  EXPECT_EQ(metric(m, "bootstrap.changes@boot").count(), 400'000u);
  EXPECT_EQ(metric(m, "bootstrap.incomplete@boot").count(), 0u);
  // Client starts go through the one arrival loop: late starts counted, no generator.lag.
  EXPECT_NE(m.find("generator.late"), nullptr);
  EXPECT_EQ(m.find("generator.lag"), nullptr);
  std::vector<syncstorm::audit_op> ops;
  model->collect(ops);
  ASSERT_EQ(ops.size(), 100'000u);
  for (const auto& op : ops) ASSERT_EQ(op.state, syncstorm::audit_op_state::acked) << op.id;
}

}  // namespace
