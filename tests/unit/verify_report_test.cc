// The text and JSON of `bgmigrate verify`'s report: differing months, the first row whose
// content differs (or that is missing), and the summary line.
#include <gtest/gtest.h>

#include "migrations/verify.h"

namespace bgm {
namespace {

VerifyReport Report() {
  VerifyReport r;
  r.table = "20250601_1200_copy_events";
  r.months = {{"2024-03", 743, 744, 1, 2}, {"2024-04", 720, 720, 3, 3}};
  r.source_rows = 1463;
  r.target_rows = 1464;
  r.final_read = false;
  r.content.rows = 2000;
  return r;
}

TEST(VerifyReportTest, ContentThatMatchesIsOnlyCountedInTheSummary) {
  VerifyReport r = Report();
  r.months[0] = {"2024-03", 743, 743, 1, 1};
  r.target_rows = 1463;
  EXPECT_TRUE(r.match());
  EXPECT_EQ(r.ToText(),
            "20250601_1200_copy_events: MATCH — source 1463 rows, target 1463 rows, 2 months "
            "compared; content of 2000 sampled rows compared, 0 differ\n");
}

TEST(VerifyReportTest, TheFirstDifferingRowIsNamedWithItsColumnAndBothValues) {
  VerifyReport r = Report();
  r.content.differing = 3;
  r.content.missing = 1;
  r.content.first = RowDifference{
      {{"at", "2024-03-01 10:00:00"}, {"id", "e00010"}}, false, "name", "'name 10'", "NULL"};
  EXPECT_FALSE(r.match());
  EXPECT_EQ(r.ToText(),
            "2024-03: source 743 rows, target 744 rows\n"
            "content: 3 of 2000 sampled rows differ (1 missing); first: (at, id) = (2024-03-01 "
            "10:00:00, e00010): column name is 'name 10' in the copy, NULL in the target\n"
            "20250601_1200_copy_events: DIFFERENT — source 1463 rows, target 1464 rows, 2 months "
            "compared, 1 differ; content of 2000 sampled rows compared, 3 differ\n");
  EXPECT_EQ(r.ToJson(), nlohmann::json::parse(R"({
              "table": "20250601_1200_copy_events", "match": false, "source_rows": 1463,
              "target_rows": 1464, "final": false,
              "months": [
                {"month": "2024-03", "source_rows": 743, "target_rows": 744, "match": false},
                {"month": "2024-04", "source_rows": 720, "target_rows": 720, "match": true}],
              "content": {"mode": "sample", "rows": 2000, "differing": 3, "missing": 1,
                "first_difference": {"key": {"at": "2024-03-01 10:00:00", "id": "e00010"},
                  "missing": false, "column": "name", "source_value": "'name 10'",
                  "target_value": "NULL"}}})"));
}

TEST(VerifyReportTest, AMissingRowIsNamedByItsKeyAndFullComparisonsSayAll) {
  VerifyReport r = Report();
  r.months[0] = {"2024-03", 743, 743, 1, 1};
  r.target_rows = 1463;
  r.final_read = true;
  r.content.full = true;
  r.content.rows = 1463;
  r.content.differing = 1;
  r.content.missing = 1;
  r.content.first = RowDifference{{{"id", "late"}}, true, "", "", ""};
  EXPECT_FALSE(r.match()) << "the content differs though every month matches";
  EXPECT_EQ(r.ToText(),
            "content: 1 of 1463 rows differ (1 missing); first: (id) = (late) is missing in the "
            "target\n"
            "20250601_1200_copy_events: DIFFERENT — source 1463 rows, target 1463 rows (FINAL), 2 "
            "months compared; content of 1463 rows (all) compared, 1 differ\n");
  EXPECT_EQ(r.ToJson()["content"]["first_difference"],
            (nlohmann::json{{"key", {{"id", "late"}}}, {"missing", true}}));
}

TEST(VerifyReportTest, AKeyOfSeveralColumnsHashesEachValueWithItsLength) {
  EXPECT_EQ(KeyHash({"abc"}), IdHash("abc"));
  EXPECT_EQ(KeyHash({"ab", "c"}), IdHash("2:ab1:c"));
  EXPECT_NE(KeyHash({"ab", "c"}), KeyHash({"a", "bc"}));
}

}  // namespace
}  // namespace bgm
