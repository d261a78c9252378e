// The lab's pass-through TCP relays (see lab_relay.hpp). One io_context on one thread: every
// connection, the control socket and the signals are served by coroutines on it, so no state
// here needs a lock.
#include "labstack/lab_relay.hpp"

#include "harness/net.hpp"
#include "labstack/lab_state.hpp"

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

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <list>
#include <map>
#include <memory>
#include <vector>

namespace syncstorm::lab {
namespace {

using tcp = net::ip::tcp;
using json = nlohmann::json;
using namespace net::experimental::awaitable_operators;
constexpr auto use_tuple = net::as_tuple(net::use_awaitable);

tcp::endpoint parse_endpoint(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos) throw std::runtime_error("relay: found address \"" + s + "\"; expected IP:PORT");
  return {net::ip::make_address(s.substr(0, colon)),
          static_cast<unsigned short>(std::stoi(s.substr(colon + 1)))};
}

std::string format_endpoint(const tcp::endpoint& e) {
  return e.address().to_string() + ":" + std::to_string(e.port());
}

// Buffers exist only while bytes are in flight; idle connections hold none.
class buffer_pool {
 public:
  using buffer = std::array<char, 16384>;
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

struct path_state;

struct connection {
  connection(tcp::socket client, path_state& p) : down(std::move(client)), up(down.get_executor()), path(&p) {}
  tcp::socket down;  // client side
  tcp::socket up;    // upstream side
  path_state* path;
  void close() {
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
  }
};

struct path_state {
  std::string name;
  tcp::endpoint listen;
  tcp::endpoint upstream;
  std::vector<net::ip::address> sources;
  std::size_t next_source = 0;
  std::unique_ptr<tcp::acceptor> acceptor;
  std::list<std::weak_ptr<connection>> conns;
  std::uint64_t accepted = 0, upstream_failures = 0, bytes_up = 0, bytes_down = 0;

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
};

class relay_host {
 public:
  relay_host(net::io_context& io, std::string state_path) : io_(io), state_(std::move(state_path)) {}

  void start() {
    json st = state_.read();
    for (json items_of = st.value("paths", json::object()); auto& [name, p] : items_of.items()) {
      auto ps = std::make_unique<path_state>();
      ps->name = name;
      ps->listen = parse_endpoint(p.at("listen").get<std::string>());
      ps->upstream = parse_endpoint(p.at("upstream").get<std::string>());
      for (auto& s : p.value("sources", json::array())) ps->sources.push_back(net::ip::make_address(s.get<std::string>()));
      ps->acceptor = std::make_unique<tcp::acceptor>(io_);
      ps->acceptor->open(ps->listen.protocol());
      ps->acceptor->set_option(net::socket_base::reuse_address(true));
      boost::system::error_code ec;
      ps->acceptor->bind(ps->listen, ec);
      if (ec)
        throw std::runtime_error("relay " + name + ": cannot listen on " + format_endpoint(ps->listen) + ": " +
                                 ec.message());
      ps->acceptor->listen(net::socket_base::max_listen_connections);
      net::co_spawn(io_, accept_loop(*ps), net::detached);
      paths_[name] = std::move(ps);
    }
    const std::string control = st.at("relay").at("control").get<std::string>();
    std::filesystem::remove(control);
    control_ = std::make_unique<net::local::stream_protocol::acceptor>(io_, net::local::stream_protocol::endpoint(control));
    net::co_spawn(io_, control_loop(), net::detached);
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
    co_await (pump(c, c->down, c->up, p.bytes_up) && pump(c, c->up, c->down, p.bytes_down));
  }

  net::awaitable<void> pump(std::shared_ptr<connection> c, tcp::socket& from, tcp::socket& to,
                            std::uint64_t& counter) {
    for (;;) {
      auto [wec] = co_await from.async_wait(tcp::socket::wait_read, use_tuple);
      if (wec) {
        c->close();
        co_return;
      }
      auto buf = pool_.take();
      auto [rec, n] = co_await from.async_read_some(net::buffer(*buf), use_tuple);
      if (rec == net::error::eof) {
        pool_.give(std::move(buf));
        boost::system::error_code ec;
        to.shutdown(tcp::socket::shutdown_send, ec);
        co_return;
      }
      if (rec) {
        pool_.give(std::move(buf));
        c->close();
        co_return;
      }
      auto [wrec, written] = co_await net::async_write(to, net::buffer(buf->data(), n), use_tuple);
      pool_.give(std::move(buf));
      if (wrec) {
        c->close();
        co_return;
      }
      counter += written;
    }
  }

  net::awaitable<void> control_loop() {
    for (;;) {
      auto [ec, sock] = co_await control_->async_accept(use_tuple);
      if (ec == net::error::operation_aborted) co_return;
      if (ec) continue;
      net::co_spawn(io_, control_session(std::move(sock)), net::detached);
    }
  }

  net::awaitable<void> control_session(net::local::stream_protocol::socket sock) {
    net::streambuf in;
    auto [ec, n] = co_await net::async_read_until(sock, in, '\n', use_tuple);
    if (ec) co_return;
    std::string line(net::buffers_begin(in.data()), net::buffers_begin(in.data()) + static_cast<std::ptrdiff_t>(n));
    json answer;
    try {
      answer = handle(json::parse(line));
    } catch (const std::exception& e) {
      answer = {{"ok", false}, {"error", e.what()}};
    }
    std::string out = answer.dump() + "\n";
    co_await net::async_write(sock, net::buffer(out), use_tuple);
  }

  json handle(const json& req) {
    const std::string cmd = req.value("cmd", "");
    if (cmd == "status") {
      json paths = json::object();
      for (auto& [name, p] : paths_)
        paths[name] = {{"listen", format_endpoint(p->listen)}, {"upstream", format_endpoint(p->upstream)},
                       {"active", p->active()},                {"accepted", p->accepted},
                       {"upstream_failures", p->upstream_failures}, {"bytes_up", p->bytes_up},
                       {"bytes_down", p->bytes_down}};
      return {{"ok", true}, {"pid", static_cast<long>(::getpid())}, {"paths", paths}};
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
    return {{"ok", false}, {"error", "cmd: found \"" + cmd + "\"; expected status, set_upstream or reset"}};
  }

  net::io_context& io_;
  state_file state_;
  std::map<std::string, std::unique_ptr<path_state>> paths_;
  std::unique_ptr<net::local::stream_protocol::acceptor> control_;
  buffer_pool pool_;
};

}  // namespace

int relay_main(const std::string& state_path) {
  try {
    net::io_context io(1);
    relay_host host(io, state_path);
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

json relay_control(const std::string& socket_path, const json& request, std::chrono::milliseconds timeout) {
  return unix_json_request(socket_path, request, timeout);
}

}  // namespace syncstorm::lab
