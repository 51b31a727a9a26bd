#include "core/application_ledger.h"

#include "postgres/pg_text.h"

namespace bgm {

Result<std::optional<ApplicationLedger>> ApplicationLedger::Find(PgConnection& conn,
                                                                 Listed listed) {
  if (listed.empty()) return std::optional<ApplicationLedger>();
  Result<PgResult> r = conn.Exec(R"sql(
      SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname)
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relname = 'background_migrations' AND c.relkind IN ('r', 'p')
        AND n.nspname <> current_schema()
        AND n.nspname = ANY (current_schemas(false))
        AND (SELECT count(*) FROM pg_attribute a
             WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.attname IN ('id', 'name', 'script', 'args', 'state', 'finished_at',
                                 'failed_at', 'failed_reason', 'worker_id', 'locked_at')) = 10
      ORDER BY array_position(current_schemas(false), n.nspname::name)
      LIMIT 1)sql");
  if (!r.ok()) return r.status().WithContext("looking for the application's background_migrations");
  if (r->rows() == 0) return std::optional<ApplicationLedger>();
  return std::optional<ApplicationLedger>(
      ApplicationLedger(std::string(r->Get(0, 0)), std::move(listed)));
}

const std::string* ApplicationLedger::ScriptOf(const std::string& name) const {
  for (const auto& [n, script] : listed_) {
    if (n == name) return &script;
  }
  return nullptr;
}

Status ApplicationLedger::Adopt(PgConnection& conn, double lease_seconds) const {
  std::vector<std::string> name_list, script_list;
  for (const auto& [name, script] : listed_) {
    name_list.push_back(name);
    script_list.push_back(script);
  }
  const std::string names = PgTextArrayLiteral(name_list);
  const std::string scripts = PgTextArrayLiteral(script_list);
  // Rows for the listed migrations the application does not have (Langfuse's ids are text
  // without a default: every row is inserted with one).
  Status s = conn.Run("INSERT INTO " + table_ +
                          " (id, name, script, args, state) "
                          "SELECT gen_random_uuid()::text, l.name, l.script, '{}', '{}' "
                          "FROM unnest($1::text[], $2::text[]) AS l(name, script) "
                          "WHERE NOT EXISTS (SELECT 1 FROM " +
                          table_ + " a WHERE a.name = l.name)",
                      {names, scripts});
  if (!s.ok()) return s.WithContext("adding rows to " + table_);
  // What the application's own worker finished is not run again.
  s = conn.Run(R"sql(
      WITH done AS (
        SELECT a.name, a.finished_at FROM )sql" +
                   table_ + R"sql( a
        JOIN unnest($1::text[], $2::text[]) AS l(name, script)
          ON l.name = a.name AND l.script = a.script
        WHERE a.finished_at IS NOT NULL),
      upd AS (
        UPDATE background_migrations m
        SET finished_at = now(),
            skipped_reason = 'finished by the application''s own worker at ' ||
                             to_char(d.finished_at, 'YYYY-MM-DD HH24:MI:SS') || ' UTC'
        FROM done d
        WHERE m.name = d.name AND m.finished_at IS NULL AND m.started_at IS NULL
          AND m.worker_id IS NULL
        RETURNING m.name, m.skipped_reason)
      INSERT INTO background_migration_events (migration_name, kind, worker_id, detail)
      SELECT name, 'skipped', NULL, jsonb_build_object('by', 'application', 'reason',
                                                       skipped_reason)
      FROM upd)sql",
               {names, scripts});
  if (!s.ok()) return s.WithContext("reading what " + table_ + " finished");
  for (const auto& [name, script] : listed_) {
    BGM_RETURN_IF_ERROR(Sync(conn, name, lease_seconds));
  }
  return Status::Ok();
}

Status ApplicationLedger::Sync(PgConnection& conn, const std::string& name,
                               double lease_seconds) const {
  const std::string* script = ScriptOf(name);
  if (script == nullptr) return Status::Ok();
  // The application's columns are timestamp(3) without time zone holding UTC (Langfuse's).
  Status s = conn.Run(R"sql(
      WITH o AS (
        SELECT m.name,
               m.finished_at IS NOT NULL AS done,
               m.finished_at IS NULL AND m.failed_at IS NOT NULL AS failed,
               m.finished_at IS NULL AND m.worker_id IS NOT NULL
                 AND m.locked_at >= now() - make_interval(secs => $3) AS running,
               m.started_at IS NOT NULL AS started,
               (m.finished_at AT TIME ZONE 'UTC')::timestamp(3) AS finished_at,
               (m.failed_at AT TIME ZONE 'UTC')::timestamp(3) AS failed_at,
               m.failed_reason, m.worker_id
        FROM background_migrations m WHERE m.name = $1),
      n AS (
        SELECT name, done, running, started,
               CASE WHEN done THEN finished_at END AS finished_at,
               CASE WHEN failed THEN failed_at END AS failed_at,
               CASE WHEN failed THEN failed_reason END AS failed_reason,
               CASE WHEN running THEN 'bgmigrate:' || worker_id END AS worker_id
        FROM o)
      UPDATE )sql" + table_ +
                          R"sql( a
      SET finished_at = n.finished_at, failed_at = n.failed_at,
          failed_reason = n.failed_reason, worker_id = n.worker_id,
          locked_at = CASE WHEN n.running THEN (now() AT TIME ZONE 'UTC')::timestamp(3) END
      FROM n
      WHERE a.name = n.name AND a.script = $2 AND a.finished_at IS NULL
        AND (n.done OR n.started)
        AND (a.finished_at IS DISTINCT FROM n.finished_at
             OR a.failed_at IS DISTINCT FROM n.failed_at
             OR a.failed_reason IS DISTINCT FROM n.failed_reason
             OR a.worker_id IS DISTINCT FROM n.worker_id
             OR (NOT n.running AND a.locked_at IS NOT NULL)
             OR (n.running AND (a.locked_at IS NULL OR a.locked_at <
                                (now() AT TIME ZONE 'UTC') - interval '10 seconds'))))sql",
                      {name, *script, lease_seconds});
  return s.ok() ? s : s.WithContext("writing " + name + "'s state into " + table_);
}

}  // namespace bgm
