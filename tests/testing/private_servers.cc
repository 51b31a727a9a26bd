#include "testing/private_servers.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "testing/process.h"

namespace bgm::testing {
namespace {

// The value of `export NAME=value` in services.sh env output.
std::string Exported(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  const std::string prefix = "export " + name + "=";
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return "";
}

}  // namespace

int FreeLoopbackPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string MakeServicesDir(const char* prefix) {
  std::string tmpl = std::string("/tmp/") + prefix + "XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr || chmod(tmpl.c_str(), 0755) != 0) {
    ADD_FAILURE() << "could not make the data folder " << tmpl;
    return "";
  }
  return tmpl;
}

void RemoveServicesDir(const std::string& dir) {
  std::error_code ec;
  const std::filesystem::path root = std::filesystem::path(dir) / "postgres";
  if (std::filesystem::is_symlink(root, ec)) {
    const std::filesystem::path target = std::filesystem::read_symlink(root, ec);
    if (!ec) std::filesystem::remove_all(target, ec);
  }
  std::filesystem::remove_all(dir, ec);
}

PrivateServers::PrivateServers() {
  dir_ = MakeServicesDir("bgm-private-");
  if (dir_.empty()) return;
  pg_port_ = FreeLoopbackPort();
  ch_http_port_ = FreeLoopbackPort();
  ch_tcp_port_ = FreeLoopbackPort();
  pg_standby_port_ = FreeLoopbackPort();
  std::string out;
  if (!Services("start", "", &out)) return;
  if (!Services("env", "", &out)) return;
  database_url_ = Exported(out, "DATABASE_URL");
  clickhouse_url_ = Exported(out, "CLICKHOUSE_URL");
  ok_ = !database_url_.empty() && !clickhouse_url_.empty();
  if (!ok_) ADD_FAILURE() << "services.sh env printed no URLs:\n" << out;
}

PrivateServers::~PrivateServers() {
  if (dir_.empty()) return;
  std::string out;
  Services("stop", "", &out);
  RemoveServicesDir(dir_);
}

int PrivateServers::ClickHousePid() const {
  std::ifstream in(dir_ + "/clickhouse/clickhouse-server.pid");
  int pid = 0;
  in >> pid;
  return pid;
}

bool PrivateServers::Stop(const std::string& server) {
  std::string out;
  return Services("stop", server, &out);
}

bool PrivateServers::Kill(const std::string& server) {
  std::string out;
  return Services("kill", server, &out);
}

bool PrivateServers::Start(const std::string& server) {
  std::string out;
  return Services("start", server, &out);
}

int PrivateServers::StartPgStandby() {
  std::string out;
  return Services("start-pg-standby", "", &out) ? pg_standby_port_ : 0;
}

bool PrivateServers::Services(const std::string& command, const std::string& server,
                              std::string* out) {
  std::vector<std::string> args = {BGM_SOURCE_DIR "/scripts/services.sh", command};
  if (!server.empty()) args.push_back(server);
  ProcessResult r = RunProcess("/bin/bash", args,
                               {{"BGMIGRATE_DATA_DIR", dir_},
                                {"BGMIGRATE_PG_PORT", std::to_string(pg_port_)},
                                {"BGMIGRATE_CH_HTTP_PORT", std::to_string(ch_http_port_)},
                                {"BGMIGRATE_CH_TCP_PORT", std::to_string(ch_tcp_port_)},
                                {"BGMIGRATE_PG_STANDBY_PORT", std::to_string(pg_standby_port_)}},
                               std::chrono::seconds(180));
  *out = r.out;
  if (r.exit_code != 0) {
    ADD_FAILURE() << "services.sh " << command << " " << server << " failed (exit " << r.exit_code
                  << "):\n"
                  << r.out << r.err;
    return false;
  }
  return true;
}

}  // namespace bgm::testing
