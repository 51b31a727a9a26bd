// The three Postgres -> ClickHouse copies of Langfuse v3's upgrade, with its row mapping:
// metadata that is not an object is wrapped as {"metadata": ...} and flattened to string
// values; input/output are kept as JSON text; event_ts is the row's own timestamp (traces,
// scores) or start_time (observations), so a replayed row is identical; observation `model`
// becomes provided_model_name; token counts become usage_details {input, output, total}
// (values >= 0 only); user costs become provided_cost_details, calculated costs cost_details
// and total_cost; prompt_name/prompt_version come from the prompts table.
#pragma once

#include <memory>
#include <string>

#include "core/migration.h"
#include "migrations/table_copy.h"

namespace bgm {

inline constexpr const char* kCopyTraces = "20241024_1730_migrate_traces_from_pg_to_ch";
inline constexpr const char* kCopyObservations = "20241024_1737_migrate_observations_from_pg_to_ch";
inline constexpr const char* kCopyScores = "20241024_1738_migrate_scores_from_pg_to_ch";

TableMapping TracesMapping();
TableMapping ObservationsMapping();
TableMapping ScoresMapping();

// Flattens a metadata jsonb text to string key/value pairs (sorted by key), the Langfuse way.
// NULL (nullopt) gives no pairs. kInvalidArgument for text that is not JSON.
Status FlattenMetadata(std::optional<std::string_view> json,
                       std::vector<std::pair<std::string, std::string>>* out);

}  // namespace bgm
