// Unit tests of the socket-free half of the http model (loadgen/http_model.hpp): URL parsing
// and the request bytes sent for every request.
#include <gtest/gtest.h>

#include <stdexcept>

#include "loadgen/http_model.hpp"

namespace {

using namespace syncstorm::loadgen;

TEST(http_url, parses_scheme_host_port_and_target) {
  auto u = parse_url("http://127.0.0.1:8080/v1/push?x=1");
  EXPECT_FALSE(u.tls);
  EXPECT_EQ(u.host, "127.0.0.1");
  EXPECT_EQ(u.port, 8080);
  EXPECT_EQ(u.target, "/v1/push?x=1");
  u = parse_url("https://api.example.com");
  EXPECT_TRUE(u.tls);
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/");
  u = parse_url("http://[::1]:9000?q");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, 9000);
  EXPECT_EQ(u.target, "/?q");
  EXPECT_EQ(parse_url("http://h").port, 80);
}

TEST(http_url, rejects_what_it_cannot_connect_to) {
  for (auto bad : {"ftp://h/", "http://", "http://h:0/", "http://h:70000/", "http://h:x/", "http://user:pw@h/",
                   "http://[::1/", "127.0.0.1:80"})
    EXPECT_THROW(parse_url(bad), std::invalid_argument) << bad;
  try {
    parse_url("ftp://h/");
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "url: found \"ftp://h/\"; expected http(s)://host[:port][/path]");
  }
}

TEST(http_request, serializes_once_with_host_headers_and_length) {
  http_model_config c;
  c.method = "POST";
  c.headers = {{"Authorization", "Bearer t"}, {"Content-Type", "application/json"}};
  c.body = "{\"a\":1}";
  EXPECT_EQ(serialize_request(c, parse_url("http://10.0.0.1:8080/v1/push")),
            "POST /v1/push HTTP/1.1\r\nHost: 10.0.0.1:8080\r\nAuthorization: Bearer t\r\n"
            "Content-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}");
  http_model_config g;
  EXPECT_EQ(serialize_request(g, parse_url("https://h/")), "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
  EXPECT_EQ(serialize_request(g, parse_url("http://[::1]:81/")), "GET / HTTP/1.1\r\nHost: [::1]:81\r\n\r\n");
  http_model_config p;
  p.method = "POST";
  p.headers = {{"content-length", "0"}};
  EXPECT_EQ(serialize_request(p, parse_url("http://h/")), "POST / HTTP/1.1\r\nHost: h\r\ncontent-length: 0\r\n\r\n");
}

TEST(http_request, bucket_names_are_the_metric_suffixes) {
  EXPECT_EQ(to_string(error_bucket::connect), "connect");
  EXPECT_EQ(to_string(error_bucket::protocol), "protocol");
  EXPECT_EQ(to_string(error_bucket::timeout), "timeout");
}

}  // namespace
