// See tls_context.hpp.
#include "loadgen/detail/tls_context.hpp"

#include <stdexcept>
#include <string>

namespace syncstorm::loadgen::detail {

std::unique_ptr<net::ssl::context> make_client_ssl_context(const tls_spec& tls) {
  using error_code = boost::system::error_code;
  auto ctx = std::make_unique<net::ssl::context>(net::ssl::context::tls_client);
  ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3);
  auto step = [](const char* field, const std::string& path, auto&& f) {
    error_code ec;
    f(ec);
    if (ec)
      throw std::invalid_argument(std::string("scenario.target.tls.") + field + ": found \"" + path +
                                  "\"; expected a readable PEM file (" + ec.message() + ")");
  };
  if (!tls.ca_file.empty())
    step("ca_file", tls.ca_file, [&](error_code& ec) { ctx->load_verify_file(tls.ca_file, ec); });
  else
    step("ca_file", "", [&](error_code& ec) { ctx->set_default_verify_paths(ec); });
  ctx->set_verify_mode(tls.verify ? net::ssl::verify_peer : net::ssl::verify_none);
  if (!tls.cert_file.empty()) {
    step("cert_file", tls.cert_file, [&](error_code& ec) { ctx->use_certificate_chain_file(tls.cert_file, ec); });
    step("key_file", tls.key_file,
         [&](error_code& ec) { ctx->use_private_key_file(tls.key_file, net::ssl::context::pem, ec); });
  }
  return ctx;
}

}  // namespace syncstorm::loadgen::detail
