// ClickHouseClient: the one interface through which bgmigrate talks to ClickHouse (queries,
// DDL, streaming inserts), so a second transport (embedded chDB) can be added beside HTTP.
// HttpClickHouseClient is the libcurl implementation over ClickHouse's HTTP interface.
//
// Not thread-safe: a client owns one connection (a CURL easy handle, kept alive between
// requests) and serves one request at a time; give each thread its own client. Clients of one
// CLICKHOUSE_URL share only which node is current (an atomic; see Failover below). Credentials
// travel only in the X-ClickHouse-User / X-ClickHouse-Key headers, never in a URL, a log line
// or an error message.
//
//   Result<std::unique_ptr<HttpClickHouseClient>> ch = HttpClickHouseClient::Create(
//       {.url = "http://127.0.0.1:8123", .user = "default", .database = "langfuse"});
//   Result<std::string> rows = (*ch)->Query("SELECT id FROM traces FORMAT TabSeparated");
//
// Errors (see clickhouse_error.h for the code table): a server error becomes
// "ClickHouse error <code>: <message>" with ClickHouseErrorCode() giving the code back;
// an unreachable server or dropped connection is kUnavailable, a timeout kDeadlineExceeded.
// A stalled request is kUnavailable too: when no byte has moved either way for half the stall
// timeout, the client asks the server's /ping on a second connection; a server that does not
// answer within the other half (a stopped process, a black hole) fails the request, one that
// answers is busy (a long query or insert; ClickHouse 18.16 sends no progress while working)
// and the request goes on.
//
// Failover. CLICKHOUSE_URL may list several nodes, http://a:8123,http://b:8123: replicas of one
// shard holding the same tables (nothing here checks that). One rule decides what is sent
// where: a request is sent to another node only when nothing of it reached its node, i.e. the
// client could not connect to it (the name did not resolve, the connection was refused, or
// connecting took longer than connect_timeout); it then goes to the next node in list order,
// which is safe for every request, an INSERT included. Every other failure (a dropped
// connection, a timeout or stall after connecting, a ClickHouse error) is returned naming its
// node and is never sent elsewhere: a write's outcome is unknown there, and an insert's streamed
// body cannot be replayed. The caller redoes such work from its last checkpoint (a copy waits
// out kUnavailable and re-sends the batch, whose identical rows ReplacingMergeTree collapses).
// Where that next request goes: every client of the same CLICKHOUSE_URL in the process shares
// one current node (at first the first listed). It moves when a node cannot be connected to, or
// when a request to it stalled and it did not answer /ping (see above), and stays on the new
// node until that one fails the same way. When no node can be connected to, the error is
// kUnavailable listing each node and its failure. Each move is logged (warning) naming the node
// left and the node taken.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clickhouse/clickhouse_error.h"
#include "clickhouse/insert_source.h"
#include "common/status.h"

namespace bgm {

// Query-level settings sent with one request, in order, as URL parameters (name=value). An
// unknown name fails the whole request on 18.16 (code 115): send only what the server has.
using ClickHouseSettings = std::vector<std::pair<std::string, std::string>>;

class ClickHouseClient {
 public:
  using Settings = ClickHouseSettings;
  virtual ~ClickHouseClient() = default;

  // Runs `sql` and returns the response body in the format the SQL asks for
  // ("... FORMAT TabSeparated", "... FORMAT JSONEachRow"); the whole result is held in memory.
  // An error the server appends after starting a 200 response is detected and returned.
  virtual Result<std::string> Query(std::string_view sql, const Settings& settings = {}) = 0;

  // Runs a statement whose output is not needed (DDL, INSERT ... SELECT).
  virtual Status Execute(std::string_view sql, const Settings& settings = {}) = 0;

  // Streams an insert: `insert_query` is the statement up to its FORMAT clause
  // ("INSERT INTO t (a, b) FORMAT RowBinary") and the rows are pulled from `source` until it
  // reports the end. OK means the server acknowledged every row. An error may leave earlier
  // blocks stored (ClickHouse inserts are atomic per block of max_insert_block_size rows only),
  // so callers keep one insert under that size and make replays idempotent. kUnavailable or
  // kDeadlineExceeded means the outcome is unknown; a source error aborts the request and is
  // returned as is.
  virtual Status Insert(std::string_view insert_query, InsertSource& source,
                        const Settings& settings = {}) = 0;

  // The server's version string, e.g. "18.16.1" (SELECT version()). Also proves the
  // credentials work.
  virtual Result<std::string> Version() = 0;

  // OK when the server answers its health check. Does not check credentials.
  virtual Status Ping() = 0;
};

// The stall timeout of clients configured from now on (BGMIGRATE_CLICKHOUSE_STALL_SECONDS, set
// once at start-up); 0 turns the check off. Thread-safe.
void SetDefaultClickHouseStallTimeout(std::chrono::milliseconds stall);
std::chrono::milliseconds DefaultClickHouseStallTimeout();

// Member initializers are explicit so designated initialization ({.url = ...}) compiles
// without -Wmissing-field-initializers noise.
struct ClickHouseHttpConfig {
  std::string url{};       // CLICKHOUSE_URL, e.g. http://127.0.0.1:8123 (a path is kept), or
                           // several nodes: http://a:8123,http://b:8123 (see Failover above)
  std::string user{};      // CLICKHOUSE_USER; "" sends no user header (server's default user)
  std::string password{};  // CLICKHOUSE_PASSWORD
  std::string database{};  // CLICKHOUSE_DB; "" uses the user's default database
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(5)};
  std::chrono::milliseconds total_timeout{std::chrono::seconds(300)};        // whole request
  std::chrono::milliseconds stall_timeout{DefaultClickHouseStallTimeout()};  // 0: no check
  bool gzip_requests = false;  // compress request bodies on the fly (Content-Encoding: gzip)
};

// The only owners of libcurl handles: nothing else calls curl_easy_cleanup/curl_slist_free_all.
struct CurlDeleter {
  void operator()(CURL* handle) const noexcept { curl_easy_cleanup(handle); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const noexcept { curl_slist_free_all(list); }
};
using CurlSlistPtr = std::unique_ptr<curl_slist, CurlSlistDeleter>;

class HttpClickHouseClient final : public ClickHouseClient {
 public:
  // Validates the configuration; does not connect (the first request does). kInvalidArgument
  // for a missing or malformed URL or list (node_list.h) or a non-http(s) scheme, naming the
  // node by its position when several are listed. Credentials written into a node's URL
  // (http://user:pass@host:8123) are moved into the headers and used for that node when
  // `user`/`password` are empty.
  static Result<std::unique_ptr<HttpClickHouseClient>> Create(ClickHouseHttpConfig config);

  HttpClickHouseClient(const HttpClickHouseClient&) = delete;
  HttpClickHouseClient& operator=(const HttpClickHouseClient&) = delete;
  ~HttpClickHouseClient() override;

  Result<std::string> Query(std::string_view sql, const Settings& settings = {}) override;
  Status Execute(std::string_view sql, const Settings& settings = {}) override;
  Status Insert(std::string_view insert_query, InsertSource& source,
                const Settings& settings = {}) override;
  Result<std::string> Version() override;
  Status Ping() override;

  // The URL without credentials or query string, as shown in messages, of the node this
  // client's last request went to (or, before any request, the process's current node).
  const std::string& endpoint() const { return nodes_[current_].base_url; }
  // How many nodes CLICKHOUSE_URL lists.
  size_t node_count() const { return nodes_.size(); }
  // How many times this client moved the current node (see Failover above).
  uint64_t failovers() const { return failovers_; }
  // TCP connections this client has opened so far; stays at 1 while keep-alive holds.
  uint64_t connections_opened() const { return connections_opened_; }

 private:
  // One server of CLICKHOUSE_URL.
  struct Node {
    std::string base_url;    // without credentials, query or fragment
    std::string base_query;  // the query string written in the node's URL
    std::string ping_url;
    std::string user;
    std::string password;
  };
  using UrlParams = std::vector<std::pair<std::string, std::string>>;

  HttpClickHouseClient(ClickHouseHttpConfig config, CurlPtr curl, std::vector<Node> nodes,
                       std::shared_ptr<std::atomic<size_t>> shared_current);

  // Builds "<base>?<base query>&database=..&<settings>&<extra>" for `node`, or an error for a
  // setting name that is malformed or reserved.
  Result<std::string> BuildUrl(const Node& node, const Settings& settings,
                               const UrlParams& extra) const;
  // Performs one request on the current node, moving on while nodes are unreachable (see
  // Failover in the file comment): a chunked POST with the body pulled from `body` to the
  // node's URL with `settings` and `extra`, or a GET of its /ping when `body` is null. Fills
  // `response` with the response body, keeping at most `max_response_bytes` (and the last
  // 64 KiB beyond, for error detection). `check_tail`: look for an exception appended to a 200
  // body.
  Status Perform(const Settings& settings, const UrlParams& extra, InsertSource* body,
                 std::string* response, size_t max_response_bytes, bool check_tail);
  // Performs the request on `node` alone. Sets `*unreachable` to what failed when no
  // connection to the node could be made and nothing was sent (the request may go elsewhere),
  // `*stalled` when the request stalled and the node did not answer /ping.
  Status PerformOn(const Node& node, const std::string& url, InsertSource* body,
                   std::string* response, size_t max_response_bytes, bool check_tail,
                   std::optional<std::string>* unreachable, bool* stalled);
  // Makes nodes_[index] the node this client and every other of its URL send to next.
  void MoveTo(size_t index);
  // The Status for a transfer with `node` that libcurl failed (no usable server answer);
  // `connected`: a connection was made (or reused) for it.
  Status StatusFromCurl(const Node& node, int curl_code, const char* error_buffer,
                        bool connected) const;
  // Replaces every node's password in `status`'s message, should a server ever echo it.
  Status Scrubbed(Status status) const;
  // OK when `node` answers /ping within `timeout` on a connection of its own.
  Status PingWithin(const Node& node, std::chrono::milliseconds timeout);

  ClickHouseHttpConfig config_;
  CurlPtr curl_;
  CurlPtr probe_curl_;       // the stall check's own connection; created when first needed
  std::vector<Node> nodes_;  // at least one
  // The index into nodes_ shared by the process's clients of this URL, and this client's copy
  // of it, taken at each request.
  std::shared_ptr<std::atomic<size_t>> shared_current_;
  size_t current_ = 0;
  uint64_t failovers_ = 0;
  uint64_t connections_opened_ = 0;
};

}  // namespace bgm
