#include "web/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "common/timestamp.h"

namespace bgm {
namespace {

constexpr MigrationStatus kAllStatuses[] = {
    MigrationStatus::kPending, MigrationStatus::kRunning,   MigrationStatus::kWaiting,
    MigrationStatus::kPaused,  MigrationStatus::kFinished,  MigrationStatus::kFailed,
    MigrationStatus::kBlocked, MigrationStatus::kGated,     MigrationStatus::kUnknown,
    MigrationStatus::kSkipped, MigrationStatus::kCancelled, MigrationStatus::kThrottled};

void Header(std::string& out, const char* name, const char* type, const char* help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

// name{k1="v1",k2="v2"} value
void Sample(std::string& out, const char* name,
            std::initializer_list<std::pair<const char*, std::string_view>> labels,
            const std::string& value) {
  out += name;
  if (labels.size() > 0) {
    out += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out += ',';
      first = false;
      out += k;
      out += "=\"";
      out += EscapeLabelValue(v);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  out += value;
  out += '\n';
}

std::string Int(int64_t v) { return std::to_string(v); }

// Shortest text that reads back as the same double ("1730", "1729.5", "0.125").
std::string Double(double v) {
  if (std::abs(v) < 1e15 && std::trunc(v) == v) return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  for (int precision = 1; precision <= 17; ++precision) {
    char shorter[64];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string RenderMetrics(const std::vector<MigrationMetrics>& migrations, bool enabled) {
  std::string out;
  Header(out, "bgmigrate_background_migrations_enabled", "gauge",
         "1 when workers may run background migrations (LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS).");
  Sample(out, "bgmigrate_background_migrations_enabled", {}, enabled ? "1" : "0");

  Header(out, "bgmigrate_migration_status", "gauge",
         "1 for the current status of each background migration, 0 for the others.");
  for (const MigrationMetrics& m : migrations) {
    for (MigrationStatus s : kAllStatuses) {
      Sample(out, "bgmigrate_migration_status",
             {{"name", m.row.name}, {"status", MigrationStatusName(s)}},
             m.row.status == s ? "1" : "0");
    }
  }

  Header(out, "bgmigrate_rows_processed", "gauge",
         "Rows processed so far (reset by a retry from the start).");
  for (const MigrationMetrics& m : migrations) {
    Sample(out, "bgmigrate_rows_processed", {{"name", m.row.name}}, Int(m.row.rows_processed));
  }

  Header(out, "bgmigrate_rows_total_estimate", "gauge",
         "Estimated rows in total, when the migration has reported an estimate.");
  for (const MigrationMetrics& m : migrations) {
    if (!m.row.rows_total_estimate) continue;
    Sample(out, "bgmigrate_rows_total_estimate", {{"name", m.row.name}},
           Int(*m.row.rows_total_estimate));
  }

  Header(out, "bgmigrate_last_progress_timestamp_seconds", "gauge",
         "Unix time of the last committed batch.");
  for (const MigrationMetrics& m : migrations) {
    if (!m.row.last_progress_at) continue;
    const Result<int64_t> ms = ParseTimestampMillis(*m.row.last_progress_at);
    if (!ms.ok()) continue;
    Sample(out, "bgmigrate_last_progress_timestamp_seconds", {{"name", m.row.name}},
           Double(static_cast<double>(*ms) / 1000.0));
  }

  Header(out, "bgmigrate_lease_held", "gauge",
         "1 while the named worker holds a live lease on the migration.");
  for (const MigrationMetrics& m : migrations) {
    if (!m.row.lease_live || !m.row.worker_id) continue;
    Sample(out, "bgmigrate_lease_held", {{"name", m.row.name}, {"worker", *m.row.worker_id}}, "1");
  }

  Header(out, "bgmigrate_batch_duration_milliseconds", "gauge",
         "Duration of recent batches (the last one, and the mean and max of the recent ones).");
  for (const MigrationMetrics& m : migrations) {
    if (m.recent_batch_ms.empty()) continue;
    int64_t sum = 0;
    for (int64_t ms : m.recent_batch_ms) sum += ms;
    const double mean = static_cast<double>(sum) / static_cast<double>(m.recent_batch_ms.size());
    const int64_t max = *std::max_element(m.recent_batch_ms.begin(), m.recent_batch_ms.end());
    Sample(out, "bgmigrate_batch_duration_milliseconds", {{"name", m.row.name}, {"stat", "last"}},
           Int(m.recent_batch_ms.front()));
    Sample(out, "bgmigrate_batch_duration_milliseconds", {{"name", m.row.name}, {"stat", "mean"}},
           Double(mean));
    Sample(out, "bgmigrate_batch_duration_milliseconds", {{"name", m.row.name}, {"stat", "max"}},
           Int(max));
  }

  Header(out, "bgmigrate_chunks", "gauge",
         "Chunks (key ranges) of a migration split into chunks, by status.");
  for (const MigrationMetrics& m : migrations) {
    if (!m.chunks) continue;
    const std::pair<const char*, int> by_status[] = {{"pending", m.chunks->pending},
                                                     {"running", m.chunks->running},
                                                     {"done", m.chunks->done},
                                                     {"failed", m.chunks->failed}};
    for (const auto& [status, n] : by_status) {
      Sample(out, "bgmigrate_chunks", {{"name", m.row.name}, {"status", status}}, Int(n));
    }
  }
  return out;
}

}  // namespace bgm
