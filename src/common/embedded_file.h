// EmbeddedFile: a file compiled into the binary (SQL schema files, UI assets); see
// cmake/embed_files.cmake. Immutable, so thread-safe.
#pragma once

#include <string_view>
#include <vector>

namespace bgm {

struct EmbeddedFile {
  std::string_view name;  // file name without folders, e.g. "0001_background_migrations.sql"
  std::string_view contents;
};

// bgmigrate's own fast migrations, the files of sql/postgres (its control tables only), sorted
// by name. The application's schema files are read at run time (schema/application_schema.h).
const std::vector<EmbeddedFile>& PostgresSchemaFiles();

}  // namespace bgm
