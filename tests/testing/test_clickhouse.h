// TestClickHouse: a fresh ClickHouse database for one test, dropped afterwards, with a client
// bound to it, on the transport BGM_TEST_CLICKHOUSE_URL selects:
//   http://127.0.0.1:58223      a server (scripts/services.sh starts Debian's 18.16)
//   embedded:///tmp/bgm-chdb    the embedded engine (chDB 26.7); the path is a parent folder:
//                               each test process gets its own data directory under it
//                               (p<pid>), since one data path belongs to one process.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "clickhouse/clickhouse_client.h"
#include "clickhouse/dialect.h"

namespace bgm::testing {

// The URL this test process uses (for embedded: with its own data directory), or "" when
// BGM_TEST_CLICKHOUSE_URL is not set.
std::string TestClickHouseUrl();
// True when the tests run on the embedded engine.
bool TestClickHouseIsEmbedded();
// A client for TestClickHouseUrl() bound to `database` ("" for none); ADD_FAILURE and null on
// error.
std::unique_ptr<ClickHouseClient> NewTestClickHouseClient(const std::string& database);

class TestClickHouse {
 public:
  TestClickHouse();  // ADD_FAILURE when the server is not there
  ~TestClickHouse();
  TestClickHouse(const TestClickHouse&) = delete;
  TestClickHouse& operator=(const TestClickHouse&) = delete;

  bool ok() const { return client_ != nullptr; }
  const std::string& url() const { return url_; }
  const std::string& database() const { return database_; }
  ClickHouseClient& client() { return *client_; }
  // Another client bound to the same database (for other threads).
  std::unique_ptr<ClickHouseClient> NewClient() const;
  const ClickHouseDialect& dialect() const { return *dialect_; }
  // The single value of a query (first line of TabSeparated output, without the newline).
  std::string Scalar(const std::string& sql);

 private:
  std::string url_;
  std::string database_;
  std::unique_ptr<ClickHouseClient> client_;
  std::optional<ClickHouseDialect> dialect_;
};

}  // namespace bgm::testing
