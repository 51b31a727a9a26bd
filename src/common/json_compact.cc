#include "common/json_compact.h"

#include <cstring>

namespace bgm {

size_t JsonCompactor::Add(std::string_view in, std::string* out) {
  const char* const data = in.data();
  const size_t n = in.size();
  size_t kept = 0;
  size_t run = 0;  // start of the current run of kept bytes
  auto flush = [&](size_t end) {
    if (out != nullptr) out->append(data + run, end - run);
    kept += end - run;
  };
  // Inside a string only a quote or a backslash matters: both are found with memchr (most of a
  // value's bytes are inside strings), each position kept until it is passed.
  const char* next_quote = nullptr;
  const char* next_backslash = nullptr;
  auto find = [&](const char*& cached, char c, size_t from) {
    if (cached == nullptr || cached < data + from) {
      cached = static_cast<const char*>(std::memchr(data + from, c, n - from));
      if (cached == nullptr) cached = data + n;
    }
    return static_cast<size_t>(cached - data);
  };
  size_t i = 0;
  while (i < n) {
    if (in_string_) {
      if (escaped_) {  // the byte after a backslash, whatever it is
        escaped_ = false;
        ++i;
        continue;
      }
      const size_t quote = find(next_quote, '"', i);
      const size_t backslash = find(next_backslash, '\\', i);
      if (quote == n && backslash == n) {
        i = n;
      } else if (backslash < quote) {
        escaped_ = true;
        i = backslash + 1;
      } else {
        in_string_ = false;
        i = quote + 1;
      }
      continue;
    }
    const char c = data[i];
    if (c == '"') {
      in_string_ = true;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      flush(i);
      run = i + 1;
    }
    ++i;
  }
  flush(n);
  return kept;
}

std::string CompactJson(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  JsonCompactor().Add(text, &out);
  return out;
}

}  // namespace bgm
