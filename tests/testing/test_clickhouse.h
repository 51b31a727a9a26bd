// TestClickHouse: a fresh ClickHouse database for one test on the server BGM_TEST_CLICKHOUSE_URL
// points to (scripts/services.sh starts one), dropped afterwards, with a client bound to it.
#pragma once

#include <memory>
#include <string>

#include "clickhouse/clickhouse_client.h"
#include "clickhouse/dialect.h"

namespace bgm::testing {

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
