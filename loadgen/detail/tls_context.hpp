// The client TLS context every loadgen transport uses (http model, terminals, fanout, bootstrap,
// the audit reader): TLS client method, the CA file or the system's default verify paths, peer
// verification on or off, an optional client certificate chain and key. Internal to loadgen.
// Threading: build once (setup), then share read-only between the connections of one worker.
#pragma once

#include <boost/asio/ssl/context.hpp>

#include <memory>

#include "core/net.hpp"
#include "loadgen/http_model.hpp"

namespace syncstorm::loadgen::detail {

// Throws std::invalid_argument naming the field and the file:
// `scenario.target.tls.ca_file: found "/x.pem"; expected a readable PEM file (No such file …)`.
std::unique_ptr<net::ssl::context> make_client_ssl_context(const tls_spec& tls);

}  // namespace syncstorm::loadgen::detail
