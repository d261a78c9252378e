// Wall-clock time as text: the one formatter for every timestamp syncstorm writes (events.jsonl,
// report.json's started_at/ended_at, the fault ledger, the reaper's log, syncd's event log) and
// for run directory names. Always UTC, ISO 8601 with a 'Z'; fractions are truncated, never
// rounded, so a stamp never lies in the future of the instant it names.
//
// Header-only and without dependencies beyond the C++ library, so syncd (which does not link
// syncstorm_core) uses it too. Thread-safe: gmtime_r, no shared state.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string>

namespace syncstorm {

// "2026-12-07T09:11:04.123Z" with `fraction_digits` digits after the seconds (0: none,
// "2026-12-07T09:11:04Z"; at most 6). Instants before 1970 are written as the seconds they fall
// in, with the fraction counted forward from them.
inline std::string utc_iso8601(std::chrono::system_clock::time_point t, int fraction_digits = 3) {
  const std::int64_t us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::int64_t secs = us / 1'000'000;
  std::int64_t frac = us % 1'000'000;
  if (frac < 0) {
    frac += 1'000'000;
    secs -= 1;
  }
  const std::time_t tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[48];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  if (fraction_digits > 6) fraction_digits = 6;
  if (fraction_digits > 0) {
    std::int64_t scaled = frac;
    for (int d = fraction_digits; d < 6; ++d) scaled /= 10;
    n += static_cast<std::size_t>(
        std::snprintf(buf + n, sizeof buf - n, ".%0*lld", fraction_digits, static_cast<long long>(scaled)));
  }
  buf[n++] = 'Z';
  return std::string(buf, n);
}

// "20261207T091104Z": the basic format, for names (run directories) where ':' and '.' get in the way.
inline std::string utc_compact(std::chrono::system_clock::time_point t) {
  const std::time_t tt = std::chrono::system_clock::to_time_t(std::chrono::floor<std::chrono::seconds>(t));
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[24];
  std::size_t n = std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf, n);
}

}  // namespace syncstorm
