#include "core/chunk_summary.h"

namespace bgm {

ChunkFilter ActiveChunksFilter() {
  return ChunkFilter{.statuses = {"running", "failed"}, .after = -1, .limit = kSummaryChunks};
}

nlohmann::json ChunkJson(const Chunk& c) {
  nlohmann::json j = {
      {"chunk", c.chunk},
      {"lower", c.lower},
      {"upper", c.upper},
      {"status", c.status},
      {"worker_id", c.worker_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.worker_id)},
      {"attempts", c.attempts},
      {"rows", c.rows},
      {"cursor", c.cursor},
      {"last_error",
       c.last_error.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.last_error)}};
  if (std::optional<std::string> partition = PartitionOf(c)) j["partition"] = *partition;
  return j;
}

nlohmann::json ChunkSummaryJson(const ChunkCounts& counts, const std::vector<Chunk>& active) {
  nlohmann::json list = nlohmann::json::array();
  for (const Chunk& c : active) list.push_back(ChunkJson(c));
  const bool truncated = counts.running + counts.failed > static_cast<int>(active.size());
  return {{"pending", counts.pending},  {"running", counts.running}, {"done", counts.done},
          {"failed", counts.failed},    {"total", counts.total()},   {"list", std::move(list)},
          {"list_truncated", truncated}};
}

std::string ChunkSummaryText(const ChunkCounts& counts) {
  std::string out =
      "chunks " + std::to_string(counts.done) + "/" + std::to_string(counts.total()) + " done";
  if (counts.running > 0) out += ", " + std::to_string(counts.running) + " running";
  if (counts.failed > 0) out += ", " + std::to_string(counts.failed) + " failed";
  if (counts.pending > 0) out += ", " + std::to_string(counts.pending) + " pending";
  return out;
}

}  // namespace bgm
