// Process-wide logging on spdlog: one line per event with a UTC timestamp and level, as plain
// text or as JSON lines (BGMIGRATE_LOG_FORMAT=json). Thread-safe after InitLogging().
//
//   InitLogging(LogFormat::kText, spdlog::level::info);
//   spdlog::info("[Background Migration] Acquired lock for background migration {}", name);
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace bgm {

enum class LogFormat { kText, kJson };

// Installs the default logger (stderr). Safe to call more than once; the last call wins.
void InitLogging(LogFormat format, spdlog::level::level_enum level);

// Parses "text" or "json" (BGMIGRATE_LOG_FORMAT); anything else is an error for the caller.
bool ParseLogFormat(std::string_view text, LogFormat* out);

}  // namespace bgm
