// CLICKHOUSE_URL as the list of nodes it names: one node (http://host:8123 or
// embedded:///data/dir) or several http(s) servers separated by commas
// (http://a:8123,http://b:8123), replicas of one shard that a client fails over between
// (clickhouse_client.h says when). A pure function of the text; thread-safe.
//
//   Result<std::vector<std::string>> nodes = SplitClickHouseUrl(config.clickhouse_url);
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace bgm {

// The nodes `url` lists, in order, each without surrounding spaces. A comma inside one node's
// URL (in a password, say) is written %2C. kInvalidArgument, naming the node by its position
// and never echoing a URL (it may carry a password), for an empty list or element, a node
// listed twice, or an embedded: node listed with any other node.
Result<std::vector<std::string>> SplitClickHouseUrl(std::string_view url);

}  // namespace bgm
