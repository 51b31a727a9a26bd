#include <gtest/gtest.h>

#include "clickhouse/dialect.h"
#include "common/timestamp.h"
#include "migrations/langfuse_copies.h"
#include "migrations/table_copy.h"
#include "migrations/verify.h"
#include "postgres/pg_text.h"

namespace bgm {
namespace {

using Pairs = std::vector<std::pair<std::string, std::string>>;

Pairs Flatten(std::optional<std::string_view> json) {
  Pairs out;
  Status s = FlattenMetadata(json, &out);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return out;
}

TEST(FlattenMetadataTest, ObjectValuesBecomeStringsNestedOnesCompactJson) {
  EXPECT_EQ(
      Flatten(R"({"b": "two", "a": 1, "c": {"x": [1, 2]}, "d": null, "e": true})"),
      (Pairs{{"a", "1"}, {"b", "two"}, {"c", R"({"x":[1,2]})"}, {"d", "null"}, {"e", "true"}}));
}

TEST(FlattenMetadataTest, NonObjectsAreWrappedUnderMetadata) {
  EXPECT_EQ(Flatten(R"("just text")"), (Pairs{{"metadata", "just text"}}));
  EXPECT_EQ(Flatten(R"([1, "a"])"), (Pairs{{"metadata", R"([1,"a"])"}}));
  EXPECT_EQ(Flatten("42.5"), (Pairs{{"metadata", "42.5"}}));
  EXPECT_EQ(Flatten(std::nullopt), Pairs{});
  EXPECT_EQ(Flatten("null"), Pairs{});
}

TEST(FlattenMetadataTest, UnicodeSurvivesAndGarbageIsAnError) {
  EXPECT_EQ(Flatten(R"({"名前": "🚀 ok"})"), (Pairs{{"名前", "🚀 ok"}}));
  Pairs out;
  EXPECT_EQ(FlattenMetadata("{oops", &out).code(), StatusCode::kInvalidArgument);
}

TEST(PgTextArrayTest, ParsesQuotingEscapesAndNulls) {
  std::vector<std::string> v;
  ASSERT_TRUE(ParsePgTextArray(R"({a,"b c","d\"e","f,g",NULL,"NULL",""})", &v).ok());
  EXPECT_EQ(v, (std::vector<std::string>{"a", "b c", "d\"e", "f,g", "", "NULL", ""}));
  ASSERT_TRUE(ParsePgTextArray("{}", &v).ok());
  EXPECT_TRUE(v.empty());
  EXPECT_EQ(ParsePgTextArray("a,b", &v).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParsePgTextArray(R"({"unterminated})", &v).code(), StatusCode::kInvalidArgument);
}

TEST(CopyMappingTest, InsertColumnsFollowTheServerVersion) {
  auto legacy = ClickHouseDialect::FromVersion("18.16.1", {});
  auto modern = ClickHouseDialect::FromVersion("24.8.1", {});
  const std::string old_cols = TracesMapping().insert_columns(*legacy);
  const std::string new_cols = TracesMapping().insert_columns(*modern);
  EXPECT_NE(old_cols.find("metadata.key, metadata.value"), std::string::npos);
  EXPECT_EQ(new_cols.find("metadata.key"), std::string::npos);
  EXPECT_NE(ObservationsMapping().insert_columns(*legacy).find("cost_details.value"),
            std::string::npos);
}

TEST(CopyMappingTest, CopyArgsAreValidatedWithTheTablesCursorColumns) {
  ArgsSchema traces = CopyArgsSchema(TracesMapping());
  EXPECT_TRUE(traces.Validate({{"cursorColumn", "timestamp"}, {"batchSize", 2500}}).ok());
  EXPECT_EQ(traces.Validate({{"cursorColumn", "start_time"}}).message(),
            "cursorColumn must be one of created_at, timestamp, got \"start_time\"");
  EXPECT_TRUE(
      CopyArgsSchema(ObservationsMapping()).Validate({{"cursorColumn", "start_time"}}).ok());
  EXPECT_EQ(traces.Validate({{"batchSize", 600000}}).message(),
            "batchSize must be an integer in [1, 500000], got 600000");
}

// Regression (issue 12): a timestamp outside the target type was clamped (1960 -> 1970-01-01
// in a DateTime, 2200 -> a wrapped UInt32) and the copy went on. Each bound is held exactly;
// one millisecond beyond it is refused, naming the column and the value, with nothing written.
TEST(WriteTimestampTest, RefusesWhatTheTargetTypeCannotHold) {
  struct Case {
    const char* version;
    int64_t min_ms, max_ms;
    std::string written_min, written_max;  // the RowBinary bytes of each bound
    const char* message;
  };
  const Case cases[] = {
      {"18.16.1", 0, 4'294'967'295'999, std::string(4, '\0'), std::string(4, '\xff'),
       "column created_at = \"x\" is outside what ClickHouse DateTime holds (1970-01-01 00:00:00 "
       "to 2106-02-07 06:28:15 UTC); correct or delete the row in Postgres, then retry"},
      {"24.8.1", -2'208'988'800'000, 10'413'791'999'999,
       std::string("\x00\xdc\x01\xae\xfd\xfd\xff\xff", 8),
       std::string("\xff\x77\x5f\xa6\x78\x09\x00\x00", 8),
       "column created_at = \"x\" is outside what ClickHouse DateTime64(3) holds (1900-01-01 "
       "00:00:00.000 to 2299-12-31 23:59:59.999 UTC); correct or delete the row in Postgres, then "
       "retry"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.version);
    const ClickHouseDialect d = *ClickHouseDialect::FromVersion(c.version, {});
    std::string out;
    RowBinaryWriter w(out);
    ASSERT_TRUE(WriteTimestamp(w, d, c.min_ms, "created_at", "x").ok());
    EXPECT_EQ(out, c.written_min);
    out.clear();
    ASSERT_TRUE(WriteTimestamp(w, d, c.max_ms, "created_at", "x").ok());
    EXPECT_EQ(out, c.written_max);
    out.clear();
    for (int64_t beyond : {c.min_ms - 1, c.max_ms + 1, int64_t{INT64_MIN}, int64_t{INT64_MAX}}) {
      Status s = WriteTimestamp(w, d, beyond, "created_at", "x");
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << beyond;
      EXPECT_EQ(s.message(), c.message);
      EXPECT_EQ(out, "") << "nothing written for " << beyond;
    }
  }
  // The ranges are the documented ones, as instants.
  EXPECT_EQ(kDateTimeRange.max_ms / 1000, int64_t{UINT32_MAX});
  EXPECT_EQ(FormatIsoTimestamp(kDateTimeRange.max_ms), "2106-02-07T06:28:15.999Z");
  EXPECT_EQ(FormatIsoTimestamp(kDateTime64_3Range.min_ms), "1900-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIsoTimestamp(kDateTime64_3Range.max_ms), "2299-12-31T23:59:59.999Z");
}

// Regression (issue 12): the bounds were compared as text, so a valid hour written in two
// forms ("...T10:00:00Z" vs "... 11:00:00": 'T' > ' ') was refused.
TEST(CopyArgsDateBoundsTest, MixedFormsOfAValidHourAreAccepted) {
  std::unique_ptr<BackgroundMigration> copy = NewTableCopy(TracesMapping());
  Status s =
      copy->Validate({{"minDate", "2024-05-03T10:00:00Z"}, {"maxDate", "2024-05-03 11:00:00"}});
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_TRUE(
      copy->Validate({{"minDate", "2024-05-03"}, {"maxDate", "2024-05-03T00:00:00.001Z"}}).ok());
  EXPECT_TRUE(
      copy->Validate({{"minDate", "2024-05-03T10:00:00+05:00"}, {"maxDate", "2024-05-03 06:00"}})
          .ok());
}

// Regression (issue 12): an inverted pair in mixed forms ("2024-05-03T12:00" sorts after
// "2024-05-03 11:00" only by instant, before it as text) was accepted and copied nothing.
TEST(CopyArgsDateBoundsTest, InvertedPairInMixedFormsIsRefusedWithAMessage) {
  std::unique_ptr<BackgroundMigration> copy = NewTableCopy(TracesMapping());
  Status s =
      copy->Validate({{"minDate", "2024-05-03 12:00:00"}, {"maxDate", "2024-05-03T11:00:00Z"}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "minDate must be before maxDate, got \"2024-05-03 12:00:00\" and "
            "\"2024-05-03T11:00:00Z\" (as UTC: 2024-05-03T12:00:00.000Z and "
            "2024-05-03T11:00:00.000Z)");
  // An offset counts: 12:00+05:00 is 07:00 UTC, after 06:00 UTC.
  EXPECT_EQ(
      copy->Validate({{"minDate", "2024-05-03T12:00:00+05:00"}, {"maxDate", "2024-05-03 06:00"}})
          .code(),
      StatusCode::kInvalidArgument);
  EXPECT_EQ(copy->Validate({{"minDate", "2024-05-03"}, {"maxDate", "2024-05-03T00:00:00Z"}}).code(),
            StatusCode::kInvalidArgument)
      << "equal instants are an empty window";
}

TEST(VerifyTest, IdHashIsFnv1a64) {
  EXPECT_EQ(IdHash(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(IdHash("a"), 0xaf63dc4c8601ec8cull);
  VerifyReport r;
  r.table = "traces";
  r.months = {{"2024-05", 3, 3, 7, 7}, {"2024-06", 2, 1, 5, 4}};
  r.source_rows = 5;
  r.target_rows = 4;
  EXPECT_FALSE(r.match());
  EXPECT_EQ(r.ToText(),
            "2024-06: source 2 rows, target 1 rows\n"
            "traces: DIFFERENT — source 5 rows, target 4 rows (FINAL), 2 months compared, 1 "
            "differ\n");
}

}  // namespace
}  // namespace bgm
