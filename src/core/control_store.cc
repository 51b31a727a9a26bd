#include "core/control_store.h"

#include "core/throttle.h"

namespace bgm {

const char* MigrationStatusName(MigrationStatus s) {
  switch (s) {
    case MigrationStatus::kPending:
      return "pending";
    case MigrationStatus::kRunning:
      return "running";
    case MigrationStatus::kWaiting:
      return "waiting";
    case MigrationStatus::kPaused:
      return "paused";
    case MigrationStatus::kFinished:
      return "finished";
    case MigrationStatus::kFailed:
      return "failed";
    case MigrationStatus::kBlocked:
      return "blocked";
    case MigrationStatus::kGated:
      return "gated";
    case MigrationStatus::kUnknown:
      return "unknown";
    case MigrationStatus::kSkipped:
      return "skipped";
    case MigrationStatus::kCancelled:
      return "cancelled";
    case MigrationStatus::kThrottled:
      return "throttled";
  }
  return "unknown";
}

namespace {
nlohmann::json Opt(const std::optional<std::string>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
}  // namespace

nlohmann::json MigrationRow::ToJson() const {
  return {
      {"id", id},
      {"name", name},
      {"script", script},
      {"status", MigrationStatusName(status)},
      {"args", args},
      {"state", state},
      {"rows_processed", rows_processed},
      {"rows_total_estimate",
       rows_total_estimate ? nlohmann::json(*rows_total_estimate) : nlohmann::json(nullptr)},
      {"attempts", attempts},
      {"worker_id", Opt(worker_id)},
      {"locked_at", Opt(locked_at)},
      {"created_at", Opt(created_at)},
      {"started_at", Opt(started_at)},
      {"paused_at", Opt(paused_at)},
      {"finished_at", Opt(finished_at)},
      {"failed_at", Opt(failed_at)},
      {"failed_reason", Opt(failed_reason)},
      {"skipped_reason", Opt(skipped_reason)},
      {"cancelled_at", Opt(cancelled_at)},
      {"last_progress_at", Opt(last_progress_at)},
      {"waiting_reason", Opt(waiting_reason)},
      {"waiting_since", Opt(waiting_since)},
      {"next_attempt_at", Opt(next_attempt_at)},
      {"throttle", throttle ? *throttle : nlohmann::json(nullptr)},
      {"throttled_since", Opt(throttled_since)},
      {"blocked_by", Opt(blocked_by)},
      {"blocked_by_status", Opt(blocked_by_status)},
      {"waits_for", Opt(waits_for)},
      {"waits_for_status", Opt(waits_for_status)},
      {"gate", Opt(gate)},
      {"unknown_reason", Opt(unknown_reason)},
  };
}

nlohmann::json MigrationEvent::ToJson() const {
  return {{"id", id},     {"migration_name", migration_name}, {"at", at},
          {"kind", kind}, {"worker_id", Opt(worker_id)},      {"detail", detail}};
}

std::string ThrottleText(const MigrationRow& row) {
  if (!row.throttle || !row.throttle->is_object()) return "";
  const nlohmann::json& t = *row.throttle;
  ThrottleReading r;
  r.what = t.value("what", t.value("signal", std::string("a health signal")));
  r.value = t.value("value", 0.0);
  r.threshold = t.value("threshold", 0.0);
  return r.ToString();
}

Status RefusedInState(const std::string& action, const MigrationRow& row, const std::string& hint) {
  return FailedPrecondition("cannot " + action + " background migration " + row.name + ": it is " +
                            MigrationStatusName(row.status) + "; " + hint);
}

}  // namespace bgm
