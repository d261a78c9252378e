// Parsing of syncd's --bug and --listen values. Pure functions, no shared state.
#include "syncd/options.hpp"

#include <charconv>
#include <vector>

namespace syncstorm::syncd {
namespace {

bool parse_u32(std::string_view s, std::uint32_t& out) {
  if (s.empty()) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

}  // namespace

bool bug_modes::any() const {
  return ack_before_commit || drop_every || dup_every || corrupt_every || dup_apply || slow_ack_ms ||
         fanout_skip_every || fanout_reorder || fanout_stale_replay;
}

std::string bug_modes::describe() const {
  std::vector<std::string> parts;
  if (ack_before_commit) parts.emplace_back("ack-before-commit");
  if (drop_every) parts.push_back("drop-every=" + std::to_string(drop_every));
  if (dup_every) parts.push_back("dup-every=" + std::to_string(dup_every));
  if (corrupt_every) parts.push_back("corrupt-every=" + std::to_string(corrupt_every));
  if (dup_apply) parts.emplace_back("dup-apply");
  if (slow_ack_ms) parts.push_back("slow-ack=" + std::to_string(slow_ack_ms));
  if (fanout_skip_every) parts.push_back("fanout-skip-every=" + std::to_string(fanout_skip_every));
  if (fanout_reorder) parts.emplace_back("fanout-reorder");
  if (fanout_stale_replay) parts.emplace_back("fanout-stale-replay");
  if (parts.empty()) return "none";
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : ",") + p;
  return s;
}

bool parse_bug_modes(std::string_view text, bug_modes& out, std::string& error) {
  bug_modes m;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    auto item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    start = comma == std::string_view::npos ? text.size() + 1 : comma + 1;
    if (item.empty()) continue;
    auto eq = item.find('=');
    auto name = item.substr(0, eq);
    auto value = eq == std::string_view::npos ? std::string_view{} : item.substr(eq + 1);
    auto need_n = [&](std::uint32_t& field) {
      std::uint32_t n = 0;
      if (eq == std::string_view::npos || !parse_u32(value, n) || n == 0) {
        error = "--bug: found \"" + std::string(item) + "\"; expected " + std::string(name) + "=N with N >= 1";
        return false;
      }
      field = n;
      return true;
    };
    auto no_value = [&](bool& field) {
      if (eq != std::string_view::npos) {
        error = "--bug: found \"" + std::string(item) + "\"; " + std::string(name) + " takes no value";
        return false;
      }
      field = true;
      return true;
    };
    bool ok = false;
    if (name == "ack-before-commit")
      ok = no_value(m.ack_before_commit);
    else if (name == "drop-every")
      ok = need_n(m.drop_every);
    else if (name == "dup-every")
      ok = need_n(m.dup_every);
    else if (name == "corrupt-every")
      ok = need_n(m.corrupt_every);
    else if (name == "dup-apply")
      ok = no_value(m.dup_apply);
    else if (name == "slow-ack")
      ok = need_n(m.slow_ack_ms);
    else if (name == "fanout-skip-every")
      ok = need_n(m.fanout_skip_every);
    else if (name == "fanout-reorder")
      ok = no_value(m.fanout_reorder);
    else if (name == "fanout-stale-replay")
      ok = no_value(m.fanout_stale_replay);
    else if (name == "none")
      ok = true;
    else {
      error =
          "--bug: found \"" + std::string(item) +
          "\"; expected one of ack-before-commit, drop-every=N, dup-every=N, corrupt-every=N, dup-apply, slow-ack=MS, "
          "fanout-skip-every=N, fanout-reorder, fanout-stale-replay";
      return false;
    }
    if (!ok) return false;
  }
  out = m;
  return true;
}

bool parse_listen(std::string_view text, std::string& address, std::uint16_t& port, std::string& error) {
  auto colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    error = "--listen: found \"" + std::string(text) + "\"; expected ADDR:PORT like 127.0.0.1:8080";
    return false;
  }
  std::string addr(text.substr(0, colon));
  if (addr.size() >= 2 && addr.front() == '[' && addr.back() == ']') addr = addr.substr(1, addr.size() - 2);
  std::uint32_t p = 0;
  if (!parse_u32(text.substr(colon + 1), p) || p > 65535) {
    error = "--listen: found \"" + std::string(text) + "\"; expected a port 0-65535 after the colon";
    return false;
  }
  address = addr.empty() ? "0.0.0.0" : addr;
  port = static_cast<std::uint16_t>(p);
  return true;
}

}  // namespace syncstorm::syncd
