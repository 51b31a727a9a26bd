#include "clickhouse/dialect.h"

#include <charconv>

namespace bgm {

Result<ClickHouseDialect> ClickHouseDialect::FromVersion(std::string_view version,
                                                         ClickHouseCluster cluster) {
  while (!version.empty() && (version.back() == '\n' || version.back() == ' ')) {
    version.remove_suffix(1);
  }
  int major = 0;
  auto [ptr, ec] = std::from_chars(version.data(), version.data() + version.size(), major);
  if (ec != std::errc() || major <= 0 || (ptr != version.data() + version.size() && *ptr != '.')) {
    return InvalidArgument("cannot read the ClickHouse version from '" + std::string(version) +
                           "'");
  }
  return ClickHouseDialect(std::string(version), major, std::move(cluster));
}

Result<std::string> ClickHouseDialect::Expand(std::string_view name,
                                              std::string_view database) const {
  const bool m = modern();
  if (name == "ON_CLUSTER") {
    return cluster_.enabled ? "ON CLUSTER " + cluster_.name : std::string();
  }
  if (name == "DATETIME64") return std::string(m ? "DateTime64(3)" : "DateTime");
  if (name == "LC_STRING") return std::string(m ? "LowCardinality(String)" : "String");
  if (name == "BOOL") return std::string(m ? "Bool" : "UInt8");
  if (name == "CODEC_ZSTD") return std::string(m ? "CODEC(ZSTD(3))" : "");
  // Before Map (21.1), a Nested column stands in: NAME.key and NAME.value, two parallel arrays.
  if (name == "MAP_STRING_STRING") {
    return std::string(m ? "Map(LowCardinality(String), String)"
                         : "Nested(key String, value String)");
  }
  if (name == "MAP_STRING_UINT64") {
    return std::string(m ? "Map(LowCardinality(String), UInt64)"
                         : "Nested(key String, value UInt64)");
  }
  if (name == "MAP_STRING_DECIMAL") {
    return std::string(m ? "Map(LowCardinality(String), Decimal64(12))"
                         : "Nested(key String, value Decimal64(12))");
  }
  if (name.starts_with("REPLACING_MERGE_TREE:")) {
    const std::string table(name.substr(std::string_view("REPLACING_MERGE_TREE:").size()));
    const std::string args = m ? "event_ts, is_deleted" : "event_ts";
    if (cluster_.enabled) {
      return "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/" + std::string(database) +
             "." + table + "', '{replica}', " + args + ")";
    }
    return "ReplacingMergeTree(" + args + ")";
  }
  if (name == "VERSIONS_ENGINE") {
    if (cluster_.enabled) {
      return "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/" + std::string(database) +
             ".bgmigrate_schema_versions', '{replica}')";
    }
    return std::string("ReplacingMergeTree()");
  }
  return InvalidArgument("unknown schema placeholder {{" + std::string(name) + "}}");
}

Result<std::string> ClickHouseDialect::Resolve(std::string_view sql,
                                               std::string_view database) const {
  std::string out;
  out.reserve(sql.size());
  size_t pos = 0;
  while (true) {
    const size_t open = sql.find("{{", pos);
    if (open == std::string_view::npos) break;
    const size_t close = sql.find("}}", open);
    if (close == std::string_view::npos) {
      return InvalidArgument("unterminated schema placeholder at byte " + std::to_string(open));
    }
    out.append(sql.substr(pos, open - pos));
    Result<std::string> value = Expand(sql.substr(open + 2, close - open - 2), database);
    if (!value.ok()) return value.status();
    out += *value;
    pos = close + 2;
  }
  out.append(sql.substr(pos));
  return out;
}

Result<ClickHouseDialect> DetectDialect(ClickHouseClient& client, ClickHouseCluster cluster) {
  Result<std::string> version = client.Version();
  if (!version.ok()) return version.status();
  return ClickHouseDialect::FromVersion(*version, std::move(cluster));
}

}  // namespace bgm
