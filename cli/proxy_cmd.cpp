// `syncstorm proxy --listen ADDR:PORT --upstream HOST:PORT [--control SOCK] [--http] [--name N]`:
// the fault proxy (the lab relay's code, labstack/lab_relay) in the foreground, in front of any
// TCP endpoint, in pass-through until faults are set on its control socket. With `--request
// JSON` (and --control) it sends one control request to a running proxy instead and prints the
// answer, so no other tool is needed to drive it. `--config FILE` (hidden) is how `syncstorm run`
// starts a scenario's proxy (several paths; injectors/run_proxy.hpp).
// Exit codes: 0 stopped by SIGTERM/SIGINT (or the request answered ok), 2 bad flags, 3 a
// listener or the upstream's name could not be set up (or the request failed).
#include "cli/commands.hpp"
#include "core/json_limits.hpp"
#include "proxy/relay.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

namespace syncstorm::cli {
namespace {

using json = nlohmann::json;

struct proxy_flags {
  std::string listen, upstream, control, name = "proxy", config, request;
  bool http = false;
};

// "HOST:PORT" (or "[v6]:PORT") → "IP:PORT" with the host resolved; empty `error` on success.
std::string resolve_hostport(const std::string& flag, const std::string& v, std::string& error) {
  std::string host, port;
  if (v.starts_with("[")) {
    auto close = v.find(']');
    if (close == std::string::npos || close + 1 >= v.size() || v[close + 1] != ':') {
      error = flag + ": found \"" + v + "\"; expected HOST:PORT";
      return {};
    }
    host = v.substr(1, close - 1);
    port = v.substr(close + 2);
  } else {
    auto colon = v.rfind(':');
    if (colon == std::string::npos) {
      error = flag + ": found \"" + v + "\"; expected HOST:PORT";
      return {};
    }
    host = v.substr(0, colon);
    port = v.substr(colon + 1);
  }
  if (host.empty()) host = "0.0.0.0";
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos || port.size() > 5 ||
      std::stoi(port) > 65535) {
    error = flag + ": found \"" + v + "\"; expected HOST:PORT with a port 0-65535";
    return {};
  }
  std::string why;
  std::string ip = proxy::numeric_address(host, &why);
  if (ip.empty()) {
    error = flag + ": cannot resolve \"" + host + "\" (" + why + ")";
    return {};
  }
  return ip + ":" + port;
}

registration proxy_reg{
    60, [](CLI::App& app) -> action {
      auto f = std::make_shared<proxy_flags>();
      auto* sub = app.add_subcommand(
          "proxy", "run the fault proxy in front of a TCP endpoint (foreground), or send it one control request");
      sub->add_option("--listen", f->listen, "ADDR:PORT to listen on (port 0: a free one)");
      sub->add_option("--upstream", f->upstream, "HOST:PORT to forward to");
      sub->add_option("--control", f->control, "control socket (default /tmp/syncstorm-proxy-<pid>.sock)");
      sub->add_flag("--http", f->http, "the path carries HTTP/1.1 requests (http_error applies)");
      sub->add_option("--name", f->name, "the path's name in status and control requests (default proxy)");
      sub->add_option("--request", f->request, "send this JSON control request to --control and print the answer");
      sub->add_option("--config", f->config, "")->group("");  // syncstorm run's scenario proxy
      return [f]() -> int {
        if (!f->request.empty()) {
          if (f->control.empty()) {
            std::cerr << "--control: found nothing; expected the proxy's control socket for --request\n";
            return 2;
          }
          json req = parse_bounded(f->request);
          if (req.is_discarded() || !req.is_object()) {
            std::cerr << "--request: found \"" << f->request
                      << "\"; expected a JSON object like {\"cmd\":\"status\"}\n";
            return 2;
          }
          try {
            json a = proxy::relay_control(f->control, req);
            std::cout << a.dump() << "\n";
            return a.value("ok", false) ? 0 : 3;
          } catch (const std::exception& e) {
            std::cerr << "proxy: " << e.what() << "\n";
            return 3;
          }
        }
        proxy::relay_config cfg;
        if (!f->config.empty()) {
          std::ifstream in(f->config);
          json c = json::parse(in, nullptr, false);
          if (c.is_discarded() || !c.contains("paths") || !c.contains("control")) {
            std::cerr << "--config: found an unreadable file " << f->config
                      << "; expected {\"paths\": [...], \"control\": ...}\n";
            return 2;
          }
          for (const auto& p : c["paths"])
            cfg.paths.push_back({p.at("name"), p.at("listen"), p.at("upstream"), {}, p.value("http", false)});
          cfg.control = c["control"];
          return proxy::relay_run(cfg);
        }
        if (f->listen.empty() || f->upstream.empty()) {
          std::cerr << (f->listen.empty() ? "--listen" : "--upstream")
                    << ": found nothing; expected ADDR:PORT (or --request with --control)\n";
          return 2;
        }
        std::string error;
        std::string listen = resolve_hostport("--listen", f->listen, error);
        std::string upstream = error.empty() ? resolve_hostport("--upstream", f->upstream, error) : "";
        if (!error.empty()) {
          std::cerr << error << "\n";
          return error.find("cannot resolve") != std::string::npos ? 3 : 2;
        }
        if (f->name.empty() || f->name.find_first_of(" \"") != std::string::npos) {
          std::cerr << "--name: found \"" << f->name << "\"; expected a word\n";
          return 2;
        }
        cfg.paths.push_back({f->name, listen, upstream, {}, f->http});
        cfg.control = f->control.empty() ? "/tmp/syncstorm-proxy-" + std::to_string(::getpid()) + ".sock" : f->control;
        const std::string control = cfg.control;
        cfg.on_listening = [f, control, upstream](const json& st) {
          const json& p = st["paths"][f->name];
          std::cout << "proxy " << f->name << ": " << p.value("listen", "") << " -> " << upstream
                    << (f->http ? " (HTTP/1.1)" : "") << ", pass-through; control " << control << std::endl;
        };
        int rc = proxy::relay_run(cfg);
        std::error_code ec;
        std::filesystem::remove(control, ec);
        return rc == 0 ? 0 : 3;
      };
    }};

}  // namespace
}  // namespace syncstorm::cli
