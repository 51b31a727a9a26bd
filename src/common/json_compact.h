// JsonCompactor: JSON text without its insignificant whitespace, e.g. Postgres's jsonb output
// {"a": [1, 2], "b c": "x y"} as {"a":[1,2],"b c":"x y"} (the form JSON.stringify writes and
// ClickHouse users compare with). Works across pieces of one value, so that a huge value is
// compacted as it streams; only whitespace outside strings is dropped, nothing else changes.
//
//   JsonCompactor c;
//   for (std::string_view piece : pieces) c.Add(piece, &out);
#pragma once

#include <string>
#include <string_view>

namespace bgm {

class JsonCompactor {
 public:
  // Appends `in` without the whitespace outside strings to `out` (nullptr: counts only);
  // returns how many bytes it kept.
  size_t Add(std::string_view in, std::string* out);

 private:
  bool in_string_ = false;
  bool escaped_ = false;  // the previous byte in a string was an unescaped backslash
};

// One whole value.
std::string CompactJson(std::string_view text);

}  // namespace bgm
