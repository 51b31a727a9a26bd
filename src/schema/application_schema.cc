#include "schema/application_schema.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "schema/schema_runner.h"

namespace bgm {
namespace {

namespace fs = std::filesystem;

bool Skipped(const std::string& name) {
  return name.starts_with(".") || name.starts_with("README");
}

}  // namespace

Result<ApplicationSchema> ApplicationSchema::Load(const std::string& dir) {
  ApplicationSchema schema;
  schema.dir_ = dir;
  if (dir.empty()) return schema;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return InvalidArgument("BGMIGRATE_SCHEMA_DIR='" + dir +
                           "' is not a folder; name the folder holding the application's "
                           "postgres/ and clickhouse/ schema files, or set it empty for none");
  }
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_directory(ec) && name.ends_with(".sql")) {
      return InvalidArgument("schema file " + entry.path().string() +
                             " is directly in the schema folder; move it into " + dir +
                             "/postgres or " + dir + "/clickhouse");
    }
    if (entry.is_directory(ec) && name != "postgres" && name != "clickhouse" && !Skipped(name)) {
      return InvalidArgument("schema folder " + entry.path().string() +
                             " is neither postgres/ nor clickhouse/; move its files into one of "
                             "them or out of " +
                             dir);
    }
  }
  if (ec) return InvalidArgument("cannot list schema folder " + dir + ": " + ec.message());

  for (auto [store, out] :
       {std::pair{"postgres", &schema.postgres_}, std::pair{"clickhouse", &schema.clickhouse_}}) {
    const fs::path folder = fs::path(dir) / store;
    if (!fs::exists(folder, ec)) continue;
    if (!fs::is_directory(folder, ec)) {
      return InvalidArgument("schema path " + folder.string() + " is not a folder");
    }
    std::vector<fs::path> paths;
    for (const fs::directory_entry& entry : fs::directory_iterator(folder, ec)) {
      if (!Skipped(entry.path().filename().string())) paths.push_back(entry.path());
    }
    if (ec)
      return InvalidArgument("cannot list schema folder " + folder.string() + ": " + ec.message());
    std::sort(paths.begin(), paths.end());
    for (const fs::path& path : paths) {
      if (!fs::is_regular_file(path, ec)) {
        return InvalidArgument("schema path " + path.string() +
                               " is not a file; a schema folder holds NNNN_description.sql files");
      }
      std::ifstream in(path, std::ios::binary);
      std::ostringstream text;
      text << in.rdbuf();
      if (!in.good() && !in.eof()) {
        return InvalidArgument("cannot read schema file " + path.string());
      }
      const std::string* name =
          schema.texts_.emplace_back(std::make_unique<const std::string>(path.filename().string()))
              .get();
      const std::string* contents =
          schema.texts_.emplace_back(std::make_unique<const std::string>(text.str())).get();
      out->push_back(EmbeddedFile{*name, *contents});
    }
    Result<std::vector<SchemaFile>> parsed = ParseSchemaFiles(*out);
    if (!parsed.ok()) return parsed.status().WithContext("schema folder " + folder.string());
  }
  return schema;
}

}  // namespace bgm
