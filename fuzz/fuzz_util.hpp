// Small helpers shared by the fuzz targets (fuzz/*.cpp): taking bytes off the front of the
// input, and the checks several targets make on what a parser returns. Header-only; each fuzz
// target is single-threaded.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include <sys/mman.h>
#include <unistd.h>

namespace syncstorm::fuzz {

// The input as a byte cursor: selector bytes come off the front, the rest is the payload.
class input {
 public:
  input(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  // The next byte, or 0 when none is left.
  std::uint8_t byte() {
    if (at_ == size_) return 0;
    return data_[at_++];
  }
  std::string_view rest() const { return {reinterpret_cast<const char*>(data_ + at_), size_ - at_}; }
  std::size_t left() const { return size_ - at_; }
  // The next `n` bytes (fewer at the end).
  std::string_view take(std::size_t n) {
    if (n > left()) n = left();
    std::string_view s(reinterpret_cast<const char*>(data_ + at_), n);
    at_ += n;
    return s;
  }

 private:
  const std::uint8_t* data_;
  std::size_t size_, at_ = 0;
};

// A property of the code under test failed: print it and abort, so libFuzzer saves the input.
[[noreturn]] inline void violated(const std::string& what) {
  std::fprintf(stderr, "fuzz: property violated: %s\n", what.c_str());
  std::abort();
}

// Error lines the parsers return end up in report.json, events.jsonl and the console, whose JSON
// writers throw on invalid UTF-8: a reason must be valid UTF-8 and short (an excerpt, never the
// whole of an untrusted value).
inline void check_reason(std::string_view reason, std::size_t max_bytes, const char* what) {
  if (reason.size() > max_bytes)
    violated(std::string(what) + ": a reason of " + std::to_string(reason.size()) + " bytes (at most " +
             std::to_string(max_bytes) + " expected)");
  try {
    (void)nlohmann::json(std::string(reason)).dump();
  } catch (const nlohmann::json::type_error&) {
    violated(std::string(what) + ": a reason that is not valid UTF-8");
  }
}

// One in-memory file (memfd) for a whole fuzzing run, named by its /proc/self/fd path so the real
// file-reading code runs; rewritten for each input.
struct memfile {
  int fd = ::memfd_create("fuzz-input", 0);
  std::string path = "/proc/self/fd/" + std::to_string(fd);

  void write(std::string_view text) const {
    if (::ftruncate(fd, 0) != 0) violated("ftruncate");
    std::size_t at = 0;
    while (at < text.size()) {
      const ssize_t n = ::pwrite(fd, text.data() + at, text.size() - at, static_cast<off_t>(at));
      if (n <= 0) violated("pwrite");
      at += static_cast<std::size_t>(n);
    }
  }
};

}  // namespace syncstorm::fuzz
