// ArgsSchema: validation of a migration's `args` object (which operators may edit by hand in
// the background_migrations table), with messages that name the bad key and value.
// Immutable after construction; thread-safe to share.
//
//   ArgsSchema schema;
//   schema.Int("batchSize", 1, 100000);
//   Status s = schema.Validate(args);   // "batchSize must be an integer in [1, 100000], got -1"
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace bgm {

class ArgsSchema {
 public:
  ArgsSchema& Int(std::string key, int64_t min, int64_t max);
  ArgsSchema& Number(std::string key, double min, double max);
  ArgsSchema& OneOf(std::string key, std::vector<std::string> values);
  // A string ParseTimestampMillis (common/timestamp.h) reads: "2024-05-03" (midnight UTC),
  // "2024-05-03 10:00:00.123" (UTC), "2024-05-03T10:00:00Z", "2024-05-03T10:00:00+05:00"; the
  // date and time must exist on the calendar (no "2024-02-30", no hour 24), years 0001-9999.
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

// `value` as compact JSON for an error message: at most `max_bytes` bytes (cut at a UTF-8
// character boundary and marked "... (N bytes)"), so a huge or hostile value cannot flood a
// failed_reason, a log line or an HTTP response. Invalid UTF-8 is replaced, never thrown.
std::string JsonExcerpt(const nlohmann::json& value, size_t max_bytes = 200);
// `text` cut the same way.
std::string TextExcerpt(std::string text, size_t max_bytes = 200);

// args[key] (a Timestamp arg) as milliseconds since the epoch, std::nullopt when absent;
// kInvalidArgument naming the key and value when it is not a timestamp that exists.
Result<std::optional<int64_t>> TimestampArg(const nlohmann::json& args, const char* key);
// args[key] as an integer, or `fallback` when absent (call after Validate).
int64_t IntArg(const nlohmann::json& args, const char* key, int64_t fallback);
double NumberArg(const nlohmann::json& args, const char* key, double fallback);
std::string StringArg(const nlohmann::json& args, const char* key, const std::string& fallback);

}  // namespace bgm
