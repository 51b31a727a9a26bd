// Seed: fills a Postgres database's application tables (traces, observations, scores, and the
// models and prompts they refer to) with realistic Langfuse-shaped data, fast, for demos, tests
// and benchmarks. The data holds the cases a migration has to survive: NULLs, unicode, JSON of
// every type, escapes, blobs of a chosen size, and many rows sharing one created_at (as in
// every Langfuse instance made before 2024-05-03).
//
// Seed uses only its arguments (calls with distinct connections may run concurrently); it runs
// its own threads, one per extra connection, and joins them before returning.
// Deterministic: the same options write the same rows, whatever the number of connections.
// Row ids embed the seed (trace "tr-s7-0000000042"), so runs with different --random-seed add
// rows side by side; a second run with the same seed is refused (kFailedPrecondition).
//
//   SeedOptions opts;
//   opts.traces = 100000;
//   Status s = Seed(conn, opts);
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "postgres/pg_connection.h"

namespace bgm {

// A progress report: about every 100k rows of a table, and once when the table is done.
struct SeedProgress {
  std::string_view table;  // "traces", "observations" or "scores"
  int64_t rows_done = 0;
  int64_t rows_total = 0;
  double rows_per_second = 0;  // since this table started
};

struct SeedOptions {
  int64_t traces = 1000;
  int64_t observations = 3000;  // each belongs to a trace of this run: needs traces > 0
  int64_t scores = 1000;        // each scores a trace of this run: needs traces > 0
  // Approximate size of each trace's and observation's input and output JSON, as Postgres
  // prints it (octet_length(input::text)); a JSON string inside holds the bulk.
  int64_t blob_bytes = 1000;
  // Share of the rows of each table whose created_at is exactly kSharedCreatedAt: the first
  // round(fraction * rows) rows by id (those with the oldest timestamps). No other row has it.
  double same_created_at_fraction = 0.05;
  uint64_t random_seed = 1;
  int projects = 3;     // project ids "seed-project-1" ... "seed-project-N"
  int connections = 2;  // parallel COPY streams (each a connection and a thread)
  // How Postgres compresses the large values it toasts: "" keeps the server's
  // default_toast_compression (pglz unless configured); "lz4" costs the server about a fifth
  // less CPU. Set per COPY transaction; the table definitions are not changed.
  std::string toast_compression;
  // Called from the seeding threads, never two calls at once.
  std::function<void(const SeedProgress&)> progress;
};

// The created_at that Langfuse gave every row existing when it added the column.
inline constexpr std::string_view kSharedCreatedAt = "2024-05-02 12:00:00";
// Largest accepted row count per table.
inline constexpr int64_t kMaxSeedRows = 1'000'000'000;

// kInvalidArgument naming the bad option and its allowed range, or OK.
Status ValidateSeedOptions(const SeedOptions& opts);

// Writes the rows described by `opts` with COPY (into models and prompts idempotently, with
// INSERT ... ON CONFLICT DO NOTHING). The application tables must exist (ApplyPostgresSchema).
// Up to opts.connections - 1 extra connections are opened with `conn`'s parameters; a table of
// at least 20,000 rows is split into as many contiguous id ranges, each one COPY in its own
// transaction, so after a failure some ranges may have been stored.
// Errors: kInvalidArgument for bad options; kFailedPrecondition when rows of this seed are
// already there (use another random_seed); Postgres errors as PgConnection::Exec.
Status Seed(PgConnection& conn, const SeedOptions& opts);

// Ids of seeded rows: "tr-s<seed>-<10-digit index>", "ob-s...", "sc-s...".
std::string SeedTraceId(uint64_t seed, int64_t index);
std::string SeedObservationId(uint64_t seed, int64_t index);
std::string SeedScoreId(uint64_t seed, int64_t index);

}  // namespace bgm
