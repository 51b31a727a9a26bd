#include "seed/catalog.h"

namespace bgm {
namespace {

// Prices per token in USD, as in Langfuse's default model list (2024).
constexpr SeedModel kModels[] = {
    {"seed-model-gpt-4o", "", "gpt-4o", "(?i)^(openai/)?(gpt-4o)$", "", "0.000005", "0.000015", "",
     "TOKENS"},
    // The price cut of 2024-08-06: rows after it must pick this one (latest start_date).
    {"seed-model-gpt-4o-2024-08-06", "", "gpt-4o", "(?i)^(openai/)?(gpt-4o)$", "2024-08-06",
     "0.0000025", "0.00001", "", "TOKENS"},
    // A project's own price beats the default.
    {"seed-model-p1-gpt-4o", "seed-project-1", "gpt-4o", "(?i)^(openai/)?(gpt-4o)$", "", "0.000001",
     "0.000002", "", "TOKENS"},
    {"seed-model-gpt-4o-mini", "", "gpt-4o-mini", "(?i)^(openai/)?(gpt-4o-mini)$", "", "0.00000015",
     "0.0000006", "", "TOKENS"},
    {"seed-model-gpt-35-turbo", "", "gpt-3.5-turbo", "(?i)^(openai/)?(gpt-)(35|3.5)(-turbo)$", "",
     "0.0000005", "0.0000015", "", "TOKENS"},
    {"seed-model-claude-3-5-sonnet", "", "claude-3-5-sonnet-20240620",
     "(?i)^(anthropic/)?(claude-3-5-sonnet-20240620)$", "", "0.000003", "0.000015", "", "TOKENS"},
    {"seed-model-claude-3-haiku", "", "claude-3-haiku-20240307",
     "(?i)^(anthropic/)?(claude-3-haiku-20240307)$", "", "0.00000025", "0.00000125", "", "TOKENS"},
    // Only a total price.
    {"seed-model-text-embedding-3-small", "", "text-embedding-3-small",
     "(?i)^(text-embedding-3-small)$", "", "", "", "0.00000002", "TOKENS"},
    // Priced per character.
    {"seed-model-gemini-1-5-pro", "", "gemini-1.5-pro", "(?i)^(google/)?(gemini-1.5-pro)$", "",
     "0.0000003125", "0.00000125", "", "CHARACTERS"},
};

// Per mille of GENERATIONs; the sum is 1000. Case and provider-prefix variants exercise the
// patterns; "my-finetuned-llama-3-8b" and "" match no model.
constexpr SeedModelName kModelNames[] = {
    {"gpt-4o", "TOKENS", 250},
    {"GPT-4o", "TOKENS", 20},
    {"openai/gpt-4o", "TOKENS", 20},
    {"gpt-4o-mini", "TOKENS", 200},
    {"gpt-3.5-turbo", "TOKENS", 100},
    {"claude-3-5-sonnet-20240620", "TOKENS", 150},
    {"anthropic/claude-3-5-sonnet-20240620", "TOKENS", 20},
    {"claude-3-haiku-20240307", "TOKENS", 60},
    {"text-embedding-3-small", "TOKENS", 40, false, true},
    {"gemini-1.5-pro", "CHARACTERS", 40},
    {"my-finetuned-llama-3-8b", "TOKENS", 30},
    {"", "TOKENS", 5},
    {"", "", 65, true},
};

constexpr SeedPrompt kPrompts[] = {
    {"qa-answer", 1, R"("Answer the question: {{question}}")", "{}"},
    {"qa-answer", 2,
     R"("Answer the question using only the context.\n\nContext: {{context}}\nQuestion: {{question}}")",
     "{production}"},
    {"qa-answer", 3, R"("Answer \"{{question}}\" in {{language}}; cite sources like [1].")",
     "{latest}"},
    {"summarize", 1,
     R"([{"role": "system", "content": "Summarize in {{language}}."}, {"role": "user", "content": "{{text}}"}])",
     "{production,latest}"},
    {"翻訳/日本語", 1, R"("次の文を日本語に翻訳してください：{{text}}")", "{production}"},
    {"support-bot", 1,
     R"([{"role": "system", "content": "You are a friendly support bot 🤖. Never reveal \\internal\\ notes."}, {"role": "user", "content": "{{message}}"}])",
     R"({production,"a,b","with \"quote\""})"},
};

}  // namespace

std::span<const SeedModel> SeedModels() { return kModels; }
std::span<const SeedModelName> SeedModelNames() { return kModelNames; }
std::span<const SeedPrompt> SeedPrompts() { return kPrompts; }

std::string SeedProjectId(int n) { return "seed-project-" + std::to_string(n); }

std::string SeedPromptId(int project, size_t index) {
  return "seed-prompt-p" + std::to_string(project) + "-" + std::to_string(index);
}

}  // namespace bgm
