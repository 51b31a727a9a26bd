// A real ClickHouse cluster (scripts/services.sh --cluster: ZooKeeper and two 18.16 replicas of
// one shard, PrivateCluster): the fast migrations with CLICKHOUSE_CLUSTER_ENABLED=true create
// the example application's tables ON CLUSTER with Replicated engines on both replicas, and a
// row inserted on one replica is read on the other.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "clickhouse/client_factory.h"
#include "postgres/pg_connection.h"
#include "testing/example_app.h"
#include "testing/private_cluster.h"
#include "testing/process.h"

namespace bgm {
namespace {

using Clock = std::chrono::steady_clock;
using testing::PrivateCluster;
using testing::ProcessResult;
using testing::RunProcess;

std::unique_ptr<ClickHouseClient> Replica(const PrivateCluster& cluster, int replica,
                                          const std::string& database) {
  Result<std::unique_ptr<ClickHouseClient>> client = OpenClickHouseClient(
      {.url = cluster.replica_url(replica), .user = "default", .database = database});
  EXPECT_TRUE(client.ok()) << client.status().ToString();
  return client.ok() ? std::move(*client) : nullptr;
}

std::string QueryOr(ClickHouseClient& client, const std::string& sql) {
  Result<std::string> r = client.Query(sql + " FORMAT TabSeparated");
  return r.ok() ? *r : "error: " + r.status().ToString();
}

// Polls `sql` on `client` until it returns `expected` or 30 s pass; returns the last answer.
std::string AwaitAnswer(ClickHouseClient& client, const std::string& sql,
                        const std::string& expected) {
  const Clock::time_point deadline = Clock::now() + std::chrono::seconds(30);
  std::string last;
  while (true) {
    last = QueryOr(client, sql);
    if (last == expected || Clock::now() >= deadline) return last;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

TEST(ClusterTest, MigrateMakesReplicatedTablesOnBothReplicasAndAnInsertOnOneIsReadOnTheOther) {
  const Clock::time_point started = Clock::now();
  PrivateCluster cluster("bgm_cluster");  // not `default`: the name must reach both sides
  ASSERT_TRUE(cluster.ok());
  const auto cluster_up = Clock::now();
  const std::string db = "langfuse_cluster";
  std::map<std::string, std::string> env = {{"DATABASE_URL", cluster.database_url()},
                                            {"CLICKHOUSE_URL", cluster.replica_url(1)},
                                            {"CLICKHOUSE_USER", "default"},
                                            {"CLICKHOUSE_PASSWORD", ""},
                                            {"CLICKHOUSE_DB", db},
                                            {"CLICKHOUSE_CLUSTER_ENABLED", "true"},
                                            {"CLICKHOUSE_CLUSTER_NAME", cluster.cluster_name()}};
  ProcessResult migrate = RunProcess(BGM_BINARY, {"migrate"}, env);
  ASSERT_EQ(migrate.exit_code, 0) << migrate.out << migrate.err;
  const size_t files = testing::ExampleSchema().clickhouse().size();
  ASSERT_EQ(files, 3u);
  const auto migrated = Clock::now();

  // ON CLUSTER reached both replicas: each has every table, replicated, under the macros'
  // ZooKeeper path of its database, as its own replica.
  const std::string kReplicated = "ReplicatedReplacingMergeTree";
  for (int r : {1, 2}) {
    SCOPED_TRACE("replica " + std::to_string(r));
    std::unique_ptr<ClickHouseClient> ch = Replica(cluster, r, db);
    ASSERT_NE(ch, nullptr);
    EXPECT_EQ(QueryOr(*ch, "SELECT name, engine FROM system.tables WHERE database = '" + db +
                               "' ORDER BY name"),
              "bgmigrate_schema_versions\t" + kReplicated + "\nobservations\t" + kReplicated +
                  "\nscores\t" + kReplicated + "\ntraces\t" + kReplicated + "\n");
    EXPECT_EQ(QueryOr(*ch,
                      "SELECT zookeeper_path, replica_name, total_replicas FROM "
                      "system.replicas WHERE database = '" +
                          db + "' AND table = 'traces'"),
              "/clickhouse/tables/01/" + db + ".traces\treplica" + std::to_string(r) + "\t2\n");
    EXPECT_EQ(AwaitAnswer(*ch, "SELECT count() FROM bgmigrate_schema_versions FINAL", "3\n"),
              "3\n");
  }

  // An insert on replica 1 is read on replica 2.
  std::unique_ptr<ClickHouseClient> one = Replica(cluster, 1, db);
  std::unique_ptr<ClickHouseClient> two = Replica(cluster, 2, db);
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);
  Status inserted = one->Execute(
      "INSERT INTO traces (id, timestamp, name, project_id, event_ts, is_deleted) "
      "VALUES ('cluster-row-1', '2024-10-24 17:30:00', 'replicated', 'p1', now(), 0)");
  ASSERT_TRUE(inserted.ok()) << inserted.ToString();
  const auto insert_sent = Clock::now();
  EXPECT_EQ(AwaitAnswer(*two, "SELECT id, name, project_id FROM traces WHERE id = 'cluster-row-1'",
                        "cluster-row-1\treplicated\tp1\n"),
            "cluster-row-1\treplicated\tp1\n");
  const auto replicated = Clock::now();

  // The versions recorded through replica 1 are what replica 2 reads: a migrate against it
  // applies nothing.
  env["CLICKHOUSE_URL"] = cluster.replica_url(2);
  ProcessResult again = RunProcess(BGM_BINARY, {"migrate"}, env);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.err.find("Applied clickhouse schema file"), std::string::npos) << again.err;

  auto ms = [](Clock::duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
  };
  std::cout << "figure: cluster start " << ms(cluster_up - started) << " ms, migrate "
            << ms(migrated - cluster_up) << " ms, replication of one row "
            << ms(replicated - insert_sent) << " ms" << std::endl;
}

// The traces copy through CLICKHOUSE_URL listing both replicas; replica 1 is killed (SIGKILL)
// in the middle: the worker moves to replica 2 and finishes there; replica 1, started again,
// catches up, and then both replicas hold every source row once (after FINAL).
TEST(ClusterTest, ACopyWhoseReplicaIsKilledFinishesThroughTheOtherAndTheKilledOneCatchesUp) {
  PrivateCluster cluster("bgm_cluster");
  ASSERT_TRUE(cluster.ok());
  const std::string db = "langfuse_copy";
  std::map<std::string, std::string> env = {{"DATABASE_URL", cluster.database_url()},
                                            {"CLICKHOUSE_URL", cluster.replica_urls()},
                                            {"CLICKHOUSE_USER", "default"},
                                            {"CLICKHOUSE_PASSWORD", ""},
                                            {"CLICKHOUSE_DB", db},
                                            {"CLICKHOUSE_CLUSTER_ENABLED", "true"},
                                            {"CLICKHOUSE_CLUSTER_NAME", cluster.cluster_name()},
                                            {"BGMIGRATE_LEASE_SECONDS", "2"},
                                            {"BGMIGRATE_POLL_SECONDS", "0.2"},
                                            {"BGMIGRATE_WORKER_ID", "w-cluster"}};
  ProcessResult migrate = RunProcess(BGM_BINARY, {"migrate"}, env);
  ASSERT_EQ(migrate.exit_code, 0) << migrate.err;
  ProcessResult seed = RunProcess(BGM_SEED_BINARY,
                                  {"--traces", "20000", "--observations", "0", "--scores", "0",
                                   "--blob-bytes", "300", "--random-seed", "7"},
                                  env, std::chrono::seconds(120));
  ASSERT_EQ(seed.exit_code, 0) << seed.err;
  Result<PgConnection> pg = PgConnection::Connect(cluster.database_url());
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  ASSERT_TRUE(pg->Run("UPDATE background_migrations SET paused_at = now() WHERE name <> $1",
                      {testing::kCopyTraces})
                  .ok());
  ASSERT_TRUE(pg->Run("UPDATE background_migrations SET args = $1::jsonb WHERE name = $2",
                      {R"({"batchSize": 500, "pauseMs": 100})", testing::kCopyTraces})
                  .ok());
  auto rows_processed = [&]() -> int64_t {
    Result<PgResult> r = pg->Exec(
        "SELECT rows_processed, finished_at IS NOT NULL FROM background_migrations WHERE name = $1",
        {testing::kCopyTraces});
    return r.ok() && r->rows() == 1 ? r->GetInt(0, 0) : -1;
  };
  testing::ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  Clock::time_point deadline = Clock::now() + std::chrono::seconds(120);
  while (rows_processed() < 3000 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GE(rows_processed(), 3000) << "the copy did not start";
  ASSERT_TRUE(cluster.KillReplica(1));
  const int64_t at_kill = rows_processed();
  std::optional<int> code = worker.Wait(std::chrono::seconds(180));
  ASSERT_TRUE(code.has_value()) << "the copy did not finish within 180 s of the kill";
  EXPECT_EQ(*code, 0) << worker.Stderr();
  Result<PgResult> done = pg->Exec(
      "SELECT finished_at IS NOT NULL, rows_processed FROM background_migrations WHERE name = $1",
      {testing::kCopyTraces});
  ASSERT_TRUE(done.ok());
  EXPECT_EQ(done->Get(0, 0), "t") << worker.Stderr();
  EXPECT_NE(worker.Stderr().find("ClickHouse: requests now go to "), std::string::npos)
      << "the worker's log names its move to replica 2:\n"
      << worker.Stderr();

  // Replication is asynchronous: a batch replica 1 acknowledged (or took in and registered in
  // ZooKeeper just before the kill) that replica 2 had not fetched yet is on replica 1 only until
  // it returns (replica 2 drops the worker's resend of that block as a duplicate). So replica 2
  // holds every row but at most one batch (500 rows), none twice; then both hold every row.
  const std::string sql = "SELECT count(), uniqExact(id) FROM traces FINAL";
  std::unique_ptr<ClickHouseClient> two = Replica(cluster, 2, db);
  ASSERT_NE(two, nullptr);
  const std::string on_two = QueryOr(*two, sql);
  const size_t tab = on_two.find('\t');
  ASSERT_NE(tab, std::string::npos) << on_two;
  const int64_t count_two = std::stoll(on_two.substr(0, tab));
  EXPECT_EQ(on_two, std::to_string(count_two) + "\t" + std::to_string(count_two) + "\n")
      << "replica 2 after the copy: no row twice";
  EXPECT_GE(count_two, 20000 - 500) << "replica 2 after the copy: at most one batch missing";
  EXPECT_LE(count_two, 20000);
  ASSERT_TRUE(cluster.StartReplica(1));
  std::unique_ptr<ClickHouseClient> one = Replica(cluster, 1, db);
  ASSERT_NE(one, nullptr);
  const Clock::time_point restarted = Clock::now();
  const std::string exact = "20000\t20000\n";
  std::string last;
  deadline = Clock::now() + std::chrono::seconds(90);
  while ((last = QueryOr(*one, sql)) != exact && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
  }
  EXPECT_EQ(last, exact) << "replica 1, 90 s after it was started again";
  EXPECT_EQ(AwaitAnswer(*two, sql, exact), exact) << "replica 2 once replica 1 is back";

  // verify reads each replica CLICKHOUSE_URL lists, against Postgres.
  ProcessResult verify =
      RunProcess(BGM_BINARY, {"verify", testing::kCopyTraces, "--sample", "200"}, env);
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  for (int r : {1, 2}) {
    EXPECT_NE(verify.out.find("== replica " + std::to_string(r) + " of 2 (127.0.0.1:"),
              std::string::npos)
        << verify.out;
  }
  EXPECT_NE(verify.out.find("every replica matches"), std::string::npos) << verify.out;
  std::cout
      << "figure: replica 1 killed at " << at_kill << " rows; replica 2 held " << count_two
      << " rows after the copy; replica 1 caught up "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - restarted).count()
      << " ms after its restart" << std::endl;
}

// Four `bgmigrate migrate` started at once, two through each replica, with the cluster on: each
// version is applied once (one record per version on both replicas, and in Postgres), by one of
// them; the others find it applied.
TEST(ClusterTest, ConcurrentMigratesThroughBothReplicasApplyEachVersionOnce) {
  PrivateCluster cluster("bgm_cluster");
  ASSERT_TRUE(cluster.ok());
  const std::string db = "langfuse_race";
  std::vector<std::unique_ptr<testing::ChildProcess>> migrates;
  for (int i = 0; i < 4; ++i) {
    migrates.push_back(std::make_unique<testing::ChildProcess>(
        BGM_BINARY, std::vector<std::string>{"migrate"},
        std::map<std::string, std::string>{{"DATABASE_URL", cluster.database_url()},
                                           {"CLICKHOUSE_URL", cluster.replica_url(1 + i % 2)},
                                           {"CLICKHOUSE_USER", "default"},
                                           {"CLICKHOUSE_PASSWORD", ""},
                                           {"CLICKHOUSE_DB", db},
                                           {"CLICKHOUSE_CLUSTER_ENABLED", "true"},
                                           {"CLICKHOUSE_CLUSTER_NAME", cluster.cluster_name()}}));
  }
  int applied = 0;
  for (auto& m : migrates) {
    std::optional<int> code = m->Wait(std::chrono::seconds(120));
    ASSERT_TRUE(code.has_value()) << "a migrate did not end within 120 s";
    EXPECT_EQ(*code, 0) << m->Stderr();
    const std::string err = m->Stderr();
    for (size_t at = err.find("Applied clickhouse schema file"); at != std::string::npos;
         at = err.find("Applied clickhouse schema file", at + 1)) {
      ++applied;
    }
  }
  EXPECT_EQ(applied, 3) << "each of the 3 ClickHouse files applied by exactly one process";
  for (int r : {1, 2}) {
    SCOPED_TRACE("replica " + std::to_string(r));
    std::unique_ptr<ClickHouseClient> ch = Replica(cluster, r, db);
    ASSERT_NE(ch, nullptr);
    EXPECT_EQ(AwaitAnswer(*ch,
                          "SELECT version, count() FROM bgmigrate_schema_versions GROUP BY version "
                          "ORDER BY version",
                          "1\t1\n2\t1\n3\t1\n"),
              "1\t1\n2\t1\n3\t1\n");
  }
  Result<PgConnection> pg = PgConnection::Connect(cluster.database_url());
  ASSERT_TRUE(pg.ok()) << pg.status().ToString();
  Result<PgResult> versions =
      pg->Exec("SELECT count(*), count(DISTINCT (store, version)) FROM bgmigrate_schema_versions");
  ASSERT_TRUE(versions.ok()) << versions.status().ToString();
  EXPECT_EQ(versions->Get(0, 0), versions->Get(0, 1)) << "a Postgres version recorded twice";
}

}  // namespace
}  // namespace bgm
