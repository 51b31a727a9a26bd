// MigrationFile: a background migration declared in a TOML file that an application's
// developers write and review, instead of C++ compiled into bgmigrate. The file name without
// `.toml` is the migration's name and its place in the run order. Parsed with toml++ (Debian's
// libtomlplusplus); every problem names the file and the line. Pure functions over text and
// folders; thread-safe.
//
//   LoadedMigrations loaded = LoadMigrationDirs({"migrations"});
//   for (const FileProblem& p : loaded.problems) std::cerr << p.ToString() << "\n";
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/args.h"
#include "core/migration.h"

namespace bgm {

enum class MigrationKind {
  kPostgres,              // a statement run in keyset batches over one Postgres table
  kPostgresToClickHouse,  // a SELECT over Postgres copied into a ClickHouse table
  kClickHouse,            // a statement run inside ClickHouse once per partition
};
const char* MigrationKindName(MigrationKind kind);  // "postgres", ...

// One arg the migration accepts, with its default (null: none) and range.
struct ArgSpec {
  enum class Type { kInt, kNumber, kTimestamp, kEnum };
  std::string key;
  Type type = Type::kInt;
  double min = 0, max = 0;          // kInt, kNumber
  std::vector<std::string> values;  // kEnum
  nlohmann::json default_value;     // null when the arg has no default
};

struct MigrationFile {
  std::string name;      // file name without .toml
  std::string path;      // as found
  std::string checksum;  // SHA-256 of the file's bytes
  std::string description;
  MigrationKind kind = MigrationKind::kPostgres;
  std::vector<std::string> prerequisites;
  std::optional<std::string> gate;  // an environment variable that must be "true" first
  // The script of this migration's row in the application's own background_migrations
  // (Langfuse's, e.g. migrateTracesFromPostgresToClickhouse), which bgmigrate keeps in step
  // (core/application_ledger.h).
  std::optional<std::string> application_script;
  std::vector<ArgSpec> args;
  // [[throttle]]: the file's own health probes (core/health_signals.h).
  std::vector<HealthProbe> probes;

  // kPostgres: `table`, its unique ordered `key` and the `statement` each batch runs, with
  // {batch} where the engine puts the bound key range.
  // kPostgresToClickHouse: `select` (its output columns are the `target` table's columns) and
  // the `key` columns of its output, unique and ordered.
  // kClickHouse: `statement` run once per partition of `table` with {partition} bound, after
  // the optional `before` statement (for idempotency, e.g. DROP PARTITION {partition}).
  std::string table;
  std::string target;
  std::vector<std::string> key;
  std::string statement;
  std::string select;
  std::optional<std::string> before;
  // Where the kind's section and each of its fields begin, for problems found later against
  // the databases ("select" -> 12); 0 when unknown.
  int section_line = 0;
  std::map<std::string, int> field_lines;
  int LineOf(const std::string& field) const;

  // The args schema and the defaults object ({"batchSize": 1000, ...}).
  ArgsSchema Schema() const;
  nlohmann::json Defaults() const;
};

// A kind's own args (`kind_args`) with the file's declared args replacing those of the same
// key and added after them.
std::vector<ArgSpec> MergeArgSpecs(std::vector<ArgSpec> kind_args, const MigrationFile& file);

// "path:line: message"; line 0 when the problem is the file as a whole.
struct FileProblem {
  std::string path;
  int line = 0;
  std::string message;
  std::string ToString() const;
};

// Parses one file's `content`; `path` names it in problems and gives the name. Appends every
// problem found to `problems` and returns std::nullopt when there was any.
std::optional<MigrationFile> ParseMigrationFile(const std::string& path, std::string_view content,
                                                std::vector<FileProblem>& problems);

struct LoadedMigrations {
  std::vector<MigrationFile> files;  // sorted by name
  std::vector<FileProblem> problems;
};

// Every `*.toml` file of each folder (other files are ignored), parsed and validated, and a
// name found in two folders. A folder that does not exist is a problem. Prerequisites are
// checked with the built-ins by LoadRegistry (migrations/file_registry.h).
LoadedMigrations LoadMigrationDirs(const std::vector<std::string>& dirs);

}  // namespace bgm
