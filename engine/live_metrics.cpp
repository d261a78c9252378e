// See live_metrics.hpp.
#include "engine/live_metrics.hpp"

#include "core/self_monitor.hpp"
#include "engine/judge.hpp"
#include "engine/remote_write.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <cctype>
#include <charconv>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace syncstorm::engine {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

constexpr std::size_t max_request_head = 8192;
constexpr auto request_timeout = std::chrono::seconds(5);

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

const char* reason_of(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 431:
      return "Request Header Fields Too Large";
  }
  return "Error";
}

// One scrape connection: read the head (at most 8 KiB, within 5 s), answer, close.
class scrape_session : public std::enable_shared_from_this<scrape_session> {
 public:
  using texts_fn = std::function<std::string(reports::exposition)>;
  scrape_session(tcp::socket s, texts_fn texts)
      : socket_(std::move(s)), timer_(socket_.get_executor()), buf_(max_request_head), texts_(std::move(texts)) {}

  void start() {
    auto self = shared_from_this();
    timer_.expires_after(request_timeout);
    timer_.async_wait([self](boost::system::error_code ec) {
      if (!ec) self->socket_.close(ec);
    });
    asio::async_read_until(socket_, buf_, "\r\n\r\n",
                           [self](boost::system::error_code ec, std::size_t) { self->on_head(ec); });
  }

 private:
  void on_head(boost::system::error_code ec) {
    if (ec && ec != asio::error::not_found) {
      timer_.cancel();
      return;  // closed, reset or timed out: nothing to answer
    }
    const auto data = buf_.data();
    const std::string_view head(static_cast<const char*>(data.data()), data.size());
    scrape_reply reply;
    if (ec == asio::error::not_found) {
      reply.status = 431;
      reply.content_type = "text/plain; charset=utf-8";
      reply.body = "request head above 8 KiB\n";
    } else {
      const scrape_request req = parse_scrape_request(head);
      const auto f = reports::negotiate(req.accept);
      const std::string text = req.valid ? texts_(f) : std::string();
      reply = answer(req, f == reports::exposition::openmetrics ? text : std::string(),
                     f == reports::exposition::prometheus_text ? text : std::string());
    }
    out_ = "HTTP/1.1 " + std::to_string(reply.status) + " " + reason_of(reply.status) +
           "\r\nContent-Type: " + reply.content_type + "\r\nContent-Length: " + std::to_string(reply.body.size()) +
           "\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n";
    if (!reply.head_only) out_ += reply.body;
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(out_), [self](boost::system::error_code, std::size_t) {
      boost::system::error_code ignored;
      self->socket_.shutdown(tcp::socket::shutdown_both, ignored);
      self->socket_.close(ignored);
      self->timer_.cancel();
    });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  asio::streambuf buf_;
  texts_fn texts_;
  std::string out_;
};

}  // namespace

void pend_unfinished_recoveries(nlohmann::json& verdicts, const std::vector<fault_occurrence>& occurrences,
                                std::int64_t at_us) {
  for (auto& v : verdicts) {
    const std::string metric = v.value("metric", "");
    const auto dot = metric.find('.');
    if (dot == std::string::npos) continue;
    const std::string what = metric.substr(0, dot), fault = metric.substr(dot + 1);
    if (what != "recovery" && what != "ready" && what != "detect") continue;
    if (!v.contains("value") || !v["value"].is_number() || !std::isinf(v["value"].get<double>())) continue;
    const fault_occurrence* last = nullptr;
    for (const auto& o : occurrences)
      if (o.name == fault && (!last || o.applied_us >= last->applied_us)) last = &o;
    if (!last) continue;
    std::int64_t since = last->applied_us;
    if (last->lasting) {
      if (last->reverted_us < 0)
        since = at_us;  // still applied: nothing to recover from yet
      else
        since = last->reverted_us;
    }
    const double bound_ms = v.contains("bound") && v["bound"].is_number() ? v["bound"].get<double>() : 0.0;
    if (static_cast<double>(at_us - since) / 1000.0 < bound_ms) {
      v["inconclusive"] = true;
      v["pass"] = false;
      v["reason"] = "not recovered yet; the bound has not run out";
    }
  }
}

std::optional<listen_address> parse_listen_address(const std::string& text, std::string& why) {
  why = "found \"" + text + "\"; expected HOST:PORT, [IPV6]:PORT or :PORT (PORT 0 to 65535)";
  std::string host, port;
  if (text.starts_with("[")) {
    const auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return std::nullopt;
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.empty()) return std::nullopt;
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string::npos) return std::nullopt;  // an IPv6 address needs brackets
    if (host.empty()) host = "0.0.0.0";
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) return std::nullopt;
  why.clear();
  return listen_address{host, static_cast<unsigned short>(value)};
}

scrape_request parse_scrape_request(std::string_view head) {
  scrape_request r;
  const auto end = head.find("\r\n\r\n");
  if (end == std::string_view::npos) return r;
  r.complete = true;
  head = head.substr(0, end + 2);
  auto line_end = head.find("\r\n");
  const std::string_view line = head.substr(0, line_end);
  const auto sp1 = line.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp1 == 0 || sp2 == std::string_view::npos || sp2 == sp1 + 1) return r;
  const std::string_view version = line.substr(sp2 + 1);
  if (!version.starts_with("HTTP/1.") || version.size() != 8) return r;
  r.method = std::string(line.substr(0, sp1));
  r.target = std::string(line.substr(sp1 + 1, sp2 - sp1 - 1));
  if (r.target.find(' ') != std::string::npos) return r;
  std::size_t at = line_end + 2;
  while (at < head.size()) {
    const auto next = head.find("\r\n", at);
    const std::string_view h = head.substr(at, next - at);
    at = next + 2;
    const auto colon = h.find(':');
    if (colon == std::string_view::npos || colon == 0) return r;  // not a header line
    if (iequals(h.substr(0, colon), "accept")) r.accept = std::string(trim(h.substr(colon + 1)));
  }
  r.valid = true;
  return r;
}

scrape_reply answer(const scrape_request& req, const std::string& openmetrics_text,
                    const std::string& prometheus_text) {
  scrape_reply out;
  out.content_type = "text/plain; charset=utf-8";
  if (!req.valid) {
    out.status = 400;
    out.body = "malformed request\n";
    return out;
  }
  if (req.method != "GET" && req.method != "HEAD") {
    out.status = 405;
    out.body = "only GET and HEAD\n";
    return out;
  }
  std::string_view path = req.target;
  path = path.substr(0, path.find('?'));
  if (path != "/metrics" && path != "/metrics/") {
    out.status = 404;
    out.body = "syncstorm serves its live metrics at /metrics\n";
    return out;
  }
  const auto f = reports::negotiate(req.accept);
  out.content_type = reports::content_type(f);
  out.body = f == reports::exposition::openmetrics ? openmetrics_text : prometheus_text;
  out.head_only = req.method == "HEAD";
  return out;
}

struct live_metrics::impl {
  impl(const scenario& s_, const plan& p_, std::size_t threads) : s(s_), p(p_), acceptor(io) {
    view.scenario = s.name;
    view.planned_s = static_cast<double>(s.duration_us) / 1e6;
    view.generator_cores =
        static_cast<double>(std::min<std::size_t>(std::max<std::size_t>(threads, 1), usable_cores()));
    for (const auto& f : s.faults) view.faults.push_back({f.name, f.kind, target_label(f), false, 0});
    render_locked();
  }

  // The fault's target as the scenario wrote it, on one line: its `target` (a unit name or an
  // object), else the proxy path of a network fault (`path:clients-lb`).
  static std::string target_label(const fault_entry& f) {
    if (f.target.is_string()) return f.target.get<std::string>();
    if ((f.target.is_object() || f.target.is_array()) && !f.target.empty()) return f.target.dump();
    if (f.fields.is_object() && f.fields.contains("path") && f.fields["path"].is_string())
      return "path:" + f.fields["path"].get<std::string>();
    return "";
  }

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket sock) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) return;
      if (!ec)
        std::make_shared<scrape_session>(std::move(sock), [this](reports::exposition f) {
          std::lock_guard lock(mu);
          return text_locked(f);
        })->start();
      accept();
    });
  }

  // The view changed (mu held): each format is rendered again when a scrape asks for it, at most
  // once per change, on the endpoint's thread.
  void render_locked() {
    view.metrics = &acc;
    om_stale = prom_stale = true;
  }
  const std::string& text_locked(reports::exposition f) {
    const bool om = f == reports::exposition::openmetrics;
    bool& stale = om ? om_stale : prom_stale;
    std::string& text = om ? om_text : prom_text;
    if (stale) {
      const std::int64_t t0 = thread_cpu_times().cpu_us;
      text = reports::render_metrics(view, f);
      stale = false;
      cost_us += thread_cpu_times().cpu_us - t0;
    }
    ++scrapes;
    return text;
  }
  // A refresh (a tick or the final values): rendered, and pushed by remote write (mu held).
  void refresh_locked() {
    render_locked();
    if (remote) remote->push(reports::live_samples(view));
  }

  const scenario& s;
  const plan& p;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::thread thread;
  std::string bound;
  std::unique_ptr<remote_writer> remote;

  mutable std::mutex mu;  // guards everything below
  metrics_shard acc;      // the run's whole view, spliced from each snapshot
  reports::live_view view;
  std::map<std::string, std::set<std::string>> active;  // fault name -> ids applied, not reverted
  std::string om_text, prom_text;
  bool om_stale = true, prom_stale = true;
  // The live view's own cost: CPU of the refreshes (splice, live judgement) and renders.
  std::int64_t cost_us = 0;
  std::uint64_t refreshes = 0, scrapes = 0;
  std::optional<cpu_times> last_cpu;
};

live_metrics::live_metrics(const std::optional<listen_address>& at_opt, const std::string& remote_write_url,
                           const scenario& s, const plan& p, std::size_t threads)
    : impl_(std::make_unique<impl>(s, p, threads)) {
  auto& i = *impl_;
  if (!remote_write_url.empty()) i.remote = std::make_unique<remote_writer>(remote_write_url);
  if (!at_opt) return;
  const listen_address& at = *at_opt;
  const std::string where =
      (at.host.find(':') != std::string::npos ? "[" + at.host + "]" : at.host) + ":" + std::to_string(at.port);
  try {
    tcp::resolver resolver(i.io);
    auto results = resolver.resolve(at.host, std::to_string(at.port), tcp::resolver::passive);
    if (results.empty()) throw std::runtime_error("no address");
    const tcp::endpoint ep = *results.begin();
    i.acceptor.open(ep.protocol());
    i.acceptor.set_option(tcp::acceptor::reuse_address(true));
    i.acceptor.bind(ep);
    i.acceptor.listen();
    const tcp::endpoint local = i.acceptor.local_endpoint();
    const std::string addr = local.address().to_string();
    i.bound = (local.address().is_v6() ? "[" + addr + "]" : addr) + ":" + std::to_string(local.port());
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot listen on " + where + ": " + e.what());
  }
  i.accept();
  i.render_locked();
  i.thread = std::thread([&i] { i.io.run(); });
}

std::string live_metrics::cost() const {
  std::lock_guard lock(impl_->mu);
  auto& i = *impl_;
  char buf[160];
  std::snprintf(buf, sizeof buf, "metrics: live view: %llu refreshes, %llu scrapes, %.1f ms of CPU",
                static_cast<unsigned long long>(i.refreshes), static_cast<unsigned long long>(i.scrapes),
                static_cast<double>(i.cost_us) / 1000.0);
  return buf;
}

std::string live_metrics::close_remote_write(int timeout_ms) {
  auto& i = *impl_;
  if (!i.remote) return {};
  i.remote->close(timeout_ms);
  std::string line = "remote write: " + std::to_string(i.remote->sent()) + " pushes sent, " +
                     std::to_string(i.remote->failed()) + " failed";
  if (!i.remote->first_error().empty()) line += " (first: " + i.remote->first_error() + ")";
  return line;
}

live_metrics::~live_metrics() {
  auto& i = *impl_;
  if (i.remote) i.remote->close(0);
  if (!i.thread.joinable()) return;
  asio::post(i.io, [&i] {
    boost::system::error_code ignored;
    i.acceptor.close(ignored);
    i.io.stop();
  });
  if (i.thread.joinable()) i.thread.join();
}

std::string live_metrics::bound() const { return impl_->bound; }

void live_metrics::set_run(const std::string& run_name, std::chrono::system_clock::time_point load_start) {
  std::lock_guard lock(impl_->mu);
  impl_->view.run = run_name;
  impl_->view.start_unix_s =
      static_cast<double>(
          std::chrono::duration_cast<std::chrono::microseconds>(load_start.time_since_epoch()).count()) /
      1e6;
  impl_->render_locked();
}

void live_metrics::tick(const metrics_shard& snapshot, std::int64_t since_us, std::int64_t at_us,
                        const std::vector<injectors::fault_record>& faults) {
  auto& i = *impl_;
  const cpu_times cpu = process_cpu_times();
  const std::int64_t cost_from = thread_cpu_times().cpu_us;
  std::lock_guard lock(i.mu);
  i.acc.splice(snapshot, since_us);
  // availability.* for http loads (judge adds them once, from a whole merge): kept spliced like
  // the http.requests they alias, unless the model records its own.
  for (const auto& [alias, source] : availability_aliases(snapshot))
    i.acc.metric(alias).splice(*snapshot.find(source), since_us);
  i.view.elapsed_s = static_cast<double>(at_us) / 1e6;
  if (i.last_cpu && cpu.wall_us > i.last_cpu->wall_us)
    i.view.generator_cpu = static_cast<double>(cpu.cpu_us - i.last_cpu->cpu_us) /
                           static_cast<double>(cpu.wall_us - i.last_cpu->wall_us) / i.view.generator_cores;
  i.last_cpu = cpu;
  judge_input in;
  in.s = &i.s;
  in.p = &i.p;
  in.merged = &i.acc;
  in.run_end_us = std::max<std::int64_t>(1, at_us);
  in.occurrences = occurrences_of(faults);
  for (auto& f : i.view.faults)
    f.applied = static_cast<std::uint64_t>(
        std::count_if(faults.begin(), faults.end(), [&](const auto& r) { return r.name == f.name && r.applied_us; }));
  in.audit_absent = "measured after the run";
  const std::vector<fault_occurrence> occurrences = in.occurrences;
  try {
    i.view.verdicts = judge(std::move(in)).verdicts;
    pend_unfinished_recoveries(i.view.verdicts, occurrences, at_us);
  } catch (const std::exception&) {
    // A live judgement that cannot be made keeps the last one; the report judges the run.
  }
  i.refresh_locked();
  ++i.refreshes;
  i.cost_us += thread_cpu_times().cpu_us - cost_from;
}

void live_metrics::fault_event(const std::string& event, const nlohmann::json& fields) {
  if (event != "fault_applied" && event != "fault_reverted") return;
  const std::string name = fields.value("fault", ""), id = fields.value("id", "");
  auto& i = *impl_;
  std::lock_guard lock(i.mu);
  auto& ids = i.active[name];
  if (event == "fault_applied") {
    ids.insert(id);
  } else {
    ids.erase(id);
  }
  for (auto& f : i.view.faults)
    if (f.name == name) {
      f.active = !ids.empty();
      if (event == "fault_applied") ++f.applied;
    }
  i.refresh_locked();
}

void live_metrics::finish(const metrics_shard& merged, const nlohmann::json& verdicts, std::int64_t run_end_us) {
  auto& i = *impl_;
  std::lock_guard lock(i.mu);
  i.acc = merged;
  i.view.verdicts = verdicts;
  i.view.elapsed_s = static_cast<double>(run_end_us) / 1e6;
  i.view.finished = true;
  i.refresh_locked();
}

std::string live_metrics::text(reports::exposition f) const {
  std::lock_guard lock(impl_->mu);
  return impl_->text_locked(f);
}

}  // namespace syncstorm::engine
