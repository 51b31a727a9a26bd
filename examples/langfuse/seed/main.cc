// langfuse-seed: the example application's data generator. Writes Langfuse-shaped traces,
// observations and scores into the Postgres database of DATABASE_URL, whose tables the example's
// schema files created (`BGMIGRATE_SCHEMA_DIR=examples/langfuse/schema bgmigrate migrate`).
// Exit 0 on success, 2 for bad options or a database without the example's tables, 1 otherwise.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "postgres/pg_connection.h"
#include "seed/seeder.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int Fail(const bgm::Status& s) {
  std::fprintf(stderr, "langfuse-seed: %s\n", s.message().c_str());
  return s.code() == bgm::StatusCode::kInvalidArgument ||
                 s.code() == bgm::StatusCode::kFailedPrecondition
             ? kExitUsage
             : kExitFailed;
}

int Seed(const std::string& database_url, bgm::SeedOptions opts) {
  if (bgm::Status v = bgm::ValidateSeedOptions(opts); !v.ok()) return Fail(v);
  bgm::Result<bgm::PgConnection> conn = bgm::PgConnection::Connect(database_url);
  if (!conn.ok()) return Fail(conn.status());
  bgm::Result<bgm::PgResult> missing = conn->Exec(
      "SELECT string_agg(t, ', ') FROM unnest(ARRAY['traces', 'observations', 'scores']) t "
      "WHERE to_regclass(t) IS NULL");
  if (!missing.ok()) return Fail(missing.status());
  if (!missing->IsNull(0, 0)) {
    return Fail(bgm::FailedPrecondition(
        "this database has no " + std::string(missing->Get(0, 0)) +
        ": the example application's tables come from its schema files; run "
        "`BGMIGRATE_SCHEMA_DIR=examples/langfuse/schema bgmigrate migrate` first"));
  }
  opts.progress = [](const bgm::SeedProgress& p) {
    std::fprintf(stderr, "seed: %-12.*s %12lld / %lld rows (%.0f rows/s)\n",
                 static_cast<int>(p.table.size()), p.table.data(),
                 static_cast<long long>(p.rows_done), static_cast<long long>(p.rows_total),
                 p.rows_per_second);
  };
  const auto started = std::chrono::steady_clock::now();
  if (bgm::Status s = bgm::Seed(*conn, opts); !s.ok()) return Fail(s);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const int64_t rows = opts.traces + opts.observations + opts.scores;
  std::printf(
      "Seeded %lld traces, %lld observations, %lld scores (--random-seed %llu) in %.2f s "
      "(%.0f rows/s)\n",
      static_cast<long long>(opts.traces), static_cast<long long>(opts.observations),
      static_cast<long long>(opts.scores), static_cast<unsigned long long>(opts.random_seed),
      seconds, seconds > 0 ? static_cast<double>(rows) / seconds : 0.0);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "Write realistic Langfuse-shaped demo data (traces, observations, scores) into the "
      "example application's Postgres tables (DATABASE_URL)",
      "langfuse-seed"};
  bgm::SeedOptions opts;
  app.add_option("--traces", opts.traces, "Traces to write")->capture_default_str();
  CLI::Option* observations_opt = app.add_option("--observations", opts.observations,
                                                 "Observations to write (default: 3 x traces)");
  CLI::Option* scores_opt =
      app.add_option("--scores", opts.scores, "Scores to write (default: 1 x traces)");
  app.add_option("--blob-bytes", opts.blob_bytes, "Approximate size of each input and output JSON")
      ->capture_default_str();
  app.add_option("--same-created-at-fraction", opts.same_created_at_fraction,
                 "Share of rows with created_at 2024-05-02 12:00:00, as in instances made "
                 "before 2024-05-03")
      ->capture_default_str();
  int64_t random_seed = 1;
  app.add_option("--random-seed", random_seed,
                 "Seed of the generated data; ids include it, so runs need distinct seeds")
      ->capture_default_str();
  app.add_option("--projects", opts.projects, "Projects to spread the data over")
      ->capture_default_str();
  app.add_option("--connections", opts.connections, "Parallel COPY connections")
      ->capture_default_str();
  app.add_option("--toast-compression", opts.toast_compression,
                 "pglz or lz4 for the values Postgres toasts (default: the server's "
                 "default_toast_compression); lz4 seeds faster");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  const char* url = std::getenv("DATABASE_URL");
  if (url == nullptr || *url == '\0') {
    return Fail(bgm::InvalidArgument(
        "DATABASE_URL is not set; e.g. export DATABASE_URL=postgresql://user@127.0.0.1:5432/db "
        "(scripts/services.sh env prints it for the local services)"));
  }
  const int64_t traces = std::clamp<int64_t>(opts.traces, 0, bgm::kMaxSeedRows);
  if (observations_opt->count() == 0) opts.observations = 3 * traces;
  if (scores_opt->count() == 0) opts.scores = traces;
  if (random_seed < 0) {
    return Fail(bgm::InvalidArgument("--random-seed must be 0 or more, got " +
                                     std::to_string(random_seed)));
  }
  opts.random_seed = static_cast<uint64_t>(random_seed);
  return Seed(url, opts);
}
