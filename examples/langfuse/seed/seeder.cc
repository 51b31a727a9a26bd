#include "seed/seeder.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "postgres/pg_copy.h"
#include "seed/catalog.h"
#include "seed/row_writer.h"

namespace bgm {
namespace {

constexpr int64_t kProgressEvery = 100'000;
constexpr int64_t kMaxBlobBytes = 100'000'000;
constexpr int kMaxProjects = 10'000;
constexpr int kMaxConnections = 64;
// A table is split over several connections only in pieces at least this big.
constexpr int64_t kMinRowsPerStream = 10'000;
constexpr SeedTable kTables[] = {SeedTable::kTraces, SeedTable::kObservations, SeedTable::kScores};

std::string RowId(std::string_view prefix, uint64_t seed, int64_t index) {
  std::string digits = std::to_string(index);
  if (digits.size() < 10) digits.insert(0, 10 - digits.size(), '0');
  return std::string(prefix) + "-s" + std::to_string(seed) + "-" + digits;
}

int64_t RowsOf(const SeedOptions& opts, SeedTable table) {
  switch (table) {
    case SeedTable::kTraces:
      return opts.traces;
    case SeedTable::kObservations:
      return opts.observations;
    case SeedTable::kScores:
      return opts.scores;
  }
  return 0;
}

// Another connection with the parameters `conn` was opened with.
Result<PgConnection> ConnectLike(const PgConnection& conn) {
  PQconninfoOption* options = PQconninfo(conn.get());
  if (options == nullptr) return Internal("libpq could not report the connection's parameters");
  std::string conninfo;
  for (PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    conninfo += o->keyword;
    conninfo += "='";
    for (const char* c = o->val; *c != '\0'; ++c) {
      if (*c == '\'' || *c == '\\') conninfo += '\\';
      conninfo += *c;
    }
    conninfo += "' ";
  }
  PQconninfoFree(options);
  return PgConnection::Connect(conninfo);
}

// Models and prompts, idempotently: a second run (any seed) leaves them as they are.
Status SeedCatalog(PgConnection& conn, const SeedOptions& opts) {
  BGM_RETURN_IF_ERROR(conn.Run("BEGIN"));
  Status s = [&]() -> Status {
    auto opt = [](std::string_view v) -> PgParam {
      return v.empty() ? PgParam(std::nullopt) : PgParam(v);
    };
    for (const SeedModel& m : SeedModels()) {
      BGM_RETURN_IF_ERROR(conn.Run(
          "INSERT INTO models (id, project_id, model_name, match_pattern, start_date, "
          "input_price, output_price, total_price, unit, created_at, updated_at) "
          "VALUES ($1, $2, $3, $4, $5::timestamp, $6::numeric, $7::numeric, $8::numeric, $9, "
          "TIMESTAMP '2023-05-01 00:00:00', TIMESTAMP '2023-05-01 00:00:00') "
          "ON CONFLICT DO NOTHING",
          {m.id, opt(m.project_id), m.model_name, m.match_pattern, opt(m.start_date),
           opt(m.input_price), opt(m.output_price), opt(m.total_price), m.unit}));
    }
    const std::span<const SeedPrompt> prompts = SeedPrompts();
    for (int p = 1; p <= opts.projects; ++p) {
      for (size_t k = 0; k < prompts.size(); ++k) {
        const SeedPrompt& pr = prompts[k];
        BGM_RETURN_IF_ERROR(conn.Run(
            "INSERT INTO prompts (id, project_id, name, version, prompt, labels, created_at, "
            "updated_at) VALUES ($1, $2, $3, $4, $5::jsonb, $6::text[], "
            "TIMESTAMP '2023-05-01 09:00:00' + make_interval(days => $7), "
            "TIMESTAMP '2023-05-01 09:00:00' + make_interval(days => $7)) "
            "ON CONFLICT DO NOTHING",
            {SeedPromptId(p, k), SeedProjectId(p), pr.name, pr.version, pr.prompt_json, pr.labels,
             static_cast<int>(k)}));
      }
    }
    return Status::Ok();
  }();
  if (!s.ok()) {
    (void)conn.Run("ROLLBACK");
    return s.WithContext("seeding models and prompts");
  }
  return conn.Run("COMMIT");
}

// Refuses a run whose ids are already there.
Status CheckSeedIsNew(PgConnection& conn, const SeedOptions& opts) {
  auto first_id = [&](SeedTable t, std::string_view prefix) -> PgParam {
    if (RowsOf(opts, t) == 0) return std::nullopt;
    return RowId(prefix, opts.random_seed, 0);
  };
  Result<PgResult> r = conn.Exec(
      "SELECT EXISTS (SELECT 1 FROM traces WHERE id = $1) "
      "OR EXISTS (SELECT 1 FROM observations WHERE id = $2) "
      "OR EXISTS (SELECT 1 FROM scores WHERE id = $3)",
      {first_id(SeedTable::kTraces, "tr"), first_id(SeedTable::kObservations, "ob"),
       first_id(SeedTable::kScores, "sc")});
  if (!r.ok()) return r.status().WithContext("checking for rows of an earlier seed");
  if (r->GetBool(0, 0)) {
    return FailedPrecondition("this database already holds rows seeded with --random-seed " +
                              std::to_string(opts.random_seed) + " (e.g. " +
                              RowId("tr", opts.random_seed, 0) +
                              "); run seed again with another --random-seed to add more rows");
  }
  return Status::Ok();
}

// Reports progress per table; serializes the callback.
class ProgressReporter {
 public:
  explicit ProgressReporter(const SeedOptions& opts) : opts_(opts) {}

  void Started(SeedTable table) {
    std::lock_guard<std::mutex> lock(mu_);
    Table& t = tables_[static_cast<size_t>(table)];
    if (!t.started) {
      t.started = true;
      t.start = std::chrono::steady_clock::now();
    }
  }

  void Add(SeedTable table, int64_t rows) {
    if (rows == 0 || !opts_.progress) return;
    std::lock_guard<std::mutex> lock(mu_);
    Table& t = tables_[static_cast<size_t>(table)];
    t.done += rows;
    const int64_t total = RowsOf(opts_, table);
    if (t.done / kProgressEvery == t.reported / kProgressEvery && t.done != total) return;
    t.reported = t.done;
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t.start).count();
    SeedProgress p;
    p.table = SeedTableName(table);
    p.rows_done = t.done;
    p.rows_total = total;
    p.rows_per_second = seconds > 0 ? static_cast<double>(t.done) / seconds : 0;
    opts_.progress(p);
  }

 private:
  struct Table {
    bool started = false;
    std::chrono::steady_clock::time_point start;
    int64_t done = 0;
    int64_t reported = 0;
  };
  const SeedOptions& opts_;
  std::mutex mu_;
  Table tables_[3];  // GUARDED_BY(mu_)
};

// A contiguous range of one table's rows, written by one COPY.
struct Stream {
  SeedTable table;
  int64_t begin;
  int64_t end;
};

class SeedRun {
 public:
  SeedRun(const SeedOptions& opts, const std::vector<Stream>& streams)
      : opts_(opts), streams_(streams), corpus_(opts.random_seed), progress_(opts) {}

  // Writes streams until none is left or another worker failed.
  Status Work(PgConnection& conn) {
    SeedRowWriter writer(opts_, corpus_);
    while (!failed_.load()) {
      const size_t n = next_.fetch_add(1);
      if (n >= streams_.size()) break;
      const Stream& s = streams_[n];
      Status status = Copy(conn, writer, s);
      if (!status.ok()) {
        failed_.store(true);
        return status.WithContext("seeding " + std::string(SeedTableName(s.table)) + " rows " +
                                  std::to_string(s.begin) + ".." + std::to_string(s.end - 1));
      }
    }
    return Status::Ok();
  }

 private:
  Status Copy(PgConnection& conn, SeedRowWriter& writer, const Stream& s) {
    if (opts_.toast_compression.empty()) return CopyRows(conn, writer, s);
    // SET LOCAL: the setting ends with the transaction, leaving the caller's session as it was.
    BGM_RETURN_IF_ERROR(conn.Run("BEGIN"));
    Status status = conn.Run("SELECT set_config('default_toast_compression', $1, true)",
                             {opts_.toast_compression});
    if (status.ok()) status = CopyRows(conn, writer, s);
    if (status.ok()) return conn.Run("COMMIT");
    (void)conn.Run("ROLLBACK");
    return status;
  }

  Status CopyRows(PgConnection& conn, SeedRowWriter& writer, const Stream& s) {
    progress_.Started(s.table);
    Result<PgCopyIn> copy = PgCopyIn::Begin(conn, SeedCopySql(s.table));
    if (!copy.ok()) return copy.status();
    std::string& buffer = copy->buffer();
    int64_t unreported = 0;
    for (int64_t i = s.begin; i < s.end; ++i) {
      writer.Append(s.table, buffer, i);
      if (buffer.size() >= PgCopyIn::kChunkBytes) {
        if (failed_.load()) return Cancelled("another connection failed");  // rolls back
        BGM_RETURN_IF_ERROR(copy->FlushIfFull());
      }
      if (++unreported == 4096) {
        progress_.Add(s.table, unreported);
        unreported = 0;
      }
    }
    Result<int64_t> rows = copy->Finish();
    if (!rows.ok()) return rows.status();
    if (*rows != s.end - s.begin) {
      return Internal("COPY stored " + std::to_string(*rows) + " rows instead of " +
                      std::to_string(s.end - s.begin));
    }
    progress_.Add(s.table, unreported);
    return Status::Ok();
  }

  const SeedOptions& opts_;
  const std::vector<Stream>& streams_;
  const SeedCorpus corpus_;
  ProgressReporter progress_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> failed_{false};
};

}  // namespace

std::string SeedTraceId(uint64_t seed, int64_t index) { return RowId("tr", seed, index); }
std::string SeedObservationId(uint64_t seed, int64_t index) { return RowId("ob", seed, index); }
std::string SeedScoreId(uint64_t seed, int64_t index) { return RowId("sc", seed, index); }

Status ValidateSeedOptions(const SeedOptions& opts) {
  auto count = [](const char* flag, int64_t v) -> Status {
    if (v >= 0 && v <= kMaxSeedRows) return Status::Ok();
    return InvalidArgument(std::string(flag) + " must be between 0 and " +
                           std::to_string(kMaxSeedRows) + ", got " + std::to_string(v));
  };
  BGM_RETURN_IF_ERROR(count("--traces", opts.traces));
  BGM_RETURN_IF_ERROR(count("--observations", opts.observations));
  BGM_RETURN_IF_ERROR(count("--scores", opts.scores));
  if (opts.traces == 0 && (opts.observations > 0 || opts.scores > 0)) {
    return InvalidArgument(
        "--observations and --scores belong to traces of the same run: with --traces 0 they must "
        "be 0 too");
  }
  if (opts.blob_bytes < 0 || opts.blob_bytes > kMaxBlobBytes) {
    return InvalidArgument("--blob-bytes must be between 0 and " + std::to_string(kMaxBlobBytes) +
                           ", got " + std::to_string(opts.blob_bytes));
  }
  if (!(opts.same_created_at_fraction >= 0.0 && opts.same_created_at_fraction <= 1.0)) {
    char got[32];
    std::snprintf(got, sizeof got, "%g", opts.same_created_at_fraction);
    return InvalidArgument(std::string("--same-created-at-fraction must be between 0 and 1, got ") +
                           got);
  }
  if (opts.projects < 1 || opts.projects > kMaxProjects) {
    return InvalidArgument("--projects must be between 1 and " + std::to_string(kMaxProjects) +
                           ", got " + std::to_string(opts.projects));
  }
  if (!opts.toast_compression.empty() && opts.toast_compression != "pglz" &&
      opts.toast_compression != "lz4") {
    return InvalidArgument("--toast-compression must be pglz or lz4, got '" +
                           opts.toast_compression + "'");
  }
  if (opts.connections < 1 || opts.connections > kMaxConnections) {
    return InvalidArgument("--connections must be between 1 and " +
                           std::to_string(kMaxConnections) + ", got " +
                           std::to_string(opts.connections));
  }
  return Status::Ok();
}

Status Seed(PgConnection& conn, const SeedOptions& opts) {
  BGM_RETURN_IF_ERROR(ValidateSeedOptions(opts));
  BGM_RETURN_IF_ERROR(CheckSeedIsNew(conn, opts));
  BGM_RETURN_IF_ERROR(SeedCatalog(conn, opts));

  std::vector<Stream> streams;
  for (SeedTable table : kTables) {
    const int64_t rows = RowsOf(opts, table);
    if (rows == 0) continue;
    const int64_t parts =
        std::max<int64_t>(1, std::min<int64_t>(opts.connections, rows / kMinRowsPerStream));
    for (int64_t k = 0; k < parts; ++k) {
      streams.push_back({table, rows * k / parts, rows * (k + 1) / parts});
    }
  }
  const size_t workers = std::min(streams.size(), static_cast<size_t>(opts.connections));
  if (workers == 0) return Status::Ok();

  std::vector<PgConnection> extra;
  for (size_t w = 1; w < workers; ++w) {
    Result<PgConnection> c = ConnectLike(conn);
    if (!c.ok()) return c.status().WithContext("opening another seeding connection");
    extra.push_back(std::move(*c));
  }
  SeedRun run(opts, streams);
  std::vector<Status> results(workers);
  {
    std::vector<std::jthread> threads;
    for (size_t w = 1; w < workers; ++w) {
      threads.emplace_back([&, w] {
        try {
          results[w] = run.Work(extra[w - 1]);
        } catch (const std::exception& e) {
          results[w] = Internal(std::string("seeding thread failed: ") + e.what());
        }
      });
    }
    results[0] = run.Work(conn);
  }
  // The first real failure, not a peer's "another connection failed".
  for (const Status& s : results) {
    if (!s.ok() && s.code() != StatusCode::kCancelled) return s;
  }
  for (const Status& s : results) {
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace bgm
