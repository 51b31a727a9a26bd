// SeedRowWriter: formats the seeder's generated rows of traces, observations and scores as COPY
// text, straight into a caller's buffer (no per-row allocation once warm). A row depends only on
// (options, table, row index), so any split of a table across writers yields the same rows.
// SeedCorpus is the text that blobs are cut from: immutable after construction, shared by all
// writers. A SeedRowWriter is not thread-safe; use one per thread.
//
//   SeedCorpus corpus(opts.random_seed);
//   SeedRowWriter w(opts, corpus);
//   for (int64_t i = begin; i < end; ++i) w.Append(SeedTable::kTraces, copy.buffer(), i);
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "seed/seed_random.h"
#include "seed/seeder.h"

namespace bgm {

enum class SeedTable { kTraces = 0, kObservations = 1, kScores = 2 };

std::string_view SeedTableName(SeedTable table);
// "COPY traces (id, ...) FROM STDIN": the columns in the order Append writes them.
std::string_view SeedCopySql(SeedTable table);

// Sentences of words (English, CJK, emoji, RTL, combining marks, quotes, backslashes, control
// characters) joined into one long text (512 KB), kept escaped twice: as the inside of a JSON
// string, then as COPY text. Deterministic for a seed.
class SeedCorpus {
 public:
  explicit SeedCorpus(uint64_t seed);

  // Appends a piece of the text whose JSON-escaped form is `json_bytes` long, or at most one
  // word longer, and returns that length. Never cuts a word, a UTF-8 sequence or an escape.
  size_t AppendBlob(std::string& out, size_t json_bytes, SeedRandom& rng) const;

 private:
  std::string copy_text_;           // the text, JSON-escaped then COPY-escaped
  std::vector<uint32_t> copy_off_;  // word k starts at copy_text_[copy_off_[k]]
  std::vector<uint32_t> json_off_;  // ... and at JSON offset json_off_[k]; one extra at the end
};

class SeedRowWriter {
 public:
  // `opts` and `corpus` must outlive the writer.
  SeedRowWriter(const SeedOptions& opts, const SeedCorpus& corpus);

  // Appends row `index` (0-based, < the table's row count in opts) as one COPY text line.
  void Append(SeedTable table, std::string& out, int64_t index);

 private:
  struct TraceKey {
    int project;  // 1-based
    int64_t timestamp_ms;
  };
  enum class Json {
    kChat,
    kText,
    kContentParts,
    kToolCall,
    kAssistant,
    kCompletion,
    kLabel,
  };

  void AppendTrace(std::string& out, int64_t i);
  void AppendObservation(std::string& out, int64_t i);
  void AppendScore(std::string& out, int64_t i);

  TraceKey TraceAt(int64_t trace) const;
  int64_t FirstObservationOf(int64_t trace) const;
  int64_t CreatedAt(int64_t index, int64_t shared_rows, int64_t event_ms, SeedRandom& rng) const;
  void AppendId(std::string& out, SeedTable table, int64_t index) const;
  void AppendUpdatedAt(std::string& out, int64_t created_ms, SeedRandom& rng) const;
  void AppendMetadata(std::string& out, SeedRandom& rng);
  void AppendTags(std::string& out, SeedRandom& rng);
  void AppendBlobJson(std::string& out, Json kind, SeedRandom& rng);

  const SeedOptions& opts_;
  const SeedCorpus& corpus_;
  std::array<std::string, 3> id_prefix_;  // "tr-s1-", "ob-s1-", "sc-s1-"
  std::vector<std::string> project_ids_;
  std::vector<std::string> tag_elements_;  // as Postgres array elements
  std::array<int64_t, 3> shared_rows_;     // rows with created_at = kSharedCreatedAt
  size_t blob_bytes_;
  std::string scratch_;
};

}  // namespace bgm
