#include "common/json_compact.h"

#include <gtest/gtest.h>

namespace bgm {
namespace {

TEST(JsonCompactTest, DropsTheSpacesPostgresWritesBetweenTokens) {
  EXPECT_EQ(CompactJson(R"({"a": [1, 2, {"b": null}], "c": true})"),
            R"({"a":[1,2,{"b":null}],"c":true})");
  EXPECT_EQ(CompactJson("[ 1 ,\n\t2\r ]"), "[1,2]");
  EXPECT_EQ(CompactJson(R"("just a string")"), R"("just a string")");
  EXPECT_EQ(CompactJson("42"), "42");
  EXPECT_EQ(CompactJson(""), "");
}

TEST(JsonCompactTest, KeepsEveryByteInsideStringsEscapesIncluded) {
  EXPECT_EQ(CompactJson(R"({"a b": "c , d", "e": "quote \" then : space"})"),
            R"({"a b":"c , d","e":"quote \" then : space"})");
  // An escaped backslash ends the escape: the quote after it closes the string.
  EXPECT_EQ(CompactJson(R"(["x\\", "y z"])"), R"(["x\\","y z"])");
  EXPECT_EQ(CompactJson(R"({"k": "tab\t and é ü"})"), R"({"k":"tab\t and é ü"})");
  // Runs of escapes: an escaped backslash before an escaped quote, quotes back to back.
  EXPECT_EQ(CompactJson(R"(["a\\\"b c", "\\\\", "x\"\"y z", {"k k": [ ]}])"),
            R"(["a\\\"b c","\\\\","x\"\"y z",{"k k":[]}])");
}

// A value split anywhere (inside a string, between a backslash and what it escapes, inside
// a run of spaces) compacts as the whole does, and counting alone gives the same size.
TEST(JsonCompactTest, PiecesSplitAnywhereCompactAsTheWholeValue) {
  const std::string whole = R"({"a": "x \" y", "b": [1, "\\", "s p"],  "c": {"d": "e"}})";
  const std::string expected = CompactJson(whole);
  ASSERT_EQ(expected, R"({"a":"x \" y","b":[1,"\\","s p"],"c":{"d":"e"}})");
  for (size_t cut1 = 0; cut1 <= whole.size(); ++cut1) {
    for (size_t cut2 = cut1; cut2 <= whole.size(); cut2 += 3) {
      JsonCompactor writer, counter;
      std::string out;
      size_t kept = 0, counted = 0;
      for (auto [from, to] : {std::pair{size_t{0}, cut1}, {cut1, cut2}, {cut2, whole.size()}}) {
        const std::string_view piece(whole.data() + from, to - from);
        kept += writer.Add(piece, &out);
        counted += counter.Add(piece, nullptr);
      }
      ASSERT_EQ(out, expected) << "cut at " << cut1 << " and " << cut2;
      ASSERT_EQ(kept, expected.size());
      ASSERT_EQ(counted, expected.size());
    }
  }
}

}  // namespace
}  // namespace bgm
