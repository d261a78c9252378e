// `http_error` (DESIGN §6): the fault proxy answers a share of HTTP requests with a 5xx (plain
// HTTP paths only: it cannot read requests inside TLS).
#include "injectors/kinds/builtin.hpp"

namespace syncstorm::injectors::kinds {

fault_kind http_error_kind() {
  return network_kind(
      "http_error", "answer a share of HTTP requests with a 5xx",
      {opt("path", path_node()), req("percent", percent("share of requests")),
       opt("status", integer("the status", 500, 599))},
      net_action::http_error,
      [](const nlohmann::json& f, const reference_context& ctx, const std::string& p, spec::errors& out) {
        const std::string path = str_or(f, "path");
        if (ctx.proxied && (path.empty() || path == "clients-endpoints") && !ctx.http_endpoint.starts_with("http://"))
          out.push_back(
              p + ".kind: found \"http_error\" with target.endpoints.http " +
              (ctx.http_endpoint.empty() ? std::string("missing") : nlohmann::json(ctx.http_endpoint).dump()) +
              "; expected an http:// endpoint (the proxy cannot read requests inside TLS)");
      });
}

}  // namespace syncstorm::injectors::kinds
