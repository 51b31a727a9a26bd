// Throttle: holds a migration's batches back while a health signal of its databases is at or
// above its threshold (too many parts in ClickHouse, a lagging replica, a long transaction, a
// vacuum on the source table, the migration's own probe), and lets them go on when every signal
// is below again. The signals are read at most every `check_interval`; while throttled, again
// every `wait_interval`. The lease is kept meanwhile (the manager's heartbeat renews it).
//
//   Throttle throttle(std::move(signals), settings, clock, reporter);
//   while (...) { BGM_RETURN_IF_ERROR(throttle.Await(stop)); /* one batch */ }
//
// Thread-safe: the threads of a chunked copy share one Throttle; one reads, the others wait
// for its answer.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"

namespace bgm {

// Every threshold, with its environment variable (core/config.cc). A threshold of 0 turns its
// signal off.
struct ThrottleSettings {
  std::chrono::milliseconds check_interval{std::chrono::seconds(5)};  // ..._CHECK_SECONDS
  std::chrono::milliseconds wait_interval{std::chrono::seconds(30)};  // ..._WAIT_SECONDS
  double clickhouse_parts = 100;  // BGMIGRATE_THROTTLE_CLICKHOUSE_PARTS
  double clickhouse_merges = 16;  // BGMIGRATE_THROTTLE_CLICKHOUSE_MERGES
  // BGMIGRATE_THROTTLE_CLICKHOUSE_MEMORY_BYTES; unset: 80% of the server's memory when the
  // server reports it (system.asynchronous_metrics OSMemoryTotal), off otherwise.
  std::optional<double> clickhouse_memory_bytes;
  double postgres_replication_lag_seconds =
      30;                                     // BGMIGRATE_THROTTLE_POSTGRES_REPLICATION_LAG_SECONDS
  double postgres_transaction_seconds = 600;  // BGMIGRATE_THROTTLE_POSTGRES_TRANSACTION_SECONDS
  double postgres_vacuums = 1;                // BGMIGRATE_THROTTLE_POSTGRES_VACUUMS
};

// A signal at or above its threshold, as shown in list, the API, the UI and events.
struct ThrottleReading {
  std::string signal;  // "clickhouse_parts", "postgres_transaction_seconds", "probe:<name>", ...
  std::string what;    // "active parts in the busiest partition of traces (ClickHouse)"
  double value = 0;
  double threshold = 0;

  // {"signal", "what", "value", "threshold"}
  nlohmann::json ToJson() const;
  // "active parts in the busiest partition of traces (ClickHouse) is 160, at or above 100"
  std::string ToString() const;
};

// One health signal. Read() returns the current value, or nullopt when it does not apply now
// (e.g. no replica is connected).
class HealthSignal {
 public:
  virtual ~HealthSignal() = default;
  virtual std::string signal() const = 0;
  virtual std::string what() const = 0;
  virtual double threshold() const = 0;
  virtual Result<std::optional<double>> Read() = 0;
};

class Throttle {
 public:
  // Called with the reading that holds batches back (when throttling starts and at each check
  // while it lasts) and with nullopt when it ends. Its failures are the reporter's to log.
  using Reporter = std::function<void(const std::optional<ThrottleReading>&)>;

  // `name`: the migration's, for the log.
  Throttle(std::string name, std::vector<std::unique_ptr<HealthSignal>> signals,
           const ThrottleSettings& settings, Clock& clock, Reporter reporter);

  // Returns OK when no signal is at or above its threshold (read now, or less than
  // check_interval ago); otherwise reports, waits wait_interval and reads again. kCancelled
  // when `stop` is requested while waiting; a signal's read error as it is (its context names
  // the signal).
  Status Await(std::stop_token stop);

  // Whether any signal is configured (a throttle without signals never waits).
  bool empty() const { return signals_.empty(); }

 private:
  // The first signal at or above its threshold, nullopt when none is.
  Result<std::optional<ThrottleReading>> ReadAll();

  const std::string name_;
  std::vector<std::unique_ptr<HealthSignal>> signals_;
  const ThrottleSettings settings_;
  Clock& clock_;
  Reporter reporter_;
  std::mutex mu_;
  std::optional<Clock::TimePoint> healthy_at_;  // when all signals were last read below
  std::optional<Clock::TimePoint> throttled_since_;
};

}  // namespace bgm
