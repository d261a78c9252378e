// `syncstorm lab up [--pods N] [--replica] [--db-volume SIZE] [--bug MODE] | lab status [--json] |
// lab down` (DESIGN §9): the reference stack as a standing lab. `up` returns once the lab is
// ready and leaves it running (its supervisor is a detached process); `status` and `down` find
// it by --id, or take the only lab there is (`down` without --id takes every lab).
// Single-threaded. Exit codes: 0 done, 2 invalid flags, 3 the lab could not be brought up or
// fully removed.
#include "cli/commands.hpp"
#include "core/units.hpp"
#include "labstack/lab.hpp"
#include "labstack/lab_state.hpp"

#include <iostream>
#include <memory>

namespace syncstorm::cli {
namespace {

using json = nlohmann::json;

struct lab_flags {
  int pods = 2;
  bool replica = false;
  std::string db_volume;
  std::string bug;
  std::string id;
  std::string network = "auto";
  std::string restart_delay = "1s";
  int check_interval_ms = 1000;
  int check_fall = 3;
  int check_rise = 2;
  bool json_out = false;
};

// The lab a status/down without --id means: the only one, else an error listing them.
std::optional<std::string> only_lab(const std::string& flag_id, std::string& error) {
  if (!flag_id.empty()) {
    if (!lab::valid_lab_id(flag_id)) {
      error = "--id: found \"" + flag_id + "\"; expected 1 to 8 characters of [a-z0-9]";
      return std::nullopt;
    }
    return flag_id;
  }
  auto ids = lab::list_lab_ids();
  if (ids.empty()) {
    error = "no lab is up (found nothing under " + lab::labs_root() + ")";
    return std::nullopt;
  }
  if (ids.size() > 1) {
    std::string list;
    for (auto& i : ids) list += (list.empty() ? "" : ", ") + i;
    error = "--id: found several labs (" + list + "); expected --id to say which";
    return std::nullopt;
  }
  return ids.front();
}

void print_status_text(const json& s) {
  std::cout << "lab " << s.value("id", "") << ": " << s.value("phase", "") << " (" << s.value("dir", "") << ")\n";
  const json net = s.value("network", json::object());
  std::cout << "  network:    " << net.value("mode", "");
  if (net.value("mode", "") == "namespaces")
    std::cout << " " << net.value("subnet", "") << " on " << net.value("bridge", "") << ", gateway "
              << net.value("gateway", "");
  else if (net.contains("why_not_namespaces"))
    std::cout << " (" << net.value("why_not_namespaces", "") << ")";
  std::cout << "\n";
  if (s.contains("lb")) {
    std::cout << "  lb http:    " << s["lb"].value("http_url", "") << "   (relay lb_http → HAProxy "
              << s["lb"].value("haproxy_http", "") << ")\n"
              << "  lb ws:      " << s["lb"].value("ws_url", "") << "/v1/ws   (relay lb_ws → HAProxy "
              << s["lb"].value("haproxy_ws", "") << ")\n"
              << "  lb stats:   " << s["lb"].value("stats_socket", "") << "\n";
  }
  if (s.contains("db")) {
    std::cout << "  db:         " << s["db"].value("dsn", "") << "   (primary " << s["db"].value("primary", "");
    if (s["db"]["replica"].is_string()) std::cout << ", replica " << s["db"]["replica"].get<std::string>();
    std::cout << ")\n  pods → db:  " << s["db"].value("pod_dsn", "") << "   (relay db → "
              << s["paths"]["db"].value("upstream", "") << ")\n";
  }
  std::cout << "  units:\n";
  for (json items_of = s.value("units", json::object()); auto& [name, u] : items_of.items()) {
    std::cout << "    " << name << "  " << u.value("role", "") << "  " << u.value("status", "?") << "  pid "
              << u.value("pid", 0L);
    if (u.contains("address")) std::cout << "  " << u.value("address", "");
    if (u.contains("netns")) std::cout << "  netns " << u.value("netns", "");
    if (u.contains("lb")) std::cout << "  lb " << u.value("lb", "");
    if (u.value("restarts", 0) > 0) std::cout << "  restarts " << u.value("restarts", 0);
    std::cout << "\n";
  }
  std::cout << "  supervisor: pid " << s["supervisor"].value("pid", 0L)
            << (s["supervisor"].value("answering", false) ? "" : " (not answering)") << "\n"
            << "  events:     " << s["files"].value("events", "") << "\n"
            << "  state:      " << s["files"].value("state", "") << "\n";
}

registration lab_reg{
    50, [](CLI::App& app) -> action {
      auto f = std::make_shared<lab_flags>();
      auto* sub = app.add_subcommand("lab", "the reference sync stack on this machine: up, status, down");
      sub->require_subcommand(1);

      auto* up =
          sub->add_subcommand("up", "start a lab (PostgreSQL, syncd pods, HAProxy, supervisor) and leave it running");
      up->add_option("--pods", f->pods, "number of syncd pods (1-200)");
      up->add_flag("--replica", f->replica, "add a synchronous streaming replica");
      up->add_option("--db-volume", f->db_volume, "put the data directories on a tmpfs of this size, e.g. 256MiB");
      up->add_option("--bug", f->bug, "syncd bug mode for every pod, e.g. drop-every=50");
      up->add_option("--id", f->id, "lab id ([a-z0-9]{1,8}; default: default)");
      up->add_option("--network", f->network, "auto, namespaces or loopback");
      up->add_option("--restart-delay", f->restart_delay, "supervisor: delay before restarting what died (e.g. 1s)");
      up->add_option("--check-interval", f->check_interval_ms, "HAProxy health check interval, ms");
      up->add_option("--check-fall", f->check_fall, "failed checks before a pod is marked down");
      up->add_option("--check-rise", f->check_rise, "passed checks before a pod is marked up");

      auto* status = sub->add_subcommand("status", "show the lab's addresses, processes and states");
      status->add_flag("--json", f->json_out, "print the status document as JSON");
      status->add_option("--id", f->id, "which lab (default: the only one)");

      auto* down = sub->add_subcommand("down", "stop and remove the lab (every lab without --id)");
      down->add_option("--id", f->id, "which lab (default: all)");

      return [f, up, status, down]() -> int {
        if (up->parsed()) {
          lab::lab_options o;
          if (f->pods < 1 || f->pods > 200) {
            std::cerr << "syncstorm: --pods: found " << f->pods << "; expected 1 to 200\n";
            return 2;
          }
          o.pods = f->pods;
          o.replica = f->replica;
          if (!f->db_volume.empty()) {
            auto b = units::parse_size(f->db_volume);
            if (!b || *b < (96ull << 20)) {
              std::cerr << "syncstorm: --db-volume: found \"" << f->db_volume
                        << "\"; expected a size of at least 96MiB, like 256MiB\n";
              return 2;
            }
            o.db_volume_bytes = *b;
          }
          o.bug = f->bug;
          o.id = f->id.empty() ? "default" : f->id;
          if (!lab::valid_lab_id(o.id)) {
            std::cerr << "syncstorm: --id: found \"" << o.id << "\"; expected 1 to 8 characters of [a-z0-9]\n";
            return 2;
          }
          if (f->network != "auto" && f->network != "namespaces" && f->network != "loopback") {
            std::cerr << "syncstorm: --network: found \"" << f->network
                      << "\"; expected auto, namespaces or loopback\n";
            return 2;
          }
          o.network = f->network;
          auto delay = units::parse_duration_us(f->restart_delay);
          if (!delay || *delay < 0) {
            std::cerr << "syncstorm: --restart-delay: found \"" << f->restart_delay
                      << "\"; expected a duration like \"1s\"\n";
            return 2;
          }
          o.restart_delay_us = *delay;
          if (f->check_interval_ms < 10) {
            std::cerr << "syncstorm: --check-interval: found " << f->check_interval_ms
                      << "; expected at least 10 (ms)\n";
            return 2;
          }
          if (f->check_fall < 1 || f->check_rise < 1) {
            std::cerr << "syncstorm: --check-" << (f->check_fall < 1 ? "fall" : "rise") << ": found "
                      << (f->check_fall < 1 ? f->check_fall : f->check_rise) << "; expected at least 1\n";
            return 2;
          }
          o.check_interval_ms = f->check_interval_ms;
          o.check_fall = f->check_fall;
          o.check_rise = f->check_rise;
          try {
            auto l = lab::lab::up(o);
            print_status_text(l.status());
            return 0;
          } catch (const std::exception& e) {
            std::cerr << "syncstorm: " << e.what() << "\n";
            return 3;
          }
        }
        if (status->parsed()) {
          std::string error;
          auto id = only_lab(f->id, error);
          if (!id) {
            std::cerr << "syncstorm: lab status: " << error << "\n";
            return error.rfind("--id", 0) == 0 ? 2 : 3;
          }
          try {
            auto l = lab::lab::attach(*id);
            json s = l.status();
            if (f->json_out)
              std::cout << s.dump(2) << "\n";
            else
              print_status_text(s);
            return 0;
          } catch (const std::exception& e) {
            std::cerr << "syncstorm: lab status: " << e.what() << "\n";
            return 3;
          }
        }
        if (down->parsed()) {
          std::vector<std::string> ids;
          if (!f->id.empty()) {
            if (!lab::valid_lab_id(f->id)) {
              std::cerr << "syncstorm: --id: found \"" << f->id << "\"; expected 1 to 8 characters of [a-z0-9]\n";
              return 2;
            }
            ids.push_back(f->id);
          } else {
            ids = lab::list_lab_ids();
          }
          if (ids.empty()) {
            std::cout << "no lab is up\n";
            return 0;
          }
          int rc = 0;
          for (auto& id : ids) {
            auto errors = lab::lab::down(id);
            if (errors.empty()) {
              std::cout << "lab " << id << ": down\n";
            } else {
              rc = 3;
              for (auto& e : errors) std::cerr << "syncstorm: lab " << id << ": " << e << "\n";
            }
          }
          return rc;
        }
        return 2;
      };
    }};

}  // namespace
}  // namespace syncstorm::cli
