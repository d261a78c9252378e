// The `bootstrap` load model (DESIGN §5): new terminals pulling a stream from zero, the initial
// sync of a freshly installed device. Each client reads the stream's changes from cursor 0 page
// by page through the changes feed (the profile's cursor and limit), then the stream's records:
// then it is usable. With `changes` > 0 the model first seeds the stream with that many
// `append` ops in batches of `seed_batch` (4 pushes in flight), in start(), before the clients
// begin: this takes time from the run (100,000 changes take a few seconds on the lab).
//
// Scenario keys (load entry; bootstrap_config_from maps them): clients, stream (default: a
// stream of this run, "<run tag>-<load>-boot", seeded with `changes`), changes (0), page (1000),
// seed_batch (2000), timeout (30s per request), retries (10 consecutive failures end a client's
// bootstrap as failed). Start times: client k starts at the phases' k-th arrival (a rate of new
// terminals per second); phases without a rate start every client at once.
//
// Metrics (each "<metric>@<load name>"; the pool adds the plain name):
//   pull.latency      one page request (ok = a page that parsed)
//   bootstrap.time    pull start → records read (usable state); ok = false when the client gave up
//   bootstrap.changes changes pulled (count)
//   bootstrap.incomplete  clients that ended with fewer changes than the model seeded
//   pull.errors.<bucket>  per failed request (connect, read, write, status, timeout, protocol)
//
// Threading: client k lives on worker k % W. collect() after the pool stopped.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/audit.hpp"
#include "loadgen/arrivals.hpp"
#include "loadgen/http_model.hpp"
#include "loadgen/sync_protocol.hpp"
#include "loadgen/workers.hpp"

namespace syncstorm::loadgen {

struct bootstrap_config {
  std::string name;
  std::string http_url;
  std::vector<std::pair<std::string, std::string>> headers;  // resolved in memory; never logged
  tls_spec tls;
  sync_profile profile;
  std::size_t clients = 1;
  std::string stream;       // empty: "<run tag>-<name>-boot"
  std::size_t changes = 0;  // seeded first
  std::size_t page = 1000;
  std::size_t seed_batch = 2000;
  std::int64_t timeout_us = 30'000'000;
  int retries = 10;
  std::vector<phase_spec> phases;
  std::string run_tag = "run";
  std::uint64_t seed = 1;
};

// Maps a validated load entry onto a config; throws std::invalid_argument naming `where` + key.
bootstrap_config bootstrap_config_from(const std::string& name, const nlohmann::json& fields,
                                       const std::vector<phase_spec>& phases, const nlohmann::json& target,
                                       const std::string& base_http_url, const std::string& base_ws_url,
                                       const std::string& run_tag, std::uint64_t seed, bool resolve,
                                       const std::string& where = "scenario.load[]");
// bootstrap_config_from is these two: the entry's own keys (parsed once when the scenario
// loads), then the target, the run and the environment.
bootstrap_config bootstrap_settings_from(const std::string& name, const nlohmann::json& fields,
                                         const std::vector<phase_spec>& phases, const std::string& where);
void bind_bootstrap(bootstrap_config& c, const nlohmann::json& target, const std::string& base_http_url,
                    const std::string& run_tag, std::uint64_t seed, bool resolve);

class bootstrap_model final : public load_model {
 public:
  struct impl;
  explicit bootstrap_model(std::unique_ptr<impl> p);
  ~bootstrap_model() override;

  std::string_view name() const override;
  // The first call (controller thread) resolves the host and seeds the stream (blocking); throws
  // std::runtime_error when seeding fails.
  void start(worker& w) override;
  void stop() override;

  const std::string& stream() const noexcept;
  // Seed time (µs) of start(); 0 when nothing was seeded.
  std::int64_t seed_us() const noexcept;
  // The seeded ops (all acked by then), for the audit. After start().
  void collect(std::vector<audit_op>& out) const;

 private:
  std::unique_ptr<impl> impl_;
};

std::unique_ptr<bootstrap_model> make_bootstrap_model(const bootstrap_config& config);

}  // namespace syncstorm::loadgen
