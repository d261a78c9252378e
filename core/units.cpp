// Quantity parsing for scenario values. Strict: trailing garbage, negative values and unknown
// units are rejected (std::nullopt) so the validator can name what it found.
#include "core/units.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace syncstorm::units {
namespace {

// Reads a non-negative decimal number at the front of `s`; advances `s`.
std::optional<double> take_number(std::string_view& s) {
  std::size_t i = 0;
  bool digits = false, dot = false;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || (s[i] == '.' && !dot))) {
    if (s[i] == '.')
      dot = true;
    else
      digits = true;
    ++i;
  }
  if (!digits) return std::nullopt;
  double v = 0;
  auto r = std::from_chars(s.data(), s.data() + i, v);
  if (r.ec != std::errc{} || r.ptr != s.data() + i) return std::nullopt;
  s.remove_prefix(i);
  return v;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::string fmt_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

std::optional<std::int64_t> parse_duration_us(std::string_view text) {
  std::string_view s = trim(text);
  if (s.empty()) return std::nullopt;
  double total = 0;
  bool any = false;
  while (!s.empty()) {
    auto n = take_number(s);
    if (!n) return std::nullopt;
    double mult;
    if (s.starts_with("us")) {
      mult = 1;
      s.remove_prefix(2);
    } else if (s.starts_with("ms")) {
      mult = 1e3;
      s.remove_prefix(2);
    } else if (s.starts_with("s")) {
      mult = 1e6;
      s.remove_prefix(1);
    } else if (s.starts_with("m")) {
      mult = 60e6;
      s.remove_prefix(1);
    } else if (s.starts_with("h")) {
      mult = 3600e6;
      s.remove_prefix(1);
    } else if (s.starts_with("d")) {
      mult = 86400e6;
      s.remove_prefix(1);
    } else if (s.empty() && !any) {
      mult = 1e6;
    }  // a bare number: seconds
    else
      return std::nullopt;
    total += *n * mult;
    any = true;
  }
  if (!std::isfinite(total) || total > 9.0e15) return std::nullopt;
  return static_cast<std::int64_t>(std::llround(total));
}

std::string format_duration(std::int64_t us) {
  if (us == 0) return "0s";
  std::string out;
  if (us < 0) {
    out = "-";
    us = -us;
  }
  if (us % 1000 != 0) return out + std::to_string(us) + "us";
  if (us % 1'000'000 != 0) {
    if (us < 1'000'000) return out + std::to_string(us / 1000) + "ms";
    return out + fmt_number(static_cast<double>(us) / 1e6) + "s";
  }
  std::int64_t s = us / 1'000'000;
  std::int64_t h = s / 3600, m = (s % 3600) / 60, sec = s % 60;
  if (h) out += std::to_string(h) + "h";
  if (m) out += std::to_string(m) + "m";
  if (sec) out += std::to_string(sec) + "s";
  return out;
}

std::optional<double> parse_rate(std::string_view text) {
  std::string_view s = trim(text);
  auto n = take_number(s);
  if (!n) return std::nullopt;
  double r;
  if (s.empty() || s == "/s")
    r = *n;
  else if (s == "/m" || s == "/min")
    r = *n / 60.0;
  else if (s == "/h")
    r = *n / 3600.0;
  else
    return std::nullopt;
  if (!std::isfinite(r) || r > max_rate) return std::nullopt;
  return r;
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::string_view s = trim(text);
  auto n = take_number(s);
  if (!n) return std::nullopt;
  struct unit {
    std::string_view name;
    double mult;
  };
  static constexpr unit table[] = {{"", 1},
                                   {"B", 1},
                                   {"KB", 1e3},
                                   {"MB", 1e6},
                                   {"GB", 1e9},
                                   {"TB", 1e12},
                                   {"K", 1024.0},
                                   {"KiB", 1024.0},
                                   {"M", 1048576.0},
                                   {"MiB", 1048576.0},
                                   {"G", 1073741824.0},
                                   {"GiB", 1073741824.0},
                                   {"TiB", 1099511627776.0}};
  for (const auto& u : table) {
    if (s == u.name) {
      const double b = *n * u.mult;
      if (!std::isfinite(b) || b >= 9.0e18) return std::nullopt;
      return static_cast<std::uint64_t>(std::llround(b));
    }
  }
  return std::nullopt;
}

std::string format_size(std::uint64_t bytes) {
  static constexpr const char* names[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int i = 0;
  while (v >= 1024 && i < 4 && std::fmod(v, 1024) == 0) {
    v /= 1024;
    ++i;
  }
  return fmt_number(v) + names[i];
}

std::optional<double> parse_percent(std::string_view text) {
  std::string_view s = trim(text);
  auto n = take_number(s);
  if (!n) return std::nullopt;
  if (!(s.empty() || s == "%")) return std::nullopt;
  if (*n > 100.0) return std::nullopt;
  return *n;
}

std::optional<double> parse_bandwidth_bps(std::string_view text) {
  std::string_view s = trim(text);
  auto n = take_number(s);
  if (!n) return std::nullopt;
  struct unit {
    std::string_view name;
    double bits;
  };
  static constexpr unit table[] = {{"bit/s", 1},
                                   {"bps", 1},
                                   {"kbit/s", 1e3},
                                   {"kbps", 1e3},
                                   {"Kbit/s", 1e3},
                                   {"Mbit/s", 1e6},
                                   {"Mbps", 1e6},
                                   {"Gbit/s", 1e9},
                                   {"Gbps", 1e9},
                                   {"B/s", 8},
                                   {"KB/s", 8e3},
                                   {"MB/s", 8e6},
                                   {"GB/s", 8e9},
                                   {"KiB/s", 8 * 1024.0},
                                   {"MiB/s", 8 * 1048576.0},
                                   {"GiB/s", 8 * 1073741824.0}};
  for (const auto& u : table) {
    if (s == u.name) return *n * u.bits;
  }
  return std::nullopt;
}

}  // namespace syncstorm::units
