#include "testing/test_clickhouse.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <random>

#include "clickhouse/client_factory.h"

namespace bgm::testing {
namespace {
std::unique_ptr<ClickHouseClient> MakeClient(const std::string& url, const std::string& db) {
  Result<std::unique_ptr<ClickHouseClient>> c =
      OpenClickHouseClient({.url = url, .user = "default", .password = "", .database = db});
  if (!c.ok()) {
    ADD_FAILURE() << c.status().ToString();
    return nullptr;
  }
  return std::move(*c);
}
}  // namespace

std::string TestClickHouseUrl() {
  const char* url = std::getenv("BGM_TEST_CLICKHOUSE_URL");
  if (url == nullptr || *url == '\0') return "";
  if (!IsEmbeddedClickHouseUrl(url)) return url;
  Result<std::string> parent = EmbeddedPathFromUrl(url);
  if (!parent.ok()) return url;  // the factory reports the error
  return "embedded://" + *parent + "/p" + std::to_string(getpid());
}

bool TestClickHouseIsEmbedded() { return IsEmbeddedClickHouseUrl(TestClickHouseUrl()); }

std::unique_ptr<ClickHouseClient> NewTestClickHouseClient(const std::string& database) {
  return MakeClient(TestClickHouseUrl(), database);
}

TestClickHouse::TestClickHouse() {
  const std::string url = TestClickHouseUrl();
  if (url.empty()) {
    ADD_FAILURE() << "BGM_TEST_CLICKHOUSE_URL is not set: run the tests through scripts/test.sh, "
                     "or start scripts/services.sh and export it";
    return;
  }
  url_ = url;
  static std::atomic<int> counter{0};
  std::random_device rd;
  database_ = "bgm_t_" + std::to_string(getpid()) + "_" + std::to_string(counter++) + "_" +
              std::to_string(rd() % 100000);
  std::unique_ptr<ClickHouseClient> admin = MakeClient(url_, "");
  if (admin == nullptr) return;
  Status s = admin->Execute("CREATE DATABASE " + database_);
  if (!s.ok()) {
    ADD_FAILURE() << s.ToString();
    return;
  }
  std::unique_ptr<ClickHouseClient> client = MakeClient(url_, database_);
  if (client == nullptr) return;
  Result<ClickHouseDialect> dialect = DetectDialect(*client, ClickHouseCluster{});
  if (!dialect.ok()) {
    ADD_FAILURE() << dialect.status().ToString();
    return;
  }
  dialect_ = *dialect;
  client_ = std::move(client);
}

TestClickHouse::~TestClickHouse() {
  if (database_.empty() || url_.empty()) return;
  std::unique_ptr<ClickHouseClient> admin = MakeClient(url_, "");
  if (admin) (void)admin->Execute("DROP DATABASE IF EXISTS " + database_);
}

std::unique_ptr<ClickHouseClient> TestClickHouse::NewClient() const {
  return MakeClient(url_, database_);
}

std::string TestClickHouse::Scalar(const std::string& sql) {
  Result<std::string> r = client_->Query(sql + " FORMAT TabSeparated");
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  if (!r.ok()) return "";
  std::string out = *r;
  if (const size_t nl = out.find('\n'); nl != std::string::npos) out.resize(nl);
  return out;
}

}  // namespace bgm::testing
