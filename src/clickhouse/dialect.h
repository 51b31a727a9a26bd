// ClickHouseDialect: what the connected server can do, detected once from SELECT version(),
// plus the cluster setting. The schema files' placeholders and the row encoders both follow it,
// so one set of SQL files and one encoder serve Debian's 18.16 and current releases (23.x+).
// Immutable; thread-safe to share.
//
//   Result<ClickHouseDialect> d = DetectDialect(client, cluster);
//   Result<std::string> sql = d->Resolve(file_contents, "langfuse");
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "clickhouse/clickhouse_client.h"
#include "common/status.h"

namespace bgm {

struct ClickHouseCluster {
  bool enabled = false;          // CLICKHOUSE_CLUSTER_ENABLED
  std::string name = "default";  // CLICKHOUSE_CLUSTER_NAME
};

class ClickHouseDialect {
 public:
  // `version` as the server reports it ("18.16.1", "24.8.4.13"). kInvalidArgument if unparsable.
  static Result<ClickHouseDialect> FromVersion(std::string_view version, ClickHouseCluster cluster);

  const std::string& version() const { return version_; }
  int major() const { return major_; }
  // 23.x and later: DateTime64(3), Map, LowCardinality, Bool, CODEC, ReplacingMergeTree with
  // is_deleted. Older servers get the nearest equivalents (see docs/clickhouse-schema.md).
  bool modern() const { return major_ >= 23; }
  bool has_datetime64() const { return modern(); }
  const ClickHouseCluster& cluster() const { return cluster_; }

  // Replaces every {{PLACEHOLDER}} in `sql`; `database` names the ZooKeeper paths of replicated
  // tables. kInvalidArgument names an unknown placeholder.
  Result<std::string> Resolve(std::string_view sql, std::string_view database = "default") const;

 private:
  ClickHouseDialect(std::string version, int major, ClickHouseCluster cluster)
      : version_(std::move(version)), major_(major), cluster_(std::move(cluster)) {}
  Result<std::string> Expand(std::string_view name, std::string_view database) const;

  std::string version_;
  int major_;
  ClickHouseCluster cluster_;
};

// Asks the server for its version. Errors as ClickHouseClient::Version().
Result<ClickHouseDialect> DetectDialect(ClickHouseClient& client, ClickHouseCluster cluster);

}  // namespace bgm
