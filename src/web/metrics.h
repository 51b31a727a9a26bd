// Prometheus metrics of the background migrations (GET /metrics), in the text exposition
// format 0.0.4. Rendering is a pure function of the rows and their recent batch durations, so
// it is tested without a server; ApiHandler gathers the inputs. Thread-safe.
//
//   std::string text = RenderMetrics(inputs, /*enabled=*/true);
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk_store.h"
#include "core/control_store.h"

namespace bgm {

inline constexpr const char* kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

struct MigrationMetrics {
  MigrationRow row;
  std::vector<int64_t> recent_batch_ms;  // durations of its most recent batches, newest first
  std::optional<ChunkCounts> chunks;     // set for a migration split into chunks
};

// Series (one line per migration unless said otherwise):
//   bgmigrate_background_migrations_enabled                     1 or 0 (one line)
//   bgmigrate_migration_status{name,status}                     1 for the current status, 0
//                                                               for the four others
//   bgmigrate_rows_processed{name}
//   bgmigrate_rows_total_estimate{name}                         only when estimated
//   bgmigrate_last_progress_timestamp_seconds{name}             only after a first batch
//   bgmigrate_lease_held{name,worker}                           1, only while a lease is live
//   bgmigrate_batch_duration_milliseconds{name,stat}            stat = last | mean | max over
//                                                               the recent batches, when any
//   bgmigrate_chunks{name,status}                               chunks by status (pending,
//                                                               running, done, failed), for a
//                                                               migration that has chunks
std::string RenderMetrics(const std::vector<MigrationMetrics>& migrations, bool enabled);

// A label value escaped for the text format: backslash, double quote and newline.
std::string EscapeLabelValue(std::string_view value);

}  // namespace bgm
