#include "core/args.h"

#include <gtest/gtest.h>

namespace bgm {
namespace {

ArgsSchema Schema() {
  ArgsSchema s;
  s.Int("batchSize", 1, 100000)
      .OneOf("cursorColumn", {"created_at", "timestamp"})
      .Timestamp("maxDate")
      .Number("targetBatchSeconds", 0.1, 60);
  return s;
}

TEST(ArgsSchemaTest, AcceptsKnownKeysWithinRange) {
  EXPECT_TRUE(Schema().Validate(nlohmann::json::object()).ok());
  EXPECT_TRUE(Schema()
                  .Validate({{"batchSize", 2500},
                             {"cursorColumn", "timestamp"},
                             {"maxDate", "2024-05-03T10:00:00Z"},
                             {"targetBatchSeconds", 2.5}})
                  .ok());
}

TEST(ArgsSchemaTest, NegativeBatchSizeNamesKeyAndValue) {
  Status s = Schema().Validate({{"batchSize", -1}});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "batchSize must be an integer in [1, 100000], got -1");
}

TEST(ArgsSchemaTest, StringBatchSizeIsRejected) {
  Status s = Schema().Validate({{"batchSize", "abc"}});
  EXPECT_EQ(s.message(), "batchSize must be an integer in [1, 100000], got \"abc\"");
}

TEST(ArgsSchemaTest, FractionalBatchSizeIsRejected) {
  EXPECT_EQ(Schema().Validate({{"batchSize", 2.5}}).message(),
            "batchSize must be an integer in [1, 100000], got 2.5");
}

TEST(ArgsSchemaTest, UnknownKeyListsTheAcceptedOnes) {
  Status s = Schema().Validate({{"batchsize", 10}});
  EXPECT_EQ(s.message(),
            "unknown arg 'batchsize' (value 10); accepted args: batchSize, cursorColumn, maxDate, "
            "targetBatchSeconds");
}

TEST(ArgsSchemaTest, NonObjectArgsAreRejected) {
  EXPECT_EQ(Schema().Validate(nlohmann::json::array({1})).message(),
            "args must be a JSON object such as {\"batchSize\": 2500}, got [1]");
}

TEST(ArgsSchemaTest, CursorColumnOutsideTheWhitelist) {
  EXPECT_EQ(Schema().Validate({{"cursorColumn", "id; DROP TABLE traces"}}).message(),
            "cursorColumn must be one of created_at, timestamp, got \"id; DROP TABLE traces\"");
}

TEST(ArgsSchemaTest, MalformedTimestamp) {
  EXPECT_EQ(Schema().Validate({{"maxDate", "yesterday"}}).message(),
            "maxDate must be a date or time that exists, like \"2024-05-03\" or "
            "\"2024-05-03T10:00:00Z\", got \"yesterday\"");
  EXPECT_EQ(Schema().Validate({{"maxDate", 20240503}}).message(),
            "maxDate must be a date or time that exists, like \"2024-05-03\" or "
            "\"2024-05-03T10:00:00Z\", got 20240503");
  EXPECT_TRUE(Schema().Validate({{"maxDate", "2024-05-03"}}).ok());
}

// The instant a Timestamp arg names, whatever its form: an offset counts, no zone is UTC.
TEST(ArgsHelpersTest, TimestampArgIsTheInstant) {
  const nlohmann::json args = {{"a", "2024-05-03T10:00:00+05:00"},
                               {"b", "2024-05-03 05:00"},
                               {"c", "2024-05-03"},
                               {"d", "2024-02-30"}};
  EXPECT_EQ(TimestampArg(args, "a")->value(), 1714712400000);
  EXPECT_EQ(TimestampArg(args, "b")->value(), 1714712400000);
  EXPECT_EQ(TimestampArg(args, "c")->value(), 1714694400000);
  EXPECT_FALSE(TimestampArg(args, "missing")->has_value());
  EXPECT_EQ(TimestampArg(args, "d").status().message(),
            "d must be a date or time that exists, like \"2024-05-03\" or "
            "\"2024-05-03T10:00:00Z\", got \"2024-02-30\"");
}

// Regression: "2024-02-30" matched the timestamp pattern and was saved; the copy then failed on
// a Postgres error that did not name the arg.
TEST(ArgsSchemaTest, TimestampsMustExistOnTheCalendar) {
  for (const char* bad : {"2024-02-30", "2023-02-29", "2024-13-01", "2024-00-10", "0000-01-01",
                          "2024-04-31", "2024-05-03T24:00:00Z", "2024-05-03 10:60",
                          "2024-05-03T10:00:61", "2024-05-03T10:00:00+99:00"}) {
    EXPECT_EQ(Schema().Validate({{"maxDate", bad}}).message(),
              std::string("maxDate must be a date or time that exists, like \"2024-05-03\" or "
                          "\"2024-05-03T10:00:00Z\", got \"") +
                  bad + "\"")
        << bad;
  }
  for (const char* good : {"2024-02-29", "2000-02-29", "2024-12-31T23:59:59.999999Z",
                           "2024-05-03 00:00", "2024-05-03T10:00:00+05:30"}) {
    EXPECT_TRUE(Schema().Validate({{"maxDate", good}}).ok()) << good;
  }
}

TEST(ArgsSchemaTest, NumberRangesAreShownPlainly) {
  EXPECT_EQ(Schema().Validate({{"targetBatchSeconds", 0}}).message(),
            "targetBatchSeconds must be a number in [0.1, 60.0], got 0");
}

// Regression: the whole bad value went into the message (and so into failed_reason, logs and
// HTTP responses), however large.
TEST(ArgsSchemaTest, HugeValuesAreCutInTheMessage) {
  EXPECT_EQ(Schema().Validate({{"batchSize", std::string(10000, 'x')}}).message(),
            "batchSize must be an integer in [1, 100000], got \"" + std::string(199, 'x') +
                "... (10002 bytes)");
  EXPECT_EQ(Schema().Validate({{std::string(300, 'k'), 1}}).message(),
            "unknown arg '" + std::string(100, 'k') +
                "... (300 bytes)' (value 1); accepted args: batchSize, cursorColumn, maxDate, "
                "targetBatchSeconds");
}

TEST(ArgsHelpersTest, JsonExcerptCutsAtACharacterBoundary) {
  // "é" is two bytes; a cut inside it backs up to the character before.
  EXPECT_EQ(JsonExcerpt(nlohmann::json(std::string(3, 'a') + "\xc3\xa9\xc3\xa9"), 5),
            "\"aaa... (9 bytes)");
  EXPECT_EQ(JsonExcerpt(nlohmann::json::array({1, 2})), "[1,2]");
  EXPECT_EQ(TextExcerpt("abcdef", 3), "abc... (6 bytes)");
}

TEST(ArgsHelpersTest, ReadValuesWithFallbacks) {
  const nlohmann::json args = {{"batchSize", 7}, {"cursorColumn", "timestamp"}};
  EXPECT_EQ(IntArg(args, "batchSize", 1000), 7);
  EXPECT_EQ(IntArg(args, "missing", 1000), 1000);
  EXPECT_EQ(StringArg(args, "cursorColumn", "created_at"), "timestamp");
  EXPECT_EQ(StringArg(args, "other", "created_at"), "created_at");
}

}  // namespace
}  // namespace bgm
