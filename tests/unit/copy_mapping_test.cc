#include <gtest/gtest.h>

#include "clickhouse/dialect.h"
#include "migrations/langfuse_copies.h"
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
  EXPECT_EQ(Flatten(R"({"b": "two", "a": 1, "c": {"x": [1, 2]}, "d": null, "e": true})"),
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
  EXPECT_TRUE(CopyArgsSchema(ObservationsMapping()).Validate({{"cursorColumn", "start_time"}}).ok());
  EXPECT_EQ(traces.Validate({{"batchSize", 600000}}).message(),
            "batchSize must be an integer in [1, 500000], got 600000");
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
