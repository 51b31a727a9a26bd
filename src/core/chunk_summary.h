// How a migration's chunks (core/chunk_store.h) are shown by the API, the UI and
// `bgmigrate list`: their counts by status, the chunks an operator acts on (running with their
// worker, failed with their error) and a one-line text. Pure functions; thread-safe.
//
//   ChunkFilter f = ActiveChunksFilter();
//   j["chunks"] = ChunkSummaryJson(counts, *store.ListChunks(name, f));
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/chunk_store.h"
#include "core/control_store.h"

namespace bgm {

// Running and failed chunks listed in a summary at most (a migration may have 100,000 chunks;
// the rest are paged through the API's /chunks endpoint).
inline constexpr int kSummaryChunks = 100;

// The chunks a summary lists: running and failed ones, in key order, kSummaryChunks at most.
ChunkFilter ActiveChunksFilter();

// {"chunk", "lower", "upper", "status", "worker_id", "attempts", "rows", "cursor",
//  "last_error"}; lower null: from the first row; upper null: open-ended; worker_id and
// last_error null when there is none; "partition" (the id) added for a partition's chunk.
nlohmann::json ChunkJson(const Chunk& c);

// {"pending", "running", "done", "failed", "total", "list": [ChunkJson of `active`],
//  "list_truncated": whether running + failed is more than `active` holds}.
nlohmann::json ChunkSummaryJson(const ChunkCounts& counts, const std::vector<Chunk>& active);

// "chunks 7/10 done, 2 running, 1 failed": done of total, then the non-zero running, failed
// and pending counts.
std::string ChunkSummaryText(const ChunkCounts& counts);

}  // namespace bgm
