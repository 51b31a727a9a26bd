// The upgrade gate (the seed's "deployment stops", machine-checked): whether the background
// migrations a deployment needs have finished, and for each one that has not, why (running
// with its progress, failed with its reason, paused, blocked, gated, waiting, pending).
// Pure function over the control-table rows; thread-safe.
//
//   Result<std::vector<GateEntry>> gate = JudgeGate(rows, registry, {});   // all registered
#pragma once

#include <string>
#include <vector>

#include "core/control_store.h"
#include "core/registry.h"

namespace bgm {

struct GateEntry {
  std::string name;
  bool finished = false;
  std::string why;  // for an unfinished one: its status and what to do
};

// Judges `names` (empty: every row whose script this bgmigrate knows). kNotFound naming a
// name that has no row.
Result<std::vector<GateEntry>> JudgeGate(std::vector<MigrationRow> rows, const Registry& registry,
                                         const std::vector<std::string>& names);

}  // namespace bgm
