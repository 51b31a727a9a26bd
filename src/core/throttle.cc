#include "core/throttle.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <sstream>

namespace bgm {
namespace {

// 160 -> "160", 2.5 -> "2.5", 1610612736 -> "1610612736": no exponent, at most 1 decimal.
std::string NumberText(double v) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(std::fabs(v - std::round(v)) < 0.05 ? 0 : 1);
  out << v;
  return out.str();
}

}  // namespace

nlohmann::json ThrottleReading::ToJson() const {
  return {{"signal", signal}, {"what", what}, {"value", value}, {"threshold", threshold}};
}

std::string ThrottleReading::ToString() const {
  return what + " is " + NumberText(value) + ", at or above " + NumberText(threshold);
}

Throttle::Throttle(std::string name, std::vector<std::unique_ptr<HealthSignal>> signals,
                   const ThrottleSettings& settings, Clock& clock, Reporter reporter)
    : name_(std::move(name)),
      signals_(std::move(signals)),
      settings_(settings),
      clock_(clock),
      reporter_(std::move(reporter)) {}

Result<std::optional<ThrottleReading>> Throttle::ReadAll() {
  for (const std::unique_ptr<HealthSignal>& s : signals_) {
    Result<std::optional<double>> v = s->Read();
    if (!v.ok()) {
      return Status(v.status().code(), "reading the health signal " + s->what() + " (" +
                                           s->signal() + "): " + v.status().message());
    }
    if (v->has_value() && **v >= s->threshold()) {
      return std::optional<ThrottleReading>(
          ThrottleReading{s->signal(), s->what(), **v, s->threshold()});
    }
  }
  return std::optional<ThrottleReading>();
}

Status Throttle::Await(std::stop_token stop) {
  if (signals_.empty()) return Status::Ok();
  std::lock_guard<std::mutex> lock(mu_);
  while (true) {
    if (stop.stop_requested()) return Cancelled("stop requested");
    if (healthy_at_ && clock_.Now() - *healthy_at_ < settings_.check_interval) {
      return Status::Ok();
    }
    Result<std::optional<ThrottleReading>> over = ReadAll();
    if (!over.ok()) return over.status();
    if (!over->has_value()) {
      healthy_at_ = clock_.Now();
      if (throttled_since_) {
        const double s = std::chrono::duration<double>(clock_.Now() - *throttled_since_).count();
        spdlog::info(
            "[Background Migration] {}: throttling ended after {:.0f} s, every health "
            "signal is below its threshold",
            name_, s);
        throttled_since_.reset();
        if (reporter_) reporter_(std::nullopt);
      }
      return Status::Ok();
    }
    healthy_at_.reset();
    if (!throttled_since_) {
      throttled_since_ = clock_.Now();
      spdlog::warn(
          "[Background Migration] {} is throttled: {}; its batches wait, the signals "
          "are read again every {:.0f} s",
          name_, (*over)->ToString(),
          std::chrono::duration<double>(settings_.wait_interval).count());
    }
    if (reporter_) reporter_(*over);
    if (!clock_.SleepFor(settings_.wait_interval, stop)) return Cancelled("stop requested");
  }
}

}  // namespace bgm
