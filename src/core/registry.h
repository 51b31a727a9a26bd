// Registry: the background migrations this binary knows, listed in one place (no static
// self-registration). A background_migrations row names its implementation in `script`.
// Immutable after construction; thread-safe to share.
//
//   const MigrationSpec* spec = BuiltinRegistry().Find(row.script);
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/migration.h"

namespace bgm {

struct MigrationSpec {
  std::string name;  // also the script name; timestamp-prefixed so name order is run order
  std::string description;
  std::vector<std::string> prerequisites;  // names that must be finished first
  std::function<std::unique_ptr<BackgroundMigration>()> create;
  // An environment variable that must be "true" before the migration runs (Langfuse's
  // envGate), and whether it was when the registry was loaded in this process.
  std::optional<std::string> gate = std::nullopt;
  bool gate_open = true;
  // The script of its row in the application's own background_migrations (a file's
  // application_script), which bgmigrate keeps in step; empty: none.
  std::string application_script = {};
  // A migration file's path and the SHA-256 of its content; empty for a built-in.
  std::string source_path = {};
  std::string checksum = {};
};

class Registry {
 public:
  explicit Registry(std::vector<MigrationSpec> specs);
  const std::vector<MigrationSpec>& specs() const { return specs_; }
  const MigrationSpec* Find(const std::string& script) const;
  // "a, b, c": for error messages.
  std::string ScriptNames() const;

 private:
  std::vector<MigrationSpec> specs_;  // sorted by name
};

// Every built-in migration (src/migrations/builtin.cc).
const Registry& BuiltinRegistry();

}  // namespace bgm
