// The terminal journal: records written and replayed, acks/rebases/rejects applied, a flipped
// byte caught by the CRC, the good prefix kept, every fsync policy replayable, rewrite.
#include "loadgen/journal.hpp"
#include "tests/support/test_util.hpp"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

using namespace syncstorm::loadgen;
namespace t = syncstorm::test;

namespace {

sync_op make_op(int seq, op_kind k = op_kind::append) {
  sync_op op;
  op.id = "run-s0-t0-" + std::to_string(seq);
  op.stream = "store-0";
  op.seq = seq;
  op.t_us = 1000 * seq;
  op.kind = k;
  if (k == op_kind::add) {
    op.key = "c1";
    op.delta = -2;
  }
  if (k == op_kind::set) {
    op.key = "v0";
    op.base_version = 3;
    op.value = {{"by", "s0-t0"}, {"seq", seq}};
  }
  return op;
}

}  // namespace

TEST(journal, crc32_matches_the_ieee_check_value) { EXPECT_EQ(crc32("123456789", 9), 0xCBF43926u); }

TEST(journal, replays_pending_ops_with_acks_rebases_and_rejects) {
  t::temp_dir d;
  const auto path = d.path() / "j" / "t0.journal";
  {
    journal j(path, fsync_policy::batch);
    EXPECT_TRUE(j.append_op(make_op(1)));
    EXPECT_TRUE(j.append_op(make_op(2, op_kind::add)));
    EXPECT_TRUE(j.append_op(make_op(3, op_kind::set)));
    EXPECT_TRUE(j.append_op(make_op(4, op_kind::set)));
    EXPECT_TRUE(j.dirty());
    EXPECT_TRUE(j.sync());
    EXPECT_FALSE(j.dirty());
    EXPECT_TRUE(j.append_acks({"run-s0-t0-1"}));
    EXPECT_TRUE(j.append_rebase("run-s0-t0-3", 9));
    EXPECT_TRUE(j.append_rejects({"run-s0-t0-4"}));
    EXPECT_EQ(j.size(), std::filesystem::file_size(path));
  }
  auto r = journal::replay(path);
  EXPECT_FALSE(r.corrupt) << r.reason;
  EXPECT_EQ(r.records, 7u);
  EXPECT_EQ(r.ops, 4u);
  EXPECT_EQ(r.last_seq, 4);
  ASSERT_EQ(r.pending.size(), 2u);
  EXPECT_EQ(r.pending[0].id, "run-s0-t0-2");
  EXPECT_EQ(r.pending[0].kind, op_kind::add);
  EXPECT_EQ(r.pending[0].key, "c1");
  EXPECT_EQ(r.pending[0].delta, -2);
  EXPECT_EQ(r.pending[1].id, "run-s0-t0-3");
  EXPECT_EQ(r.pending[1].base_version, 9);  // the rebase
  EXPECT_EQ(r.pending[1].value["seq"], 3);
  EXPECT_EQ(r.acked, std::vector<std::string>{"run-s0-t0-1"});
  EXPECT_EQ(r.rejected, std::vector<std::string>{"run-s0-t0-4"});
  EXPECT_EQ(r.good_bytes, r.file_bytes);
}

TEST(journal, a_flipped_byte_fails_the_crc_and_the_good_prefix_is_kept) {
  t::temp_dir d;
  const auto path = d.path() / "t.journal";
  std::uint64_t after_two = 0;
  {
    journal j(path, fsync_policy::never);
    j.append_op(make_op(1));
    j.append_op(make_op(2));
    after_two = j.size();
    j.append_op(make_op(3));
    j.append_op(make_op(4));
  }
  // Flip one payload byte of the third record.
  const int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  char c = 0;
  ASSERT_EQ(::pread(fd, &c, 1, static_cast<off_t>(after_two + 12)), 1);
  c ^= 0x01;
  ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(after_two + 12)), 1);
  ::close(fd);
  auto r = journal::replay(path);
  EXPECT_TRUE(r.corrupt);
  EXPECT_NE(r.reason.find("CRC"), std::string::npos) << r.reason;
  EXPECT_EQ(r.good_bytes, after_two);
  ASSERT_EQ(r.pending.size(), 2u);
  EXPECT_EQ(r.pending[1].id, "run-s0-t0-2");
}

TEST(journal, a_truncated_tail_is_cut_at_the_last_good_record) {
  t::temp_dir d;
  const auto path = d.path() / "t.journal";
  std::uint64_t good = 0;
  {
    journal j(path, fsync_policy::always);
    j.append_op(make_op(1));
    good = j.size();
    j.append_op(make_op(2));
  }
  std::filesystem::resize_file(path, good + 5);  // a torn write
  auto r = journal::replay(path);
  EXPECT_TRUE(r.corrupt);
  EXPECT_EQ(r.good_bytes, good);
  ASSERT_EQ(r.pending.size(), 1u);
  // Rewriting from the good prefix gives a good journal that appends continue on.
  {
    journal j(path, fsync_policy::always);
    EXPECT_TRUE(j.rewrite(r.pending));
    EXPECT_TRUE(j.append_op(make_op(5)));
  }
  auto r2 = journal::replay(path);
  EXPECT_FALSE(r2.corrupt) << r2.reason;
  ASSERT_EQ(r2.pending.size(), 2u);
  EXPECT_EQ(r2.pending[1].seq, 5);
}

TEST(journal, every_fsync_policy_replays) {
  for (auto p : {fsync_policy::always, fsync_policy::batch, fsync_policy::never}) {
    t::temp_dir d;
    const auto path = d.path() / "t.journal";
    {
      journal j(path, p);
      for (int i = 1; i <= 50; ++i) ASSERT_TRUE(j.append_op(make_op(i, static_cast<op_kind>(i % 3))));
      j.sync();
      j.append_acks({"run-s0-t0-1", "run-s0-t0-2"});
    }
    auto r = journal::replay(path);
    EXPECT_FALSE(r.corrupt);
    EXPECT_EQ(r.pending.size(), 48u);
  }
}

TEST(journal, corrupt_file_flips_at_a_seeded_offset_and_replay_detects_it) {
  t::temp_dir d;
  const auto path = d.path() / "t.journal";
  {
    journal j(path, fsync_policy::never);
    for (int i = 1; i <= 20; ++i) j.append_op(make_op(i));
  }
  const std::string before = t::read_file(path);
  auto off = corrupt_file(path, 4, 1234);
  ASSERT_TRUE(off);
  EXPECT_EQ(corrupt_file(path.string() + ".missing", 4, 1), std::nullopt);
  const std::string after = t::read_file(path);
  ASSERT_EQ(after.size(), before.size());
  for (std::size_t i = 0; i < after.size(); ++i) {
    const bool flipped = i >= *off && i < *off + 4;
    EXPECT_EQ(after[i] != before[i], flipped) << i;
  }
  auto r = journal::replay(path);
  EXPECT_TRUE(r.corrupt);
  EXPECT_LE(r.good_bytes, *off);
  // Same seed, same offset.
  t::write_file(path, before);
  EXPECT_EQ(corrupt_file(path, 4, 1234), off);
}
