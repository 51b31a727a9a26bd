#include "web/progress_rate.h"

#include <algorithm>
#include <map>

#include "common/timestamp.h"

namespace bgm {

std::vector<BatchSample> BatchSamples(const std::vector<MigrationEvent>& events) {
  std::vector<BatchSample> out;
  for (const MigrationEvent& e : events) {
    if (e.kind != "batch" || !e.detail.is_object()) continue;
    const auto rows = e.detail.find("rows");
    if (rows == e.detail.end() || !rows->is_number_integer()) continue;
    const Result<int64_t> at = ParseTimestampMillis(e.at);
    if (!at.ok()) continue;
    BatchSample s;
    s.at = Clock::TimePoint(std::chrono::milliseconds(*at));
    s.rows = rows->get<int64_t>();
    const auto ms = e.detail.find("ms");
    if (ms != e.detail.end() && ms->is_number_integer()) s.duration_ms = ms->get<int64_t>();
    out.push_back(s);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const BatchSample& a, const BatchSample& b) { return a.at < b.at; });
  return out;
}

std::optional<double> RowsPerSecond(const std::vector<BatchSample>& samples, Clock::TimePoint now,
                                    Clock::Duration window) {
  std::vector<BatchSample> recent;
  for (const BatchSample& s : samples) {
    BatchSample clamped = s;
    clamped.at = std::min(s.at, now);
    if (clamped.at > now - window) recent.push_back(clamped);
  }
  if (recent.empty()) return std::nullopt;
  std::sort(recent.begin(), recent.end(),
            [](const BatchSample& a, const BatchSample& b) { return a.at < b.at; });
  if (recent.size() == 1) {
    if (recent[0].duration_ms <= 0) return std::nullopt;
    return static_cast<double>(recent[0].rows) * 1000.0 /
           static_cast<double>(recent[0].duration_ms);
  }
  const auto span = recent.back().at - recent.front().at;
  if (span.count() <= 0) return std::nullopt;
  int64_t rows = 0;
  for (size_t i = 1; i < recent.size(); ++i) rows += recent[i].rows;
  return static_cast<double>(rows) * 1000.0 / static_cast<double>(span.count());
}

std::vector<WorkerRate> RatesByWorker(const std::vector<MigrationEvent>& events,
                                      Clock::TimePoint now, Clock::Duration window) {
  std::map<std::string, std::vector<MigrationEvent>> by_worker;
  for (const MigrationEvent& e : events) {
    if (e.kind == "batch" && e.worker_id) by_worker[*e.worker_id].push_back(e);
  }
  std::vector<WorkerRate> out;
  for (const auto& [worker, own] : by_worker) {
    WorkerRate w;
    w.worker_id = worker;
    const std::vector<BatchSample> samples = BatchSamples(own);
    for (const BatchSample& s : samples) {
      if (std::min(s.at, now) <= now - window) continue;
      w.rows += s.rows;
      ++w.batches;
    }
    if (w.batches == 0) continue;
    w.rows_per_second = RowsPerSecond(samples, now, window);
    out.push_back(std::move(w));
  }
  return out;
}

std::optional<double> EtaSeconds(int64_t processed, std::optional<int64_t> total,
                                 std::optional<double> rate) {
  if (!total || !rate || *rate <= 0) return std::nullopt;
  const int64_t left = std::max<int64_t>(0, *total - processed);
  return static_cast<double>(left) / *rate;
}

}  // namespace bgm
