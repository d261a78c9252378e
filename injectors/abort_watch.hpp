// Abort conditions (scenario `abort[]`, DESIGN §6 safety): a metric condition judged on the
// once-a-second merged snapshot, or an external HTTP health probe. The first condition that
// fires calls `on_fire(name, reason)` once; the engine then stops the load, reverts the faults
// and ends the run with exit 1, the condition listed as a failed verdict.
//
// Metric conditions use core/sla.hpp's evaluate() on the run so far: window "all" (default)
// is [0, now); a condition with `for` fires only after its bound was broken at every check for
// that long. A condition with too few samples to *pass* still fires once its value breaks the
// bound (an abort needs evidence of harm, not proof of health). Probes: GET url every `every`
// (default 1 s) with `timeout` (default 2 s); a failure is a connect/TLS error, a timeout or a
// status outside 200-399; `fail_after` (default 3) consecutive failures fire. An https probe
// trusts the system's store and target.tls.ca_file (probe_tls_for says which target.tls settings
// a probe takes).
// Threading: check_metrics() from the controller thread; probes run on their own thread.
#pragma once

#include "core/metrics.hpp"
#include "core/scenario.hpp"

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace syncstorm::injectors {

// How an https probe verifies its server.
struct probe_tls {
  std::string ca_file;      // PEM CAs trusted in addition to the system's default store; empty: that store alone
  std::string server_name;  // SNI (unless an IP address) and the name verified; empty: the URL's host
  bool verify = true;       // verify the certificate chain and the name
};

// The scenario's target as its probes see it: target.tls and the target's endpoint URLs
// (target.endpoints), `${env:}` resolved.
struct probe_target {
  probe_tls tls;
  std::vector<std::string> endpoints;
};

// What a probe of `url` uses. The CA file always: a probe may check any health endpoint, so the
// file is added to the system's store, not put in its place. server_name and verify describe the
// target's certificate, so only a URL with the host and port of one of the endpoints takes them
// (hosts compared as written, case aside: "localhost" is not "127.0.0.1"); any other URL is
// verified against its own host name.
probe_tls probe_tls_for(const std::string& url, const probe_target& target);

// One GET; empty on success (2xx/3xx), else why (one line, never the URL's userinfo). The URL may
// hold userinfo (user:password@host, percent-encoded), sent as Basic credentials. The status line
// must arrive within timeout_ms in all (a reply drip-fed a byte at a time does not extend it) and
// within its first 8 KiB. `tls` applies to https URLs; a CA file that cannot be read or holds no
// certificate is the failure reason, named as scenario.target.tls.ca_file.
std::string http_probe(const std::string& url, int timeout_ms, const probe_tls& tls = {});
// The URL with any userinfo (user:password@) left out, for messages.
std::string without_userinfo(const std::string& url);

class abort_watch {
 public:
  using fire_fn = std::function<void(const std::string& name, const std::string& reason)>;
  // `target` gives the probes their TLS settings (probe_tls_for).
  abort_watch(const std::vector<abort_entry>& conditions, fire_fn on_fire, probe_target target = {});
  ~abort_watch();

  void start();  // probe thread (when there are probes)
  void stop();   // idempotent
  // Judges the metric conditions on a snapshot taken at `at_us` (run clock).
  void check_metrics(const metrics_shard& snapshot, std::int64_t at_us);

  bool fired() const { return fired_; }
  std::string name() const;
  std::string reason() const;

 private:
  void fire(const std::string& name, const std::string& reason);
  void probe_loop();

  std::vector<abort_entry> conditions_;
  fire_fn on_fire_;
  probe_target target_;
  std::atomic<bool> fired_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::string name_, reason_;
  std::map<std::string, std::int64_t> broken_since_;
  std::thread probes_;
};

}  // namespace syncstorm::injectors
