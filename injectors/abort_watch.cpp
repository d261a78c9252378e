// See abort_watch.hpp.
#include "injectors/abort_watch.hpp"

#include "core/redact.hpp"

#include "core/sla.hpp"
#include "core/units.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <memory>
#include <regex>
#include <sstream>

namespace syncstorm::injectors {
namespace {

using steady = std::chrono::steady_clock;

int connect_with_timeout(const std::string& host, const std::string& port, int timeout_ms, std::string& err) {
  addrinfo hints{}, *res = nullptr;
  hints.ai_socktype = SOCK_STREAM;
  int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0) {
    err = "resolve " + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  err = "no address";
  for (auto* a = res; a; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    int c = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (c != 0 && errno == EINPROGRESS) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, timeout_ms) == 1) {
        int so = 0;
        socklen_t len = sizeof so;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
        c = so == 0 ? 0 : -1;
        errno = so;
      } else {
        c = -1;
        errno = ETIMEDOUT;
      }
    }
    if (c == 0) break;
    err = "connect " + host + ":" + port + ": " + std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  if (fd >= 0) {
    err.clear();
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int fl = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  }
  return fd;
}

// %XX sequences decoded (userinfo in a URL).
std::string percent_decode(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A URL split into its parts: http(s) for probes, ws(s) too for the target's endpoints.
struct url_split {
  std::string scheme;
  std::optional<std::string> userinfo;  // percent-encoded, as written
  std::string host;                     // as written (an IPv6 address in brackets)
  std::string port;                     // empty: the scheme's default
  std::string target;                   // path and query as written; may be empty
};

std::optional<url_split> split_url(const std::string& url) {
  static const std::regex re(R"(^(https?|wss?)://(?:([^@/?#]*)@)?(\[[^\]]+\]|[^/:?#@]+)(?::([0-9]{1,5}))?([/?].*)?$)");
  std::smatch m;
  if (!std::regex_match(url, m, re)) return std::nullopt;
  url_split u{m[1], std::nullopt, m[3], m[4], m[5]};
  if (m[2].matched) u.userinfo = m[2].str();
  return u;
}

// Host (brackets off, lower case) and port (the scheme's default when none is written), for
// telling whether a probe's URL names one of the target's endpoints.
std::optional<std::pair<std::string, int>> authority_of(const std::string& url) {
  auto u = split_url(url);
  if (!u) return std::nullopt;
  std::string host = u->host.front() == '[' ? u->host.substr(1, u->host.size() - 2) : u->host;
  for (char& c : host) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool secure = u->scheme == "https" || u->scheme == "wss";
  return std::pair{host, u->port.empty() ? (secure ? 443 : 80) : std::stoi(u->port)};
}

bool is_ip_address(const std::string& name) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, name.c_str(), buf) == 1 || ::inet_pton(AF_INET6, name.c_str(), buf) == 1;
}

// Adds the PEM file's CAs to the context's store (beside the default paths); empty, or the one
// line that says why not.
std::string add_ca_file(SSL_CTX* ctx, const std::string& path) {
  auto refused = [&](const std::string& why) {
    return "scenario.target.tls.ca_file: found \"" + path + "\"; expected a readable PEM file (" + why + ")";
  };
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return refused("a directory");
  std::FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return refused(std::strerror(errno));
  std::fclose(f);
  if (SSL_CTX_load_verify_locations(ctx, path.c_str(), nullptr) == 1) return {};
  const char* reason = ERR_reason_error_string(ERR_peek_last_error());
  return refused(reason ? reason : "no certificate found");
}

// Why SSL_connect returned `rc`: the certificate check's verdict when that failed, else
// OpenSSL's error, else the socket's.
std::string handshake_failure(SSL* ssl, int rc, int timeout_ms) {
  long verdict = SSL_get_verify_result(ssl);
  if (verdict != X509_V_OK)
    return std::string("certificate verify failed (") + X509_verify_cert_error_string(verdict) + ")";
  if (unsigned long e = ERR_peek_last_error()) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
  }
  if (SSL_get_error(ssl, rc) == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK))
    return "no answer within " + std::to_string(timeout_ms) + " ms";
  return "connection closed";
}

}  // namespace

std::string without_userinfo(const std::string& url) {
  auto scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  auto end = url.find_first_of("/?#", scheme + 3);
  auto at = url.rfind('@', end == std::string::npos ? url.size() : end);
  if (at == std::string::npos || at < scheme + 3) return url;
  return url.substr(0, scheme + 3) + url.substr(at + 1);
}

std::string http_probe(const std::string& url, int timeout_ms, const probe_tls& o) {
  // The length first: std::regex recurses per character.
  auto u = url.size() > 8192 ? std::nullopt : split_url(url);
  if (!u || !u->scheme.starts_with("http")) return "probe url: not an http(s) URL";
  bool tls = u->scheme == "https";
  const std::string& host = u->host;
  std::string port = u->port.empty() ? (tls ? "443" : "80") : u->port;
  std::string path = u->target.empty() ? "/" : u->target;
  if (path.front() == '?') path.insert(0, "/");
  std::string auth;
  if (u->userinfo) {
    std::string b64 = redact::base64(percent_decode(*u->userinfo));
    while (b64.size() % 4) b64 += '=';
    auth = "Authorization: Basic " + b64 + "\r\n";
  }
  std::string bare = host.front() == '[' ? host.substr(1, host.size() - 2) : host;
  std::string err;
  // The TLS context first: a CA file that cannot be read fails the probe without a connection.
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(nullptr, SSL_CTX_free);
  if (tls) {
    // This thread's queue may hold an earlier probe's errors; they are not this probe's reason.
    ERR_clear_error();
    ctx.reset(SSL_CTX_new(TLS_client_method()));
    SSL_CTX_set_default_verify_paths(ctx.get());
    if (!o.ca_file.empty()) err = add_ca_file(ctx.get(), o.ca_file);
    ERR_clear_error();
    if (!err.empty()) return err;
    SSL_CTX_set_verify(ctx.get(), o.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  }
  auto t0 = steady::now();
  int fd = connect_with_timeout(bare, port, timeout_ms, err);
  if (fd < 0) return err;
  std::string req = "GET " + path + " HTTP/1.1\r\nHost: " + host + (u->port.empty() ? "" : ":" + port) +
                    "\r\nUser-Agent: syncstorm-probe\r\n" + auth + "Connection: close\r\n\r\n";
  std::string reply;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(nullptr, SSL_free);
  if (tls) {
    ssl.reset(SSL_new(ctx.get()));
    SSL_set_fd(ssl.get(), fd);
    const std::string name = o.server_name.empty() ? bare : o.server_name;
    if (!is_ip_address(name)) SSL_set_tlsext_host_name(ssl.get(), name.c_str());
    if (o.verify) SSL_set1_host(ssl.get(), name.c_str());
    int rc = SSL_connect(ssl.get());
    if (rc != 1) err = "TLS handshake with " + host + ": " + handshake_failure(ssl.get(), rc, timeout_ms);
  }
  if (err.empty()) {
    int n = tls ? SSL_write(ssl.get(), req.data(), static_cast<int>(req.size()))
                : static_cast<int>(::send(fd, req.data(), req.size(), MSG_NOSIGNAL));
    if (n != static_cast<int>(req.size())) err = "send to " + host + ": " + std::strerror(errno);
  }
  // The status line within the timeout in all (a reply drip-fed a byte at a time does not reset
  // it) and within 8 KiB.
  const auto deadline = t0 + std::chrono::milliseconds(timeout_ms);
  while (err.empty() && reply.find("\r\n") == std::string::npos) {
    if (steady::now() >= deadline) {
      err = "no status line within " + std::to_string(timeout_ms) + " ms";
      break;
    }
    if (reply.size() > 8192) {
      err = "no status line in the first 8 KiB";
      break;
    }
    char buf[1024];
    int n = tls ? SSL_read(ssl.get(), buf, sizeof buf) : static_cast<int>(::recv(fd, buf, sizeof buf, 0));
    if (n <= 0) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
      err = ms >= timeout_ms ? "no answer within " + std::to_string(timeout_ms) + " ms"
                             : "connection closed before a status line";
      break;
    }
    reply.append(buf, static_cast<std::size_t>(n));
  }
  ssl.reset();
  ctx.reset();
  ERR_clear_error();
  ::close(fd);
  if (!err.empty()) return err;
  std::string line = reply.substr(0, std::min<std::size_t>(reply.find("\r\n"), 200));
  int status = 0;
  if (line.size() >= 12 && line.starts_with("HTTP/1.")) status = std::atoi(line.c_str() + 9);
  for (char& c : line)
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  if (status < 200 || status >= 400) return "status line \"" + line + "\"";
  return {};
}

probe_tls probe_tls_for(const std::string& url, const probe_target& target) {
  probe_tls out;
  out.ca_file = target.tls.ca_file;
  const auto at = authority_of(url);
  if (!at) return out;
  for (const auto& e : target.endpoints) {
    if (authority_of(e) != at) continue;
    out.server_name = target.tls.server_name;
    out.verify = target.tls.verify;
    break;
  }
  return out;
}

abort_watch::abort_watch(const std::vector<abort_entry>& conditions, fire_fn on_fire, probe_target target)
    : conditions_(conditions), on_fire_(std::move(on_fire)), target_(std::move(target)) {}

abort_watch::~abort_watch() { stop(); }

void abort_watch::start() {
  bool any = false;
  for (const auto& c : conditions_) any = any || (!c.rule && c.probe.is_object());
  if (any) probes_ = std::thread([this] { probe_loop(); });
}

void abort_watch::stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (probes_.joinable()) probes_.join();
}

std::string abort_watch::name() const {
  std::lock_guard lock(mu_);
  return name_;
}
std::string abort_watch::reason() const {
  std::lock_guard lock(mu_);
  return reason_;
}

void abort_watch::fire(const std::string& name, const std::string& reason) {
  {
    std::lock_guard lock(mu_);
    if (fired_) return;
    fired_ = true;
    name_ = name;
    reason_ = reason;
  }
  if (on_fire_) on_fire_(name, reason);
}

void abort_watch::check_metrics(const metrics_shard& snap, std::int64_t at_us) {
  if (fired_) return;
  for (const auto& c : conditions_) {
    if (!c.rule) continue;
    evaluation_context ctx;
    ctx.metrics = &snap;
    ctx.run_end_us = at_us;
    ctx.resolve_window = [&](const std::string&) -> std::vector<time_window> { return {{0, at_us}}; };
    rule_entry r = *c.rule;
    r.window = "all";
    r.for_us.reset();
    verdict v = evaluate(r, ctx);
    bool broken =
        v.value && v.bound && ((v.op == "<=" && *v.value > *v.bound) || (v.op == ">=" && *v.value < *v.bound));
    if (!broken) {
      broken_since_.erase(c.name);
      continue;
    }
    auto [it, fresh] = broken_since_.emplace(c.name, at_us);
    (void)fresh;
    if (c.rule->for_us && at_us - it->second < *c.rule->for_us) continue;
    std::ostringstream o;
    o << std::setprecision(4) << c.rule->metric << " " << c.rule->stat << " " << *v.value << " " << v.unit << " broke "
      << v.op << " " << *v.bound << " at " << static_cast<double>(at_us) / 1e6 << " s";
    fire(c.name, o.str());
    return;
  }
}

void abort_watch::probe_loop() {
  struct state {
    const abort_entry* c;
    std::string url;
    probe_tls tls;
    int timeout_ms, fail_after;
    std::int64_t every_us;
    int failures = 0;
    steady::time_point next;
  };
  std::vector<state> ps;
  for (const auto& c : conditions_) {
    if (c.rule || !c.probe.is_object()) continue;
    const auto& p = c.probe;
    const std::string url = resolve_env(p.value("url", ""));
    state s{&c,
            url,
            probe_tls_for(url, target_),
            static_cast<int>(p.contains("timeout") ? duration_us(p["timeout"]) / 1000 : 2000),
            p.value("fail_after", 3),
            p.contains("every") ? duration_us(p["every"]) : 1'000'000,
            0,
            steady::now()};
    ps.push_back(s);
  }
  for (;;) {
    auto next = steady::time_point::max();
    for (auto& s : ps) next = std::min(next, s.next);
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_until(lock, next, [&] { return stop_; })) return;
    }
    for (auto& s : ps) {
      if (steady::now() < s.next) continue;
      s.next = steady::now() + std::chrono::microseconds(s.every_us);
      std::string why = http_probe(s.url, s.timeout_ms, s.tls);
      if (why.empty()) {
        s.failures = 0;
        continue;
      }
      if (++s.failures >= s.fail_after) {
        fire(s.c->name, "probe " + without_userinfo(s.c->probe.value("url", "")) + " failed " +
                            std::to_string(s.failures) + " times in a row (last: " + why + ")");
        return;
      }
    }
  }
}

}  // namespace syncstorm::injectors
