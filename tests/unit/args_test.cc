#include "core/args.h"

#include <gtest/gtest.h>

namespace bgm {
namespace {

ArgsSchema Schema() {
  ArgsSchema s;
  s.Int("batchSize", 1, 100000).OneOf("cursorColumn", {"created_at", "timestamp"})
      .Timestamp("maxDate").Number("targetBatchSeconds", 0.1, 60);
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
  EXPECT_EQ(Schema().Validate({{"maxDate", "yesterday"}}).code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(Schema().Validate({{"maxDate", "2024-05-03"}}).ok());
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
