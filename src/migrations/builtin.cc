// The one list of built-in background migrations. Add a new one here (see
// docs/writing-a-migration.md); names are timestamp-prefixed so name order is run order.
#include "core/registry.h"
#include "migrations/backfill_observation_costs.h"
#include "migrations/langfuse_copies.h"

namespace bgm {

const Registry& BuiltinRegistry() {
  static const Registry kRegistry({
      {kCopyTraces,
       "Copies traces from Postgres to ClickHouse",
       {},
       [] { return NewTableCopy(TracesMapping()); }},
      // Observations carry the calculated costs, so they are priced first.
      {kCopyObservations,
       "Copies observations from Postgres to ClickHouse",
       {kBackfillObservationCosts},
       [] { return NewTableCopy(ObservationsMapping()); }},
      {kCopyScores,
       "Copies scores from Postgres to ClickHouse",
       {},
       [] { return NewTableCopy(ScoresMapping()); }},
      {kBackfillObservationCosts,
       "Prices every observation from the models table (calculated costs, internal model id)",
       {},
       NewBackfillObservationCosts},
  });
  return kRegistry;
}

}  // namespace bgm
