// The checksums of migration files as their migrations adopted them
// (bgmigrate_migration_files). A file whose content changed after its migration started would
// run new SQL from an old cursor, so start-up refuses it, naming both checksums, until
// `retry --from-start` adopts the new content; a file changed before its migration started is
// adopted silently. Built-in migrations (no checksum) are not tracked.
#pragma once

#include "core/registry.h"
#include "postgres/pg_connection.h"

namespace bgm {

// Checks every file of `registry` against the recorded checksums, then (only when none was
// refused) records the new and silently changed ones. kFailedPrecondition listing every
// refused file, with nothing written.
Status AdoptFileChecksums(PgConnection& conn, const Registry& registry);

// Records `spec`'s current checksum (for `retry --from-start`). OK for a built-in.
Status AdoptFileChecksum(PgConnection& conn, const MigrationSpec& spec);

}  // namespace bgm
