// TestDatabase: a fresh Postgres database for one test, created on the server that
// BGM_TEST_DATABASE_URL points to (scripts/services.sh starts one) and dropped afterwards.
// The fast migrations are applied (bgmigrate's control tables and the example application's
// Postgres files, examples/langfuse/schema/postgres), so the control and application tables
// exist.
#pragma once

#include <string>

#include "postgres/pg_connection.h"

namespace bgm::testing {

class TestDatabase {
 public:
  // Fails the current test (ADD_FAILURE) when the server is not there. `apply_schema`: run the
  // Postgres fast migrations (false leaves the database empty).
  explicit TestDatabase(bool apply_schema = true);
  ~TestDatabase();
  TestDatabase(const TestDatabase&) = delete;
  TestDatabase& operator=(const TestDatabase&) = delete;

  bool ok() const { return ok_; }
  const std::string& url() const { return url_; }
  const std::string& name() const { return name_; }
  // A new connection to this database (asserts on failure).
  PgConnection Connect() const;

 private:
  std::string admin_url_;
  std::string name_;
  std::string url_;
  bool ok_ = false;
};

// `conninfo` with its dbname replaced by `dbname`, as key=value conninfo.
std::string WithDatabase(const std::string& conninfo, const std::string& dbname);

}  // namespace bgm::testing
