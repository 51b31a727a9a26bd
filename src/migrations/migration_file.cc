#include "migrations/migration_file.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "common/sha256.h"

namespace bgm {
namespace {

namespace fs = std::filesystem;

// Names that the engine quotes itself: tables, key columns, gate variables. Quotes, semicolons
// and spaces are refused, so nothing in these fields can change the SQL around them.
const std::regex kIdentifier("[A-Za-z_][A-Za-z0-9_]{0,62}");
const std::regex kMigrationName("[A-Za-z0-9][A-Za-z0-9_.-]{0,199}");
const std::regex kEnvVar("[A-Za-z_][A-Za-z0-9_]{0,127}");

int LineOf(const toml::node* node) {
  return node ? static_cast<int>(node->source().begin.line) : 0;
}

// Reads the fields of one file, recording problems with the line of the field concerned.
class FileReader {
 public:
  FileReader(const std::string& path, std::vector<FileProblem>& problems)
      : path_(path), problems_(problems) {}

  void Problem(const toml::node* at, std::string message) {
    problems_.push_back({path_, LineOf(at), std::move(message)});
    ++count_;
  }
  int count() const { return count_; }

  // Refuses keys of `table` not in `known`, naming the accepted ones.
  void OnlyKeys(const toml::table& table, const std::vector<std::string>& known,
                const std::string& where) {
    for (const auto& [key, node] : table) {
      if (std::find(known.begin(), known.end(), std::string(key.str())) != known.end()) continue;
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      Problem(&node, "unknown key '" + std::string(key.str()) + "' in " + where +
                         "; accepted keys: " + list);
    }
  }

  std::optional<std::string> String(const toml::table& table, const std::string& key,
                                    const std::string& where, bool required) {
    const toml::node* node = table.get(key);
    if (node == nullptr) {
      if (required) Problem(&table, where + " needs " + key + " (a string)");
      return std::nullopt;
    }
    const toml::value<std::string>* s = node->as_string();
    if (s == nullptr) {
      Problem(node, key + " in " + where + " must be a string");
      return std::nullopt;
    }
    if (s->get().find_first_not_of(" \t\r\n") == std::string::npos) {
      Problem(node, key + " in " + where + " is empty");
      return std::nullopt;
    }
    return s->get();
  }

  std::optional<std::string> Identifier(const toml::table& table, const std::string& key,
                                        const std::string& where) {
    std::optional<std::string> s = String(table, key, where, true);
    if (s && !std::regex_match(*s, kIdentifier)) {
      Problem(table.get(key), key + " in " + where + " must be a plain name (letters, digits, _; " +
                                  "at most 63), got '" + TextExcerpt(*s, 80) +
                                  "'; quotes, dots and semicolons are not accepted");
      return std::nullopt;
    }
    return s;
  }

  // A non-empty array of distinct identifiers.
  std::vector<std::string> Identifiers(const toml::table& table, const std::string& key,
                                       const std::string& where) {
    std::vector<std::string> out;
    const toml::node* node = table.get(key);
    const toml::array* arr = node ? node->as_array() : nullptr;
    if (arr == nullptr || arr->empty()) {
      Problem(node ? node : &table,
              where + " needs " + key + ": a non-empty array of column names, e.g. [\"id\"]");
      return out;
    }
    for (const toml::node& el : *arr) {
      const toml::value<std::string>* s = el.as_string();
      if (s == nullptr || !std::regex_match(s->get(), kIdentifier)) {
        Problem(&el, key + " in " + where + " must list plain column names (letters, digits, _)");
        continue;
      }
      if (std::find(out.begin(), out.end(), s->get()) != out.end()) {
        Problem(&el, key + " in " + where + " names " + s->get() + " twice");
        continue;
      }
      out.push_back(s->get());
    }
    return out;
  }

  // A SQL text that must contain `placeholder` exactly `times` times (0: must not contain it).
  void Placeholder(const toml::table& table, const std::string& key, const std::string& where,
                   const std::string& text, const std::string& placeholder, int times) {
    int found = 0;
    for (size_t at = text.find(placeholder); at != std::string::npos;
         at = text.find(placeholder, at + 1)) {
      ++found;
    }
    if (found == times) return;
    if (times == 0) {
      Problem(table.get(key), key + " in " + where + " must not contain " + placeholder);
    } else {
      Problem(table.get(key), key + " in " + where + " must contain " + placeholder +
                                  " exactly once (found " + std::to_string(found) + ")");
    }
  }

 private:
  const std::string& path_;
  std::vector<FileProblem>& problems_;
  int count_ = 0;
};

void ReadArgs(const toml::table& args, FileReader& r, std::vector<ArgSpec>& out) {
  for (const auto& [key_text, node] : args) {
    const std::string key(key_text.str());
    const std::string where = "[args." + key + "]";
    const toml::table* spec = node.as_table();
    if (!std::regex_match(key, kIdentifier)) {
      r.Problem(&node, "arg name '" + TextExcerpt(key, 80) + "' must be a plain name");
      continue;
    }
    if (spec == nullptr) {
      r.Problem(&node, "arg " + key +
                           " must be a table such as { type = \"int\", default = 1000, min = 1, "
                           "max = 100000 }");
      continue;
    }
    r.OnlyKeys(*spec, {"type", "default", "min", "max", "values"}, where);
    ArgSpec a;
    a.key = key;
    const std::optional<std::string> type = r.String(*spec, "type", where, true);
    if (!type) continue;
    if (*type == "int" || *type == "number") {
      a.type = *type == "int" ? ArgSpec::Type::kInt : ArgSpec::Type::kNumber;
      const std::optional<double> min =
          spec->get("min") ? spec->get("min")->value<double>() : std::nullopt;
      const std::optional<double> max =
          spec->get("max") ? spec->get("max")->value<double>() : std::nullopt;
      if (!min || !max) {
        r.Problem(&node, where + " needs numbers min and max");
        continue;
      }
      if (*min > *max) {
        r.Problem(spec->get("min"), where + ": min is above max");
        continue;
      }
      a.min = *min;
      a.max = *max;
    } else if (*type == "timestamp") {
      a.type = ArgSpec::Type::kTimestamp;
    } else if (*type == "enum") {
      a.type = ArgSpec::Type::kEnum;
      const toml::array* values = spec->get("values") ? spec->get("values")->as_array() : nullptr;
      if (values == nullptr || values->empty()) {
        r.Problem(&node, where + " needs values: a non-empty array of strings");
        continue;
      }
      for (const toml::node& v : *values) {
        if (const toml::value<std::string>* s = v.as_string()) {
          a.values.push_back(s->get());
        } else {
          r.Problem(&v, where + ": values must be strings");
        }
      }
    } else {
      r.Problem(spec->get("type"), where + ": type must be int, number, timestamp or enum, got '" +
                                       TextExcerpt(*type, 40) + "'");
      continue;
    }
    if (const toml::node* d = spec->get("default")) {
      if (const auto i = d->value_exact<int64_t>()) {
        a.default_value = *i;
      } else if (const auto f = d->value_exact<double>()) {
        a.default_value = *f;
      } else if (const auto s = d->value_exact<std::string>()) {
        a.default_value = *s;
      } else {
        r.Problem(d, where + ": default must be a number or a string");
        continue;
      }
      // The default must pass the arg's own validation.
      ArgsSchema one;
      switch (a.type) {
        case ArgSpec::Type::kInt:
          one.Int(key, static_cast<int64_t>(a.min), static_cast<int64_t>(a.max));
          break;
        case ArgSpec::Type::kNumber:
          one.Number(key, a.min, a.max);
          break;
        case ArgSpec::Type::kTimestamp:
          one.Timestamp(key);
          break;
        case ArgSpec::Type::kEnum:
          one.OneOf(key, a.values);
          break;
      }
      if (Status s = one.Validate({{key, a.default_value}}); !s.ok()) {
        r.Problem(d, where + ": the default does not fit: " + s.message());
        continue;
      }
    }
    out.push_back(std::move(a));
  }
}

}  // namespace

const char* MigrationKindName(MigrationKind kind) {
  switch (kind) {
    case MigrationKind::kPostgres:
      return "postgres";
    case MigrationKind::kPostgresToClickHouse:
      return "postgres_to_clickhouse";
    case MigrationKind::kClickHouse:
      return "clickhouse";
  }
  return "unknown";
}

std::string FileProblem::ToString() const {
  return line > 0 ? path + ":" + std::to_string(line) + ": " + message : path + ": " + message;
}

ArgsSchema MigrationFile::Schema() const {
  ArgsSchema schema;
  for (const ArgSpec& a : args) {
    switch (a.type) {
      case ArgSpec::Type::kInt:
        schema.Int(a.key, static_cast<int64_t>(a.min), static_cast<int64_t>(a.max));
        break;
      case ArgSpec::Type::kNumber:
        schema.Number(a.key, a.min, a.max);
        break;
      case ArgSpec::Type::kTimestamp:
        schema.Timestamp(a.key);
        break;
      case ArgSpec::Type::kEnum:
        schema.OneOf(a.key, a.values);
        break;
    }
  }
  return schema;
}

int MigrationFile::LineOf(const std::string& field) const {
  const auto it = field_lines.find(field);
  return it != field_lines.end() ? it->second : section_line;
}

std::vector<ArgSpec> MergeArgSpecs(std::vector<ArgSpec> args, const MigrationFile& file) {
  for (const ArgSpec& own : file.args) {
    bool replaced = false;
    for (ArgSpec& a : args) {
      if (a.key == own.key) {
        a = own;
        replaced = true;
      }
    }
    if (!replaced) args.push_back(own);
  }
  return args;
}

nlohmann::json MigrationFile::Defaults() const {
  nlohmann::json out = nlohmann::json::object();
  for (const ArgSpec& a : args) {
    if (!a.default_value.is_null()) out[a.key] = a.default_value;
  }
  return out;
}

namespace {

// [[throttle]] entries: each a named query on postgres or clickhouse returning one number, and
// the threshold at or above which the migration's batches wait.
void ReadProbes(const toml::node& node, FileReader& r, std::vector<HealthProbe>& out) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr || !arr->is_array_of_tables()) {
    r.Problem(&node,
              "throttle must be an array of tables: [[throttle]] with name, database, query and "
              "threshold");
    return;
  }
  std::set<std::string> names;
  for (const toml::node& el : *arr) {
    const toml::table& t = *el.as_table();
    const std::string where = "[[throttle]]";
    r.OnlyKeys(t, {"name", "database", "query", "threshold"}, where);
    HealthProbe p;
    std::optional<std::string> name = r.String(t, "name", where, true);
    std::optional<std::string> database = r.String(t, "database", where, true);
    std::optional<std::string> query = r.String(t, "query", where, true);
    if (database && *database != "postgres" && *database != "clickhouse") {
      r.Problem(t.get("database"), "database in [[throttle]] is postgres or clickhouse, got '" +
                                       TextExcerpt(*database, 40) + "'");
      database.reset();
    }
    if (name && (name->size() > 80 || name->find_first_of("\r\n") != std::string::npos)) {
      r.Problem(t.get("name"), "name in [[throttle]] must be one line of at most 80 characters");
      name.reset();
    }
    if (name && !names.insert(*name).second) {
      r.Problem(t.get("name"), "two [[throttle]] probes are named '" + *name + "'");
      name.reset();
    }
    const toml::node* threshold = t.get("threshold");
    std::optional<double> value;
    if (threshold == nullptr) {
      r.Problem(&t, where +
                        " needs threshold (a number > 0: batches wait while the query "
                        "returns it or more)");
    } else if (auto i = threshold->value<int64_t>(); i && threshold->is_integer()) {
      value = static_cast<double>(*i);
    } else if (auto d = threshold->value<double>(); d && threshold->is_floating_point()) {
      value = *d;
    }
    if (threshold != nullptr && (!value || !(*value > 0) || !std::isfinite(*value))) {
      r.Problem(threshold, "threshold in [[throttle]] must be a number > 0");
      value.reset();
    }
    if (name && database && query && value) {
      out.push_back({*name, *database, *query, *value});
    }
  }
}

}  // namespace

std::optional<MigrationFile> ParseMigrationFile(const std::string& path, std::string_view content,
                                                std::vector<FileProblem>& problems) {
  // Problems are appended in the order found, then sorted by line (FileReader counts them).
  MigrationFile f;
  f.path = path;
  f.name = fs::path(path).stem().string();
  f.checksum = Sha256Hex(content);
  FileReader r(f.path, problems);
  if (!std::regex_match(f.name, kMigrationName)) {
    r.Problem(nullptr, "the file name '" + TextExcerpt(f.name, 80) +
                           "' is not a migration name: letters, digits, _ . - (at most 200), "
                           "starting with a letter or digit, e.g. "
                           "20250601_1200_backfill_environment.toml");
  }

  toml::table doc;
  try {
    doc = toml::parse(content, path);
  } catch (const toml::parse_error& e) {
    problems.push_back({path, static_cast<int>(e.source().begin.line),
                        "not valid TOML: " + std::string(e.description())});
    return std::nullopt;
  }

  r.OnlyKeys(doc,
             {"description", "kind", "prerequisites", "gate", "application_script", "args",
              "throttle", "postgres", "postgres_to_clickhouse", "clickhouse"},
             "the file");
  if (std::optional<std::string> d = r.String(doc, "description", "the file", true)) {
    f.description = *d;
  }
  std::optional<std::string> kind = r.String(doc, "kind", "the file", true);
  if (kind) {
    if (*kind == "postgres") {
      f.kind = MigrationKind::kPostgres;
    } else if (*kind == "postgres_to_clickhouse") {
      f.kind = MigrationKind::kPostgresToClickHouse;
    } else if (*kind == "clickhouse") {
      f.kind = MigrationKind::kClickHouse;
    } else {
      r.Problem(doc.get("kind"), "unknown kind '" + TextExcerpt(*kind, 60) +
                                     "'; kind is postgres, postgres_to_clickhouse or clickhouse");
      kind.reset();
    }
  }
  if (const toml::node* pre = doc.get("prerequisites")) {
    const toml::array* arr = pre->as_array();
    if (arr == nullptr) {
      r.Problem(pre, "prerequisites must be an array of migration names");
    } else {
      for (const toml::node& el : *arr) {
        const toml::value<std::string>* s = el.as_string();
        if (s == nullptr || !std::regex_match(s->get(), kMigrationName)) {
          r.Problem(&el, "prerequisites must list migration names (file names without .toml)");
        } else {
          f.prerequisites.push_back(s->get());
        }
      }
    }
  }
  if (doc.get("gate") != nullptr) {
    std::optional<std::string> gate = r.String(doc, "gate", "the file", true);
    if (gate && !std::regex_match(*gate, kEnvVar)) {
      r.Problem(doc.get("gate"),
                "gate must name an environment variable (letters, digits, _), "
                "got '" +
                    TextExcerpt(*gate, 80) + "'");
    } else if (gate) {
      f.gate = *gate;
    }
  }
  if (doc.get("application_script") != nullptr) {
    std::optional<std::string> script = r.String(doc, "application_script", "the file", true);
    if (script && !std::regex_match(*script, kEnvVar)) {
      r.Problem(doc.get("application_script"),
                "application_script must name a script of the application's own "
                "background_migrations (letters, digits, _), got '" +
                    TextExcerpt(*script, 80) + "'");
    } else if (script) {
      f.application_script = *script;
    }
  }
  if (const toml::node* args = doc.get("args")) {
    if (const toml::table* t = args->as_table()) {
      ReadArgs(*t, r, f.args);
    } else {
      r.Problem(args, "args must be a table: [args] with one entry per arg");
    }
  }

  if (const toml::node* throttle = doc.get("throttle")) {
    ReadProbes(*throttle, r, f.probes);
  }

  if (kind) {
    const std::string section = *kind;
    const std::string where = "[" + section + "]";
    const toml::node* node = doc.get(section);
    const toml::table* t = node ? node->as_table() : nullptr;
    for (const char* other : {"postgres", "postgres_to_clickhouse", "clickhouse"}) {
      if (other != section && doc.get(other) != nullptr) {
        r.Problem(doc.get(other), "a migration of kind " + section + " has no [" + other +
                                      "] section; move its fields to " + where);
      }
    }
    if (t != nullptr) {
      f.section_line = LineOf(t);
      for (const auto& [key, value] : *t) f.field_lines[std::string(key.str())] = LineOf(&value);
    }
    if (t == nullptr) {
      r.Problem(node ? node : &doc, "kind " + section + " needs a " + where + " section");
    } else if (f.kind == MigrationKind::kPostgres) {
      r.OnlyKeys(*t, {"table", "key", "statement"}, where);
      if (auto v = r.Identifier(*t, "table", where)) f.table = *v;
      f.key = r.Identifiers(*t, "key", where);
      if (auto v = r.String(*t, "statement", where, true)) {
        f.statement = *v;
        r.Placeholder(*t, "statement", where, f.statement, "{batch}", 1);
      }
    } else if (f.kind == MigrationKind::kPostgresToClickHouse) {
      r.OnlyKeys(*t, {"target", "key", "select"}, where);
      if (auto v = r.Identifier(*t, "target", where)) f.target = *v;
      f.key = r.Identifiers(*t, "key", where);
      if (auto v = r.String(*t, "select", where, true)) f.select = *v;
    } else {
      r.OnlyKeys(*t, {"table", "before", "statement"}, where);
      if (auto v = r.Identifier(*t, "table", where)) f.table = *v;
      if (auto v = r.String(*t, "statement", where, true)) {
        f.statement = *v;
        r.Placeholder(*t, "statement", where, f.statement, "{partition}", 1);
      }
      if (t->get("before") != nullptr) {
        if (auto v = r.String(*t, "before", where, true)) {
          f.before = *v;
          r.Placeholder(*t, "before", where, *f.before, "{partition}", 1);
        }
      }
    }
  }
  if (r.count() == 0) return f;
  // This file's problems in line order, as a reader goes through it.
  std::stable_sort(problems.end() - r.count(), problems.end(),
                   [](const FileProblem& a, const FileProblem& b) { return a.line < b.line; });
  return std::nullopt;
}

LoadedMigrations LoadMigrationDirs(const std::vector<std::string>& dirs) {
  LoadedMigrations out;
  std::map<std::string, std::string> seen;  // name -> path
  for (const std::string& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      out.problems.push_back({dir, 0,
                              "no such folder of migration files; create it or fix "
                              "BGMIGRATE_MIGRATIONS_DIR"});
      continue;
    }
    std::vector<fs::path> paths;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      if (e.is_regular_file() && e.path().extension() == ".toml") paths.push_back(e.path());
    }
    std::sort(paths.begin(), paths.end());
    for (const fs::path& p : paths) {
      std::ifstream in(p, std::ios::binary);
      std::stringstream text;
      text << in.rdbuf();
      if (!in) {
        out.problems.push_back({p.string(), 0, "cannot be read"});
        continue;
      }
      std::optional<MigrationFile> f = ParseMigrationFile(p.string(), text.str(), out.problems);
      if (!f) continue;
      if (auto [it, inserted] = seen.emplace(f->name, f->path); !inserted) {
        out.problems.push_back({f->path, 0,
                                "the migration " + f->name + " is also defined in " + it->second +
                                    "; names must be unique"});
        continue;
      }
      out.files.push_back(std::move(*f));
    }
  }
  std::sort(out.files.begin(), out.files.end(),
            [](const MigrationFile& a, const MigrationFile& b) { return a.name < b.name; });
  return out;
}

}  // namespace bgm
