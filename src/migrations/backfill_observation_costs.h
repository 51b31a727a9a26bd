// 20241105_1200_backfill_observation_costs: a Postgres-only backfill that prices every
// observation from the `models` table (in the spirit of Langfuse's cost backfill).
//
// For each observation, the matching model is the one whose match_pattern (a regex) matches
// `model`, in the observation's project or global (project-specific wins), with the latest
// start_date not after start_time. It sets internal_model_id and calculated_{input,output,
// total}_cost; costs the user sent (input_cost, ...) win over computed ones; negative token
// counts count as 0. Batches follow a keyset cursor on (start_time, id) kept in `state`, so a
// restart resumes where it stopped and a replayed batch writes the same values.
//
// Args: batchSize (1..100000, default 1000), pauseMs (0..60000, default 0: a pause between
// batches that throttles the load on the database).
#pragma once

#include <memory>

#include "core/migration.h"

namespace bgm {

inline constexpr const char* kBackfillObservationCosts = "20241105_1200_backfill_observation_costs";

std::unique_ptr<BackgroundMigration> NewBackfillObservationCosts();

}  // namespace bgm
