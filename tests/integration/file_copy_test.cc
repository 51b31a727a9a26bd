// The `postgres_to_clickhouse` kind of migration file on real Postgres and ClickHouse (both
// engines): every value written by the target column's type as ClickHouse reports it, defaults
// for the columns the SELECT leaves out, huge values read in pieces, resume from the cursor,
// a key that is not unique refused, and SELECTs that do not fit their target refused naming
// the column and both types.
#include "migrations/file_copy.h"

#include <gtest/gtest.h>

#include "testing/recording_context.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::RecordingContext;

MigrationFile CopyFile(const std::string& select, std::vector<std::string> key,
                       const std::string& target = "dest") {
  MigrationFile f;
  f.name = "20250601_1200_copy";
  f.path = "migrations/20250601_1200_copy.toml";
  f.kind = MigrationKind::kPostgresToClickHouse;
  f.select = select;
  f.key = std::move(key);
  f.target = target;
  return f;
}

class FileCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.ok());
    ASSERT_TRUE(ch_.ok());
    conn_.emplace(pg_.Connect());
  }

  MigrationEnv Env() {
    MigrationEnv env;
    env.database_url = pg_.url();
    env.clickhouse_url = ch_.url();
    env.clickhouse_db = ch_.database();
    return env;
  }

  void Pg(const std::string& sql) {
    Status s = conn_->Run(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  void Ch(const std::string& sql) {
    Status s = ch_.client().Execute(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::string ChText(const std::string& sql) {
    Result<std::string> r = ch_.client().Query(sql + " FORMAT TabSeparated");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }

  Status Run(const MigrationFile& f, RecordingContext& ctx) {
    std::unique_ptr<BackgroundMigration> m = NewFileCopy(f);
    Status v = m->Validate(ctx.args());
    if (!v.ok()) return v;
    return m->Run(ctx);
  }

  testing::TestDatabase pg_;
  testing::TestClickHouse ch_;
  std::optional<PgConnection> conn_;
};

TEST_F(FileCopyTest, EveryValueIsWrittenByItsTargetColumnsType) {
  const bool modern = ch_.dialect().modern();
  Pg("CREATE TABLE src (id bigint PRIMARY KEY, name text, code text, i8 smallint, u64 numeric, "
     "f double precision, d numeric(12,4), u uuid, day date, at timestamp(3), atz timestamptz, "
     "state text, tags text[], nums jsonb, attrs jsonb, flag boolean)");
  // Date32 holds days before 1970; 18.16's Date does not.
  Pg(std::string("INSERT INTO src VALUES "
                 "(1, 'plain', 'ab', -128, 18446744073709551615, 1.5, 12.3400, "
                 " 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', ") +
     (modern ? "'1969-12-31'" : "'1970-01-02'") +
     ", '2024-05-03 10:00:00.123', "
     " '2024-05-03 12:00:00+02', 'open', '{a,\"b c\",NULL}', '[1, 2, 3]', "
     " '{\"k\": \"v\", \"n\": 1, \"z\": null}', true),"
     "(2, NULL, 'x', 127, 0, -0.25, -0.0001, NULL, '2106-02-07', '1970-01-01 00:00:01', "
     " NULL, 'closed', '{}', '[]', NULL, false)");
  // The target as a newer application would have it; `extra` is left to its default.
  Ch(std::string("CREATE TABLE dest (id UInt64, name Nullable(String), code FixedString(2), "
                 "i8 Int8, u64 UInt64, f Float64, d Decimal(12, 4), u Nullable(UUID), day ") +
     (modern ? "Date32" : "Date") + ", at " + (modern ? "DateTime64(3)" : "DateTime") +
     ", atz Nullable(DateTime('UTC')), state Enum8('open' = 1, 'closed' = 2), "
     "tags Array(Nullable(String)), nums Array(Int32), " +
     (modern ? "attrs Map(String, Nullable(String)), flag Bool"
             : "attrs Nested(key String, value Nullable(String)), flag UInt8") +
     ", extra String DEFAULT 'dflt') ENGINE = MergeTree ORDER BY id");
  MigrationFile f = CopyFile(
      "SELECT id, name, code, i8, u64, f, d, u, day, at, atz, state, tags, nums, "
      "attrs, flag "
      "FROM src",
      {"id"});
  RecordingContext ctx(Env(), nlohmann::json::object());
  Status s = Run(f, ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ctx.estimate, 2);
  ASSERT_EQ(ctx.batches.size(), 1u);
  // One key range (the default chunkRows is far above 2 rows), its cursor at the last id.
  EXPECT_EQ(ctx.batches[0].to,
            (nlohmann::json{{"chunk", 0}, {"cursor", nlohmann::json{{"id", "2"}}}}));
  // The map as key and value arrays joined with ',' (each server prints Maps, Nested arrays and
  // Decimals its own way in TabSeparated).
  const std::string attrs =
      modern ? "arrayStringConcat(mapKeys(attrs), ','), "
               "arrayStringConcat(arrayMap(x -> ifNull(x, 'NULL'), mapValues(attrs)), ',')"
             : "arrayStringConcat(attrs.key, ','), "
               "arrayStringConcat(arrayMap(x -> ifNull(x, 'NULL'), attrs.value), ',')";
  EXPECT_EQ(
      ChText("SELECT id, name, code, i8, u64, f, toInt64(d * 10000), u, day, at, atz, state, tags, "
             "nums, " +
             attrs + ", flag, extra FROM dest ORDER BY id"),
      std::string("1\tplain\tab\t-128\t18446744073709551615\t1.5\t123400\t"
                  "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11\t") +
          (modern ? "1969-12-31\t2024-05-03 10:00:00.123" : "1970-01-02\t2024-05-03 10:00:00") +
          "\t2024-05-03 10:00:00\topen\t['a','b c',NULL]\t[1,2,3]\t" + "k,n,z\tv,1,NULL" + "\t" +
          (modern ? "true" : "1") +
          "\tdflt\n"
          "2\t\\N\tx\\0\t127\t0\t-0.25\t-1\t\\N\t2106-02-07\t" +
          (modern ? "1970-01-01 00:00:01.000" : "1970-01-01 00:00:01") +
          "\t"
          "\\N\tclosed\t[]\t[]\t" +
          "\t" + "\t" + (modern ? "false" : "0") + "\tdflt\n");
}

// 3,000 events, 2,000 of them sharing one timestamp (the seed's "cursor stuck on one date"),
// copied on the key (at, id) into a MergeTree (no deduplication: a row sent twice shows).
class FileCopyEventsTest : public FileCopyTest {
 protected:
  void SetUp() override {
    FileCopyTest::SetUp();
    Pg("CREATE TABLE events (id text PRIMARY KEY, at timestamp(6) NOT NULL, body text)");
    Pg("INSERT INTO events SELECT 'e' || lpad(g::text, 5, '0'), CASE WHEN g <= 2000 THEN "
       "timestamp '2024-05-02 10:00:00.123456' ELSE timestamp '2024-05-03 00:00:00' + g * "
       "interval '1 second' END, 'body ' || g FROM generate_series(1, 3000) g");
    Ch("CREATE TABLE events (id String, at DateTime, body String) ENGINE = MergeTree "
       "ORDER BY id");
  }
  MigrationFile Events() const {
    return CopyFile("SELECT id, at, body FROM events", {"at", "id"}, "events");
  }
  std::string Counts() {
    return ChText("SELECT count(), uniqExact(id), min(id), max(id) FROM events");
  }
};

TEST_F(FileCopyEventsTest, AStoppedCopyResumesFromItsCursorSendingNoRowTwice) {
  RecordingContext first(Env(), {{"batchSize", 700}});
  first.stop_after = 2;
  EXPECT_EQ(Run(Events(), first).code(), StatusCode::kCancelled);
  ASSERT_EQ(first.batches.size(), 2u);
  EXPECT_EQ(first.batches[1].to,
            (nlohmann::json{{"chunk", 0},
                            {"cursor", nlohmann::json{{"at", "2024-05-02 10:00:00.123456"},
                                                      {"id", "e01400"}}}}));
  EXPECT_EQ(Counts(), "1400\t1400\te00001\te01400\n");

  RecordingContext second(Env(), {{"batchSize", 700}}, first.state());
  Status s = Run(Events(), second);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(second.batches.front().from, first.batches.back().to);
  EXPECT_EQ(second.batches.front().rows, 700);
  EXPECT_EQ(Counts(), "3000\t3000\te00001\te03000\n");
}

TEST_F(FileCopyEventsTest, MinAndMaxDateBoundTheFirstKeyColumn) {
  RecordingContext ctx(Env(),
                       {{"minDate", "2024-05-03T00:16:40Z"}, {"maxDate", "2024-05-03 00:16:50"}});
  Status s = Run(Events(), ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // Rows g > 2000 are at g seconds after 2024-05-03 00:00: this window (g 1000-1009) holds
  // none of them, the next one holds g 2010-2019 (maxDate excluded).
  EXPECT_EQ(Counts(), "0\t0\t\t\n");
  // Another window is another copy (as after `retry --from-start`, which forgets the ranges).
  Pg("DELETE FROM background_migration_chunks");
  RecordingContext window(
      Env(), {{"minDate", "2024-05-03T00:33:30Z"}, {"maxDate", "2024-05-03T00:33:40Z"}});
  s = Run(Events(), window);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Counts(), "10\t10\te02010\te02019\n");
}

TEST_F(FileCopyEventsTest, AKeyThatIsNotUniqueStopsTheCopyNamingTheKey) {
  // `at` alone: 2,000 rows share one value, which a keyset on it would skip.
  MigrationFile f = CopyFile("SELECT id, at, body FROM events", {"at"}, "events");
  RecordingContext ctx(Env(), {{"batchSize", 500}});
  Status s = Run(f, ctx);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "the key is not unique: two rows of 20250601_1200_copy row (at) = (2024-05-02 "
            "10:00:00.123456); a keyset copy would skip one of them, so nothing more is copied. "
            "Add a column that makes the key unique (e.g. id)");
  EXPECT_EQ(Counts(), "0\t0\t\t\n");
}

TEST_F(FileCopyTest, AHugeValueIsReadInPiecesAndArrivesByteForByte) {
  Pg("CREATE TABLE docs (id int PRIMARY KEY, body jsonb, note text)");
  // 9 MB of JSON in one value (stored compressed far over the 64 KiB inline limit), and a
  // NULL and a small one beside it.
  Pg("INSERT INTO docs SELECT 1, jsonb_build_object('xs', array_agg(md5(g::text))), "
     "repeat('n', 200000) FROM generate_series(1, 250000) g");
  Pg("INSERT INTO docs VALUES (2, NULL, 'small'), (3, '{\"a\": 1}', NULL)");
  Ch("CREATE TABLE docs (id Int32, body Nullable(String), note Nullable(String)) "
     "ENGINE = MergeTree ORDER BY id");
  RecordingContext ctx(Env(), nlohmann::json::object());
  Status s = Run(CopyFile("SELECT id, body, note FROM docs", {"id"}, "docs"), ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // The JSON arrives compact: jsonb's ", " and ": " without their spaces (no string in it
  // holds a space), streamed in pieces twice (its compact size first).
  Result<PgResult> pg = conn_->Exec(
      "WITH c AS (SELECT id, replace(replace(body::text, ', ', ','), ': ', ':') AS body, note "
      "FROM docs) SELECT id, octet_length(body), md5(body), md5(note) FROM c ORDER BY id");
  ASSERT_TRUE(pg.ok());
  EXPECT_EQ(pg->Get(0, 1), "8750008");
  std::string expected;
  for (int i = 0; i < 3; ++i) {
    expected += std::string(pg->Get(i, 0)) + "\t" +
                (pg->IsNull(i, 1) ? "\\N" : std::string(pg->Get(i, 1))) + "\t" +
                (pg->IsNull(i, 2) ? "\\N" : std::string(pg->Get(i, 2))) + "\t" +
                (pg->IsNull(i, 3) ? "\\N" : std::string(pg->Get(i, 3))) + "\n";
  }
  EXPECT_EQ(ChText("SELECT id, length(body), lower(hex(MD5(body))), lower(hex(MD5(note))) FROM "
                   "docs ORDER BY id"),
            expected);
}

TEST_F(FileCopyTest, ASelectThatDoesNotFitItsTargetIsRefusedNamingColumnsAndTypes) {
  Pg("CREATE TABLE src (id int PRIMARY KEY, label text, n int, extra text)");
  Ch("CREATE TABLE dest (id Int32, label UInt8, n Int32, total Int64 MATERIALIZED n * 2) "
     "ENGINE = MergeTree ORDER BY id");
  auto messages = [](const FileCopyMatch& match) {
    std::vector<std::string> out;
    for (const FileProblem& p : match.problems) out.push_back(p.message);
    return out;
  };
  FileCopyMatch m =
      MatchFileCopy(CopyFile("SELECT id, label, n, extra, n AS total FROM src", {"id", "missing"}),
                    *conn_, &ch_.client());
  EXPECT_EQ(messages(m),
            (std::vector<std::string>{
                "[postgres_to_clickhouse] key column missing is not an output column of select; "
                "name it in the select list",
                "[postgres_to_clickhouse] column label is text in Postgres and UInt8 in "
                "ClickHouse: a number needs a numeric source; cast it in the SELECT",
                "[postgres_to_clickhouse] select column extra has no column of that name in "
                "dest; rename it (AS <target column>) or leave it out",
                "[postgres_to_clickhouse] column total of dest is MATERIALIZED, which ClickHouse "
                "computes itself; leave it out"}));
  EXPECT_EQ(messages(MatchFileCopy(CopyFile("SELECT id FROM src", {"id"}, "nowhere"), *conn_,
                                   &ch_.client())),
            (std::vector<std::string>{
                "[postgres_to_clickhouse] target table nowhere does not exist in ClickHouse "
                "(CLICKHOUSE_DB); create it with a fast migration first, or fix the name"}));
  EXPECT_EQ(
      messages(MatchFileCopy(CopyFile("SELECT id FROM src WHERE", {"id"}), *conn_, &ch_.client())),
      (std::vector<std::string>{
          "[postgres_to_clickhouse] select does not prepare: Postgres query failed "
          "(SQLSTATE 42601): ERROR:  syntax error at end of input"}));
  // A file read from disk names the line of the field concerned.
  std::vector<FileProblem> parse_problems;
  std::optional<MigrationFile> parsed = ParseMigrationFile(
      "m/20250601_1200_copy.toml",
      "description = \"d\"\nkind = \"postgres_to_clickhouse\"\n\n[postgres_to_clickhouse]\n"
      "target = \"dest\"\nkey = [\"id\"]\nselect = \"SELECT id, extra FROM src\"\n",
      parse_problems);
  ASSERT_TRUE(parsed.has_value());
  FileCopyMatch from_file = MatchFileCopy(*parsed, *conn_, &ch_.client());
  ASSERT_EQ(from_file.problems.size(), 1u);
  EXPECT_EQ(from_file.problems[0].ToString(),
            "m/20250601_1200_copy.toml:7: [postgres_to_clickhouse] select column extra has no "
            "column of that name in dest; rename it (AS <target column>) or leave it out");
  // Nothing ran: the target is still empty.
  EXPECT_EQ(ChText("SELECT count() FROM dest"), "0\n");
}

}  // namespace
}  // namespace bgm
