// The fixed reference rows the seeder writes before its generated data: model prices (with
// Langfuse-style match patterns, which Postgres matches with `~`) and prompts per project, plus
// the model names that generated observations use. Constant data; thread-safe.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace bgm {

// One row of `models`. Empty project_id, start_date or price means NULL.
struct SeedModel {
  std::string_view id;
  std::string_view project_id;
  std::string_view model_name;
  std::string_view match_pattern;  // e.g. "(?i)^(openai/)?(gpt-4o)$"
  std::string_view start_date;
  std::string_view input_price;
  std::string_view output_price;
  std::string_view total_price;
  std::string_view unit;
};
std::span<const SeedModel> SeedModels();

// A model name as an observation carries it, how often (per mille of GENERATIONs), and its unit.
// `null` marks the share of generations without a model.
struct SeedModelName {
  std::string_view name;
  std::string_view unit;
  int per_mille;
  bool null = false;
  bool embedding = false;  // prompt tokens only
};
std::span<const SeedModelName> SeedModelNames();

// One prompt version; written once per project as "seed-prompt-p<project>-<index>".
struct SeedPrompt {
  std::string_view name;
  int version;
  std::string_view prompt_json;  // a JSON string (text prompt) or array (chat prompt)
  std::string_view labels;       // a Postgres array literal
};
std::span<const SeedPrompt> SeedPrompts();

// "seed-project-<n>", n from 1.
std::string SeedProjectId(int n);
// "seed-prompt-p<project>-<index>", project from 1, index into SeedPrompts().
std::string SeedPromptId(int project, size_t index);

}  // namespace bgm
