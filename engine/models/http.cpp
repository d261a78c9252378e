// The `http` model (DESIGN §5): a generic request template at a rate (open model) or as fast as
// N connections allow (closed). Its keys, settings and factory; the model itself is
// loadgen/http_model.
#include "engine/models/builtin.hpp"

#include "core/units.hpp"
#include "loadgen/http_model.hpp"
#include "loadgen/target_access.hpp"

#include <sstream>

namespace syncstorm::engine::models {
namespace {

using namespace spec;

// The entry's own part of the request; the target's part (base URL, headers, TLS) and the
// environment's values come in at build time.
struct http_settings final : load_settings {
  loadgen::http_model_config c;    // url, headers and tls left to bind()
  std::optional<std::string> url;  // request.url, as written
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> request_headers;  // unresolved
  bool json_body = false;
};

std::vector<field> keys() {
  return {opt("mode", enumeration("open: arrivals follow the phases' rates; closed: N connections back to back",
                                  {"open", "closed"})),
          opt("connections", integer("keep-alive pool size (closed: concurrent connections)", 1, 1000000)),
          opt("request",
              [] {
                auto n = object(
                    "the request template",
                    {opt("method", enumeration("HTTP method", {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"})),
                     opt("path",
                         spec::string("path and query on target.endpoints.http", "^/.*", "a path starting with \"/\"")),
                     opt("url", spec::string("an absolute URL", "^https?://.+", "an http:// or https:// URL")),
                     opt("headers", string_map("extra headers; values may hold ${env:NAME}")),
                     opt("body", any("request body: a string, or JSON sent as application/json"))});
                return with(n, [](node& x) { x.at_most_one = {{"path", "url"}}; });
              }()),
          opt("timeout", duration("per-request timeout")),
          opt("expect_status",
              array("statuses that count as success (default: any 2xx)", integer("an HTTP status", 100, 599), 1))};
}

std::shared_ptr<const load_settings> parse(const load_entry& e, const std::string&) {
  auto s = std::make_shared<http_settings>();
  const auto& f = e.fields;
  auto& c = s->c;
  c.name = e.name;
  const auto req = f.value("request", nlohmann::json::object());
  if (req.contains("url")) s->url = req["url"].get<std::string>();
  s->path = req.value("path", "/");
  c.method = req.value("method", "GET");
  // Named: items() iterates the value it is called on, which a temporary would not outlive.
  const auto headers = req.value("headers", nlohmann::json::object());
  for (const auto& [k, v] : headers.items()) s->request_headers.emplace_back(k, v.get<std::string>());
  if (req.contains("body")) {
    s->json_body = !req["body"].is_string();
    c.body = s->json_body ? req["body"].dump() : req["body"].get<std::string>();
  }
  c.open = f.value("mode", "open") != "closed";
  c.connections = f.value("connections", 64);
  c.timeout_us = f.contains("timeout") ? duration_us(f["timeout"]) : 5'000'000;
  for (const auto& st : f.value("expect_status", nlohmann::json::array())) c.expect_status.push_back(st.get<int>());
  c.phases = phases_of(e);
  return s;
}

// The request against a target: `base` is the lab's load balancer, else target.endpoints.http.
loadgen::http_model_config bind(const load_entry& e, const nlohmann::json& target, std::string base, bool resolve) {
  const auto& s = settings_of<http_settings>(e);
  loadgen::http_model_config c = s.c;
  if (base.empty() && target.contains("endpoints")) base = target["endpoints"].value("http", "");
  if (s.url) {
    c.url = *s.url;
  } else {
    while (!base.empty() && base.back() == '/') base.pop_back();
    c.url = base + s.path;
  }
  if (resolve) c.url = resolve_env(c.url);  // ${env:} in the URL or the endpoint (DESIGN §9)
  auto access = loadgen::target_access_from(target, resolve);
  c.headers = std::move(access.headers);
  for (const auto& [k, v] : s.request_headers) c.headers.emplace_back(k, resolve ? resolve_env(v) : v);
  if (s.json_body) c.headers.emplace_back("Content-Type", "application/json");
  if (resolve) c.body = resolve_env(c.body);
  c.tls = std::move(access.tls);
  return c;
}

class http_load final : public load_instance {
 public:
  explicit http_load(const loadgen::http_model_config& c) : model_(loadgen::make_http_model(c)) {}
  loadgen::load_model& model() override { return *model_; }

 private:
  std::unique_ptr<loadgen::load_model> model_;
};

std::string describe(const load_entry& e, const plan_context& ctx) {
  auto c = bind(e, ctx.s->target, {}, false);
  std::ostringstream out;
  out << "  load " << e.name << ": " << (c.open ? "open" : "closed") << " model, " << c.connections << " connections, "
      << c.method << " " << c.url << ", timeout " << units::format_duration(c.timeout_us);
  if (!c.headers.empty()) {
    out << ", headers:";
    for (const auto& [k, v] : c.headers) out << " " << k << (has_env_ref(v) ? "=<from environment>" : "=<set>");
  }
  out << "\n";
  return out.str();
}

}  // namespace

model_kind http_kind() {
  model_kind k;
  k.info.name = "http";
  k.info.doc = "a generic HTTP request at a rate (open model) or as fast as N connections allow (closed)";
  k.info.fields = keys();
  k.info.metrics = {{"http.latency", metric_unit::time, "request latency from the intended send time (open model)"},
                    {"http.latency.uncorrected", metric_unit::time, "request latency from the actual send"},
                    {"http.requests", metric_unit::count, "requests (ok and errors)"}};
  k.info.progress_requests = "http.requests";
  k.info.progress_latency = "http.latency";
  k.info.phase_needs_rate = [](const nlohmann::json& l) { return l.value("mode", "") != "closed"; };
  k.info.check = [](const nlohmann::json& l, const reference_context& ctx, const std::string& p, spec::errors& out) {
    const bool has_url = l.contains("request") && l["request"].contains("url");
    if (!has_url && ctx.http_endpoint.empty() && !ctx.lab)
      out.push_back(p + ".request.url: found nothing; expected a URL here or target.endpoints.http");
  };
  k.info.peak_requests = [](const nlohmann::json& l, double peak) {
    // A closed loop has no rate: take a ceiling this class of machine reaches per connection.
    return l.value("mode", "open") == "closed" ? 2000.0 * l.value("connections", 64) : peak;
  };
  k.info.parse = parse;
  k.build = [](const load_entry& e, const load_context& ctx) -> std::unique_ptr<load_instance> {
    return std::make_unique<http_load>(bind(e, *ctx.target, ctx.http_base, true));
  };
  k.describe = describe;
  return k;
}

}  // namespace syncstorm::engine::models
