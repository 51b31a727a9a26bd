// ClickHouse error parsing and classification. The 18.16 bodies are verbatim from the Debian
// server (scripts/services.sh); the newer ones from ClickHouse's documentation and issues.
#include "clickhouse/clickhouse_error.h"

#include <gtest/gtest.h>

#include <string>

namespace bgm {
namespace {

using namespace std::string_literals;

constexpr std::string_view kSyntax1816 =
    "Code: 62, e.displayText() = DB::Exception: Syntax error: failed at position 1: SELEC 1. "
    "Expected one of: SYSTEM query, SELECT subquery, DESC, KILL QUERY, e.what() = "
    "DB::Exception\n";
constexpr std::string_view kUnknownTable1816 =
    "Code: 60, e.displayText() = DB::Exception: Table default.nope doesn't exist., e.what() = "
    "DB::Exception\n";
constexpr std::string_view kWrongPassword1816 =
    "Code: 193, e.displayText() = DB::Exception: Wrong password for user default, e.what() = "
    "DB::Exception\n";
constexpr std::string_view kParse1816 =
    "Code: 27, e.displayText() = DB::Exception: Cannot parse input: expected \\n before: abc: "
    "(at row 1)\n\nRow 1:\nColumn 0,   name: d, type: Decimal(18, 4), parsed text: <EMPTY>\n"
    "ERROR: garbage after Decimal(18, 4): \"abc\"\n\n, e.what() = DB::Exception\n";
constexpr std::string_view kShortRowBinary1816 =
    "Code: 33, e.displayText() = DB::Exception: Cannot read all data. Bytes read: 3. Bytes "
    "expected: 8.: (at row 1)\n, e.what() = DB::Exception\n";
constexpr std::string_view kUnknownTable21 =
    "Code: 60, e.displayText() = DB::Exception: Table default.wtf doesn't exist (version "
    "21.3.1.1)\n";
constexpr std::string_view kUnknownTable23 =
    "Code: 60. DB::Exception: Table default.wtf does not exist. (UNKNOWN_TABLE) (version "
    "23.8.1.94 (official build))\n";

TEST(ParseClickHouseErrorBodyTest, Server1816Bodies) {
  std::optional<ClickHouseServerError> e = ParseClickHouseErrorBody(kSyntax1816);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 62);
  EXPECT_EQ(e->message,
            "Syntax error: failed at position 1: SELEC 1. Expected one of: SYSTEM query, SELECT "
            "subquery, DESC, KILL QUERY");

  e = ParseClickHouseErrorBody(kUnknownTable1816);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 60);
  EXPECT_EQ(e->message, "Table default.nope doesn't exist.");

  e = ParseClickHouseErrorBody(kWrongPassword1816);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 193);
  EXPECT_EQ(e->message, "Wrong password for user default");
}

TEST(ParseClickHouseErrorBodyTest, MultiLineMessageKeepsTheFirstLine) {
  std::optional<ClickHouseServerError> e = ParseClickHouseErrorBody(kParse1816);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 27);
  EXPECT_EQ(e->message, "Cannot parse input: expected \\n before: abc: (at row 1)");

  e = ParseClickHouseErrorBody(kShortRowBinary1816);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 33);
  EXPECT_EQ(e->message, "Cannot read all data. Bytes read: 3. Bytes expected: 8.: (at row 1)");
}

TEST(ParseClickHouseErrorBodyTest, NewerServerBodies) {
  std::optional<ClickHouseServerError> e = ParseClickHouseErrorBody(kUnknownTable21);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 60);
  EXPECT_EQ(e->message, "Table default.wtf doesn't exist");

  e = ParseClickHouseErrorBody(kUnknownTable23);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 60);
  EXPECT_EQ(e->message, "Table default.wtf does not exist. (UNKNOWN_TABLE)");

  // Stack traces follow on later lines and are dropped.
  e = ParseClickHouseErrorBody(
      "Code: 241. DB::Exception: Memory limit (for query) exceeded: would use 9.32 GiB. "
      "(MEMORY_LIMIT_EXCEEDED) (version 24.3.1)\n0. DB::Exception::Exception() @ 0x1\n"
      "1. DB::MemoryTracker::alloc() @ 0x2\n");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 241);
  EXPECT_EQ(e->message,
            "Memory limit (for query) exceeded: would use 9.32 GiB. (MEMORY_LIMIT_EXCEEDED)");
}

TEST(ParseClickHouseErrorBodyTest, NotAnErrorBody) {
  EXPECT_FALSE(ParseClickHouseErrorBody("").has_value());
  EXPECT_FALSE(ParseClickHouseErrorBody("Ok.\n").has_value());
  EXPECT_FALSE(ParseClickHouseErrorBody("<html>502 Bad Gateway</html>").has_value());
  EXPECT_FALSE(ParseClickHouseErrorBody("Code: x, e.displayText() = y").has_value());
  EXPECT_FALSE(ParseClickHouseErrorBody("Code: 12").has_value());
}

TEST(ParseClickHouseErrorBodyTest, HugeMessageIsBounded) {
  std::string body = "Code: 62, e.displayText() = DB::Exception: " + std::string(100000, 'x');
  std::optional<ClickHouseServerError> e = ParseClickHouseErrorBody(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_LE(e->message.size(), 2003u);
}

TEST(FindTrailingClickHouseExceptionTest, Server1816AppendsAfterRows) {
  // Observed: SELECT throwIf(number = 3000000) FROM system.numbers LIMIT 5000000 on 18.16
  // answers 200, streams rows, then appends the exception.
  std::string body;
  for (int i = 0; i < 20000; ++i) body += "0\n";
  body +=
      "Code: 395, e.displayText() = DB::Exception: Value passed to 'throwIf' function is non "
      "zero, e.what() = DB::Exception\n";
  std::optional<ClickHouseServerError> e = FindTrailingClickHouseException(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 395);
  EXPECT_EQ(e->message, "Value passed to 'throwIf' function is non zero");
}

TEST(FindTrailingClickHouseExceptionTest, MultiLineExceptionAtTheEnd) {
  std::string body = "1\tfoo\n2\tbar\n" + std::string(kParse1816);
  std::optional<ClickHouseServerError> e = FindTrailingClickHouseException(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 27);
}

TEST(FindTrailingClickHouseExceptionTest, NewerServerFormat) {
  std::string body =
      "{\"n\":1}\n{\"n\":2}\nCode: 159. DB::Exception: Timeout exceeded: elapsed 0.1 seconds, "
      "maximum: 0.1. (TIMEOUT_EXCEEDED) (version 22.9.1.1)\n";
  std::optional<ClickHouseServerError> e = FindTrailingClickHouseException(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 159);
  EXPECT_EQ(e->message, "Timeout exceeded: elapsed 0.1 seconds, maximum: 0.1. (TIMEOUT_EXCEEDED)");
}

TEST(FindTrailingClickHouseExceptionTest, TaggedFrameOf25_11) {
  const std::string message =
      "Code: 395. DB::Exception: Value passed to 'throwIf' function is non-zero. "
      "(FUNCTION_THROW_IF_VALUE_IS_NON_ZERO) (version 25.11.1.1)";
  const std::string body = "0\n0\n0\n__exception__PU1FNUFH98\n" + message + "\n" +
                           std::to_string(message.size()) + " PU1FNUFH98__exception__\n";
  // With the header...
  std::optional<ClickHouseServerError> e = FindTrailingClickHouseException(body, "PU1FNUFH98");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 395);
  EXPECT_EQ(
      e->message,
      "Value passed to 'throwIf' function is non-zero. (FUNCTION_THROW_IF_VALUE_IS_NON_ZERO)");
  // ...and without it (a proxy dropped the header).
  e = FindTrailingClickHouseException(body);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, 395);
}

TEST(FindTrailingClickHouseExceptionTest, OrdinaryBodiesAreNotErrors) {
  EXPECT_FALSE(FindTrailingClickHouseException("").has_value());
  EXPECT_FALSE(FindTrailingClickHouseException("18.16.1\n").has_value());
  EXPECT_FALSE(FindTrailingClickHouseException("1\tCode: 60, e.displayText() = DB::Exception: "
                                               "x\n")
                   .has_value());  // not at the start of a line
  EXPECT_FALSE(FindTrailingClickHouseException("Code: 60 is my favourite\n").has_value());
  EXPECT_FALSE(FindTrailingClickHouseException("Code: 7, no exception here\n").has_value());
  EXPECT_FALSE(
      FindTrailingClickHouseException("{\"error\":\"Code: 60. DB::Exception: x\"}\n").has_value());
}

TEST(FindTrailingClickHouseExceptionTest, OnlyTheTailIsExamined) {
  std::string body = std::string(kUnknownTable1816) + std::string(200000, 'x') + "\n";
  EXPECT_FALSE(FindTrailingClickHouseException(body).has_value());
}

TEST(StatusCodeForClickHouseErrorTest, RetriableCodes) {
  for (int code : {241, 252, 202, 173, 243}) {
    EXPECT_EQ(StatusCodeForClickHouseError(code), StatusCode::kResourceExhausted) << code;
  }
  for (int code : {159, 209}) {
    EXPECT_EQ(StatusCodeForClickHouseError(code), StatusCode::kDeadlineExceeded) << code;
  }
  for (int code : {210, 198, 279, 242, 225, 999, 319}) {
    EXPECT_EQ(StatusCodeForClickHouseError(code), StatusCode::kUnavailable) << code;
  }
  for (int code : {241, 252, 159, 209, 210}) {
    EXPECT_TRUE(IsRetriable(StatusCodeForClickHouseError(code))) << code;
  }
}

TEST(StatusCodeForClickHouseErrorTest, NonRetriableCodes) {
  for (int code : {62, 60, 81, 16, 47, 6, 27, 33, 38, 41, 53, 69, 70, 117, 115, 57, 82, 395}) {
    EXPECT_EQ(StatusCodeForClickHouseError(code), StatusCode::kInvalidArgument) << code;
    EXPECT_FALSE(IsRetriable(StatusCodeForClickHouseError(code))) << code;
  }
  for (int code : {516, 192, 193, 194, 195, 497, 164}) {
    EXPECT_EQ(StatusCodeForClickHouseError(code), StatusCode::kFailedPrecondition) << code;
    EXPECT_FALSE(IsRetriable(StatusCodeForClickHouseError(code))) << code;
  }
  EXPECT_EQ(StatusCodeForClickHouseError(394), StatusCode::kCancelled);
  EXPECT_EQ(StatusCodeForClickHouseError(49), StatusCode::kInternal);  // LOGICAL_ERROR
  EXPECT_EQ(StatusCodeForClickHouseError(123456), StatusCode::kInternal);
}

TEST(ClickHouseErrorStatusTest, MessageCarriesTheCodeThroughContext) {
  Status s = ClickHouseErrorStatus({60, "Table default.nope doesn't exist."});
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "ClickHouse error 60: Table default.nope doesn't exist.");
  EXPECT_EQ(ClickHouseErrorCode(s), 60);
  EXPECT_EQ(ClickHouseErrorCode(s.WithContext("insert into traces")), 60);
  EXPECT_EQ(ClickHouseErrorCode(Status::Ok()), std::nullopt);
  EXPECT_EQ(ClickHouseErrorCode(Unavailable("could not connect")), std::nullopt);
  EXPECT_EQ(ClickHouseErrorCode(Internal("ClickHouse error x: y")), std::nullopt);
}

TEST(ClickHouseErrorStatusTest, AuthenticationErrorsSayWhatToCheck) {
  Status s = ClickHouseErrorStatus({193, "Wrong password for user default"});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "ClickHouse error 193: Wrong password for user default; check CLICKHOUSE_USER and "
            "CLICKHOUSE_PASSWORD");
  EXPECT_EQ(ClickHouseErrorCode(s), 193);
}

TEST(StatusFromClickHouseResponseTest, Server1816StatusesAndBodies) {
  Status s = StatusFromClickHouseResponse(400, std::nullopt, "", kSyntax1816, true);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ClickHouseErrorCode(s), 62);
  s = StatusFromClickHouseResponse(404, std::nullopt, "", kUnknownTable1816, true);
  EXPECT_EQ(ClickHouseErrorCode(s), 60);
  s = StatusFromClickHouseResponse(401, std::nullopt, "", kWrongPassword1816, true);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(ClickHouseErrorCode(s), 193);
  s = StatusFromClickHouseResponse(500, std::nullopt, "",
                                   "Code: 252, e.displayText() = DB::Exception: Too many parts "
                                   "(300). Merges are processing significantly slower than "
                                   "inserts., e.what() = DB::Exception\n",
                                   false);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ClickHouseErrorCode(s), 252);
}

TEST(StatusFromClickHouseResponseTest, SuccessUnlessTheTailHoldsAnException) {
  EXPECT_TRUE(StatusFromClickHouseResponse(200, std::nullopt, "", "1\n2\n", true).ok());
  EXPECT_TRUE(StatusFromClickHouseResponse(200, std::nullopt, "", "", true).ok());
  const std::string failed =
      "0\n0\nCode: 241, e.displayText() = DB::Exception: Memory limit (for query) exceeded, "
      "e.what() = DB::Exception\n";
  Status s = StatusFromClickHouseResponse(200, std::nullopt, "", failed, true);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(ClickHouseErrorCode(s), 241);
  // Without the tail check (the caller knows the body is data), a 200 is success.
  EXPECT_TRUE(StatusFromClickHouseResponse(200, std::nullopt, "", failed, false).ok());
}

TEST(StatusFromClickHouseResponseTest, HeaderCodeWinsAndCountsEvenWith200) {
  Status s = StatusFromClickHouseResponse(404, 60, "", kUnknownTable23, true);
  EXPECT_EQ(ClickHouseErrorCode(s), 60);
  EXPECT_EQ(s.message(), "ClickHouse error 60: Table default.wtf does not exist. (UNKNOWN_TABLE)");
  // send_progress_in_http_headers: the header arrives with a 200.
  s = StatusFromClickHouseResponse(
      200, 159, "",
      "Code: 159. DB::Exception: Timeout exceeded. (TIMEOUT_EXCEEDED) (version 24.1)\n", false);
  EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded);
  EXPECT_EQ(ClickHouseErrorCode(s), 159);
  // A header code with an unparseable body still yields the code.
  s = StatusFromClickHouseResponse(500, 241, "", "something else", false);
  EXPECT_EQ(ClickHouseErrorCode(s), 241);
  EXPECT_EQ(s.code(), StatusCode::kResourceExhausted);
}

TEST(StatusFromClickHouseResponseTest, HttpStatusWithoutAClickHouseCode) {
  Status s = StatusFromClickHouseResponse(502, std::nullopt, "", "<html>Bad Gateway</html>", true);
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "ClickHouse answered HTTP 502: <html>Bad Gateway</html>");
  EXPECT_EQ(ClickHouseErrorCode(s), std::nullopt);
  EXPECT_EQ(StatusFromClickHouseResponse(500, std::nullopt, "", "", true).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromClickHouseResponse(503, std::nullopt, "", "", true).code(),
            StatusCode::kUnavailable);
  EXPECT_EQ(StatusFromClickHouseResponse(408, std::nullopt, "", "", true).code(),
            StatusCode::kDeadlineExceeded);
  EXPECT_EQ(StatusFromClickHouseResponse(429, std::nullopt, "", "", true).code(),
            StatusCode::kResourceExhausted);
  EXPECT_EQ(StatusFromClickHouseResponse(403, std::nullopt, "", "", true).code(),
            StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusFromClickHouseResponse(404, std::nullopt, "", "not found", true).code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bgm
