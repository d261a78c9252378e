// The socket-free logic of the fanout model (fanout_model.hpp), unit-tested with a fake clock
// in tests/unit/fanout_logic_test.cpp: reconnect backoff with full jitter, the connect pacer,
// and a subscriber's delivery bookkeeping (which of the model's own ops it received, holes,
// duplicates, out-of-order frames, and the cursor to resume from).
//
// Threading: none of these types are thread-safe; each belongs to one worker's thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace syncstorm::loadgen::detail {

// Exponential backoff with full jitter: uniform in [0, min(max_us, base_us · 2^attempt)], from
// a random 64-bit value. attempt 0 is the first retry.
std::int64_t backoff_us(int attempt, std::int64_t base_us, std::int64_t max_us, std::uint64_t random);

// splitmix64: a seeded, stateless mixer for per-subscriber randomness.
std::uint64_t mix64(std::uint64_t z);

// Hands out connection start times at most `rate` per second: reserve() returns when the next
// connect may start (never before `now`); slots are not banked while idle.
class connect_pacer {
 public:
  explicit connect_pacer(double rate_per_s);
  std::int64_t reserve(std::int64_t now_us);

 private:
  std::int64_t interval_us_;
  std::int64_t next_us_ = 0;
};

// The own ops (sequence numbers 1, 2, …) one subscriber received on one stream: the complete
// prefix 1..contiguous() and, above it, the ones received past a hole with their cursors. In the
// normal case (in order, no loss) it holds two numbers; only holes cost memory.
class seq_set {
 public:
  // Returns false when `seq` was already in the set. `cursor` is the frame's (for resuming).
  bool insert(std::int64_t seq, std::int64_t cursor);
  bool contains(std::int64_t seq) const;
  std::int64_t contiguous() const noexcept { return contig_; }  // 1..contiguous() all present
  // The cursor of the frame that carried seq contiguous() (0 before any).
  std::int64_t contiguous_cursor() const noexcept { return contig_cursor_; }
  bool has_hole() const noexcept { return !above_.empty(); }
  std::uint64_t size() const noexcept { return static_cast<std::uint64_t>(contig_) + above_.size(); }
  std::size_t memory() const noexcept { return above_.capacity() * sizeof(above_[0]); }
  // The seqs received above the prefix, ascending.
  const std::vector<std::pair<std::int64_t, std::int64_t>>& above() const noexcept { return above_; }

 private:
  std::int64_t contig_ = 0, contig_cursor_ = 0;
  std::vector<std::pair<std::int64_t, std::int64_t>> above_;  // (seq, cursor), seq > contig_
};

// One subscriber's bookkeeping over its subscribed streams ("slots"). Cursors are the server's
// commit sequence (cseq), increasing in commit order across all streams; own_seq is the
// per-stream sequence of the model's own ops (1, 2, …, pushed in order), 0 for a change some
// other client made.
//
// A connection is opened with `after = resume_cursor()`: with no hole, the highest cursor
// received; with holes, for each stream with a hole the cursor of its last own op before the
// hole (the missing op committed after it, since own ops on a stream are pushed one batch at a
// time in seq order), the lowest of those. So a reconnect replays what a hole lacks. Frames the server replays at or below the highest cursor
// received before this connection (`replay_upto`) are expected overlap: an own op received
// before is `replayed` (ignored), one not received before is `repaired`. Above it, an own op
// received twice is a `duplicate`. A cursor lower than the previous frame's on the same
// connection is `out_of_order` (the server promises cseq order). A frame at or below the
// stream's snapshot cursor (the records read before the first connect) is `stale`.
class delivery_tracker {
 public:
  enum class verdict { fresh, repaired, replayed, duplicate, stale };
  struct result {
    verdict v = verdict::fresh;
    bool out_of_order = false;
    // At or below the cursor this connection resumed from (after=): the server sent something
    // the subscriber had already read past, so its view of the stream went backwards.
    bool backwards = false;
  };

  // snapshot[slot]: the cursor of the records snapshot of each subscribed stream.
  explicit delivery_tracker(const std::vector<std::int64_t>& snapshot);

  std::int64_t resume_cursor() const noexcept;
  // A new connection starts (call before its first frame); it resumes from resume_cursor().
  void on_connect() noexcept;
  result on_frame(std::size_t slot, std::int64_t cursor, std::int64_t own_seq, std::int64_t now_us);

  // Since when some own op has been missing below a later one received (a hole); nullopt if none.
  std::optional<std::int64_t> hole_since() const noexcept { return hole_since_; }
  // Marks the current hole as counted (a gap); returns true the first time for this hole.
  bool count_gap() noexcept;
  const seq_set& received(std::size_t slot) const { return slots_.at(slot).own; }
  std::int64_t snapshot(std::size_t slot) const { return slots_.at(slot).snapshot; }
  std::size_t slots() const noexcept { return slots_.size(); }
  std::size_t memory() const noexcept;

 private:
  struct slot_state {
    std::int64_t snapshot = 0;
    seq_set own;
  };
  void update_holes(std::int64_t now_us) noexcept;

  std::vector<slot_state> slots_;
  std::int64_t max_cursor_ = 0;   // highest cursor received
  std::int64_t replay_upto_ = 0;  // max_cursor_ when the current connection opened
  std::int64_t conn_last_ = -1;   // last cursor on the current connection
  std::int64_t conn_after_ = -1;  // the cursor the current connection resumed from
  std::optional<std::int64_t> hole_since_;
  bool gap_counted_ = false;
};

// Own ops the subscriber should have and does not: seqs 1..created on the slot's stream that
// `acked(seq)` says were acknowledged and that are not in `got`.
template <class Acked>
std::uint64_t count_missing(const seq_set& got, std::int64_t created, Acked&& acked) {
  std::uint64_t n = 0;
  auto above = got.above().begin();
  for (std::int64_t q = got.contiguous() + 1; q <= created; ++q) {
    while (above != got.above().end() && above->first < q) ++above;
    if (above != got.above().end() && above->first == q) continue;
    if (acked(q)) ++n;
  }
  return n;
}

}  // namespace syncstorm::loadgen::detail
