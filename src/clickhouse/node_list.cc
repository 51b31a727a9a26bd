#include "clickhouse/node_list.h"

#include "clickhouse/embedded_client.h"

namespace bgm {
namespace {

std::string_view TrimSpaces(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::vector<std::string>> SplitClickHouseUrl(std::string_view url) {
  std::vector<std::string> nodes;
  for (size_t start = 0;;) {
    const size_t comma = url.find(',', start);
    nodes.emplace_back(
        TrimSpaces(url.substr(start, comma == std::string_view::npos ? comma : comma - start)));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  const std::string count = std::to_string(nodes.size());
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (nodes[i].empty()) {
      if (nodes.size() == 1) {
        return InvalidArgument(
            "CLICKHOUSE_URL is empty; e.g. http://127.0.0.1:8123, several servers as "
            "http://a:8123,http://b:8123, or embedded:///path/to/data");
      }
      return InvalidArgument("CLICKHOUSE_URL lists " + count +
                             " nodes separated by commas and node " + std::to_string(i + 1) +
                             " is empty; remove the extra comma (a comma inside a node's URL is "
                             "written %2C)");
    }
  }
  if (nodes.size() == 1) return nodes;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (IsEmbeddedClickHouseUrl(nodes[i])) {
      return InvalidArgument(
          "CLICKHOUSE_URL lists " + count + " nodes separated by commas and node " +
          std::to_string(i + 1) +
          " is embedded:, which cannot be combined with other nodes: the embedded engine runs "
          "inside this process and shares no data with any server. List only http(s):// "
          "servers that are replicas of one shard, or give one embedded: path alone");
    }
    for (size_t j = 0; j < i; ++j) {
      if (nodes[j] == nodes[i]) {
        return InvalidArgument("CLICKHOUSE_URL lists the same node twice (nodes " +
                               std::to_string(j + 1) + " and " + std::to_string(i + 1) + " of " +
                               count + "); list each server once");
      }
    }
  }
  return nodes;
}

}  // namespace bgm
