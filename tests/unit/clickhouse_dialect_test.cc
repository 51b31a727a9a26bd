#include "clickhouse/dialect.h"

#include <gtest/gtest.h>

#include "schema/clickhouse_schema.h"

namespace bgm {
namespace {

TEST(ClickHouseDialectTest, ParsesVersions) {
  EXPECT_EQ(ClickHouseDialect::FromVersion("18.16.1\n", {})->major(), 18);
  EXPECT_FALSE(ClickHouseDialect::FromVersion("18.16.1", {})->modern());
  EXPECT_TRUE(ClickHouseDialect::FromVersion("24.8.4.13", {})->modern());
  EXPECT_TRUE(ClickHouseDialect::FromVersion("26.7.1", {})->has_datetime64());
  EXPECT_EQ(ClickHouseDialect::FromVersion("banana", {}).status().message(),
            "cannot read the ClickHouse version from 'banana'");
}

TEST(ClickHouseDialectTest, LegacyServerGetsNearestEquivalents) {
  auto d = ClickHouseDialect::FromVersion("18.16.1", {});
  EXPECT_EQ(*d->Resolve("a {{DATETIME64}}, b {{MAP_STRING_STRING}}, c {{LC_STRING}}, "
                        "d {{BOOL}} {{CODEC_ZSTD}}, e {{MAP_STRING_DECIMAL}} "
                        "{{ON_CLUSTER}} {{REPLACING_MERGE_TREE:traces}}"),
            "a DateTime, b Nested(key String, value String), c String, d UInt8 , "
            "e Nested(key String, value Decimal64(12))  ReplacingMergeTree(event_ts)");
}

TEST(ClickHouseDialectTest, CurrentServerGetsLangfuseTypes) {
  auto d = ClickHouseDialect::FromVersion("24.8.4.13", {});
  EXPECT_EQ(*d->Resolve("a {{DATETIME64}}, b {{MAP_STRING_STRING}}, c {{LC_STRING}}, "
                        "d {{BOOL}} {{CODEC_ZSTD}}, {{REPLACING_MERGE_TREE:traces}}"),
            "a DateTime64(3), b Map(LowCardinality(String), String), c LowCardinality(String), "
            "d Bool CODEC(ZSTD(3)), ReplacingMergeTree(event_ts, is_deleted)");
}

TEST(ClickHouseDialectTest, ClusterGetsOnClusterAndReplicatedEngines) {
  auto d = ClickHouseDialect::FromVersion("24.8.4.13", {.enabled = true, .name = "prod"});
  EXPECT_EQ(*d->Resolve("CREATE TABLE t {{ON_CLUSTER}} ENGINE = {{REPLACING_MERGE_TREE:traces}}",
                        "langfuse"),
            "CREATE TABLE t ON CLUSTER prod ENGINE = ReplicatedReplacingMergeTree("
            "'/clickhouse/tables/{shard}/langfuse.traces', '{replica}', event_ts, is_deleted)");
}

TEST(ClickHouseDialectTest, UnknownPlaceholderIsNamed) {
  auto d = ClickHouseDialect::FromVersion("18.16.1", {});
  EXPECT_EQ(d->Resolve("x {{NOPE}}").status().message(), "unknown schema placeholder {{NOPE}}");
  EXPECT_EQ(d->Resolve("x {{NOPE").status().code(), StatusCode::kInvalidArgument);
}

TEST(SplitStatementsTest, SplitsAtLineEndingSemicolonsAndDropsComments) {
  EXPECT_EQ(SplitStatements("-- c\nCREATE TABLE a (x String);\n\nALTER TABLE a\n  ADD COLUMN y "
                            "String DEFAULT ';';\n"),
            (std::vector<std::string>{"CREATE TABLE a (x String)",
                                      "\nALTER TABLE a\n  ADD COLUMN y String DEFAULT ';'"}));
}

}  // namespace
}  // namespace bgm
