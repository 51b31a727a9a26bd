#include "common/status.h"

#include <gtest/gtest.h>

#include <string>

namespace bgm {
namespace {

Result<int> ForwardOkStatusByMistake() { return Status::Ok(); }

Status PropagateThroughResult() {
  Result<int> r = ForwardOkStatusByMistake();
  if (!r.ok()) return r.status();
  return Status::Ok();
}

// Regression: a Result built from an OK Status was caught only by assert, so in a Release build
// ok() was false while status() was OK and `return r.status()` reported success.
TEST(StatusTest, ResultFromOkStatusIsAnInternalErrorInEveryBuild) {
  Result<int> r = ForwardOkStatusByMistake();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInternal);
  EXPECT_EQ(r.status().message(),
            "internal error: a result was built from an OK status without a value");
  EXPECT_EQ(PropagateThroughResult().code(), StatusCode::kInternal);
}

TEST(StatusTest, ResultFromAnErrorKeepsIt) {
  Result<std::string> r = NotFound("no such migration");
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.status().ToString(), "NOT_FOUND: no such migration");
}

TEST(StatusTest, OnlyOutagesTimeoutsAndResourceLimitsAreRetriable) {
  for (StatusCode code :
       {StatusCode::kUnavailable, StatusCode::kDeadlineExceeded, StatusCode::kResourceExhausted}) {
    EXPECT_TRUE(IsRetriable(code)) << StatusCodeName(code);
  }
  for (StatusCode code : {StatusCode::kOk, StatusCode::kInvalidArgument, StatusCode::kNotFound,
                          StatusCode::kFailedPrecondition, StatusCode::kLeaseLost,
                          StatusCode::kCancelled, StatusCode::kInternal}) {
    EXPECT_FALSE(IsRetriable(code)) << StatusCodeName(code);
  }
}

}  // namespace
}  // namespace bgm
