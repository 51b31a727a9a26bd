// PgCopyIn against a real Postgres: rows and escapes arrive intact, chunking, server errors with
// their SQLSTATE, and an abandoned COPY leaves nothing behind and the connection usable.
#include "postgres/pg_copy.h"

#include <gtest/gtest.h>

#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::TestDatabase;

class PgCopyInTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(db_.ok());
    conn_.emplace(db_.Connect());
    ASSERT_TRUE(conn_->Run("CREATE TABLE t (id int PRIMARY KEY, v text)").ok());
  }
  int64_t Count() {
    Result<PgResult> r = conn_->Exec("SELECT count(*) FROM t");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? r->GetInt(0, 0) : -1;
  }

  TestDatabase db_;
  std::optional<PgConnection> conn_;
};

TEST_F(PgCopyInTest, EscapedValuesAndNullRoundTrip) {
  const std::vector<std::string> values = {
      "plain",       "tab\there", "new\nline",        "cr\rlf\r\n",
      "back\\slash", "\\N",       "日本語 🚀 e\u0301", ""};
  Result<PgCopyIn> copy = PgCopyIn::Begin(*conn_, "COPY t (id, v) FROM STDIN");
  ASSERT_TRUE(copy.ok()) << copy.status().ToString();
  std::string row;
  for (size_t i = 0; i < values.size(); ++i) {
    row = std::to_string(i) + "\t";
    AppendCopyText(row, values[i]);
    row += '\n';
    ASSERT_TRUE(copy->Write(row).ok());
  }
  ASSERT_TRUE(copy->Write("99\t").ok());  // a row split across writes, with a NULL
  ASSERT_TRUE(copy->Write(kCopyNull).ok());
  ASSERT_TRUE(copy->Write("\n").ok());
  Result<int64_t> rows = copy->Finish();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, static_cast<int64_t>(values.size()) + 1);

  Result<PgResult> r = conn_->Exec("SELECT id, v FROM t ORDER BY id");
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->rows(), static_cast<int>(values.size()) + 1);
  for (size_t i = 0; i < values.size(); ++i) {
    EXPECT_FALSE(r->IsNull(static_cast<int>(i), 1)) << i;
    EXPECT_EQ(r->Get(static_cast<int>(i), 1), values[i]) << i;
  }
  EXPECT_TRUE(r->IsNull(static_cast<int>(values.size()), 1));
}

TEST_F(PgCopyInTest, BufferAndLargeWritesAreSentInChunks) {
  Result<PgCopyIn> copy = PgCopyIn::Begin(*conn_, "COPY t (id, v) FROM STDIN");
  ASSERT_TRUE(copy.ok());
  const std::string big(3 * PgCopyIn::kChunkBytes, 'x');
  std::string row = "0\t" + big + "\n";
  ASSERT_TRUE(copy->Write(row).ok());  // larger than a chunk: sent as it is
  for (int i = 1; i <= 20000; ++i) {
    std::string& buf = copy->buffer();
    buf += std::to_string(i);
    buf += "\tsmall row with some text to fill the chunks\n";
    ASSERT_TRUE(copy->FlushIfFull().ok());
    ASSERT_LT(copy->buffer().size(), PgCopyIn::kChunkBytes);
  }
  Result<int64_t> rows = copy->Finish();
  ASSERT_TRUE(rows.ok()) << rows.status().ToString();
  EXPECT_EQ(*rows, 20001);
  Result<PgResult> r = conn_->Exec("SELECT length(v) FROM t WHERE id = 0");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->GetInt(0, 0), static_cast<int64_t>(big.size()));
}

TEST_F(PgCopyInTest, BadValueFailsWithSqlstate22P02AndStoresNothing) {
  Result<PgCopyIn> copy = PgCopyIn::Begin(*conn_, "COPY t (id, v) FROM STDIN");
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE(copy->Write("1\tok\nnot-a-number\tbad\n").ok());
  Result<int64_t> rows = copy->Finish();
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rows.status().message().find("COPY failed (SQLSTATE 22P02)"), std::string::npos)
      << rows.status().message();
  EXPECT_EQ(Count(), 0) << "the connection is usable again and the COPY was rolled back";
}

TEST_F(PgCopyInTest, DuplicateKeyFailsWithSqlstate23505) {
  ASSERT_TRUE(conn_->Run("INSERT INTO t VALUES (7, 'existing')").ok());
  Result<PgCopyIn> copy = PgCopyIn::Begin(*conn_, "COPY t (id, v) FROM STDIN");
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE(copy->Write("6\ta\n7\tb\n").ok());
  Result<int64_t> rows = copy->Finish();
  ASSERT_FALSE(rows.ok());
  EXPECT_EQ(rows.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(rows.status().message().find("SQLSTATE 23505"), std::string::npos)
      << rows.status().message();
  EXPECT_EQ(Count(), 1);
}

TEST_F(PgCopyInTest, ErrorEarlyInALongStreamIsReportedWithItsSqlstate) {
  Result<PgCopyIn> copy = PgCopyIn::Begin(*conn_, "COPY t (id, v) FROM STDIN");
  ASSERT_TRUE(copy.ok());
  Status first_error;
  if (Status s = copy->Write("x\tbad first row\n"); !s.ok()) first_error = s;
  const std::string filler(PgCopyIn::kChunkBytes / 2, 'y');
  for (int i = 0; i < 64 && first_error.ok(); ++i) {
    std::string row = std::to_string(i) + "\t" + filler + "\n";
    if (Status s = copy->Write(row); !s.ok()) first_error = s;
  }
  if (first_error.ok()) {
    Result<int64_t> rows = copy->Finish();
    ASSERT_FALSE(rows.ok());
    first_error = rows.status();
  }
  EXPECT_NE(first_error.message().find("SQLSTATE 22P02"), std::string::npos)
      << first_error.ToString();
  EXPECT_EQ(Count(), 0);
}

TEST_F(PgCopyInTest, AbandonedCopyIsRolledBack) {
  {
    Result<PgCopyIn> copy = PgCopyIn::Begin(*conn_, "COPY t (id, v) FROM STDIN");
    ASSERT_TRUE(copy.ok());
    ASSERT_TRUE(copy->Write("1\ta\n2\tb\n").ok());
  }
  EXPECT_EQ(Count(), 0);
  Result<PgCopyIn> copy = PgCopyIn::Begin(*conn_, "COPY t (id, v) FROM STDIN");
  ASSERT_TRUE(copy.ok());
  ASSERT_TRUE(copy->Write("3\tc\n").ok());
  copy->Abort("changed my mind");
  EXPECT_EQ(copy->Write("4\td\n").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(Count(), 0);
}

TEST_F(PgCopyInTest, BeginRejectsOtherStatementsAndUnknownTables) {
  Result<PgCopyIn> select = PgCopyIn::Begin(*conn_, "SELECT 1");
  ASSERT_FALSE(select.ok());
  EXPECT_EQ(select.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(select.status().message().find("COPY ... FROM STDIN"), std::string::npos);

  Result<PgCopyIn> missing = PgCopyIn::Begin(*conn_, "COPY no_such_table FROM STDIN");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("SQLSTATE 42P01"), std::string::npos)
      << missing.status().message();
  EXPECT_EQ(Count(), 0);
}

}  // namespace
}  // namespace bgm
