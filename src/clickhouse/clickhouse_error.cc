#include "clickhouse/clickhouse_error.h"

#include <charconv>
#include <string>

namespace bgm {
namespace {

constexpr std::string_view kCodePrefix = "Code: ";
constexpr std::string_view kStatusPrefix = "ClickHouse error ";
constexpr std::string_view kFrame = "__exception__";
constexpr size_t kTailWindow = 64 * 1024;
constexpr size_t kMaxMessage = 2000;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimSpace(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view FirstLine(std::string_view s) {
  s = TrimSpace(s);
  return s.substr(0, s.find('\n'));
}

// Cuts `s` to at most kMaxMessage bytes without splitting a UTF-8 sequence.
std::string Bounded(std::string_view s) {
  if (s.size() <= kMaxMessage) return std::string(s);
  size_t n = kMaxMessage;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

// "Code: N" followed by ClickHouse's framing. On success sets `code` and `rest` (the text after
// the framing, up to the end of `s`).
bool MatchCodePrefix(std::string_view s, int* code, std::string_view* rest) {
  if (!s.starts_with(kCodePrefix)) return false;
  s.remove_prefix(kCodePrefix.size());
  size_t digits = 0;
  while (digits < s.size() && digits < 9 && s[digits] >= '0' && s[digits] <= '9') ++digits;
  if (digits == 0) return false;
  int value = 0;
  std::from_chars(s.data(), s.data() + digits, value);
  s.remove_prefix(digits);
  for (std::string_view sep : {", e.displayText() = ", ". ", ", "}) {
    if (s.starts_with(sep)) {
      s.remove_prefix(sep.size());
      *code = value;
      *rest = s;
      return true;
    }
  }
  return false;
}

std::string CleanMessage(std::string_view line) {
  line = TrimSpace(line);
  if (line.starts_with("DB::Exception: ")) line.remove_prefix(15);
  if (size_t what = line.find(", e.what() = "); what != std::string_view::npos) {
    line = line.substr(0, what);
  }
  if (line.ends_with(')')) {
    if (size_t v = line.rfind(" (version "); v != std::string_view::npos) line = line.substr(0, v);
  }
  return Bounded(TrimSpace(line));
}

// A line that starts an exception: "Code: N" + framing + an exception type on the same line.
bool LooksLikeExceptionLine(std::string_view s) {
  int code = 0;
  std::string_view rest;
  if (!MatchCodePrefix(s, &code, &rest)) return false;
  std::string_view line = rest.substr(0, rest.find('\n'));
  return line.find("Exception") != std::string_view::npos;
}

// Parses "__exception__TAG\n<message>\n<size> TAG__exception__" starting at `start`.
std::optional<ClickHouseServerError> ParseFramed(std::string_view body, size_t start) {
  std::string_view inner = body.substr(start);
  size_t nl = inner.find('\n');
  if (nl == std::string_view::npos) return std::nullopt;
  inner.remove_prefix(nl + 1);
  inner = TrimSpace(inner);
  // Drop the closing line "<size> TAG__exception__".
  size_t last_nl = inner.rfind('\n');
  inner = last_nl == std::string_view::npos ? std::string_view() : inner.substr(0, last_nl);
  if (std::optional<ClickHouseServerError> e = ParseClickHouseErrorBody(inner)) return e;
  return ClickHouseServerError{0, CleanMessage(FirstLine(inner))};
}

std::optional<ClickHouseServerError> FindFramed(std::string_view body,
                                                std::string_view exception_tag) {
  std::string tag(exception_tag);
  if (tag.empty()) {
    // No header: derive the tag from a closing line "<size> TAG__exception__".
    std::string_view trimmed = TrimSpace(body);
    if (!trimmed.ends_with(kFrame)) return std::nullopt;
    trimmed.remove_suffix(kFrame.size());
    size_t line_start = trimmed.rfind('\n');
    std::string_view last =
        trimmed.substr(line_start == std::string_view::npos ? 0 : line_start + 1);
    size_t space = last.rfind(' ');
    if (space == std::string_view::npos) return std::nullopt;
    tag = std::string(last.substr(space + 1));
    if (tag.empty()) return std::nullopt;
  }
  const std::string open = std::string(kFrame) + tag;
  size_t pos = body.rfind(open);
  if (pos == std::string_view::npos) return std::nullopt;
  return ParseFramed(body, pos);
}

}  // namespace

std::optional<ClickHouseServerError> ParseClickHouseErrorBody(std::string_view body) {
  body = TrimSpace(body);
  int code = 0;
  std::string_view rest;
  if (!MatchCodePrefix(body, &code, &rest)) return std::nullopt;
  return ClickHouseServerError{code, CleanMessage(rest.substr(0, rest.find('\n')))};
}

std::optional<ClickHouseServerError> FindTrailingClickHouseException(
    std::string_view body, std::string_view exception_tag) {
  const size_t window_start = body.size() > kTailWindow ? body.size() - kTailWindow : 0;
  const std::string_view window = body.substr(window_start);
  if (std::optional<ClickHouseServerError> framed = FindFramed(window, exception_tag)) {
    return framed;
  }
  // Older servers: the exception text is the last thing in the body, starting on a new line.
  size_t end = window.size();
  while (end > 0) {
    size_t nl = window.rfind('\n', end - 1);
    size_t line_start = nl == std::string_view::npos ? 0 : nl + 1;
    const bool at_line_start = nl != std::string_view::npos || window_start == 0;
    if (at_line_start && LooksLikeExceptionLine(window.substr(line_start))) {
      return ParseClickHouseErrorBody(window.substr(line_start));
    }
    if (nl == std::string_view::npos) break;
    end = nl;
  }
  return std::nullopt;
}

StatusCode StatusCodeForClickHouseError(int code) {
  switch (code) {
    case 173:  // CANNOT_ALLOCATE_MEMORY
    case 202:  // TOO_MANY_SIMULTANEOUS_QUERIES
    case 241:  // MEMORY_LIMIT_EXCEEDED
    case 243:  // NOT_ENOUGH_SPACE
    case 252:  // TOO_MANY_PARTS
      return StatusCode::kResourceExhausted;
    case 159:  // TIMEOUT_EXCEEDED
    case 209:  // SOCKET_TIMEOUT
      return StatusCode::kDeadlineExceeded;
    case 198:  // DNS_ERROR
    case 210:  // NETWORK_ERROR
    case 225:  // NO_ZOOKEEPER
    case 242:  // TABLE_IS_READ_ONLY
    case 279:  // ALL_CONNECTION_TRIES_FAILED
    case 319:  // UNKNOWN_STATUS_OF_INSERT
    case 999:  // KEEPER_EXCEPTION
      return StatusCode::kUnavailable;
    case 164:  // READONLY
    case 192:  // UNKNOWN_USER
    case 193:  // WRONG_PASSWORD
    case 194:  // REQUIRED_PASSWORD
    case 195:  // IP_ADDRESS_NOT_ALLOWED
    case 497:  // ACCESS_DENIED
    case 516:  // AUTHENTICATION_FAILED
      return StatusCode::kFailedPrecondition;
    case 394:  // QUERY_WAS_CANCELLED
      return StatusCode::kCancelled;
    case 6:    // CANNOT_PARSE_TEXT
    case 8:    // THERE_IS_NO_COLUMN
    case 10:   // NOT_FOUND_COLUMN_IN_BLOCK
    case 16:   // NO_SUCH_COLUMN_IN_TABLE
    case 20:   // NUMBER_OF_COLUMNS_DOESNT_MATCH
    case 21:   // CANNOT_READ_ALL_DATA_FROM_TAB_SEPARATED_INPUT
    case 25:   // CANNOT_PARSE_ESCAPE_SEQUENCE
    case 26:   // CANNOT_PARSE_QUOTED_STRING
    case 27:   // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    case 32:   // ATTEMPT_TO_READ_AFTER_EOF
    case 33:   // CANNOT_READ_ALL_DATA
    case 36:   // BAD_ARGUMENTS
    case 38:   // CANNOT_PARSE_DATE
    case 41:   // CANNOT_PARSE_DATETIME
    case 42:   // NUMBER_OF_ARGUMENTS_DOESNT_MATCH
    case 43:   // ILLEGAL_TYPE_OF_ARGUMENT
    case 44:   // ILLEGAL_COLUMN
    case 46:   // UNKNOWN_FUNCTION
    case 47:   // UNKNOWN_IDENTIFIER
    case 48:   // NOT_IMPLEMENTED
    case 50:   // UNKNOWN_TYPE
    case 53:   // TYPE_MISMATCH
    case 57:   // TABLE_ALREADY_EXISTS
    case 60:   // UNKNOWN_TABLE
    case 62:   // SYNTAX_ERROR
    case 69:   // ARGUMENT_OUT_OF_BOUND
    case 70:   // CANNOT_CONVERT_TYPE
    case 72:   // CANNOT_PARSE_NUMBER
    case 73:   // UNKNOWN_FORMAT
    case 80:   // INCORRECT_QUERY
    case 81:   // UNKNOWN_DATABASE
    case 82:   // DATABASE_ALREADY_EXISTS
    case 115:  // UNKNOWN_SETTING
    case 117:  // INCORRECT_DATA
    case 131:  // TOO_LARGE_STRING_SIZE
    case 179:  // MULTIPLE_EXPRESSIONS_FOR_ALIAS
    case 184:  // ILLEGAL_AGGREGATION
    case 190:  // SIZES_OF_ARRAYS_DOESNT_MATCH
    case 215:  // NOT_AN_AGGREGATE
    case 386:  // NO_COMMON_TYPE
    case 395:  // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO
      return StatusCode::kInvalidArgument;
    default:
      return StatusCode::kInternal;
  }
}

Status ClickHouseErrorStatus(const ClickHouseServerError& error) {
  std::string msg(kStatusPrefix);
  msg += std::to_string(error.code);
  msg += ": ";
  msg += error.message;
  switch (error.code) {
    case 192:
    case 193:
    case 194:
    case 195:
    case 516:
      msg += "; check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD";
      break;
    default:
      break;
  }
  return Status(StatusCodeForClickHouseError(error.code), std::move(msg));
}

std::optional<int> ClickHouseErrorCode(const Status& status) {
  if (status.ok()) return std::nullopt;
  const std::string& msg = status.message();
  size_t pos = msg.find(kStatusPrefix);
  if (pos == std::string::npos) return std::nullopt;
  const char* begin = msg.data() + pos + kStatusPrefix.size();
  const char* end = msg.data() + msg.size();
  int code = 0;
  auto [ptr, ec] = std::from_chars(begin, end, code);
  if (ec != std::errc() || ptr == begin || ptr == end || *ptr != ':') return std::nullopt;
  return code;
}

Status StatusFromClickHouseResponse(long http_status, std::optional<int> header_code,
                                    std::string_view exception_tag, std::string_view body,
                                    bool check_body_tail) {
  const bool success = http_status >= 200 && http_status < 300;
  if (header_code && *header_code == 0) header_code.reset();
  if (success && !header_code) {
    if (!check_body_tail) return Status::Ok();
    std::optional<ClickHouseServerError> tail =
        FindTrailingClickHouseException(body, exception_tag);
    if (!tail) return Status::Ok();
    if (tail->code != 0) return ClickHouseErrorStatus(*tail);
    return Internal("ClickHouse failed the query after answering 200: " + tail->message);
  }

  std::optional<ClickHouseServerError> error;
  if (success) error = FindTrailingClickHouseException(body, exception_tag);
  if (!error) error = ParseClickHouseErrorBody(body);
  if (!error && !exception_tag.empty())
    error = FindTrailingClickHouseException(body, exception_tag);
  if (header_code.has_value()) {
    const int code = header_code.value();
    if (!error) error = ClickHouseServerError{0, CleanMessage(FirstLine(body))};
    error->code = code;
  }
  if (error && error->code != 0) return ClickHouseErrorStatus(*error);

  std::string msg = "ClickHouse answered HTTP " + std::to_string(http_status);
  std::string detail = error ? error->message : CleanMessage(FirstLine(body));
  if (!detail.empty()) msg += ": " + detail;
  if (success) return Internal(std::move(msg));
  if (http_status >= 500) return Unavailable(std::move(msg));
  if (http_status == 408) return Status(StatusCode::kDeadlineExceeded, std::move(msg));
  if (http_status == 429) return Status(StatusCode::kResourceExhausted, std::move(msg));
  if (http_status == 401 || http_status == 403) {
    return FailedPrecondition(msg + "; check CLICKHOUSE_USER and CLICKHOUSE_PASSWORD");
  }
  if (http_status >= 400) return InvalidArgument(std::move(msg));
  return Internal(std::move(msg));
}

}  // namespace bgm
