// The example application (examples/langfuse/) as the tests use it: its schema folder, loaded
// once, which TestDatabase applies and which every bgmigrate child process is pointed at
// (ChildProcess sets BGMIGRATE_SCHEMA_DIR unless the test's environment names one).
// Thread-safe (loaded under a function-local static).
#pragma once

#include <string>

#include "core/registry.h"
#include "schema/application_schema.h"

namespace bgm::testing {

// Absolute path of examples/langfuse/schema in the source tree.
std::string ExampleSchemaDir();

// That folder's files; aborts the test binary when they cannot be loaded.
const ApplicationSchema& ExampleSchema();

// Absolute path of examples/langfuse/migrations: the example application's background
// migrations (files), which every bgmigrate child process is pointed at unless the test names
// another folder.
std::string ExampleMigrationsDir();

// The registry a bgmigrate process runs with for the example application (built-ins plus its
// migration files); aborts the test binary when the files cannot be loaded.
const Registry& ExampleRegistry();

// The example application's migrations.
inline constexpr const char* kCopyTraces = "20241024_1730_migrate_traces_from_pg_to_ch";
inline constexpr const char* kCopyObservations = "20241024_1737_migrate_observations_from_pg_to_ch";
inline constexpr const char* kCopyScores = "20241024_1738_migrate_scores_from_pg_to_ch";
inline constexpr const char* kBackfillObservationCosts = "20241105_1200_backfill_observation_costs";

}  // namespace bgm::testing
