// core/time_text.hpp: the one wall-clock formatter (events, report, ledger, syncd's log, run dirs).
#include "core/time_text.hpp"

#include <gtest/gtest.h>

#include <regex>

namespace {

using namespace std::chrono;
using syncstorm::utc_compact;
using syncstorm::utc_iso8601;

// 2026-12-07T09:11:04.123456Z
system_clock::time_point sample() { return system_clock::time_point(microseconds(1796634664123456LL)); }

TEST(time_text, iso8601_with_milliseconds_by_default) { EXPECT_EQ(utc_iso8601(sample()), "2026-12-07T09:11:04.123Z"); }

TEST(time_text, fraction_digits_are_truncated_never_rounded) {
  EXPECT_EQ(utc_iso8601(sample(), 0), "2026-12-07T09:11:04Z");
  EXPECT_EQ(utc_iso8601(sample(), 1), "2026-12-07T09:11:04.1Z");
  EXPECT_EQ(utc_iso8601(sample(), 6), "2026-12-07T09:11:04.123456Z");
  EXPECT_EQ(utc_iso8601(sample(), 9), "2026-12-07T09:11:04.123456Z");  // at most microseconds
  auto almost = system_clock::time_point(microseconds(1796634664999999LL));
  EXPECT_EQ(utc_iso8601(almost), "2026-12-07T09:11:04.999Z");
}

TEST(time_text, compact_form_for_names) {
  EXPECT_EQ(utc_compact(sample()), "20261207T091104Z");
  EXPECT_EQ(utc_compact(system_clock::time_point{}), "19700101T000000Z");
}

TEST(time_text, instants_before_the_epoch_count_forward_from_their_second) {
  auto t = system_clock::time_point(microseconds(-250000));  // 1969-12-31T23:59:59.750Z
  EXPECT_EQ(utc_iso8601(t), "1969-12-31T23:59:59.750Z");
  EXPECT_EQ(utc_compact(t), "19691231T235959Z");
}

TEST(time_text, now_has_the_documented_shape) {
  static const std::regex shape(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)");
  EXPECT_TRUE(std::regex_match(utc_iso8601(system_clock::now()), shape));
}

}  // namespace
