#include "core/readiness.h"

#include <map>
#include <set>
#include <string>

namespace bgm {
namespace {

using RowsByName = std::map<std::string, const MigrationRow*>;

const std::vector<std::string>& PrerequisitesOf(const MigrationRow& row, const Registry& registry) {
  static const std::vector<std::string> kNone;
  const MigrationSpec* spec = registry.Find(row.script);
  return spec ? spec->prerequisites : kNone;
}

// The first failed, paused or cancelled migration among the prerequisites of `row`, at any
// depth (a skipped one counts as finished).
const MigrationRow* FindBlocker(const MigrationRow& row, const RowsByName& by_name,
                                const Registry& registry, std::set<std::string>& seen) {
  if (!seen.insert(row.name).second) return nullptr;  // a cycle: refused at start-up
  for (const std::string& pre : PrerequisitesOf(row, registry)) {
    auto it = by_name.find(pre);
    if (it == by_name.end()) continue;  // not registered yet: waits, does not block
    const MigrationRow& p = *it->second;
    if (p.status == MigrationStatus::kFailed || p.status == MigrationStatus::kPaused ||
        p.status == MigrationStatus::kCancelled) {
      return &p;
    }
    if (IsDone(p.status)) continue;
    if (const MigrationRow* deeper = FindBlocker(p, by_name, registry, seen)) return deeper;
  }
  return nullptr;
}

}  // namespace

void JudgeReadiness(std::vector<MigrationRow>& rows, const Registry& registry) {
  // Judge against the statuses as stored, so the order of rows does not matter.
  const std::vector<MigrationRow> stored = rows;
  RowsByName by_name;
  for (const MigrationRow& row : stored) by_name[row.name] = &row;

  for (MigrationRow& row : rows) {
    if (row.status != MigrationStatus::kPending) continue;
    const MigrationSpec* spec = registry.Find(row.script);
    if (spec == nullptr) {
      row.status = MigrationStatus::kUnknown;
      row.unknown_reason = "its script '" + row.script +
                           "' is neither a built-in nor a migration file of this bgmigrate; it "
                           "is left as it is (restore its file to run it)";
      continue;
    }
    std::set<std::string> seen;
    if (const MigrationRow* blocker = FindBlocker(*by_name[row.name], by_name, registry, seen)) {
      row.status = MigrationStatus::kBlocked;
      row.blocked_by = blocker->name;
      row.blocked_by_status = MigrationStatusName(blocker->status);
      continue;
    }
    if (spec->gate && !spec->gate_open) {
      row.status = MigrationStatus::kGated;
      row.gate = spec->gate;
      continue;
    }
    for (const std::string& pre : PrerequisitesOf(row, registry)) {
      auto it = by_name.find(pre);
      if (it != by_name.end() && IsDone(it->second->status)) continue;
      row.waits_for = pre;
      row.waits_for_status =
          it == by_name.end() ? "not registered" : MigrationStatusName(it->second->status);
      break;
    }
  }
}

bool IsDone(MigrationStatus status) {
  return status == MigrationStatus::kFinished || status == MigrationStatus::kSkipped;
}

bool IsRunnable(const MigrationRow& row) {
  return row.status == MigrationStatus::kPending && !row.waits_for.has_value();
}

bool IsIdle(const std::vector<MigrationRow>& rows) {
  for (const MigrationRow& row : rows) {
    if (row.status == MigrationStatus::kPending || row.status == MigrationStatus::kRunning ||
        row.status == MigrationStatus::kWaiting || row.status == MigrationStatus::kThrottled) {
      return false;
    }
  }
  return true;
}

Status ValidatePrerequisites(const Registry& registry) {
  for (const MigrationSpec& spec : registry.specs()) {
    for (const std::string& pre : spec.prerequisites) {
      if (pre == spec.name) {
        return InvalidArgument("background migration " + spec.name +
                               " names itself as a prerequisite; remove it from its "
                               "prerequisites");
      }
      if (registry.Find(pre) == nullptr) {
        return InvalidArgument(
            "background migration " + spec.name + " has the prerequisite '" + pre +
            "', which is not a known background migration (known: " + registry.ScriptNames() +
            "); fix the name or add the missing migration");
      }
    }
  }
  // A cycle: depth-first walk with the path on a stack.
  enum class Mark { kNone, kOnPath, kDone };
  std::map<std::string, Mark> mark;
  std::vector<std::string> path;
  std::string cycle;
  auto visit = [&](auto&& self, const MigrationSpec& spec) -> bool {
    Mark& m = mark[spec.name];
    if (m == Mark::kDone) return false;
    if (m == Mark::kOnPath) {
      for (auto it = path.begin(); it != path.end(); ++it) {
        if (*it != spec.name) continue;
        for (; it != path.end(); ++it) cycle += *it + " -> ";
        break;
      }
      cycle += spec.name;
      return true;
    }
    m = Mark::kOnPath;
    path.push_back(spec.name);
    for (const std::string& pre : spec.prerequisites) {
      if (self(self, *registry.Find(pre))) return true;
    }
    path.pop_back();
    mark[spec.name] = Mark::kDone;
    return false;
  };
  for (const MigrationSpec& spec : registry.specs()) {
    if (visit(visit, spec)) {
      return InvalidArgument("background migration prerequisites form a cycle (" + cycle +
                             "): none of them could ever run; remove one of these "
                             "prerequisites");
    }
  }
  return Status::Ok();
}

}  // namespace bgm
