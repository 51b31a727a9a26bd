#include "common/timestamp.h"

#include <gtest/gtest.h>

namespace bgm {
namespace {

constexpr int64_t k20240503T10 = 1714730400000;  // 2024-05-03T10:00:00Z

int64_t Parse(std::string_view text) {
  Result<int64_t> r = ParseTimestampMillis(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.status().ToString();
  return r.ok() ? *r : INT64_MIN;
}

TEST(TimestampTest, EveryAcceptedFormWithoutZoneIsUtc) {
  EXPECT_EQ(Parse("2024-05-03"), k20240503T10 - 10 * 3'600'000);
  EXPECT_EQ(Parse("2024-05-03 10:00"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03T10:00"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03 10:00:00"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03T10:00:00"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03 10:00:00.1"), k20240503T10 + 100);
  EXPECT_EQ(Parse("2024-05-03 10:00:00.12"), k20240503T10 + 120);
  EXPECT_EQ(Parse("2024-05-03 10:00:00.123"), k20240503T10 + 123);
  EXPECT_EQ(Parse("2024-05-03 10:00:00.123999"), k20240503T10 + 123) << "cut, not rounded";
  EXPECT_EQ(Parse("2024-05-03T10:00:00.123456789Z"), k20240503T10 + 123);
}

TEST(TimestampTest, ZonesAndOffsets) {
  EXPECT_EQ(Parse("2024-05-03T10:00:00Z"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03T10:00Z"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03 10:00:00+00"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03T10:00:00+00:00"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03 12:00:00+02"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03T15:00:00+05:00"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03T10:00:00+05:00"), k20240503T10 - 5 * 3'600'000);
  EXPECT_EQ(Parse("2024-05-03 15:30:00.5+05:30"), k20240503T10 + 500);
  EXPECT_EQ(Parse("2024-05-03 02:00:00-0800"), k20240503T10);
  EXPECT_EQ(Parse("2024-05-03T02:00-08:00"), k20240503T10);
  EXPECT_EQ(Parse("1900-01-01 00:00:00+00:53:28"), -2208992008000);
  EXPECT_EQ(Parse("2024-05-03T00:30:00+15:59:59"),
            k20240503T10 - 9 * 3'600'000 - 1'800'000 - (15 * 3600 + 59 * 60 + 59) * 1000LL);
  // An offset can move the instant across a day, a month and a year.
  EXPECT_EQ(Parse("2024-01-01T01:00:00+02:00"), Parse("2023-12-31T23:00:00Z"));
}

// PgControlStore writes events' times as ISO UTC with milliseconds; Postgres writes
// timestamp(3) text in DateStyle ISO with up to 6 fractional digits.
TEST(TimestampTest, ReadsWhatTheControlStoreAndPostgresWrite) {
  EXPECT_EQ(Parse("2024-10-24T17:30:00.123Z"), 1729791000123);
  EXPECT_EQ(FormatIsoTimestamp(1729791000123), "2024-10-24T17:30:00.123Z");
  EXPECT_EQ(Parse("2024-10-24T17:30:00.123456Z"), 1729791000123);
  EXPECT_EQ(Parse("2024-02-29T00:00:00.5+00:00"), 1709164800500);
  EXPECT_EQ(Parse("2024-05-02 12:00:00"), Parse("2024-05-02T12:00:00.000Z"));
  EXPECT_EQ(Parse("2024-05-03 10:00:00.123+00"), k20240503T10 + 123);
}

TEST(TimestampTest, LeapDaysAndTheEdgesOfTheRange) {
  EXPECT_EQ(Parse("2024-02-29"), 1709164800000);
  EXPECT_EQ(Parse("2000-02-29 00:00:00"), 951782400000);
  EXPECT_EQ(Parse("1970-01-01 00:00:00"), 0);
  EXPECT_EQ(Parse("1969-12-31 23:59:59.999"), -1);
  EXPECT_EQ(Parse("0001-01-01 00:00:00"), -62135596800000);
  EXPECT_EQ(Parse("9999-12-31 23:59:59.999999"), 253402300799999);
  EXPECT_EQ(Parse("2024-12-31T23:59:59.999Z"), 1735689599999);
}

TEST(TimestampTest, OutOfCalendarDatesAndTimesAreRefused) {
  for (const char* bad :
       {"2023-02-29", "1900-02-29", "2100-02-29 00:00:00", "2024-02-30", "2024-04-31", "2024-13-01",
        "2024-00-10", "2024-05-00", "0000-01-01", "0000-01-01 00:00:00", "2024-05-03 24:00:00",
        "2024-05-03T10:60", "2024-05-03 10:00:60", "2024-05-03T10:00:00+16:00",
        "2024-05-03T10:00:00+05:60", "2024-05-03T10:00:00+99"}) {
    Result<int64_t> r = ParseTimestampMillis(bad);
    ASSERT_FALSE(r.ok()) << "accepted \"" << bad << "\" as " << *r;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(ParseTimestampMillis("2023-02-29").status().message(),
            "timestamp \"2023-02-29\" is not a date on the calendar; accepted forms: 2024-05-03, "
            "2024-05-03 10:00:00.123, 2024-05-03T10:00:00Z, 2024-05-03T10:00:00+05:00");
  const std::string hour24 = ParseTimestampMillis("2024-05-03 24:00").status().message();
  EXPECT_EQ(hour24.substr(0, hour24.find(';')),
            "timestamp \"2024-05-03 24:00\" is not a time of day");
}

TEST(TimestampTest, GarbageIsRefusedAndCutInTheMessage) {
  for (const char* bad : {"",
                          "yesterday",
                          "infinity",
                          "-infinity",
                          "1729791000123",
                          "24-05-03",
                          "2024/05/03",
                          "2024-5-3",
                          " 2024-05-03",
                          "2024-05-03 ",
                          "2024-05-03T",
                          "2024-05-03T10",
                          "2024-05-03 10:00:00.",
                          "2024-05-03 10:00:00.1234567890",
                          "2024-05-03 10:00:00 BC",
                          "2024-05-03 10:00:00Zjunk",
                          "2024-05-03 10:00:00+",
                          "2024-05-03 10:00:00+1",
                          "2024-05-03 10:00:00+05:",
                          "2024-05-03Z",
                          "2024-05-03+05:00",
                          "2024-05-03t10:00:00z",
                          "10000-01-01 00:00:00",
                          "2024-05-03 10:00:00 UTC"}) {
    Result<int64_t> r = ParseTimestampMillis(bad);
    ASSERT_FALSE(r.ok()) << "accepted \"" << bad << "\" as " << *r;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(r.status().message().rfind("timestamp \"", 0), 0u) << r.status().message();
  }
  const std::string huge(10000, '9');
  const std::string cut = ParseTimestampMillis(huge).status().message();
  EXPECT_EQ(cut.substr(0, cut.find(';')),
            "timestamp \"" + std::string(64, '9') + "...\" does not start with a date YYYY-MM-DD");
}

TEST(TimestampTest, FormatsIsoAndPostgresTextThatParseBack) {
  EXPECT_EQ(FormatIsoTimestamp(k20240503T10 + 123), "2024-05-03T10:00:00.123Z");
  EXPECT_EQ(FormatIsoTimestamp(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTimestamp(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatPostgresTimestamp(1709164800000 + 86'399'999), "2024-02-29 23:59:59.999");
  EXPECT_EQ(FormatPostgresTimestamp(-62135596800000), "0001-01-01 00:00:00.000");
  EXPECT_EQ(FormatPostgresTimestamp(253402300799999), "9999-12-31 23:59:59.999");
  std::string out = "x";
  AppendPostgresTimestamp(out, k20240503T10);
  EXPECT_EQ(out, "x2024-05-03 10:00:00.000");
  for (int64_t ms : {int64_t{0}, int64_t{-1}, k20240503T10 + 7, int64_t{-2208992008000},
                     int64_t{951782400000} - 1, int64_t{253402300799999}}) {
    EXPECT_EQ(Parse(FormatIsoTimestamp(ms)), ms) << ms;
    EXPECT_EQ(Parse(FormatPostgresTimestamp(ms)), ms) << ms;
  }
}

}  // namespace
}  // namespace bgm
