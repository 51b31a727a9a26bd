// The Postgres -> ClickHouse copies end to end: real bgmigrate workers, a real Postgres and
// ClickHouse, seeded Langfuse-shaped data with every edge case the seeder makes.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "common/json_compact.h"
#include "seed/seeder.h"
#include "testing/example_app.h"
#include "testing/process.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using testing::ChildProcess;
using testing::ProcessResult;
using testing::RunProcess;

class CopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.ok());
    ASSERT_TRUE(ch_.ok());
    conn_.emplace(pg_.Connect());
    ProcessResult r = RunProcess(BGM_BINARY, {"migrate"}, Env("cli"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }

  std::map<std::string, std::string> Env(const std::string& worker) {
    return {{"DATABASE_URL", pg_.url()},       {"CLICKHOUSE_URL", ch_.url()},
            {"CLICKHOUSE_DB", ch_.database()}, {"BGMIGRATE_LEASE_SECONDS", "2"},
            {"BGMIGRATE_POLL_SECONDS", "0.2"}, {"BGMIGRATE_WORKER_ID", worker}};
  }

  void Seed(int64_t traces, int64_t observations, int64_t scores, int64_t blob = 300,
            double same = 0.05) {
    SeedOptions o;
    o.traces = traces;
    o.observations = observations;
    o.scores = scores;
    o.blob_bytes = blob;
    o.same_created_at_fraction = same;
    o.random_seed = 7;
    Status s = bgm::Seed(*conn_, o);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }

  // Runs one worker until nothing is left; asserts it exits 0.
  void RunWorker(const std::string& id = "w1") {
    ProcessResult r =
        RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env(id), std::chrono::seconds(300));
    ASSERT_EQ(r.exit_code, 0) << r.err.substr(r.err.size() > 4000 ? r.err.size() - 4000 : 0);
  }

  void SetArgs(const std::string& name, const nlohmann::json& args) {
    ASSERT_TRUE(conn_
                    ->Run("UPDATE background_migrations SET args = $1::jsonb WHERE name = $2",
                          {args.dump(), name})
                    .ok());
  }

  std::string PgScalar(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && r->rows() > 0 ? std::string(r->Get(0, 0)) : "";
  }

  // JSONEachRow lines of a ClickHouse query, parsed.
  std::vector<nlohmann::json> ChRows(const std::string& sql) {
    Result<std::string> body = ch_.client().Query(sql + " FORMAT JSONEachRow");
    EXPECT_TRUE(body.ok()) << body.status().ToString();
    std::vector<nlohmann::json> out;
    if (!body.ok()) return out;
    std::istringstream lines(*body);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) out.push_back(nlohmann::json::parse(line));
    }
    return out;
  }

  // A metadata map read back from ClickHouse, as key -> value.
  std::map<std::string, std::string> ChMap(const nlohmann::json& row, const std::string& name) {
    std::map<std::string, std::string> out;
    if (ch_.dialect().modern()) {
      // JSONEachRow quotes 64-bit integers but prints Decimals as numbers.
      for (auto& [k, v] : row[name].items())
        out[k] = v.is_string() ? v.get<std::string>() : v.dump();
    } else {
      const auto& keys = row[name + ".key"];
      const auto& values = row[name + ".value"];
      for (size_t i = 0; i < keys.size(); ++i) {
        out[keys[i].get<std::string>()] =
            values[i].is_string() ? values[i].get<std::string>() : values[i].dump();
      }
    }
    return out;
  }

  // Postgres's view of what metadata must become, computed independently in SQL.
  std::map<std::string, nlohmann::json> ExpectedMetadata(const std::string& table,
                                                         const std::string& id) {
    Result<PgResult> r = conn_->Exec(
        "SELECT key, value::text FROM " + table +
            " t, jsonb_each(CASE WHEN jsonb_typeof(t.metadata) = 'object' THEN t.metadata "
            "WHEN t.metadata IS NULL OR jsonb_typeof(t.metadata) = 'null' THEN '{}'::jsonb "
            "ELSE jsonb_build_object('metadata', t.metadata) END) WHERE t.id = $1",
        {id});
    std::map<std::string, nlohmann::json> out;
    for (int i = 0; i < r->rows(); ++i) {
      out[std::string(r->Get(i, 0))] = nlohmann::json::parse(r->Get(i, 1));
    }
    return out;
  }

  void ExpectMetadataEqual(const std::string& table, const std::string& id,
                           const nlohmann::json& ch_row) {
    std::map<std::string, std::string> actual = ChMap(ch_row, "metadata");
    std::map<std::string, nlohmann::json> expected = ExpectedMetadata(table, id);
    ASSERT_EQ(actual.size(), expected.size()) << table << " " << id;
    for (const auto& [k, v] : expected) {
      ASSERT_TRUE(actual.count(k)) << id << " lacks key " << k;
      if (v.is_string()) {
        EXPECT_EQ(actual[k], v.get<std::string>()) << id << " " << k;
      } else {
        EXPECT_EQ(nlohmann::json::parse(actual[k]), v) << id << " " << k;
      }
    }
  }

  std::vector<std::string> PgIds(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::vector<std::string> out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) out.emplace_back(r->Get(i, 0));
    return out;
  }

  // The ids in a ClickHouse table (after merges), sorted.
  std::vector<std::string> ChIds(const std::string& table) {
    std::vector<std::string> out;
    for (const nlohmann::json& row : ChRows("SELECT id FROM " + table + " FINAL ORDER BY id")) {
      out.push_back(row["id"].get<std::string>());
    }
    return out;
  }

  std::string FailedReason(const std::string& name) {
    return PgScalar("SELECT coalesce(failed_reason, '') FROM background_migrations WHERE name = '" +
                    name + "'");
  }

  int64_t ChCount(const std::string& table, bool final) {
    return std::stoll(ch_.Scalar("SELECT count() FROM " + table + (final ? " FINAL" : "")));
  }

  testing::TestDatabase pg_;
  testing::TestClickHouse ch_;
  std::optional<PgConnection> conn_;
};

TEST_F(CopyTest, SeededRowsArriveMappedRowForRow) {
  Seed(600, 1800, 600);
  RunWorker();
  for (const char* t : {"traces", "observations", "scores"}) {
    EXPECT_EQ(ChCount(t, true), std::stoll(PgScalar(std::string("SELECT count(*) FROM ") + t)))
        << t;
  }

  // Traces: every column of every row.
  Result<PgResult> pg = conn_->Exec(
      "SELECT id, name, user_id, release, version, project_id, public, bookmarked, "
      "array_to_json(tags)::text, input::text, output::text, session_id, "
      "floor(extract(epoch from \"timestamp\"))::bigint FROM traces ORDER BY id");
  ASSERT_TRUE(pg.ok());
  std::vector<nlohmann::json> ch = ChRows(
      "SELECT *, toUInt32(timestamp) AS ts_seconds, toUInt32(event_ts) AS ev_seconds "
      "FROM traces FINAL ORDER BY id");
  ASSERT_EQ(static_cast<int>(ch.size()), pg->rows());
  int unicode_rows = 0, null_inputs = 0;
  for (int i = 0; i < pg->rows(); ++i) {
    const nlohmann::json& c = ch[static_cast<size_t>(i)];
    const std::string id(pg->Get(i, 0));
    ASSERT_EQ(c["id"], id);
    EXPECT_EQ(c["name"], std::string(pg->Get(i, 1))) << id;
    EXPECT_EQ(c["user_id"], pg->IsNull(i, 2) ? nlohmann::json() : nlohmann::json(pg->Get(i, 2)));
    EXPECT_EQ(c["release"], pg->IsNull(i, 3) ? nlohmann::json() : nlohmann::json(pg->Get(i, 3)));
    EXPECT_EQ(c["project_id"], std::string(pg->Get(i, 5)));
    // Bool on current servers, UInt8 on 18.16.
    auto flag = [](const nlohmann::json& v) { return v.is_boolean() ? v.get<bool>() : v == 1; };
    EXPECT_EQ(flag(c["public"]), pg->GetBool(i, 6)) << id;
    EXPECT_EQ(flag(c["bookmarked"]), pg->GetBool(i, 7)) << id;
    EXPECT_EQ(c["tags"], nlohmann::json::parse(pg->Get(i, 8))) << id;
    if (pg->IsNull(i, 9)) {
      EXPECT_TRUE(c["input"].is_null()) << id;
      null_inputs++;
    } else {
      EXPECT_EQ(c["input"], CompactJson(pg->Get(i, 9))) << id;  // jsonb as compact JSON
    }
    EXPECT_EQ(c["output"],
              pg->IsNull(i, 10) ? nlohmann::json() : nlohmann::json(CompactJson(pg->Get(i, 10))));
    EXPECT_EQ(c["session_id"],
              pg->IsNull(i, 11) ? nlohmann::json() : nlohmann::json(pg->Get(i, 11)));
    EXPECT_EQ(c["ts_seconds"].get<int64_t>(), pg->GetInt(i, 12)) << id;
    EXPECT_EQ(c["ev_seconds"], c["ts_seconds"]) << "event_ts is the row's own timestamp";
    EXPECT_EQ(c["is_deleted"], 0);
    ExpectMetadataEqual("traces", id, c);
    for (unsigned char ch8 : pg->Get(i, 1)) {
      if (ch8 >= 0x80) {
        unicode_rows++;
        break;
      }
    }
  }
  EXPECT_GT(unicode_rows, 0) << "the seed has unicode names";
  EXPECT_GT(null_inputs, 0) << "the seed has NULL inputs";

  // Observations: the Langfuse v3 mapping of models, usage, costs and prompts.
  Result<PgResult> obs = conn_->Exec(
      "SELECT o.id, o.model, o.prompt_tokens, o.completion_tokens, o.total_tokens, "
      "o.input_cost::text, o.calculated_total_cost IS NULL, round(o.calculated_total_cost, "
      "12)::text, "
      "p.name, p.version, o.trace_id, o.type, o.input::text "
      "FROM observations o LEFT JOIN prompts p ON p.id = o.prompt_id ORDER BY o.id");
  ASSERT_TRUE(obs.ok());
  std::vector<nlohmann::json> cho = ChRows(
      "SELECT *, toString(total_cost) AS total_cost_text FROM observations FINAL ORDER BY id");
  ASSERT_EQ(static_cast<int>(cho.size()), obs->rows());
  int with_prompt = 0, negative_tokens = 0, priced = 0;
  for (int i = 0; i < obs->rows(); ++i) {
    const nlohmann::json& c = cho[static_cast<size_t>(i)];
    const std::string id(obs->Get(i, 0));
    ASSERT_EQ(c["id"], id);
    EXPECT_EQ(c["provided_model_name"],
              obs->IsNull(i, 1) ? nlohmann::json() : nlohmann::json(obs->Get(i, 1)));
    std::map<std::string, std::string> usage = ChMap(c, "usage_details");
    const char* keys[] = {"input", "output", "total"};
    for (int k = 0; k < 3; ++k) {
      const int64_t tokens = obs->GetInt(i, 2 + k);
      if (tokens >= 0) {
        EXPECT_EQ(usage[keys[k]], std::to_string(tokens)) << id << " " << keys[k];
      } else {
        EXPECT_EQ(usage.count(keys[k]), 0u) << "negative " << keys[k] << " of " << id;
        negative_tokens++;
      }
    }
    EXPECT_EQ(ChMap(c, "provided_usage_details"), usage);
    if (!obs->GetBool(i, 6)) {
      priced++;
      EXPECT_EQ(std::stod(c["total_cost_text"].get<std::string>()),
                std::stod(std::string(obs->Get(i, 7))))
          << id;
      EXPECT_EQ(std::stod(ChMap(c, "cost_details")["total"]),
                std::stod(std::string(obs->Get(i, 7))))
          << id;
    } else {
      EXPECT_TRUE(c["total_cost"].is_null()) << id;
    }
    if (!obs->IsNull(i, 5)) {
      EXPECT_EQ(std::stod(ChMap(c, "provided_cost_details")["input"]),
                std::stod(std::string(obs->Get(i, 5))))
          << id;
    }
    if (!obs->IsNull(i, 8)) {
      with_prompt++;
      EXPECT_EQ(c["prompt_name"], std::string(obs->Get(i, 8))) << id;
      EXPECT_EQ(c["prompt_version"], obs->GetInt(i, 9)) << id;
    } else {
      EXPECT_TRUE(c["prompt_name"].is_null()) << id;
    }
    EXPECT_EQ(c["trace_id"], std::string(obs->Get(i, 10)));
    EXPECT_EQ(c["type"], std::string(obs->Get(i, 11)));
    EXPECT_EQ(c["input"],
              obs->IsNull(i, 12) ? nlohmann::json() : nlohmann::json(CompactJson(obs->Get(i, 12))));
    ExpectMetadataEqual("observations", id, c);
  }
  EXPECT_GT(with_prompt, 0);
  EXPECT_GT(negative_tokens, 0);
  EXPECT_GT(priced, 0) << "the cost backfill ran before the observations copy";

  // Scores.
  Result<PgResult> sc = conn_->Exec(
      "SELECT id, COALESCE(value, 0), string_value, data_type, observation_id, comment "
      "FROM scores ORDER BY id");
  std::vector<nlohmann::json> chs = ChRows("SELECT * FROM scores FINAL ORDER BY id");
  ASSERT_EQ(static_cast<int>(chs.size()), sc->rows());
  for (int i = 0; i < sc->rows(); ++i) {
    const nlohmann::json& c = chs[static_cast<size_t>(i)];
    EXPECT_EQ(c["id"], std::string(sc->Get(i, 0)));
    EXPECT_DOUBLE_EQ(c["value"].get<double>(), std::stod(std::string(sc->Get(i, 1))));
    EXPECT_EQ(c["string_value"],
              sc->IsNull(i, 2) ? nlohmann::json() : nlohmann::json(sc->Get(i, 2)));
    EXPECT_EQ(c["data_type"], std::string(sc->Get(i, 3)));
    EXPECT_EQ(c["observation_id"],
              sc->IsNull(i, 4) ? nlohmann::json() : nlohmann::json(sc->Get(i, 4)));
    EXPECT_EQ(c["comment"], sc->IsNull(i, 5) ? nlohmann::json() : nlohmann::json(sc->Get(i, 5)));
  }
}

TEST_F(CopyTest, VerifyReportsMatchesAndNamesTheMonthThatDiffers) {
  Seed(300, 900, 300);
  RunWorker();
  for (const char* name :
       {testing::kCopyTraces, testing::kCopyObservations, testing::kCopyScores}) {
    ProcessResult r = RunProcess(BGM_BINARY, {"verify", name, "--json"}, Env("cli"));
    EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    nlohmann::json report = nlohmann::json::parse(r.out);
    EXPECT_TRUE(report["match"].get<bool>());
    EXPECT_EQ(report["source_rows"], report["target_rows"]);
    EXPECT_GT(report["months"].size(), 3u) << "the seed spreads rows over months";
  }
  // One trace lost in ClickHouse, another substituted: both months are named.
  const std::string lost = PgScalar("SELECT id FROM traces ORDER BY \"timestamp\" LIMIT 1");
  // verify's months are those of the copy key's first column (cursorColumn, created_at).
  const std::string lost_month =
      PgScalar("SELECT to_char(created_at, 'YYYY-MM') FROM traces WHERE id = '" + lost + "'");
  ASSERT_TRUE(ch_.client().Execute("ALTER TABLE traces DELETE WHERE id = '" + lost + "'").ok());
  for (int i = 0; i < 100 && ChCount("traces", false) != 299; ++i) {
    std::this_thread::sleep_for(milliseconds(50));  // mutations run in the background
  }
  ASSERT_EQ(ChCount("traces", false), 299) << "the ALTER ... DELETE did not finish within 5 s";
  ProcessResult r = RunProcess(BGM_BINARY, {"verify", testing::kCopyTraces}, Env("cli"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find(lost_month + ": source "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::string(testing::kCopyTraces) + ": DIFFERENT"), std::string::npos)
      << r.out;
  ProcessResult wrong =
      RunProcess(BGM_BINARY, {"verify", "20241105_1200_backfill_observation_costs"}, Env("cli"));
  EXPECT_EQ(wrong.exit_code, 2);
  EXPECT_NE(wrong.err.find("verify compares the copies only"), std::string::npos);
}

// Issue 12: verify read the target's ids as text lines, so an id with a newline counted as two
// ids and a faithful copy was reported DIFFERENT. Ids are arbitrary strings.
TEST_F(CopyTest, VerifyReportedAFalseDifferenceForAnIdWithANewline) {
  const std::vector<std::string> ids = {
      "line\nbreak", "tab\tstop",      "back\\slash", "caf\u00e9-\u65e5",
      "\n",          "ends-with-cr\r", "plain"};
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_TRUE(conn_
                    ->Run("INSERT INTO traces (id, \"timestamp\", name, project_id, created_at) "
                          "VALUES ($1, timestamp '2024-05-03 10:00:00' + $2::int * interval '1 "
                          "minute', 'n', 'p1', timestamp '2024-05-03 10:00:00')",
                          {ids[i], std::to_string(i)})
                    .ok());
  }
  RunWorker();
  ASSERT_EQ(ChCount("traces", true), static_cast<int64_t>(ids.size()));
  ProcessResult same =
      RunProcess(BGM_BINARY, {"verify", testing::kCopyTraces, "--json"}, Env("cli"));
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  const nlohmann::json report = nlohmann::json::parse(same.out, nullptr, false);
  ASSERT_TRUE(report.is_object()) << same.out;
  EXPECT_EQ(report["match"], true) << same.out;
  EXPECT_EQ(report["source_rows"], 7);
  EXPECT_EQ(report["target_rows"], 7);

  // A row only in Postgres, whose id is the first line of another id: still a difference.
  ASSERT_TRUE(conn_
                  ->Run("INSERT INTO traces (id, \"timestamp\", name, project_id, created_at) "
                        "VALUES ($1, timestamp '2024-05-20 10:00:00', 'n', 'p1', "
                        "timestamp '2024-05-20 10:00:00')",
                        {"line"})
                  .ok());
  ProcessResult missing = RunProcess(BGM_BINARY, {"verify", testing::kCopyTraces}, Env("cli"));
  EXPECT_EQ(missing.exit_code, 1) << missing.out << missing.err;
  EXPECT_NE(missing.out.find("2024-05: source 8 rows, target 7 rows"), std::string::npos)
      << missing.out;
  EXPECT_NE(missing.out.find(std::string(testing::kCopyTraces) + ": DIFFERENT"), std::string::npos)
      << missing.out;
}

TEST_F(CopyTest, TwentyThousandTracesWithOneCreatedAtFinishWithEveryRowOnce) {
  ASSERT_TRUE(conn_
                  ->RunScript(R"sql(
    INSERT INTO traces (id, "timestamp", name, project_id, created_at)
    SELECT 'same-' || lpad(g::text, 6, '0'), timestamp '2024-04-01' + g * interval '1 second',
           'n' || g, 'p1', timestamp '2024-05-02 12:00:00'
    FROM generate_series(1, 20000) g;
  )sql")
                  .ok());
  SetArgs(testing::kCopyTraces, {{"batchSize", 1000}});
  RunWorker();
  EXPECT_EQ(ChCount("traces", true), 20000);
  EXPECT_EQ(ChCount("traces", false), 20000) << "no batch was sent twice";
  EXPECT_EQ(
      ch_.Scalar("SELECT count() FROM (SELECT id FROM traces GROUP BY id HAVING count() > 1)"),
      "0");
  EXPECT_EQ(PgScalar(std::string("SELECT count(*) FROM background_migration_events WHERE kind = "
                                 "'batch' AND migration_name = '") +
                     testing::kCopyTraces + "'"),
            "20");
  EXPECT_EQ(
      PgScalar(std::string("SELECT rows_processed FROM background_migrations WHERE name = '") +
               testing::kCopyTraces + "'"),
      "20000");
}

TEST_F(CopyTest, SixtyFourMegabyteInputsAndOutputsStayUnderThreeHundredMegabytes) {
  // Two traces whose input and output are 64 MiB JSON strings each (hex: barely compressible).
  // Written again if the connection was lost on a loaded machine (once, in CI's embedded pass;
  // the rows are the same, so a second write of rows that did commit changes nothing).
  constexpr const char* kRows = R"sql(
    INSERT INTO traces (id, project_id, name, input, output)
    WITH big AS (SELECT string_agg(md5(i::text), '') AS s FROM generate_series(1, 2097152) i)
    SELECT 'big-' || g, 'p1', 'big', to_jsonb('in' || g || big.s), to_jsonb('out' || g || big.s)
    FROM generate_series(1, 2) g, big
    ON CONFLICT (id) DO NOTHING;
    INSERT INTO traces (id, project_id, name, input)
    SELECT 'small-' || g, 'p1', 'small', to_jsonb('x'::text) FROM generate_series(1, 100) g
    ON CONFLICT (id) DO NOTHING;
  )sql";
  Status written = conn_->RunScript(kRows);
  if (written.code() == StatusCode::kUnavailable) {
    conn_.emplace(pg_.Connect());
    written = conn_->RunScript(kRows);
  }
  ASSERT_TRUE(written.ok()) << written.ToString();
  ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  std::optional<int> code = worker.Wait(seconds(300));
  ASSERT_TRUE(code.has_value());
  ASSERT_EQ(*code, 0) << worker.Stderr();
  if (std::getenv("BGM_TEST_VERBOSE")) std::printf("%s\n", worker.Stderr().c_str());
  const long rss_mib = worker.max_rss_kib() / 1024;
  std::printf("[ measure  ] peak RSS of the worker copying 2 x (64 MiB + 64 MiB) rows: %ld MiB\n",
              rss_mib);
#if defined(__SANITIZE_ADDRESS__)
  // ASan's shadow memory and its 256 MiB quarantine of freed blocks inflate RSS; the 300 MiB
  // goal is asserted in the normal build.
  EXPECT_LT(rss_mib, 700);
#else
  if (testing::TestClickHouseIsEmbedded()) {
    // The embedded engine lives in the worker's process: its code (libchdb.so, ~200 MiB
    // resident) and the blocks it parses the 64 MiB values into count here, where on HTTP they
    // are the server's. bgmigrate's own share is what the HTTP pass bounds at 300 MiB.
    EXPECT_LT(rss_mib, 700);
  } else {
    EXPECT_LT(rss_mib, 300);
  }
#endif
  EXPECT_EQ(ChCount("traces", true), 102);
  // Byte-exact: lengths and hashes agree with Postgres.
  EXPECT_EQ(ch_.Scalar("SELECT length(input) FROM traces WHERE id = 'big-1'"),
            PgScalar("SELECT octet_length(input::text) FROM traces WHERE id = 'big-1'"));
  EXPECT_EQ(ch_.Scalar("SELECT lower(hex(MD5(output))) FROM traces WHERE id = 'big-2'"),
            PgScalar("SELECT md5(output::text) FROM traces WHERE id = 'big-2'"));
}

TEST_F(CopyTest, KilledWorkerRestartedRepeatedlyLosesAndDuplicatesNothing) {
  Seed(300000, 0, 0, 100, 0.1);
  SetArgs(testing::kCopyTraces, {{"batchSize", 5000}});
  std::mt19937 rng(42);
  auto rows_done = [&] {
    return std::stoll(
        PgScalar("SELECT coalesce(rows_processed, 0) FROM background_migrations WHERE name = '" +
                 std::string(testing::kCopyTraces) + "'"));
  };
  // Regression (issue 12): each worker was killed after a fixed 0.7-2.2 s and the test counted
  // the kills it made itself; on a loaded machine no worker had checkpointed a batch by then
  // (rows_processed 0 at all four kills), so no kill landed inside the copy. Now each kill
  // waits (with a deadline) for the worker's own first checkpoint, then hits mid-batch.
  std::vector<int64_t> done_at_kill;
  for (int round = 0; round < 4; ++round) {
    const int64_t before = rows_done();
    ChildProcess w(BGM_BINARY, {"worker"}, Env("w" + std::to_string(round)));
    const auto deadline = std::chrono::steady_clock::now() + seconds(60);
    while (rows_done() == before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(milliseconds(20));
    }
    ASSERT_GT(rows_done(), before) << "worker " << round << " checkpointed nothing in 60 s";
    std::this_thread::sleep_for(milliseconds(rng() % 300));
    w.Signal(SIGKILL);
    ASSERT_TRUE(w.Wait(seconds(10)).has_value());
    done_at_kill.push_back(rows_done());
    ASSERT_LT(done_at_kill.back(), 300000) << "the copy finished before kill " << round;
    // Let the dead worker's lease expire so the next one takes over at once.
    std::this_thread::sleep_for(milliseconds(2100));
  }
  std::printf("[ measure  ] rows checkpointed at each kill: %s\n",
              ::testing::PrintToString(done_at_kill).c_str());
  std::fflush(stdout);  // before the next fork, or the children print it again
  RunWorker("final");
  EXPECT_EQ(ChCount("traces", true), 300000);
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM (SELECT id FROM traces FINAL GROUP BY id "
                       "HAVING count() > 1)"),
            "0");
  EXPECT_EQ(ch_.Scalar("SELECT uniqExact(id) FROM traces"), "300000");
  ProcessResult verify = RunProcess(BGM_BINARY, {"verify", testing::kCopyTraces}, Env("cli"));
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  std::printf("[ measure  ] rows stored before merges (replayed batches included): %lld\n",
              static_cast<long long>(ChCount("traces", false)));
}

// Regression (issue 12): the bounds used to be 2020-2099, around all the seeded data, so the
// test passed with the bounds ignored. Now they cut the data, with a row on each bound.
// The bounds apply to the copy's first key column, created_at (set to the timestamp here).
TEST_F(CopyTest, DateBoundsAreHonouredAndASavedCursorOfAnotherKeyIsRefused) {
  Seed(1000, 0, 0, 100);
  ASSERT_TRUE(conn_
                  ->RunScript(R"sql(
    INSERT INTO traces (id, "timestamp", name, project_id) VALUES
      ('on-min', '2024-01-01 00:00:00', 'n', 'p1'),
      ('on-max', '2024-03-01 00:00:00', 'n', 'p1');
    UPDATE traces SET created_at = "timestamp";
  )sql")
                  .ok());
  SetArgs(testing::kCopyTraces,
          {{"minDate", "2024-01-01"}, {"maxDate", "2024-03-01T00:00:00Z"}, {"batchSize", 100}});
  RunWorker();
  const std::vector<std::string> expected = PgIds(
      "SELECT id FROM traces WHERE \"timestamp\" >= '2024-01-01' AND \"timestamp\" < "
      "'2024-03-01' ORDER BY id");
  ASSERT_GT(expected.size(), 50u) << "the seed puts rows inside the window";
  ASSERT_LT(expected.size(), 500u) << "... and more outside it";
  EXPECT_NE(std::find(expected.begin(), expected.end(), "on-min"), expected.end());
  EXPECT_EQ(ChIds("traces"), expected) << "exactly the rows in [minDate, maxDate)";
  EXPECT_EQ(ChCount("traces", false), static_cast<int64_t>(expected.size()));
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM traces WHERE id IN ('on-max') OR timestamp < "
                       "toDateTime('2024-01-01 00:00:00', 'UTC') OR timestamp >= "
                       "toDateTime('2024-03-01 00:00:00', 'UTC')"),
            "0")
      << "no row outside the window";
  // One key range (under the default chunkRows), its cursor on the key.
  EXPECT_EQ(PgScalar("SELECT string_agg(status || ':' || (cursor ? 'created_at')::text, ',') FROM "
                     "background_migration_chunks WHERE migration_name = '" +
                     std::string(testing::kCopyTraces) + "'"),
            "done:true");
  // A cursor saved on another key (by an older bgmigrate's cursorColumn, which ran one range
  // and kept no chunks) is refused with advice.
  ASSERT_TRUE(conn_->Run("DELETE FROM background_migration_chunks").ok());
  ASSERT_TRUE(conn_
                  ->Run("UPDATE background_migrations SET finished_at = NULL, args = '{}', state "
                        "= '{\"cursor\": {\"column\": \"timestamp\", \"value\": "
                        "\"2024-02-01 00:00:00\", \"id\": \"x\"}}' WHERE name = $1",
                        {testing::kCopyTraces})
                  .ok());
  ProcessResult r = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w2"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(FailedReason(testing::kCopyTraces),
            "the saved cursor is on (timestamp, id) but the key is (created_at, id); retry with "
            "--from-start to copy from the beginning");
}

// Traces at fixed UTC times of 2024-05-03 (timestamp without time zone holds UTC), for the
// date-bound tests below.
class CopyDateBoundsTest : public CopyTest {
 protected:
  void SetUp() override {
    CopyTest::SetUp();
    ASSERT_TRUE(conn_
                    ->RunScript(R"sql(
      INSERT INTO traces (id, "timestamp", created_at, name, project_id)
      SELECT 'at-' || to_char(t, 'HH24MI'), t, t, 'n', 'p1'
      FROM unnest(ARRAY['2024-05-03 04:00', '2024-05-03 04:59:59.999', '2024-05-03 05:00',
                        '2024-05-03 05:30', '2024-05-03 05:59:59.999', '2024-05-03 06:00',
                        '2024-05-03 10:00', '2024-05-03 10:30', '2024-05-03 11:00']
                  ::timestamp(3)[]) t;
    )sql")
                    .ok());
  }

  // Runs the traces copy between the bounds (on created_at); the ids ClickHouse then holds.
  std::vector<std::string> CopyBetween(const std::string& min_date, const std::string& max_date) {
    SetArgs(testing::kCopyTraces, {{"minDate", min_date}, {"maxDate", max_date}});
    RunWorker();
    return ChIds("traces");
  }
};

// Regression (issue 12): "...T10:00:00Z" and "... 11:00:00" compared as text ('T' > ' '), so
// this valid hour was refused ("minDate must be before maxDate").
TEST_F(CopyDateBoundsTest, MixedFormsOfAValidHourCopyThatHour) {
  EXPECT_EQ(CopyBetween("2024-05-03T10:00:00Z", "2024-05-03 11:00:00"),
            (std::vector<std::string>{"at-1000", "at-1030"}));
  EXPECT_EQ(FailedReason(testing::kCopyTraces), "");
}

// Regression (issue 12): an offset was dropped by the ::timestamp cast, so 10:00+05:00 meant
// 10:00 UTC and the copy took the 10:00-11:00 rows.
TEST_F(CopyDateBoundsTest, OffsetsMeanWhatTheySay) {
  EXPECT_EQ(CopyBetween("2024-05-03T10:00:00+05:00", "2024-05-03T11:00:00+05:00"),
            (std::vector<std::string>{"at-0500", "at-0530", "at-0559"}));
}

// Regression (issue 12): an inverted pair in mixed forms passed the text comparison and the
// copy finished having copied nothing.
TEST_F(CopyDateBoundsTest, InvertedMixedPairIsRefusedNamingBothBounds) {
  SetArgs(testing::kCopyTraces,
          {{"minDate", "2024-05-03 11:00:00"}, {"maxDate", "2024-05-03T10:00:00Z"}});
  ProcessResult r = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(FailedReason(testing::kCopyTraces),
            "invalid args: minDate must be before maxDate, got \"2024-05-03 11:00:00\" and "
            "\"2024-05-03T10:00:00Z\" (as UTC: 2024-05-03T11:00:00.000Z and "
            "2024-05-03T10:00:00.000Z)");
  EXPECT_EQ(ChCount("traces", false), 0);
}

// Regression (issue 12): a timestamp the target column cannot hold was clamped (1960 became
// 1970-01-01 in a DateTime) and the copy reported finished. Now the batch fails, naming the
// row, the column and the value, and nothing of that batch is written.
TEST_F(CopyTest, TimestampOutsideTheTargetTypeFailsTheBatchNamingRowColumnAndValue) {
  // 1960 is before DateTime's 1970; DateTime64(3) holds it, 1899 it does not.
  const bool dt64 = ch_.dialect().has_datetime64();
  const std::string bad = dt64 ? "1899-12-31 23:59:59.999" : "1960-01-01 00:00:00";
  ASSERT_TRUE(conn_
                  ->Run("INSERT INTO traces (id, \"timestamp\", name, project_id, created_at) "
                        "VALUES ('before', '2024-05-03 10:00', 'n', 'p1', '2024-05-03 10:00'), "
                        "('old', $1, 'n', 'p1', '2024-05-03 10:01'), "
                        "('after', '2024-05-03 10:02', 'n', 'p1', '2024-05-03 10:02')",
                        {bad})
                  .ok());
  ProcessResult r = RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"}, Env("w1"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // As the type encoder says it (clickhouse/column_type.cc).
  const std::string range = dt64
                                ? "DateTime64 holds (1900-01-01 to 2299-12-31 23:59:59 UTC)"
                                : "DateTime holds (1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC)";
  // The copy's one key range was tried chunkAttempts (3) times.
  EXPECT_EQ(FailedReason(testing::kCopyTraces),
            std::string("chunk 0 [start, end) failed 3 times: encoding ") + testing::kCopyTraces +
                " row (created_at, id) = (2024-05-03 10:01:00, old): column timestamp: \"" + bad +
                "\" cannot be written as " + (dt64 ? "DateTime64(3)" : "DateTime") +
                ": outside what " + range +
                ". Fix the rows and `bgmigrate retry` (the chunk goes on from its cursor)");
  EXPECT_EQ(ch_.Scalar("SELECT count() FROM traces WHERE id = 'old'"), "0");
  EXPECT_EQ(ChCount("traces", false), 0) << "the failed batch wrote nothing";
}

}  // namespace
}  // namespace bgm
