#include "core/file_checksums.h"

#include <string>
#include <vector>

namespace bgm {

Status AdoptFileChecksums(PgConnection& conn, const Registry& registry) {
  std::vector<const MigrationSpec*> adopt;
  std::string refused;
  for (const MigrationSpec& spec : registry.specs()) {
    if (spec.checksum.empty()) continue;
    // The recorded checksum, and whether the migration has begun (a batch, a finish, a failure).
    Result<PgResult> r = conn.Exec(
        "SELECT f.checksum, (b.started_at IS NOT NULL OR b.rows_processed > 0 OR "
        "b.finished_at IS NOT NULL OR b.failed_at IS NOT NULL) "
        "FROM bgmigrate_migration_files f LEFT JOIN background_migrations b ON b.name = f.name "
        "WHERE f.name = $1",
        {spec.name});
    if (!r.ok()) return r.status().WithContext("reading the checksum of " + spec.name);
    if (r->rows() == 1 && r->Get(0, 0) == spec.checksum) continue;
    if (r->rows() == 1 && r->GetBool(0, 1)) {
      refused += "\n  " + spec.source_path + ": changed after its migration started (checksum " +
                 std::string(r->Get(0, 0)) + " when adopted, " + spec.checksum +
                 " now); restore the file, or run `bgmigrate retry " + spec.name +
                 " --from-start` to run the new content from the beginning";
      continue;
    }
    adopt.push_back(&spec);
  }
  if (!refused.empty()) {
    return FailedPrecondition(
        "migration files changed under running migrations; nothing was "
        "registered or run:" +
        refused);
  }
  for (const MigrationSpec* spec : adopt) BGM_RETURN_IF_ERROR(AdoptFileChecksum(conn, *spec));
  return Status::Ok();
}

Status AdoptFileChecksum(PgConnection& conn, const MigrationSpec& spec) {
  if (spec.checksum.empty()) return Status::Ok();
  return conn
      .Run(
          "INSERT INTO bgmigrate_migration_files (name, checksum, path) VALUES ($1, $2, $3) "
          "ON CONFLICT (name) DO UPDATE SET checksum = EXCLUDED.checksum, path = EXCLUDED.path, "
          "adopted_at = now()",
          {spec.name, spec.checksum, spec.source_path})
      .WithContext("recording the checksum of " + spec.name);
}

}  // namespace bgm
