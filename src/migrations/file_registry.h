// The registry a bgmigrate process runs with: the built-in C++ migrations plus the migration
// files of the configured folders (BGMIGRATE_MIGRATIONS_DIR). Loaded once at start-up by every
// command that runs, lists or changes migrations; any problem stops start-up, so a half-valid
// set is never registered.
//
//   Result<Registry> registry = LoadRegistry(config.migrations_dirs, BuiltinRegistry());
#pragma once

#include <string>
#include <vector>

#include "core/registry.h"
#include "migrations/migration_file.h"

namespace bgm {

// The specs of `files` (their kinds run them); a file of a kind this bgmigrate cannot run yet
// is a problem naming the file. A file's gate is open when this process's environment has the
// variable set to "true".
std::vector<MigrationSpec> SpecsFromFiles(const std::vector<MigrationFile>& files,
                                          std::vector<FileProblem>& problems);

struct LoadedRegistry {
  Registry registry;
  std::vector<MigrationFile> files;
  std::vector<FileProblem> problems;  // empty when `registry` may be used
};

// `builtins` plus every file of `dirs`, with every problem: an invalid file, a file that names
// a built-in, prerequisites across both that name no migration or form a cycle.
LoadedRegistry LoadRegistryFiles(const std::vector<std::string>& dirs, const Registry& builtins);

// LoadRegistryFiles for start-up: kInvalidArgument listing every problem, one per line
// ("path:line: message"), when there is any.
Result<Registry> LoadRegistry(const std::vector<std::string>& dirs, const Registry& builtins);

}  // namespace bgm
