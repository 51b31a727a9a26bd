#include "core/upgrade_gate.h"

#include <algorithm>

#include "core/args.h"
#include "core/readiness.h"

namespace bgm {
namespace {

std::string Why(const MigrationRow& row) {
  switch (row.status) {
    case MigrationStatus::kRunning:
    case MigrationStatus::kWaiting:
    case MigrationStatus::kThrottled: {
      std::string out = std::string(MigrationStatusName(row.status)) + " on " +
                        row.worker_id.value_or("a worker") + ", " +
                        std::to_string(row.rows_processed) + " rows done";
      if (row.rows_total_estimate && *row.rows_total_estimate > 0) {
        const int64_t pct =
            std::min<int64_t>(99, row.rows_processed * 100 / *row.rows_total_estimate);
        out += " of about " + std::to_string(*row.rows_total_estimate) + " (" +
               std::to_string(pct) + "%)";
      }
      if (row.waiting_reason) out += "; waiting: " + *row.waiting_reason;
      if (row.status == MigrationStatus::kThrottled) out += "; throttled: " + ThrottleText(row);
      return out;
    }
    case MigrationStatus::kFailed:
      return "failed: " + row.failed_reason.value_or("(no reason)") +
             "; fix it, then `bgmigrate "
             "retry " +
             row.name + "`";
    case MigrationStatus::kPaused:
      return "paused; `bgmigrate resume " + row.name + "` lets workers continue";
    case MigrationStatus::kCancelled:
      return "cancelled at " + row.cancelled_at.value_or("?") + "; `bgmigrate retry " + row.name +
             "` runs it again from its cursor, or `bgmigrate skip " + row.name +
             " --reason ...` if its data was migrated another way";
    case MigrationStatus::kBlocked:
      return "blocked by " + row.blocked_by.value_or("?") + " (" +
             row.blocked_by_status.value_or("?") + ")";
    case MigrationStatus::kGated:
      return "gated: runs once " + row.gate.value_or("?") + "=true for the workers";
    case MigrationStatus::kPending:
      return row.waits_for ? "pending, waits for " + *row.waits_for + " (" +
                                 row.waits_for_status.value_or("?") + ")"
                           : "pending: no worker has taken it yet";
    case MigrationStatus::kUnknown:
      return "unknown: " + row.unknown_reason.value_or("");
    case MigrationStatus::kFinished:
    case MigrationStatus::kSkipped:
      break;
  }
  return "finished";
}

}  // namespace

Result<std::vector<GateEntry>> JudgeGate(std::vector<MigrationRow> rows, const Registry& registry,
                                         const std::vector<std::string>& names) {
  JudgeReadiness(rows, registry);
  std::vector<GateEntry> out;
  auto judge = [&](const MigrationRow& row) {
    out.push_back({row.name, IsDone(row.status), IsDone(row.status) ? "" : Why(row)});
  };
  if (names.empty()) {
    for (const MigrationRow& row : rows) {
      if (row.status != MigrationStatus::kUnknown && registry.Find(row.script) != nullptr) {
        judge(row);
      }
    }
    return out;
  }
  for (const std::string& name : names) {
    auto it = std::find_if(rows.begin(), rows.end(),
                           [&](const MigrationRow& r) { return r.name == name; });
    if (it == rows.end()) {
      return NotFound("no background migration named '" + TextExcerpt(name) +
                      "' is registered; `bgmigrate list` shows their names");
    }
    judge(*it);
  }
  return out;
}

}  // namespace bgm
