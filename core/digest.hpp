// FNV-1a 64 over bytes: the one hash behind the audit's payload and change digests and the
// fanout's frame digests. Not cryptographic; for telling stored values apart.
#pragma once

#include <cstdint>
#include <string_view>

namespace syncstorm {

inline std::uint64_t fnv1a(std::string_view bytes) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : bytes) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace syncstorm
