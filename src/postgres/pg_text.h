// Parsers for Postgres's text output formats that the copies read. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace bgm {

// Parses a one-dimensional text[] literal such as {a,"b c","d\"e",NULL} into `out` (cleared
// first). NULL elements become empty strings. kInvalidArgument for malformed input.
Status ParsePgTextArray(std::string_view text, std::vector<std::string>* out);

// The text[] literal of `items` for a $n::text[] parameter: {"a","b c","d\"e"}.
std::string PgTextArrayLiteral(const std::vector<std::string>& items);

}  // namespace bgm
