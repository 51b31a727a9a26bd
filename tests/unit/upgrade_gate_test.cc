// The upgrade gate: open only when every named (or every registered) migration has finished,
// and for each other one the reason an operator can act on.
#include "core/upgrade_gate.h"

#include <gtest/gtest.h>

#include "core/readiness.h"

namespace bgm {
namespace {

MigrationRow Row(const std::string& name, MigrationStatus status) {
  MigrationRow r;
  r.name = name;
  r.script = name;
  r.status = status;
  return r;
}

const Registry& Known() {
  static const Registry kRegistry({{"20240101_a", "a", {}, nullptr},
                                   {"20240102_b", "b", {"20240101_a"}, nullptr},
                                   {"20240103_c", "c", {}, nullptr},
                                   {"20240104_d", "d", {}, nullptr}});
  return kRegistry;
}

TEST(UpgradeGateTest, EveryUnfinishedMigrationSaysWhy) {
  MigrationRow a = Row("20240101_a", MigrationStatus::kFailed);
  a.failed_reason = "source went away";
  MigrationRow c = Row("20240103_c", MigrationStatus::kRunning);
  c.worker_id = "w1";
  c.rows_processed = 250;
  c.rows_total_estimate = 1000;
  std::vector<MigrationRow> rows = {a, Row("20240102_b", MigrationStatus::kPending), c,
                                    Row("20240104_d", MigrationStatus::kFinished),
                                    Row("20230101_other_tool", MigrationStatus::kPending)};
  Result<std::vector<GateEntry>> gate = JudgeGate(rows, Known(), {});
  ASSERT_TRUE(gate.ok()) << gate.status().ToString();
  ASSERT_EQ(gate->size(), 4u) << "the other tool's row is not ours to wait for";
  EXPECT_EQ((*gate)[0].why, "failed: source went away; fix it, then `bgmigrate retry 20240101_a`");
  EXPECT_EQ((*gate)[1].why, "blocked by 20240101_a (failed)");
  EXPECT_EQ((*gate)[2].why, "running on w1, 250 rows done of about 1000 (25%)");
  EXPECT_TRUE((*gate)[3].finished);
  EXPECT_EQ((*gate)[3].why, "");
}

TEST(UpgradeGateTest, NamedMigrationsOnlyAndUnknownNamesRefused) {
  std::vector<MigrationRow> rows = {Row("20240101_a", MigrationStatus::kFinished),
                                    Row("20240102_b", MigrationStatus::kPaused)};
  Result<std::vector<GateEntry>> gate = JudgeGate(rows, Known(), {"20240101_a"});
  ASSERT_TRUE(gate.ok());
  ASSERT_EQ(gate->size(), 1u);
  EXPECT_TRUE((*gate)[0].finished);
  gate = JudgeGate(rows, Known(), {"20240102_b"});
  EXPECT_EQ((*gate)[0].why, "paused; `bgmigrate resume 20240102_b` lets workers continue");
  Result<std::vector<GateEntry>> missing = JudgeGate(rows, Known(), {"20240109_typo"});
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(),
            "no background migration named '20240109_typo' is registered; `bgmigrate list` "
            "shows their names");
}

// A skipped migration is done for the gate and for the ones that need it; a cancelled one is
// neither: the gate says how to go on, and the ones that need it are blocked by it.
TEST(UpgradeGateTest, SkippedCountsAsFinishedAndCancelledBlocks) {
  MigrationRow a = Row("20240101_a", MigrationStatus::kSkipped);
  a.skipped_reason = "copied by hand";
  std::vector<MigrationRow> rows = {a, Row("20240102_b", MigrationStatus::kFinished)};
  Result<std::vector<GateEntry>> gate = JudgeGate(rows, Known(), {"20240101_a", "20240102_b"});
  ASSERT_TRUE(gate.ok());
  EXPECT_TRUE((*gate)[0].finished);
  EXPECT_EQ((*gate)[0].why, "");

  MigrationRow cancelled = Row("20240101_a", MigrationStatus::kCancelled);
  cancelled.cancelled_at = "2026-12-01T01:00:00.000Z";
  rows = {cancelled, Row("20240102_b", MigrationStatus::kPending)};
  gate = JudgeGate(rows, Known(), {});
  ASSERT_TRUE(gate.ok());
  EXPECT_FALSE((*gate)[0].finished);
  EXPECT_EQ((*gate)[0].why,
            "cancelled at 2026-12-01T01:00:00.000Z; `bgmigrate retry 20240101_a` runs it again "
            "from its cursor, or `bgmigrate skip 20240101_a --reason ...` if its data was "
            "migrated another way");
  EXPECT_EQ((*gate)[1].why, "blocked by 20240101_a (cancelled)");

  // Skipped, the prerequisite lets the one that needs it run.
  rows = {a, Row("20240102_b", MigrationStatus::kPending)};
  JudgeReadiness(rows, Known());
  EXPECT_EQ(rows[1].status, MigrationStatus::kPending);
  EXPECT_EQ(rows[1].waits_for, std::nullopt);
  EXPECT_TRUE(IsRunnable(rows[1]));
}

}  // namespace
}  // namespace bgm
