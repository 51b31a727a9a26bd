// Timestamps as text: the ISO-8601 and Postgres text forms of a date and time, with an optional
// zone offset, parsed into an instant (milliseconds since 1970-01-01T00:00:00Z) with the calendar
// checked, and instants formatted back. The one place the project reads or writes a timestamp's
// text (args, the copy's encoders, the web layer, the seeder). Pure functions; thread-safe.
//
//   Result<int64_t> ms = ParseTimestampMillis("2024-05-03T10:00:00+05:00");
//   FormatIsoTimestamp(*ms) == "2024-05-03T05:00:00.000Z"
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace bgm {

// An instant: whole seconds since 1970-01-01T00:00:00Z (negative before) plus nanoseconds
// in [0, 1e9) after them.
struct Instant {
  int64_t seconds = 0;
  int32_t nanos = 0;
};

// ParseTimestampMillis's forms, the fraction kept to the nanosecond.
Result<Instant> ParseTimestamp(std::string_view text);

// Milliseconds since 1970-01-01T00:00:00Z of a timestamp in text. Accepts exactly
//   YYYY-MM-DD                                 a date alone: midnight UTC
//   YYYY-MM-DD{T| }HH:MM[:SS[.fraction]]       fraction 1-9 digits, cut to the millisecond
//   ... followed by a zone: Z, ±HH, ±HH:MM, ±HHMM or ±HH:MM:SS (up to 15:59:59, as Postgres);
//       a time without a zone is UTC
// with years 0001-9999 on the proleptic Gregorian calendar, and a date and time that exist
// (no 2023-02-29, no 24:00, no second 60). kInvalidArgument, naming the text and what is wrong,
// for anything else (garbage, "infinity", BC dates, surrounding spaces).
Result<int64_t> ParseTimestampMillis(std::string_view text);

// "2024-05-03T10:00:00.123Z", always with milliseconds. `millis` in years 0001-9999.
std::string FormatIsoTimestamp(int64_t millis);

// Appends "2024-05-03 10:00:00.123" (UTC; the text form of Postgres's `timestamp(3)` and of
// ClickHouse's DateTime64(3)) without allocating beyond `out`'s growth. `millis` in years
// 0001-9999.
void AppendPostgresTimestamp(std::string& out, int64_t millis);
std::string FormatPostgresTimestamp(int64_t millis);

}  // namespace bgm
