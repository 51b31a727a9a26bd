#include "migrations/verify.h"

#include <map>

#include "migrations/langfuse_copies.h"
#include "postgres/pg_row_stream.h"

namespace bgm {

uint64_t IdHash(std::string_view id) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 offset basis
  for (unsigned char c : id) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

bool VerifyReport::match() const {
  for (const MonthComparison& m : months) {
    if (!m.match()) return false;
  }
  return true;
}

nlohmann::json VerifyReport::ToJson() const {
  nlohmann::json months_json = nlohmann::json::array();
  for (const MonthComparison& m : months) {
    months_json.push_back({{"month", m.month},
                           {"source_rows", m.source_rows},
                           {"target_rows", m.target_rows},
                           {"match", m.match()}});
  }
  return {{"table", table},
          {"match", match()},
          {"source_rows", source_rows},
          {"target_rows", target_rows},
          {"months", months_json}};
}

std::string VerifyReport::ToText() const {
  std::string out;
  int differing = 0;
  for (const MonthComparison& m : months) {
    if (m.match()) continue;
    ++differing;
    out += m.month + ": source " + std::to_string(m.source_rows) + " rows, target " +
           std::to_string(m.target_rows) + " rows" +
           (m.source_rows == m.target_rows ? " (same count, different ids)" : "") + "\n";
  }
  out += table + ": " + (match() ? "MATCH" : "DIFFERENT") + " — source " +
         std::to_string(source_rows) + " rows, target " + std::to_string(target_rows) +
         " rows (FINAL), " + std::to_string(months.size()) + " months compared" +
         (differing > 0 ? ", " + std::to_string(differing) + " differ" : "") + "\n";
  return out;
}

namespace {

std::string PartitionColumn(const TableMapping& m) {
  return m.source_table == "observations" ? "start_time" : "timestamp";
}

// The sum of IdHash over a RowBinary body of one String column: each value is its length
// (unsigned LEB128) then its bytes, so an id may hold any byte, a newline included.
Result<uint64_t> SumOfIdHashes(std::string_view body) {
  uint64_t sum = 0;
  size_t pos = 0;
  while (pos < body.size()) {
    uint64_t length = 0;
    for (int shift = 0;; shift += 7) {
      if (pos == body.size() || shift > 63) {
        return Internal("ClickHouse sent a malformed RowBinary id list (a length is cut short)");
      }
      const auto byte = static_cast<unsigned char>(body[pos++]);
      length |= static_cast<uint64_t>(byte & 0x7f) << shift;
      if ((byte & 0x80) == 0) break;
    }
    if (length > body.size() - pos) {
      return Internal("ClickHouse sent a malformed RowBinary id list (an id is cut short)");
    }
    sum += IdHash(body.substr(pos, length));
    pos += length;
  }
  return sum;
}

}  // namespace

Result<VerifyReport> VerifyCopy(const TableMapping& mapping, PgConnection& pg,
                                ClickHouseClient& ch) {
  const std::string col = PartitionColumn(mapping);
  std::map<std::string, MonthComparison> months;

  PgRowStream rows(pg);
  BGM_RETURN_IF_ERROR(rows.Start(
      "SELECT to_char(s.\"" + col + "\", 'YYYY-MM'), s.id FROM " + mapping.source_table + " s",
      {}));
  while (true) {
    Result<bool> more = rows.Next();
    if (!more.ok()) return more.status().WithContext("reading " + mapping.source_table);
    if (!*more) break;
    MonthComparison& m = months[std::string(rows.Get(0))];
    m.source_rows++;
    m.source_hash += IdHash(rows.Get(1));
  }

  const std::string month_expr = "formatDateTime(" + col + ", '%Y-%m', 'UTC')";
  Result<std::string> counts =
      ch.Query("SELECT " + month_expr + " AS m, count() FROM " + mapping.target_table +
               " FINAL GROUP BY m ORDER BY m FORMAT TabSeparated");
  if (!counts.ok()) return counts.status().WithContext("counting " + mapping.target_table);
  std::vector<std::string> target_months;
  for (size_t pos = 0; pos < counts->size();) {
    size_t end = counts->find('\n', pos);
    if (end == std::string::npos) end = counts->size();
    const std::string line = counts->substr(pos, end - pos);
    pos = end + 1;
    const size_t tab = line.find('\t');
    if (tab == std::string::npos) continue;
    const std::string month = line.substr(0, tab);
    months[month].target_rows = std::stoll(line.substr(tab + 1));
    target_months.push_back(month);
  }
  for (const std::string& month : target_months) {
    // One month of ids at a time; month strings are our own "YYYY-MM" text.
    Result<std::string> ids = ch.Query("SELECT id FROM " + mapping.target_table + " FINAL WHERE " +
                                       month_expr + " = '" + month + "' FORMAT RowBinary");
    if (!ids.ok()) return ids.status().WithContext("reading ids of " + mapping.target_table);
    Result<uint64_t> h = SumOfIdHashes(*ids);
    if (!h.ok()) return h.status().WithContext("reading ids of " + mapping.target_table);
    months[month].target_hash = *h;
  }

  VerifyReport report;
  report.table = mapping.source_table;
  for (auto& [month, m] : months) {
    m.month = month;
    report.source_rows += m.source_rows;
    report.target_rows += m.target_rows;
    report.months.push_back(m);
  }
  return report;
}

const TableMapping* CopyMappingByName(const std::string& name) {
  static const TableMapping kTraces = TracesMapping();
  static const TableMapping kObservations = ObservationsMapping();
  static const TableMapping kScores = ScoresMapping();
  if (name == kCopyTraces) return &kTraces;
  if (name == kCopyObservations) return &kObservations;
  if (name == kCopyScores) return &kScores;
  return nullptr;
}

}  // namespace bgm
