#include "clickhouse/embedded_client.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "clickhouse/chdb_api.h"
#include "clickhouse/clickhouse_error.h"

namespace bgm {

namespace {

constexpr std::string_view kScheme = "embedded:";
constexpr size_t kAppendBytes = 1 << 20;

bool IsSettingName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// A SQL literal for a setting value: numbers as they are, anything else as a quoted string.
std::string SettingLiteral(std::string_view value) {
  bool numeric = !value.empty();
  for (char c : value) {
    if (!((c >= '0' && c <= '9') || c == '-' || c == '.')) numeric = false;
  }
  if (numeric) return std::string(value);
  std::string out = "'";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string QuoteIdentifier(std::string_view name) {
  std::string out = "`";
  for (char c : name) {
    if (c == '`' || c == '\\') out += '\\';
    out += c;
  }
  return out + "`";
}

// The Status of a chDB error text ("Code: 60. DB::Exception: ... (UNKNOWN_TABLE)").
Status StatusFromChdbError(std::string_view text) {
  if (std::optional<ClickHouseServerError> e = ParseClickHouseErrorBody(text)) {
    return ClickHouseErrorStatus(*e);
  }
  std::string line(text.substr(0, text.find('\n')));
  return Internal("embedded ClickHouse: " + line);
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

// "INSERT INTO t (a) FORMAT RowBinary" -> {"INSERT INTO t (a)", "RowBinary"}.
Result<std::pair<std::string, std::string>> SplitFormat(std::string_view insert_query) {
  std::string_view q = insert_query;
  while (!q.empty() && std::isspace(static_cast<unsigned char>(q.back()))) q.remove_suffix(1);
  const size_t word = q.find_last_of(" \t\r\n");
  if (word != std::string_view::npos) {
    std::string_view format = q.substr(word + 1);
    std::string_view head = q.substr(0, word);
    while (!head.empty() && std::isspace(static_cast<unsigned char>(head.back()))) {
      head.remove_suffix(1);
    }
    if (head.size() >= 6 && IEquals(head.substr(head.size() - 6), "FORMAT") &&
        (head.size() == 6 || std::isspace(static_cast<unsigned char>(head[head.size() - 7])))) {
      return std::pair<std::string, std::string>(std::string(head.substr(0, head.size() - 6)),
                                                 std::string(format));
    }
  }
  return InvalidArgument(
      "an insert must end with its FORMAT clause, e.g. \"INSERT INTO t FORMAT "
      "RowBinary\"; got: " +
      std::string(insert_query.substr(0, 200)));
}

}  // namespace

// The process's engine on one data path: our lock file, chDB's connection, the database the
// connection is switched to. Every member is guarded by mu_.
class EmbeddedEngine {
 public:
  EmbeddedEngine(const ChdbApi* api, std::string path) : api_(api), path_(std::move(path)) {}
  ~EmbeddedEngine() { Release(); }

  const std::string& path() const { return path_; }

  // Runs `fn(conn)` with the connection open and switched to `database`, holding the mutex.
  template <typename Fn>
  auto Run(const std::string& database, Fn&& fn) -> decltype(fn(ChdbConnection{})) {
    std::lock_guard<std::mutex> lock(mu_);
    if (Status s = OpenLocked(); !s.ok()) return s;
    const std::string db = database.empty() ? "default" : database;
    if (db != current_database_) {
      Result<std::string> used = QueryLocked("USE " + QuoteIdentifier(db));
      if (!used.ok()) return used.status();
      current_database_ = db;
    }
    return fn(*conn_);
  }

  // Runs one statement on the open connection (mutex held) and returns its output. After an
  // error the connection is drained: chDB 26.7 hands the output a failed statement had produced
  // before its error to the next statement (regression test
  // ClickHouseClientTest.ExceptionAfterA200IsAnError on embedded).
  Result<std::string> QueryLocked(std::string_view sql) {
    static constexpr std::string_view kFormat = "TabSeparated";
    ChdbResultPtr r(api_->query_n(*conn_, sql.data(), sql.size(), kFormat.data(), kFormat.size()),
                    ChdbResultDeleter{api_});
    if (r == nullptr) return Internal("embedded ClickHouse returned no result for a statement");
    if (const char* err = api_->result_error(r.get()); err != nullptr) {
      Status status = StatusFromChdbError(err);
      r.reset();
      DrainLocked();
      return status;
    }
    const char* buf = api_->result_buffer(r.get());
    return std::string(buf == nullptr ? "" : buf,
                       buf == nullptr ? 0 : api_->result_length(r.get()));
  }

  void DrainLocked() {
    static constexpr std::string_view kSql = "SELECT 1";
    static constexpr std::string_view kFormat = "TabSeparated";
    ChdbResultPtr(api_->query_n(*conn_, kSql.data(), kSql.size(), kFormat.data(), kFormat.size()),
                  ChdbResultDeleter{api_});
  }

  // Applies `settings` with SET (mutex held); returns the names applied, for ResetLocked.
  Result<std::vector<std::string>> ApplyLocked(const ClickHouseSettings& settings) {
    std::vector<std::string> applied;
    for (const auto& [name, value] : settings) {
      if (!IsSettingName(name)) {
        ResetLocked(applied);
        return InvalidArgument("\"" + name + "\" is not a ClickHouse setting name");
      }
      if (name == "query" || name == "database" || name == "user" || name == "password") {
        ResetLocked(applied);
        return InvalidArgument("\"" + name +
                               "\" cannot be passed as a setting; the client sets it");
      }
      Result<std::string> set = QueryLocked("SET " + name + " = " + SettingLiteral(value));
      if (!set.ok()) {
        ResetLocked(applied);
        return set.status();
      }
      applied.push_back(name);
    }
    return applied;
  }

  void ResetLocked(const std::vector<std::string>& names) {
    for (const std::string& name : names) (void)QueryLocked("SET " + name + " = DEFAULT");
  }

  void Release() {
    std::lock_guard<std::mutex> lock(mu_);
    if (conn_ != nullptr) {
      api_->close_conn(conn_);
      conn_ = nullptr;
    }
    if (lock_fd_ >= 0) {
      ::close(lock_fd_);  // releases the flock
      lock_fd_ = -1;
    }
    current_database_.clear();
  }

  const ChdbApi* api() const { return api_; }

 private:
  Status OpenLocked() {
    if (conn_ != nullptr) return Status::Ok();
    std::error_code ec;
    std::filesystem::create_directories(path_, ec);
    if (ec) {
      return FailedPrecondition("cannot create the embedded ClickHouse data directory " + path_ +
                                ": " + ec.message() + "; check CLICKHOUSE_URL and permissions");
    }
    const std::string lock_path = path_ + "/bgmigrate.lock";
    const int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return FailedPrecondition("cannot open " + lock_path + ": " + std::strerror(errno));
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      // The holder writes its pid right after taking the lock: give it a moment to appear.
      std::string holder;
      for (int attempt = 0; attempt < 20; ++attempt) {
        char buf[32] = {};
        const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
        holder = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
        if (holder.ends_with('\n')) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      ::close(fd);
      while (!holder.empty() && (holder.back() == '\n' || holder.back() == ' ')) holder.pop_back();
      return FailedPrecondition(
          "the embedded ClickHouse data at " + path_ + " is held by another process" +
          (holder.empty() ? "" : " (pid " + holder + ")") +
          "; only one process can open an embedded data directory: stop that process (e.g. "
          "`bgmigrate up`) first, or run ClickHouse as a server and point CLICKHOUSE_URL at it");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
      // The pid only improves another process's message; the lock is what counts.
    }
    // chDB must not replace our SIGINT/SIGTERM handling (see SignalStop in cli/commands.cc).
    api_->set_signal_handlers_enabled(0);
    std::string arg0 = "bgmigrate";
    std::string arg_path = "--path=" + path_;
    char* argv[] = {arg0.data(), arg_path.data()};
    ChdbConnection* conn = api_->connect(2, argv);
    if (conn == nullptr) {
      ::close(fd);
      return Unavailable("embedded ClickHouse could not open its data at " + path_ +
                         " (chDB printed the reason on stderr above)");
    }
    conn_ = conn;
    lock_fd_ = fd;
    current_database_ = "default";
    return Status::Ok();
  }

  const ChdbApi* const api_;
  const std::string path_;
  std::mutex mu_;
  ChdbConnection* conn_ = nullptr;  // GUARDED_BY(mu_)
  int lock_fd_ = -1;                // GUARDED_BY(mu_)
  std::string current_database_;    // GUARDED_BY(mu_)
};

namespace {

struct EngineRegistry {
  std::mutex mu;
  std::map<std::string, std::shared_ptr<EmbeddedEngine>> engines;  // GUARDED_BY(mu)
};

EngineRegistry& Registry() {
  static EngineRegistry* registry = new EngineRegistry();  // never destroyed: see ReleaseEmbedded
  return *registry;
}

}  // namespace

bool IsEmbeddedClickHouseUrl(std::string_view url) { return url.starts_with(kScheme); }

Result<std::string> EmbeddedPathFromUrl(std::string_view url) {
  if (!IsEmbeddedClickHouseUrl(url)) {
    return InvalidArgument("not an embedded ClickHouse URL: " + std::string(url));
  }
  std::string_view rest = url.substr(kScheme.size());
  if (rest.starts_with("//")) {
    rest.remove_prefix(2);
    if (!rest.empty() && rest.front() != '/') {
      return InvalidArgument("CLICKHOUSE_URL " + std::string(url) +
                             " names a host; write embedded:///absolute/path (three slashes) or "
                             "embedded:relative/path");
    }
  }
  if (rest.empty() || rest == "/") {
    return InvalidArgument("CLICKHOUSE_URL " + std::string(url) +
                           " has no data directory; e.g. CLICKHOUSE_URL=embedded:///var/lib/"
                           "bgmigrate/clickhouse or embedded:.bgm-data/chdb-data");
  }
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(std::filesystem::path(rest), ec);
  if (ec) return InvalidArgument("bad embedded ClickHouse path " + std::string(rest));
  std::string out = p.lexically_normal().string();
  while (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

Result<std::unique_ptr<EmbeddedClickHouseClient>> EmbeddedClickHouseClient::Create(
    ClickHouseEmbeddedConfig config) {
  if (config.path.empty()) {
    return InvalidArgument("the embedded ClickHouse needs a data directory");
  }
  Result<const ChdbApi*> api = LoadChdbLibrary();
  if (!api.ok()) return api.status();
  std::error_code ec;
  const std::string path = std::filesystem::absolute(config.path, ec).lexically_normal().string();
  EngineRegistry& registry = Registry();
  std::lock_guard<std::mutex> lock(registry.mu);
  for (const auto& [other, engine] : registry.engines) {
    if (other != path) {
      return FailedPrecondition("this process already uses the embedded ClickHouse at " + other +
                                "; one process can open one embedded data directory, not also " +
                                path);
    }
  }
  std::shared_ptr<EmbeddedEngine>& engine = registry.engines[path];
  if (engine == nullptr) engine = std::make_shared<EmbeddedEngine>(*api, path);
  return std::unique_ptr<EmbeddedClickHouseClient>(
      new EmbeddedClickHouseClient(engine, std::move(config.database)));
}

EmbeddedClickHouseClient::EmbeddedClickHouseClient(std::shared_ptr<EmbeddedEngine> engine,
                                                   std::string database)
    : engine_(std::move(engine)), database_(std::move(database)) {}

EmbeddedClickHouseClient::~EmbeddedClickHouseClient() = default;

const std::string& EmbeddedClickHouseClient::path() const { return engine_->path(); }

Result<std::string> EmbeddedClickHouseClient::Query(std::string_view sql,
                                                    const Settings& settings) {
  return engine_->Run(database_, [&](ChdbConnection) -> Result<std::string> {
    Result<std::vector<std::string>> applied = engine_->ApplyLocked(settings);
    if (!applied.ok()) return applied.status();
    Result<std::string> out = engine_->QueryLocked(sql);
    engine_->ResetLocked(*applied);
    return out;
  });
}

Status EmbeddedClickHouseClient::Execute(std::string_view sql, const Settings& settings) {
  Result<std::string> r = Query(sql, settings);
  return r.ok() ? Status::Ok() : r.status();
}

Status EmbeddedClickHouseClient::Insert(std::string_view insert_query, InsertSource& source,
                                        const Settings& settings) {
  Result<std::pair<std::string, std::string>> split = SplitFormat(insert_query);
  if (!split.ok()) return split.status();
  const auto& [statement, format] = *split;
  return engine_->Run(database_, [&](ChdbConnection conn) -> Status {
    const ChdbApi* api = engine_->api();
    Result<std::vector<std::string>> applied = engine_->ApplyLocked(settings);
    if (!applied.ok()) return applied.status();
    Status result = [&]() -> Status {
      ChdbInsertStream stream = api->stream_insert_n(conn, statement.data(), statement.size(),
                                                     format.data(), format.size());
      if (stream == nullptr) return Internal("embedded ClickHouse could not start an insert");
      struct StreamOwner {
        const ChdbApi* api;
        ChdbInsertStream stream;
        ~StreamOwner() { api->destroy_insert_stream(stream); }
      } owner{api, stream};
      if (const char* err = api->stream_insert_error(stream); err != nullptr) {
        return StatusFromChdbError(err);
      }
      std::vector<char> buf(kAppendBytes);
      for (;;) {
        Result<size_t> n = source.Read(buf.data(), buf.size());
        if (!n.ok()) {
          api->stream_cancel_insert(stream);
          return n.status();
        }
        if (*n == 0) break;
        if (api->stream_append(stream, buf.data(), *n) != kChdbSuccess) {
          const char* err = api->stream_insert_error(stream);
          Status s = err != nullptr ? StatusFromChdbError(err)
                                    : Internal("embedded ClickHouse refused insert data");
          api->stream_cancel_insert(stream);
          return s;
        }
      }
      ChdbResultPtr done(api->stream_done(stream), ChdbResultDeleter{api});
      if (done != nullptr) {
        if (const char* err = api->result_error(done.get()); err != nullptr) {
          return StatusFromChdbError(err);
        }
      } else if (const char* err = api->stream_insert_error(stream); err != nullptr) {
        return StatusFromChdbError(err);
      }
      return Status::Ok();
    }();
    if (!result.ok()) engine_->DrainLocked();
    engine_->ResetLocked(*applied);
    return result;
  });
}

Result<std::string> EmbeddedClickHouseClient::Version() {
  Result<std::string> v = Query("SELECT version() FORMAT TabSeparated");
  if (!v.ok()) return v.status();
  std::string out = *v;
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

Status EmbeddedClickHouseClient::Ping() {
  Result<std::string> r = Query("SELECT 1");
  if (!r.ok()) return r.status();
  if (*r != "1\n") return Internal("embedded ClickHouse answered SELECT 1 with " + *r);
  return Status::Ok();
}

void ReleaseEmbeddedClickHouse() {
  EngineRegistry& registry = Registry();
  std::vector<std::shared_ptr<EmbeddedEngine>> engines;
  {
    std::lock_guard<std::mutex> lock(registry.mu);
    for (auto& [path, engine] : registry.engines) engines.push_back(engine);
  }
  for (auto& engine : engines) engine->Release();
}

}  // namespace bgm
