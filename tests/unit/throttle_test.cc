// The throttle's own logic on scripted signals and a fake clock: when signals are read, what is
// reported while a signal is at or above its threshold and when it clears, stops, read errors,
// and a probe's answer read as a number. The signals themselves are tested on real servers
// (tests/integration/throttle_test.cc).
#include "core/throttle.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "core/health_signals.h"

namespace bgm {
namespace {

using std::chrono::seconds;

// A signal whose value the test sets; counts its reads.
class ScriptedSignal final : public HealthSignal {
 public:
  ScriptedSignal(std::string name, double threshold, std::atomic<double>& value,
                 std::atomic<int>& reads)
      : name_(std::move(name)), threshold_(threshold), value_(value), reads_(reads) {}
  std::string signal() const override { return name_; }
  std::string what() const override { return name_ + " parts"; }
  double threshold() const override { return threshold_; }
  Result<std::optional<double>> Read() override {
    ++reads_;
    if (value_ < 0) return Unavailable("server down");
    return std::optional<double>(value_.load());
  }

 private:
  const std::string name_;
  const double threshold_;
  std::atomic<double>& value_;
  std::atomic<int>& reads_;
};

class ThrottleTest : public ::testing::Test {
 protected:
  ThrottleTest() {
    settings_.check_interval = seconds(5);
    settings_.wait_interval = seconds(30);
  }
  std::unique_ptr<Throttle> Make() {
    std::vector<std::unique_ptr<HealthSignal>> signals;
    signals.push_back(std::make_unique<ScriptedSignal>("a", 100, a_, reads_));
    signals.push_back(std::make_unique<ScriptedSignal>("b", 2, b_, reads_));
    return std::make_unique<Throttle>("m1", std::move(signals), settings_, clock_,
                                      [this](const std::optional<ThrottleReading>& r) {
                                        std::lock_guard lock(mu_);
                                        reports_.push_back(r ? r->ToString() : "ended");
                                      });
  }
  std::vector<std::string> Reports() {
    std::lock_guard lock(mu_);
    return reports_;
  }
  // Advances the clock past the wait and blocks (real time, up to 10 s) until the throttle
  // has read the signals again and reported or returned.
  void NextCheck(size_t reports_before) {
    clock_.Advance(seconds(30));
    const auto deadline = std::chrono::steady_clock::now() + seconds(10);
    while (Reports().size() == reports_before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  }

  ThrottleSettings settings_;
  FakeClock clock_;
  std::atomic<double> a_{10}, b_{0};
  std::atomic<int> reads_{0};
  std::mutex mu_;
  std::vector<std::string> reports_;
};

TEST_F(ThrottleTest, HealthySignalsAreReadAtMostOncePerCheckInterval) {
  std::unique_ptr<Throttle> t = Make();
  std::stop_source stop;
  ASSERT_TRUE(t->Await(stop.get_token()).ok());
  EXPECT_EQ(reads_, 2);
  ASSERT_TRUE(t->Await(stop.get_token()).ok());
  clock_.Advance(seconds(4));
  ASSERT_TRUE(t->Await(stop.get_token()).ok());
  EXPECT_EQ(reads_, 2) << "read again within the check interval";
  clock_.Advance(seconds(1));
  ASSERT_TRUE(t->Await(stop.get_token()).ok());
  EXPECT_EQ(reads_, 4);
  EXPECT_TRUE(Reports().empty());
}

TEST_F(ThrottleTest, ASignalAtItsThresholdHoldsBatchesUntilItFallsBelow) {
  std::unique_ptr<Throttle> t = Make();
  a_ = 100;  // at the threshold: throttled
  std::stop_source stop;
  std::atomic<bool> passed{false};
  std::jthread batch([&] {
    EXPECT_TRUE(t->Await(stop.get_token()).ok());
    passed = true;
  });
  ASSERT_TRUE(clock_.WaitForSleepers(1));
  EXPECT_FALSE(passed);
  EXPECT_EQ(Reports(), std::vector<std::string>{"a parts is 100, at or above 100"});
  a_ = 160.5;
  NextCheck(1);
  ASSERT_TRUE(clock_.WaitForSleepers(1));
  EXPECT_FALSE(passed);
  EXPECT_EQ(Reports().back(), "a parts is 160.5, at or above 100") << "each reading reported";
  a_ = 99;
  b_ = 7;  // the next signal over its own threshold keeps it throttled
  NextCheck(2);
  ASSERT_TRUE(clock_.WaitForSleepers(1));
  EXPECT_EQ(Reports().back(), "b parts is 7, at or above 2");
  b_ = 1;
  NextCheck(3);
  batch.join();
  EXPECT_TRUE(passed);
  EXPECT_EQ(Reports().size(), 4u);
  EXPECT_EQ(Reports().back(), "ended");
}

TEST_F(ThrottleTest, AStopWhileThrottledReturnsCancelled) {
  std::unique_ptr<Throttle> t = Make();
  a_ = 500;
  std::stop_source stop;
  Status result;
  std::jthread batch([&] { result = t->Await(stop.get_token()); });
  ASSERT_TRUE(clock_.WaitForSleepers(1));
  stop.request_stop();
  batch.join();
  EXPECT_EQ(result.code(), StatusCode::kCancelled);
}

TEST_F(ThrottleTest, ASignalThatCannotBeReadReturnsItsErrorNamingIt) {
  std::unique_ptr<Throttle> t = Make();
  b_ = -1;
  std::stop_source stop;
  Status s = t->Await(stop.get_token());
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "reading the health signal b parts (b): server down");
}

TEST_F(ThrottleTest, NoSignalsNeverWait) {
  Throttle t("m1", {}, settings_, clock_, nullptr);
  std::stop_source stop;
  EXPECT_TRUE(t.empty());
  EXPECT_TRUE(t.Await(stop.get_token()).ok());
}

TEST(ProbeValueTest, ReadsOneNumberOrNullAndRefusesAnythingElse) {
  EXPECT_EQ(*ProbeValue("probe q", "42\n"), std::optional<double>(42));
  EXPECT_EQ(*ProbeValue("probe q", "0.25"), std::optional<double>(0.25));
  EXPECT_EQ(*ProbeValue("probe q", "\\N\n"), std::optional<double>());
  EXPECT_EQ(*ProbeValue("probe q", ""), std::optional<double>());
  Result<std::optional<double>> bad = ProbeValue("probe q", "12\t3\n");
  EXPECT_EQ(bad.status().message(),
            "probe q returned '12\t3'; it must return one number, e.g. SELECT count(*) FROM ...");
  EXPECT_EQ(ProbeValue("probe q", "many").status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace bgm
