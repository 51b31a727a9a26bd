// The throughput and time-to-finish of a running background migration, estimated from its
// recent `batch` events (rows per batch and when each committed). Pure functions; thread-safe.
//
//   std::optional<double> rate = RowsPerSecond(BatchSamples(events), clock.Now());
//   std::optional<double> eta = EtaSeconds(row.rows_processed, row.rows_total_estimate, rate);
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "core/control_store.h"

namespace bgm {

// One committed batch.
struct BatchSample {
  Clock::TimePoint at;      // when its checkpoint was written
  int64_t rows = 0;         // detail.rows
  int64_t duration_ms = 0;  // detail.ms (0 when not recorded)
};

// The window the rate is measured over.
inline constexpr Clock::Duration kRateWindow = std::chrono::seconds(60);

// The `batch` events among `events` (any order) whose time parses and whose detail has an
// integer `rows`, oldest first.
std::vector<BatchSample> BatchSamples(const std::vector<MigrationEvent>& events);

// Rows per second over the batches committed within `window` before `now`:
//  - two or more: the rows of all but the oldest, divided by the time from the oldest to the
//    newest (the oldest one marks when the measured span starts);
//  - exactly one: its rows divided by its own duration, when that was recorded;
//  - otherwise (none, or a zero span): std::nullopt, "unknown".
// Batches stamped after `now` (clock skew between hosts) count as if stamped at `now`.
std::optional<double> RowsPerSecond(const std::vector<BatchSample>& samples, Clock::TimePoint now,
                                    Clock::Duration window = kRateWindow);

// The rate of one worker: the batches it committed within the window.
struct WorkerRate {
  std::string worker_id;
  std::optional<double> rows_per_second;  // RowsPerSecond of its batches alone
  int64_t rows = 0;                       // rows of its batches in the window
  int batches = 0;
};

// The `batch` events of `events` committed within `window` before `now`, grouped by the
// event's worker_id (the worker process whose lease recorded them; the threads of one process
// share it), ordered by worker_id; workers without a batch in the window are left out.
std::vector<WorkerRate> RatesByWorker(const std::vector<MigrationEvent>& events,
                                      Clock::TimePoint now, Clock::Duration window = kRateWindow);

// Seconds until `total` rows are processed at `rate`; std::nullopt when the total or the rate
// is unknown or the rate is not positive. 0 when processed already reached the estimate.
std::optional<double> EtaSeconds(int64_t processed, std::optional<int64_t> total,
                                 std::optional<double> rate);

}  // namespace bgm
