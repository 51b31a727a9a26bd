// CLICKHOUSE_URL's node lists: how they split, and the errors malformed ones get from the
// splitter, the HTTP client's configuration and OpenClickHouseClient (none of which connects).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "clickhouse/client_factory.h"
#include "clickhouse/node_list.h"

namespace bgm {
namespace {

using Nodes = std::vector<std::string>;

TEST(ClickHouseNodeListTest, OneNodeIsItself) {
  Result<Nodes> one = SplitClickHouseUrl("http://127.0.0.1:8123");
  ASSERT_TRUE(one.ok()) << one.status().ToString();
  EXPECT_EQ(*one, Nodes{"http://127.0.0.1:8123"});
  Result<Nodes> embedded = SplitClickHouseUrl("embedded:///var/lib/ch");
  ASSERT_TRUE(embedded.ok());
  EXPECT_EQ(*embedded, Nodes{"embedded:///var/lib/ch"});
}

TEST(ClickHouseNodeListTest, CommasSeparateNodesInOrderAndSpacesAroundThemAreDropped) {
  Result<Nodes> nodes =
      SplitClickHouseUrl("http://a:8123, https://u:p%2Cw@b:8443/ch?x=1 ,http://c");
  ASSERT_TRUE(nodes.ok()) << nodes.status().ToString();
  EXPECT_EQ(*nodes, (Nodes{"http://a:8123", "https://u:p%2Cw@b:8443/ch?x=1", "http://c"}));
}

TEST(ClickHouseNodeListTest, AnEmptyElementIsRefusedByItsPosition) {
  struct Case {
    std::string url, node, count;
  };
  for (const Case& c : {Case{"http://a:8123,,http://b:8123", "2", "3"},
                        Case{"http://a:8123,", "2", "2"}, Case{" ,http://b:8123", "1", "2"}}) {
    SCOPED_TRACE(c.url);
    Result<Nodes> nodes = SplitClickHouseUrl(c.url);
    ASSERT_FALSE(nodes.ok());
    EXPECT_EQ(nodes.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(nodes.status().message(),
              "CLICKHOUSE_URL lists " + c.count + " nodes separated by commas and node " + c.node +
                  " is empty; remove the extra comma (a comma inside a node's URL is written %2C)");
  }
  Result<Nodes> blank = SplitClickHouseUrl("  ");
  ASSERT_FALSE(blank.ok());
  EXPECT_TRUE(blank.status().message().starts_with("CLICKHOUSE_URL is empty"))
      << blank.status().message();
}

TEST(ClickHouseNodeListTest, EmbeddedCannotBeListedWithOtherNodes) {
  for (const std::string url :
       {"embedded:///data,http://a:8123", "http://a:8123,embedded:rel/dir"}) {
    SCOPED_TRACE(url);
    Result<Nodes> nodes = SplitClickHouseUrl(url);
    ASSERT_FALSE(nodes.ok());
    EXPECT_EQ(nodes.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(nodes.status().message().find("is embedded:, which cannot be combined with other "
                                            "nodes"),
              std::string::npos)
        << nodes.status().message();
    // Through the factory too, before any engine is loaded.
    Result<std::unique_ptr<ClickHouseClient>> client = OpenClickHouseClient({.url = url});
    ASSERT_FALSE(client.ok());
    EXPECT_EQ(client.status().message(), nodes.status().message());
  }
  Result<Nodes> first = SplitClickHouseUrl("embedded:///data,http://a:8123");
  EXPECT_NE(first.status().message().find("node 1 is embedded:"), std::string::npos);
  Result<Nodes> second = SplitClickHouseUrl("http://a:8123,embedded:rel/dir");
  EXPECT_NE(second.status().message().find("node 2 is embedded:"), std::string::npos);
}

TEST(ClickHouseNodeListTest, ANodeListedTwiceIsRefused) {
  Result<Nodes> nodes = SplitClickHouseUrl("http://a:8123,http://b:8123, http://a:8123");
  ASSERT_FALSE(nodes.ok());
  EXPECT_EQ(nodes.status().message(),
            "CLICKHOUSE_URL lists the same node twice (nodes 1 and 3 of 3); list each server once");
}

TEST(ClickHouseNodeListTest, ABadSchemeNamesItsNodeAndNoUrlIsEchoed) {
  Result<std::unique_ptr<ClickHouseClient>> tcp =
      OpenClickHouseClient({.url = "http://u:secretpw@a:8123,tcp://u:secretpw@b:9000"});
  ASSERT_FALSE(tcp.ok());
  EXPECT_EQ(tcp.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(tcp.status().message(),
            "node 2 of 2 in CLICKHOUSE_URL must start with http:// or https:// (the HTTP port, "
            "8123 by default), not tcp://; each node listed in CLICKHOUSE_URL is "
            "http(s)://host:port");
  Result<std::unique_ptr<HttpClickHouseClient>> garbage =
      HttpClickHouseClient::Create({.url = "http://a:8123,http://us er:secretpw@[bad"});
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.status().code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(
      garbage.status().message().starts_with("node 2 of 2 in CLICKHOUSE_URL is not a valid URL"))
      << garbage.status().message();
  EXPECT_EQ(garbage.status().message().find("secretpw"), std::string::npos);
  // One node keeps the messages it always had.
  Result<std::unique_ptr<ClickHouseClient>> one = OpenClickHouseClient({.url = "tcp://b:9000"});
  EXPECT_EQ(one.status().message(),
            "CLICKHOUSE_URL must start with http:// or https:// (the HTTP port, 8123 by default), "
            "not tcp://; CLICKHOUSE_URL takes http(s)://host:port or embedded:///path");
}

TEST(ClickHouseNodeListTest, AValidListStartsOnItsFirstNodeWithoutConnecting) {
  Result<std::unique_ptr<HttpClickHouseClient>> client =
      HttpClickHouseClient::Create({.url = "http://u:p@127.0.0.1:1/ch?x=1, http://127.0.0.1:2"});
  ASSERT_TRUE(client.ok()) << client.status().ToString();
  EXPECT_EQ((*client)->node_count(), 2u);
  EXPECT_EQ((*client)->endpoint(), "http://127.0.0.1:1/ch");
  EXPECT_EQ((*client)->failovers(), 0u);
  EXPECT_EQ((*client)->connections_opened(), 0u);
}

}  // namespace
}  // namespace bgm
