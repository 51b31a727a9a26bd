#include "postgres/pg_result.h"

#include <charconv>
#include <cstdlib>

namespace bgm {

int64_t PgResult::affected() const {
  const char* n = PQcmdTuples(res_.get());
  return (n == nullptr || *n == '\0') ? 0 : std::strtoll(n, nullptr, 10);
}

std::optional<std::string> PgResult::GetOpt(int row, int col) const {
  if (IsNull(row, col)) return std::nullopt;
  return std::string(Get(row, col));
}

int64_t PgResult::GetInt(int row, int col) const {
  if (IsNull(row, col)) return 0;
  std::string_view v = Get(row, col);
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

}  // namespace bgm
