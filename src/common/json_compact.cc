#include "common/json_compact.h"

namespace bgm {

size_t JsonCompactor::Add(std::string_view in, std::string* out) {
  size_t kept = 0;
  size_t run = 0;  // start of the current run of kept bytes
  auto flush = [&](size_t end) {
    if (out != nullptr) out->append(in.data() + run, end - run);
    kept += end - run;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    const char c = in[i];
    if (in_string_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        in_string_ = false;
      }
    } else if (c == '"') {
      in_string_ = true;
    } else if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
      flush(i);
      run = i + 1;
    }
  }
  flush(in.size());
  return kept;
}

std::string CompactJson(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  JsonCompactor().Add(text, &out);
  return out;
}

}  // namespace bgm
