// The fanout model's pure logic (ws_logic.hpp).
#include "loadgen/detail/ws_logic.hpp"
#include "loadgen/terminal_logic.hpp"

#include <algorithm>
#include <cmath>

namespace syncstorm::loadgen::detail {

std::uint64_t mix64(std::uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::int64_t backoff_us(int attempt, std::int64_t base_us, std::int64_t max_us, std::uint64_t random) {
  return full_jitter_us(attempt + 1, base_us, max_us, random);
}

connect_pacer::connect_pacer(double rate_per_s)
    : interval_us_(rate_per_s > 0 ? static_cast<std::int64_t>(std::llround(1e6 / rate_per_s)) : 0) {}

std::int64_t connect_pacer::reserve(std::int64_t now_us) {
  const std::int64_t at = std::max(now_us, next_us_);
  next_us_ = at + interval_us_;
  return at;
}

bool seq_set::insert(std::int64_t seq, std::int64_t cursor) {
  if (seq <= contig_) return false;
  if (seq == contig_ + 1) {
    contig_ = seq;
    contig_cursor_ = cursor;
    std::size_t used = 0;
    while (used < above_.size() && above_[used].first == contig_ + 1) {
      contig_ = above_[used].first;
      contig_cursor_ = above_[used].second;
      ++used;
    }
    above_.erase(above_.begin(), above_.begin() + static_cast<std::ptrdiff_t>(used));
    if (above_.empty()) above_.shrink_to_fit();
    return true;
  }
  auto it =
      std::lower_bound(above_.begin(), above_.end(), seq, [](const auto& e, std::int64_t q) { return e.first < q; });
  if (it != above_.end() && it->first == seq) return false;
  above_.insert(it, {seq, cursor});
  return true;
}

bool seq_set::contains(std::int64_t seq) const {
  if (seq <= 0) return false;
  if (seq <= contig_) return true;
  auto it =
      std::lower_bound(above_.begin(), above_.end(), seq, [](const auto& e, std::int64_t q) { return e.first < q; });
  return it != above_.end() && it->first == seq;
}

delivery_tracker::delivery_tracker(const std::vector<std::int64_t>& snapshot) {
  slots_.resize(snapshot.size());
  std::int64_t low = snapshot.empty() ? 0 : snapshot.front();
  for (std::size_t i = 0; i < snapshot.size(); ++i) {
    slots_[i].snapshot = snapshot[i];
    low = std::min(low, snapshot[i]);
  }
  // Everything at or below the oldest snapshot is in the records already read.
  max_cursor_ = replay_upto_ = low;
}

std::int64_t delivery_tracker::resume_cursor() const noexcept {
  if (!hole_since_) return max_cursor_;
  std::int64_t at = max_cursor_;
  for (const auto& s : slots_)
    if (s.own.has_hole()) at = std::min(at, s.own.contiguous() == 0 ? s.snapshot : s.own.contiguous_cursor());
  return at;
}

void delivery_tracker::on_connect() noexcept {
  conn_after_ = resume_cursor();
  replay_upto_ = max_cursor_;
  conn_last_ = -1;
}

void delivery_tracker::update_holes(std::int64_t now_us) noexcept {
  bool hole = false;
  for (const auto& s : slots_) hole = hole || s.own.has_hole();
  if (hole && !hole_since_) {
    hole_since_ = now_us;
    gap_counted_ = false;
  } else if (!hole) {
    hole_since_.reset();
  }
}

delivery_tracker::result delivery_tracker::on_frame(std::size_t slot, std::int64_t cursor, std::int64_t own_seq,
                                                    std::int64_t now_us) {
  result r;
  if (conn_last_ >= 0 && cursor < conn_last_) r.out_of_order = true;
  if (cursor <= conn_after_) r.backwards = true;
  conn_last_ = std::max(conn_last_, cursor);
  slot_state& s = slots_.at(slot);
  if (cursor <= s.snapshot) {
    r.v = verdict::stale;
    return r;
  }
  const bool overlap = cursor <= replay_upto_;
  if (own_seq > 0) {
    const bool added = s.own.insert(own_seq, cursor);
    r.v = added ? (overlap ? verdict::repaired : verdict::fresh) : (overlap ? verdict::replayed : verdict::duplicate);
    update_holes(now_us);
  } else {
    // Another client's change: it cannot be told apart from a replayed one below replay_upto.
    r.v = overlap ? verdict::replayed : verdict::fresh;
  }
  max_cursor_ = std::max(max_cursor_, cursor);
  return r;
}

bool delivery_tracker::count_gap() noexcept {
  if (!hole_since_ || gap_counted_) return false;
  gap_counted_ = true;
  return true;
}

std::size_t delivery_tracker::memory() const noexcept {
  std::size_t n = sizeof(*this) + slots_.capacity() * sizeof(slot_state);
  for (const auto& s : slots_) n += s.own.memory();
  return n;
}

}  // namespace syncstorm::loadgen::detail
