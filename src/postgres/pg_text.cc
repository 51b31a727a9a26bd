#include "postgres/pg_text.h"

namespace bgm {

Status ParsePgTextArray(std::string_view text, std::vector<std::string>* out) {
  out->clear();
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
    return InvalidArgument("not a Postgres array literal: " + std::string(text.substr(0, 80)));
  }
  size_t i = 1;
  const size_t end = text.size() - 1;
  if (i == end) return Status::Ok();
  while (i <= end) {
    std::string element;
    if (text[i] == '"') {
      ++i;
      while (i < end && text[i] != '"') {
        if (text[i] == '\\' && i + 1 < end) ++i;
        element += text[i++];
      }
      if (i >= end) return InvalidArgument("unterminated quoted element in a Postgres array");
      ++i;  // closing quote
    } else {
      const size_t start = i;
      while (i < end && text[i] != ',') ++i;
      std::string_view raw = text.substr(start, i - start);
      if (raw != "NULL") element = std::string(raw);
    }
    out->push_back(std::move(element));
    if (i == end) break;
    if (text[i] != ',')
      return InvalidArgument("malformed Postgres array near byte " + std::to_string(i));
    ++i;
  }
  return Status::Ok();
}

std::string PgTextArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (const std::string& item : items) {
    if (out.size() > 1) out += ',';
    out += '"';
    for (char c : item) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

}  // namespace bgm
