// What the client-side fault kinds (client_crash, journal_corrupt) need from the load models
// that own terminals (the `terminal` model, loadgen/). The engine passes an implementation to
// the fault runner; the injectors never see a model's internals. Calls come from the fault
// runner's threads: implementations must be thread-safe (post to the owning worker).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace syncstorm::injectors {

class client_control {
 public:
  virtual ~client_control() = default;
  // Names of the terminals that exist now ("store-3/lane-1"), in a stable order.
  virtual std::vector<std::string> clients() const = 0;
  // The terminal loses everything in memory (queue, batcher, breaker state) and starts again
  // from its journal, as a process that crashed and restarted would. Throws on an unknown name.
  virtual void crash(const std::string& client) = 0;
  // Flips `bytes` bytes of the terminal's journal at offsets drawn from `seed` (records already
  // written, so the terminal must detect the damage by its checksums and re-sync).
  virtual void corrupt_journal(const std::string& client, int bytes, std::uint64_t seed) = 0;
  // True once the terminal has finished replaying (after crash) or detected the damage and
  // re-synced (after corrupt_journal): the fault's effect is over (verify_reverted).
  virtual bool recovered(const std::string& client) const = 0;
  // The journal file (for --dry-run and the ledger).
  virtual std::string journal_path(const std::string& client) const = 0;
};

}  // namespace syncstorm::injectors
