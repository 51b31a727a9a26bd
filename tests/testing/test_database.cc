#include "testing/test_database.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>

#include "common/embedded_file.h"
#include "schema/schema_runner.h"
#include "testing/example_app.h"

namespace bgm::testing {

std::string WithDatabase(const std::string& conninfo, const std::string& dbname) {
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  if (opts == nullptr) {
    PQfreemem(err);
    return conninfo;
  }
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (std::string(o->keyword) == "dbname" || o->val == nullptr) continue;
    std::string v = o->val;
    std::string quoted = "'";
    for (char c : v) {
      if (c == '\'' || c == '\\') quoted += '\\';
      quoted += c;
    }
    quoted += "'";
    out += std::string(o->keyword) + "=" + quoted + " ";
  }
  PQconninfoFree(opts);
  return out + "dbname=" + dbname;
}

TestDatabase::TestDatabase(bool apply_schema) {
  const char* admin = std::getenv("BGM_TEST_DATABASE_URL");
  if (admin == nullptr || *admin == '\0') {
    ADD_FAILURE() << "BGM_TEST_DATABASE_URL is not set: run the tests through scripts/test.sh, "
                     "or start scripts/services.sh and export it";
    return;
  }
  admin_url_ = admin;
  static std::atomic<int> counter{0};
  std::random_device rd;
  name_ = "bgm_test_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
          std::to_string(rd() % 100000);
  Result<PgConnection> conn = PgConnection::Connect(admin_url_);
  if (!conn.ok()) {
    ADD_FAILURE() << conn.status().ToString();
    return;
  }
  Status s = conn->Run("CREATE DATABASE " + QuoteIdent(name_));
  if (!s.ok()) {
    ADD_FAILURE() << s.ToString();
    return;
  }
  url_ = WithDatabase(admin_url_, name_);
  if (!apply_schema) {
    ok_ = true;
    return;
  }
  Result<PgConnection> db = PgConnection::Connect(url_);
  if (!db.ok()) {
    ADD_FAILURE() << db.status().ToString();
    return;
  }
  Result<int> applied = ApplyPostgresSchema(*db, PostgresSchemaFiles(), ExampleSchema().postgres());
  if (!applied.ok()) {
    ADD_FAILURE() << applied.status().ToString();
    return;
  }
  ok_ = true;
}

TestDatabase::~TestDatabase() {
  if (name_.empty() || admin_url_.empty()) return;
  Result<PgConnection> conn = PgConnection::Connect(admin_url_);
  if (conn.ok()) {
    (void)conn->Run("DROP DATABASE IF EXISTS " + QuoteIdent(name_) + " WITH (FORCE)");
  }
}

PgConnection TestDatabase::Connect() const {
  Result<PgConnection> conn = PgConnection::Connect(url_);
  if (!conn.ok()) {
    ADD_FAILURE() << conn.status().ToString();
    std::abort();
  }
  return std::move(*conn);
}

}  // namespace bgm::testing
