// ISO-8601 UTC timestamps as the control store writes them ("2024-10-24T17:30:00.000Z"),
// parsed to and formatted from Clock::TimePoint (milliseconds since the Unix epoch).
// Pure functions; thread-safe.
//
//   std::optional<Clock::TimePoint> t = ParseIsoTimestamp(event.at);
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"

namespace bgm {

// Accepts "YYYY-MM-DDTHH:MM:SS" with an optional fraction of up to 9 digits (kept to the
// millisecond) and "Z" or "+00:00". std::nullopt for anything else, including other offsets
// and impossible dates ("2024-02-30T00:00:00Z").
std::optional<Clock::TimePoint> ParseIsoTimestamp(std::string_view text);

// "2024-10-24T17:30:00.000Z": the format ParseIsoTimestamp reads and PgControlStore writes.
std::string FormatIsoTimestamp(Clock::TimePoint t);

}  // namespace bgm
