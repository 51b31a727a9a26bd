#include "migrations/langfuse_copies.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "common/timestamp.h"
#include "postgres/pg_text.h"

namespace bgm {
namespace {

// Timestamps travel as Postgres's own text ("2024-05-02 12:00:00.123", DateStyle ISO), the
// cheapest form for the server to produce, and are parsed here (WriteMillisColumn).
std::string Cost(const std::string& column) { return "round(" + column + ", 12)::text"; }

int64_t Int(const SourceRow& row, int col) {
  int64_t v = 0;
  const std::string_view t = row.Get(col);
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

// A timestamp column; a value the target type cannot hold fails the row, naming the column.
Status WriteMillisColumn(RowBinaryWriter& w, const ClickHouseDialect& d, const SourceRow& row,
                         int col) {
  Result<int64_t> millis = ParseTimestampMillis(row.Get(col));
  if (!millis.ok()) return millis.status().WithContext("column " + std::string(row.Name(col)));
  return WriteTimestamp(w, d, *millis, row.Name(col), row.Get(col));
}

Status WriteNullableMillis(RowBinaryWriter& w, const ClickHouseDialect& d, const SourceRow& row,
                           int col) {
  if (row.IsNull(col)) {
    w.WriteNull();
    return Status::Ok();
  }
  w.WriteNotNull();
  return WriteMillisColumn(w, d, row, col);
}

void WriteNullableString(RowBinaryWriter& w, const SourceRow& row, int col) {
  if (row.IsNull(col)) {
    w.WriteNull();
  } else {
    w.WriteNotNull();
    w.WriteString(row.Get(col));
  }
}

// A Map(String, V) or, on servers without Map, the Nested(key, value) stand-in: a count and
// key/value pairs, or all keys then all values.
template <typename K, typename V, typename WriteValue>
void WriteMap(RowBinaryWriter& w, const ClickHouseDialect& d,
              const std::vector<std::pair<K, V>>& pairs, WriteValue write_value) {
  w.WriteVarUInt(pairs.size());
  if (d.modern()) {
    for (const auto& [k, v] : pairs) {
      w.WriteString(k);
      write_value(v);
    }
    return;
  }
  for (const auto& kv : pairs) w.WriteString(kv.first);
  w.WriteVarUInt(pairs.size());
  for (const auto& kv : pairs) write_value(kv.second);
}

std::string MapColumns(const ClickHouseDialect& d, const std::string& name) {
  return d.modern() ? name : name + ".key, " + name + ".value";
}

Status WriteMetadata(RowBinaryWriter& w, const ClickHouseDialect& d, const SourceRow& row,
                     int col) {
  std::vector<std::pair<std::string, std::string>> pairs;
  BGM_RETURN_IF_ERROR(FlattenMetadata(
      row.IsNull(col) ? std::nullopt : std::optional<std::string_view>(row.Get(col)), &pairs));
  WriteMap(w, d, pairs, [&w](const std::string& v) { w.WriteString(v); });
  return Status::Ok();
}

// Cost maps: the non-NULL ones of (input, output, total), as Decimal64(12).
Status WriteCostMap(RowBinaryWriter& w, const ClickHouseDialect& d, const SourceRow& row,
                    int first_col) {
  static const char* kKeys[] = {"input", "output", "total"};
  std::vector<std::pair<const char*, int64_t>> pairs;
  for (int i = 0; i < 3; ++i) {
    if (row.IsNull(first_col + i)) continue;
    Result<int64_t> v = ParseDecimal64(row.Get(first_col + i), 12);
    if (!v.ok()) return v.status().WithContext(std::string(kKeys[i]) + " cost");
    pairs.emplace_back(kKeys[i], *v);
  }
  WriteMap(w, d, pairs, [&w](int64_t v) { w.WriteInt64(v); });
  return Status::Ok();
}

// The columns every table ends with: created_at, updated_at, event_ts (the row's own time, so a
// replayed row is identical) and is_deleted.
Status WriteRowTail(RowBinaryWriter& w, const ClickHouseDialect& d, const SourceRow& row,
                    int created_col, int updated_col, int event_col) {
  BGM_RETURN_IF_ERROR(WriteMillisColumn(w, d, row, created_col));
  BGM_RETURN_IF_ERROR(WriteMillisColumn(w, d, row, updated_col));
  BGM_RETURN_IF_ERROR(WriteMillisColumn(w, d, row, event_col));
  w.WriteUInt8(0);
  return Status::Ok();
}

}  // namespace

Status FlattenMetadata(std::optional<std::string_view> json,
                       std::vector<std::pair<std::string, std::string>>* out) {
  out->clear();
  if (!json) return Status::Ok();
  nlohmann::json v = nlohmann::json::parse(*json, nullptr, /*allow_exceptions=*/false);
  if (v.is_discarded()) return InvalidArgument("metadata is not valid JSON");
  auto text = [](const nlohmann::json& x) {
    return x.is_string() ? x.get<std::string>()
                         : x.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  if (v.is_object()) {
    out->reserve(v.size());
    for (auto it = v.begin(); it != v.end(); ++it) out->emplace_back(it.key(), text(it.value()));
  } else if (!v.is_null()) {
    out->emplace_back("metadata", text(v));
  }
  return Status::Ok();
}

TableMapping TracesMapping() {
  TableMapping m;
  m.source_table = "traces";
  m.target_table = "traces";
  m.from_clause = "traces s";
  m.cursor_columns = {"created_at", "timestamp"};
  m.select_list = {
      "s.id",      "s.\"timestamp\"", "s.name",       "s.user_id",   "s.metadata::text",
      "s.release", "s.version",       "s.project_id", "s.public",    "s.bookmarked",
      "s.tags",    "s.session_id",    "s.created_at", "s.updated_at"};
  m.blob_columns = {"input", "output"};
  m.insert_columns = [](const ClickHouseDialect& d) {
    return "id, timestamp, name, user_id, " + MapColumns(d, "metadata") +
           ", release, version, project_id, public, bookmarked, tags, input, output, session_id, "
           "created_at, updated_at, event_ts, is_deleted";
  };
  m.encode = [](const SourceRow& row, const ClickHouseDialect& d, RowSink& sink) -> Status {
    RowBinaryWriter& w = sink.writer();
    w.WriteString(row.Get(0));
    BGM_RETURN_IF_ERROR(WriteMillisColumn(w, d, row, 1));
    w.WriteString(row.Get(2));  // NULL name -> ''
    WriteNullableString(w, row, 3);
    BGM_RETURN_IF_ERROR(WriteMetadata(w, d, row, 4));
    WriteNullableString(w, row, 5);
    WriteNullableString(w, row, 6);
    w.WriteString(row.Get(7));
    w.WriteBool(row.Get(8) == "t");
    w.WriteBool(row.Get(9) == "t");
    std::vector<std::string> tags;
    BGM_RETURN_IF_ERROR(ParsePgTextArray(row.Get(10), &tags).WithContext("tags"));
    std::vector<std::string_view> views(tags.begin(), tags.end());
    w.WriteArrayString(views);
    BGM_RETURN_IF_ERROR(sink.WriteBlob(0));
    BGM_RETURN_IF_ERROR(sink.WriteBlob(1));
    WriteNullableString(w, row, 11);
    return WriteRowTail(w, d, row, 12, 13, 1);
  };
  return m;
}

TableMapping ObservationsMapping() {
  TableMapping m;
  m.source_table = "observations";
  m.target_table = "observations";
  m.from_clause = "observations s LEFT JOIN prompts p ON p.id = s.prompt_id";
  m.cursor_columns = {"created_at", "start_time"};
  m.select_list = {"s.id",                            // 0
                   "s.trace_id",                      // 1
                   "s.project_id",                    // 2
                   "s.type",                          // 3
                   "s.parent_observation_id",         // 4
                   "s.start_time",                    // 5
                   "s.end_time",                      // 6
                   "s.name",                          // 7
                   "s.metadata::text",                // 8
                   "s.level",                         // 9
                   "s.status_message",                // 10
                   "s.version",                       // 11
                   "s.model",                         // 12
                   "s.internal_model_id",             // 13
                   "s.model_parameters::text",        // 14
                   "s.prompt_tokens",                 // 15
                   "s.completion_tokens",             // 16
                   "s.total_tokens",                  // 17
                   Cost("s.input_cost"),              // 18
                   Cost("s.output_cost"),             // 19
                   Cost("s.total_cost"),              // 20
                   Cost("s.calculated_input_cost"),   // 21
                   Cost("s.calculated_output_cost"),  // 22
                   Cost("s.calculated_total_cost"),   // 23
                   "s.completion_start_time",         // 24
                   "s.prompt_id",                     // 25
                   "p.name",                          // 26
                   "p.version",                       // 27
                   "s.created_at",                    // 28
                   "s.updated_at"};                   // 29
  m.blob_columns = {"input", "output"};
  m.insert_columns = [](const ClickHouseDialect& d) {
    return "id, trace_id, project_id, type, parent_observation_id, start_time, end_time, name, " +
           MapColumns(d, "metadata") +
           ", level, status_message, version, input, output, provided_model_name, "
           "internal_model_id, model_parameters, " +
           MapColumns(d, "provided_usage_details") + ", " + MapColumns(d, "usage_details") + ", " +
           MapColumns(d, "provided_cost_details") + ", " + MapColumns(d, "cost_details") +
           ", total_cost, completion_start_time, prompt_id, prompt_name, prompt_version, "
           "created_at, updated_at, event_ts, is_deleted";
  };
  m.encode = [](const SourceRow& row, const ClickHouseDialect& d, RowSink& sink) -> Status {
    RowBinaryWriter& w = sink.writer();
    w.WriteString(row.Get(0));
    w.WriteString(row.Get(1));  // NULL trace_id -> ''
    w.WriteString(row.Get(2));
    w.WriteString(row.Get(3));
    WriteNullableString(w, row, 4);
    BGM_RETURN_IF_ERROR(WriteMillisColumn(w, d, row, 5));
    BGM_RETURN_IF_ERROR(WriteNullableMillis(w, d, row, 6));
    w.WriteString(row.Get(7));
    BGM_RETURN_IF_ERROR(WriteMetadata(w, d, row, 8));
    w.WriteString(row.Get(9));
    WriteNullableString(w, row, 10);
    WriteNullableString(w, row, 11);
    BGM_RETURN_IF_ERROR(sink.WriteBlob(0));
    BGM_RETURN_IF_ERROR(sink.WriteBlob(1));
    WriteNullableString(w, row, 12);
    WriteNullableString(w, row, 13);
    WriteNullableString(w, row, 14);
    static const char* kUsage[] = {"input", "output", "total"};
    std::vector<std::pair<const char*, uint64_t>> usage;
    for (int i = 0; i < 3; ++i) {
      const int64_t v = Int(row, 15 + i);
      if (!row.IsNull(15 + i) && v >= 0) usage.emplace_back(kUsage[i], static_cast<uint64_t>(v));
    }
    auto write_u64 = [&w](uint64_t v) { w.WriteUInt64(v); };
    WriteMap(w, d, usage, write_u64);                  // provided_usage_details
    WriteMap(w, d, usage, write_u64);                  // usage_details
    BGM_RETURN_IF_ERROR(WriteCostMap(w, d, row, 18));  // provided_cost_details
    BGM_RETURN_IF_ERROR(WriteCostMap(w, d, row, 21));  // cost_details
    if (row.IsNull(23)) {
      w.WriteNull();
    } else {
      w.WriteNotNull();
      BGM_RETURN_IF_ERROR(w.WriteDecimal64(row.Get(23), 12).WithContext("total cost"));
    }
    BGM_RETURN_IF_ERROR(WriteNullableMillis(w, d, row, 24));
    WriteNullableString(w, row, 25);
    WriteNullableString(w, row, 26);
    if (row.IsNull(27)) {
      w.WriteNull();
    } else {
      w.WriteNotNull();
      w.WriteUInt16(static_cast<uint16_t>(std::clamp<int64_t>(Int(row, 27), 0, 65535)));
    }
    return WriteRowTail(w, d, row, 28, 29, 5);
  };
  return m;
}

TableMapping ScoresMapping() {
  TableMapping m;
  m.source_table = "scores";
  m.target_table = "scores";
  m.from_clause = "scores s";
  m.cursor_columns = {"created_at", "timestamp"};
  m.select_list = {
      "s.id",        "s.\"timestamp\"", "s.project_id",   "s.trace_id", "s.observation_id",
      "s.name",      "s.value",         "s.source",       "s.comment",  "s.author_user_id",
      "s.config_id", "s.data_type",     "s.string_value", "s.queue_id", "s.created_at",
      "s.updated_at"};
  m.insert_columns = [](const ClickHouseDialect&) {
    return std::string(
        "id, timestamp, project_id, trace_id, observation_id, name, value, source, comment, "
        "author_user_id, config_id, data_type, string_value, queue_id, created_at, updated_at, "
        "event_ts, is_deleted");
  };
  m.encode = [](const SourceRow& row, const ClickHouseDialect& d, RowSink& sink) -> Status {
    RowBinaryWriter& w = sink.writer();
    w.WriteString(row.Get(0));
    BGM_RETURN_IF_ERROR(WriteMillisColumn(w, d, row, 1));
    w.WriteString(row.Get(2));
    w.WriteString(row.Get(3));
    WriteNullableString(w, row, 4);
    w.WriteString(row.Get(5));
    double value = 0;
    if (!row.IsNull(6)) {
      const std::string_view t = row.Get(6);
      auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
      if (ec != std::errc()) return InvalidArgument("score value '" + std::string(t) + "'");
    }
    w.WriteFloat64(value);
    w.WriteString(row.Get(7));
    WriteNullableString(w, row, 8);
    WriteNullableString(w, row, 9);
    WriteNullableString(w, row, 10);
    w.WriteString(row.Get(11));
    WriteNullableString(w, row, 12);
    WriteNullableString(w, row, 13);
    return WriteRowTail(w, d, row, 14, 15, 1);
  };
  return m;
}

}  // namespace bgm
