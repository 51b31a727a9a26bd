#include "migrations/backfill_observation_costs.h"

#include <chrono>

#include "common/clock.h"
#include "core/args.h"
#include "postgres/pg_connection.h"

namespace bgm {
namespace {

constexpr int64_t kDefaultBatchSize = 1000;

// One batch: selects the next `$3` observations after the cursor ($1, $2), prices them and
// returns (rows in batch, rows priced, last start_time, last id).
constexpr const char* kBatchSql = R"sql(
WITH batch AS (
  SELECT id, start_time FROM observations
  WHERE (start_time, id) > ($1::timestamp, $2::text)
  ORDER BY start_time, id
  LIMIT $3
),
priced AS (
  SELECT o.id, m.id AS model_id, m.input_price, m.output_price, m.total_price
  FROM batch b
  JOIN observations o ON o.id = b.id
  JOIN LATERAL (
    SELECT id, input_price, output_price, total_price FROM models m
    WHERE (m.project_id = o.project_id OR m.project_id IS NULL)
      AND o.model IS NOT NULL AND o.model ~ m.match_pattern
      AND (m.start_date IS NULL OR m.start_date <= o.start_time)
      AND m.unit = COALESCE(o.unit, 'TOKENS')
    ORDER BY m.project_id NULLS LAST, m.start_date DESC NULLS LAST, m.id
    LIMIT 1) m ON true
),
upd AS (
  UPDATE observations o
  SET internal_model_id = p.model_id,
      calculated_input_cost = COALESCE(o.input_cost, GREATEST(o.prompt_tokens, 0) * p.input_price),
      calculated_output_cost =
        COALESCE(o.output_cost, GREATEST(o.completion_tokens, 0) * p.output_price),
      calculated_total_cost = COALESCE(
        o.total_cost,
        CASE WHEN p.total_price IS NOT NULL AND p.input_price IS NULL AND p.output_price IS NULL
             THEN GREATEST(o.total_tokens, 0) * p.total_price
             ELSE COALESCE(GREATEST(o.prompt_tokens, 0) * p.input_price, 0)
                + COALESCE(GREATEST(o.completion_tokens, 0) * p.output_price, 0) END)
  FROM priced p
  WHERE o.id = p.id
  RETURNING 1
),
last AS (SELECT start_time, id FROM batch ORDER BY start_time DESC, id DESC LIMIT 1)
SELECT (SELECT count(*) FROM batch), (SELECT count(*) FROM upd),
       (SELECT to_char(start_time, 'YYYY-MM-DD HH24:MI:SS.US') FROM last),
       (SELECT id FROM last)
)sql";

class BackfillObservationCosts final : public BackgroundMigration {
 public:
  BackfillObservationCosts() { schema_.Int("batchSize", 1, 100000).Int("pauseMs", 0, 60000); }

  Status Validate(const nlohmann::json& args) const override { return schema_.Validate(args); }

  Status Run(MigrationContext& ctx) override {
    const int64_t batch_size = IntArg(ctx.args(), "batchSize", kDefaultBatchSize);
    const auto pause = std::chrono::milliseconds(IntArg(ctx.args(), "pauseMs", 0));

    std::string cursor_time = "-infinity";
    std::string cursor_id;
    if (ctx.state().contains("cursor")) {
      const nlohmann::json& c = ctx.state()["cursor"];
      if (!c.is_object() || !c.contains("start_time") || !c["start_time"].is_string() ||
          !c.contains("id") || !c["id"].is_string()) {
        return InvalidArgument("state.cursor is malformed (" + c.dump() +
                               "); retry with --from-start to begin again");
      }
      cursor_time = c["start_time"].get<std::string>();
      cursor_id = c["id"].get<std::string>();
    }

    Result<PgConnection> conn = PgConnection::Connect(ctx.env().database_url);
    if (!conn.ok()) return conn.status();
    Result<PgResult> total = conn->Exec("SELECT count(*) FROM observations");
    if (!total.ok()) return total.status().WithContext("counting observations");
    BGM_RETURN_IF_ERROR(ctx.ReportTotalEstimate(total->GetInt(0, 0)));

    SystemClock clock;
    while (!ctx.stop_requested()) {
      const auto started = std::chrono::steady_clock::now();
      Result<PgResult> r = conn->Exec(kBatchSql, {cursor_time, cursor_id, batch_size});
      if (!r.ok()) return r.status().WithContext("pricing a batch of observations");
      const int64_t rows = r->GetInt(0, 0);
      if (rows == 0) return Status::Ok();
      const nlohmann::json from = {{"start_time", cursor_time}, {"id", cursor_id}};
      cursor_time = std::string(r->Get(0, 2));
      cursor_id = std::string(r->Get(0, 3));
      const nlohmann::json to = {{"start_time", cursor_time}, {"id", cursor_id}};
      BatchRecord batch;
      batch.state = {{"cursor", to}};
      batch.rows = rows;
      batch.from = from;
      batch.to = to;
      batch.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::steady_clock::now() - started)
                              .count();
      BGM_RETURN_IF_ERROR(ctx.Checkpoint(batch));
      if (rows < batch_size) return Status::Ok();
      if (pause.count() > 0 && !clock.SleepFor(pause, ctx.stop_token())) break;
    }
    return Cancelled("stop requested");
  }

 private:
  ArgsSchema schema_;
};

}  // namespace

std::unique_ptr<BackgroundMigration> NewBackfillObservationCosts() {
  return std::make_unique<BackfillObservationCosts>();
}

}  // namespace bgm
