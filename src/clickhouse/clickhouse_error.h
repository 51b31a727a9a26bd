// ClickHouse server errors: parsing them out of HTTP responses and mapping their numeric codes
// to a Status. Pure functions over strings (no I/O), so every server dialect can be unit tested.
// Thread-safe: no shared state.
//
// Dialects handled (all observed or documented):
//   18.16   non-2xx, body "Code: 60, e.displayText() = DB::Exception: Table x doesn't exist.,
//           e.what() = DB::Exception"; no X-ClickHouse-Exception-Code header. An error after
//           the first bytes were streamed is appended to a 200 body in the same form.
//   19-21   the same body plus the header, "... (version 21.3.1.1)".
//   21.x+   "Code: 60. DB::Exception: Table x does not exist. (UNKNOWN_TABLE) (version 23.8)".
//   25.11+  a mid-stream error is framed: "__exception__TAG\n<message>\n<size> TAG__exception__"
//           with the tag announced in the X-ClickHouse-Exception-Tag header.
//
// A Status made here carries the message "ClickHouse error <code>: <first line>", so the code
// survives WithContext() and can be read back with ClickHouseErrorCode().
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bgm {

// One error reported by a ClickHouse server. `code` is ClickHouse's numeric code (0 when the
// server framed an error without one); `message` is the first line of the server's text with
// the "Code: N, e.displayText() = DB::Exception: " framing, ", e.what() = ..." and
// " (version ...)" removed.
struct ClickHouseServerError {
  int code = 0;
  std::string message;
};

// Parses an error body that starts (after whitespace) with "Code: N". nullopt when the body
// does not look like a ClickHouse error.
std::optional<ClickHouseServerError> ParseClickHouseErrorBody(std::string_view body);

// Finds an exception that a server appended to a 200 body after streaming part of the result.
// `exception_tag` is the X-ClickHouse-Exception-Tag header value ("" if absent). Only the last
// 64 KiB are examined, and only a line that starts with "Code: N" followed by ClickHouse's
// exception framing counts, so ordinary data rarely matches; a TabSeparated result whose last
// line is a stored exception text ("Code: 60. DB::Exception: ...") would, so select such text
// in a quoting format (JSONEachRow) or not as the first column.
std::optional<ClickHouseServerError> FindTrailingClickHouseException(
    std::string_view body, std::string_view exception_tag = {});

// The Status code for a ClickHouse error code. Retriable (see IsRetriable):
//   kResourceExhausted  241 memory limit, 252 too many parts, 202 too many queries, 173, 243
//   kDeadlineExceeded   159 timeout exceeded, 209 socket timeout
//   kUnavailable        210 network, 198 DNS, 279 all connection tries failed, 242 table is
//                       read-only (replica lost Keeper), 225/999 Keeper, 319 unknown insert status
// Not retriable:
//   kFailedPrecondition authentication and access (192, 193, 194, 195, 516, 497, 164): the
//                       credentials or grants must change, not the query
//   kCancelled          394 query was cancelled
//   kInvalidArgument    the query or the data is wrong: syntax (62), unknown table/database/
//                       column/identifier/function/type/setting/format (60, 81, 16, 47, 46, 50,
//                       115, 73), parse and type errors (6, 26, 27, 33, 38, 41, 53, 69, 70, 72,
//                       117, ...), already exists (57, 82)
//   kInternal           every other code (unknown codes are not retried blindly)
StatusCode StatusCodeForClickHouseError(int code);

// Status(StatusCodeForClickHouseError(code), "ClickHouse error <code>: <message>").
Status ClickHouseErrorStatus(const ClickHouseServerError& error);

// The ClickHouse code inside a Status made by ClickHouseErrorStatus (also after WithContext);
// nullopt for OK and for failures that did not come from a ClickHouse server error.
std::optional<int> ClickHouseErrorCode(const Status& status);

// Classifies one complete HTTP exchange. `header_code` is X-ClickHouse-Exception-Code if the
// server sent it. A 2xx without a header code is OK unless `check_body_tail` and the body ends
// in an exception (see FindTrailingClickHouseException). A non-2xx with a ClickHouse code maps
// through StatusCodeForClickHouseError; without one, 5xx is kUnavailable, 408
// kDeadlineExceeded, 429 kResourceExhausted, 401/403 kFailedPrecondition, other 4xx
// kInvalidArgument.
Status StatusFromClickHouseResponse(long http_status, std::optional<int> header_code,
                                    std::string_view exception_tag, std::string_view body,
                                    bool check_body_tail);

}  // namespace bgm
