// The bootstrap model's runtime (bootstrap_model.hpp): the seeding pushes on a private
// io_context in start(), then one coroutine per client on its worker, over the loadgen HTTP
// client (http_client.hpp). No Beast here.
#include "loadgen/target_access.hpp"
#include "loadgen/bootstrap_model.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <array>
#include <stdexcept>

#include "core/scenario.hpp"
#include "loadgen/detail/arrival_loop.hpp"
#include "loadgen/detail/task_group.hpp"
#include "loadgen/http_client.hpp"
#include "loadgen/detail/ws_logic.hpp"

namespace syncstorm::loadgen {

using json = nlohmann::json;

namespace {

constexpr auto use_tuple = net::as_tuple(net::use_awaitable);
constexpr std::size_t seed_parallel = 4;

bool cancelled(const net::cancellation_state& cs) { return cs.cancelled() != net::cancellation_type::none; }

struct boot_worker {
  boot_worker(worker& w_, const bootstrap_config& c)
      : w(w_),
        pull(m(c, "pull.latency")),
        time(m(c, "bootstrap.time")),
        changes(m(c, "bootstrap.changes")),
        incomplete(m(c, "bootstrap.incomplete")) {
    detail::register_arrival_metrics(w, false);
    for (std::size_t b = 0; b < error_bucket_count; ++b)
      errors[b] = &m(c, "pull.errors." + std::string(to_string(static_cast<error_bucket>(b))));
  }
  timed_metric& m(const bootstrap_config& c, const std::string& n) { return w.metrics().metric(n + "@" + c.name); }
  worker& w;
  timed_metric &pull, &time, &changes, &incomplete;
  std::array<timed_metric*, error_bucket_count> errors{};
  bool stopping = false;
  net::steady_timer* arrival_timer = nullptr;  // the arrival loop's, while it waits
};

}  // namespace

struct bootstrap_model::impl {
  bootstrap_config config;
  http_site site;
  std::vector<std::unique_ptr<boot_worker>> workers;
  std::vector<audit_op> seeded;
  std::int64_t seed_us = 0;
  bool seeded_done = false;

  // Seeds the stream with config.changes appends, `seed_parallel` pushes in flight.
  void seed_stream(run_clock::time_point run_start) {
    const auto& c = config;
    if (c.changes == 0) return;
    const auto t0 = run_clock::now();
    const std::string client = c.name + "-seed";
    const std::int64_t created = std::chrono::duration_cast<std::chrono::microseconds>(t0 - run_start).count();
    seeded.reserve(c.changes);
    for (std::size_t k = 1; k <= c.changes; ++k) {
      audit_op op;
      op.id = c.run_tag + "-" + c.name + "-seed-" + std::to_string(k);
      op.client = client;
      op.stream = c.stream;
      op.seq = static_cast<std::int64_t>(k);
      op.kind = 'a';
      op.created_us = created;
      seeded.push_back(std::move(op));
    }
    net::io_context io;
    std::size_t next = 0;
    std::string error;
    auto pusher = [&]() -> net::awaitable<void> {
      http_client conn(io, site);
      while (next < c.changes && error.empty()) {
        const std::size_t from = next;
        const std::size_t to = std::min(c.changes, from + c.seed_batch);
        next = to;
        std::vector<sync_op> ops;
        ops.reserve(to - from);
        for (std::size_t k = from; k < to; ++k) {
          sync_op op;
          op.id = seeded[k].id;
          op.stream = c.stream;
          op.seq = seeded[k].seq;
          op.t_us = created;
          op.kind = op_kind::append;
          op.value = json{{"n", k + 1}};
          ops.push_back(std::move(op));
        }
        const std::string body = render_push(c.profile, client, ops);
        http_reply r;
        for (int attempt = 0; attempt < 5; ++attempt) {
          r = co_await conn.async_request(c.profile.push_method, push_target(c.profile), body, c.timeout_us);
          if (!r.failed) break;
          net::steady_timer t(io, std::chrono::milliseconds(200 << attempt));
          co_await t.async_wait(use_tuple);
        }
        if (r.failed) {
          error = std::string(to_string(*r.failed)) + (r.status ? " " + std::to_string(r.status) : "");
          break;
        }
        auto pr = parse_push_reply(c.profile, r.body);
        if (pr.malformed) {
          error = pr.reason;
          break;
        }
        const std::int64_t now =
            std::chrono::duration_cast<std::chrono::microseconds>(run_clock::now() - run_start).count();
        std::size_t acked = 0;
        for (std::size_t k = from; k < to; ++k) {
          seeded[k].first_sent_us = now;
          seeded[k].state = audit_op_state::in_doubt;
        }
        // Ids are "<prefix><k>"; the batch is contiguous.
        const std::string prefix = c.run_tag + "-" + c.name + "-seed-";
        for (const auto& id : pr.acked) {
          if (!id.starts_with(prefix)) continue;
          const std::size_t k = std::stoull(id.substr(prefix.size()));
          if (k >= from + 1 && k <= to) {
            seeded[k - 1].acked_us = now;
            seeded[k - 1].state = audit_op_state::acked;
            ++acked;
          }
        }
        if (acked != to - from) {
          error = "a seed push acknowledged " + std::to_string(acked) + " of " + std::to_string(to - from) + " ops";
          break;
        }
      }
    };
    for (std::size_t i = 0; i < seed_parallel; ++i) net::co_spawn(io, pusher(), net::detached);
    io.run();
    if (!error.empty())
      throw std::runtime_error("load " + c.name + ": seeding stream " + c.stream + " failed: " + error);
    seed_us = std::chrono::duration_cast<std::chrono::microseconds>(run_clock::now() - t0).count();
  }
};

namespace {

net::awaitable<void> run_client(boot_worker& bw, const bootstrap_model::impl& m) {
  co_await net::this_coro::throw_if_cancelled(false);
  const auto cs = co_await net::this_coro::cancellation_state;
  const auto& c = m.config;
  auto& io = bw.w.io();
  if (bw.stopping || cancelled(cs)) co_return;
  http_client conn(io, m.site);
  const std::int64_t t0 = bw.w.now_us();
  std::string cursor = "0";
  std::uint64_t pulled = 0;
  int failures = 0;
  bool ok = true;
  // The changes, page by page (the stream parameter is sent even to a global feed; changes of
  // other streams are not counted).
  for (;;) {
    if (bw.stopping || cancelled(cs)) co_return;  // stopped before usable: nothing to record
    const std::int64_t sent = bw.w.now_us();
    auto r = co_await conn.async_request("GET", changes_target(c.profile, &c.stream, cursor, c.page), "", c.timeout_us);
    std::optional<error_bucket> failed = r.failed;
    changes_page page;
    if (!failed) {
      page = parse_changes(c.profile, r.body);
      if (page.malformed) failed = error_bucket::protocol;
    }
    const std::int64_t now = bw.w.now_us();
    bw.pull.record(now, now - sent, !failed);
    if (failed) {
      bw.errors[static_cast<std::size_t>(*failed)]->add(now, 1, false);
      if (++failures > c.retries) {
        ok = false;
        break;
      }
      net::steady_timer t(
          io, std::chrono::microseconds(detail::backoff_us(failures, 100'000, 2'000'000, detail::mix64(now))));
      co_await t.async_wait(use_tuple);
      continue;
    }
    failures = 0;
    std::uint64_t mine = 0;
    for (const auto& ch : page.changes) mine += ch.stream == c.stream;
    pulled += mine;
    if (mine) bw.changes.add(now, mine);
    if (page.changes.empty() || page.next.empty() || page.next == cursor) break;
    cursor = page.next;
  }
  // Then the records: the device is usable.
  while (ok) {
    const std::int64_t sent = bw.w.now_us();
    auto r = co_await conn.async_request("GET", records_target(c.profile, c.stream), "", c.timeout_us);
    std::optional<error_bucket> failed = r.failed;
    if (!failed && parse_records(c.profile, r.body).malformed) failed = error_bucket::protocol;
    const std::int64_t now = bw.w.now_us();
    bw.pull.record(now, now - sent, !failed);
    if (!failed) break;
    bw.errors[static_cast<std::size_t>(*failed)]->add(now, 1, false);
    if (++failures > c.retries || bw.stopping || cancelled(cs)) ok = false;
  }
  const std::int64_t end = bw.w.now_us();
  bw.time.record(end, end - t0, ok);
  if (pulled < c.changes) bw.incomplete.add(end, 1, false);
}

// Starts `mine` clients on the phases' schedule, shifted by `offset_us`.
net::awaitable<void> run_client_arrivals(boot_worker& bw, const bootstrap_model::impl& m, arrival_schedule schedule,
                                         std::size_t mine, std::int64_t offset_us) {
  std::size_t started = 0;
  co_await detail::run_arrival_loop(
      bw.w, std::move(schedule), bw.arrival_timer, [&] { return bw.stopping || started >= mine; },
      [&](std::int64_t, std::int64_t) {
        ++started;
        bw.w.tasks().spawn(run_client(bw, m));
      },
      {.record_lag = false, .offset_us = offset_us});
}

}  // namespace

bootstrap_model::bootstrap_model(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
bootstrap_model::~bootstrap_model() = default;

std::string_view bootstrap_model::name() const { return impl_->config.name; }
const std::string& bootstrap_model::stream() const noexcept { return impl_->config.stream; }
std::int64_t bootstrap_model::seed_us() const noexcept { return impl_->seed_us; }

void bootstrap_model::collect(std::vector<audit_op>& out) const {
  out.insert(out.end(), impl_->seeded.begin(), impl_->seeded.end());
}

void bootstrap_model::start(worker& w) {
  auto& m = *impl_;
  const auto& c = m.config;
  if (m.workers.empty()) {
    m.workers.resize(w.count());
    m.site.resolve(w.io(), c.name);
    m.seed_stream(w.start());
  }
  auto& bw = *(m.workers.at(w.index()) = std::make_unique<boot_worker>(w, c));
  // Client k starts at the phases' k-th arrival counted from now (seeding took its time), or now
  // when the phases hold fewer arrivals than clients; this worker's are k = index, index + count, ...
  arrival_schedule schedule(c.phases, w.index(), w.count());
  const std::size_t mine = split_count(c.clients, w.index(), w.count());
  std::size_t scheduled = 0;
  for (arrival_schedule count = schedule; scheduled < mine && count.next(); ++scheduled) {
  }
  for (std::size_t k = scheduled; k < mine; ++k) w.tasks().spawn(run_client(bw, m));
  if (scheduled > 0) w.tasks().spawn(run_client_arrivals(bw, m, std::move(schedule), scheduled, w.now_us()));
}

void bootstrap_model::stop() {
  for (auto& bw : impl_->workers)
    if (bw)
      net::post(bw->w.io(), [p = bw.get()] {
        p->stopping = true;
        if (p->arrival_timer) p->arrival_timer->cancel();
      });
}

std::unique_ptr<bootstrap_model> make_bootstrap_model(const bootstrap_config& config) {
  auto m = std::make_unique<bootstrap_model::impl>();
  m->config = config;
  const std::string where = "load " + config.name + ": ";
  if (config.clients == 0) throw std::invalid_argument(where + "clients: found 0; expected an integer >= 1");
  if (config.page == 0) throw std::invalid_argument(where + "page: found 0; expected an integer >= 1");
  if (config.seed_batch == 0) throw std::invalid_argument(where + "seed_batch: found 0; expected an integer >= 1");
  if (config.timeout_us <= 0)
    throw std::invalid_argument(where + "timeout: found " + std::to_string(config.timeout_us) +
                                " µs; expected a positive duration");
  if (config.phases.empty()) throw std::invalid_argument(where + "phases: found none; expected at least one phase");
  if (config.run_tag.empty())
    throw std::invalid_argument(where + "run tag: found \"\"; expected a tag that makes op ids unique");
  arrival_schedule check(config.phases);
  if (m->config.stream.empty()) m->config.stream = config.run_tag + "-" + config.name + "-boot";
  m->site = http_site::make(config.http_url, config.headers, config.tls, "scenario.target.endpoints.http");
  return std::make_unique<bootstrap_model>(std::move(m));
}

bootstrap_config bootstrap_config_from(const std::string& name, const json& f, const std::vector<phase_spec>& phases,
                                       const json& target, const std::string& base_http_url, const std::string&,
                                       const std::string& run_tag, std::uint64_t seed, bool resolve,
                                       const std::string& where) {
  bootstrap_config c = bootstrap_settings_from(name, f, phases, where);
  bind_bootstrap(c, target, base_http_url, run_tag, seed, resolve);
  return c;
}

bootstrap_config bootstrap_settings_from(const std::string& name, const json& f, const std::vector<phase_spec>& phases,
                                         const std::string& where) {
  bootstrap_config c;
  c.name = name;
  auto bad = [&](const std::string& key, const json& found, const std::string& expected) {
    throw std::invalid_argument(where + "." + key + ": found " + found.dump() + "; expected " + expected);
  };
  auto get_int = [&](const char* key, std::int64_t def, std::int64_t min, std::int64_t max) -> std::int64_t {
    if (!f.contains(key)) return def;
    if (!f[key].is_number_integer() || f[key].get<std::int64_t>() < min || f[key].get<std::int64_t>() > max)
      bad(key, f[key], "an integer from " + std::to_string(min) + " to " + std::to_string(max));
    return f[key].get<std::int64_t>();
  };
  c.clients = static_cast<std::size_t>(get_int("clients", 1, 1, 1'000'000));
  c.changes = static_cast<std::size_t>(get_int("changes", 0, 0, 100'000'000));
  c.page = static_cast<std::size_t>(get_int("page", 1000, 1, 100'000));
  c.seed_batch = static_cast<std::size_t>(get_int("seed_batch", 2000, 1, 100'000));
  c.retries = static_cast<int>(get_int("retries", 10, 0, 1000));
  if (f.contains("timeout")) {
    c.timeout_us = duration_us(f["timeout"]);
    if (c.timeout_us <= 0) bad("timeout", f["timeout"], "a positive duration like \"30s\"");
  }
  if (f.contains("stream")) {
    if (!f["stream"].is_string() || f["stream"].get<std::string>().empty()) bad("stream", f["stream"], "a stream name");
    c.stream = f["stream"];
  }
  for (const auto& p0 : phases) {
    phase_spec p = p0;
    if (!p.rate && !p.to) p.rate = 0.0;
    c.phases.push_back(p);
  }
  return c;
}

void bind_bootstrap(bootstrap_config& c, const json& target, const std::string& base_http_url,
                    const std::string& run_tag, std::uint64_t seed, bool resolve) {
  c.run_tag = run_tag;
  c.seed = seed;
  c.http_url = target_http_url(target, base_http_url, c.name, resolve);
  auto access = target_access_from(target, resolve);
  c.headers = std::move(access.headers);
  c.tls = std::move(access.tls);
  c.profile = std::move(access.profile);
}

}  // namespace syncstorm::loadgen
