// The health signals a worker reads before a migration's batches (core/throttle.h), built from
// the migration's HealthTargets and the thresholds in ThrottleSettings:
//
//   ClickHouse (when the migration writes ClickHouse tables):
//     clickhouse_parts   active parts in the busiest partition of each target table
//     clickhouse_merges  merges in progress on the server (system.merges)
//     clickhouse_memory  memory the server's queries and merges use (system.metrics
//                        MemoryTracking)
//   Postgres (when the migration reads or writes Postgres tables):
//     postgres_replication_lag_seconds  the largest replay_lag in pg_stat_replication
//     postgres_transaction_seconds      the oldest open transaction of the database, bgmigrate's
//                                       own sessions (application_name bgmigrate) left out
//     postgres_vacuums                  vacuums (auto or manual) running on its tables
//                                       (pg_stat_progress_vacuum)
//   probe:<name>  each of the migration file's [[throttle]] queries
//
// Each signal set has its own connections, opened at the first read.
#pragma once

#include <memory>
#include <vector>

#include "core/migration.h"
#include "core/throttle.h"

namespace bgm {

std::vector<std::unique_ptr<HealthSignal>> MakeHealthSignals(const ThrottleSettings& settings,
                                                             const MigrationEnv& env,
                                                             const HealthTargets& targets);

// A probe's answer as a number: one row with one number; NULL or no row: nullopt (the signal
// does not apply now). kInvalidArgument naming the probe otherwise.
Result<std::optional<double>> ProbeValue(const std::string& probe, std::string_view text);

}  // namespace bgm
