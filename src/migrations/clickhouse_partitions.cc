#include "migrations/clickhouse_partitions.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <set>
#include <utility>

#include "clickhouse/clickhouse_error.h"
#include "clickhouse/client_factory.h"
#include "common/clock.h"
#include "core/args.h"
#include "core/chunk_store.h"

namespace bgm {
namespace {

constexpr int64_t kDefaultAttempts = 3;
// Worker processes running partitions of one migration at once. 1: the lease holder alone
// (mutations of one table run one after another in ClickHouse anyway; raise it for INSERT ...
// SELECT statements into another table).
constexpr int64_t kDefaultMaxWorkers = 1;
constexpr const char* kLightBlockSize = "4096";
constexpr auto kFirstPoll = std::chrono::milliseconds(50);
constexpr auto kMaxPoll = std::chrono::milliseconds(1000);

using Row = std::vector<std::string>;

// The rows of a TabSeparated result (values left escaped: ids and numbers need no unescaping).
std::vector<Row> TsvRows(const std::string& tsv) {
  std::vector<Row> rows;
  size_t start = 0;
  while (start < tsv.size()) {
    size_t end = tsv.find('\n', start);
    if (end == std::string::npos) end = tsv.size();
    Row row;
    size_t field = start;
    for (;;) {
      const size_t tab = tsv.find('\t', field);
      if (tab == std::string::npos || tab >= end) {
        row.push_back(tsv.substr(field, end - field));
        break;
      }
      row.push_back(tsv.substr(field, tab - field));
      field = tab + 1;
    }
    rows.push_back(std::move(row));
    start = end + 1;
  }
  return rows;
}

int64_t ToInt(const std::string& text) {
  try {
    return std::stoll(text);
  } catch (const std::exception&) {
    return 0;
  }
}

std::string SettingsText(const ClickHouseSettings& settings) {
  std::string out;
  for (const auto& [name, value] : settings) {
    if (name == "query_id" || name == "log_queries") continue;
    out += (out.empty() ? "" : ", ") + name + "=" + value;
  }
  return out.empty() ? "default settings" : out;
}

// Skips whitespace and `--` / `/* */` comments at `at`.
size_t SkipBlank(std::string_view sql, size_t at) {
  for (;;) {
    while (at < sql.size() && std::isspace(static_cast<unsigned char>(sql[at]))) ++at;
    if (sql.substr(at, 2) == "--") {
      at = sql.find('\n', at);
      if (at == std::string_view::npos) return sql.size();
    } else if (sql.substr(at, 2) == "/*") {
      at = sql.find("*/", at + 2);
      if (at == std::string_view::npos) return sql.size();
      at += 2;
    } else {
      return at;
    }
  }
}

// The keyword at `at` (letters only), upper-cased, and where it ends.
std::string Word(std::string_view sql, size_t& at) {
  at = SkipBlank(sql, at);
  std::string out;
  while (at < sql.size() && std::isalpha(static_cast<unsigned char>(sql[at]))) {
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[at++])));
  }
  return out;
}

// One identifier at `at`: plain, `back-quoted` or "double-quoted".
std::optional<std::string> Identifier(std::string_view sql, size_t& at) {
  at = SkipBlank(sql, at);
  if (at >= sql.size()) return std::nullopt;
  std::string out;
  if (sql[at] == '`' || sql[at] == '"') {
    const char quote = sql[at++];
    while (at < sql.size() && sql[at] != quote) {
      if (sql[at] == '\\' && at + 1 < sql.size()) ++at;
      out += sql[at++];
    }
    if (at >= sql.size()) return std::nullopt;
    ++at;
    return out;
  }
  while (at < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[at])) || sql[at] == '_')) {
    out += sql[at++];
  }
  if (out.empty()) return std::nullopt;
  return out;
}

// The table an `ALTER TABLE [db.]t ...` statement changes ({database or "", table}); nullopt for
// any other statement.
std::optional<std::pair<std::string, std::string>> AlteredTable(std::string_view sql) {
  size_t at = 0;
  if (Word(sql, at) != "ALTER" || Word(sql, at) != "TABLE") return std::nullopt;
  std::optional<std::string> first = Identifier(sql, at);
  if (!first) return std::nullopt;
  if (at < sql.size() && sql[at] == '.') {
    ++at;
    std::optional<std::string> second = Identifier(sql, at);
    if (!second) return std::nullopt;
    return std::pair<std::string, std::string>(*first, *second);
  }
  return std::pair<std::string, std::string>("", *first);
}

// Connection-level trouble (server down, dropped, timed out): lighter settings cannot help, the
// manager waits it out and the next Run resumes from the checkpoint.
bool IsTransient(const Status& s) {
  return s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kDeadlineExceeded;
}

// A server's error that another try with lighter settings may get past (memory, too many
// parts, an exception while running). Not: the statement or the grants are wrong.
bool IsWorthAnotherTry(const Status& s) {
  return s.code() != StatusCode::kInvalidArgument && s.code() != StatusCode::kFailedPrecondition &&
         s.code() != StatusCode::kLeaseLost;
}

class ClickHousePartitions final : public BackgroundMigration {
 public:
  explicit ClickHousePartitions(MigrationFile file) : file_(std::move(file)) {
    MigrationFile with_kind_args = file_;
    with_kind_args.args = ClickHousePartitionArgs(file_);
    schema_ = with_kind_args.Schema();
    defaults_ = with_kind_args.Defaults();
  }

  Status Validate(const nlohmann::json& args) const override { return schema_.Validate(args); }

  HealthTargets Health(const nlohmann::json&) const override {
    HealthTargets t;
    t.clickhouse_tables = {file_.table};
    t.probes = file_.probes;
    return t;
  }

  Status Run(MigrationContext& ctx) override {
    Result<bool> ran = RunPartitions(ctx, /*helper=*/false);
    ch_.reset();  // the connection is not kept between runs
    return ran.status();
  }

  bool SharesWork(const nlohmann::json& args) const override {
    return IntArg(Merged(args), "maxWorkers", kDefaultMaxWorkers) > 1;
  }

  Result<bool> Help(MigrationContext& ctx) override {
    if (!SharesWork(ctx.args())) return false;
    Result<bool> ran = RunPartitions(ctx, /*helper=*/true);
    ch_.reset();
    return ran;
  }

 private:
  nlohmann::json Merged(const nlohmann::json& stored) const {
    nlohmann::json args = defaults_;
    if (stored.is_object()) {
      for (const auto& [k, v] : stored.items()) args[k] = v;
    }
    return args;
  }

  // Each partition is a chunk (core/chunk_store.h): the lease holder adds the table's
  // partitions it has no chunk for yet, then it and any helper claim them one at a time. A
  // partition that fails (after its tries with lighter settings) is failed alone and the others
  // go on; the lease holder waits until none is pending or running and fails the migration
  // naming each failed one. A wrong statement fails the migration at once. A helper returns
  // whether it ran a partition when it finds none to claim.
  Result<bool> RunPartitions(MigrationContext& ctx, bool helper) {
    const nlohmann::json args = Merged(ctx.args());
    const int attempts = static_cast<int>(IntArg(args, "attempts", kDefaultAttempts));
    const auto pause = std::chrono::milliseconds(IntArg(args, "pauseMs", 0));
    const std::string& name = ctx.name();
    const MigrationEnv& env = ctx.env();

    Result<ChunkStore> store = ChunkStore::Connect(env.database_url);
    if (!store.ok()) return store.status();
    if (helper) {
      Result<bool> has = store->HasChunks(name);
      if (!has.ok()) return has.status();
      if (!*has) return false;  // the lease holder has not listed the partitions yet
      Result<int> workers = store->Workers(name, ctx.lease());
      if (!workers.ok()) return workers.status();
      if (*workers >= IntArg(args, "maxWorkers", kDefaultMaxWorkers)) return false;
    }
    Result<std::unique_ptr<ClickHouseClient>> client =
        OpenClickHouseClient({.url = env.clickhouse_url,
                              .user = env.clickhouse_user,
                              .password = env.clickhouse_password,
                              .database = env.clickhouse_db});
    if (!client.ok()) return client.status();
    ch_ = std::move(*client);
    // The embedded engine runs statements inside this process: it takes no query_id, and no
    // statement of an earlier worker can outlive that worker there.
    server_ = !IsEmbeddedClickHouseUrl(env.clickhouse_url);
    BGM_RETURN_IF_ERROR(CheckClickHousePartitionTable(*ch_, file_).WithContext(file_.path));
    BGM_RETURN_IF_ERROR(ReadServerFeatures());
    if (!helper) BGM_RETURN_IF_ERROR(AddPartitions(ctx, *store));

    const std::string worker_id =
        (ctx.worker_id().empty() ? "pid-" + std::to_string(::getpid()) : ctx.worker_id()) + "#0";
    ClaimHeartbeat heartbeat(env.database_url, name, worker_id.substr(0, worker_id.rfind('#')),
                             ctx.lease());
    SystemClock clock;
    bool claimed_any = false;
    while (!ctx.stop_requested()) {
      BGM_RETURN_IF_ERROR(ctx.AwaitHealthy());  // before claiming the next partition
      Result<std::optional<Chunk>> claimed = store->Claim(name, worker_id, ctx.lease());
      if (!claimed.ok()) return claimed.status();
      if (!claimed->has_value()) {
        if (helper) return claimed_any;
        Result<ChunkCounts> counts = store->Counts(name);
        if (!counts.ok()) return counts.status();
        if (counts->pending == 0 && counts->running == 0) break;
        // Partitions still run elsewhere: claim them if their worker dies.
        clock.SleepFor(std::chrono::milliseconds(500), ctx.stop_token());
        continue;
      }
      claimed_any = true;
      const Chunk& c = **claimed;
      const std::optional<std::string> id = PartitionOf(c);
      if (!id)
        return Internal("chunk " + std::to_string(c.chunk) + " of " + name +
                        " is not a partition (" + c.lower.dump() + ")");
      if (!c.cursor.is_null()) {  // done by a worker that died before marking it so
        BGM_RETURN_IF_ERROR(store->Finish(name, c.chunk, worker_id));
        continue;
      }
      Status s = RunClaimed(ctx, *store, c, *id, worker_id, attempts, helper);
      if (s.ok()) {
        BGM_RETURN_IF_ERROR(store->Finish(name, c.chunk, worker_id));
        if (pause.count() > 0) clock.SleepFor(pause, ctx.stop_token());
        continue;
      }
      // Outages, memory limits, too many parts and stops end this run (the manager waits them
      // out; the partition is run again, its earlier try awaited); a wrong statement fails the
      // migration at once; any other failure is the partition's own.
      // (Release changes nothing when the claim is another worker's now.)
      if (s.code() == StatusCode::kLeaseLost || IsRetriable(s.code()) ||
          (s.code() == StatusCode::kCancelled && ctx.stop_requested()) || !IsWorthAnotherTry(s)) {
        (void)store->Release(name, c.chunk, worker_id);
        return s;
      }
      Result<bool> gone = store->Fail(name, c.chunk, worker_id, s.message(), 1, 0);
      if (!gone.ok()) return gone.status();
      spdlog::warn("{}: {}; the other partitions go on", name, s.message());
    }
    if (ctx.stop_requested()) return Cancelled("stop requested");
    BGM_RETURN_IF_ERROR(FailedPartitions(*store, name));
    return claimed_any;
  }

  // The lease holder's listing: a chunk for each active partition of the table not yet one,
  // and the estimate (the rows of every partition).
  Status AddPartitions(MigrationContext& ctx, ChunkStore& store) {
    Result<std::string> listed = ch_->Query(
        "SELECT partition_id, sum(rows) FROM system.parts WHERE database = currentDatabase() AND "
        "table = " +
        ClickHouseStringLiteral(file_.table) +
        " AND active GROUP BY partition_id ORDER BY partition_id FORMAT TabSeparated");
    if (!listed.ok()) {
      return listed.status().WithContext("listing the partitions of " + file_.table);
    }
    std::vector<std::string> ids;
    int64_t estimate = 0;
    for (const Row& p : TsvRows(*listed)) {
      if (p.size() != 2) return Internal("unexpected system.parts row listing " + file_.table);
      ids.push_back(p[0]);
      estimate += ToInt(p[1]);
    }
    BGM_RETURN_IF_ERROR(ctx.ReportTotalEstimate(estimate));
    // A migration that ran partition by partition (before partitions were chunks) saved the
    // last done id as its cursor: the partitions up to it are done.
    std::string done_through;
    if (const auto c = ctx.state().find("cursor"); c != ctx.state().end()) {
      if (!c->is_string()) {
        return InvalidArgument("the saved cursor " + JsonExcerpt(*c) +
                               " is not a partition id of this file; retry with --from-start to "
                               "begin again");
      }
      done_through = c->get<std::string>();
    }
    Result<int> added = store.AddPartitions(ctx.name(), ids, done_through);
    if (!added.ok()) return added.status();
    if (*added > 0) {
      spdlog::info("{}: {} partition(s) of {} to run", ctx.name(), *added, file_.table);
    }
    return store.RetryFailed(ctx.name());
  }

  // Runs claimed partition `id` and saves it as done: the lease holder through ctx (one
  // statement with the migration's rows and batch event), a helper through the chunk store.
  Status RunClaimed(MigrationContext& ctx, ChunkStore& store, const Chunk& c, const std::string& id,
                    const std::string& worker_id, int attempts, bool helper) {
    // The partition's rows and bytes as it is before the statement (for progress and events).
    Result<std::string> size = ch_->Query(
        "SELECT sum(rows), sum(bytes_on_disk) FROM system.parts WHERE database = "
        "currentDatabase() AND table = " +
        ClickHouseStringLiteral(file_.table) +
        " AND active AND partition_id = " + ClickHouseStringLiteral(id) + " FORMAT TabSeparated");
    if (!size.ok()) return size.status().WithContext("reading the size of partition " + id);
    const std::vector<Row> sized = TsvRows(*size);
    const auto started = std::chrono::steady_clock::now();
    BGM_RETURN_IF_ERROR(RunPartition(ctx, id, attempts));
    BatchRecord batch;
    batch.rows = !sized.empty() && sized[0].size() == 2 ? ToInt(sized[0][0]) : 0;
    batch.bytes = !sized.empty() && sized[0].size() == 2 ? ToInt(sized[0][1]) : 0;
    batch.from = nullptr;
    batch.to = id;
    batch.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
    if (helper) {
      return store.CheckpointShared(ctx.name(), c.chunk, worker_id, id, batch.rows,
                                    {{"from", nullptr},
                                     {"to", id},
                                     {"rows", batch.rows},
                                     {"bytes", batch.bytes},
                                     {"ms", batch.duration_ms}});
    }
    batch.state = {{"partitions", true}};
    batch.chunk = ChunkProgress{c.chunk, worker_id, id};
    return ctx.Checkpoint(batch);
  }

  // OK when no partition failed; otherwise the failed ones, each with its error.
  Status FailedPartitions(ChunkStore& store, const std::string& name) {
    Result<std::vector<Chunk>> all = store.List(name);
    if (!all.ok()) return all.status();
    std::vector<std::string> errors;
    for (const Chunk& c : *all) {
      if (c.status == "failed") errors.push_back(c.last_error);
    }
    if (errors.empty()) return Status::Ok();
    if (errors.size() == 1 && all->size() == 1) return Internal(errors[0]);
    std::string listed;
    for (size_t i = 0; i < errors.size() && i < 10; ++i) {
      listed += (i == 0 ? "" : "; ") + errors[i];
    }
    return Internal(std::to_string(errors.size()) + " of " + std::to_string(all->size()) +
                    " partitions failed" + (errors.size() > 10 ? " (the first 10)" : "") + ": " +
                    listed +
                    ". The other partitions are done; fix the cause and `bgmigrate retry` (only "
                    "the failed partitions run again)");
  }

  // Which of the settings we send this server has, and whether system.mutations reports
  // failures (latest_fail_reason, not in 18.16).
  Status ReadServerFeatures() {
    Result<std::string> names = ch_->Query(
        "SELECT name FROM system.settings WHERE name IN ('max_block_size', 'max_threads', "
        "'max_insert_threads', 'log_queries') FORMAT TabSeparated");
    if (!names.ok()) return names.status().WithContext("reading the server's settings");
    settings_.clear();
    for (const Row& r : TsvRows(*names)) settings_.insert(r[0]);
    Result<std::string> fail = ch_->Query(
        "SELECT count() FROM system.columns WHERE database = 'system' AND table = 'mutations' "
        "AND name = 'latest_fail_reason' FORMAT TabSeparated");
    if (!fail.ok()) return fail.status().WithContext("reading system.mutations' columns");
    mutation_fail_reason_ = fail->starts_with("1");
    return Status::Ok();
  }

  // Try `attempt`'s settings: the server's defaults first, then a smaller max_block_size, then
  // also one thread.
  ClickHouseSettings TrySettings(int attempt) const {
    ClickHouseSettings s;
    if (attempt >= 2 && settings_.contains("max_block_size")) {
      s.emplace_back("max_block_size", kLightBlockSize);
    }
    if (attempt >= 3) {
      if (settings_.contains("max_threads")) s.emplace_back("max_threads", "1");
      if (settings_.contains("max_insert_threads")) s.emplace_back("max_insert_threads", "1");
    }
    return s;
  }

  Status RunPartition(MigrationContext& ctx, const std::string& id, int attempts) {
    const std::string where = "partition " + id + " of " + file_.table;
    if (server_) {
      Result<bool> finished = AwaitEarlierTry(ctx, id);
      if (!finished.ok()) return finished.status().WithContext(where);
      if (*finished) {
        BGM_RETURN_IF_ERROR(AwaitMutations(ctx, file_.statement).WithContext(where));
        return Status::Ok();
      }
    }
    Status last;
    int attempt = 1;
    for (; attempt <= attempts; ++attempt) {
      last = RunStatements(ctx, id, attempt);
      if (last.ok()) return last;
      if (last.code() == StatusCode::kCancelled && ctx.stop_requested()) return last;
      if (IsTransient(last)) return last.WithContext(where);
      if (!IsWorthAnotherTry(last) || attempt == attempts) break;
      if (ctx.stop_requested()) return Cancelled("stop requested");
      spdlog::warn("{}: {} failed on try {} of {} ({}); trying again with {}", ctx.name(), where,
                   attempt, attempts, last.message(), SettingsText(TrySettings(attempt + 1)));
    }
    std::string message = where + " failed on try " + std::to_string(attempt) + " of " +
                          std::to_string(attempts) + " (" + SettingsText(TrySettings(attempt)) +
                          "): " + last.message();
    if (ClickHouseErrorCode(last) == 53 || ClickHouseErrorCode(last) == 43 ||
        ClickHouseErrorCode(last) == 386) {
      message += "; {partition} is the partition id as a String literal ('" + id +
                 "'): compare it with a String, e.g. toString(toYYYYMM(ts)) = {partition} or "
                 "_partition_id = {partition}, or use DROP PARTITION ID {partition}";
    }
    // A cancelled query (KILL QUERY) is a failure here, not this worker's stop.
    const StatusCode code =
        last.code() == StatusCode::kCancelled ? StatusCode::kInternal : last.code();
    return Status(code, message);
  }

  // `before` (if any) then `statement` for one partition, each under its own query_id on a
  // server, each ALTER's mutations awaited.
  Status RunStatements(MigrationContext& ctx, const std::string& id, int attempt) {
    const std::string query_id =
        ClickHousePartitionQueryIdPrefix(ctx.env().clickhouse_db, ctx.name(), id) +
        std::to_string(attempt);
    if (file_.before) {
      BGM_RETURN_IF_ERROR(
          RunOne(ctx, *file_.before, id, attempt, query_id + ":before").WithContext("before"));
    }
    return RunOne(ctx, file_.statement, id, attempt, query_id);
  }

  Status RunOne(MigrationContext& ctx, const std::string& sql, const std::string& id, int attempt,
                const std::string& query_id) {
    ClickHouseSettings settings = TrySettings(attempt);
    if (server_) {
      settings.emplace_back("query_id", query_id);
      if (settings_.contains("log_queries")) settings.emplace_back("log_queries", "1");
    }
    if (Status s = ch_->Execute(ClickHousePartitionStatement(sql, id), settings); !s.ok()) {
      // An engine that waits for mutations itself (mutations_sync, chDB) fails the ALTER when
      // its mutation fails, and keeps retrying the mutation: kill it.
      KillFailedMutations(sql);
      return s;
    }
    return AwaitMutations(ctx, sql);
  }

  // The system.mutations condition for the table an ALTER TABLE statement changes; nullopt for
  // other statements.
  static std::optional<std::string> MutationsOf(const std::string& sql) {
    const std::optional<std::pair<std::string, std::string>> altered = AlteredTable(sql);
    if (!altered) return std::nullopt;
    return "database = " +
           (altered->first.empty() ? std::string("currentDatabase()")
                                   : ClickHouseStringLiteral(altered->first)) +
           " AND table = " + ClickHouseStringLiteral(altered->second);
  }

  void KillFailedMutations(const std::string& sql) {
    const std::optional<std::string> where = MutationsOf(sql);
    if (!where || !mutation_fail_reason_) return;
    (void)ch_->Execute("KILL MUTATION WHERE " + *where +
                       " AND NOT is_done AND latest_fail_reason != '' SYNC");
  }

  // For an ALTER TABLE statement: waits until the table has no unfinished mutation (ours
  // included). A mutation that reports a failure is killed and fails the try. On 18.16, which
  // reports no failure, a failing mutation is waited for until the worker is stopped.
  Status AwaitMutations(MigrationContext& ctx, const std::string& sql) {
    const std::optional<std::string> of = MutationsOf(sql);
    if (!of) return Status::Ok();
    const std::string query =
        "SELECT mutation_id, " + std::string(mutation_fail_reason_ ? "latest_fail_reason" : "''") +
        " FROM system.mutations WHERE " + *of + " AND NOT is_done FORMAT TabSeparated";
    SystemClock clock;
    auto poll = kFirstPoll;
    for (;;) {
      Result<std::string> pending = ch_->Query(query);
      if (!pending.ok()) return pending.status().WithContext("waiting for the mutations");
      const std::vector<Row> rows = TsvRows(*pending);
      if (rows.empty()) return Status::Ok();
      for (const Row& r : rows) {
        if (r.size() == 2 && !r[1].empty()) {
          KillFailedMutations(sql);
          return Internal("mutation " + r[0] + " failed: " + r[1] + " (the mutation was killed)");
        }
      }
      if (!clock.SleepFor(poll, ctx.stop_token())) return Cancelled("stop requested");
      poll = std::min(poll * 2, kMaxPoll);
    }
  }

  // Waits for a try of this partition that an earlier worker sent and that still runs on the
  // server. True when it was the statement and the server's query_log says it finished; false
  // when none ran, or it failed, or there is no log to tell (the partition is run again, from
  // `before`).
  Result<bool> AwaitEarlierTry(MigrationContext& ctx, const std::string& id) {
    const std::string prefix =
        ClickHousePartitionQueryIdPrefix(ctx.env().clickhouse_db, ctx.name(), id);
    const std::string find =
        "SELECT query_id, now() FROM system.processes WHERE substring(query_id, "
        "1, " +
        std::to_string(prefix.size()) + ") = " + ClickHouseStringLiteral(prefix) +
        " FORMAT TabSeparated";
    Result<std::string> running = ch_->Query(find);
    if (!running.ok()) return running.status().WithContext("looking for an earlier try");
    std::vector<Row> rows = TsvRows(*running);
    if (rows.empty()) return false;
    const std::string query_id = rows[0][0];
    const std::string since = rows[0].size() > 1 ? rows[0][1] : "";
    spdlog::warn(
        "{}: query {} of an earlier worker still runs; waiting for it to end instead of "
        "sending the partition again",
        ctx.name(), query_id);
    SystemClock clock;
    auto poll = kFirstPoll;
    while (!rows.empty()) {
      if (!clock.SleepFor(poll, ctx.stop_token())) return Cancelled("stop requested");
      poll = std::min(poll * 2, kMaxPoll);
      running = ch_->Query(find);
      if (!running.ok()) return running.status().WithContext("waiting for an earlier try");
      rows = TsvRows(*running);
    }
    if (query_id.ends_with(":before") || !settings_.contains("log_queries")) return false;
    (void)ch_->Execute("SYSTEM FLUSH LOGS");
    Result<std::string> outcome = ch_->Query(
        "SELECT toString(type) FROM system.query_log WHERE query_id = " +
        ClickHouseStringLiteral(query_id) + " AND event_time >= toDateTime(" +
        ClickHouseStringLiteral(since) +
        ") AND toString(type) NOT IN ('1', 'QueryStart') ORDER BY event_time DESC LIMIT 1 "
        "FORMAT TabSeparated");
    const bool finished =
        outcome.ok() && (outcome->starts_with("2\n") || outcome->starts_with("QueryFinish\n"));
    spdlog::warn("{}: query {} ended ({}); {}", ctx.name(), query_id,
                 outcome.ok() ? (outcome->empty() ? std::string("not in system.query_log")
                                                  : outcome->substr(0, outcome->find('\n')))
                              : outcome.status().message(),
                 finished ? "the partition counts as done" : "running the partition again");
    return finished;
  }

  const MigrationFile file_;
  ArgsSchema schema_;
  nlohmann::json defaults_;
  // Set by Run:
  std::unique_ptr<ClickHouseClient> ch_;
  bool server_ = true;
  std::set<std::string> settings_;  // of the settings we may send, those the server has
  bool mutation_fail_reason_ = false;
};

}  // namespace

std::string ClickHouseStringLiteral(std::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

std::string ClickHousePartitionStatement(const std::string& sql, const std::string& partition_id) {
  std::string out = sql;
  const size_t at = out.find("{partition}");
  if (at != std::string::npos) out.replace(at, 11, ClickHouseStringLiteral(partition_id));
  return out;
}

std::string ClickHousePartitionQueryIdPrefix(const std::string& database,
                                             const std::string& migration,
                                             const std::string& partition_id) {
  auto clean = [](const std::string& s) {
    std::string out = s;
    for (char& c : out) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-') {
        c = '_';
      }
    }
    return out;
  };
  return "bgm:" + clean(database) + ":" + clean(migration) + ":" + clean(partition_id) + ":";
}

Status CheckClickHousePartitionTable(ClickHouseClient& ch, const MigrationFile& file) {
  Result<std::string> found = ch.Query(
      "SELECT count(), currentDatabase() FROM system.tables WHERE database = currentDatabase() "
      "AND name = " +
      ClickHouseStringLiteral(file.table) + " FORMAT TabSeparated");
  if (!found.ok()) return found.status().WithContext("looking for table " + file.table);
  const std::vector<Row> rows = TsvRows(*found);
  if (rows.empty() || rows[0].size() != 2) {
    return Internal("unexpected answer looking for table " + file.table);
  }
  if (rows[0][0] == "0") {
    return InvalidArgument("[clickhouse] table " + file.table +
                           " does not exist in ClickHouse database " + rows[0][1] +
                           " (CLICKHOUSE_DB); fix the table name or create the table first");
  }
  return Status::Ok();
}

std::vector<ArgSpec> ClickHousePartitionArgs(const MigrationFile& file) {
  return MergeArgSpecs(
      {
          {"attempts", ArgSpec::Type::kInt, 1, 10, {}, kDefaultAttempts},
          {"pauseMs", ArgSpec::Type::kInt, 0, 60000, {}, 0},
          {"maxWorkers", ArgSpec::Type::kInt, 1, 256, {}, kDefaultMaxWorkers},
      },
      file);
}

std::unique_ptr<BackgroundMigration> NewClickHousePartitions(const MigrationFile& file) {
  return std::make_unique<ClickHousePartitions>(file);
}

}  // namespace bgm
