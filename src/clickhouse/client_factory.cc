#include "clickhouse/client_factory.h"

#include <algorithm>

#include "clickhouse/node_list.h"

namespace bgm {

Result<std::unique_ptr<ClickHouseClient>> OpenClickHouseClient(const ClickHouseClientOptions& o) {
  if (o.url.empty()) {
    return InvalidArgument(
        "CLICKHOUSE_URL is not set; e.g. export CLICKHOUSE_URL=http://127.0.0.1:8123 for a "
        "server (scripts/services.sh env prints it for the local one) or "
        "CLICKHOUSE_URL=embedded:///path/to/data for the embedded engine");
  }
  Result<std::vector<std::string>> nodes = SplitClickHouseUrl(o.url);
  if (!nodes.ok()) return nodes.status();
  if (nodes->size() == 1 && IsEmbeddedClickHouseUrl(o.url)) {
    Result<std::string> path = EmbeddedPathFromUrl(o.url);
    if (!path.ok()) return path.status();
    Result<std::unique_ptr<EmbeddedClickHouseClient>> c =
        EmbeddedClickHouseClient::Create({.path = *path, .database = o.database});
    if (!c.ok()) return c.status();
    return std::unique_ptr<ClickHouseClient>(std::move(*c));
  }
  Result<std::unique_ptr<HttpClickHouseClient>> c = HttpClickHouseClient::Create(
      {.url = o.url, .user = o.user, .password = o.password, .database = o.database});
  if (!c.ok()) {
    const bool foreign_scheme = std::any_of(nodes->begin(), nodes->end(), [](const auto& n) {
      return n.find("://") != std::string::npos && !n.starts_with("http");
    });
    if (c.status().code() == StatusCode::kInvalidArgument && foreign_scheme) {
      return InvalidArgument(c.status().message() +
                             (nodes->size() == 1
                                  ? "; CLICKHOUSE_URL takes http(s)://host:port or embedded:///path"
                                  : "; each node listed in CLICKHOUSE_URL is http(s)://host:port"));
    }
    return c.status();
  }
  return std::unique_ptr<ClickHouseClient>(std::move(*c));
}

}  // namespace bgm
