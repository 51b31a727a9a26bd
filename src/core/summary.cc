#include "core/summary.h"

namespace bgm {

nlohmann::json Summarize(const std::vector<MigrationRow>& rows, bool enabled) {
  nlohmann::json counts = {{"pending", 0},  {"running", 0}, {"waiting", 0},   {"paused", 0},
                           {"finished", 0}, {"failed", 0},  {"blocked", 0},   {"gated", 0},
                           {"unknown", 0},  {"skipped", 0}, {"cancelled", 0}, {"throttled", 0}};
  for (const MigrationRow& row : rows) {
    counts[MigrationStatusName(row.status)] =
        counts[MigrationStatusName(row.status)].get<int>() + 1;
  }
  // Rows of scripts this bgmigrate does not know (another tool's) are not its work; a skipped
  // one is done (a cancelled one is not: it keeps the status ACTIVE until retried or skipped).
  const bool all_finished = counts["finished"].get<size_t>() + counts["skipped"].get<size_t>() +
                                counts["unknown"].get<size_t>() ==
                            rows.size();
  const char* status = "FINISHED";
  if (!enabled && !all_finished) {
    status = "DISABLED";
  } else if (counts["failed"].get<int>() > 0) {
    status = "FAILED";
  } else if (!all_finished) {
    status = "ACTIVE";
  }
  return {{"status", status}, {"counts", counts}, {"total", rows.size()}};
}

}  // namespace bgm
