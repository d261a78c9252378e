// See server_metrics.hpp.
#include "engine/server_metrics.hpp"

#include "core/scenario.hpp"
#include "labstack/haproxy.hpp"
#include "labstack/lab.hpp"
#include "loadgen/http_client.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace syncstorm::engine {
namespace {

std::string first_line(std::string s, std::size_t max = 200) {
  s = s.substr(0, s.find('\n'));
  if (s.size() > max) s = s.substr(0, max) + "…";
  return s;
}

// GET url; the body's families. A persistent site (resolved once, again after a failure).
std::function<std::map<std::string, double>()> prometheus_reader(const std::string& url) {
  auto site = std::make_shared<loadgen::http_site>(
      loadgen::http_site::make(url, {{"Accept", "text/plain;version=0.0.4"}}, {}, "target.metrics.endpoints[].url"));
  return [site]() {
    loadgen::http_reply r = loadgen::polling_request(*site, "GET", "", "", 2'000'000);
    if (r.failed) throw std::runtime_error(r.error.empty() ? "HTTP " + std::to_string(r.status) : r.error);
    return parse_prometheus_text(r.body);
  };
}

// One query whose single row's columns are the values (column name -> number); a NULL is left
// out. The connection is kept and opened again after a failure; each statement has 2 s.
std::function<std::map<std::string, double>()> sql_reader(std::function<std::string()> dsn, std::string query) {
  struct conn_holder {
    PGconn* c = nullptr;
    ~conn_holder() {
      if (c) PQfinish(c);
    }
  };
  auto held = std::make_shared<conn_holder>();
  return [held, dsn = std::move(dsn), query = std::move(query)]() {
    if (!held->c || PQstatus(held->c) != CONNECTION_OK) {
      if (held->c) PQfinish(held->c);
      const std::string conninfo =
          dsn() + " connect_timeout=2 application_name=syncstorm-metrics options='-c statement_timeout=2000'";
      held->c = PQconnectdb(conninfo.c_str());
      if (PQstatus(held->c) != CONNECTION_OK) {
        std::string why = first_line(PQerrorMessage(held->c));
        PQfinish(held->c);
        held->c = nullptr;
        throw std::runtime_error("connect: " + why);
      }
    }
    PGresult* r = PQexec(held->c, query.c_str());
    std::map<std::string, double> out;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
      std::string why = first_line(PQresultErrorMessage(r));
      PQclear(r);
      if (PQstatus(held->c) != CONNECTION_OK) {
        PQfinish(held->c);
        held->c = nullptr;
      }
      throw std::runtime_error("query: " + (why.empty() ? std::string("no row") : why));
    }
    for (int col = 0; col < PQnfields(r); ++col) {
      if (PQgetisnull(r, 0, col)) continue;
      const std::string v = PQgetvalue(r, 0, col);
      if (v == "t" || v == "f") {
        out[PQfname(r, col)] = v == "t" ? 1.0 : 0.0;
        continue;
      }
      char* end = nullptr;
      const double d = std::strtod(v.c_str(), &end);
      if (end && *end == '\0' && !v.empty()) out[PQfname(r, col)] = d;
    }
    PQclear(r);
    return out;
  };
}

}  // namespace

std::map<std::string, double> parse_prometheus_text(std::string_view text) {
  std::map<std::string, double> out;
  while (!text.empty()) {
    const auto nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    if (line.empty() || line.front() == '#') continue;
    std::size_t name_end = 0;
    while (name_end < line.size() &&
           (std::isalnum(static_cast<unsigned char>(line[name_end])) || line[name_end] == '_' || line[name_end] == ':'))
      ++name_end;
    if (name_end == 0) continue;
    const std::string_view name = line.substr(0, name_end);
    std::size_t at = name_end;
    if (at < line.size() && line[at] == '{') {
      // Skip the labels, minding quoted values (which may hold '}' and escaped quotes).
      bool quoted = false;
      for (++at; at < line.size(); ++at) {
        const char c = line[at];
        if (quoted && c == '\\') {
          ++at;
        } else if (c == '"') {
          quoted = !quoted;
        } else if (!quoted && c == '}') {
          break;
        }
      }
      if (at >= line.size()) continue;
      ++at;
    }
    if (at >= line.size() || line[at] != ' ') continue;
    std::string_view rest = line.substr(at + 1);
    while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
    const std::string value(rest.substr(0, rest.find(' ')));
    if (name.ends_with("_bucket")) continue;
    char* end = nullptr;
    double v = 0;
    if (value == "+Inf")
      v = INFINITY;
    else if (value == "-Inf")
      v = -INFINITY;
    else
      v = std::strtod(value.c_str(), &end);
    if (value != "+Inf" && value != "-Inf" && (end == value.c_str() || *end != '\0')) continue;
    if (std::isnan(v)) continue;
    out[std::string(name)] += v;
  }
  return out;
}

std::vector<server_source> server_sources(const nlohmann::json& target, lab::lab* the_lab) {
  std::vector<server_source> out;
  const nlohmann::json m = target.value("metrics", nlohmann::json::object());
  for (const auto& e : m.value("endpoints", nlohmann::json::array()))
    out.push_back({e.at("name").get<std::string>(), prometheus_reader(resolve_env(e.at("url").get<std::string>()))});
  if (!the_lab || !m.value("lab", true)) return out;
  for (const auto& p : the_lab->pods())
    out.push_back({p.name, prometheus_reader("http://" + p.address + ":" + std::to_string(p.port) + "/metrics")});
  lab::lab* l = the_lab;
  out.push_back({"db-primary", sql_reader([l] { return l->db_dsn(); },
                                          "SELECT count(*) AS pg_replicas, "
                                          "coalesce(max(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)), 0) "
                                          "AS pg_replication_lag_bytes FROM pg_stat_replication")});
  if (l->replica_dsn()) {
    out.push_back(
        {"db-replica", sql_reader([l] { return l->replica_dsn().value_or(l->db_dsn()); },
                                  "SELECT CASE WHEN NOT pg_is_in_recovery() THEN 0 "
                                  "WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 "
                                  "ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END "
                                  "AS pg_replication_lag_seconds, "
                                  "CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() ELSE false END "
                                  "AS pg_replay_paused")});
  }
  const std::string stats = the_lab->status().value("lb", nlohmann::json::object()).value("stats_socket", "");
  if (!stats.empty()) {
    out.push_back({"lb", [stats] {
                     std::map<std::string, double> v{{"haproxy_servers", 0}, {"haproxy_servers_up", 0}};
                     for (const auto& s : lab::haproxy_show_stat(stats, std::chrono::milliseconds(1000))) {
                       // The API backend's pods: each pod is one server plus source-address
                       // slots ("pod-0.s1"), which go up and down with it.
                       if (s.backend != "be_http" || s.server == "BACKEND" || s.server.find('.') != std::string::npos)
                         continue;
                       v["haproxy_servers"] += 1;
                       v["haproxy_servers_up"] += s.up ? 1 : 0;
                     }
                     return v;
                   }});
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> server_combinations(const scenario& s) {
  std::set<std::pair<std::string, std::string>> out;
  auto add = [&](const rule_entry& r) {
    for (const char* how : {"min", "sum", "mean"}) {
      const std::string open = std::string(how) + "(server.";
      if (r.metric.starts_with(open) && r.metric.ends_with(")"))
        out.emplace(r.metric.substr(std::string(how).size() + 1, r.metric.size() - std::string(how).size() - 2), how);
    }
  };
  for (const auto& r : s.slas) add(r);
  for (const auto& a : s.aborts)
    if (a.rule) add(*a.rule);
  return {out.begin(), out.end()};
}

struct server_scraper::impl {
  std::vector<server_source> sources;
  std::vector<std::pair<std::string, std::string>> combined;
  std::chrono::microseconds every;
  std::chrono::steady_clock::time_point start;
  std::thread thread;
  mutable std::mutex mu;
  std::condition_variable cv;
  bool stopping = false;
  metrics_shard shard;
  struct health {
    int rounds = 0, failures = 0;
    std::string last_error;
  };
  std::map<std::string, health> health_of;

  void round() {
    std::map<std::string, std::vector<double>> across;  // name -> the instances' values this round
    std::vector<std::tuple<std::string, std::string, double>> got;
    std::map<std::string, std::pair<bool, std::string>> status;
    for (const auto& s : sources) {
      try {
        for (const auto& [name, v] : s.read()) {
          got.emplace_back(name, s.instance, v);
          across[name].push_back(v);
        }
        status[s.instance] = {true, ""};
      } catch (const std::exception& e) {
        status[s.instance] = {false, first_line(e.what())};
      }
    }
    const std::int64_t at =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - start).count();
    std::lock_guard lock(mu);
    for (const auto& [name, inst, v] : got) shard.gauge("server." + name + "@" + inst, at, v);
    for (const auto& [name, vs] : across) shard.gauge("server." + name, at, *std::max_element(vs.begin(), vs.end()));
    for (const auto& [metric, how] : combined) {
      auto it = across.find(metric.substr(std::string("server.").size()));
      if (it == across.end()) continue;  // no instance reported it this round
      const auto& vs = it->second;
      double v = 0;
      if (how == "min") {
        v = *std::min_element(vs.begin(), vs.end());
      } else {
        for (double x : vs) v += x;
        if (how == "mean") v /= static_cast<double>(vs.size());
      }
      shard.gauge(how + "(" + metric + ")", at, v);
    }
    for (const auto& [inst, st] : status) {
      shard.gauge("server.up@" + inst, at, st.first ? 1.0 : 0.0);
      auto& h = health_of[inst];
      ++h.rounds;
      if (!st.first) {
        ++h.failures;
        h.last_error = st.second;
      }
    }
  }

  void run() {
    auto next = std::chrono::steady_clock::now();
    std::unique_lock lock(mu);
    while (!stopping) {
      lock.unlock();
      round();
      lock.lock();
      next += every;
      if (next < std::chrono::steady_clock::now()) next = std::chrono::steady_clock::now() + every;
      cv.wait_until(lock, next, [&] { return stopping; });
    }
  }
};

server_scraper::server_scraper(std::vector<server_source> sources, std::chrono::microseconds every,
                               std::vector<std::pair<std::string, std::string>> combined)
    : impl_(std::make_unique<impl>()) {
  impl_->sources = std::move(sources);
  impl_->combined = std::move(combined);
  impl_->every = every > std::chrono::microseconds(0) ? every : std::chrono::seconds(1);
}

server_scraper::~server_scraper() { stop(); }

void server_scraper::start(std::chrono::steady_clock::time_point run_start) {
  impl_->start = run_start;
  if (impl_->sources.empty()) return;
  impl_->thread = std::thread([this] { impl_->run(); });
}

void server_scraper::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  if (impl_->thread.joinable()) impl_->thread.join();
}

metrics_shard server_scraper::snapshot(std::int64_t since_us) const {
  std::lock_guard lock(impl_->mu);
  return since_us > 0 ? impl_->shard.copy_since(since_us) : impl_->shard;
}

std::vector<std::string> server_scraper::problems() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [inst, h] : impl_->health_of)
    if (h.failures)
      out.push_back(inst + ": " + std::to_string(h.failures) + " of " + std::to_string(h.rounds) +
                    " scrapes failed (last: " + h.last_error + ")");
  return out;
}

}  // namespace syncstorm::engine
