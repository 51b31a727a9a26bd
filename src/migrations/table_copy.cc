#include "migrations/table_copy.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cmath>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "clickhouse/clickhouse_client.h"
#include "clickhouse/client_factory.h"
#include "clickhouse/insert_source.h"
#include "common/bounded_queue.h"
#include "common/clock.h"
#include "common/json_compact.h"
#include "common/timestamp.h"
#include "core/chunk_store.h"

namespace bgm {
namespace {

constexpr size_t kChunkBytes = 1 << 20;           // a queue item
constexpr size_t kQueueBytes = 16 << 20;          // read-ahead between reader and inserter
constexpr int64_t kInlineStoredLimit = 64 << 10;  // larger stored JSON is fetched in pieces
constexpr int64_t kBlobPiece = 4 << 20;
constexpr int64_t kReadLimit = 50000;  // rows per Postgres query (one snapshot)
constexpr int64_t kInitialBatchRows = 10000;
constexpr int64_t kMinAdaptiveRows = 1000;
constexpr int64_t kMaxBatchRows = 500000;  // well under max_insert_block_size
constexpr int64_t kDefaultMaxBatchBytes = 64 << 20;
constexpr double kDefaultTargetSeconds = 2.0;
constexpr int64_t kCountBelowRows = 100000;  // estimates below are replaced by a count
constexpr size_t kMaxChunks = 100000;
constexpr int64_t kDefaultMaxWorkers = 8;  // processes sharing one chunked copy
// Rows per key range when the args do not say (0: one range with one cursor). About a minute of
// copying each at this machine's rates: small enough to share and to redo, few enough to plan.
constexpr int64_t kDefaultChunkRows = 250000;

// The key values of the last row copied, in key order; empty before the first.
struct Cursor {
  std::vector<std::string> values;
  nlohmann::json ToJson(const std::vector<std::string>& names) const {
    nlohmann::json j = nlohmann::json::object();
    for (size_t i = 0; i < values.size(); ++i) j[names[i]] = values[i];
    return j;
  }
};

struct BatchInfo {
  nlohmann::json from, to;
  int64_t rows = 0;
  int64_t bytes = 0;
};

struct Item {
  enum class Kind { kChunk, kEndOfBatch, kEndOfData, kStopped, kError };
  Kind kind = Kind::kChunk;
  std::string data;
  BatchInfo batch;
  Status error;
};

// Chunk buffers handed back by the inserter for the reader to fill again: their pages are
// already mapped, so a copy does not page-fault 1 MiB in for every chunk (7% of its CPU was
// spent so). Holds at most kKeep buffers of at most kKeepBytes. Thread-safe.
class ChunkPool {
 public:
  std::string Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!free_.empty()) {
        std::string s = std::move(free_.back());
        free_.pop_back();
        s.clear();
        return s;
      }
    }
    std::string s;
    s.reserve(kChunkBytes + (kChunkBytes >> 2));
    return s;
  }
  void Give(std::string s) {
    if (s.capacity() < kChunkBytes || s.capacity() > kKeepBytes) return;
    std::lock_guard<std::mutex> lock(mu_);
    if (free_.size() < kKeep) free_.push_back(std::move(s));
  }

 private:
  static constexpr size_t kKeep = 4;
  static constexpr size_t kKeepBytes = 2 * kChunkBytes;
  std::mutex mu_;
  std::vector<std::string> free_;
};

int64_t ParseInt(std::string_view v) {
  int64_t out = 0;
  std::from_chars(v.data(), v.data() + v.size(), out);
  return out;
}

// Streams the source in keyset order and pushes encoded chunks and batch ends to the queue.
class Reader final : public RowSink {
 public:
  struct Options {
    std::string database_url;
    Cursor start;
    // The window on the first key column as UTC text ("2024-05-03 05:00:00.000"), compared by
    // Postgres as that column's type (the session's time zone is UTC), so it keeps its index.
    std::optional<std::string> min_date, max_date;
    int64_t max_batch_bytes = kDefaultMaxBatchBytes;
    // The key range read (a chunk): from `lower` (inclusive) to `upper` (exclusive); `start`,
    // when set, is inside it.
    std::optional<Cursor> lower, upper;
    // A connection (in UTC, ISO dates) to read on instead of opening one: a thread's ranges
    // share its connection, so that Postgres does not start a backend (and fault in the shared
    // buffers it touches) for every range. Nullptr: the reader opens its own.
    PgConnection* connection = nullptr;
  };

  Reader(const CopyPlan& plan, Options options, const std::atomic<int64_t>& target_rows,
         BoundedQueue<Item>& queue, ChunkPool& pool, std::stop_token stop)
      : plan_(plan),
        options_(std::move(options)),
        target_rows_(target_rows),
        queue_(queue),
        pool_(pool),
        stop_(std::move(stop)),
        writer_(chunk_),
        select_width_(static_cast<int>(plan.select_list.size())),
        key_col_(select_width_ + 2 * static_cast<int>(plan.blob_list.size())) {}

  void Run() {
    Status s = RunImpl();
    if (!s.ok()) Push(Item{Item::Kind::kError, {}, {}, s});
  }

  RowBinaryWriter& writer() override { return writer_; }

  Status WriteBlob(int k, bool nullable) override {
    const int inline_col = select_width_ + 2 * k;
    const int length_col = inline_col + 1;
    const bool json = plan_.BlobIsJson(k);
    if (!stream_->IsNull(inline_col)) {
      if (nullable) writer_.WriteNotNull();
      if (json) {
        writer_.WriteJsonCompact(stream_->Get(inline_col));
      } else {
        writer_.WriteString(stream_->Get(inline_col));
      }
      return Status::Ok();
    }
    if (stream_->IsNull(length_col)) {
      if (!nullable) {
        return InvalidArgument(
            "NULL cannot be written as String, which is not Nullable; give a value in the "
            "SELECT (coalesce) or make the column Nullable");
      }
      writer_.WriteNull();
      return Status::Ok();
    }
    const int64_t total = ParseInt(stream_->Get(length_col));
    BGM_RETURN_IF_ERROR(OpenBlobConnection());
    const std::string& blob = plan_.blob_list[static_cast<size_t>(k)];
    // JSON is compacted as it streams; its compacted size, which the String's length prefix
    // needs first, comes from a first pass over the pieces that only counts.
    int64_t length = total;
    if (json) {
      JsonCompactor counter;
      Result<int64_t> counted = StreamBlob(k, [&counter](std::string_view piece) {
        return static_cast<int64_t>(counter.Add(piece, nullptr));
      });
      if (!counted.ok()) return counted.status();
      length = *counted;
    }
    if (nullable) writer_.WriteNotNull();
    writer_.WriteVarUInt(static_cast<uint64_t>(length));
    JsonCompactor compactor;
    int64_t written = 0;
    Result<int64_t> done = StreamBlob(k, [&](std::string_view piece) -> Result<int64_t> {
      BGM_RETURN_IF_ERROR(FlushChunk());
      if (json) {
        written += static_cast<int64_t>(compactor.Add(piece, &chunk_));
      } else {
        chunk_.append(piece);
        written += static_cast<int64_t>(piece.size());
      }
      return static_cast<int64_t>(piece.size());
    });
    if (!done.ok()) return done.status();
    if (*done != total || written != length) {
      return Internal(RowName() + " changed size while its " + blob + " was read (" +
                      std::to_string(total) + " bytes announced, " + std::to_string(*done) +
                      " read)");
    }
    return FlushChunk();
  }

 private:
  // Streams blob `k` of the current row in pieces to `each`, which returns how much it counts
  // or an error; returns the sum.
  Result<int64_t> StreamBlob(int k, const std::function<Result<int64_t>(std::string_view)>& each) {
    const std::string& blob = plan_.blob_list[static_cast<size_t>(k)];
    // One query serializes the value once and streams it back in pieces, one row each.
    // (MATERIALIZED: without it Postgres re-serializes the value for every piece, 13x slower.)
    std::string sql = "WITH t AS MATERIALIZED (SELECT convert_to((" + blob +
                      ")::text, 'UTF8') AS b FROM " + plan_.from + " WHERE " + KeyTuple() + " = (";
    std::vector<PgParam> params = {kBlobPiece};
    for (size_t i = 0; i < plan_.key_list.size(); ++i) {
      sql += (i > 0 ? ", $" : "$") + std::to_string(i + 2);
      params.emplace_back(std::string(stream_->Get(key_col_ + static_cast<int>(i))));
    }
    sql +=
        ")) SELECT substring(t.b from o::int + 1 for $1::int) FROM t, "
        "generate_series(0, octet_length(t.b) - 1, $1::int) o ORDER BY o";
    PgRowStream pieces(*blob_conn_);
    BGM_RETURN_IF_ERROR(pieces.Start(sql, params, /*binary=*/true));
    int64_t sum = 0;
    while (true) {
      Result<bool> more = pieces.Next();
      if (!more.ok()) return more.status().WithContext("reading " + blob + " of " + RowName());
      if (!*more) break;
      Result<int64_t> n = each(pieces.Get(0));
      if (!n.ok()) return n.status();
      sum += *n;
    }
    return sum;
  }

  bool Push(Item item) {
    const size_t cost = item.data.size() + 64;
    return queue_.Push(std::move(item), cost);
  }

  Status FlushChunk() {
    if (chunk_.empty()) return Status::Ok();
    batch_bytes_ += static_cast<int64_t>(chunk_.size());
    Item item{Item::Kind::kChunk, std::move(chunk_), {}, {}};
    chunk_ = pool_.Take();
    if (!Push(std::move(item))) return Cancelled("the inserter stopped");
    return Status::Ok();
  }

  Status EndBatch() {
    BGM_RETURN_IF_ERROR(FlushChunk());
    BatchInfo info{batch_from_, CursorJson(), batch_rows_, batch_bytes_};
    if (!Push(Item{Item::Kind::kEndOfBatch, {}, std::move(info), {}})) {
      return Cancelled("the inserter stopped");
    }
    batch_from_ = CursorJson();
    batch_rows_ = 0;
    batch_bytes_ = 0;
    return Status::Ok();
  }

  nlohmann::json CursorJson() const { return cursor_.ToJson(plan_.key_names); }

  // "(k1, k2)"
  std::string KeyTuple() const {
    std::string out = "(";
    for (size_t i = 0; i < plan_.key_list.size(); ++i) {
      out += (i > 0 ? ", " : "") + plan_.key_list[i];
    }
    return out + ")";
  }

  // The current row for messages: "traces row (created_at, id) = (2024-05-01 ..., t1)".
  std::string RowName() const {
    std::string out = plan_.source + " row (";
    for (size_t i = 0; i < plan_.key_names.size(); ++i) {
      out += (i > 0 ? ", " : "") + plan_.key_names[i];
    }
    out += ") = (";
    for (size_t i = 0; i < plan_.key_names.size(); ++i) {
      out += (i > 0 ? ", " : "") + std::string(stream_->Get(key_col_ + static_cast<int>(i)));
    }
    return out + ")";
  }

  Status OpenBlobConnection() {
    if (blob_in_txn_) return Status::Ok();
    if (!blob_conn_) {
      Result<PgConnection> c = PgConnection::Connect(options_.database_url);
      if (!c.ok()) return c.status();
      blob_conn_.emplace(std::move(*c));
      BGM_RETURN_IF_ERROR(blob_conn_->Run("SET DateStyle = 'ISO, YMD'"));
      BGM_RETURN_IF_ERROR(blob_conn_->Run("SET TimeZone = 'UTC'"));
    }
    BGM_RETURN_IF_ERROR(blob_conn_->Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
    char* quoted = PQescapeLiteral(blob_conn_->get(), snapshot_.data(), snapshot_.size());
    if (quoted == nullptr) return Internal("could not quote the snapshot id");
    const std::string sql = std::string("SET TRANSACTION SNAPSHOT ") + quoted;
    PQfreemem(quoted);
    BGM_RETURN_IF_ERROR(blob_conn_->Run(sql));
    blob_in_txn_ = true;
    return Status::Ok();
  }

  // The read of up to kReadLimit rows after the cursor, and its parameters. Both window bounds
  // are index conditions, so the read past maxDate stops at it instead of filtering the rest.
  std::string Query(std::vector<PgParam>& params) const {
    params.clear();
    auto param = [&params](PgParam p) {
      params.push_back(std::move(p));
      return "$" + std::to_string(params.size());
    };
    std::string sql = "SELECT ";
    for (const std::string& e : plan_.select_list) sql += e + ", ";
    if (!plan_.blob_list.empty()) {
      const std::string limit = param(kInlineStoredLimit);
      for (const std::string& b : plan_.blob_list) {
        sql += "CASE WHEN pg_column_size(" + b + ") <= " + limit + " THEN (" + b + ")::text END, ";
        sql += "CASE WHEN pg_column_size(" + b + ") > " + limit + " THEN octet_length((" + b +
               ")::text) END, ";
      }
    }
    for (size_t i = 0; i < plan_.key_list.size(); ++i) {
      sql += (i > 0 ? ", " : "") + plan_.key_list[i];
    }
    sql += " FROM " + plan_.from + " WHERE true";
    auto values = [&param](const Cursor& c) {
      std::string out = "(";
      for (size_t i = 0; i < c.values.size(); ++i) out += (i > 0 ? ", " : "") + param(c.values[i]);
      return out + ")";
    };
    if (!cursor_.values.empty()) {
      // >=: the cursor's own row is read again and skipped, so that a second row with its
      // key (a key that is not unique) is seen here too, not skipped by a strict >.
      sql += " AND " + KeyTuple() + " >= " + values(cursor_);
    } else if (options_.lower) {
      sql += " AND " + KeyTuple() + " >= " + values(*options_.lower);
    }
    if (options_.upper) sql += " AND " + KeyTuple() + " < " + values(*options_.upper);
    const std::string& first = plan_.key_list.front();
    if (options_.min_date) sql += " AND " + first + " >= " + param(*options_.min_date);
    if (options_.max_date) sql += " AND " + first + " < " + param(*options_.max_date);
    sql += " ORDER BY ";
    for (size_t i = 0; i < plan_.key_list.size(); ++i) {
      sql += (i > 0 ? ", " : "") + plan_.key_list[i];
    }
    return sql + " LIMIT " + param(kReadLimit);
  }

  Status RunImpl() {
    std::optional<PgConnection> own;
    PgConnection* conn = options_.connection;
    if (conn == nullptr) {
      Result<PgConnection> c = PgConnection::Connect(options_.database_url);
      if (!c.ok()) return c.status();
      own.emplace(std::move(*c));
      conn = &*own;
      // Timestamps are read as text in ISO form, timestamptz in UTC (the cursor round-trips).
      BGM_RETURN_IF_ERROR(conn->Run("SET DateStyle = 'ISO, YMD'"));
      BGM_RETURN_IF_ERROR(conn->Run("SET TimeZone = 'UTC'"));
    } else {
      // A shared connection may hold the transaction of a range that failed mid-read.
      BGM_RETURN_IF_ERROR(conn->Run("ROLLBACK"));
    }
    cursor_ = options_.start;
    batch_from_ = CursorJson();
    chunk_ = pool_.Take();
    const size_t keys = plan_.key_list.size();
    while (true) {
      BGM_RETURN_IF_ERROR(conn->Run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"));
      if (options_.upper) {
        // A range bounded above: Postgres estimates a row comparison's selectivity at a third,
        // so it reads the range by a (parallel) scan of the whole table and an on-disk sort;
        // measured on 1M traces, Postgres then spent 3x the CPU of an index walk. Sorting is
        // made a last resort for this read (the key's index gives the order), and the plan
        // is not worth compiling.
        BGM_RETURN_IF_ERROR(conn->Run("SET LOCAL enable_sort = off"));
        BGM_RETURN_IF_ERROR(conn->Run("SET LOCAL jit = off"));
      }
      Result<PgResult> snap = conn->Exec("SELECT pg_export_snapshot()");
      if (!snap.ok()) return snap.status();
      snapshot_ = std::string(snap->Get(0, 0));
      int64_t rows = 0;
      bool stopped = false;
      const bool from_cursor = !cursor_.values.empty();
      {
        PgRowStream stream(*conn);
        stream_ = &stream;
        std::vector<PgParam> params;
        const std::string sql = Query(params);
        BGM_RETURN_IF_ERROR(stream.Start(sql, params));
        while (true) {
          if (stop_.stop_requested()) {
            stopped = true;
            break;
          }
          Result<bool> more = stream.Next();
          if (!more.ok()) return more.status().WithContext("reading " + plan_.source);
          if (!*more) break;
          ++rows;
          bool same_key = !cursor_.values.empty();
          for (size_t i = 0; same_key && i < keys; ++i) {
            same_key = cursor_.values[i] == stream.Get(key_col_ + static_cast<int>(i));
          }
          if (same_key && rows == 1 && from_cursor) continue;  // copied already
          if (same_key) {
            // The copy's plan is wrong, not one range's rows: kFailedPrecondition fails a
            // chunked copy at once instead of range by range.
            return FailedPrecondition("the key is not unique: two rows of " + RowName() +
                                      "; a keyset copy would skip one of them, so nothing more is "
                                      "copied. Add a column that makes the key unique (e.g. id)");
          }
          Status s = plan_.encode(SourceRow(stream, plan_.select_list), *this);
          if (!s.ok()) return s.WithContext("encoding " + RowName());
          cursor_.values.resize(keys);
          for (size_t i = 0; i < keys; ++i) {
            cursor_.values[i] = std::string(stream.Get(key_col_ + static_cast<int>(i)));
          }
          ++batch_rows_;
          if (chunk_.size() >= kChunkBytes) BGM_RETURN_IF_ERROR(FlushChunk());
          const int64_t bytes = batch_bytes_ + static_cast<int64_t>(chunk_.size());
          if (batch_rows_ >= target_rows_.load() || bytes >= options_.max_batch_bytes) {
            BGM_RETURN_IF_ERROR(EndBatch());
          }
        }
        stream_ = nullptr;
      }
      if (blob_in_txn_) {
        (void)blob_conn_->Run("COMMIT");
        blob_in_txn_ = false;
      }
      (void)conn->Run(stopped ? "ROLLBACK" : "COMMIT");
      if (stopped || rows < kReadLimit) {
        if (batch_rows_ > 0) BGM_RETURN_IF_ERROR(EndBatch());
        Push(Item{stopped ? Item::Kind::kStopped : Item::Kind::kEndOfData, {}, {}, {}});
        return Status::Ok();
      }
    }
  }

  const CopyPlan& plan_;
  const Options options_;
  const std::atomic<int64_t>& target_rows_;
  BoundedQueue<Item>& queue_;
  ChunkPool& pool_;
  std::stop_token stop_;

  std::string chunk_;
  RowBinaryWriter writer_;
  const int select_width_;
  const int key_col_;  // the first key column of the read
  PgRowStream* stream_ = nullptr;
  std::optional<PgConnection> blob_conn_;
  bool blob_in_txn_ = false;
  std::string snapshot_;
  Cursor cursor_;
  nlohmann::json batch_from_;
  int64_t batch_rows_ = 0;
  int64_t batch_bytes_ = 0;  // bytes of this batch already handed to the queue
};

// Serves one batch's chunks from the queue to the HTTP upload.
class QueueSource final : public InsertSource {
 public:
  QueueSource(BoundedQueue<Item>& queue, ChunkPool& pool, std::string first)
      : queue_(queue), pool_(pool), data_(std::move(first)) {}

  Result<size_t> Read(char* buf, size_t capacity) override {
    while (offset_ == data_.size()) {
      if (done_) return size_t{0};
      std::optional<Item> item = queue_.Pop();
      if (!item) return Cancelled("the reader stopped");
      switch (item->kind) {
        case Item::Kind::kChunk:
          pool_.Give(std::move(data_));
          data_ = std::move(item->data);
          offset_ = 0;
          break;
        case Item::Kind::kEndOfBatch:
          batch_ = std::move(item->batch);
          done_ = true;
          return size_t{0};
        case Item::Kind::kError:
          reader_error_ = item->error;
          return item->error;
        default:
          return Internal("copy protocol error: data ended inside a batch");
      }
    }
    const size_t n = std::min(capacity, data_.size() - offset_);
    std::memcpy(buf, data_.data() + offset_, n);
    offset_ += n;
    return n;
  }

  bool complete() const { return done_; }
  const BatchInfo& batch() const { return batch_; }
  const Status& reader_error() const { return reader_error_; }

 private:
  BoundedQueue<Item>& queue_;
  ChunkPool& pool_;
  std::string data_;
  size_t offset_ = 0;
  bool done_ = false;
  BatchInfo batch_;
  Status reader_error_;
};

// minDate / maxDate as instants (each optional).
struct DateBounds {
  std::optional<int64_t> min_ms, max_ms;
};

// The one reading of a copy's date bounds, for Validate and Run: kInvalidArgument for a value
// that is not a timestamp, or a pair whose instants are not in order (whatever their forms).
Result<DateBounds> DateBoundsOf(const nlohmann::json& args) {
  Result<std::optional<int64_t>> min = TimestampArg(args, "minDate");
  if (!min.ok()) return min.status();
  Result<std::optional<int64_t>> max = TimestampArg(args, "maxDate");
  if (!max.ok()) return max.status();
  if (*min && *max && **min >= **max) {
    return InvalidArgument("minDate must be before maxDate, got " + JsonExcerpt(args["minDate"]) +
                           " and " + JsonExcerpt(args["maxDate"]) + " (as UTC: " +
                           FormatIsoTimestamp(**min) + " and " + FormatIsoTimestamp(**max) + ")");
  }
  return DateBounds{*min, *max};
}

// The saved cursor, in the key's order. Also reads the form bgmigrate wrote before keys had
// names ({"column": "created_at", "value": ..., "id": ...}) for a key (column, id).
Result<Cursor> CursorFromState(const nlohmann::json& state, const std::vector<std::string>& names) {
  Cursor c;
  if (!state.contains("cursor")) return c;
  const nlohmann::json& j = state["cursor"];
  auto key_text = [&names] {
    std::string out;
    for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
    return "(" + out + ")";
  };
  if (j.is_object() && j.contains("column") && j["column"].is_string() && j.contains("value") &&
      j["value"].is_string() && j.contains("id") && j["id"].is_string() && j.size() == 3) {
    const std::string column = j["column"].get<std::string>();
    if (names.size() != 2 || names[0] != column || names[1] != "id") {
      return InvalidArgument("the saved cursor is on (" + column + ", id) but the key is " +
                             key_text() + "; retry with --from-start to copy from the beginning");
    }
    c.values = {j["value"].get<std::string>(), j["id"].get<std::string>()};
    return c;
  }
  if (!j.is_object()) {
    return InvalidArgument("state.cursor is malformed (" + j.dump() +
                           "); retry with --from-start to copy from the beginning");
  }
  std::string saved;
  for (const auto& [k, v] : j.items()) saved += (saved.empty() ? "" : ", ") + k;
  for (const std::string& n : names) {
    if (!j.contains(n) || !j[n].is_string() || j.size() != names.size()) {
      return InvalidArgument("the saved cursor is on (" + saved + ") but the key is " + key_text() +
                             "; retry with --from-start to copy from the beginning");
    }
    c.values.push_back(j[n].get<std::string>());
  }
  return c;
}

class PlannedCopy final : public BackgroundMigration {
 public:
  PlannedCopy(ArgsSchema schema, CopyPlanner planner)
      : schema_(std::move(schema)), planner_(std::move(planner)) {}

  Status Validate(const nlohmann::json& args) const override {
    BGM_RETURN_IF_ERROR(schema_.Validate(args));
    return DateBoundsOf(args).status();
  }

  Status Run(MigrationContext& ctx) override {
    Result<Prepared> p = Prepare(ctx);
    if (!p.ok()) return p.status();
    const nlohmann::json& args = ctx.args();
    const bool chunked = ctx.state().value("chunked", false);
    const int64_t chunk_rows = IntArg(args, "chunkRows", kDefaultChunkRows);
    if (chunked && chunk_rows == 0) {
      return InvalidArgument(
          "this copy runs in chunks (see its chunks) but its chunkRows is now 0 (one range); set "
          "chunkRows above 0 again to go on, or retry with --from-start to copy as one range");
    }
    BGM_RETURN_IF_ERROR(ReportEstimate(ctx, p->plan));
    if (chunk_rows > 0) {
      Result<bool> ran = RunChunks(ctx, p->plan, p->options, chunk_rows, /*helper=*/false);
      return ran.status();
    }
    Result<Cursor> start = CursorFromState(ctx.state(), p->plan.key_names);
    if (!start.ok()) return start.status();
    p->options.start = *start;
    return CopyRange(ctx, ctx.stop_token(), *p->client, p->plan, p->options,
                     [&ctx](BatchRecord& record) {
                       record.state = {{"cursor", record.to}};
                       return ctx.Checkpoint(record);
                     });
  }

  bool SharesWork(const nlohmann::json& args) const override {
    return IntArg(args, "chunkRows", kDefaultChunkRows) > 0 &&
           IntArg(args, "maxWorkers", kDefaultMaxWorkers) > 1;
  }

  Result<bool> Help(MigrationContext& ctx) override {
    if (!SharesWork(ctx.args())) return false;
    Result<Prepared> p = Prepare(ctx);
    if (!p.ok()) return p.status();
    return RunChunks(ctx, p->plan, p->options, IntArg(ctx.args(), "chunkRows", kDefaultChunkRows),
                     /*helper=*/true);
  }

 private:
  // Saves a durable batch (its state, rows and event); may fill in record.state.
  using Checkpointer = std::function<Status(BatchRecord&)>;

  // What a run needs once ClickHouse is connected: the plan and the reader's options.
  struct Prepared {
    std::unique_ptr<ClickHouseClient> client;
    CopyPlan plan;
    Reader::Options options;
  };

  Result<Prepared> Prepare(MigrationContext& ctx) {
    const nlohmann::json& args = ctx.args();
    const MigrationEnv& env = ctx.env();
    Result<std::unique_ptr<ClickHouseClient>> client = OpenClient(env);
    if (!client.ok()) return client.status();
    Result<ClickHouseDialect> dialect = DetectDialect(**client, ClickHouseCluster{});
    if (!dialect.ok()) return dialect.status().WithContext("connecting to ClickHouse");
    Result<CopyPlan> plan = planner_(**client, *dialect, args);
    if (!plan.ok()) return plan.status();
    Result<DateBounds> bounds = DateBoundsOf(args);
    if (!bounds.ok()) return bounds.status();
    auto utc_text = [](std::optional<int64_t> ms) {
      return ms ? std::optional(FormatPostgresTimestamp(*ms)) : std::nullopt;
    };
    Prepared p;
    p.client = std::move(*client);
    p.plan = std::move(*plan);
    p.options.database_url = env.database_url;
    p.options.min_date = utc_text(bounds->min_ms);
    p.options.max_date = utc_text(bounds->max_ms);
    p.options.max_batch_bytes = IntArg(args, "maxBatchBytes", kDefaultMaxBatchBytes);
    return p;
  }

  static Result<std::unique_ptr<ClickHouseClient>> OpenClient(const MigrationEnv& env) {
    return OpenClickHouseClient({.url = env.clickhouse_url,
                                 .user = env.clickhouse_user,
                                 .password = env.clickhouse_password,
                                 .database = env.clickhouse_db});
  }

  // Copies the rows of `options`' range (from its start cursor) in batches, each saved by
  // `checkpoint` after ClickHouse acknowledged it. `batch_rows`, when given, is the adaptive
  // batch size to start from, and is left where the range ended (a thread's next range goes on
  // from there instead of starting small again).
  static Status CopyRange(MigrationContext& ctx, std::stop_token stop, ClickHouseClient& client,
                          const CopyPlan& plan, Reader::Options options,
                          const Checkpointer& checkpoint, int64_t* batch_rows = nullptr) {
    // The health of the databases is checked before the first batch and after each one (the
    // reader reads ahead into the bounded queue meanwhile, no further). A signal that cannot be
    // read (a probe answering text, a probe's SQL error) is the copy's failure, not the range's:
    // it is not retried per range, and the copy fails at once naming the signal; an outage or
    // a timeout reading one ends the run to be waited out (it does not split the range).
    const auto await_healthy = [&ctx] {
      Status s = ctx.AwaitHealthy();
      if (s.ok() || s.code() == StatusCode::kCancelled || s.code() == StatusCode::kLeaseLost) {
        return s;
      }
      if (IsRetriable(s.code())) return Unavailable(s.message());
      return FailedPrecondition(s.message());
    };
    BGM_RETURN_IF_ERROR(await_healthy());
    const nlohmann::json& args = ctx.args();
    const bool pinned = args.contains("batchSize");
    std::atomic<int64_t> target_rows(pinned || batch_rows == nullptr
                                         ? IntArg(args, "batchSize", kInitialBatchRows)
                                         : *batch_rows);
    const double target_seconds = NumberArg(args, "targetBatchSeconds", kDefaultTargetSeconds);
    BoundedQueue<Item> queue(kQueueBytes);
    ChunkPool pool;
    Reader reader(plan, std::move(options), target_rows, queue, pool, stop);
    std::jthread reader_thread([&reader] { reader.Run(); });
    const std::chrono::milliseconds pause(IntArg(args, "pauseMs", 0));
    const Checkpointer checkpoint_then_await = [&](BatchRecord& record) {
      BGM_RETURN_IF_ERROR(checkpoint(record));
      return await_healthy();
    };
    Status result = InsertLoop(stop, checkpoint_then_await, client, plan, queue, pool, target_rows,
                               pinned, target_seconds, pause);
    queue.Close();
    reader_thread.join();
    if (batch_rows != nullptr) *batch_rows = target_rows.load();
    return result;
  }

  // " FROM ... WHERE ..." of the copy's rows in its minDate/maxDate window with key >= `lower`,
  // > `after` and < `upper` (each when set), binding values through `params`.
  static std::string RangeSql(const CopyPlan& plan, const Reader::Options& options,
                              const std::optional<Cursor>& lower,
                              const std::optional<Cursor>& after,
                              const std::optional<Cursor>& upper, std::vector<PgParam>& params) {
    auto param = [&params](PgParam p) {
      params.push_back(std::move(p));
      return "$" + std::to_string(params.size());
    };
    std::string keys;
    for (const std::string& k : plan.key_list) keys += (keys.empty() ? "" : ", ") + k;
    auto tuple = [&](const Cursor& c) {
      std::string t;
      for (const std::string& v : c.values) t += (t.empty() ? "" : ", ") + param(v);
      return "(" + t + ")";
    };
    std::string sql = " FROM " + plan.from + " WHERE true";
    if (lower) sql += " AND (" + keys + ") >= " + tuple(*lower);
    if (after) sql += " AND (" + keys + ") > " + tuple(*after);
    if (upper) sql += " AND (" + keys + ") < " + tuple(*upper);
    const std::string& first = plan.key_list.front();
    if (options.min_date) sql += " AND " + first + " >= " + param(*options.min_date);
    if (options.max_date) sql += " AND " + first + " < " + param(*options.max_date);
    return sql;
  }

  // The key `offset` rows into the range (nullopt past its end), on a connection in UTC.
  static Result<std::optional<Cursor>> KeyAt(PgConnection& conn, const CopyPlan& plan,
                                             const Reader::Options& options,
                                             const std::optional<Cursor>& lower,
                                             const std::optional<Cursor>& after,
                                             const std::optional<Cursor>& upper, int64_t offset) {
    std::vector<PgParam> params;
    std::string keys;
    for (const std::string& k : plan.key_list) keys += (keys.empty() ? "" : ", ") + k;
    std::string sql = "SELECT " + keys + RangeSql(plan, options, lower, after, upper, params);
    params.emplace_back(offset);
    sql += " ORDER BY " + keys + " OFFSET $" + std::to_string(params.size()) + " LIMIT 1";
    Result<PgResult> r = conn.Exec(sql, params);
    if (!r.ok()) return r.status();
    if (r->rows() == 0) return std::optional<Cursor>();
    Cursor c;
    for (int i = 0; i < static_cast<int>(plan.key_list.size()); ++i) {
      if (r->IsNull(0, i)) {
        return InvalidArgument("key column " + plan.key_names[static_cast<size_t>(i)] + " of " +
                               plan.source +
                               " is NULL in some rows; a keyset copy cannot order them: "
                               "coalesce it in the SELECT or filter those rows");
      }
      c.values.emplace_back(r->Get(0, i));
    }
    return std::optional<Cursor>(std::move(c));
  }

  static Result<PgConnection> UtcConnection(const std::string& url) {
    Result<PgConnection> conn = PgConnection::Connect(url);
    if (!conn.ok()) return conn.status();
    BGM_RETURN_IF_ERROR(conn->Run("SET DateStyle = 'ISO, YMD'"));
    BGM_RETURN_IF_ERROR(conn->Run("SET TimeZone = 'UTC'"));
    return conn;
  }

  // The keys that split the copy's rows (in its minDate/maxDate window) after `after` (all when
  // nullopt) into ranges of `chunk_rows` rows, in key order: each the key `chunk_rows` rows after
  // the one before. One index walk over the key, a range at a time (each query its own snapshot).
  static Result<std::vector<nlohmann::json>> PlanBoundaries(const CopyPlan& plan,
                                                            const Reader::Options& options,
                                                            int64_t chunk_rows,
                                                            const std::optional<Cursor>& after) {
    Result<PgConnection> conn = UtcConnection(options.database_url);
    if (!conn.ok()) return conn.status();
    std::vector<nlohmann::json> out;
    std::optional<Cursor> previous;
    while (true) {
      Result<std::optional<Cursor>> next =
          KeyAt(*conn, plan, options, previous, previous ? std::nullopt : after, std::nullopt,
                chunk_rows);
      if (!next.ok()) return next.status().WithContext("splitting " + plan.source + " into chunks");
      if (!next->has_value()) return out;
      out.push_back((*next)->ToJson(plan.key_names));
      previous = std::move(*next);
      if (out.size() > kMaxChunks) {
        return InvalidArgument("chunkRows " + std::to_string(chunk_rows) + " splits " +
                               plan.source + " into more than " + std::to_string(kMaxChunks) +
                               " chunks; raise chunkRows");
      }
    }
  }

  // The key in the middle of what is left of range `c` (after its cursor), or nullopt when
  // fewer than two rows are left.
  static Result<std::optional<nlohmann::json>> MiddleOfRest(const CopyPlan& plan,
                                                            const Reader::Options& options,
                                                            const Chunk& c, int64_t chunk_rows) {
    auto cursor_of = [&plan](const nlohmann::json& j) -> Result<std::optional<Cursor>> {
      if (j.is_null()) return std::optional<Cursor>();
      Result<Cursor> cur = CursorFromState(nlohmann::json{{"cursor", j}}, plan.key_names);
      if (!cur.ok()) return cur.status();
      return std::optional<Cursor>(*cur);
    };
    Result<std::optional<Cursor>> lower = cursor_of(c.lower), after = cursor_of(c.cursor),
                                  upper = cursor_of(c.upper);
    if (!lower.ok()) return lower.status();
    if (!after.ok()) return after.status();
    if (!upper.ok()) return upper.status();
    Result<PgConnection> conn = UtcConnection(options.database_url);
    if (!conn.ok()) return conn.status();
    std::vector<PgParam> params;
    std::string sql =
        "SELECT count(*) FROM (SELECT 1" + RangeSql(plan, options, *lower, *after, *upper, params);
    params.emplace_back(2 * chunk_rows);
    sql += " LIMIT $" + std::to_string(params.size()) + ") t";
    Result<PgResult> n = conn->Exec(sql, params);
    if (!n.ok()) return n.status();
    const int64_t rest = n->GetInt(0, 0);
    if (rest < 2) return std::optional<nlohmann::json>();
    Result<std::optional<Cursor>> mid =
        KeyAt(*conn, plan, options, *lower, *after, *upper, rest / 2);
    if (!mid.ok()) return mid.status();
    if (!mid->has_value()) return std::optional<nlohmann::json>();
    return std::optional<nlohmann::json>((*mid)->ToJson(plan.key_names));
  }

  // A chunked run: the copy's key ranges (planned by the lease holder's first run) copied by
  // `concurrency` threads, each claiming the next pending range (or one whose worker died) and
  // copying it from its cursor; a range that fails is tried again after a backoff up to
  // chunkAttempts times, then failed while the others go on. The lease holder waits until no
  // range is pending or running anywhere and fails the copy naming every failed range; a helper
  // (`helper`: other workers, up to maxWorkers processes) returns when it finds nothing to claim,
  // with whether it ran any range.
  Result<bool> RunChunks(MigrationContext& ctx, const CopyPlan& plan,
                         const Reader::Options& options, int64_t chunk_rows, bool helper) {
    const nlohmann::json& args = ctx.args();
    const std::string& name = ctx.name();
    const std::chrono::seconds lease = ctx.lease();
    Result<ChunkStore> store = ChunkStore::Connect(options.database_url);
    if (!store.ok()) return store.status();
    Result<bool> has = store->HasChunks(name);
    if (!has.ok()) return has.status();
    if (helper) {
      if (!*has) return false;  // the lease holder has not split it yet
      Result<int> workers = store->Workers(name, lease);
      if (!workers.ok()) return workers.status();
      if (*workers >= IntArg(args, "maxWorkers", kDefaultMaxWorkers)) return false;
    } else {
      if (!*has) {
        // A copy that ran as one range (an older bgmigrate's, or chunkRows 0 until now) goes on
        // in ranges from its cursor: the first range starts at the cursor, with its rows.
        std::optional<Cursor> cursor;
        if (ctx.state().contains("cursor")) {
          Result<Cursor> c = CursorFromState(ctx.state(), plan.key_names);
          if (!c.ok()) return c.status();
          cursor = *c;
        }
        Result<std::vector<nlohmann::json>> boundaries =
            PlanBoundaries(plan, options, chunk_rows, cursor);
        if (!boundaries.ok()) return boundaries.status();
        BGM_RETURN_IF_ERROR(store->Create(
            name, *boundaries, cursor ? cursor->ToJson(plan.key_names) : nlohmann::json(nullptr)));
        if (cursor) {
          spdlog::info("{}: goes on from its cursor {} in {} chunks of about {} rows", name,
                       cursor->ToJson(plan.key_names).dump(), boundaries->size() + 1, chunk_rows);
        } else {
          spdlog::info("{}: split into {} chunks of about {} rows", name, boundaries->size() + 1,
                       chunk_rows);
        }
      }
      BGM_RETURN_IF_ERROR(store->RetryFailed(name));
    }

    const std::string process =
        ctx.worker_id().empty() ? "pid-" + std::to_string(::getpid()) : ctx.worker_id();
    const int concurrency = static_cast<int>(IntArg(args, "concurrency", 1));
    const int max_attempts = static_cast<int>(IntArg(args, "chunkAttempts", 3));
    std::stop_source stop;
    std::stop_callback forward(ctx.stop_token(), [&stop] { stop.request_stop(); });
    std::mutex mu;  // guards ctx (its Checkpoint) and `failure`
    Status failure;
    std::atomic<bool> claimed_any{false};
    auto fail_all = [&](Status s) {
      std::lock_guard<std::mutex> lock(mu);
      if (failure.ok()) failure = std::move(s);
      stop.request_stop();
    };
    auto worker = [&](int thread) {
      const std::string worker_id = process + "#" + std::to_string(thread);
      Result<ChunkStore> chunks = ChunkStore::Connect(options.database_url);
      if (!chunks.ok()) return fail_all(chunks.status());
      Result<std::unique_ptr<ClickHouseClient>> client = OpenClient(ctx.env());
      if (!client.ok()) return fail_all(client.status());
      int64_t batch_rows = kInitialBatchRows;  // adapts across this thread's ranges
      std::optional<PgConnection> reader_conn;
      while (!stop.stop_requested()) {
        Result<std::optional<Chunk>> claimed = chunks->Claim(name, worker_id, lease);
        if (!claimed.ok()) return fail_all(claimed.status());
        if (!claimed->has_value()) {
          if (helper) return;
          Result<ChunkCounts> counts = chunks->Counts(name);
          if (!counts.ok()) return fail_all(counts.status());
          if (counts->pending == 0 && counts->running == 0) return;
          // Ranges still run elsewhere (or wait out a backoff): claim them if their worker dies.
          SystemClock().SleepFor(std::chrono::milliseconds(500), stop.get_token());
          continue;
        }
        claimed_any = true;
        const Chunk& c = **claimed;
        // The thread's ranges are read on one connection (opened again after a failed range).
        Reader::Options range_options = options;
        if (!reader_conn) {
          Result<PgConnection> opened = UtcConnection(options.database_url);
          if (opened.ok()) reader_conn.emplace(std::move(*opened));
        }
        range_options.connection = reader_conn ? &*reader_conn : nullptr;
        Status s = RunChunk(ctx, stop.get_token(), **client, *chunks, plan,
                            std::move(range_options), c, worker_id, helper, mu, batch_rows);
        if (!s.ok()) reader_conn.reset();
        if (s.ok()) {
          s = chunks->Finish(name, c.chunk, worker_id);
          if (!s.ok()) return fail_all(s);
          continue;
        }
        // A memory limit or a timeout (ClickHouse's, or Postgres's statement_timeout) splits
        // what is left of the range in two, each claimed again at once; a range of one row left
        // is waited out as an outage.
        const bool stopped = stop.stop_requested();
        const bool heavy = s.code() == StatusCode::kResourceExhausted ||
                           s.code() == StatusCode::kDeadlineExceeded ||
                           (s.code() == StatusCode::kCancelled && !stopped);
        if (heavy) {
          Result<Chunk> now = chunks->Get(name, c.chunk);
          if (!now.ok()) return fail_all(now.status());
          Result<std::optional<nlohmann::json>> middle =
              MiddleOfRest(plan, options, *now, chunk_rows);
          if (!middle.ok()) return fail_all(middle.status());
          if (middle->has_value()) {
            Result<int> added = chunks->Split(name, c.chunk, worker_id, **middle, s.message());
            if (!added.ok()) return fail_all(added.status());
            spdlog::warn("{}: chunk {} {} split at {} (chunk {} takes the upper half) after: {}",
                         name, c.chunk, RangeText(c), (*middle)->dump(), *added, s.message());
            continue;
          }
        }
        // Outages, a lost claim and stops end this run (the manager waits outages out and runs
        // the copy again, every range from its cursor); a wrong plan (a key that is not unique)
        // fails the copy at once; other errors are the range's own.
        // (Release changes nothing when the claim is another worker's now.)
        if (heavy || s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kLeaseLost ||
            s.code() == StatusCode::kCancelled || s.code() == StatusCode::kFailedPrecondition) {
          (void)chunks->Release(name, c.chunk, worker_id);
          return fail_all(s);
        }
        const double backoff = std::min(60.0, std::pow(2.0, c.attempts - 1));
        Result<bool> gone =
            chunks->Fail(name, c.chunk, worker_id, s.message(), max_attempts, backoff);
        if (!gone.ok()) return fail_all(gone.status());
        spdlog::warn("{}: chunk {} {} failed (attempt {} of {}){}: {}", name, c.chunk, RangeText(c),
                     c.attempts, max_attempts,
                     *gone ? "; the other chunks go on" : ", tried again after a backoff",
                     s.message());
      }
    };
    {
      // Renews this process's claims while its threads copy.
      ClaimHeartbeat heartbeat(options.database_url, name, process, lease);
      std::vector<std::jthread> threads;
      for (int i = 0; i < concurrency; ++i) threads.emplace_back(worker, i);
      for (std::jthread& t : threads) t.join();
    }
    if (!failure.ok()) return failure;
    if (ctx.stop_requested()) return Cancelled("stop requested");
    if (helper) return claimed_any.load();
    Result<std::vector<Chunk>> all = store->List(name);
    if (!all.ok()) return all.status();
    std::string failed;
    int failed_count = 0, not_done = 0;
    for (const Chunk& c : *all) {
      if (c.status == "failed") {
        ++failed_count;
        if (failed_count <= 10) {
          failed += (failed.empty() ? "" : "; ") +
                    ("chunk " + std::to_string(c.chunk) + " " + RangeText(c) + " failed " +
                     std::to_string(c.attempts) + " times: " + c.last_error);
        }
      } else if (c.status != "done") {
        ++not_done;
      }
    }
    if (failed_count > 0 && all->size() == 1) {
      return InvalidArgument(failed +
                             ". Fix the rows and `bgmigrate retry` (the chunk goes on "
                             "from its cursor)");
    }
    if (failed_count > 0) {
      return InvalidArgument(std::to_string(failed_count) + " of " + std::to_string(all->size()) +
                             " chunks failed" + (failed_count > 10 ? " (the first 10)" : "") +
                             ": " + failed +
                             ". The other chunks are done; fix the rows and `bgmigrate retry` "
                             "(only the failed chunks run again)");
    }
    if (not_done > 0) {
      return Internal("copy ended with " + std::to_string(not_done) + " of its " +
                      std::to_string(all->size()) + " chunks not done");
    }
    return true;
  }

  static std::string RangeText(const Chunk& c) {
    return "[" + (c.lower.is_null() ? std::string("start") : c.lower.dump()) + ", " +
           (c.upper.is_null() ? std::string("end") : c.upper.dump()) + ")";
  }

  // One range, from its cursor: each batch saves the range's cursor, then the copy's rows and
  // batch event (under `mu`, which guards ctx).
  static Status RunChunk(MigrationContext& ctx, std::stop_token stop, ClickHouseClient& client,
                         ChunkStore& chunks, const CopyPlan& plan, Reader::Options options,
                         const Chunk& c, const std::string& worker_id, bool helper, std::mutex& mu,
                         int64_t& batch_rows) {
    auto cursor_of = [&plan](const nlohmann::json& j) {
      return CursorFromState(nlohmann::json{{"cursor", j}}, plan.key_names);
    };
    if (!c.lower.is_null()) {
      Result<Cursor> lower = cursor_of(c.lower);
      if (!lower.ok()) return lower.status();
      options.lower = *lower;
    }
    if (!c.upper.is_null()) {
      Result<Cursor> upper = cursor_of(c.upper);
      if (!upper.ok()) return upper.status();
      options.upper = *upper;
    }
    if (!c.cursor.is_null()) {
      Result<Cursor> start = cursor_of(c.cursor);
      if (!start.ok()) return start.status();
      options.start = *start;
    }
    return CopyRange(
        ctx, stop, client, plan, std::move(options),
        [&](BatchRecord& record) {
          const nlohmann::json cursor = record.to;
          record.from = {{"chunk", c.chunk}, {"cursor", record.from}};
          record.to = {{"chunk", c.chunk}, {"cursor", record.to}};
          if (helper) {  // the chunk, the migration's rows and the batch event in one statement
            return chunks.CheckpointShared(ctx.name(), c.chunk, worker_id, cursor, record.rows,
                                           {{"from", record.from},
                                            {"to", record.to},
                                            {"rows", record.rows},
                                            {"bytes", record.bytes},
                                            {"ms", record.duration_ms}});
          }
          record.state = {{"chunked", true}};
          record.chunk = ChunkProgress{c.chunk, worker_id, cursor};
          std::lock_guard<std::mutex> lock(mu);
          return ctx.Checkpoint(record);
        },
        &batch_rows);
  }

  static Status ReportEstimate(MigrationContext& ctx, const CopyPlan& plan) {
    Result<PgConnection> conn = PgConnection::Connect(ctx.env().database_url);
    if (!conn.ok()) return conn.status();
    int64_t estimate = -1;
    if (!plan.estimate_table.empty()) {
      Result<PgResult> r =
          conn->Exec("SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)",
                     {plan.estimate_table});
      if (!r.ok()) return r.status();
      if (r->rows() > 0) estimate = r->GetInt(0, 0);
    }
    if (estimate <= 0 && plan.estimate_table.empty()) {
      // The planner's estimate of the whole read.
      Result<PgResult> e = conn->Exec("EXPLAIN (FORMAT JSON) SELECT 1 FROM " + plan.from);
      if (!e.ok()) return e.status().WithContext("estimating the rows of " + plan.source);
      nlohmann::json j = nlohmann::json::parse(e->Get(0, 0), nullptr, false);
      if (j.is_array() && !j.empty() && j[0].contains("Plan")) {
        estimate = j[0]["Plan"].value("Plan Rows", int64_t{-1});
      }
    }
    // Unknown (a table never analyzed) or small: counted exactly.
    if (estimate < (plan.estimate_table.empty() ? kCountBelowRows : 1)) {
      Result<PgResult> c = conn->Exec("SELECT count(*) FROM " + plan.from);
      if (!c.ok() && c.status().code() == StatusCode::kUnavailable) {
        return c.status().WithContext("counting " + plan.source);
      }
      if (!c.ok()) {  // e.g. over statement_timeout: the copy goes on without a total
        spdlog::warn("{}: no estimate of the rows to copy (counting failed: {})", plan.source,
                     c.status().message());
        return Status::Ok();
      }
      estimate = c->GetInt(0, 0);
    }
    return ctx.ReportTotalEstimate(estimate);
  }

  static Status InsertLoop(std::stop_token stop, const Checkpointer& checkpoint,
                           ClickHouseClient& client, const CopyPlan& plan,
                           BoundedQueue<Item>& queue, ChunkPool& pool,
                           std::atomic<int64_t>& target_rows, bool pinned, double target_seconds,
                           std::chrono::milliseconds pause) {
    const std::string insert =
        "INSERT INTO " + plan.target_table + " (" + plan.insert_columns + ") FORMAT RowBinary";
    while (true) {
      const auto started = std::chrono::steady_clock::now();
      std::optional<Item> first = queue.Pop();
      if (!first) return Cancelled("the reader stopped");
      switch (first->kind) {
        case Item::Kind::kEndOfData:
          return Status::Ok();
        case Item::Kind::kStopped:
          return Cancelled("stop requested");
        case Item::Kind::kError:
          return first->error;
        case Item::Kind::kEndOfBatch:
          return Internal("copy protocol error: empty batch");
        case Item::Kind::kChunk:
          break;
      }
      QueueSource source(queue, pool, std::move(first->data));
      Status s = client.Insert(insert, source);
      if (!source.reader_error().ok()) return source.reader_error();
      if (!s.ok()) {
        return s.WithContext("inserting a batch into ClickHouse table " + plan.target_table);
      }
      if (!source.complete()) return Internal("copy protocol error: insert ended early");
      const BatchInfo& batch = source.batch();
      const auto elapsed = std::chrono::steady_clock::now() - started;
      BatchRecord record;
      record.rows = batch.rows;
      record.bytes = batch.bytes;
      record.from = batch.from;
      record.to = batch.to;
      record.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
      BGM_RETURN_IF_ERROR(checkpoint(record));
      // The reader may be far ahead (it stops at its next row); the stop holds here.
      if (stop.stop_requested()) return Cancelled("stop requested");
      if (pause.count() > 0 && !SystemClock().SleepFor(pause, stop)) {
        return Cancelled("stop requested");
      }
      if (!pinned && record.duration_ms > 0) {
        const double rate =
            static_cast<double>(batch.rows) * 1000.0 / static_cast<double>(record.duration_ms);
        const int64_t current = target_rows.load();
        int64_t next = static_cast<int64_t>(rate * target_seconds);
        next = std::clamp(next, current / 2, current * 2);
        target_rows.store(std::clamp(next, kMinAdaptiveRows, kMaxBatchRows));
      }
    }
  }

  ArgsSchema schema_;
  CopyPlanner planner_;
};

}  // namespace

std::unique_ptr<BackgroundMigration> NewPlannedCopy(ArgsSchema schema, CopyPlanner planner) {
  return std::make_unique<PlannedCopy>(std::move(schema), std::move(planner));
}

}  // namespace bgm
