// ApplicationSchema: the application's own fast migrations, read at run time from the folder
// BGMIGRATE_SCHEMA_DIR names (postgres/ and clickhouse/ subfolders of NNNN_name.sql files), as
// opposed to bgmigrate's control tables, which are compiled in (PostgresSchemaFiles()).
// Owns the files' text; immutable after Load, so thread-safe to share. Moving it keeps the
// views of postgres()/clickhouse() valid.
//
//   Result<ApplicationSchema> app = ApplicationSchema::Load("examples/langfuse/schema");
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/embedded_file.h"
#include "common/status.h"

namespace bgm {

class ApplicationSchema {
 public:
  ApplicationSchema() = default;  // no folder: no application files

  // Reads every file of `dir`/postgres and `dir`/clickhouse (either may be missing; "" reads
  // nothing) and checks their names and versions (ParseSchemaFiles). Hidden files and README*
  // are skipped. kInvalidArgument naming the path for: `dir` not a folder, a subfolder other than
  // postgres/ and clickhouse/, a .sql file beside them, a file not named NNNN_name.sql, two files
  // with one version, a file that cannot be read.
  static Result<ApplicationSchema> Load(const std::string& dir);

  const std::string& dir() const { return dir_; }
  const std::vector<EmbeddedFile>& postgres() const { return postgres_; }
  const std::vector<EmbeddedFile>& clickhouse() const { return clickhouse_; }

 private:
  std::string dir_;
  std::vector<std::unique_ptr<const std::string>> texts_;  // what the views below point into
  std::vector<EmbeddedFile> postgres_;
  std::vector<EmbeddedFile> clickhouse_;
};

}  // namespace bgm
