// COPY text-format escaping: the exact bytes Postgres reads back as the original value.
#include <gtest/gtest.h>

#include <string>

#include "postgres/pg_copy.h"

namespace bgm {
namespace {

std::string Escaped(std::string_view v) {
  std::string out;
  AppendCopyText(out, v);
  return out;
}

TEST(PgCopyTextTest, PlainTextIsCopiedUnchanged) {
  EXPECT_EQ(Escaped(""), "");
  EXPECT_EQ(Escaped("hello, world"), "hello, world");
  EXPECT_EQ(Escaped("{\"a\": [1, 2]}"), "{\"a\": [1, 2]}");
}

TEST(PgCopyTextTest, BackslashTabNewlineAndCarriageReturnAreEscaped) {
  EXPECT_EQ(Escaped("\\"), "\\\\");
  EXPECT_EQ(Escaped("\t"), "\\t");
  EXPECT_EQ(Escaped("\n"), "\\n");
  EXPECT_EQ(Escaped("\r"), "\\r");
  EXPECT_EQ(Escaped("a\tb\nc\r\nd\\e"), "a\\tb\\nc\\r\\nd\\\\e");
  EXPECT_EQ(Escaped("\\\\n"), "\\\\\\\\n");  // two backslashes and an n, not a newline
}

TEST(PgCopyTextTest, TheNullMarkerAsDataIsEscapedSoItStaysText) {
  EXPECT_EQ(kCopyNull, "\\N");
  EXPECT_EQ(Escaped("\\N"), "\\\\N");
  EXPECT_EQ(Escaped("N"), "N");
}

TEST(PgCopyTextTest, OtherControlCharactersAndUtf8PassThrough) {
  EXPECT_EQ(Escaped("\b\f\v\x07"), "\b\f\v\x07");
  EXPECT_EQ(Escaped("日本語 🚀 مرحبا e\u0301"), "日本語 🚀 مرحبا e\u0301");
  EXPECT_EQ(Escaped("\"quotes\" and 'single' stay"), "\"quotes\" and 'single' stay");
}

TEST(PgCopyTextTest, AppendsAfterExistingContent) {
  std::string out = "id\t";
  AppendCopyText(out, "x\ty");
  out += '\t';
  out += kCopyNull;
  EXPECT_EQ(out, "id\tx\\ty\t\\N");
}

}  // namespace
}  // namespace bgm
