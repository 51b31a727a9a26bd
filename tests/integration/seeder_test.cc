// The seeder against a real Postgres: exact row counts, determinism, the shared created_at rule,
// every edge case the migrations must survive, blob sizes, reruns, and the `seed` command.
#include "seed/seeder.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <map>
#include <mutex>

#include "seed/catalog.h"
#include "testing/process.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::RunProcess;
using testing::TestDatabase;

int64_t Int(PgConnection& conn, const std::string& sql) {
  Result<PgResult> r = conn.Exec(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  return r.ok() ? r->GetInt(0, 0) : -1;
}

double Double(PgConnection& conn, const std::string& sql) {
  Result<PgResult> r = conn.Exec(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  return r.ok() ? std::atof(std::string(r->Get(0, 0)).c_str()) : -1;
}

std::string Text(PgConnection& conn, const std::string& sql) {
  Result<PgResult> r = conn.Exec(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  return r.ok() ? std::string(r->Get(0, 0)) : "";
}

SeedOptions Options(int64_t traces, int64_t observations, int64_t scores) {
  SeedOptions opts;
  opts.traces = traces;
  opts.observations = observations;
  opts.scores = scores;
  return opts;
}

// One fingerprint per table: md5 over all rows in id order.
std::map<std::string, std::string> Fingerprints(PgConnection& conn) {
  std::map<std::string, std::string> out;
  for (const char* table : {"traces", "observations", "scores", "models", "prompts"}) {
    out[table] = Text(conn, std::string("SELECT md5(string_agg(x::text, E'\\n' ORDER BY x.id)) "
                                        "FROM ") +
                                table + " x");
  }
  return out;
}

TEST(SeederTest, WritesExactRowCountsAndTheCatalog) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  SeedOptions opts = Options(300, 901, 299);
  opts.projects = 4;
  ASSERT_TRUE(Seed(conn, opts).ok());
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM traces"), 300);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM observations"), 901);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM scores"), 299);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM models"), 9);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM prompts"), 4 * 6);
  EXPECT_EQ(Int(conn, "SELECT count(DISTINCT project_id) FROM traces"), 4);
  EXPECT_EQ(Text(conn, "SELECT min(id) || ' ' || max(id) FROM traces"),
            "tr-s1-0000000000 tr-s1-0000000299");
  EXPECT_EQ(Text(conn, "SELECT max(id) FROM observations"), SeedObservationId(1, 900));
  EXPECT_EQ(Text(conn, "SELECT max(id) FROM scores"), SeedScoreId(1, 298));
}

TEST(SeederTest, SameSeedWritesIdenticalDataWhateverTheNumberOfConnections) {
  TestDatabase one, other;
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(other.ok());
  PgConnection a = one.Connect();
  PgConnection b = other.Connect();
  SeedOptions opts = Options(25000, 25000, 25000);  // > 2 streams per table with 3 connections
  opts.blob_bytes = 60;
  opts.random_seed = 42;
  opts.connections = 1;
  ASSERT_TRUE(Seed(a, opts).ok());
  opts.connections = 3;
  ASSERT_TRUE(Seed(b, opts).ok());
  const std::map<std::string, std::string> fa = Fingerprints(a);
  EXPECT_EQ(fa, Fingerprints(b));
  EXPECT_EQ(fa.at("traces").size(), 32u);

  // A different seed gives different data.
  TestDatabase third;
  ASSERT_TRUE(third.ok());
  PgConnection c = third.Connect();
  opts.random_seed = 43;
  ASSERT_TRUE(Seed(c, opts).ok());
  EXPECT_NE(Fingerprints(c).at("traces"), fa.at("traces"));
}

TEST(SeederTest, SharedCreatedAtGoesToTheFirstRoundedFractionOfEachTable) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  SeedOptions opts = Options(1000, 2999, 501);
  opts.same_created_at_fraction = 0.123;
  opts.blob_bytes = 100;
  ASSERT_TRUE(Seed(conn, opts).ok());
  // round(0.123 * n): 123, 368.877 -> 369, 61.623 -> 62.
  const char* kShared = "created_at = TIMESTAMP '2024-05-02 12:00:00'";
  EXPECT_EQ(Int(conn, std::string("SELECT count(*) FROM traces WHERE ") + kShared), 123);
  EXPECT_EQ(Int(conn, std::string("SELECT count(*) FROM observations WHERE ") + kShared), 369);
  EXPECT_EQ(Int(conn, std::string("SELECT count(*) FROM scores WHERE ") + kShared), 62);
  EXPECT_EQ(Text(conn, std::string("SELECT max(id) FROM traces WHERE ") + kShared),
            SeedTraceId(1, 122));
  EXPECT_EQ(Text(conn, std::string("SELECT max(id) FROM observations WHERE ") + kShared),
            SeedObservationId(1, 368));
  // The shared rows keep distinct event times; every other row was created after its event.
  EXPECT_EQ(
      Int(conn, std::string("SELECT count(DISTINCT \"timestamp\") FROM traces WHERE ") + kShared),
      123);
  EXPECT_EQ(Int(conn, std::string("SELECT count(*) FROM traces WHERE NOT (") + kShared +
                          ") AND created_at <= \"timestamp\""),
            0);
  EXPECT_EQ(Int(conn, std::string("SELECT count(*) FROM observations WHERE NOT (") + kShared +
                          ") AND created_at <= start_time"),
            0);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM traces WHERE updated_at < created_at"), 0);
}

TEST(SeederTest, FractionZeroAndOne) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  SeedOptions opts = Options(200, 300, 100);
  opts.blob_bytes = 50;
  opts.same_created_at_fraction = 0;
  ASSERT_TRUE(Seed(conn, opts).ok());
  opts.same_created_at_fraction = 1;
  opts.random_seed = 2;
  ASSERT_TRUE(Seed(conn, opts).ok());
  const char* kCount =
      "SELECT count(*) FROM %s WHERE created_at = TIMESTAMP '2024-05-02 12:00:00' "
      "AND id LIKE '%%-s%d-%%'";
  auto shared = [&](const char* table, int seed) {
    char sql[256];
    std::snprintf(sql, sizeof sql, kCount, table, seed);
    return Int(conn, sql);
  };
  EXPECT_EQ(shared("traces", 1), 0);
  EXPECT_EQ(shared("observations", 1), 0);
  EXPECT_EQ(shared("traces", 2), 200);
  EXPECT_EQ(shared("observations", 2), 300);
  EXPECT_EQ(shared("scores", 2), 100);
}

// The data a migration has to carry over unchanged.
class SeederEdgeCaseTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    db_ = new TestDatabase();
    ASSERT_TRUE(db_->ok());
    PgConnection conn = db_->Connect();
    Status s = Seed(conn, Options(2000, 6000, 2000));
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  static void TearDownTestSuite() {
    delete db_;
    db_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(db_, nullptr);
    conn_.emplace(db_->Connect());
  }
  int64_t Count(const std::string& sql) { return Int(*conn_, sql); }

  static TestDatabase* db_;
  std::optional<PgConnection> conn_;
};
TestDatabase* SeederEdgeCaseTest::db_ = nullptr;

TEST_F(SeederEdgeCaseTest, MetadataHasEveryJsonTypeAndNull) {
  for (const char* table : {"traces", "observations"}) {
    const std::string from = std::string(" FROM ") + table;
    const int64_t rows = Count("SELECT count(*)" + from);
    const int64_t objects =
        Count("SELECT count(*)" + from + " WHERE jsonb_typeof(metadata) = 'object'");
    EXPECT_GT(objects, rows * 3 / 4) << table << ": most metadata are objects";
    for (const char* type : {"string", "array", "number", "boolean", "null"}) {
      EXPECT_GT(Count("SELECT count(*)" + from + " WHERE jsonb_typeof(metadata) = '" + type + "'"),
                0)
          << table << " " << type;
    }
    EXPECT_GT(Count("SELECT count(*)" + from + " WHERE metadata IS NULL"), 0) << table;
    EXPECT_GT(Count("SELECT count(*)" + from + " WHERE metadata = '\"\"'::jsonb"), 0) << table;
    EXPECT_GT(Count("SELECT count(*)" + from + " WHERE metadata ? 'ユーザー属性'"), 0) << table;
    EXPECT_GT(Count("SELECT count(*)" + from +
                    " WHERE metadata #> '{nested,level1,level2,level3}' IS NOT NULL"),
              0)
        << table;
  }
}

TEST_F(SeederEdgeCaseTest, NullableColumnsHoldNullsAndEmptyStrings) {
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE input IS NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE jsonb_typeof(input) = 'null'"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE output IS NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE name IS NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE user_id IS NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE user_id = ''"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE session_id IS NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE external_id IS NOT NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE release IS NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE public"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE input IS NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE end_time IS NULL AND type <> 'EVENT'"),
            0);
  EXPECT_EQ(
      Count("SELECT count(*) FROM observations WHERE end_time IS NOT NULL AND type = 'EVENT'"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE completion_start_time IS NOT NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM scores WHERE comment IS NULL"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM scores WHERE comment IS NOT NULL"), 0);
}

TEST_F(SeederEdgeCaseTest, TextHoldsUnicodeAndCharactersThatNeedEscaping) {
  // CJK, emoji (with a ZWJ sequence), right-to-left scripts, combining marks.
  for (const char* needle : {"你好世界", "🚀", "👨‍👩‍👧", "שלום עולם", "مرحبا"}) {
    EXPECT_GT(Count(std::string("SELECT count(*) FROM traces WHERE strpos(input::text, '") +
                    needle + "') > 0"),
              0)
        << needle;
  }
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE strpos(input::text, 'e' || chr(769)) > 0"), 0);
  // Escapes inside JSON strings survive as the characters they stand for.
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE strpos(input::text, '\\\"quoted\\\"') > 0"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE strpos(input->'messages'->1->>'content', "
                  "E'line1\\nline2') > 0"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE strpos(input::text, "
                  "'C:\\\\Users\\\\langfuse') > 0"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE strpos(input::text, '\\u0007') > 0"), 0);
  // Plain text columns with tabs, newlines, quotes and a literal "\N".
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE name = E'name with\\ttab'"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE name = E'multi\\nline name'"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE name = 'back\\slash'"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE name = 'تحليل المشاعر'"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE strpos(input::text, '\\\\N') > 0"), 0);
}

TEST_F(SeederEdgeCaseTest, TagsAreEmptyOrSeveralWithQuotesAndCommas) {
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE tags = '{}'"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE cardinality(tags) >= 3"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE 'chat,bot' = ANY (tags)"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE 'say \"hi\"' = ANY (tags)"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE 'back\\slash' = ANY (tags)"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE 'NULL' = ANY (tags)"), 0);
  EXPECT_GT(Count("SELECT count(*) FROM traces WHERE '标签' = ANY (tags)"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM traces WHERE array_position(tags, NULL) IS NOT NULL"), 0);
}

TEST_F(SeederEdgeCaseTest, ObservationsPointAtSeededTracesParentsAndPrompts) {
  EXPECT_EQ(Count("SELECT count(*) FROM observations o WHERE NOT EXISTS (SELECT 1 FROM traces t "
                  "WHERE t.id = o.trace_id AND t.project_id = o.project_id)"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE parent_observation_id IS NOT NULL"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM observations o WHERE parent_observation_id IS NOT NULL "
                  "AND NOT EXISTS (SELECT 1 FROM observations p WHERE p.id = "
                  "o.parent_observation_id AND p.trace_id = o.trace_id)"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE prompt_id IS NOT NULL"), 0);
  EXPECT_GT(
      Count("SELECT count(*) FROM observations WHERE type = 'GENERATION' AND prompt_id IS NULL"),
      0);
  EXPECT_EQ(Count("SELECT count(*) FROM observations o WHERE prompt_id IS NOT NULL AND NOT EXISTS "
                  "(SELECT 1 FROM prompts p WHERE p.id = o.prompt_id AND p.project_id = "
                  "o.project_id)"),
            0);
  for (const char* type : {"GENERATION", "SPAN", "EVENT"}) {
    EXPECT_GT(Count(std::string("SELECT count(*) FROM observations WHERE type = '") + type + "'"),
              0)
        << type;
  }
  EXPECT_EQ(Count("SELECT count(*) FROM observations WHERE type <> 'GENERATION' AND "
                  "(model IS NOT NULL OR prompt_id IS NOT NULL OR total_tokens <> 0)"),
            0);
}

TEST_F(SeederEdgeCaseTest, GenerationModelsTokensAndCosts) {
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE type = 'GENERATION' AND model IS NULL"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE model = ''"), 0);
  // Langfuse-style patterns work with Postgres regexes, case variants included.
  for (const char* model : {"gpt-4o", "GPT-4o", "openai/gpt-4o", "gpt-4o-mini",
                            "anthropic/claude-3-5-sonnet-20240620", "gemini-1.5-pro"}) {
    EXPECT_GT(Count(std::string("SELECT count(*) FROM observations o WHERE model = '") + model +
                    "' AND EXISTS (SELECT 1 FROM models m WHERE o.model ~ m.match_pattern)"),
              0)
        << model;
  }
  EXPECT_EQ(Count("SELECT count(*) FROM models m WHERE 'gpt-4o-mini' ~ m.match_pattern AND "
                  "m.model_name <> 'gpt-4o-mini'"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations o WHERE model = 'my-finetuned-llama-3-8b' "
                  "AND NOT EXISTS (SELECT 1 FROM models m WHERE o.model ~ m.match_pattern)"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE prompt_tokens < 0 OR "
                  "completion_tokens < 0"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE input_cost IS NOT NULL AND "
                  "total_cost = input_cost + output_cost"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE input_cost IS NULL AND "
                  "total_cost IS NOT NULL"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE type = 'GENERATION' AND unit IS NULL"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM observations WHERE unit = 'CHARACTERS'"), 0);
}

TEST_F(SeederEdgeCaseTest, ScoresOfEveryDataTypeRateSeededTracesAndObservations) {
  EXPECT_EQ(Count("SELECT count(DISTINCT data_type) FROM scores"), 3);
  EXPECT_EQ(Count("SELECT count(*) FROM scores WHERE data_type = 'NUMERIC' AND "
                  "(value IS NULL OR string_value IS NOT NULL)"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM scores WHERE data_type = 'CATEGORICAL' AND "
                  "string_value IS NULL"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM scores WHERE data_type = 'CATEGORICAL' AND value IS NULL"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM scores WHERE data_type = 'BOOLEAN' AND NOT "
                  "((value = 1 AND string_value = 'True') OR (value = 0 AND string_value = "
                  "'False'))"),
            0);
  EXPECT_EQ(Count("SELECT count(*) FROM scores s WHERE NOT EXISTS (SELECT 1 FROM traces t "
                  "WHERE t.id = s.trace_id AND t.project_id = s.project_id)"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM scores WHERE observation_id IS NOT NULL"), 0);
  EXPECT_EQ(Count("SELECT count(*) FROM scores s WHERE observation_id IS NOT NULL AND NOT EXISTS "
                  "(SELECT 1 FROM observations o WHERE o.id = s.observation_id AND o.trace_id = "
                  "s.trace_id)"),
            0);
  EXPECT_GT(Count("SELECT count(*) FROM scores WHERE source = 'ANNOTATION' AND "
                  "author_user_id IS NOT NULL"),
            0);
}

TEST_F(SeederEdgeCaseTest, TimestampsSpanEighteenMonthsAndBlobsHaveTheRequestedSize) {
  EXPECT_EQ(Count("SELECT count(DISTINCT date_trunc('month', \"timestamp\")) FROM traces"), 18);
  EXPECT_EQ(Text(*conn_,
                 "SELECT to_char(min(\"timestamp\"), 'YYYY-MM') || ' ' || "
                 "to_char(max(\"timestamp\"), 'YYYY-MM') FROM traces"),
            "2023-06 2024-11");
  EXPECT_GE(Count("SELECT count(DISTINCT date_trunc('month', start_time)) FROM observations"), 18);
  // blob_bytes 1000 (the default): the size Postgres prints, within 10 % in bytes and 20 % in
  // characters.
  struct Column {
    const char* table;
    const char* column;
    const char* where;
  };
  for (const Column& c : {Column{"traces", "input", "true"}, Column{"traces", "output", "true"},
                          Column{"observations", "input", "type = 'GENERATION'"},
                          Column{"observations", "output", "true"}}) {
    for (const char* fn : {"octet_length", "length"}) {
      const std::string sql = std::string("SELECT avg(") + fn + "(" + c.column + "::text)) FROM " +
                              c.table + " WHERE " + c.where + " AND jsonb_typeof(" + c.column +
                              ") <> 'null'";
      EXPECT_NEAR(Double(*conn_, sql), 1000, std::string(fn) == "length" ? 200 : 100) << sql;
    }
  }
}

TEST(SeederTest, LargeBlobsHaveTheRequestedSize) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  SeedOptions opts = Options(200, 200, 0);
  opts.blob_bytes = 50'000;
  ASSERT_TRUE(Seed(conn, opts).ok());
  EXPECT_NEAR(Double(conn,
                     "SELECT avg(octet_length(input::text)) FROM traces "
                     "WHERE jsonb_typeof(input) <> 'null'"),
              50'000, 5'000);
  EXPECT_NEAR(Double(conn,
                     "SELECT avg(octet_length(output::text)) FROM observations "
                     "WHERE jsonb_typeof(output) <> 'null'"),
              50'000, 5'000);
  EXPECT_GE(Int(conn,
                "SELECT min(octet_length(input::text)) FROM traces "
                "WHERE jsonb_typeof(input) <> 'null'"),
            50'000);
}

TEST(SeederTest, ToastCompressionLz4AppliesToTheSeedOnly) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  const std::string before = Text(conn, "SHOW default_toast_compression");
  SeedOptions opts = Options(300, 300, 0);
  opts.toast_compression = "lz4";
  opts.connections = 2;
  Status s = Seed(conn, opts);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_GT(Int(conn, "SELECT count(*) FROM traces WHERE pg_column_compression(input) = 'lz4'"), 0);
  EXPECT_EQ(Int(conn,
                "SELECT count(*) FROM traces WHERE pg_column_compression(input) = 'pglz' "
                "OR pg_column_compression(output) = 'pglz'"),
            0);
  EXPECT_EQ(Text(conn, "SHOW default_toast_compression"), before)
      << "the caller's session keeps its setting";

  opts.random_seed = 2;
  opts.toast_compression = "zstd";
  Status bad = Seed(conn, opts);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message(), "--toast-compression must be pglz or lz4, got 'zstd'");
}

TEST(SeederTest, SecondRunWithAnotherSeedAddsRowsAndKeepsTheCatalog) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  ASSERT_TRUE(Seed(conn, Options(100, 300, 100)).ok());
  SeedOptions second = Options(50, 70, 20);
  second.random_seed = 2;
  Status s = Seed(conn, second);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM traces"), 150);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM observations"), 370);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM scores"), 120);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM traces WHERE id LIKE 'tr-s2-%'"), 50);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM models"), 9);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM prompts"), 3 * 6);
  EXPECT_EQ(Int(conn,
                "SELECT count(*) FROM observations o WHERE o.id LIKE 'ob-s2-%' AND "
                "o.trace_id NOT LIKE 'tr-s2-%'"),
            0);
}

TEST(SeederTest, SameSeedTwiceIsRefusedNamingTheSeed) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  SeedOptions opts = Options(100, 300, 100);
  opts.random_seed = 7;
  ASSERT_TRUE(Seed(conn, opts).ok());
  Status again = Seed(conn, opts);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(again.message(),
            "this database already holds rows seeded with --random-seed 7 (e.g. "
            "tr-s7-0000000000); run seed again with another --random-seed to add more rows");
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM traces"), 100);
  // Scores only: detected by the scores' ids too.
  SeedOptions scores_only = Options(1, 0, 5);
  scores_only.random_seed = 8;
  ASSERT_TRUE(Seed(conn, scores_only).ok());
  EXPECT_EQ(Seed(conn, scores_only).code(), StatusCode::kFailedPrecondition);
}

TEST(SeederTest, InvalidOptionsAreRejectedBeforeAnythingIsWritten) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  struct Case {
    SeedOptions opts;
    std::string message;
  };
  std::vector<Case> cases;
  cases.push_back({Options(-1, 0, 0), "--traces must be between 0 and 1000000000, got -1"});
  cases.push_back({Options(10, -3, 0), "--observations must be between 0 and 1000000000, got -3"});
  cases.push_back({Options(10, 0, kMaxSeedRows + 1),
                   "--scores must be between 0 and 1000000000, got 1000000001"});
  cases.push_back({Options(0, 5, 0), "with --traces 0 they must be 0 too"});
  SeedOptions f = Options(10, 0, 0);
  f.same_created_at_fraction = 1.5;
  cases.push_back({f, "--same-created-at-fraction must be between 0 and 1, got 1.5"});
  f.same_created_at_fraction = -0.1;
  cases.push_back({f, "--same-created-at-fraction must be between 0 and 1, got -0.1"});
  f.same_created_at_fraction = std::nan("");
  cases.push_back({f, "--same-created-at-fraction must be between 0 and 1, got nan"});
  SeedOptions p = Options(10, 0, 0);
  p.projects = 0;
  cases.push_back({p, "--projects must be between 1 and 10000, got 0"});
  SeedOptions b = Options(10, 0, 0);
  b.blob_bytes = -1;
  cases.push_back({b, "--blob-bytes must be between 0 and 100000000, got -1"});
  SeedOptions c = Options(10, 0, 0);
  c.connections = 0;
  cases.push_back({c, "--connections must be between 1 and 64, got 0"});
  for (const Case& k : cases) {
    Status s = Seed(conn, k.opts);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << k.message;
    EXPECT_NE(s.message().find(k.message), std::string::npos) << s.message();
  }
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM models"), 0);
  EXPECT_EQ(Int(conn, "SELECT count(*) FROM traces"), 0);
}

TEST(SeederTest, ProgressIsReportedEvery100kRowsAndAtTheEndOneCallAtATime) {
  TestDatabase db;
  ASSERT_TRUE(db.ok());
  PgConnection conn = db.Connect();
  SeedOptions opts = Options(30000, 30000, 120000);
  opts.blob_bytes = 20;
  opts.connections = 3;
  std::mutex mu;
  std::atomic<int> in_flight{0};
  bool overlapped = false;
  std::map<std::string, std::vector<SeedProgress>> calls;
  opts.progress = [&](const SeedProgress& p) {
    if (in_flight.fetch_add(1) != 0) overlapped = true;
    {
      std::lock_guard<std::mutex> lock(mu);
      calls[std::string(p.table)].push_back(p);
    }
    in_flight.fetch_sub(1);
  };
  ASSERT_TRUE(Seed(conn, opts).ok());
  EXPECT_FALSE(overlapped);
  ASSERT_EQ(calls.size(), 3u);
  ASSERT_EQ(calls["traces"].size(), 1u);
  EXPECT_EQ(calls["traces"][0].rows_done, 30000);
  EXPECT_EQ(calls["traces"][0].rows_total, 30000);
  EXPECT_GT(calls["traces"][0].rows_per_second, 0);
  ASSERT_EQ(calls["scores"].size(), 2u);  // passing 100k, then done
  EXPECT_GE(calls["scores"][0].rows_done, 100000);
  EXPECT_LT(calls["scores"][0].rows_done, 120000);
  EXPECT_EQ(calls["scores"][1].rows_done, 120000);
  EXPECT_EQ(calls["scores"][1].rows_total, 120000);
}

// `langfuse-seed` (the example application's seeder) as operators run it, after `bgmigrate
// migrate` created the example's tables.
class SeedCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* admin = std::getenv("BGM_TEST_DATABASE_URL");
    ASSERT_NE(admin, nullptr) << "BGM_TEST_DATABASE_URL is not set";
    admin_url_ = admin;
    name_ = "bgm_seed_cli_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "_" + std::to_string(reinterpret_cast<uintptr_t>(this) % 100000);
    Result<PgConnection> conn = PgConnection::Connect(admin_url_);
    ASSERT_TRUE(conn.ok()) << conn.status().ToString();
    ASSERT_TRUE(conn->Run("CREATE DATABASE " + QuoteIdent(name_)).ok());
    url_ = testing::WithDatabase(admin_url_, name_);
    testing::ProcessResult m =
        RunProcess(BGM_BINARY, {"migrate"}, {{"DATABASE_URL", url_}, {"CLICKHOUSE_URL", ""}});
    ASSERT_EQ(m.exit_code, 0) << m.err;
  }
  void TearDown() override {
    if (name_.empty()) return;
    Result<PgConnection> conn = PgConnection::Connect(admin_url_);
    if (conn.ok())
      (void)conn->Run("DROP DATABASE IF EXISTS " + QuoteIdent(name_) + " WITH (FORCE)");
  }
  testing::ProcessResult Cli(const std::vector<std::string>& args) {
    return RunProcess(BGM_SEED_BINARY, args, {{"DATABASE_URL", url_}});
  }

  std::string admin_url_, name_, url_;
};

TEST_F(SeedCliTest, SeedsAnEmptyDatabaseWithDefaultsAndPrintsASummary) {
  testing::ProcessResult r = Cli({"--traces", "200"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Seeded 200 traces, 600 observations, 200 scores (--random-seed 1) in "),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.err.find("seed: traces                200 / 200 rows"), std::string::npos) << r.err;
  Result<PgConnection> conn = PgConnection::Connect(url_);
  ASSERT_TRUE(conn.ok());
  EXPECT_EQ(Int(*conn, "SELECT count(*) FROM traces"), 200);
  EXPECT_EQ(Int(*conn, "SELECT count(*) FROM observations"), 600);
  EXPECT_EQ(Int(*conn, "SELECT count(*) FROM scores"), 200);
  // 5 % of 200 share the created_at.
  EXPECT_EQ(Int(*conn, "SELECT count(*) FROM traces WHERE created_at = '2024-05-02 12:00:00'"), 10);

  testing::ProcessResult again = Cli({"--traces", "10"});
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already holds rows seeded with --random-seed 1"), std::string::npos)
      << again.err;
  testing::ProcessResult other =
      Cli({"--traces", "10", "--observations", "0", "--scores", "5", "--random-seed", "9",
           "--blob-bytes", "10", "--same-created-at-fraction", "0", "--projects", "1"});
  ASSERT_EQ(other.exit_code, 0) << other.err;
  EXPECT_NE(other.out.find("Seeded 10 traces, 0 observations, 5 scores (--random-seed 9)"),
            std::string::npos)
      << other.out;
  EXPECT_EQ(Int(*conn, "SELECT count(*) FROM traces"), 210);
}

TEST_F(SeedCliTest, BadValuesExitWith2AndSayWhy) {
  const std::vector<std::pair<std::vector<std::string>, std::string>> cases = {
      {{"--traces=-5"}, "--traces must be between 0 and 1000000000, got -5"},
      {{"--observations=-1"}, "--observations must be between 0 and 1000000000, got -1"},
      {{"--scores=-2"}, "--scores must be between 0 and 1000000000, got -2"},
      {{"--same-created-at-fraction", "1.5"},
       "--same-created-at-fraction must be between 0 and 1, got 1.5"},
      {{"--same-created-at-fraction=-0.5"},
       "--same-created-at-fraction must be between 0 and 1, got -0.5"},
      {{"--random-seed=-1"}, "--random-seed must be 0 or more, got -1"},
      {{"--projects", "0"}, "--projects must be between 1 and 10000, got 0"},
      {{"--traces", "many"}, "Could not convert: --traces = many"},
  };
  for (const auto& [args, message] : cases) {
    testing::ProcessResult r = Cli(args);
    EXPECT_EQ(r.exit_code, 2) << args[0];
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
  Result<PgConnection> conn = PgConnection::Connect(url_);
  ASSERT_TRUE(conn.ok());
  EXPECT_EQ(Int(*conn, "SELECT count(*) FROM traces"), 0)
      << "bad options are refused before anything is written";
}

}  // namespace
}  // namespace bgm
