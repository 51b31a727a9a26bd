// OpenClickHouseClient: the one place a ClickHouseClient is built, choosing the transport from
// the URL's scheme: http(s):// -> HttpClickHouseClient (a server, or several listed with commas
// that it fails over between), embedded: -> EmbeddedClickHouseClient (chDB in this process,
// never listed with other nodes). Thread-safe.
//
//   Result<std::unique_ptr<ClickHouseClient>> ch = OpenClickHouseClient(
//       {.url = config.clickhouse_url, .user = u, .password = p, .database = "langfuse"});
#pragma once

#include <memory>
#include <string>

#include "clickhouse/clickhouse_client.h"
#include "clickhouse/embedded_client.h"
#include "common/status.h"

namespace bgm {

struct ClickHouseClientOptions {
  std::string url{};       // CLICKHOUSE_URL: http://host:8123, http://a:8123,http://b:8123
                           // (replicas, see clickhouse_client.h) or embedded:///path/to/data
  std::string user{};      // ignored by the embedded engine (no users there)
  std::string password{};  // ignored by the embedded engine
  std::string database{};  // "" for the default database
};

// kInvalidArgument for an empty or unsupported URL (the message shows both accepted forms) or a
// malformed list (node_list.h); otherwise as HttpClickHouseClient::Create /
// EmbeddedClickHouseClient::Create.
Result<std::unique_ptr<ClickHouseClient>> OpenClickHouseClient(const ClickHouseClientOptions& o);

}  // namespace bgm
