#include "testing/memory_control_store.h"

#include <algorithm>

namespace bgm::testing {
namespace {
std::string Stamp(Clock::TimePoint t) { return std::to_string(t.time_since_epoch().count()); }
Status NoSuch(const std::string& name) {
  return NotFound("no background migration named '" + name + "'");
}
void ClearWaiting(MigrationRow& row) {
  row.waiting_reason.reset();
  row.waiting_since.reset();
  row.next_attempt_at.reset();
}
// A new lease, an end or a release ends throttling too (a checkpoint does not).
void ClearWaitingAndThrottle(MigrationRow& row) {
  ClearWaiting(row);
  row.throttle.reset();
  row.throttled_since.reset();
}
Status Lost(const std::string& name, const std::string& worker) {
  return LeaseLost("worker " + worker + " no longer holds the lease of " + name);
}
}  // namespace

bool MemoryDatabase::LeaseLive(const Stored& s) const {
  return s.row.worker_id.has_value() && s.locked_at.has_value() &&
         *s.locked_at >= clock_.Now() - lease_;
}

MigrationRow MemoryDatabase::View(const Stored& s) const {
  MigrationRow row = s.row;
  row.lease_live = LeaseLive(s);
  row.locked_at = s.locked_at ? std::optional<std::string>(Stamp(*s.locked_at)) : std::nullopt;
  if (row.finished_at) {
    row.status = row.skipped_reason ? MigrationStatus::kSkipped : MigrationStatus::kFinished;
  } else if (row.failed_at) {
    row.status = MigrationStatus::kFailed;
  } else if (row.cancelled_at) {
    row.status = MigrationStatus::kCancelled;
  } else if (row.paused_at) {
    row.status = MigrationStatus::kPaused;
  } else if (row.lease_live) {
    row.status = row.waiting_reason ? MigrationStatus::kWaiting
                 : row.throttle     ? MigrationStatus::kThrottled
                                    : MigrationStatus::kRunning;
  } else {
    row.status = MigrationStatus::kPending;
  }
  return row;
}

void MemoryDatabase::AddEvent(const std::string& name, const std::string& kind,
                              const std::optional<std::string>& worker, nlohmann::json detail) {
  MigrationEvent e;
  e.id = static_cast<int64_t>(events_.size()) + 1;
  e.migration_name = name;
  e.at = Stamp(clock_.Now());
  e.kind = kind;
  e.worker_id = worker;
  e.detail = std::move(detail);
  events_.push_back(std::move(e));
}

MigrationRow MemoryDatabase::Row(const std::string& name) {
  std::lock_guard lock(mu_);
  return View(rows_.at(name));
}

std::vector<MigrationEvent> MemoryDatabase::AllEvents() {
  std::lock_guard lock(mu_);
  return events_;
}

void MemoryDatabase::Insert(const std::string& name, const std::string& script,
                            nlohmann::json args) {
  std::lock_guard lock(mu_);
  Stored s;
  s.row.name = name;
  s.row.script = script;
  s.row.args = std::move(args);
  rows_[name] = std::move(s);
}

void MemoryDatabase::SetChunks(const std::string& name, std::vector<Chunk> chunks) {
  std::lock_guard lock(mu_);
  std::sort(chunks.begin(), chunks.end(),
            [](const Chunk& a, const Chunk& b) { return a.chunk < b.chunk; });
  chunks_[name] = std::move(chunks);
}

Result<std::map<std::string, ChunkCounts>> MemoryControlStore::CountChunks() {
  std::lock_guard lock(db_.mu_);
  std::map<std::string, ChunkCounts> out;
  for (const auto& [name, chunks] : db_.chunks_) {
    if (chunks.empty()) continue;
    ChunkCounts& c = out[name];
    for (const Chunk& chunk : chunks) {
      if (chunk.status == "pending") ++c.pending;
      if (chunk.status == "running") ++c.running;
      if (chunk.status == "done") ++c.done;
      if (chunk.status == "failed") ++c.failed;
    }
  }
  return out;
}

Result<std::vector<Chunk>> MemoryControlStore::ListChunks(const std::string& name,
                                                          const ChunkFilter& filter) {
  std::lock_guard lock(db_.mu_);
  std::vector<Chunk> out;
  auto it = db_.chunks_.find(name);
  if (it == db_.chunks_.end()) return out;
  for (const Chunk& c : it->second) {
    if (static_cast<int>(out.size()) >= filter.limit) break;
    if (c.chunk <= filter.after) continue;
    if (!filter.statuses.empty() && std::find(filter.statuses.begin(), filter.statuses.end(),
                                              c.status) == filter.statuses.end()) {
      continue;
    }
    out.push_back(c);
  }
  return out;
}

Result<bool> MemoryControlStore::Register(const std::string& name, const std::string& script) {
  std::lock_guard lock(db_.mu_);
  if (db_.rows_.count(name)) return false;
  MemoryDatabase::Stored s;
  s.row.name = name;
  s.row.script = script;
  db_.rows_[name] = std::move(s);
  db_.AddEvent(name, "registered", std::nullopt, nlohmann::json::object());
  return true;
}

Result<std::vector<MigrationRow>> MemoryControlStore::List() {
  std::lock_guard lock(db_.mu_);
  std::vector<MigrationRow> out;
  for (const auto& [name, s] : db_.rows_) out.push_back(db_.View(s));
  return out;
}

Result<MigrationRow> MemoryControlStore::Get(const std::string& name) {
  std::lock_guard lock(db_.mu_);
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end()) return NoSuch(name);
  return db_.View(it->second);
}

Result<std::vector<MigrationEvent>> MemoryControlStore::Events(const std::string& name, int limit) {
  std::lock_guard lock(db_.mu_);
  std::vector<MigrationEvent> out;
  for (auto it = db_.events_.rbegin(); it != db_.events_.rend() && limit > 0; ++it) {
    if (it->migration_name == name) {
      out.push_back(*it);
      --limit;
    }
  }
  return out;
}

Result<std::vector<MigrationEvent>> MemoryControlStore::AllEvents(const EventFilter& filter) {
  std::lock_guard lock(db_.mu_);
  std::vector<MigrationEvent> out;
  for (auto it = db_.events_.rbegin();
       it != db_.events_.rend() && static_cast<int>(out.size()) < filter.limit; ++it) {
    if (!filter.migration.empty() && it->migration_name != filter.migration) continue;
    if (!filter.kinds.empty() &&
        std::find(filter.kinds.begin(), filter.kinds.end(), it->kind) == filter.kinds.end()) {
      continue;
    }
    if (filter.before > 0 && it->id >= filter.before) continue;
    out.push_back(*it);
  }
  return out;
}

Result<std::optional<Lease>> MemoryControlStore::TryAcquire(const std::string& name,
                                                            const std::string& worker_id) {
  std::lock_guard lock(db_.mu_);
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end()) return std::optional<Lease>();
  MemoryDatabase::Stored& s = it->second;
  if (s.row.finished_at || s.row.failed_at || s.row.paused_at || s.row.cancelled_at ||
      db_.LeaseLive(s)) {
    return std::optional<Lease>();
  }
  s.row.worker_id = worker_id;
  s.locked_at = db_.clock_.Now();
  ClearWaitingAndThrottle(s.row);
  if (!s.row.started_at) s.row.started_at = Stamp(db_.clock_.Now());
  s.row.attempts++;
  db_.AddEvent(name, "acquired", worker_id, {{"attempt", s.row.attempts}});
  return std::optional<Lease>(
      Lease{name, s.row.script, s.row.args, s.row.state, s.row.attempts, std::nullopt});
}

MemoryDatabase::Stored* MemoryControlStore::Fenced(const std::string& name,
                                                   const std::string& worker_id) {
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end() || it->second.row.worker_id != worker_id) return nullptr;
  return &it->second;
}

Result<Fence> MemoryControlStore::Heartbeat(const std::string& name, const std::string& worker_id) {
  std::lock_guard lock(db_.mu_);
  MemoryDatabase::Stored* s = Fenced(name, worker_id);
  if (s == nullptr) return Lost(name, worker_id);
  s->locked_at = db_.clock_.Now();
  db_.heartbeats_++;
  return Fence{s->row.paused_at.has_value() || s->row.cancelled_at.has_value()};
}

Result<Fence> MemoryControlStore::Checkpoint(const std::string& name, const std::string& worker_id,
                                             const BatchRecord& batch) {
  std::lock_guard lock(db_.mu_);
  MemoryDatabase::Stored* s = Fenced(name, worker_id);
  if (s == nullptr) return Lost(name, worker_id);
  ClearWaiting(s->row);
  s->row.state = batch.state;
  s->row.rows_processed += batch.rows;
  s->row.last_progress_at = Stamp(db_.clock_.Now());
  s->locked_at = db_.clock_.Now();
  db_.AddEvent(name, "batch", worker_id,
               {{"from", batch.from}, {"to", batch.to}, {"rows", batch.rows}});
  return Fence{s->row.paused_at.has_value() || s->row.cancelled_at.has_value()};
}

Status MemoryControlStore::SetTotalEstimate(const std::string& name, const std::string& worker_id,
                                            int64_t rows) {
  std::lock_guard lock(db_.mu_);
  MemoryDatabase::Stored* s = Fenced(name, worker_id);
  if (s == nullptr) return Lost(name, worker_id);
  s->row.rows_total_estimate = rows;
  return Status::Ok();
}

Status MemoryControlStore::Finish(const std::string& name, const std::string& worker_id) {
  std::lock_guard lock(db_.mu_);
  MemoryDatabase::Stored* s = Fenced(name, worker_id);
  if (s == nullptr) return Lost(name, worker_id);
  ClearWaitingAndThrottle(s->row);
  s->row.finished_at = Stamp(db_.clock_.Now());
  s->row.worker_id.reset();
  s->locked_at.reset();
  db_.AddEvent(name, "finished", worker_id, nlohmann::json::object());
  return Status::Ok();
}

Status MemoryControlStore::Fail(const std::string& name, const std::string& worker_id,
                                const std::string& reason) {
  std::lock_guard lock(db_.mu_);
  MemoryDatabase::Stored* s = Fenced(name, worker_id);
  if (s == nullptr) return Lost(name, worker_id);
  ClearWaitingAndThrottle(s->row);
  s->row.failed_at = Stamp(db_.clock_.Now());
  s->row.failed_reason = reason;
  s->row.worker_id.reset();
  s->locked_at.reset();
  db_.AddEvent(name, "failed", worker_id, {{"reason", reason}});
  return Status::Ok();
}

Status MemoryControlStore::Release(const std::string& name, const std::string& worker_id,
                                   const std::string& reason) {
  std::lock_guard lock(db_.mu_);
  MemoryDatabase::Stored* s = Fenced(name, worker_id);
  if (s == nullptr) return Lost(name, worker_id);
  ClearWaitingAndThrottle(s->row);
  s->row.worker_id.reset();
  s->locked_at.reset();
  db_.AddEvent(name, "released", worker_id, {{"reason", reason}});
  return Status::Ok();
}

Status MemoryControlStore::SetThrottled(const std::string& name, const std::string& worker_id,
                                        const std::optional<nlohmann::json>& reading) {
  std::lock_guard lock(db_.mu_);
  MemoryDatabase::Stored* s = Fenced(name, worker_id);
  if (s == nullptr) return Lost(name, worker_id);
  const Clock::TimePoint now = db_.clock_.Now();
  if (reading && !s->row.throttle) {
    db_.AddEvent(name, "throttled", worker_id, *reading);
    s->row.throttled_since = Stamp(now);
  } else if (!reading && s->row.throttle) {
    db_.AddEvent(name, "throttle_ended", worker_id, *s->row.throttle);
    s->row.throttled_since.reset();
  }
  s->row.throttle = reading;
  return Status::Ok();
}

Status MemoryControlStore::SetWaiting(const std::string& name, const std::string& worker_id,
                                      const std::string& reason,
                                      std::chrono::milliseconds retry_in) {
  std::lock_guard lock(db_.mu_);
  MemoryDatabase::Stored* s = Fenced(name, worker_id);
  if (s == nullptr) return Lost(name, worker_id);
  const Clock::TimePoint now = db_.clock_.Now();
  s->row.waiting_reason = reason;
  if (!s->row.waiting_since) s->row.waiting_since = Stamp(now);
  s->row.next_attempt_at = Stamp(now + retry_in);
  s->locked_at = now;
  db_.AddEvent(
      name, "waiting", worker_id,
      {{"reason", reason}, {"retry_in_s", std::chrono::duration<double>(retry_in).count()}});
  return Status::Ok();
}

Status MemoryControlStore::RecordEvent(const std::string& name, const std::string& kind,
                                       const std::optional<std::string>& worker_id,
                                       const nlohmann::json& detail) {
  std::lock_guard lock(db_.mu_);
  db_.AddEvent(name, kind, worker_id, detail);
  return Status::Ok();
}

Status MemoryControlStore::Retry(const std::string& name, bool from_start,
                                 const std::string& actor) {
  std::lock_guard lock(db_.mu_);
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end()) return NoSuch(name);
  MigrationRow& row = it->second.row;
  if (!row.failed_at && !row.cancelled_at && !(from_start && row.finished_at)) {
    return RefusedInState("retry", db_.View(it->second),
                          "only a failed or cancelled migration can be retried (a finished or "
                          "skipped one with --from-start)");
  }
  row.failed_at.reset();
  row.failed_reason.reset();
  row.finished_at.reset();
  row.cancelled_at.reset();
  row.skipped_reason.reset();
  row.paused_at.reset();
  if (from_start) {
    row.state = nlohmann::json::object();
    row.rows_processed = 0;
  }
  db_.AddEvent(name, "retried", std::nullopt, {{"from_start", from_start}, {"by", actor}});
  return Status::Ok();
}

Status MemoryControlStore::Pause(const std::string& name, const std::string& actor) {
  std::lock_guard lock(db_.mu_);
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end()) return NoSuch(name);
  MigrationRow& row = it->second.row;
  if (row.finished_at || row.failed_at || row.paused_at || row.cancelled_at) {
    return RefusedInState("pause", db_.View(it->second),
                          "only a pending or running one can be paused");
  }
  row.paused_at = Stamp(db_.clock_.Now());
  db_.AddEvent(name, "paused", std::nullopt, {{"by", actor}});
  return Status::Ok();
}

Status MemoryControlStore::Resume(const std::string& name, const std::string& actor) {
  std::lock_guard lock(db_.mu_);
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end()) return NoSuch(name);
  MigrationRow& row = it->second.row;
  if (!row.paused_at || row.finished_at || row.failed_at || row.cancelled_at) {
    return RefusedInState("resume", db_.View(it->second),
                          "only a paused one can be resumed (a cancelled one is run again with "
                          "retry)");
  }
  row.paused_at.reset();
  db_.AddEvent(name, "resumed", std::nullopt, {{"by", actor}});
  return Status::Ok();
}

Status MemoryControlStore::Skip(const std::string& name, const std::string& reason,
                                const std::string& actor) {
  std::lock_guard lock(db_.mu_);
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end()) return NoSuch(name);
  MigrationRow& row = it->second.row;
  if (row.finished_at || db_.LeaseLive(it->second)) {
    return RefusedInState("skip", db_.View(it->second),
                          "a finished one needs no skip, and a running one must stop first: "
                          "cancel or pause it, then skip it once its worker has let it go");
  }
  row.finished_at = Stamp(db_.clock_.Now());
  row.skipped_reason = reason;
  row.failed_at.reset();
  row.failed_reason.reset();
  row.paused_at.reset();
  row.cancelled_at.reset();
  ClearWaitingAndThrottle(row);
  db_.AddEvent(name, "skipped", std::nullopt, {{"by", actor}, {"reason", reason}});
  return Status::Ok();
}

Status MemoryControlStore::Cancel(const std::string& name, const std::string& reason,
                                  const std::string& actor) {
  std::lock_guard lock(db_.mu_);
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end()) return NoSuch(name);
  MigrationRow& row = it->second.row;
  if (row.finished_at || row.failed_at || row.cancelled_at) {
    return RefusedInState("cancel", db_.View(it->second),
                          "only a pending, running or paused one can be cancelled");
  }
  row.cancelled_at = Stamp(db_.clock_.Now());
  db_.AddEvent(name, "cancelled", std::nullopt,
               {{"by", actor},
                {"reason", reason.empty() ? nlohmann::json(nullptr) : nlohmann::json(reason)}});
  return Status::Ok();
}

Status MemoryControlStore::SetArgs(const std::string& name, const nlohmann::json& args,
                                   const std::string& actor) {
  std::lock_guard lock(db_.mu_);
  auto it = db_.rows_.find(name);
  if (it == db_.rows_.end()) return NoSuch(name);
  db_.AddEvent(name, "args_changed", std::nullopt,
               {{"old", it->second.row.args}, {"new", args}, {"by", actor}});
  it->second.row.args = args;
  return Status::Ok();
}

}  // namespace bgm::testing
