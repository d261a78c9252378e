// Parsing and formatting of the scenario's quantities: durations ("30s", "1h30m", "250ms"),
// rates ("50/s", "3000/m" or a number per second), sizes ("256MiB"), percentages (0–100 or
// "90%") and bandwidths ("10Mbit/s"). Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace syncstorm::units {

// Durations are held in microseconds; reports show milliseconds.
inline double us_to_ms(std::int64_t us) { return static_cast<double>(us) / 1000.0; }

// A bare number means seconds.
std::optional<std::int64_t> parse_duration_us(std::string_view text);
// "1h30m", "250ms", "1.5s": the shortest exact spelling.
std::string format_duration(std::int64_t us);

// Rates are per second. "50/s", "3000/m", "2/h", or a bare number (per second); at most
// max_rate (far past what one machine sends: a typo, never a plan; beyond it the arrival
// arithmetic would lose its meaning).
inline constexpr double max_rate = 1e7;
std::optional<double> parse_rate(std::string_view text);

// Sizes in bytes: "512", "10KB" (1000), "10KiB" (1024), "1.5GiB"; below 2^63.
std::optional<std::uint64_t> parse_size(std::string_view text);
std::string format_size(std::uint64_t bytes);

// Percent 0..100: "90%" or "90".
std::optional<double> parse_percent(std::string_view text);

// Bandwidth in bits per second: "10Mbit/s", "512kbit/s", "1MB/s" (bytes), "1Gbps".
std::optional<double> parse_bandwidth_bps(std::string_view text);

}  // namespace syncstorm::units
