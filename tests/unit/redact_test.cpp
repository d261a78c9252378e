// The secrets redactor (core/redact.hpp): every form of a resolved ${env:} value is replaced,
// short values are not secrets, resolve_env registers what it resolves, and the console streams
// pass through it.
#include "core/redact.hpp"
#include "core/scenario.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

using namespace syncstorm;

namespace {

class redact_test : public ::testing::Test {
 protected:
  void SetUp() override { redact::clear(); }
  void TearDown() override { redact::clear(); }
};

TEST_F(redact_test, every_form_of_a_secret_is_replaced) {
  const std::string secret = "s3cr3t/CANARY+\"q\"&7f2a9";
  redact::add_secret(secret);
  const std::string plain = "GET http://u:" + secret + "@host/x failed";
  EXPECT_EQ(redact::apply(plain), "GET http://u:[redacted]@host/x failed");
  EXPECT_EQ(redact::apply("url=s3cr3t%2FCANARY%2B%22q%22%267f2a9;"), "url=[redacted];");
  EXPECT_EQ(redact::apply("url=s3cr3t%2fCANARY%2b%22q%22%267f2a9;"), "url=[redacted];");
  EXPECT_EQ(redact::apply(R"({"error":"auth s3cr3t/CANARY+\"q\"&7f2a9"})"), R"({"error":"auth [redacted]"})");
  // base64, alone and inside `user:secret` at every offset: no run of the secret's own
  // characters survives.
  for (const std::string prefix : {"", "u:", "us:", "use:"}) {
    const std::string text = "Basic " + [&] {
      static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
      const std::string b = prefix + secret;
      std::string out;
      for (std::size_t i = 0; i < b.size(); i += 3) {
        unsigned v = static_cast<unsigned char>(b[i]) << 16;
        if (i + 1 < b.size()) v |= static_cast<unsigned char>(b[i + 1]) << 8;
        if (i + 2 < b.size()) v |= static_cast<unsigned char>(b[i + 2]);
        out += t[(v >> 18) & 63];
        out += t[(v >> 12) & 63];
        out += i + 1 < b.size() ? t[(v >> 6) & 63] : '=';
        out += i + 2 < b.size() ? t[v & 63] : '=';
      }
      return out;
    }();
    const std::string r = redact::apply(text);
    EXPECT_NE(r.find("[redacted]"), std::string::npos) << prefix << ": " << text << " → " << r;
    EXPECT_LT(r.size() - r.find("[redacted]") - 10, 4u) << "at most the edge characters remain: " << r;
  }
  EXPECT_EQ(redact::apply("nothing here"), "nothing here");
}

TEST_F(redact_test, short_values_are_not_secrets) {
  redact::add_secret("abc");
  EXPECT_FALSE(redact::active());
  EXPECT_EQ(redact::apply("abc abc"), "abc abc");
  EXPECT_TRUE(redact::forms_of("abc").empty());
  // Numbers and JSON literals are configuration (a port, a flag): report.json stays valid.
  redact::add_secret("8080");
  redact::add_secret("true");
  redact::add_secret("-1.5e3");
  EXPECT_FALSE(redact::active());
  EXPECT_EQ(redact::apply(R"({"port": 8080, "pass": true})"), R"({"port": 8080, "pass": true})");
}

TEST_F(redact_test, resolve_env_registers_what_it_resolves) {
  ::setenv("SYNCSTORM_REDACT_TEST", "tok-9f8e7d6c", 1);
  EXPECT_EQ(resolve_env("Bearer ${env:SYNCSTORM_REDACT_TEST}"), "Bearer tok-9f8e7d6c");
  EXPECT_TRUE(redact::active());
  EXPECT_EQ(redact::apply("header Authorization: Bearer tok-9f8e7d6c"), "header Authorization: Bearer [redacted]");
  ::unsetenv("SYNCSTORM_REDACT_TEST");
  EXPECT_EQ(resolve_env("x ${env:SYNCSTORM_REDACT_TEST} y"), "x  y");  // unset: empty, nothing new
}

TEST_F(redact_test, the_console_streams_pass_through_it) {
  redact::add_secret("pa55w0rd-xyz");
  std::ostringstream sink;
  auto* old = std::cerr.rdbuf(sink.rdbuf());
  redact::install_console();  // wraps what std::cerr writes to now
  std::cerr << "connect to postgresql://u:"
            << "pa55w0rd-xyz"
            << "@db failed\n"
            << std::flush;
  std::cerr << "partial pa55w0rd-xyz" << std::flush;
  std::cerr.rdbuf(old);
  const std::string out = sink.str();
  EXPECT_EQ(out.find("pa55w0rd"), std::string::npos) << out;
  EXPECT_NE(out.find("postgresql://u:[redacted]@db failed"), std::string::npos) << out;
}

}  // namespace
