// A terminal's local journal (DESIGN §5): an append-only file of checksummed records. Every op
// a terminal creates is written here before it is queued; acks, lww rebases and ops kept aside
// by the `queue` conflict policy are appended when they happen. Replaying the file gives back
// the ops still owed to the server, so a terminal that loses its memory (the `client_crash`
// fault) rebuilds its queue from it.
//
// Record format: [u32 little-endian payload length][u32 little-endian CRC-32 (IEEE) of the
// payload][payload: one JSON object]. Payloads: {"t":"op", "id", "stream", "seq", "t_us",
// "kind", "key"?, "delta"?, "base_version"?, "value"?} | {"t":"ack", "ids": [...]} |
// {"t":"rebase", "id", "base_version"} | {"t":"reject", "ids": [...]}.
//
// Corruption: replay reads records from the start and stops at the first one that is short,
// longer than the file, fails its CRC or does not parse. Everything after that point is
// unreadable; `corrupt` is then true and `good_bytes` is where the good prefix ends. A torn
// tail (a crash inside a write) reads the same way: the journal cannot tell the two apart, and
// a terminal treats both as corruption (count, event, re-sync), which errs on the safe side.
//
// fsync policies: always = fsync after every record; batch = the caller calls sync() once per
// batch it pushes (ops written since are made durable together, before they leave); never = the
// page cache decides. Ack, rebase and reject records are fsynced only under `always`: losing one
// only makes a replayed terminal push an op again, which op ids make idempotent.
//
// Threading: a journal belongs to one terminal on one worker thread. The calls block on the
// file system (that is what local.write measures). Never throws after construction: I/O
// errors are returned as false.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "loadgen/sync_protocol.hpp"

namespace syncstorm::loadgen {

enum class fsync_policy { always, batch, never };

std::uint32_t crc32(const void* data, std::size_t n, std::uint32_t crc = 0) noexcept;

struct journal_replay {
  std::vector<sync_op> pending;    // ops of the good prefix neither acked nor rejected, in order,
                                   // with their latest rebase applied
  std::vector<std::string> acked;  // ids acked in the good prefix
  std::vector<std::string> rejected;
  std::size_t records = 0, ops = 0;
  std::int64_t last_seq = 0;  // highest op seq in the good prefix
  std::uint64_t good_bytes = 0, file_bytes = 0;
  bool corrupt = false;  // bytes after the good prefix
  std::string reason;    // why the record at good_bytes was refused
};

class journal {
 public:
  // Opens (creating, appending to what is there) `path`; creates the parent directories.
  // Throws std::runtime_error naming the path on failure (a setup failure).
  journal(std::filesystem::path path, fsync_policy policy);
  ~journal();
  journal(const journal&) = delete;
  journal& operator=(const journal&) = delete;

  bool append_op(const sync_op& op);
  bool append_acks(const std::vector<std::string>& ids);
  bool append_rebase(const std::string& id, std::int64_t base_version);
  bool append_rejects(const std::vector<std::string>& ids);
  // Under `batch`: fsync what was written since the last sync. A no-op otherwise.
  bool sync();
  // Under `batch`, for an fsync on another thread: marks what was written so far as synced and
  // returns a duplicate of the file descriptor for the caller to fdatasync and close (so a
  // journal replaced meanwhile, by a crash, never has its descriptor reused under the fsync).
  // -1 when there is nothing to sync, or dup failed (then errno says why).
  int begin_sync();
  // True when records were written under `batch` and not yet fsynced.
  bool dirty() const noexcept { return dirty_; }

  // Bytes this journal wrote (its file size when nothing else touched it).
  std::uint64_t size() const noexcept { return size_; }
  const std::filesystem::path& path() const noexcept { return path_; }
  fsync_policy policy() const noexcept { return policy_; }

  // Replaces the file with a good journal holding `ops` (op records, each with its current
  // base_version): written to a temporary file, fsynced, renamed over the old one, the
  // directory fsynced; then appends continue on the new file. False on an I/O error (the old
  // file is then kept).
  bool rewrite(const std::vector<sync_op>& ops);

  // Reads and checks a journal file. A missing file is an empty, good journal.
  static journal_replay replay(const std::filesystem::path& path);

 private:
  bool append(const std::string& payload, bool force_sync);
  std::filesystem::path path_;
  fsync_policy policy_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
  bool dirty_ = false;
};

// One op record's payload and back (exposed for tests).
std::string journal_op_payload(const sync_op& op);

// Flips (XOR 0xFF) `bytes` bytes of the file at an offset drawn from `seed` within it (the run
// of bytes fits in the file). Returns the offset, or nullopt when the file is missing or empty
// or cannot be written.
std::optional<std::uint64_t> corrupt_file(const std::filesystem::path& path, std::size_t bytes, std::uint64_t seed);

}  // namespace syncstorm::loadgen
