// The socket-free half of the http model: URL parsing, the request bytes, bucket names.
// Kept apart from http_model.cpp so it compiles without Beast and is unit-tested directly.
#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "loadgen/http_model.hpp"

namespace syncstorm::loadgen {

std::string_view to_string(error_bucket b) noexcept {
  switch (b) {
    case error_bucket::connect:
      return "connect";
    case error_bucket::read:
      return "read";
    case error_bucket::write:
      return "write";
    case error_bucket::status:
      return "status";
    case error_bucket::timeout:
      return "timeout";
    case error_bucket::protocol:
      return "protocol";
  }
  return "unknown";
}

url_parts parse_url(std::string_view url) {
  auto fail = [&] {
    throw std::invalid_argument("url: found \"" + std::string(url) + "\"; expected http(s)://host[:port][/path]");
  };
  url_parts u;
  std::string_view rest;
  if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else if (url.starts_with("https://")) {
    u.tls = true;
    rest = url.substr(8);
  } else {
    fail();
  }
  const auto slash = rest.find_first_of("/?");
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (u.target.front() == '?') u.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) fail();  // no userinfo: use headers
  std::string_view port;
  if (authority.starts_with("[")) {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) fail();
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') fail();
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) fail();
  if (port.empty()) {
    u.port = u.tls ? 443 : 80;
  } else {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
    if (ec != std::errc{} || end != port.data() + port.size() || p == 0 || p > 65535) fail();
    u.port = static_cast<std::uint16_t>(p);
  }
  return u;
}

std::string host_header(const url_parts& url) {
  const bool v6 = url.host.find(':') != std::string::npos;
  std::string h = v6 ? "[" + url.host + "]" : url.host;
  if (url.port != (url.tls ? 443 : 80)) h += ":" + std::to_string(url.port);
  return h;
}

std::string serialize_request(const http_model_config& config, const url_parts& url) {
  std::string r;
  r.reserve(128 + config.body.size());
  r += config.method;
  r += ' ';
  r += url.target;
  r += " HTTP/1.1\r\nHost: ";
  r += host_header(url);
  r += "\r\n";
  bool has_length = false;
  for (const auto& [k, v] : config.headers) {
    if (k.size() == 14 &&
        std::equal(k.begin(), k.end(), "content-length", [](char a, char b) { return (a | 0x20) == b; }))
      has_length = true;
    r += k;
    r += ": ";
    r += v;
    r += "\r\n";
  }
  const bool body_method = config.method == "POST" || config.method == "PUT" || config.method == "PATCH";
  if (!has_length && (!config.body.empty() || body_method)) {
    r += "Content-Length: ";
    r += std::to_string(config.body.size());
    r += "\r\n";
  }
  r += "\r\n";
  r += config.body;
  return r;
}

}  // namespace syncstorm::loadgen
