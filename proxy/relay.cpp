// The lab's pass-through TCP relays (see lab_relay.hpp). One io_context on one thread: every
// connection, the control socket and the signals are served by coroutines on it, so no state
// here needs a lock.
#include "proxy/relay.hpp"

#include "core/json_limits.hpp"
#include "core/net.hpp"
#include "process/control_socket.hpp"
#include "proxy/fault_proxy.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <deque>
#include <optional>
#include <random>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <vector>

namespace syncstorm::proxy {
namespace {

using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace net::experimental::awaitable_operators;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

tcp::endpoint parse_endpoint(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("relay: found address \"" + s + "\"; expected IP:PORT");
  return {net::ip::make_address(s.substr(0, colon)), static_cast<unsigned short>(std::stoi(s.substr(colon + 1)))};
}

std::string format_endpoint(const tcp::endpoint& e) { return e.address().to_string() + ":" + std::to_string(e.port()); }

// Buffers exist only while bytes are in flight; idle connections hold none.
class buffer_pool {
 public:
  using buffer = std::array<char, 65536>;
  std::unique_ptr<buffer> take() {
    if (free_.empty()) return std::make_unique<buffer>();
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void give(std::unique_ptr<buffer> b) {
    if (free_.size() < 256) free_.push_back(std::move(b));
  }

 private:
  std::vector<std::unique_ptr<buffer>> free_;
};

// Pipes for splice(2) (zero-copy forwarding): one is held only for a round (socket → pipe →
// socket) and given back empty, so idle connections hold none.
class pipe_pool {
 public:
  struct pipe_fds {
    int r = -1, w = -1;
    std::size_t cap = 65536;
  };
  ~pipe_pool() {
    for (auto& p : free_) close(p);
  }
  std::optional<pipe_fds> take() {
    if (!free_.empty()) {
      auto p = free_.back();
      free_.pop_back();
      return p;
    }
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return std::nullopt;
    pipe_fds p{fds[0], fds[1], 65536};
    // A bigger pipe moves more per round; the kernel may refuse (pipe-max-size, per-user pages).
    int got = ::fcntl(p.w, F_SETPIPE_SZ, 1 << 20);
    if (got > 0) p.cap = static_cast<std::size_t>(got);
    return p;
  }
  // `empty`: the round drained it (else its bytes are dropped with it).
  void give(const pipe_fds& p, bool empty) {
    if (empty && free_.size() < 16)
      free_.push_back(p);
    else
      close(p);
  }

 private:
  static void close(const pipe_fds& p) {
    ::close(p.r);
    ::close(p.w);
  }
  std::vector<pipe_fds> free_;
};

struct path_state;

// One direction of a connection: the reader stamps each chunk with the time it may leave (now +
// the path's delay ± spread, never before the previous chunk) and queues it; the writer sends it
// then, through the path's token bucket, and holds it while the direction is blackholed. Queued
// bytes are bounded, so a slowed direction pushes back on its sender as a slow link would.
struct chunk {
  std::unique_ptr<buffer_pool::buffer> buf;  // null for an injected answer or an end-of-stream
  std::string text;                          // an injected answer (http_error)
  std::size_t offset = 0, length = 0;
  std::int64_t due_us = 0;
  bool eof = false, close_after = false;
  bool paid = false;  // its bytes were taken from the bucket
};

struct flow {
  explicit flow(const net::any_io_executor& ex) : wake_writer(ex), wake_reader(ex) {}
  std::deque<chunk> q;
  std::size_t queued = 0;
  std::int64_t last_due = 0;
  net::steady_timer wake_writer, wake_reader;
  bool done = false;
  bool splicing = false;       // a splice round owns the destination socket; the writer waits
  bool readable_hint = false;  // readiness already seen (edge-triggered epoll): read without waiting
};

constexpr std::size_t max_queued = 4 << 20;

struct connection {
  connection(tcp::socket client, path_state& p)
      : down(std::move(client)),
        up(down.get_executor()),
        path(&p),
        flows{flow(down.get_executor()), flow(down.get_executor())} {}
  tcp::socket down;  // client side
  tcp::socket up;    // upstream side
  path_state* path;
  flow flows[2];  // [0]: up (client → upstream), [1]: down
  http_request_tracker http;
  bool closed = false;
  void close() {
    closed = true;
    boost::system::error_code ec;
    // SO_LINGER 0: the peer sees a reset, as when a real path breaks.
    if (down.is_open()) {
      down.set_option(net::socket_base::linger(true, 0), ec);
      down.close(ec);
    }
    if (up.is_open()) {
      up.set_option(net::socket_base::linger(true, 0), ec);
      up.close(ec);
    }
    for (auto& f : flows) {
      f.wake_writer.cancel();
      f.wake_reader.cancel();
    }
  }
};

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct path_state {
  std::string name;
  tcp::endpoint listen;
  tcp::endpoint upstream;
  std::vector<net::ip::address> sources;
  std::size_t next_source = 0;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::list<std::weak_ptr<connection>> conns;
  std::uint64_t accepted = 0, upstream_failures = 0, bytes_up = 0, bytes_down = 0;
  // Fault proxy state (fault_proxy.hpp): what is applied, one bucket per direction shared by
  // every connection of the path, and counters of what the faults did.
  bool http = false;  // HTTP/1.1 requests flow up this path (http_error applies)
  path_faults faults;
  token_bucket buckets[2];
  std::mt19937_64 rng{1};
  std::uint64_t faults_version = 0;
  std::uint64_t injected_errors = 0, injected_resets = 0, held_connects = 0;

  std::size_t active() const {
    std::size_t n = 0;
    for (auto& w : conns)
      if (!w.expired()) ++n;
    return n;
  }
  std::size_t reset_all() {
    std::size_t n = 0;
    for (auto& w : conns)
      if (auto c = w.lock()) {
        c->close();
        ++n;
      }
    conns.clear();
    return n;
  }
  // Resets each open connection with probability percent/100.
  std::size_t reset_share(double percent) {
    std::size_t n = 0;
    std::uniform_real_distribution<double> u(0, 100);
    for (auto& w : conns)
      if (auto c = w.lock(); c && !c->closed && u(rng) < percent) {
        c->close();
        ++n;
      }
    injected_resets += n;
    return n;
  }
  bool roll(double percent) {
    if (percent <= 0) return false;
    if (percent >= 100) return true;
    return std::uniform_real_distribution<double>(0, 100)(rng) < percent;
  }
  void wake_all() {
    for (auto& w : conns)
      if (auto c = w.lock())
        for (auto& f : c->flows) f.wake_writer.cancel();
  }
};

class relay_host {
 public:
  relay_host(net::io_context& io, relay_config cfg) : io_(io), cfg_(std::move(cfg)) {}

  void start() {
    for (const auto& pc : cfg_.paths) {
      auto ps = std::make_unique<path_state>();
      ps->name = pc.name;
      ps->http = pc.http;
      ps->listen = parse_endpoint(pc.listen);
      ps->upstream = parse_endpoint(pc.upstream);
      for (auto& s : pc.sources) ps->sources.push_back(net::ip::make_address(s));
      ps->acceptor = std::make_unique<tcp::acceptor>(io_);
      ps->acceptor->open(ps->listen.protocol());
      ps->acceptor->set_option(net::socket_base::reuse_address(true));
      boost::system::error_code ec;
      ps->acceptor->bind(ps->listen, ec);
      if (ec)
        throw std::runtime_error("relay " + pc.name + ": cannot listen on " + format_endpoint(ps->listen) + ": " +
                                 ec.message());
      ps->acceptor->listen(net::socket_base::max_listen_connections);
      ps->listen = ps->acceptor->local_endpoint();  // the port taken when 0 was asked
      net::co_spawn(io_, accept_loop(*ps), net::detached);
      paths_[pc.name] = std::move(ps);
    }
    std::filesystem::remove(cfg_.control);
    control_ = std::make_unique<net::local::stream_protocol::acceptor>(
        io_, net::local::stream_protocol::endpoint(cfg_.control));
    ::chmod(cfg_.control.c_str(), 0600);  // root's (or the runner's) alone
    net::co_spawn(io_, control_loop(), net::detached);
    if (cfg_.on_listening) cfg_.on_listening(handle({{"cmd", "status"}}));
  }

 private:
  net::awaitable<void> accept_loop(path_state& p) {
    for (;;) {
      auto [ec, sock] = co_await p.acceptor->async_accept(use_tuple);
      if (ec == net::error::operation_aborted) co_return;
      if (ec) {
        // EMFILE and friends: back off instead of spinning.
        net::steady_timer t(io_, std::chrono::milliseconds(50));
        co_await t.async_wait(use_tuple);
        continue;
      }
      ++p.accepted;
      auto c = std::make_shared<connection>(std::move(sock), p);
      p.conns.push_back(c);
      if (p.conns.size() > 1024 && p.accepted % 1024 == 0) p.conns.remove_if([](auto& w) { return w.expired(); });
      net::co_spawn(io_, serve(c), net::detached);
    }
  }

  net::awaitable<void> serve(std::shared_ptr<connection> c) {
    path_state& p = *c->path;
    boost::system::error_code ec;
    if (p.roll(p.faults.reset_percent())) {
      ++p.injected_resets;
      c->close();
      co_return;
    }
    // A blackholed path holds new connections (the client sees a connect that never completes
    // upstream) until the blackhole is cleared or the client gives up.
    if (p.faults.effect(direction::up).blackhole) ++p.held_connects;
    while (p.faults.effect(direction::up).blackhole && !c->closed) {
      net::steady_timer hold(io_, std::chrono::milliseconds(50));
      co_await hold.async_wait(use_tuple);
    }
    if (c->closed) co_return;
    const tcp::endpoint target = p.upstream;
    c->up.open(target.protocol(), ec);
    if (!ec && !p.sources.empty()) {
      // Spread upstream connections over several source addresses (more 4-tuples); the port is
      // chosen at connect time.
      int one = 1;
      ::setsockopt(c->up.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      c->up.bind(tcp::endpoint(p.sources[p.next_source++ % p.sources.size()], 0), ec);
    }
    if (ec) {
      ++p.upstream_failures;
      c->close();
      co_return;
    }
    net::steady_timer timer(io_, std::chrono::seconds(3));
    auto result = co_await (c->up.async_connect(target, use_tuple) || timer.async_wait(use_tuple));
    if (result.index() == 1 || std::get<0>(std::get<0>(result))) {
      ++p.upstream_failures;
      c->close();
      co_return;
    }
    c->up.set_option(tcp::no_delay(true), ec);
    c->down.set_option(tcp::no_delay(true), ec);
    // splice(2) must never block the relay's one thread.
    c->up.non_blocking(true, ec);
    c->down.non_blocking(true, ec);
    co_await ((reader(c, c->down, direction::up) && writer(c, c->up, direction::up, p.bytes_up)) &&
              (reader(c, c->up, direction::down) && writer(c, c->down, direction::down, p.bytes_down)));
  }

  static void push(connection& c, direction d, chunk ch) {
    flow& f = c.flows[static_cast<int>(d)];
    f.queued += ch.length;
    f.q.push_back(std::move(ch));
    f.wake_writer.cancel();
  }

  // Zero-copy is possible for a direction while nothing has to look at or hold its bytes: no
  // delay, jitter, bandwidth or blackhole on it, nothing queued for its writer, and (up an HTTP
  // path) no request tracking to keep in step. Resets act on sockets and need no userspace.
  bool can_splice(const connection& c, direction d) const {
    const path_state& p = *c.path;
    const flow& f = c.flows[static_cast<int>(d)];
    if (!cfg_.splice || c.closed || !f.q.empty()) return false;
    if (!p.faults.effect(d).idle()) return false;
    if (d == direction::up && p.http && c.http.tracking()) return false;
    return true;
  }

  // One splice round: socket → pipe → socket, the pipe drained before the round ends, so the
  // mode can change between rounds (a fault set at run time takes the next bytes; the pipe's
  // at most ~1 MiB already read goes out as bytes on the wire would). Returns false when the
  // direction is finished (end of stream, an error, a close).
  net::awaitable<bool> splice_round(std::shared_ptr<connection> c, tcp::socket& from, tcp::socket& to, direction d,
                                    std::uint64_t& counter) {
    flow& f = c->flows[static_cast<int>(d)];
    auto pipe = pipes_.take();
    if (!pipe) co_return true;  // no pipe now (descriptors): this round goes through userspace
    ssize_t n;
    do n = ::splice(from.native_handle(), nullptr, pipe->w, nullptr, pipe->cap, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pipes_.give(*pipe, true);
      auto [wec] = co_await from.async_wait(tcp::socket::wait_read, use_tuple);
      if (wec || c->closed) {
        c->close();
        co_return false;
      }
      f.readable_hint = true;
      co_return true;
    }
    if (n < 0) {
      pipes_.give(*pipe, true);
      c->close();
      co_return false;
    }
    if (n == 0) {
      pipes_.give(*pipe, true);
      chunk e;
      e.eof = true;
      push(*c, d, std::move(e));
      co_return false;
    }
    f.splicing = true;
    std::size_t left = static_cast<std::size_t>(n);
    while (left > 0) {
      ssize_t m = ::splice(pipe->r, nullptr, to.native_handle(), nullptr, left, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m > 0) {
        left -= static_cast<std::size_t>(m);
        counter += static_cast<std::uint64_t>(m);
        continue;
      }
      if (m < 0 && errno == EINTR) continue;
      if (m < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        auto [wec] = co_await to.async_wait(tcp::socket::wait_write, use_tuple);
        if (!wec && !c->closed) continue;
      }
      f.splicing = false;
      pipes_.give(*pipe, false);
      c->close();
      co_return false;
    }
    f.splicing = false;
    pipes_.give(*pipe, true);
    // A full pipe means more may be waiting; with edge-triggered readiness, read again first.
    f.readable_hint = static_cast<std::size_t>(n) == pipe->cap;
    if (!f.q.empty()) f.wake_writer.cancel();
    co_return true;
  }

  // Reads one direction and queues what it read, stamped with the time it may leave.
  net::awaitable<void> reader(std::shared_ptr<connection> c, tcp::socket& from, direction d) {
    path_state& p = *c->path;
    flow& f = c->flows[static_cast<int>(d)];
    tcp::socket& to = d == direction::up ? c->up : c->down;
    for (;;) {
      while (f.queued >= max_queued && !c->closed) {
        f.wake_reader.expires_at(net::steady_timer::time_point::max());
        co_await f.wake_reader.async_wait(use_tuple);
      }
      if (c->closed) co_return;
      if (can_splice(*c, d)) {
        if (!co_await splice_round(c, from, to, d, d == direction::up ? p.bytes_up : p.bytes_down)) co_return;
        continue;
      }
      if (!f.readable_hint) {
        auto [wec] = co_await from.async_wait(tcp::socket::wait_read, use_tuple);
        if (wec || c->closed) {
          c->close();
          co_return;
        }
      }
      f.readable_hint = false;
      auto buf = pool_.take();
      auto [rec, n] = co_await from.async_read_some(net::buffer(*buf), use_tuple);
      if (rec == net::error::eof) {
        pool_.give(std::move(buf));
        chunk e;
        e.eof = true;
        push(*c, d, std::move(e));
        co_return;
      }
      if (rec) {
        pool_.give(std::move(buf));
        c->close();
        co_return;
      }
      const direction_effect& eff = p.faults.effect(d);
      std::int64_t due = 0;
      if (eff.delay_us > 0 || eff.spread_us > 0) {
        std::int64_t jitter =
            eff.spread_us > 0 ? std::uniform_int_distribution<std::int64_t>(-eff.spread_us, eff.spread_us)(p.rng) : 0;
        due = now_us() + std::max<std::int64_t>(0, eff.delay_us + jitter);
      }
      if (d == direction::up && p.http && c->http.tracking()) {
        const double pc = p.faults.http_error_percent();
        auto r = c->http.feed(buf->data(), n, [&] { return p.roll(pc); });
        bool whole = r.segments.size() == 1 && r.segments[0].forward && r.segments[0].length == n;
        if (!whole) {
          // Some of this chunk belongs to a request the proxy answers itself: forward the rest.
          for (auto& sg : r.segments)
            if (sg.forward) {
              chunk ch;
              ch.text.assign(buf->data() + sg.offset, sg.length);
              ch.length = sg.length;
              ch.due_us = due;
              push(*c, d, std::move(ch));
            }
          pool_.give(std::move(buf));
          bool stop = false;
          for (auto& a : r.answers) {
            chunk ch;
            ch.text = http_error_response(p.faults.http_error_status(), a.close);
            ch.length = ch.text.size();
            ch.close_after = a.close;
            ++p.injected_errors;
            push(*c, direction::down, std::move(ch));
            stop = stop || a.close;
          }
          if (stop) co_return;
          continue;
        }
      }
      f.readable_hint = n == buf->size();
      chunk ch;
      ch.buf = std::move(buf);
      ch.length = n;
      ch.due_us = due;
      push(*c, d, std::move(ch));
    }
  }

  // Sends one direction's queue when each chunk is due, through the path's bucket, holding it
  // while the direction is blackholed.
  net::awaitable<void> writer(std::shared_ptr<connection> c, tcp::socket& to, direction d, std::uint64_t& counter) {
    path_state& p = *c->path;
    flow& f = c->flows[static_cast<int>(d)];
    token_bucket& bucket = p.buckets[static_cast<int>(d)];
    for (;;) {
      if (c->closed) co_return;
      if (f.q.empty() || f.splicing) {
        f.wake_writer.expires_at(net::steady_timer::time_point::max());
        co_await f.wake_writer.async_wait(use_tuple);
        continue;
      }
      chunk& ch = f.q.front();
      if (ch.eof) {
        boost::system::error_code ec;
        to.shutdown(tcp::socket::shutdown_send, ec);
        f.q.pop_front();
        f.done = true;
        co_return;
      }
      const direction_effect& eff = p.faults.effect(d);
      std::int64_t now = now_us();
      std::int64_t wait_us = 0;
      if (eff.blackhole)
        wait_us = 50'000;
      else if (ch.due_us > now)
        wait_us = ch.due_us - now;
      else if (!ch.paid && bucket.rate() > 0) {
        ch.paid = true;
        wait_us = bucket.take(ch.length, now);
      }
      if (wait_us > 0) {
        f.wake_writer.expires_after(std::chrono::microseconds(wait_us));
        co_await f.wake_writer.async_wait(use_tuple);
        continue;
      }
      auto data = ch.buf ? net::buffer(ch.buf->data() + ch.offset, ch.length) : net::buffer(ch.text);
      auto [wec, written] = co_await net::async_write(to, data, use_tuple);
      if (c->closed) co_return;
      if (wec) {
        c->close();
        co_return;
      }
      counter += written;
      chunk sent = std::move(f.q.front());
      f.q.pop_front();
      f.queued -= sent.length;
      if (sent.buf) pool_.give(std::move(sent.buf));
      f.wake_reader.cancel();
      if (sent.close_after) {
        boost::system::error_code ec;
        to.shutdown(tcp::socket::shutdown_send, ec);
        c->up.close(ec);
        co_return;
      }
    }
  }

  // The control socket is root's (0600), but what reaches it is still bounded (issue #23): a
  // request is one line of at most 64 KiB, read within 2 s, JSON nested at most 64 deep; at most
  // 32 sessions at once (more are closed at accept). A bad request gets {"ok": false, "error"}.
  static constexpr std::size_t max_control_line = 64 * 1024;
  static constexpr int max_control_sessions = 32;
  static constexpr auto control_read_timeout = std::chrono::seconds(2);

  net::awaitable<void> control_loop() {
    for (;;) {
      auto [ec, sock] = co_await control_->async_accept(use_tuple);
      if (ec == net::error::operation_aborted) co_return;
      if (ec) continue;
      if (control_sessions_ >= max_control_sessions) {
        ++control_refused_;
        boost::system::error_code ignored;
        sock.close(ignored);
        continue;
      }
      net::co_spawn(io_, control_session(std::move(sock)), net::detached);
    }
  }

  net::awaitable<void> control_session(net::local::stream_protocol::socket sock) {
    ++control_sessions_;
    struct count_down {
      int& n;
      ~count_down() { --n; }
    } done{control_sessions_};
    net::streambuf in(max_control_line);
    net::steady_timer deadline(io_, control_read_timeout);
    auto read = co_await (net::async_read_until(sock, in, '\n', use_tuple) || deadline.async_wait(use_tuple));
    json answer;
    if (read.index() == 1) {
      answer = {{"ok", false}, {"error", "no request line within 2 s"}};
    } else if (auto [ec, n] = std::get<0>(read); ec == net::error::not_found) {
      answer = {{"ok", false}, {"error", "request line over 64 KiB"}};
    } else if (ec) {
      co_return;
    } else {
      const std::string_view line(static_cast<const char*>(in.data().data()), n);
      bool too_deep = false;
      json req = parse_bounded(line, max_json_depth, &too_deep);
      try {
        if (req.is_discarded())
          answer = {{"ok", false},
                    {"error", too_deep ? "request nested too deep" : "request is not JSON: " + text_excerpt(line)}};
        else if (!req.is_object())
          answer = {{"ok", false}, {"error", "request: found " + json_excerpt(req) + "; expected an object"}};
        else
          answer = handle(req);
      } catch (const std::exception& e) {
        answer = {{"ok", false}, {"error", e.what()}};
      }
    }
    std::string out = answer.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    net::steady_timer write_deadline(io_, control_read_timeout);
    co_await (net::async_write(sock, net::buffer(out), use_tuple) || write_deadline.async_wait(use_tuple));
  }

  json handle(const json& req) {
    const std::string cmd = req.value("cmd", "");
    if (cmd == "status") {
      json paths = json::object();
      for (auto& [name, p] : paths_)
        paths[name] = {{"listen", format_endpoint(p->listen)},
                       {"upstream", format_endpoint(p->upstream)},
                       {"active", p->active()},
                       {"accepted", p->accepted},
                       {"upstream_failures", p->upstream_failures},
                       {"bytes_up", p->bytes_up},
                       {"bytes_down", p->bytes_down},
                       {"faults", p->faults.to_json()},
                       {"injected_errors", p->injected_errors},
                       {"injected_resets", p->injected_resets},
                       {"held_connects", p->held_connects}};
      return {{"ok", true},
              {"pid", static_cast<long>(::getpid())},
              {"paths", paths},
              {"control_refused", control_refused_}};
    }
    const std::string name = req.value("path", "");
    auto it = paths_.find(name);
    if (it == paths_.end()) {
      std::string known;
      for (auto& [n, p] : paths_) known += (known.empty() ? "" : ", ") + n;
      return {{"ok", false}, {"error", "path: found \"" + name + "\"; expected one of " + known}};
    }
    path_state& p = *it->second;
    if (cmd == "set_upstream") {
      p.upstream = parse_endpoint(req.at("upstream").get<std::string>());
      std::size_t n = req.value("reset", false) ? p.reset_all() : 0;
      return {{"ok", true}, {"upstream", format_endpoint(p.upstream)}, {"reset", n}};
    }
    if (cmd == "reset") return {{"ok", true}, {"reset", p.reset_all()}};
    if (cmd == "fault") {
      const json spec = req.at("fault");
      p.faults.set(req.at("id").get<std::string>(), spec);
      p.rng.seed(p.faults.seed());
      std::size_t reset = 0;
      if (spec.value("kind", "") == "reset") reset = p.reset_share(spec.value("percent", 100.0));
      retune(p);
      return {{"ok", true}, {"faults", p.faults.to_json()}, {"reset", reset}};
    }
    if (cmd == "clear") {
      std::size_t n = p.faults.clear(req.at("id").get<std::string>());
      retune(p);
      return {{"ok", true}, {"cleared", n}, {"faults", p.faults.to_json()}};
    }
    return {{"ok", false},
            {"error", "cmd: found \"" + cmd + "\"; expected status, set_upstream, reset, fault or clear"}};
  }

  // After a fault change: the buckets take the new rate (a small burst, so a per-second
  // measurement never sees more than the limit plus a few packets) and every waiting writer
  // re-reads the effect (a cleared blackhole or delay lets queued bytes go now).
  static void retune(path_state& p) {
    for (int d = 0; d < 2; ++d) {
      double rate = p.faults.effect(static_cast<direction>(d)).rate_Bps;
      p.buckets[d].configure(rate, std::max(16384.0, rate / 200), now_us());
    }
    p.wake_all();
  }

  net::io_context& io_;
  relay_config cfg_;
  std::map<std::string, std::unique_ptr<path_state>> paths_;
  std::unique_ptr<net::local::stream_protocol::acceptor> control_;
  int control_sessions_ = 0;
  std::uint64_t control_refused_ = 0;
  buffer_pool pool_;
  pipe_pool pipes_;
};

}  // namespace

int relay_run(const relay_config& config) {
  try {
    relay_config cfg = config;
    // SYNCSTORM_RELAY_SPLICE=0: always copy through userspace (to compare, or to rule splice out).
    if (const char* v = std::getenv("SYNCSTORM_RELAY_SPLICE"); v && std::string(v) == "0") cfg.splice = false;
    net::io_context io(1);
    relay_host host(io, std::move(cfg));
    host.start();
    net::signal_set stop(io, SIGTERM, SIGINT);
    stop.async_wait([&](const boost::system::error_code&, int) { io.stop(); });
    std::fprintf(stderr, "relay: serving (pid %d)\n", static_cast<int>(::getpid()));
    io.run();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "relay: %s\n", e.what());
    return 1;
  }
}

std::string numeric_address(const std::string& host, std::string* error) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  if (int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0 || !res) {
    if (error) *error = rc != 0 ? ::gai_strerror(rc) : "no address";
    return {};
  }
  char buf[INET6_ADDRSTRLEN] = {};
  const void* a = res->ai_family == AF_INET6
                      ? static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(res->ai_addr)->sin6_addr)
                      : static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(res->ai_addr)->sin_addr);
  std::string ip = ::inet_ntop(res->ai_family, a, buf, sizeof buf) ? buf : "";
  ::freeaddrinfo(res);
  if (ip.empty() && error) *error = "inet_ntop failed";
  return ip;
}

json relay_control(const std::string& socket_path, const json& request, std::chrono::milliseconds timeout) {
  return process::unix_json_request(socket_path, request, timeout);
}

}  // namespace syncstorm::proxy
