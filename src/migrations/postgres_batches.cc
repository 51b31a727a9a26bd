#include "migrations/postgres_batches.h"

#include <spdlog/spdlog.h>

#include <chrono>

#include "common/clock.h"
#include "core/args.h"
#include "postgres/pg_connection.h"
#include "postgres/pg_text.h"

namespace bgm {
namespace {

constexpr int64_t kDefaultBatchSize = 1000;
constexpr int64_t kDefaultStatementTimeoutMs = 60000;

std::string Join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : sep) + p;
  return out;
}

// "($1, $2)" for `n` parameters starting at `first`.
std::string Params(size_t first, size_t n) {
  std::vector<std::string> p;
  for (size_t i = 0; i < n; ++i) p.push_back("$" + std::to_string(first + i));
  return "(" + Join(p, ", ") + ")";
}

class PostgresBatches final : public BackgroundMigration {
 public:
  explicit PostgresBatches(MigrationFile file) : file_(std::move(file)) {
    MigrationFile with_kind_args = file_;
    with_kind_args.args = PostgresBatchArgs(file_);
    schema_ = with_kind_args.Schema();
    defaults_ = with_kind_args.Defaults();
    std::vector<std::string> quoted, desc;
    for (const std::string& k : file_.key) {
      quoted.push_back(QuoteIdent(k));
      // Qualified: a bare name would sort by the ::text output column of the same name
      // ("99" after "500").
      desc.push_back("s." + QuoteIdent(k) + " DESC");
    }
    key_ = "(" + Join(quoted, ", ") + ")";
    order_ = Join(quoted, ", ");
    order_desc_ = Join(desc, ", ");
    std::vector<std::string> as_text;
    for (const std::string& q : quoted) as_text.push_back(q + "::text");
    key_text_ = Join(as_text, ", ");
  }

  Status Validate(const nlohmann::json& args) const override { return schema_.Validate(args); }

  HealthTargets Health(const nlohmann::json&) const override {
    HealthTargets t;
    t.postgres_tables = {QuoteIdent(file_.table)};
    t.probes = file_.probes;
    return t;
  }

  Status Run(MigrationContext& ctx) override {
    nlohmann::json args = defaults_;
    for (const auto& [k, v] : ctx.args().items()) args[k] = v;
    const int64_t batch_size = IntArg(args, "batchSize", kDefaultBatchSize);
    const auto pause = std::chrono::milliseconds(IntArg(args, "pauseMs", 0));
    const int64_t timeout_ms = IntArg(args, "statementTimeoutMs", kDefaultStatementTimeoutMs);

    std::optional<std::vector<std::string>> cursor;
    if (ctx.state().contains("cursor")) {
      Result<std::vector<std::string>> c = CursorFrom(ctx.state()["cursor"]);
      if (!c.ok()) return c.status();
      cursor = std::move(*c);
    }

    Result<PgConnection> conn = PgConnection::Connect(ctx.env().database_url);
    if (!conn.ok()) return conn.status();
    BGM_RETURN_IF_ERROR(CheckPostgresBatchTable(*conn, file_).WithContext(file_.path));
    Result<PgResult> estimate = conn->Exec(
        "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class WHERE oid = to_regclass($1)",
        {QuoteIdent(file_.table)});
    if (!estimate.ok()) return estimate.status().WithContext("estimating the rows of the table");
    if (estimate->rows() == 1) BGM_RETURN_IF_ERROR(ctx.ReportTotalEstimate(estimate->GetInt(0, 0)));

    int64_t affected_total = 0;
    if (const auto a = ctx.state().find("affected");
        a != ctx.state().end() && a->is_number_integer()) {
      affected_total = a->get<int64_t>();
    }
    SystemClock clock;
    while (!ctx.stop_requested()) {
      BGM_RETURN_IF_ERROR(ctx.AwaitHealthy());
      const auto started = std::chrono::steady_clock::now();
      // The next batch's upper end: the last of the next batchSize keys after the cursor.
      std::vector<PgParam> params;
      if (cursor) params.assign(cursor->begin(), cursor->end());
      params.emplace_back(batch_size);
      const std::string after =
          cursor ? "WHERE " + key_ + " > " + Params(1, file_.key.size()) : std::string();
      const std::string next_sql = "WITH s AS MATERIALIZED (SELECT " + order_ + " FROM " +
                                   QuoteIdent(file_.table) + " " + after + " ORDER BY " + order_ +
                                   " LIMIT $" + std::to_string(params.size()) +
                                   ") SELECT (SELECT count(*) FROM s), l.* FROM (SELECT " +
                                   key_text_ + " FROM s ORDER BY " + order_desc_ + " LIMIT 1) l";
      Result<PgResult> next = conn->Exec(next_sql, params);
      if (!next.ok()) return next.status().WithContext("finding the next batch of " + file_.table);
      if (next->rows() == 0) return Status::Ok();
      const int64_t keys = next->GetInt(0, 0);
      std::vector<std::string> upper;
      for (size_t i = 0; i < file_.key.size(); ++i) {
        upper.emplace_back(next->Get(0, static_cast<int>(i + 1)));
      }

      Result<int64_t> affected = RunBatch(*conn, cursor, upper, timeout_ms);
      if (!affected.ok()) return affected.status();

      BatchRecord batch;
      batch.rows = keys;
      batch.from = cursor ? CursorJson(*cursor) : nlohmann::json(nullptr);
      batch.to = CursorJson(upper);
      affected_total += *affected;
      batch.state = {{"cursor", batch.to}, {"affected", affected_total}};
      batch.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
      BGM_RETURN_IF_ERROR(ctx.Checkpoint(batch));
      cursor = std::move(upper);
      if (keys < batch_size) return Status::Ok();
      if (pause.count() > 0 && !clock.SleepFor(pause, ctx.stop_token())) break;
    }
    return Cancelled("stop requested");
  }

 private:
  nlohmann::json CursorJson(const std::vector<std::string>& values) const {
    nlohmann::json out = nlohmann::json::object();
    for (size_t i = 0; i < values.size(); ++i) out[file_.key[i]] = values[i];
    return out;
  }

  Result<std::vector<std::string>> CursorFrom(const nlohmann::json& c) const {
    std::vector<std::string> out;
    for (const std::string& k : file_.key) {
      if (!c.is_object() || !c.contains(k) || !c[k].is_string()) {
        return InvalidArgument("the saved cursor " + JsonExcerpt(c) + " does not hold the key (" +
                               Join(file_.key, ", ") +
                               ") of this file; retry with --from-start to begin again");
      }
      out.push_back(c[k].get<std::string>());
    }
    return out;
  }

  // Runs the statement over (lower, upper] in one transaction; returns the rows it changed.
  Result<int64_t> RunBatch(PgConnection& conn, const std::optional<std::vector<std::string>>& lower,
                           const std::vector<std::string>& upper, int64_t timeout_ms) const {
    std::vector<PgParam> params;
    if (lower) params.assign(lower->begin(), lower->end());
    params.insert(params.end(), upper.begin(), upper.end());
    const std::string sql = PostgresBatchStatement(file_, lower.has_value());

    BGM_RETURN_IF_ERROR(conn.Run("BEGIN"));
    Status s =
        conn.Run("SELECT set_config('statement_timeout', $1, true)", {std::to_string(timeout_ms)});
    Result<PgResult> r = s.ok() ? conn.Exec(sql, params) : Result<PgResult>(s);
    if (!r.ok()) {
      (void)conn.Run("ROLLBACK");
      if (r.status().code() == StatusCode::kCancelled) {
        return FailedPrecondition("the statement of " + file_.path + " ran longer than " +
                                  "statementTimeoutMs=" + std::to_string(timeout_ms) +
                                  " on one batch; lower batchSize or raise statementTimeoutMs");
      }
      return r.status().WithContext("running the statement of " + file_.path + " on " +
                                    file_.table + " after " +
                                    (lower ? "(" + Join(*lower, ", ") + ")" : "the start"));
    }
    BGM_RETURN_IF_ERROR(conn.Run("COMMIT"));
    return r->affected();
  }

  const MigrationFile file_;
  ArgsSchema schema_;
  nlohmann::json defaults_;
  std::string key_;         // ("a", "b")
  std::string order_;       // "a", "b"
  std::string order_desc_;  // s."a" DESC, s."b" DESC
  std::string key_text_;    // "a"::text, "b"::text
};

}  // namespace

// The table exists, the key columns exist and are NOT NULL, and a unique index (no
// expressions, not partial) lies within them, so the key orders every row exactly once.
Status CheckPostgresBatchTable(PgConnection& conn, const MigrationFile& file_) {
  const std::string table = QuoteIdent(file_.table);
  const std::string keys = PgTextArrayLiteral(file_.key);
  Result<PgResult> r = conn.Exec(
      "SELECT to_regclass($1) IS NOT NULL, "
      "  ARRAY(SELECT k FROM unnest($2::text[]) k WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a "
      "    WHERE a.attrelid = to_regclass($1) AND a.attname = k AND a.attnum > 0 "
      "    AND NOT a.attisdropped))::text, "
      "  ARRAY(SELECT a.attname FROM pg_attribute a WHERE a.attrelid = to_regclass($1) "
      "    AND a.attname = ANY($2::text[]) AND NOT a.attnotnull)::text, "
      "  EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = to_regclass($1) AND i.indisunique "
      "    AND i.indpred IS NULL AND i.indexprs IS NULL AND ARRAY(SELECT a.attname::text "
      "    FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) "
      "    <@ $2::text[])",
      {table, keys});
  if (!r.ok()) return r.status().WithContext("reading the shape of table " + file_.table);
  const std::string where = "[postgres] ";
  if (!r->GetBool(0, 0)) {
    return InvalidArgument(where + "table " + file_.table +
                           " does not exist in DATABASE_URL's database; fix the table name");
  }
  if (r->Get(0, 1) != "{}") {
    return InvalidArgument(where + "key columns " + std::string(r->Get(0, 1)) +
                           " do not exist in " + file_.table);
  }
  if (r->Get(0, 2) != "{}") {
    return InvalidArgument(where + "key columns " + std::string(r->Get(0, 2)) + " of " +
                           file_.table +
                           " allow NULL, and rows with NULL keys would be skipped; use NOT NULL "
                           "columns");
  }
  if (!r->GetBool(0, 3)) {
    return InvalidArgument(where + "key (" + Join(file_.key, ", ") + ") is not unique in " +
                           file_.table +
                           ": no unique index lies within these columns, so rows sharing a key "
                           "could be skipped; add the primary key's columns (e.g. id) to key");
  }
  return Status::Ok();
}

std::string PostgresBatchStatement(const MigrationFile& file, bool with_lower) {
  std::vector<std::string> quoted;
  for (const std::string& k : file.key) quoted.push_back(QuoteIdent(k));
  const std::string key = "(" + Join(quoted, ", ") + ")";
  std::string range;
  if (with_lower) range = key + " > " + Params(1, file.key.size()) + " AND ";
  range += key + " <= " + Params(with_lower ? file.key.size() + 1 : 1, file.key.size());
  std::string sql = file.statement;
  sql.replace(sql.find("{batch}"), 7, "(" + range + ")");
  return sql;
}

std::vector<ArgSpec> PostgresBatchArgs(const MigrationFile& file) {
  return MergeArgSpecs(
      {
          {"batchSize", ArgSpec::Type::kInt, 1, 1000000, {}, kDefaultBatchSize},
          {"pauseMs", ArgSpec::Type::kInt, 0, 60000, {}, 0},
          {"statementTimeoutMs", ArgSpec::Type::kInt, 100, 3600000, {}, kDefaultStatementTimeoutMs},
      },
      file);
}

std::unique_ptr<BackgroundMigration> NewPostgresBatches(const MigrationFile& file) {
  return std::make_unique<PostgresBatches>(file);
}

}  // namespace bgm
