// The one list of built-in background migrations. Add a new one here (see
// docs/writing-a-migration.md); names are timestamp-prefixed so name order is run order.
#include "core/registry.h"
#include "migrations/backfill_observation_costs.h"

namespace bgm {

const Registry& BuiltinRegistry() {
  static const Registry kRegistry({
      {kBackfillObservationCosts,
       "Prices every observation from the models table (calculated costs, internal model id)",
       {},
       NewBackfillObservationCosts},
  });
  return kRegistry;
}

}  // namespace bgm
