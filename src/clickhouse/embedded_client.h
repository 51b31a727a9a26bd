// EmbeddedClickHouseClient: the ClickHouseClient transport on chDB (ClickHouse 26.7 as an
// in-process library, libchdb.so, loaded at run time; see chdb_api.h), selected by
// CLICKHOUSE_URL=embedded:///path/to/data.
//
// One engine per process. chDB boots one ClickHouse per process on one data path, and ClickHouse
// locks that path: only one process can hold an embedded data directory. bgmigrate takes its own
// lock first (<path>/bgmigrate.lock, holding the owner's pid) so a second process gets an error
// naming the path and the holder instead of chDB's stderr line.
//
// Threads: every client in the process shares one chDB connection per path, guarded by one
// mutex; a call (a whole streamed insert included) holds it from start to end, so statements of
// different clients run one after another, never interleaved, and a connection never sees
// another statement while an insert stream is open. Each call first switches the connection to
// its client's database (USE) and applies its settings (SET, reset to DEFAULT afterwards). A
// client itself is used by one thread at a time, like the HTTP one. An InsertSource must not
// call ClickHouse itself (it would wait for the mutex its insert holds).
//
//   Result<std::unique_ptr<EmbeddedClickHouseClient>> ch =
//       EmbeddedClickHouseClient::Create({.path = "/var/lib/bgm/ch", .database = "langfuse"});
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "clickhouse/clickhouse_client.h"
#include "common/status.h"

namespace bgm {

class EmbeddedEngine;

struct ClickHouseEmbeddedConfig {
  std::string path{};      // the data directory (created if missing); absolute or relative
  std::string database{};  // CLICKHOUSE_DB; "" means "default"
};

class EmbeddedClickHouseClient final : public ClickHouseClient {
 public:
  // Loads libchdb.so if needed (kFailedPrecondition with the fix when it is missing) and binds
  // to the process's engine for `path`; the engine itself opens on the first call. Errors:
  // kInvalidArgument for an empty path, kFailedPrecondition when this process already uses
  // another embedded path.
  static Result<std::unique_ptr<EmbeddedClickHouseClient>> Create(ClickHouseEmbeddedConfig config);

  EmbeddedClickHouseClient(const EmbeddedClickHouseClient&) = delete;
  EmbeddedClickHouseClient& operator=(const EmbeddedClickHouseClient&) = delete;
  ~EmbeddedClickHouseClient() override;

  // As ClickHouseClient. The engine opening fails with kFailedPrecondition when another process
  // holds the data path (the message names the path and that process's pid).
  Result<std::string> Query(std::string_view sql, const Settings& settings = {}) override;
  Status Execute(std::string_view sql, const Settings& settings = {}) override;
  Status Insert(std::string_view insert_query, InsertSource& source,
                const Settings& settings = {}) override;
  Result<std::string> Version() override;
  Status Ping() override;

  // The absolute data path.
  const std::string& path() const;

 private:
  EmbeddedClickHouseClient(std::shared_ptr<EmbeddedEngine> engine, std::string database);

  std::shared_ptr<EmbeddedEngine> engine_;
  std::string database_;
};

// "embedded:///abs/path" or "embedded:relative/path" -> the path (made absolute against the
// working directory). kInvalidArgument for an empty path or another scheme.
Result<std::string> EmbeddedPathFromUrl(std::string_view url);
bool IsEmbeddedClickHouseUrl(std::string_view url);

// Closes this process's embedded engine, if one is open, and releases the data path so another
// process may open it; the next call of any client opens it again (a full engine boot, ~0.5 s).
// For the end of a command and for tests that hand the path to a child process. Waits for a
// call in progress to finish.
void ReleaseEmbeddedClickHouse();

}  // namespace bgm
