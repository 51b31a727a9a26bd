#include "testing/private_cluster.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <map>
#include <sstream>

#include "testing/private_servers.h"
#include "testing/process.h"

namespace bgm::testing {
namespace {

// The value of `export NAME=value` in services.sh env output, unquoted as the shell would for
// the values it prints (printf %q escapes a comma as "\,").
std::string ExportedValue(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  const std::string prefix = "export " + name + "=";
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) != 0) continue;
    std::string value;
    for (size_t i = prefix.size(); i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size()) ++i;
      value += line[i];
    }
    return value;
  }
  return "";
}

}  // namespace

PrivateCluster::PrivateCluster(std::string cluster_name) : cluster_name_(std::move(cluster_name)) {
  dir_ = MakeServicesDir("bgm-cluster-");
  if (dir_.empty()) return;
  for (const char* name :
       {"BGMIGRATE_PG_PORT", "BGMIGRATE_ZK_PORT", "BGMIGRATE_CH_REPLICA1_HTTP_PORT",
        "BGMIGRATE_CH_REPLICA1_TCP_PORT", "BGMIGRATE_CH_REPLICA1_INTERSERVER_PORT",
        "BGMIGRATE_CH_REPLICA2_HTTP_PORT", "BGMIGRATE_CH_REPLICA2_TCP_PORT",
        "BGMIGRATE_CH_REPLICA2_INTERSERVER_PORT"}) {
    ports_.emplace_back(name, std::to_string(FreeLoopbackPort()));
  }
  std::string out;
  if (!Services({"start"}, &out)) return;
  if (!Services({"env"}, &out)) return;
  database_url_ = ExportedValue(out, "DATABASE_URL");
  all_replica_urls_ = ExportedValue(out, "BGMIGRATE_CH_REPLICA_URLS");
  std::istringstream urls(all_replica_urls_);
  for (std::string url; std::getline(urls, url, ',');) replica_urls_.push_back(url);
  ok_ = !database_url_.empty() && replica_urls_.size() == 2 &&
        ExportedValue(out, "CLICKHOUSE_URL") == replica_urls_[0] &&
        ExportedValue(out, "CLICKHOUSE_CLUSTER_ENABLED") == "true" &&
        ExportedValue(out, "CLICKHOUSE_CLUSTER_NAME") == cluster_name_;
  if (!ok_) ADD_FAILURE() << "services.sh --cluster env printed unexpected lines:\n" << out;
}

PrivateCluster::~PrivateCluster() {
  if (dir_.empty()) return;
  std::string out;
  Services({"stop"}, &out);
  RemoveServicesDir(dir_);
}

bool PrivateCluster::StopReplica(int replica) {
  std::string out;
  return Services({"stop-replica", std::to_string(replica)}, &out);
}

bool PrivateCluster::KillReplica(int replica) {
  std::string out;
  return Services({"kill-replica", std::to_string(replica)}, &out);
}

bool PrivateCluster::StartReplica(int replica) {
  std::string out;
  return Services({"start-replica", std::to_string(replica)}, &out);
}

bool PrivateCluster::Services(const std::vector<std::string>& args, std::string* out) {
  std::vector<std::string> argv = {BGM_SOURCE_DIR "/scripts/services.sh", "--cluster"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::map<std::string, std::string> env = {{"BGMIGRATE_DATA_DIR", dir_},
                                            {"BGMIGRATE_CLICKHOUSE", "server"},
                                            {"CLICKHOUSE_CLUSTER_NAME", cluster_name_}};
  env.insert(ports_.begin(), ports_.end());
  ProcessResult r = RunProcess("/bin/bash", argv, env, std::chrono::seconds(180));
  *out = r.out;
  if (r.exit_code != 0) {
    std::string joined;
    for (const std::string& a : args) joined += " " + a;
    ADD_FAILURE() << "services.sh --cluster" << joined << " failed (exit " << r.exit_code << "):\n"
                  << r.out << r.err;
    return false;
  }
  return true;
}

}  // namespace bgm::testing
