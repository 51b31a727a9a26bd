// Readiness: whether a pending background migration may run now, decided in one place for the
// worker loop, idle detection, the CLI, the API and the UI.
//
// A pending migration is
//  - runnable when every prerequisite has finished;
//  - waiting for its prerequisites when one of them is pending, running or waiting, and nothing
//    below it (at any depth) is failed or paused: it will run by itself;
//  - blocked when a prerequisite at any depth has failed or is paused: it will not run until an
//    operator retries or resumes that one (status `blocked`, naming it);
//  - gated when its gate variable is not "true" in this process (status `gated`, naming it);
//  - unknown when no built-in or file has its script (status `unknown`): never run or failed.
// Pure functions; thread-safe.
//
//   std::vector<MigrationRow> rows = store.List().value();
//   JudgeReadiness(rows, registry);       // pending rows become blocked or keep waits_for
//   bool idle = IsIdle(rows);
#pragma once

#include <vector>

#include "common/status.h"
#include "core/control_store.h"
#include "core/registry.h"

namespace bgm {

// Judges every pending row by its script's prerequisites (rows of other statuses are left as
// they are): a row whose script is unknown gets kUnknown and `unknown_reason`; a blocked row gets
// status kBlocked with `blocked_by` (the failed or paused migration) and `blocked_by_status`; a row
// that waits for an unfinished prerequisite keeps kPending and gets `waits_for` and
// `waits_for_status`; a gated one kGated and `gate`. Cycles (refused by ValidatePrerequisites at
// start-up) end the walk.
void JudgeReadiness(std::vector<MigrationRow>& rows, const Registry& registry);

// True for finished and skipped: what a prerequisite and a gate count as done.
bool IsDone(MigrationStatus status);

// True when `row` (after JudgeReadiness) may be leased now.
bool IsRunnable(const MigrationRow& row);

// True when nothing is left that will progress without an operator: no migration, by any
// worker, is pending, running or waiting (blocked, gated, unknown, paused, finished, skipped,
// failed and cancelled ones are not work). Call after JudgeReadiness.
bool IsIdle(const std::vector<MigrationRow>& rows);

// kInvalidArgument when a migration names a prerequisite that the registry does not know, or
// itself, or when prerequisites form a cycle; the message names the migrations and what to fix.
Status ValidatePrerequisites(const Registry& registry);

}  // namespace bgm
