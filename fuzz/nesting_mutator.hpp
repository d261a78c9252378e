// A custom libFuzzer mutation for the targets that parse JSON (fuzz_sync_reply, fuzz_syncd_push,
// fuzz_scenario): deep nesting. A value nested thousands of levels deep is the input that crashed
// `syncstorm run` and syncd (issue #23: a push reply {"acked": [[[[…]]]]} 200,000 levels deep, a
// stack overflow in nlohmann's recursive dump), and byte mutations all but never make one: the
// brackets must balance, thousands of them, and no coverage edge rewards depth. So one mutation in
// eight wraps one JSON value of the input (after a ':', '[' or ',') in 1 to 65,536 levels of
// `[…]` or `{"a":…}`, as many as the size limit (-max_len) leaves room for; the others are
// libFuzzer's own. With the depth bound reverted in sync_protocol.cpp, fuzz_sync_reply finds the
// stack overflow this way within seconds (docs/architecture.md, "Fuzzing and sanitizers").
// Define the target's hook with SYNCSTORM_FUZZ_NESTING_MUTATOR() at namespace scope.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

namespace syncstorm::fuzz {

namespace nesting_detail {

inline bool is_space(std::uint8_t c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

inline bool starts_value(std::uint8_t c) {
  return c == '[' || c == '{' || c == '"' || c == '-' || (c >= '0' && c <= '9') || c == 't' || c == 'f' || c == 'n';
}

// The end (one past) of the JSON value starting at `b`, or 0 when it does not end in the input.
inline std::size_t value_end(const std::uint8_t* d, std::size_t size, std::size_t b) {
  const std::uint8_t c = d[b];
  if (c == '"') {
    for (std::size_t i = b + 1; i < size; ++i) {
      if (d[i] == '\\')
        ++i;
      else if (d[i] == '"')
        return i + 1;
    }
    return 0;
  }
  if (c == '[' || c == '{') {
    std::size_t depth = 0;
    for (std::size_t i = b; i < size; ++i) {
      if (d[i] == '"') {
        for (++i; i < size && d[i] != '"'; ++i)
          if (d[i] == '\\') ++i;
        if (i >= size) return 0;
      } else if (d[i] == '[' || d[i] == '{') {
        ++depth;
      } else if (d[i] == ']' || d[i] == '}') {
        if (--depth == 0) return i + 1;
      }
    }
    return 0;
  }
  std::size_t i = b;
  while (i < size && d[i] != 0 && std::strchr("0123456789+-.eEtruefalsn", d[i]) != nullptr) ++i;
  return i;
}

// Calls f(begin) for every position where a value may start: after ':', '[' or ',' (spaces
// skipped).
template <class F>
void each_value_start(const std::uint8_t* d, std::size_t size, F&& f) {
  bool after = false;
  for (std::size_t i = 0; i < size; ++i) {
    const std::uint8_t c = d[i];
    if (after && !is_space(c) && starts_value(c)) f(i);
    if (c == ':' || c == '[' || c == ',')
      after = true;
    else if (!is_space(c))
      after = false;
  }
}

}  // namespace nesting_detail

// The input with one JSON value wrapped in `levels` more levels, in place; its new size, or 0 when
// there is no value to wrap or no room.
inline std::size_t nest_value(std::uint8_t* d, std::size_t size, std::size_t max_size, std::size_t pick,
                              std::size_t levels, bool objects) {
  using namespace nesting_detail;
  std::size_t count = 0, b = 0;
  each_value_start(d, size, [&](std::size_t i) {
    if (count++ == pick) b = i;
  });
  if (pick >= count) return 0;
  const std::size_t e = value_end(d, size, b);
  if (e == 0 || e <= b) return 0;
  static constexpr char open_obj[] = "{\"a\":";
  const std::size_t open_len = objects ? sizeof(open_obj) - 1 : 1;
  const std::size_t per_level = open_len + 1;
  if (size >= max_size) return 0;
  if (levels > (max_size - size) / per_level) levels = (max_size - size) / per_level;
  if (levels == 0) return 0;
  const std::size_t opens = levels * open_len, n = size + levels * per_level;
  // [0,b) opens [b,e) closes [e,size)
  std::memmove(d + e + opens + levels, d + e, size - e);
  std::memmove(d + b + opens, d + b, e - b);
  for (std::size_t k = 0; k < levels; ++k) {
    if (objects)
      std::memcpy(d + b + k * open_len, open_obj, open_len);
    else
      d[b + k] = '[';
  }
  std::memset(d + e + opens, objects ? '}' : ']', levels);
  return n;
}

// How many value starts the input has (for picking one).
inline std::size_t value_starts(const std::uint8_t* d, std::size_t size) {
  std::size_t count = 0;
  nesting_detail::each_value_start(d, size, [&](std::size_t) { ++count; });
  return count;
}

inline std::size_t mutate_with_nesting(std::uint8_t* data, std::size_t size, std::size_t max_size, unsigned seed) {
  std::minstd_rand rng(seed);
  if (size > 0 && rng() % 8 == 0) {
    if (const std::size_t starts = value_starts(data, size); starts > 0) {
      const std::size_t levels = std::size_t{1} << (rng() % 17);
      if (const std::size_t n = nest_value(data, size, max_size, rng() % starts, levels, rng() % 4 == 0); n > 0)
        return n;
    }
  }
  return LLVMFuzzerMutate(data, size, max_size);
}

}  // namespace syncstorm::fuzz

#define SYNCSTORM_FUZZ_NESTING_MUTATOR()                                                                     \
  extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size, \
                                                 unsigned int seed) {                                        \
    return ::syncstorm::fuzz::mutate_with_nesting(data, size, max_size, seed);                               \
  }
