#include "clickhouse/client_factory.h"

namespace bgm {

Result<std::unique_ptr<ClickHouseClient>> OpenClickHouseClient(const ClickHouseClientOptions& o) {
  if (o.url.empty()) {
    return InvalidArgument(
        "CLICKHOUSE_URL is not set; e.g. export CLICKHOUSE_URL=http://127.0.0.1:8123 for a "
        "server (scripts/services.sh env prints it for the local one) or "
        "CLICKHOUSE_URL=embedded:///path/to/data for the embedded engine");
  }
  if (IsEmbeddedClickHouseUrl(o.url)) {
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
    if (c.status().code() == StatusCode::kInvalidArgument &&
        o.url.find("://") != std::string::npos && !o.url.starts_with("http")) {
      return InvalidArgument(c.status().message() +
                             "; CLICKHOUSE_URL takes http(s)://host:port or embedded:///path");
    }
    return c.status();
  }
  return std::unique_ptr<ClickHouseClient>(std::move(*c));
}

}  // namespace bgm
