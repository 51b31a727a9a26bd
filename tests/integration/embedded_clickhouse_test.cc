// What is particular to the embedded ClickHouse transport (chDB in the process): one process per
// data directory with a clear error for the second, our SIGTERM handling kept, clients on many
// threads sharing the engine, and the errors when the library or the URL is wrong.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "clickhouse/client_factory.h"
#include "clickhouse/row_binary.h"
#include "seed/seeder.h"
#include "testing/example_app.h"
#include "testing/process.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

TEST(EmbeddedClickHouseTest, ASecondProcessIsRefusedNamingThePathAndSigtermStopsTheHolder) {
  if (!testing::TestClickHouseIsEmbedded()) {
    GTEST_SKIP() << "embedded transport only; runs in the embedded pass of scripts/test.sh";
  }
  testing::TestDatabase pg;
  testing::TestClickHouse ch;
  ASSERT_TRUE(pg.ok());
  ASSERT_TRUE(ch.ok());
  PgConnection conn = pg.Connect();
  SeedOptions seed;
  seed.traces = 60000;
  seed.observations = 0;
  seed.scores = 0;
  seed.blob_bytes = 200;
  seed.random_seed = 3;
  ASSERT_TRUE(Seed(conn, seed).ok());
  const std::map<std::string, std::string> env = {
      {"DATABASE_URL", pg.url()},        {"CLICKHOUSE_URL", ch.url()},
      {"CLICKHOUSE_DB", ch.database()},  {"BGMIGRATE_LEASE_SECONDS", "2"},
      {"BGMIGRATE_POLL_SECONDS", "0.2"}, {"BGMIGRATE_WORKER_ID", "holder"}};
  ASSERT_EQ(testing::RunProcess(BGM_BINARY, {"migrate"}, env).exit_code, 0);
  ASSERT_TRUE(conn.Run("UPDATE background_migrations SET args = '{\"batchSize\": 1000}' WHERE "
                       "name = $1",
                       {testing::kCopyTraces})
                  .ok());
  const std::string path = ch.url().substr(std::string("embedded://").size());

  testing::ChildProcess holder(BGM_BINARY, {"worker"}, env);
  const std::string pid = std::to_string(holder.pid());
  // Wait until the worker holds the data directory and has copied a few batches.
  const auto deadline = std::chrono::steady_clock::now() + seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    Result<PgResult> r = conn.Exec(
        "SELECT rows_processed FROM background_migrations WHERE name = $1", {testing::kCopyTraces});
    if (ReadFile(path + "/bgmigrate.lock") == pid + "\n" && r.ok() && r->GetInt(0, 0) >= 3000) {
      break;
    }
    std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_EQ(ReadFile(path + "/bgmigrate.lock"), pid + "\n") << holder.Stderr();

  // Another process: a clear refusal naming the path and the holder, exit code 2.
  testing::ProcessResult verify =
      testing::RunProcess(BGM_BINARY, {"verify", testing::kCopyTraces}, env);
  EXPECT_EQ(verify.exit_code, 2) << verify.err;
  EXPECT_NE(verify.err.find("the embedded ClickHouse data at " + path +
                            " is held by another process (pid " + pid + ")"),
            std::string::npos)
      << verify.err;
  // This process too.
  std::unique_ptr<ClickHouseClient> second = testing::NewTestClickHouseClient(ch.database());
  ASSERT_NE(second, nullptr);
  Result<std::string> r = second->Query("SELECT 1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.status().message().find("(pid " + pid + ")"), std::string::npos)
      << r.status().message();

  // chDB installed no signal handlers of its own: SIGTERM still stops the worker cleanly.
  const auto sent = std::chrono::steady_clock::now();
  holder.Signal(SIGTERM);
  std::optional<int> code = holder.Wait(seconds(10));
  ASSERT_TRUE(code.has_value()) << "worker still running 10 s after SIGTERM";
  EXPECT_EQ(*code, 0) << holder.Stderr();
  EXPECT_LT(std::chrono::steady_clock::now() - sent, seconds(10));
  EXPECT_NE(holder.Stderr().find("Received SIGTERM"), std::string::npos);
  Result<PgResult> state = conn.Exec(
      "SELECT worker_id IS NULL, rows_processed FROM background_migrations WHERE name = $1",
      {testing::kCopyTraces});
  ASSERT_TRUE(state.ok());
  EXPECT_TRUE(state->GetBool(0, 0)) << "lease released";
  const int64_t done = state->GetInt(0, 1);
  EXPECT_GT(done, 0);
  EXPECT_LT(done, 60000);
  // The checkpoint matches what the engine stored (the path is free again for this process).
  EXPECT_EQ(ch.Scalar("SELECT count() FROM traces FINAL"), std::to_string(done));

  // A new worker finishes from the checkpoint; verify agrees.
  auto env2 = env;
  env2["BGMIGRATE_WORKER_ID"] = "finisher";
  testing::ProcessResult finish =
      testing::RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, env2, seconds(300));
  ASSERT_EQ(finish.exit_code, 0) << finish.err;
  EXPECT_EQ(ch.Scalar("SELECT count() FROM traces FINAL"), "60000");
  testing::ProcessResult ok =
      testing::RunProcess(BGM_BINARY, {"verify", testing::kCopyTraces}, env);
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
}

TEST(EmbeddedClickHouseTest, MissingLibraryAndBadUrlsAreClearErrors) {
  testing::TestDatabase pg;
  ASSERT_TRUE(pg.ok());
  const std::string dir = "/tmp/bgm-nolib-" + std::to_string(getpid());
  testing::ProcessResult nolib =
      testing::RunProcess(BGM_BINARY, {"migrate"},
                          {{"DATABASE_URL", pg.url()},
                           {"CLICKHOUSE_URL", "embedded://" + dir},
                           {"BGMIGRATE_CHDB_LIBRARY", "/nonexistent/libchdb.so"}});
  EXPECT_EQ(nolib.exit_code, 2) << nolib.err;
  EXPECT_NE(nolib.err.find("needs chDB's libchdb.so, which is not at /nonexistent/libchdb.so: "
                           "run scripts/fetch-chdb.sh"),
            std::string::npos)
      << nolib.err;
  EXPECT_NE(nolib.err.find("BGMIGRATE_CHDB_LIBRARY"), std::string::npos) << nolib.err;

  testing::ProcessResult host = testing::RunProcess(
      BGM_BINARY, {"migrate"}, {{"DATABASE_URL", pg.url()}, {"CLICKHOUSE_URL", "embedded://x/y"}});
  EXPECT_EQ(host.exit_code, 2) << host.err;
  EXPECT_NE(host.err.find("names a host; write embedded:///absolute/path"), std::string::npos)
      << host.err;
  testing::ProcessResult empty = testing::RunProcess(
      BGM_BINARY, {"migrate"}, {{"DATABASE_URL", pg.url()}, {"CLICKHOUSE_URL", "embedded:"}});
  EXPECT_EQ(empty.exit_code, 2) << empty.err;
  EXPECT_NE(empty.err.find("has no data directory"), std::string::npos) << empty.err;
  testing::ProcessResult tcp =
      testing::RunProcess(BGM_BINARY, {"migrate"},
                          {{"DATABASE_URL", pg.url()}, {"CLICKHOUSE_URL", "tcp://127.0.0.1:9000"}});
  EXPECT_EQ(tcp.exit_code, 2) << tcp.err;
  EXPECT_NE(tcp.err.find("CLICKHOUSE_URL takes http(s)://host:port or embedded:///path"),
            std::string::npos)
      << tcp.err;
}

TEST(EmbeddedClickHouseTest, EmbeddedUrlsResolveToAbsolutePaths) {
  EXPECT_EQ(*EmbeddedPathFromUrl("embedded:///var/lib/ch/"), "/var/lib/ch");
  EXPECT_EQ(*EmbeddedPathFromUrl("embedded:/var/lib/ch"), "/var/lib/ch");
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  EXPECT_EQ(*EmbeddedPathFromUrl("embedded:data/ch"), std::string(cwd) + "/data/ch");
  EXPECT_EQ(EmbeddedPathFromUrl("http://x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(IsEmbeddedClickHouseUrl("http://127.0.0.1:8123"));
  EXPECT_TRUE(IsEmbeddedClickHouseUrl("embedded:///x"));
}

// Both transports: clients on several threads, in two databases, interleaving streamed inserts
// and queries (on embedded they share one connection, serialized by the engine's mutex).
TEST(EmbeddedClickHouseTest, ClientsOnManyThreadsInTwoDatabasesGetTheirOwnResults) {
  testing::TestClickHouse a;
  testing::TestClickHouse b;
  ASSERT_TRUE(a.ok());
  ASSERT_TRUE(b.ok());
  for (testing::TestClickHouse* t : {&a, &b}) {
    ASSERT_TRUE(t->client()
                    .Execute("CREATE TABLE t (k UInt32, v UInt64) ENGINE = MergeTree ORDER BY k")
                    .ok());
  }
  std::vector<std::string> errors(6);
  {
    std::vector<std::jthread> threads;
    for (uint32_t i = 0; i < 6; ++i) {
      threads.emplace_back([&, i] {
        std::unique_ptr<ClickHouseClient> c = (i % 2 == 0 ? a : b).NewClient();
        for (uint64_t round = 0; round < 10; ++round) {
          uint64_t row = 0;
          ChunkedInsertSource source([&](std::string& chunk) -> Result<bool> {
            RowBinaryWriter w(chunk);
            for (int n = 0; n < 100; ++n, ++row) {
              w.WriteUInt32(i);
              w.WriteUInt64(row);
            }
            std::this_thread::yield();
            return row < 1000;
          });
          Status s = c->Insert("INSERT INTO t (k, v) FORMAT RowBinary", source);
          if (!s.ok()) errors[i] = s.ToString();
          Result<std::string> n = c->Query("SELECT count() FROM t WHERE k = " + std::to_string(i));
          if (!n.ok()) {
            errors[i] = n.status().ToString();
          } else if (*n != std::to_string((round + 1) * 1000) + "\n") {
            errors[i] = "round " + std::to_string(round) + " counted " + *n;
          }
        }
      });
    }
  }
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  EXPECT_EQ(a.Scalar("SELECT count(), sum(v), arraySort(groupUniqArray(k)) FROM t"),
            "30000\t14985000\t[0,2,4]");
  EXPECT_EQ(b.Scalar("SELECT count(), uniqExact(k) FROM t"), "30000\t3");
}

// Both transports: settings apply to one call only. On embedded every client shares one engine
// connection, so a setting must be reset after the call, not leak into another client's query.
TEST(EmbeddedClickHouseTest, SettingsOfOneCallDoNotLeakIntoTheNextOrIntoAnotherClient) {
  testing::TestClickHouse ch;
  ASSERT_TRUE(ch.ok());
  std::unique_ptr<ClickHouseClient> other = ch.NewClient();
  ASSERT_NE(other, nullptr);
  const std::string sql =
      "SELECT value FROM system.settings WHERE name = 'max_block_size' FORMAT TabSeparated";
  Result<std::string> with = ch.client().Query(sql, {{"max_block_size", "4321"}});
  ASSERT_TRUE(with.ok()) << with.status().ToString();
  EXPECT_EQ(*with, "4321\n");
  Result<std::string> after = ch.client().Query(sql);
  Result<std::string> from_other = other->Query(sql);
  ASSERT_TRUE(after.ok());
  ASSERT_TRUE(from_other.ok());
  EXPECT_NE(*after, "4321\n");
  EXPECT_EQ(*from_other, *after);
  // A failing call with a setting resets it too.
  EXPECT_FALSE(ch.client().Query("SELEC 1", {{"max_block_size", "4321"}}).ok());
  Result<std::string> again = other->Query(sql);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *after);
}

TEST(EmbeddedClickHouseTest, AnInsertWithoutItsFormatClauseIsRefusedBeforeReadingTheSource) {
  if (!testing::TestClickHouseIsEmbedded()) {
    GTEST_SKIP() << "embedded transport only (HTTP sends the statement to the server as is)";
  }
  testing::TestClickHouse ch;
  ASSERT_TRUE(ch.ok());
  ASSERT_TRUE(ch.client().Execute("CREATE TABLE t (k UInt32) ENGINE = MergeTree ORDER BY k").ok());
  int reads = 0;
  ChunkedInsertSource source([&](std::string&) -> Result<bool> {
    ++reads;
    return false;
  });
  Status s = ch.client().Insert("INSERT INTO t (k)", source);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "an insert must end with its FORMAT clause, e.g. \"INSERT INTO t FORMAT RowBinary\"; "
            "got: INSERT INTO t (k)");
  EXPECT_EQ(reads, 0);
  // Lower-case and trailing whitespace are accepted.
  std::string row;
  RowBinaryWriter(row).WriteUInt32(42);
  StringInsertSource one(row);
  Status ok = ch.client().Insert("insert into t (k) format RowBinary \n", one);
  EXPECT_TRUE(ok.ok()) << ok.ToString();
  EXPECT_EQ(ch.Scalar("SELECT sum(k) FROM t"), "42");
}

}  // namespace
}  // namespace bgm
