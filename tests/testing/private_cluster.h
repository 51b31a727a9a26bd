// PrivateCluster: a Postgres, a ZooKeeper and two ClickHouse servers that are the two replicas
// of one shard of one cluster, of one test's own: `scripts/services.sh --cluster` with a
// temporary data folder and free loopback ports. A test may stop, kill and restart a replica
// under a running worker. Everything is stopped and its data deleted when the object goes away.
// Not thread-safe.
#pragma once

#include <string>
#include <vector>

namespace bgm::testing {

class PrivateCluster {
 public:
  // `cluster_name` is the <remote_servers> name (CLICKHOUSE_CLUSTER_NAME). ADD_FAILURE when the
  // servers do not start.
  explicit PrivateCluster(std::string cluster_name = "default");
  ~PrivateCluster();
  PrivateCluster(const PrivateCluster&) = delete;
  PrivateCluster& operator=(const PrivateCluster&) = delete;

  bool ok() const { return ok_; }
  const std::string& cluster_name() const { return cluster_name_; }
  const std::string& database_url() const { return database_url_; }
  // http://127.0.0.1:PORT of replica 1 or 2.
  const std::string& replica_url(int replica) const { return replica_urls_.at(replica - 1); }
  // Both, comma-separated, as `services.sh env` prints BGMIGRATE_CH_REPLICA_URLS.
  const std::string& replica_urls() const { return all_replica_urls_; }

  // One replica (1 or 2); true on success. StartReplica returns once the replica answers and
  // reads ZooKeeper; KillReplica sends SIGKILL, as a crash would.
  bool StopReplica(int replica);
  bool KillReplica(int replica);
  bool StartReplica(int replica);

 private:
  bool Services(const std::vector<std::string>& args, std::string* out);

  std::string cluster_name_;
  std::string dir_;
  std::vector<std::pair<std::string, std::string>> ports_;  // BGMIGRATE_*_PORT -> port
  std::string database_url_;
  std::vector<std::string> replica_urls_;
  std::string all_replica_urls_;
  bool ok_ = false;
};

}  // namespace bgm::testing
