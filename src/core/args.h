// ArgsSchema: validation of a migration's `args` object (which operators may edit by hand in
// the background_migrations table), with messages that name the bad key and value.
// Immutable after construction; thread-safe to share.
//
//   ArgsSchema schema;
//   schema.Int("batchSize", 1, 100000);
//   Status s = schema.Validate(args);   // "batchSize must be an integer in [1, 100000], got -1"
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/status.h"

namespace bgm {

class ArgsSchema {
 public:
  ArgsSchema& Int(std::string key, int64_t min, int64_t max);
  ArgsSchema& Number(std::string key, double min, double max);
  ArgsSchema& OneOf(std::string key, std::vector<std::string> values);
  // "2024-05-03", "2024-05-03T10:00:00Z", "2024-05-03 10:00:00.123".
  ArgsSchema& Timestamp(std::string key);

  // OK when `args` is an object whose keys are all known and whose values fit.
  Status Validate(const nlohmann::json& args) const;
  std::string KnownKeys() const;

 private:
  enum class Kind { kInt, kNumber, kOneOf, kTimestamp };
  struct Arg {
    std::string key;
    Kind kind;
    double min = 0, max = 0;
    std::vector<std::string> values;
  };
  std::vector<Arg> args_;
};

// args[key] as an integer, or `fallback` when absent (call after Validate).
int64_t IntArg(const nlohmann::json& args, const char* key, int64_t fallback);
double NumberArg(const nlohmann::json& args, const char* key, double fallback);
std::string StringArg(const nlohmann::json& args, const char* key, const std::string& fallback);

}  // namespace bgm
