#include "migrations/file_copy.h"

#include <memory>
#include <regex>
#include <sstream>

#include "clickhouse/column_type.h"

namespace bgm {
namespace {

const char* const kWhere = "[postgres_to_clickhouse] ";

std::string FirstLine(const std::string& s) { return s.substr(0, s.find('\n')); }

using Columns = std::vector<std::pair<std::string, std::string>>;  // name, type

// The output columns of `select` (name, Postgres type) from a temporary view in a transaction
// that is rolled back: nothing is kept.
Result<Columns> SelectColumns(PgConnection& conn, const std::string& select) {
  BGM_RETURN_IF_ERROR(conn.Run("BEGIN"));
  Status s = conn.Run("CREATE TEMP VIEW bgm_check_select AS " + select);
  Result<PgResult> r =
      s.ok() ? conn.Exec(
                   "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                   "WHERE attrelid = 'bgm_check_select'::regclass AND attnum > 0 "
                   "ORDER BY attnum")
             : Result<PgResult>(s);
  (void)conn.Run("ROLLBACK");
  if (!r.ok()) return Status(r.status().code(), FirstLine(r.status().message()));
  Columns out;
  for (int i = 0; i < r->rows(); ++i) out.emplace_back(r->Get(i, 0), r->Get(i, 1));
  return out;
}

struct TargetColumn {
  std::string name, type, default_kind;
};

// The target's columns, types and default kinds as ClickHouse reports them; empty when the
// table does not exist. `table` is a plain name (checked by the file's parser). Read as JSON:
// TabSeparated would escape the quotes inside types such as Enum8('a' = 1).
Result<std::vector<TargetColumn>> TargetColumns(ClickHouseClient& ch, const std::string& table) {
  Result<std::string> rows = ch.Query(
      "SELECT name, type, default_kind FROM system.columns WHERE database = currentDatabase() "
      "AND table = '" +
      table + "' FORMAT JSONEachRow");
  if (!rows.ok()) return rows.status();
  std::vector<TargetColumn> out;
  std::istringstream lines(*rows);
  for (std::string line; std::getline(lines, line);) {
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return Internal("system.columns returned a line that is not JSON: " + line.substr(0, 200));
    }
    out.push_back({j.value("name", ""), j.value("type", ""), j.value("default_kind", "")});
  }
  return out;
}

// Why a Postgres value of `pg` cannot be written as `ch`, or "" when it can.
std::string Incompatible(const std::string& pg, const ColumnType& ch) {
  const ColumnType* t = &ch;
  while (t->kind == ColumnType::Kind::kNullable || t->kind == ColumnType::Kind::kLowCardinality) {
    t = &t->args[0];
  }
  const bool array = pg.ends_with("[]");
  const bool json = pg == "json" || pg == "jsonb";
  const bool integer = pg == "smallint" || pg == "integer" || pg == "bigint";
  const bool number =
      integer || pg.starts_with("numeric") || pg == "real" || pg == "double precision";
  const bool time = pg.starts_with("timestamp") || pg == "date";
  const bool text = pg == "text" || pg.starts_with("character") || pg == "name";
  using K = ColumnType::Kind;
  switch (t->kind) {
    case K::kString:
    case K::kFixedString:
      return "";
    case K::kInt:  // a boolean writes 1 or 0, as ClickHouse stores flags in UInt8
      return number || pg == "boolean" ? ""
                                       : "a number needs a numeric source; cast it in the SELECT";
    case K::kFloat:
    case K::kDecimal:
      return number ? "" : "a number needs a numeric source; cast it in the SELECT";
    case K::kBool:
      return pg == "boolean" || integer ? "" : "Bool needs a boolean or an integer source";
    case K::kUuid:
      return pg == "uuid" || text ? "" : "UUID needs a uuid or text source";
    case K::kDate:
    case K::kDate32:
    case K::kDateTime:
    case K::kDateTime64:
      return time || text ? "" : "a date or time needs a timestamp, date or text source";
    case K::kEnum:
      return text ? "" : "an Enum needs a text source";
    case K::kArray:
      return array || json ? "" : "an Array needs a Postgres array or a JSON array source";
    case K::kMap:
      return json ? "" : "a Map needs a json or jsonb object source";
    case K::kNullable:
    case K::kLowCardinality:
      break;
  }
  return "";
}

bool IsTextual(const std::string& pg) {
  return pg == "text" || pg == "json" || pg == "jsonb" || pg.starts_with("character");
}

// A ClickHouse column name for the INSERT's list: as is when plain (a.b is a Nested
// subcolumn's name), else back-quoted.
std::string ClickHouseName(const std::string& name) {
  static const std::regex kPlain("[A-Za-z_][A-Za-z0-9_.]*");
  if (std::regex_match(name, kPlain)) return name;
  std::string out = "`";
  for (char c : name) {
    if (c == '`' || c == '\\') out += '\\';
    out += c;
  }
  return out + "`";
}

// How one output column is written.
struct OutColumn {
  enum class How { kValue, kBlob, kKeyValueArrays };
  std::string name;
  How how = How::kValue;
  ColumnType type;        // kValue, kBlob; the keys' Array for kKeyValueArrays
  ColumnType value_type;  // kKeyValueArrays: the values' Array
  int index = 0;          // select-list index (kValue, kKeyValueArrays) or blob index (kBlob)
};

Status EncodeRow(const std::vector<OutColumn>& columns, const SourceRow& row, RowSink& sink) {
  RowBinaryWriter& w = sink.writer();
  for (const OutColumn& c : columns) {
    Status s;
    if (c.how == OutColumn::How::kBlob) {
      s = sink.WriteBlob(c.index, c.type.nullable());
    } else {
      const std::optional<std::string_view> v =
          row.IsNull(c.index) ? std::nullopt : std::optional(row.Get(c.index));
      s = c.how == OutColumn::How::kValue ? EncodeText(w, c.type, v)
                                          : EncodeTextAsKeyValueArrays(w, c.type, c.value_type, v);
    }
    if (!s.ok()) return s.WithContext("column " + c.name);
  }
  return Status::Ok();
}

class FileCopy final : public BackgroundMigration {
 public:
  explicit FileCopy(const MigrationFile& file) : file_(file) {
    MigrationFile with_kind_args = file_;
    with_kind_args.args = FileCopyArgs(file_);
    delegate_ = NewPlannedCopy(with_kind_args.Schema(),
                               [this](ClickHouseClient& ch, const ClickHouseDialect&,
                                      const nlohmann::json&) -> Result<CopyPlan> {
                                 Result<PgConnection> pg = PgConnection::Connect(database_url_);
                                 if (!pg.ok()) return pg.status();
                                 FileCopyMatch match = MatchFileCopy(file_, *pg, &ch);
                                 if (match.problems.empty()) return std::move(match.plan);
                                 std::string message = "the file does not match the databases:";
                                 for (const FileProblem& p : match.problems) {
                                   message += "\n  " + p.ToString();
                                 }
                                 return InvalidArgument(message);
                               });
    defaults_ = with_kind_args.Defaults();
  }

  Status Validate(const nlohmann::json& args) const override {
    return delegate_->Validate(WithDefaults(args));
  }

  Status Run(MigrationContext& ctx) override {
    database_url_ = ctx.env().database_url;
    if (defaults_.empty()) return delegate_->Run(ctx);
    DefaultedContext defaulted(ctx, WithDefaults(ctx.args()));
    return delegate_->Run(defaulted);
  }

  bool SharesWork(const nlohmann::json& args) const override {
    return delegate_->SharesWork(WithDefaults(args));
  }

  // The tables the SELECT reads (from its plan), the target, and the file's probes.
  HealthTargets Health(const nlohmann::json&) const override {
    HealthTargets t;
    t.postgres_relations_of = file_.select;
    t.clickhouse_tables = {file_.target};
    t.probes = file_.probes;
    return t;
  }

  Result<bool> Help(MigrationContext& ctx) override {
    database_url_ = ctx.env().database_url;
    DefaultedContext defaulted(ctx, WithDefaults(ctx.args()));
    return delegate_->Help(defaulted);
  }

 private:
  // The context with the file's default args under the operator's.
  class DefaultedContext final : public MigrationContext {
   public:
    DefaultedContext(MigrationContext& inner, nlohmann::json args)
        : inner_(inner), args_(std::move(args)) {}
    const std::string& name() const override { return inner_.name(); }
    const nlohmann::json& args() const override { return args_; }
    const nlohmann::json& state() const override { return inner_.state(); }
    const MigrationEnv& env() const override { return inner_.env(); }
    std::stop_token stop_token() const override { return inner_.stop_token(); }
    Status ReportTotalEstimate(int64_t rows) override { return inner_.ReportTotalEstimate(rows); }
    Status Checkpoint(const BatchRecord& batch) override { return inner_.Checkpoint(batch); }
    std::string worker_id() const override { return inner_.worker_id(); }
    std::chrono::seconds lease() const override { return inner_.lease(); }
    Status AwaitHealthy() override { return inner_.AwaitHealthy(); }

   private:
    MigrationContext& inner_;
    nlohmann::json args_;
  };

  nlohmann::json WithDefaults(const nlohmann::json& args) const {
    nlohmann::json out = defaults_;
    for (const auto& [k, v] : args.items()) out[k] = v;
    return out;
  }

  MigrationFile file_;
  nlohmann::json defaults_;
  std::string database_url_;
  std::unique_ptr<BackgroundMigration> delegate_;
};

}  // namespace

FileCopyMatch MatchFileCopy(const MigrationFile& f, PgConnection& pg, ClickHouseClient* ch) {
  FileCopyMatch m;
  auto problem = [&m, &f](const char* field, const std::string& message) {
    m.problems.push_back({f.path, f.LineOf(field), std::string(kWhere) + message});
  };
  Result<Columns> select = SelectColumns(pg, f.select);
  if (!select.ok()) {
    problem("select", "select does not prepare: " + select.status().message());
    return m;
  }
  for (const std::string& k : f.key) {
    bool found = false;
    for (const auto& [name, type] : *select) found = found || name == k;
    if (!found) {
      problem("key",
              "key column " + k + " is not an output column of select; name it in the select list");
    }
  }
  if (ch == nullptr) return m;
  Result<std::vector<TargetColumn>> target = TargetColumns(*ch, f.target);
  if (!target.ok()) {
    problem("target", "reading the target's columns failed: " + target.status().message());
    return m;
  }
  if (target->empty()) {
    problem("target", "target table " + f.target +
                          " does not exist in ClickHouse (CLICKHOUSE_DB); create it with a fast "
                          "migration first, or fix the name");
    return m;
  }
  auto find = [&target](const std::string& name) -> const TargetColumn* {
    for (const TargetColumn& t : *target) {
      if (t.name == name) return &t;
    }
    return nullptr;
  };
  auto parse = [&problem](const TargetColumn& t) -> std::optional<ColumnType> {
    Result<ColumnType> parsed = ParseColumnType(t.type);
    if (parsed.ok()) return std::move(*parsed);
    problem("select", "column " + t.name + ": " + parsed.status().message());
    return std::nullopt;
  };
  std::vector<OutColumn> columns;
  std::vector<std::string> inserts;
  CopyPlan& plan = m.plan;
  for (const auto& [name, pg_type] : *select) {
    const std::string q = "q." + QuoteIdent(name);
    OutColumn c;
    c.name = name;
    const TargetColumn* t = find(name);
    const TargetColumn* keys = t ? nullptr : find(name + ".key");
    const TargetColumn* values = t ? nullptr : find(name + ".value");
    if (t == nullptr && (keys == nullptr || values == nullptr)) {
      problem("select", "select column " + name + " has no column of that name in " + f.target +
                            "; rename it (AS <target column>) or leave it out");
      continue;
    }
    if (t != nullptr && (t->default_kind == "MATERIALIZED" || t->default_kind == "ALIAS")) {
      problem("select", "column " + name + " of " + f.target + " is " + t->default_kind +
                            ", which ClickHouse computes itself; leave it out");
      continue;
    }
    if (t == nullptr) {  // the Nested stand-in of a Map
      std::optional<ColumnType> kt = parse(*keys), vt = parse(*values);
      if (!kt || !vt) continue;
      if (kt->kind != ColumnType::Kind::kArray || vt->kind != ColumnType::Kind::kArray) {
        problem("select", "select column " + name + " would fill " + keys->name + " and " +
                              values->name + " of " + f.target + ", which are not arrays (" +
                              keys->type + ", " + vt->name + ")");
        continue;
      }
      if (pg_type != "json" && pg_type != "jsonb") {
        problem("select", "column " + name + " is " + pg_type + " in Postgres and fills " +
                              keys->name + "/" + values->name + " in " + f.target +
                              ": a map needs a json or jsonb object source");
        continue;
      }
      c.how = OutColumn::How::kKeyValueArrays;
      c.type = std::move(*kt);
      c.value_type = std::move(*vt);
      c.index = static_cast<int>(plan.select_list.size());
      plan.select_list.push_back(q + "::text");
      inserts.push_back(ClickHouseName(keys->name) + ", " + ClickHouseName(values->name));
      columns.push_back(std::move(c));
      continue;
    }
    std::optional<ColumnType> type = parse(*t);
    if (!type) continue;
    if (const std::string why = Incompatible(pg_type, *type); !why.empty()) {
      problem("select", "column " + name + " is " + pg_type + " in Postgres and " + t->type +
                            " in ClickHouse: " + why);
      continue;
    }
    const ColumnType& inner = type->nullable() ? type->args[0] : *type;
    if (IsTextual(pg_type) && inner.kind == ColumnType::Kind::kString) {
      c.how = OutColumn::How::kBlob;
      c.index = static_cast<int>(plan.blob_list.size());
      plan.blob_list.push_back(q);
      plan.blob_json.push_back(pg_type == "json" || pg_type == "jsonb");
    } else {
      c.how = OutColumn::How::kValue;
      c.index = static_cast<int>(plan.select_list.size());
      // Arrays and JSON as text, so every value arrives in one form.
      plan.select_list.push_back(
          pg_type == "json" || pg_type == "jsonb" || pg_type.ends_with("[]") ? q + "::text" : q);
    }
    c.type = std::move(*type);
    inserts.push_back(ClickHouseName(t->name));
    columns.push_back(std::move(c));
  }
  if (!m.problems.empty()) return m;
  plan.source = f.name;
  plan.from = "(" + f.select + ") q";
  for (const std::string& k : f.key) {
    plan.key_list.push_back("q." + QuoteIdent(k));
    plan.key_names.push_back(k);
  }
  plan.target_table = f.target;
  for (const std::string& i : inserts) {
    plan.insert_columns += (plan.insert_columns.empty() ? "" : ", ") + i;
  }
  plan.encode = [columns = std::move(columns)](const SourceRow& row, RowSink& sink) {
    return EncodeRow(columns, row, sink);
  };
  return m;
}

std::vector<ArgSpec> FileCopyArgs(const MigrationFile& file) {
  return MergeArgSpecs(
      {
          {"batchSize", ArgSpec::Type::kInt, 1, 500000, {}, nullptr},
          {"maxBatchBytes", ArgSpec::Type::kInt, 1 << 20, double(int64_t{1} << 30), {}, nullptr},
          {"targetBatchSeconds", ArgSpec::Type::kNumber, 0.1, 60, {}, nullptr},
          {"pauseMs", ArgSpec::Type::kInt, 0, 60000, {}, nullptr},
          {"minDate", ArgSpec::Type::kTimestamp, 0, 0, {}, nullptr},
          {"maxDate", ArgSpec::Type::kTimestamp, 0, 0, {}, nullptr},
          // The copy runs as key ranges of about this many rows (table_copy.h); 0: one range.
          {"chunkRows", ArgSpec::Type::kInt, 0, 1e9, {}, nullptr},
          {"concurrency", ArgSpec::Type::kInt, 1, 16, {}, nullptr},
          {"chunkAttempts", ArgSpec::Type::kInt, 1, 100, {}, nullptr},
          {"maxWorkers", ArgSpec::Type::kInt, 1, 256, {}, nullptr},
      },
      file);
}

std::unique_ptr<BackgroundMigration> NewFileCopy(const MigrationFile& file) {
  return std::make_unique<FileCopy>(file);
}

}  // namespace bgm
