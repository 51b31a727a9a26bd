// The one-word status of all background migrations, as the UI's header indicator and
// `bgmigrate status` show it. Pure function; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "core/control_store.h"

namespace bgm {

// DISABLED when migrations are disabled and not all finished; FAILED when any failed; ACTIVE
// when any is pending, running or paused; FINISHED otherwise (also with no migrations).
// {"status": "...", "counts": {"pending": n, "running": n, ...}, "total": n}
nlohmann::json Summarize(const std::vector<MigrationRow>& rows, bool enabled);

}  // namespace bgm
