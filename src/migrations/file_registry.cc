#include "migrations/file_registry.h"

#include <cstdlib>
#include <string_view>

#include "core/readiness.h"
#include "migrations/clickhouse_partitions.h"
#include "migrations/file_copy.h"
#include "migrations/postgres_batches.h"

namespace bgm {

std::vector<MigrationSpec> SpecsFromFiles(const std::vector<MigrationFile>& files,
                                          std::vector<FileProblem>& problems) {
  std::vector<MigrationSpec> specs;
  for (const MigrationFile& f : files) {
    MigrationSpec spec{f.name, f.description, f.prerequisites, nullptr};
    switch (f.kind) {
      case MigrationKind::kPostgres:
        spec.create = [f] { return NewPostgresBatches(f); };
        break;
      case MigrationKind::kPostgresToClickHouse:
        spec.create = [f] { return NewFileCopy(f); };
        break;
      case MigrationKind::kClickHouse:
        spec.create = [f] { return NewClickHousePartitions(f); };
        break;
    }
    if (!spec.create) {
      problems.push_back({f.path, 0,
                          std::string("kind ") + MigrationKindName(f.kind) +
                              " is not supported by this bgmigrate yet; remove the file or run a "
                              "bgmigrate that supports it"});
      continue;
    }
    spec.source_path = f.path;
    spec.application_script = f.application_script.value_or("");
    spec.checksum = f.checksum;
    if (f.gate) {
      const char* value = std::getenv(f.gate->c_str());
      spec.gate = f.gate;
      spec.gate_open = value != nullptr && std::string_view(value) == "true";
    }
    specs.push_back(std::move(spec));
  }
  return specs;
}

LoadedRegistry LoadRegistryFiles(const std::vector<std::string>& dirs, const Registry& builtins) {
  LoadedMigrations loaded = LoadMigrationDirs(dirs);
  std::vector<MigrationSpec> specs = builtins.specs();
  std::vector<MigrationFile> files;  // those that do not take a built-in's name
  for (MigrationFile& f : loaded.files) {
    if (builtins.Find(f.name) != nullptr) {
      loaded.problems.push_back(
          {f.path, 0,
           "the name " + f.name + " is a built-in migration of bgmigrate; rename the file"});
    } else {
      files.push_back(std::move(f));
    }
  }
  for (MigrationSpec& spec : SpecsFromFiles(files, loaded.problems)) {
    specs.push_back(std::move(spec));
  }
  Registry registry(std::move(specs));
  // Prerequisites across built-ins and files (a file may wait for a built-in), by the rule
  // start-up applies (core/readiness.h); the problem goes to the file that names it.
  if (Status s = ValidatePrerequisites(registry); !s.ok()) {
    std::string where = dirs.empty() ? "." : dirs.front();
    for (const MigrationFile& f : files) {
      if (s.message().find("migration " + f.name + " ") != std::string::npos) {
        where = f.path;
        break;
      }
    }
    loaded.problems.push_back({where, 0, s.message()});
  }
  return {std::move(registry), std::move(files), std::move(loaded.problems)};
}

Result<Registry> LoadRegistry(const std::vector<std::string>& dirs, const Registry& builtins) {
  LoadedRegistry loaded = LoadRegistryFiles(dirs, builtins);
  if (loaded.problems.empty()) return std::move(loaded.registry);
  std::string message = "the migration files have " + std::to_string(loaded.problems.size()) +
                        (loaded.problems.size() == 1 ? " problem" : " problems") +
                        "; nothing was registered or run:";
  for (const FileProblem& p : loaded.problems) message += "\n  " + p.ToString();
  return InvalidArgument(message);
}

}  // namespace bgm
