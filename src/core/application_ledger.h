// ApplicationLedger: an application's own background_migrations table (Langfuse's), found
// beside bgmigrate's control tables when those live in a schema of their own
// (BGMIGRATE_CONTROL_SCHEMA), and kept in step with bgmigrate's runs of the migrations that
// file an `application_script`: the application's row of the same name and script shows them
// running (its lock), finished (`finished_at`) or failed (`failed_at`, `failed_reason`) the way
// the application's UI reads them. Its rows of other migrations, and a row the application
// already finished, are never written; nothing of the table's shape is changed. Not
// thread-safe: use it on one connection at a time.
//
//   Result<std::optional<ApplicationLedger>> l = ApplicationLedger::Find(conn, listed);
//   if (l.ok() && *l) (*l)->Adopt(conn);
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"
#include "postgres/pg_connection.h"

namespace bgm {

class ApplicationLedger {
 public:
  // (migration name, application script) of each migration the application also lists.
  using Listed = std::vector<std::pair<std::string, std::string>>;

  // The application's table: a `background_migrations` in a schema of the search path other
  // than bgmigrate's (current_schema()) with Langfuse's columns (id, name, script, args, state,
  // finished_at, failed_at, failed_reason, worker_id, locked_at). nullopt when there is none or
  // nothing is listed.
  static Result<std::optional<ApplicationLedger>> Find(PgConnection& conn, Listed listed);

  const std::string& table() const { return table_; }  // e.g. "public.background_migrations"

  // At start-up, after bgmigrate's rows are registered: a listed migration without an
  // application row gets one (a new uuid id, its name and script, args and state {}); one whose
  // application row was finished by the application's own worker, and which bgmigrate has not
  // started, is marked skipped with that reason (event `skipped` by `application`); then every
  // listed row is brought in step (Sync, with bgmigrate's lease).
  Status Adopt(PgConnection& conn, double lease_seconds) const;

  // Writes bgmigrate's state of migration `name` (when listed) into the application's row:
  // finished or skipped: `finished_at` (failure and lock cleared); failed: `failed_at`,
  // `failed_reason`; running under a live lease: `worker_id` 'bgmigrate:<worker>' and
  // `locked_at` (renewed at a heartbeat when older than 10 s, so that the application's own
  // worker leaves the row alone); started but neither: failure and lock cleared. A row already
  // in step is not written; before bgmigrate starts a migration its row is left as the
  // application left it.
  Status Sync(PgConnection& conn, const std::string& name, double lease_seconds) const;

 private:
  ApplicationLedger(std::string table, Listed listed)
      : table_(std::move(table)), listed_(std::move(listed)) {}
  const std::string* ScriptOf(const std::string& name) const;

  std::string table_;
  Listed listed_;
};

}  // namespace bgm
