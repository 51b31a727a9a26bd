// PrivateServers: a Postgres and a ClickHouse of one test's own, started by
// scripts/services.sh with a temporary data folder and free loopback ports, so a fault test can
// stop and start them under a running worker without disturbing any other test. Both are
// stopped and their data deleted when the object goes away.
#pragma once

#include <string>

namespace bgm::testing {

// A loopback port that was free a moment ago (the kernel's choice for port 0).
int FreeLoopbackPort();

// A new data folder for services.sh under /tmp named `prefix`XXXXXX ("" on failure), open to
// the postgres user (services.sh would otherwise put the cluster in that user's home, where
// removing the folder leaves it: 250 MB a test).
std::string MakeServicesDir(const char* prefix);
// Removes `dir`, and a Postgres root services.sh placed outside it (a symlink's target).
void RemoveServicesDir(const std::string& dir);

class PrivateServers {
 public:
  PrivateServers();  // ADD_FAILURE when the servers do not start
  ~PrivateServers();
  PrivateServers(const PrivateServers&) = delete;
  PrivateServers& operator=(const PrivateServers&) = delete;

  bool ok() const { return ok_; }
  const std::string& database_url() const { return database_url_; }
  const std::string& clickhouse_url() const { return clickhouse_url_; }
  int pg_port() const { return pg_port_; }
  // The running clickhouse-server's process id (from its pid file), 0 when unknown. For tests
  // that freeze it with SIGSTOP.
  int ClickHousePid() const;

  // Stops / starts one server ("postgres" or "clickhouse"); true on success. Start returns once
  // the server answers.
  bool Stop(const std::string& server);
  bool Kill(const std::string& server);  // abruptly, as a crash would
  bool Start(const std::string& server);
  // Starts a streaming standby of the Postgres (services.sh start-pg-standby); its port, 0 when
  // it did not start. The destructor stops it with the rest.
  int StartPgStandby();

 private:
  bool Services(const std::string& command, const std::string& server, std::string* out);

  std::string dir_;
  int pg_port_ = 0, ch_http_port_ = 0, ch_tcp_port_ = 0, pg_standby_port_ = 0;
  std::string database_url_, clickhouse_url_;
  bool ok_ = false;
};

}  // namespace bgm::testing
