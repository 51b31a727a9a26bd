// A `postgres_to_clickhouse` copy split into key ranges (`chunkRows`) and run by several threads
// (`concurrency`) on real Postgres and ClickHouse: the ranges cover the key without gap or
// overlap, every row arrives once, a stopped copy resumes each range from its cursor, and a range
// that cannot be written fails alone, naming its range, while the others finish.
#include <gtest/gtest.h>

#include <map>

#include "migrations/file_copy.h"
#include "testing/recording_context.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::RecordingContext;

class ChunkedCopyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pg_.ok());
    ASSERT_TRUE(ch_.ok());
    conn_.emplace(pg_.Connect());
    // ids 1..1000, v = id % 200 (sum 99,500).
    Pg("CREATE TABLE src (id bigint PRIMARY KEY, v int)");
    Pg("INSERT INTO src SELECT g, g % 200 FROM generate_series(1, 1000) g");
    Pg("ANALYZE src");
    Ch("CREATE TABLE dest (id Int64, v UInt8) ENGINE = MergeTree ORDER BY id");
    file_.name = "20250601_1200_copy";
    file_.path = "migrations/20250601_1200_copy.toml";
    file_.kind = MigrationKind::kPostgresToClickHouse;
    file_.select = "SELECT id, v FROM src";
    file_.key = {"id"};
    file_.target = "dest";
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
  std::string PgText(const std::string& sql) {
    Result<PgResult> r = conn_->Exec(sql);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    std::string out;
    for (int i = 0; r.ok() && i < r->rows(); ++i) {
      for (int c = 0; c < r->columns(); ++c) {
        out += (c > 0 ? "|" : "") + std::string(r->IsNull(i, c) ? "-" : r->Get(i, c));
      }
      out += "\n";
    }
    return out;
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
  Status Run(RecordingContext& ctx) {
    std::unique_ptr<BackgroundMigration> m = NewFileCopy(file_);
    Status v = m->Validate(ctx.args());
    if (!v.ok()) return v;
    return m->Run(ctx);
  }
  // chunk|lower id|upper id|status|rows, one line per chunk.
  std::string Chunks() {
    return PgText(
        "SELECT chunk, lower_bound->>'id', upper_bound->>'id', status, rows_processed "
        "FROM background_migration_chunks ORDER BY chunk");
  }
  static std::string AllDone(int64_t rows_of_chunk5 = 100) {
    std::string out;
    for (int i = 0; i < 10; ++i) {
      out += std::to_string(i) + "|" + (i == 0 ? "-" : std::to_string(i * 100 + 1)) + "|" +
             (i == 9 ? "-" : std::to_string(i * 100 + 101)) + "|done|" +
             std::to_string(i == 5 ? rows_of_chunk5 : 100) + "\n";
    }
    return out;
  }

  testing::TestDatabase pg_;
  testing::TestClickHouse ch_;
  std::optional<PgConnection> conn_;
  MigrationFile file_;
};

TEST_F(ChunkedCopyTest, RangesCoverTheKeyWithoutGapOrOverlapAndEveryRowArrivesOnce) {
  RecordingContext ctx(Env(), {{"chunkRows", 100}, {"concurrency", 3}, {"batchSize", 30}});
  Status s = Run(ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // Boundaries every 100 rows: [start, 101), [101, 201), ..., [901, end).
  EXPECT_EQ(Chunks(), AllDone());
  EXPECT_EQ(ChText("SELECT count(), uniqExact(id), sum(v) FROM dest"), "1000\t1000\t99500\n");
  int64_t rows = 0;
  for (const BatchRecord& b : ctx.batches) {
    rows += b.rows;
    EXPECT_TRUE(b.from.contains("chunk")) << b.from.dump();
    EXPECT_EQ(b.state, nlohmann::json({{"chunked", true}}));
  }
  EXPECT_EQ(rows, 1000);
  EXPECT_EQ(ctx.batches.size(), 40u) << "4 batches of at most 30 rows per range of 100";
}

TEST_F(ChunkedCopyTest, AStoppedCopyResumesEachRangeFromItsCursorSendingNoRowTwice) {
  RecordingContext first(Env(), {{"chunkRows", 100}, {"batchSize", 30}});
  first.stop_after = 6;  // inside the second range (4 batches each)
  Status s = Run(first);
  ASSERT_EQ(s.code(), StatusCode::kCancelled) << s.ToString();
  EXPECT_EQ(ChText("SELECT count() FROM dest"), "160\n");  // range 0 and 60 rows of range 1
  EXPECT_EQ(PgText("SELECT chunk, status, rows_processed, cursor->>'id' FROM "
                   "background_migration_chunks WHERE chunk < 3 ORDER BY chunk"),
            "0|done|100|100\n1|pending|60|160\n2|pending|0|-\n");

  RecordingContext second(Env(), {{"chunkRows", 100}, {"batchSize", 30}},
                          first.batches.back().state);
  s = Run(second);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(Chunks(), AllDone());
  EXPECT_EQ(ChText("SELECT count(), uniqExact(id), sum(v) FROM dest"), "1000\t1000\t99500\n");
}

TEST_F(ChunkedCopyTest, ARangeThatCannotBeWrittenFailsAloneNamingItsRangeAndTheOthersFinish) {
  Pg("UPDATE src SET v = 300 WHERE id = 550");  // UInt8 holds up to 255
  RecordingContext ctx(
      Env(), {{"chunkRows", 100}, {"concurrency", 2}, {"batchSize", 30}, {"chunkAttempts", 2}});
  Status s = Run(ctx);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
  EXPECT_NE(s.message().find("1 of 10 chunks failed: chunk 5 [{\"id\":\"501\"}, "
                             "{\"id\":\"601\"}) failed 2 times: encoding "),
            std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find("\"300\" cannot be written as UInt8: out of range"), std::string::npos)
      << s.message();
  EXPECT_EQ(PgText("SELECT status, attempts, rows_processed, cursor->>'id' FROM "
                   "background_migration_chunks WHERE chunk = 5"),
            "failed|2|30|530\n")
      << "the first batch of the range (501-530) was written, the second holds id 550";
  EXPECT_EQ(PgText("SELECT count(*) FROM background_migration_chunks WHERE status = 'done'"),
            "9\n");
  EXPECT_EQ(ChText("SELECT count(), uniqExact(id) FROM dest"), "930\t930\n");

  // Fixed, the copy runs again: only the failed range, from its cursor.
  Pg("UPDATE src SET v = 50 WHERE id = 550");
  RecordingContext again(Env(), {{"chunkRows", 100}, {"batchSize", 30}},
                         nlohmann::json{{"chunked", true}});
  s = Run(again);
  ASSERT_TRUE(s.ok()) << s.ToString();
  int64_t rows = 0;
  for (const BatchRecord& b : again.batches) rows += b.rows;
  EXPECT_EQ(rows, 70) << "ids 531-600 only";
  EXPECT_EQ(Chunks(), AllDone());
  EXPECT_EQ(ChText("SELECT count(), uniqExact(id), sum(v) FROM dest"), "1000\t1000\t99400\n");
}

TEST_F(ChunkedCopyTest, ARangeThatTimesOutIsSplitUntilItsPiecesFitAndEveryRowArrivesOnce) {
  // Rows 501-600 take 10 ms each to read; a statement may take 250 ms: range 5 (1 s) cannot be
  // read in one statement, its halves and their halves can.
  // (STABLE, so that Postgres leaves it out of queries that do not read v: the split's.)
  Pg("CREATE FUNCTION slow(id bigint, v int) RETURNS int LANGUAGE plpgsql STABLE AS $$ BEGIN "
     "IF id BETWEEN 501 AND 600 THEN PERFORM pg_sleep(0.01); END IF; RETURN v; END $$");
  Pg("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET statement_timeout = %L', "
     "current_database(), '250ms'); END $$");
  file_.select = "SELECT id, slow(id, v) AS v FROM src";
  RecordingContext ctx(Env(), {{"chunkRows", 100}, {"concurrency", 2}, {"batchSize", 5}});
  Status s = Run(ctx);
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ChText("SELECT count(), uniqExact(id), sum(v) FROM dest"), "1000\t1000\t99500\n");
  // Split ranges: more than 10, all done, and they still tile the key: from the start, each
  // beginning where another ends, the last open-ended.
  Result<PgResult> r = conn_->Exec(
      "SELECT coalesce(lower_bound->>'id', '-'), coalesce(upper_bound->>'id', '-'), status "
      "FROM background_migration_chunks");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_GT(r->rows(), 10) << "range 5 was split";
  std::map<std::string, std::string> next;  // lower -> upper
  for (int i = 0; i < r->rows(); ++i) {
    EXPECT_EQ(r->Get(i, 2), "done");
    EXPECT_TRUE(next.emplace(std::string(r->Get(i, 0)), std::string(r->Get(i, 1))).second)
        << "two ranges start at " << r->Get(i, 0);
  }
  std::string at = "-";
  int walked = 0;
  do {
    ASSERT_TRUE(next.contains(at)) << "no range starts at " << at << " (a gap)";
    at = next[at];
    ++walked;
  } while (at != "-" && walked <= r->rows());
  EXPECT_EQ(walked, r->rows()) << "every range on the one chain from start to end";
}

// A copy that ran as one range (chunkRows 0, or an older bgmigrate) up to id 250 goes on in
// ranges from its cursor: the first range starts there and no row up to 250 is sent again.
TEST_F(ChunkedCopyTest, ACopyThatRanAsOneRangeGoesOnInRangesFromItsCursor) {
  RecordingContext one(Env(), {{"chunkRows", 0}, {"batchSize", 50}});
  one.stop_after = 5;
  Status s = Run(one);
  ASSERT_EQ(s.code(), StatusCode::kCancelled) << s.ToString();
  ASSERT_EQ(one.state(), nlohmann::json({{"cursor", {{"id", "250"}}}}));
  EXPECT_EQ(PgText("SELECT count(*) FROM background_migration_chunks"), "0\n");

  RecordingContext ranges(Env(), {{"chunkRows", 300}, {"batchSize", 50}}, one.state());
  s = Run(ranges);
  ASSERT_TRUE(s.ok()) << s.ToString();
  // Boundaries 300 rows apart from the cursor: [start, 551), [551, 851), [851, end); the first
  // range holds the 300 rows after the cursor.
  EXPECT_EQ(PgText("SELECT chunk, lower_bound->>'id', upper_bound->>'id', status, rows_processed "
                   "FROM background_migration_chunks ORDER BY chunk"),
            "0|-|551|done|300\n1|551|851|done|300\n2|851|-|done|150\n");
  ASSERT_FALSE(ranges.batches.empty());
  EXPECT_EQ(ranges.batches.front().from,
            nlohmann::json({{"chunk", 0}, {"cursor", {{"id", "250"}}}}));
  EXPECT_EQ(ChText("SELECT count(), uniqExact(id), sum(v) FROM dest"), "1000\t1000\t99500\n");
}

// chunkRows 0 (or none) on a copy already in ranges is refused with what to do; nothing is
// copied.
TEST_F(ChunkedCopyTest, OneRangeIsRefusedForACopyAlreadyInRanges) {
  RecordingContext ctx(Env(), {{"chunkRows", 0}}, {{"chunked", true}});
  Status s = Run(ctx);
  EXPECT_EQ(
      s.ToString(),
      "INVALID_ARGUMENT: this copy runs in chunks (see its chunks) but its chunkRows is now 0 "
      "(one range); set chunkRows above 0 again to go on, or retry with --from-start to "
      "copy as one range");
  EXPECT_EQ(ChText("SELECT count() FROM dest"), "0\n");
}

// A key that is not unique is the copy's plan at fault, not one range's rows: the copy fails
// at once with that error (no range tried again or failed), its ranges left to run after a fix.
TEST_F(ChunkedCopyTest, AKeyThatIsNotUniqueFailsTheCopyAtOnceNotRangeByRange) {
  file_.key = {"v"};  // v = id % 200: five rows each
  RecordingContext ctx(Env(), {{"chunkRows", 100}, {"chunkAttempts", 3}});
  Status s = Run(ctx);
  EXPECT_EQ(s.ToString(),
            "FAILED_PRECONDITION: the key is not unique: two rows of 20250601_1200_copy row (v) = "
            "(0); a keyset copy would skip one of them, so nothing more is copied. Add a column "
            "that makes the key unique (e.g. id)");
  EXPECT_EQ(PgText("SELECT count(*) FILTER (WHERE status = 'failed'), "
                   "count(*) FILTER (WHERE status = 'running'), max(attempts) "
                   "FROM background_migration_chunks"),
            "0|0|0\n");  // the claim given back uncounted
}

}  // namespace
}  // namespace bgm
