#include "migrations/verify.h"

#include <algorithm>
#include <map>
#include <random>
#include <sstream>

#include "clickhouse/column_type.h"
#include "clickhouse/insert_source.h"
#include "common/timestamp.h"
#include "core/args.h"
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

uint64_t KeyHash(const std::vector<std::string_view>& values) {
  if (values.size() == 1) return IdHash(values[0]);
  // Each value preceded by its length, so ("ab", "c") and ("a", "bc") differ.
  std::string joined;
  for (std::string_view v : values) {
    joined += std::to_string(v.size()) + ":";
    joined += v;
  }
  return IdHash(joined);
}

bool VerifyReport::match() const {
  for (const MonthComparison& m : months) {
    if (!m.match()) return false;
  }
  return content.differing == 0;
}

namespace {

std::string KeyText(const RowDifference& d) {
  std::string names, values;
  for (const auto& [n, v] : d.key) {
    names += (names.empty() ? "" : ", ") + n;
    values += (values.empty() ? "" : ", ") + v;
  }
  return "(" + names + ") = (" + values + ")";
}

}  // namespace

nlohmann::json VerifyReport::ToJson() const {
  nlohmann::json months_json = nlohmann::json::array();
  for (const MonthComparison& m : months) {
    months_json.push_back({{"month", m.month},
                           {"source_rows", m.source_rows},
                           {"target_rows", m.target_rows},
                           {"match", m.match()}});
  }
  nlohmann::json content_json = {{"mode", content.full ? "full" : "sample"},
                                 {"rows", content.rows},
                                 {"differing", content.differing},
                                 {"missing", content.missing}};
  if (content.first) {
    nlohmann::json key = nlohmann::json::object();
    for (const auto& [n, v] : content.first->key) key[n] = v;
    nlohmann::json first = {{"key", key}, {"missing", content.first->missing}};
    if (!content.first->missing) {
      first["column"] = content.first->column;
      first["source_value"] = content.first->source_value;
      first["target_value"] = content.first->target_value;
    }
    content_json["first_difference"] = first;
  }
  return {{"table", table},
          {"match", match()},
          {"source_rows", source_rows},
          {"target_rows", target_rows},
          {"final", final_read},
          {"months", months_json},
          {"content", content_json}};
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
  if (content.differing > 0) {
    out += "content: " + std::to_string(content.differing) + " of " + std::to_string(content.rows) +
           (content.full ? "" : " sampled") + " rows differ";
    if (content.missing > 0) out += " (" + std::to_string(content.missing) + " missing)";
    if (content.first) {
      const RowDifference& d = *content.first;
      out += "; first: " + KeyText(d) +
             (d.missing ? " is missing in the target"
                        : ": column " + d.column + " is " + d.source_value + " in the copy, " +
                              d.target_value + " in the target");
    }
    out += "\n";
  }
  out += table + ": " + (match() ? "MATCH" : "DIFFERENT") + " — source " +
         std::to_string(source_rows) + " rows, target " + std::to_string(target_rows) + " rows" +
         (final_read ? " (FINAL)" : "") + ", " + std::to_string(months.size()) +
         " months compared" + (differing > 0 ? ", " + std::to_string(differing) + " differ" : "");
  if (content.rows > 0) {
    out += "; content of " + std::to_string(content.rows) +
           (content.full ? " rows (all)" : " sampled rows") + " compared, " +
           std::to_string(content.differing) + " differ";
  }
  return out + "\n";
}

namespace {

constexpr int64_t kChunkRows = 2000;  // rows compared by content per scratch insert
constexpr int64_t kMaxSample = 1000000;
constexpr size_t kScratchBytes = 32 << 20;  // encoded rows compared at once, at most

// A ClickHouse identifier, back-quoted.
std::string ChIdent(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`' || c == '\\') out += '\\';
    out += c;
  }
  return out + "`";
}

std::string ChString(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// The entries of an INSERT's column list: "a, `b, c`, m.key" -> {"a", "`b, c`", "m.key"}.
std::vector<std::string> SplitColumns(std::string_view list) {
  std::vector<std::string> out;
  std::string current;
  bool quoted = false;
  for (size_t i = 0; i < list.size(); ++i) {
    const char c = list[i];
    if (quoted && c == '\\' && i + 1 < list.size()) {
      current += c;
      current += list[++i];
      continue;
    }
    if (c == '`') quoted = !quoted;
    if (c == ',' && !quoted) {
      out.push_back(current);
      current.clear();
      continue;
    }
    if (c == ' ' && !quoted && current.empty()) continue;
    current += c;
  }
  if (!current.empty()) out.push_back(current);
  return out;
}

// Reads a RowBinary body of rows of `width` String columns.
Result<std::vector<std::vector<std::string>>> ReadStringRows(std::string_view body, size_t width) {
  std::vector<std::vector<std::string>> rows;
  size_t pos = 0;
  while (pos < body.size()) {
    std::vector<std::string> row;
    for (size_t c = 0; c < width; ++c) {
      uint64_t length = 0;
      for (int shift = 0;; shift += 7) {
        if (pos == body.size() || shift > 63) {
          return Internal("ClickHouse sent malformed RowBinary (a length is cut short)");
        }
        const auto byte = static_cast<unsigned char>(body[pos++]);
        length |= static_cast<uint64_t>(byte & 0x7f) << shift;
        if ((byte & 0x80) == 0) break;
      }
      if (length > body.size() - pos) {
        return Internal("ClickHouse sent malformed RowBinary (a value is cut short)");
      }
      row.emplace_back(body.substr(pos, length));
      pos += length;
    }
    rows.push_back(std::move(row));
  }
  return rows;
}

const ColumnType& Inner(const ColumnType& t) {
  const ColumnType* p = &t;
  while (p->kind == ColumnType::Kind::kNullable || p->kind == ColumnType::Kind::kLowCardinality) {
    p = &p->args[0];
  }
  return *p;
}

// The target's column types by name and its engine.
struct TargetTable {
  std::map<std::string, std::string> types;
  std::string engine;
};

Result<TargetTable> ReadTarget(ClickHouseClient& ch, const std::string& table) {
  TargetTable t;
  Result<std::string> rows = ch.Query(
      "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND "
      "table = " +
      ChString(table) + " FORMAT RowBinary");
  if (!rows.ok()) return rows.status().WithContext("reading the columns of " + table);
  Result<std::vector<std::vector<std::string>>> parsed = ReadStringRows(*rows, 2);
  if (!parsed.ok()) return parsed.status();
  for (auto& r : *parsed) t.types[r[0]] = r[1];
  if (t.types.empty()) {
    return InvalidArgument("target table " + table +
                           " does not exist in ClickHouse (CLICKHOUSE_DB); nothing to verify");
  }
  Result<std::string> engine =
      ch.Query("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = " +
               ChString(table) + " FORMAT RowBinary");
  if (!engine.ok()) return engine.status().WithContext("reading the engine of " + table);
  Result<std::vector<std::vector<std::string>>> e = ReadStringRows(*engine, 1);
  if (!e.ok()) return e.status();
  if (!e->empty()) t.engine = (*e)[0][0];
  return t;
}

// Whether FINAL collapses rows of `engine` (ReplacingMergeTree, its Replicated form, ...);
// plain MergeTree on ClickHouse 18.16 refuses FINAL.
bool SupportsFinal(std::string engine) {
  if (engine.starts_with("Replicated")) engine = engine.substr(10);
  return engine.ends_with("MergeTree") && engine != "MergeTree";
}

// One key column: its source expression, its target name and type.
struct KeyColumn {
  std::string expr, name;
  ColumnType type;
  bool hashed = false;  // its text is the same on both sides (String, UUID, integers)
};

// The verification of one plan.
class Verifier {
 public:
  Verifier(const CopyPlan& plan, PgConnection& pg, ClickHouseClient& ch,
           const VerifyOptions& options)
      : plan_(plan), pg_(pg), ch_(ch), options_(options) {}

  Result<VerifyReport> Run() {
    BGM_RETURN_IF_ERROR(pg_.Run("SET DateStyle = 'ISO, YMD'"));
    BGM_RETURN_IF_ERROR(pg_.Run("SET TimeZone = 'UTC'"));
    BGM_RETURN_IF_ERROR(Prepare());
    report_.table = plan_.source;
    report_.final_read = final_;
    BGM_RETURN_IF_ERROR(CompareCounts());
    BGM_RETURN_IF_ERROR(CompareContent());
    return report_;
  }

 private:
  Status Prepare() {
    Result<DateBoundsArgs> bounds = Bounds();
    if (!bounds.ok()) return bounds.status();
    Result<TargetTable> target = ReadTarget(ch_, plan_.target_table);
    if (!target.ok()) return target.status();
    final_ = SupportsFinal(target->engine);
    merge_tree_ = target->engine.ends_with("MergeTree");
    for (size_t i = 0; i < plan_.key_list.size(); ++i) {
      KeyColumn k;
      k.expr = plan_.key_list[i];
      k.name = plan_.key_names[i];
      auto it = target->types.find(k.name);
      if (it == target->types.end()) {
        return InvalidArgument("key column " + k.name + " is not a column of " +
                               plan_.target_table + "; verify joins source and target on the key");
      }
      Result<ColumnType> type = ParseColumnType(it->second);
      if (!type.ok()) return type.status().WithContext("column " + k.name);
      k.type = std::move(*type);
      const ColumnType::Kind kind = Inner(k.type).kind;
      k.hashed = kind == ColumnType::Kind::kString || kind == ColumnType::Kind::kUuid ||
                 kind == ColumnType::Kind::kInt;
      keys_.push_back(std::move(k));
    }
    const ColumnType::Kind first = Inner(keys_.front().type).kind;
    timed_ = first == ColumnType::Kind::kDate || first == ColumnType::Kind::kDate32 ||
             first == ColumnType::Kind::kDateTime || first == ColumnType::Kind::kDateTime64;
    compared_ = SplitColumns(plan_.insert_columns);
    for (const KeyColumn& k : keys_) {
      target_keys_ += (target_keys_.empty() ? "" : ", ") + ChIdent(k.name);
      source_keys_ += (source_keys_.empty() ? "" : ", ") + k.expr;
    }
    // The window on the first key: the source as the copy reads it, the target by its type.
    const std::string& k0 = keys_.front().expr;
    const std::string t0 = ChIdent(keys_.front().name);
    const ColumnType::Kind kind = Inner(keys_.front().type).kind;
    auto ch_bound = [kind](int64_t ms, bool upper) {
      if (kind == ColumnType::Kind::kDateTime64) {
        return "toDateTime64(" + ChString(FormatPostgresTimestamp(ms)) + ", 3, 'UTC')";
      }
      if (kind == ColumnType::Kind::kDateTime) {
        // Stored in whole seconds: an upper bound inside a second keeps that second.
        const int64_t s = upper ? (ms + 999) / 1000 * 1000 : ms / 1000 * 1000;
        return "toDateTime(" + ChString(FormatPostgresTimestamp(s).substr(0, 19)) + ", 'UTC')";
      }
      return "toDate(" + ChString(FormatPostgresTimestamp(ms).substr(0, 10)) + ")";
    };
    if (bounds->min_ms) {
      source_bounds_.emplace_back(" AND " + k0 + " >= ", FormatPostgresTimestamp(*bounds->min_ms));
      if (timed_) target_where_ += " AND " + t0 + " >= " + ch_bound(*bounds->min_ms, false);
    }
    if (bounds->max_ms) {
      source_bounds_.emplace_back(" AND " + k0 + " < ", FormatPostgresTimestamp(*bounds->max_ms));
      if (timed_) target_where_ += " AND " + t0 + " < " + ch_bound(*bounds->max_ms, true);
    }
    return Status::Ok();
  }

  struct DateBoundsArgs {
    std::optional<int64_t> min_ms, max_ms;
  };
  Result<DateBoundsArgs> Bounds() const {
    Result<std::optional<int64_t>> min = TimestampArg(options_.args, "minDate");
    if (!min.ok()) return min.status().WithContext("the migration's args");
    Result<std::optional<int64_t>> max = TimestampArg(options_.args, "maxDate");
    if (!max.ok()) return max.status().WithContext("the migration's args");
    return DateBoundsArgs{*min, *max};
  }

  // " AND k0 >= $1 AND k0 < $2" with its parameters appended to `params`.
  std::string SourceWindow(std::vector<PgParam>& params) const {
    std::string sql;
    for (const auto& [text, value] : source_bounds_) {
      params.emplace_back(value);
      sql += text + "$" + std::to_string(params.size());
    }
    return sql;
  }

  // The target (FINAL where it collapses rows) in the window, with `prewhere` when given.
  std::string TargetFrom(const std::string& prewhere = "") const {
    return plan_.target_table + (final_ ? " FINAL" : "") +
           (prewhere.empty() ? "" : " PREWHERE " + prewhere) + " WHERE 1" + target_where_;
  }

  // A key value as its target column prints it, for the hash.
  static std::string_view Normalized(const KeyColumn& k, std::string_view pg_text) {
    if (Inner(k.type).kind == ColumnType::Kind::kInt) {  // a boolean writes 1/0
      if (pg_text == "t") return "1";
      if (pg_text == "f") return "0";
    }
    return pg_text;
  }

  Status CompareCounts() {
    std::map<std::string, MonthComparison> months;
    std::vector<int> hashed;
    std::string hashed_source, hashed_target;
    for (size_t i = 0; i < keys_.size(); ++i) {
      if (!keys_[i].hashed) continue;
      hashed.push_back(static_cast<int>(i));
      hashed_source += ", (" + keys_[i].expr + ")::text";
      hashed_target += std::string(hashed_target.empty() ? "" : ", ") + "ifNull(toString(" +
                       ChIdent(keys_[i].name) + "), '\\\\N')";
    }
    {
      std::vector<PgParam> params;
      const std::string month =
          timed_ ? "to_char((" + keys_.front().expr + ")::timestamp, 'YYYY-MM')" : "'all'";
      const std::string sql = "SELECT " + month + hashed_source + " FROM " + plan_.from +
                              " WHERE true" + SourceWindow(params);
      PgRowStream rows(pg_);
      BGM_RETURN_IF_ERROR(rows.Start(sql, params));
      std::vector<std::string_view> values(hashed.size());
      while (true) {
        Result<bool> more = rows.Next();
        if (!more.ok()) return more.status().WithContext("reading " + plan_.source);
        if (!*more) break;
        MonthComparison& m = months[rows.IsNull(0) ? "none" : std::string(rows.Get(0))];
        m.source_rows++;
        if (hashed.empty()) continue;
        for (size_t i = 0; i < hashed.size(); ++i) {
          const int col = static_cast<int>(i) + 1;
          values[i] = rows.IsNull(col)
                          ? std::string_view("\\N")
                          : Normalized(keys_[static_cast<size_t>(hashed[i])], rows.Get(col));
        }
        m.source_hash += KeyHash(values);
      }
    }
    const std::string month_expr =
        !timed_ ? "'all'"
        : Inner(keys_.front().type).kind == ColumnType::Kind::kDate ||
                Inner(keys_.front().type).kind == ColumnType::Kind::kDate32
            ? "formatDateTime(" + ChIdent(keys_.front().name) + ", '%Y-%m')"
            : "formatDateTime(" + ChIdent(keys_.front().name) + ", '%Y-%m', 'UTC')";
    Result<std::string> counts =
        ch_.Query("SELECT toString(" + month_expr + ") AS bgm_month, toString(count()) FROM " +
                  TargetFrom() + " GROUP BY bgm_month ORDER BY bgm_month FORMAT RowBinary");
    if (!counts.ok()) return counts.status().WithContext("counting " + plan_.target_table);
    Result<std::vector<std::vector<std::string>>> parsed = ReadStringRows(*counts, 2);
    if (!parsed.ok()) return parsed.status();
    for (const auto& row : *parsed) {
      months[row[0]].target_rows = std::stoll(row[1]);
      if (hashed.empty()) continue;
      // One month of keys at a time.
      Result<std::string> ids =
          ch_.Query("SELECT " + hashed_target + " FROM " + TargetFrom() + " AND " + month_expr +
                    " = " + ChString(row[0]) + " FORMAT RowBinary");
      if (!ids.ok()) return ids.status().WithContext("reading the keys of " + plan_.target_table);
      Result<std::vector<std::vector<std::string>>> keys = ReadStringRows(*ids, hashed.size());
      if (!keys.ok()) return keys.status();
      uint64_t sum = 0;
      std::vector<std::string_view> values(hashed.size());
      for (const auto& k : *keys) {
        for (size_t i = 0; i < k.size(); ++i) values[i] = k[i];
        sum += KeyHash(values);
      }
      months[row[0]].target_hash = sum;
    }
    for (auto& [month, m] : months) {
      m.month = month;
      report_.source_rows += m.source_rows;
      report_.target_rows += m.target_rows;
      report_.months.push_back(m);
    }
    return Status::Ok();
  }

  // --- content ---

  // Encodes the current source row as the copy does, blobs read inline.
  class Sink final : public RowSink {
   public:
    Sink(std::string& out, const PgRowStream& stream, int blob_col, const CopyPlan& plan)
        : writer_(out), stream_(stream), blob_col_(blob_col), plan_(plan) {}
    RowBinaryWriter& writer() override { return writer_; }
    Status WriteBlob(int k, bool nullable) override {
      const int col = blob_col_ + k;
      if (stream_.IsNull(col)) {
        if (!nullable) {
          return InvalidArgument("NULL cannot be written as String, which is not Nullable");
        }
        writer_.WriteNull();
        return Status::Ok();
      }
      if (nullable) writer_.WriteNotNull();
      if (plan_.BlobIsJson(k)) {
        writer_.WriteJsonCompact(stream_.Get(col));
      } else {
        writer_.WriteString(stream_.Get(col));
      }
      return Status::Ok();
    }

   private:
    RowBinaryWriter writer_;
    const PgRowStream& stream_;
    const int blob_col_;
    const CopyPlan& plan_;
  };

  std::string RowSelect() const {
    std::string sql = "SELECT ";
    for (const std::string& e : plan_.select_list) sql += e + ", ";
    for (const std::string& b : plan_.blob_list) sql += "(" + b + ")::text, ";
    return sql + source_keys_ + " FROM " + plan_.from + " WHERE true";
  }

  // Reads the rows of `sql`, encodes them as the copy does and compares them through the
  // scratch table, up to 32 MiB of encoded rows at a time. The key values of the last row read
  // go to `last`.
  Status CompareRows(const std::string& sql, const std::vector<PgParam>& params, int64_t* read,
                     std::vector<std::string>* last) {
    std::string body;
    int64_t rows = 0, pending = 0;
    PgRowStream stream(pg_);
    BGM_RETURN_IF_ERROR(stream.Start(sql, params));
    const int blob_col = static_cast<int>(plan_.select_list.size());
    const int key_col = blob_col + static_cast<int>(plan_.blob_list.size());
    Sink sink(body, stream, blob_col, plan_);
    while (true) {
      Result<bool> more = stream.Next();
      if (!more.ok()) return more.status().WithContext("reading " + plan_.source);
      if (!*more) break;
      ++rows;
      ++pending;
      if (last != nullptr) {
        last->clear();
        for (size_t i = 0; i < keys_.size(); ++i) {
          last->emplace_back(stream.Get(key_col + static_cast<int>(i)));
        }
      }
      Status s = plan_.encode(SourceRow(stream, plan_.select_list), sink);
      if (!s.ok()) {
        std::string key;
        for (size_t i = 0; i < keys_.size(); ++i) {
          key += (i > 0 ? ", " : "") + std::string(stream.Get(key_col + static_cast<int>(i)));
        }
        return s.WithContext("encoding " + plan_.source + " row (" + source_keys_ + ") = (" + key +
                             "), which the copy would fail on too");
      }
      if (body.size() >= kScratchBytes) {
        BGM_RETURN_IF_ERROR(CompareEncoded(body, pending));
        body.clear();
        pending = 0;
      }
    }
    *read = rows;
    return CompareEncoded(body, pending);
  }

  // Puts `rows` encoded rows into the (emptied) scratch table and compares them.
  Status CompareEncoded(const std::string& body, int64_t rows) {
    if (rows == 0) return Status::Ok();
    BGM_RETURN_IF_ERROR(ch_.Execute("TRUNCATE TABLE " + scratch_));
    StringInsertSource source(body);
    Status inserted = ch_.Insert(
        "INSERT INTO " + scratch_ + " (" + plan_.insert_columns + ") FORMAT RowBinary", source);
    if (!inserted.ok()) return inserted.WithContext("writing rows to the scratch table");
    report_.content.rows += rows;
    return CompareScratch();
  }

  // The scratch rows joined with their target rows, and whether each differs.
  std::string Joined(const std::string& outer) const {
    std::string right = "SELECT " + target_keys_;
    std::string differs = "bgm_present = 0";
    for (size_t i = 0; i < compared_.size(); ++i) {
      const std::string t = "bgm_t" + std::to_string(i);
      right += ", " + compared_[i] + " AS " + t;
      differs += " OR toString(tuple(" + compared_[i] + ")) != toString(tuple(" + t + "))";
    }
    // Reading the whole target through FINAL for each chunk took 2.4 s per 2,000 rows over
    // 100k traces; a PREWHERE on the id-like key columns reads the rest for those rows only
    // (0.1 s). Every version of a row shares its id, so FINAL still chooses among all of them.
    std::string ids;
    for (const KeyColumn& k : keys_) {
      if (k.hashed) ids += (ids.empty() ? "" : ", ") + ChIdent(k.name);
    }
    const std::string prewhere =
        ids.empty() || !merge_tree_ ? ""
                                    : "(" + ids + ") IN (SELECT " + ids + " FROM " + scratch_ + ")";
    right += ", toUInt8(1) AS bgm_present FROM " + TargetFrom(prewhere) + " AND (" + target_keys_ +
             ") IN (SELECT " + target_keys_ + " FROM " + scratch_ + ")";
    return "SELECT " + outer + " FROM " + scratch_ + " ALL LEFT JOIN (" + right +
           ") AS bgm_target USING (" + target_keys_ + ") WHERE " + differs;
  }

  Status CompareScratch() {
    Result<std::string> counts =
        ch_.Query("SELECT toString(count()), toString(countIf(bgm_present = 0)) FROM (" +
                  Joined("bgm_present") + ") FORMAT RowBinary");
    if (!counts.ok()) return counts.status().WithContext("comparing rows with the target");
    Result<std::vector<std::vector<std::string>>> c = ReadStringRows(*counts, 2);
    if (!c.ok()) return c.status();
    if (c->size() != 1) return Internal("ClickHouse sent no count of differing rows");
    const int64_t differing = std::stoll((*c)[0][0]);
    report_.content.differing += differing;
    report_.content.missing += std::stoll((*c)[0][1]);
    if (differing == 0 || report_.content.first) return Status::Ok();

    std::string outer;
    for (const KeyColumn& k : keys_) {
      const ColumnType::Kind kind = Inner(k.type).kind;
      const bool utc = kind == ColumnType::Kind::kDateTime || kind == ColumnType::Kind::kDateTime64;
      outer += "toString(" + ChIdent(k.name) + (utc ? ", 'UTC'), " : "), ");
    }
    outer += "toString(bgm_present)";
    for (size_t i = 0; i < compared_.size(); ++i) {
      outer += ", toString(tuple(" + compared_[i] + ")), toString(tuple(bgm_t" + std::to_string(i) +
               "))";
    }
    Result<std::string> first =
        ch_.Query(Joined(outer) + " ORDER BY " + target_keys_ + " LIMIT 1 FORMAT RowBinary");
    if (!first.ok()) return first.status().WithContext("reading the first differing row");
    Result<std::vector<std::vector<std::string>>> r =
        ReadStringRows(*first, keys_.size() + 1 + 2 * compared_.size());
    if (!r.ok()) return r.status();
    if (r->empty()) return Status::Ok();
    const std::vector<std::string>& row = r->front();
    RowDifference d;
    for (size_t i = 0; i < keys_.size(); ++i) d.key.emplace_back(keys_[i].name, row[i]);
    d.missing = row[keys_.size()] == "0";
    for (size_t i = 0; !d.missing && i < compared_.size(); ++i) {
      const std::string& s = row[keys_.size() + 1 + 2 * i];
      const std::string& t = row[keys_.size() + 2 + 2 * i];
      if (s == t) continue;
      d.column = compared_[i];
      d.source_value = TupleElement(s);
      d.target_value = TupleElement(t);
      break;
    }
    report_.content.first = std::move(d);
    return Status::Ok();
  }

  // "('text')" -> "'text'": a one-element tuple as ClickHouse prints it, without the parens.
  static std::string TupleElement(std::string text) {
    if (text.size() >= 2 && text.front() == '(' && text.back() == ')') {
      text = text.substr(1, text.size() - 2);
    }
    if (text.ends_with(",")) text.pop_back();
    return text;
  }

  Status CompareContent() {
    report_.content.full = options_.full;
    if (!options_.full && options_.sample <= 0) return Status::Ok();
    std::random_device rd;
    char name[32];
    std::snprintf(name, sizeof name, "bgm_verify_%08x%08x", rd(), rd());
    scratch_ = name;
    BGM_RETURN_IF_ERROR(
        ch_.Execute("CREATE TABLE " + scratch_ + " AS " + plan_.target_table + " ENGINE = Memory"));
    Status s = options_.full ? CompareAll() : CompareSample();
    Status dropped = ch_.Execute("DROP TABLE IF EXISTS " + scratch_);
    if (!s.ok()) return s;
    return dropped.WithContext("dropping the scratch table " + scratch_);
  }

  // Every row of the window, in key order, a chunk at a time.
  Status CompareAll() {
    std::vector<std::string> cursor;
    while (true) {
      std::vector<PgParam> params;
      std::string sql = RowSelect() + SourceWindow(params);
      if (!cursor.empty()) {
        sql += " AND (" + source_keys_ + ") > (";
        for (size_t i = 0; i < cursor.size(); ++i) {
          params.emplace_back(cursor[i]);
          sql += std::string(i > 0 ? ", " : "") + "$" + std::to_string(params.size());
        }
        sql += ")";
      }
      params.emplace_back(kChunkRows);
      sql += " ORDER BY " + source_keys_ + " LIMIT $" + std::to_string(params.size());
      int64_t read = 0;
      BGM_RETURN_IF_ERROR(CompareRows(sql, params, &read, &cursor));
      if (read < kChunkRows) return Status::Ok();
    }
  }

  // `sample` keys of the window at random, their rows re-read a chunk of keys at a time.
  Status CompareSample() {
    std::vector<std::vector<std::string>> keys;
    {
      std::vector<PgParam> params;
      std::string sql =
          "SELECT " + source_keys_ + " FROM " + plan_.from + " WHERE true" + SourceWindow(params);
      for (const KeyColumn& k : keys_) sql += " AND " + k.expr + " IS NOT NULL";
      params.emplace_back(options_.sample);
      sql += " ORDER BY random() LIMIT $" + std::to_string(params.size());
      PgRowStream stream(pg_);
      BGM_RETURN_IF_ERROR(stream.Start(sql, params));
      while (true) {
        Result<bool> more = stream.Next();
        if (!more.ok()) return more.status().WithContext("sampling " + plan_.source);
        if (!*more) break;
        std::vector<std::string> key;
        for (size_t i = 0; i < keys_.size(); ++i) key.emplace_back(stream.Get(static_cast<int>(i)));
        keys.push_back(std::move(key));
      }
    }
    std::sort(keys.begin(), keys.end());
    for (size_t start = 0; start < keys.size(); start += kChunkRows) {
      const size_t end = std::min(keys.size(), start + static_cast<size_t>(kChunkRows));
      std::vector<PgParam> params;
      std::string sql = RowSelect() + " AND (" + source_keys_ + ") IN (";
      for (size_t r = start; r < end; ++r) {
        sql += r > start ? ", (" : "(";
        for (size_t i = 0; i < keys_.size(); ++i) {
          params.emplace_back(keys[r][i]);
          sql += std::string(i > 0 ? ", " : "") + "$" + std::to_string(params.size());
        }
        sql += ")";
      }
      sql += ")";
      int64_t read = 0;
      BGM_RETURN_IF_ERROR(CompareRows(sql, params, &read, nullptr));
    }
    return Status::Ok();
  }

  const CopyPlan& plan_;
  PgConnection& pg_;
  ClickHouseClient& ch_;
  const VerifyOptions& options_;
  std::vector<KeyColumn> keys_;
  std::vector<std::string> compared_;  // the target columns the copy writes
  std::string target_keys_, source_keys_;
  std::vector<std::pair<std::string, std::string>> source_bounds_;  // (" AND k0 >= ", value)
  std::string target_where_;
  bool timed_ = false;
  bool final_ = false;
  bool merge_tree_ = false;  // the target's engine has PREWHERE
  std::string scratch_;
  VerifyReport report_;
};

}  // namespace

Result<VerifyReport> VerifyPlan(const CopyPlan& plan, PgConnection& pg, ClickHouseClient& ch,
                                const VerifyOptions& options) {
  if (plan.key_list.empty() || plan.key_list.size() != plan.key_names.size()) {
    return Internal("the plan of " + plan.source + " has no key");
  }
  if (!options.full && (options.sample < 0 || options.sample > kMaxSample)) {
    return InvalidArgument("--sample must be between 0 and " + std::to_string(kMaxSample) +
                           ", got " + std::to_string(options.sample) + "; use --full for all rows");
  }
  Verifier v(plan, pg, ch, options);
  return v.Run();
}

Result<nlohmann::json> StoredArgs(PgConnection& pg, const std::string& name) {
  Result<PgResult> table = pg.Exec("SELECT to_regclass('background_migrations') IS NOT NULL");
  if (!table.ok()) return table.status().WithContext("reading the args of " + name);
  if (table->Get(0, 0) != "t") return nlohmann::json::object();
  Result<PgResult> r =
      pg.Exec("SELECT args::text FROM background_migrations WHERE name = $1", {name});
  if (!r.ok()) return r.status().WithContext("reading the args of " + name);
  if (r->rows() == 0 || r->IsNull(0, 0)) return nlohmann::json::object();
  nlohmann::json args = nlohmann::json::parse(r->Get(0, 0), nullptr, false);
  if (!args.is_object()) return nlohmann::json::object();
  return args;
}

}  // namespace bgm
