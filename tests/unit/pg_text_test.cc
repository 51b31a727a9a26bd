#include "postgres/pg_text.h"

#include <gtest/gtest.h>

namespace bgm {
namespace {

// A text[] literal quotes every element and escapes quotes and backslashes; the parser reads
// it back element for element.
TEST(PgTextTest, ArrayLiteralsRoundTripThroughTheParser) {
  const std::vector<std::string> items = {"a", "b c", "d\"e", "f\\g", "", "{h,i}"};
  const std::string literal = PgTextArrayLiteral(items);
  EXPECT_EQ(literal, R"({"a","b c","d\"e","f\\g","","{h,i}"})");
  std::vector<std::string> parsed;
  ASSERT_TRUE(ParsePgTextArray(literal, &parsed).ok());
  EXPECT_EQ(parsed, items);
  EXPECT_EQ(PgTextArrayLiteral({}), "{}");
}

}  // namespace
}  // namespace bgm
