#include "web/api.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/logging.h"
#include "core/args.h"
#include "core/chunk_summary.h"
#include "core/readiness.h"
#include "core/summary.h"
#include "web/metrics.h"
#include "web/progress_rate.h"
#include "web/ui_assets.h"

namespace bgm {
namespace {

using nlohmann::json;

constexpr const char* kCollection = "background-migrations";
// Events shown with one migration.
constexpr int kShownEvents = 50;
// Events read to estimate a running migration's rate (enough for a minute of fast batches;
// the estimate stays right when fewer cover the minute, see RowsPerSecond).
constexpr int kRateEvents = 200;
// Events read for a running migration with chunks: its threads commit batches side by side, so
// a minute holds more of them.
constexpr int kChunkedRateEvents = 1000;
// Chunks returned by one page of GET .../{name}/chunks: by default, and at most.
constexpr int kChunkPageDefault = 100;
constexpr int kChunkPageMax = 1000;
// Batch events read per migration for /metrics.
constexpr int kMetricsEvents = 50;
// A skip's or cancel's reason, kept with the migration and in its event.
constexpr size_t kMaxReasonBytes = 2000;

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

ApiResponse JsonResponse(int status, const json& body) {
  ApiResponse r;
  r.status = status;
  r.body = Dump(body);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

const char* ErrorNameFor(StatusCode code) {
  switch (HttpStatusFor(code)) {
    case 400:
      return "invalid request";
    case 404:
      return "not found";
    case 409:
      return "conflict";
    case 503:
      return "store unavailable";
    default:
      return "internal error";
  }
}

ApiResponse StatusResponse(const Status& s) {
  std::string detail = s.message();
  if (HttpStatusFor(s.code()) == 503) {
    detail += "; check that Postgres runs and DATABASE_URL points to it, then try again";
  }
  return ErrorResponse(HttpStatusFor(s.code()), ErrorNameFor(s.code()), detail);
}

ApiResponse NotFoundRoute() {
  return ErrorResponse(404, "not found",
                       "there is no endpoint at this path; the API is under "
                       "/api/background-migrations, the UI at /");
}

ApiResponse NotFoundName() {
  return ErrorResponse(404, "not found",
                       "no background migration has that name (names are 1 to 200 letters, "
                       "digits, '_', '.' or '-'); GET /api/background-migrations lists them");
}

ApiResponse MethodNotAllowed(const char* allow) {
  ApiResponse r = ErrorResponse(405, "method not allowed",
                                std::string("this endpoint answers ") + allow + " only");
  r.headers.emplace_back("Allow", allow);
  return r;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes one path segment; std::nullopt for a malformed escape.
std::optional<std::string> DecodeSegment(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out += s[i];
      continue;
    }
    if (i + 2 >= s.size()) return std::nullopt;
    const int hi = HexValue(s[i + 1]);
    const int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return std::nullopt;
    out += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return out;
}

// "/a/b%2Fc/" -> {"a", "b/c"}; std::nullopt for a target that is not an absolute path or has
// an empty or malformed segment.
std::optional<std::vector<std::string>> PathSegments(std::string_view target) {
  const size_t query = target.find_first_of("?#");
  if (query != std::string_view::npos) target = target.substr(0, query);
  if (target.empty() || target.front() != '/') return std::nullopt;
  target.remove_prefix(1);
  if (!target.empty() && target.back() == '/') target.remove_suffix(1);
  std::vector<std::string> segments;
  if (target.empty()) return segments;
  size_t start = 0;
  while (true) {
    const size_t slash = target.find('/', start);
    const std::string_view raw = target.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (raw.empty()) return std::nullopt;
    std::optional<std::string> decoded = DecodeSegment(raw);
    if (!decoded) return std::nullopt;
    segments.push_back(std::move(*decoded));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return segments;
}

// "a=1&b=x%2Cy" -> {{"a", "1"}, {"b", "x,y"}} from the target's query; std::nullopt for a
// malformed escape.
std::optional<std::vector<std::pair<std::string, std::string>>> QueryParams(
    std::string_view target) {
  std::vector<std::pair<std::string, std::string>> out;
  const size_t mark = target.find('?');
  if (mark == std::string_view::npos) return out;
  std::string_view query = target.substr(mark + 1);
  query = query.substr(0, query.find('#'));
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (pair.empty()) continue;
    const size_t eq = pair.find('=');
    std::optional<std::string> key = DecodeSegment(pair.substr(0, eq));
    std::optional<std::string> value =
        DecodeSegment(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1));
    if (!key || !value) return std::nullopt;
    out.emplace_back(std::move(*key), std::move(*value));
  }
  return out;
}

// A whole decimal number in [lo, hi], or std::nullopt.
std::optional<int> IntParam(const std::string& text, int lo, int hi) {
  if (text.empty() || text.size() > 10) return std::nullopt;
  int64_t v = 0;
  size_t i = 0;
  const bool negative = text[0] == '-';
  if (negative) i = 1;
  if (i == text.size()) return std::nullopt;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    v = v * 10 + (text[i] - '0');
  }
  if (negative) v = -v;
  if (v < lo || v > hi) return std::nullopt;
  return static_cast<int>(v);
}

// Rounds for display: rates to 0.1 row/s, ETAs up to whole seconds.
json RateJson(std::optional<double> rate) {
  return rate ? json(std::round(*rate * 10.0) / 10.0) : json(nullptr);
}
json EtaJson(std::optional<double> eta) {
  return eta ? json(static_cast<int64_t>(std::ceil(*eta))) : json(nullptr);
}

// Whether the body, after whitespace, is empty.
bool BlankBody(const std::string& body) {
  return body.find_first_not_of(" \t\r\n") == std::string::npos;
}

// How deep the arrays and objects of `text` nest, counting outside strings only.
int NestingDepth(std::string_view text) {
  int depth = 0, deepest = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return deepest;
}

// Parses a request body; a 400 response when it is not JSON (or nests too deep).
std::optional<ApiResponse> ParseBody(const std::string& body, const char* example, json& out) {
  if (BlankBody(body)) {
    return ErrorResponse(
        400, "invalid JSON",
        std::string("the body is empty; send a JSON object, for example ") + example);
  }
  if (const int depth = NestingDepth(body); depth > kMaxBodyDepth) {
    return ErrorResponse(400, "invalid JSON",
                         "the body nests arrays and objects " + std::to_string(depth) +
                             " levels deep; at most " + std::to_string(kMaxBodyDepth) +
                             " are accepted; send for example " + example);
  }
  try {
    out = json::parse(body);
    return std::nullopt;
  } catch (const json::parse_error& e) {
    return ErrorResponse(400, "invalid JSON",
                         "the body is not valid JSON (the error is at byte " +
                             std::to_string(e.byte) + "); send for example " + example);
  } catch (const json::exception& e) {  // out_of_range: a number beyond the range of a double
    std::string what = e.what();
    if (const size_t tag_end = what.find("] "); tag_end != std::string::npos) {
      what = what.substr(tag_end + 2);
    }
    return ErrorResponse(400, "invalid JSON",
                         "the body has a value this server cannot read (" + TextExcerpt(what) +
                             "); send for example " + example);
  }
}

// Whether a Content-Type names JSON: "application/json", any case, parameters allowed.
bool IsJsonContentType(std::string_view content_type) {
  content_type = content_type.substr(0, content_type.find(';'));
  while (!content_type.empty() && content_type.back() == ' ') content_type.remove_suffix(1);
  while (!content_type.empty() && content_type.front() == ' ') content_type.remove_prefix(1);
  constexpr std::string_view kJson = "application/json";
  if (content_type.size() != kJson.size()) return false;
  for (size_t i = 0; i < kJson.size(); ++i) {
    const char c = content_type[i];
    if ((c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c) != kJson[i]) return false;
  }
  return true;
}

}  // namespace

int HttpStatusFor(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kFailedPrecondition:
    case StatusCode::kLeaseLost:
      return 409;
    case StatusCode::kUnavailable:
    case StatusCode::kDeadlineExceeded:
    case StatusCode::kResourceExhausted:
    case StatusCode::kCancelled:
      return 503;
    case StatusCode::kInternal:
      return 500;
  }
  return 500;
}

ApiResponse ErrorResponse(int status, const std::string& error, const std::string& detail) {
  return JsonResponse(status, {{"error", error}, {"detail", detail}});
}

bool IsValidMigrationName(std::string_view name) {
  if (name.empty() || name.size() > 200) return false;
  bool only_dots = true;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
    if (c != '.') only_dots = false;
  }
  return !only_dots;
}

ApiHandler::ApiHandler(const ApiOptions& options, StorePool& pool, const Clock& clock)
    : auth_(options.admin_api_key),
      enabled_(options.enabled),
      registry_(*options.registry),
      pool_(pool),
      clock_(clock) {}

ApiResponse ApiHandler::Handle(const ApiRequest& request) const {
  try {
    return Route(request);
  } catch (const std::exception& e) {
    spdlog::error("web: {} request failed unexpectedly: {}", request.method, e.what());
    return ErrorResponse(500, "internal error",
                         "the server failed unexpectedly; its log has the details");
  }
}

ApiResponse ApiHandler::Route(const ApiRequest& request) const {
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  const bool get = method == "GET";
  std::optional<std::vector<std::string>> path = PathSegments(request.target);
  if (!path) return NotFoundRoute();
  const std::vector<std::string>& seg = *path;

  // The UI.
  if (seg.empty() || (seg.size() == 1 && seg[0] == "index.html") ||
      (seg.size() == 2 && seg[0] == "ui")) {
    const EmbeddedFile* file = FindUiFile(seg.size() == 2 ? seg[1] : "index.html");
    if (file == nullptr) return NotFoundRoute();
    if (!get) return MethodNotAllowed("GET");
    ApiResponse r;
    r.content_type = std::string(UiContentType(file->name));
    r.body = std::string(file->contents);
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
  }
  if (seg.size() == 1 && seg[0] == "metrics") {
    return get ? Metrics() : MethodNotAllowed("GET");
  }
  if (seg.empty() || seg[0] != "api") return NotFoundRoute();
  if (seg.size() == 2 && seg[1] == "health") return get ? Health() : MethodNotAllowed("GET");
  if (seg.size() == 2 && seg[1] == "events") {
    return get ? AllEvents(request.target) : MethodNotAllowed("GET");
  }
  if (seg.size() < 2 || seg[1] != kCollection || seg.size() > 4) return NotFoundRoute();
  if (seg.size() == 2) return get ? List() : MethodNotAllowed("GET");
  if (seg.size() == 3 && seg[2] == "status") return get ? Summary() : MethodNotAllowed("GET");
  if (!IsValidMigrationName(seg[2])) return NotFoundName();
  const std::string& name = seg[2];
  if (seg.size() == 3) return get ? GetOne(name) : MethodNotAllowed("GET");
  if (seg[3] == "chunks") return get ? Chunks(name, request.target) : MethodNotAllowed("GET");

  const std::string& action = seg[3];
  const char* allowed = nullptr;
  if (action == "retry" || action == "pause" || action == "resume" || action == "skip" ||
      action == "cancel") {
    allowed = "POST";
  } else if (action == "args") {
    allowed = "PUT";
  } else {
    return NotFoundRoute();
  }
  if (method != allowed) return MethodNotAllowed(allowed);
  return Change(action, name, request);
}

ApiResponse ApiHandler::Health() const {
  Status s;
  Result<BorrowedStore> store = pool_.Borrow();
  if (!store.ok()) {
    s = store.status();
  } else if (Result<std::vector<MigrationRow>> rows = store->Check((*store)->List()); !rows.ok()) {
    s = rows.status();
  }
  if (!s.ok()) {
    return JsonResponse(
        503, {{"status", "unavailable"}, {"error", "store unavailable"}, {"detail", s.message()}});
  }
  return JsonResponse(200, {{"status", "ok"}});
}

namespace {

// A row as the API shows it: the control-table columns, the description of its script,
// (when running) its rate and ETA, and `chunks`: null for a migration without chunks, else
// their summary (`chunks`, see ChunkSummaryJson) with the rate of each worker.
json RowJson(const MigrationRow& row, const Registry& registry,
             const std::vector<MigrationEvent>& events, Clock::TimePoint now, json chunks) {
  json j = row.ToJson();
  const MigrationSpec* spec = registry.Find(row.script);
  j["description"] = spec ? json(spec->description) : json(nullptr);
  const bool running = row.status == MigrationStatus::kRunning;
  std::optional<double> rate;
  if (running) rate = RowsPerSecond(BatchSamples(events), now);
  j["rate_rows_per_second"] = RateJson(rate);
  j["eta_seconds"] = EtaJson(EtaSeconds(row.rows_processed, row.rows_total_estimate, rate));
  if (chunks.is_object()) {
    json workers = json::array();
    if (running) {
      for (const WorkerRate& w : RatesByWorker(events, now)) {
        workers.push_back({{"worker_id", w.worker_id},
                           {"rate_rows_per_second", RateJson(w.rows_per_second)},
                           {"rows", w.rows},
                           {"batches", w.batches}});
      }
    }
    chunks["workers"] = std::move(workers);
  }
  j["chunks"] = std::move(chunks);
  return j;
}

// The chunk summary of `name` (null when `counts` has none for it).
Result<json> ChunkSummary(BorrowedStore& store, const std::string& name,
                          const std::map<std::string, ChunkCounts>& counts) {
  const auto it = counts.find(name);
  if (it == counts.end()) return json(nullptr);
  std::vector<Chunk> active;
  if (it->second.running + it->second.failed > 0) {
    Result<std::vector<Chunk>> listed = store.Check(store->ListChunks(name, ActiveChunksFilter()));
    if (!listed.ok()) return listed.status();
    active = std::move(*listed);
  }
  return ChunkSummaryJson(it->second, active);
}

int RateEventsFor(const std::string& name, const std::map<std::string, ChunkCounts>& counts) {
  return counts.count(name) ? kChunkedRateEvents : kRateEvents;
}

}  // namespace

ApiResponse ApiHandler::List() const {
  Result<BorrowedStore> store = pool_.Borrow();
  if (!store.ok()) return StatusResponse(store.status());
  Result<std::vector<MigrationRow>> rows = store->Check((*store)->List());
  if (!rows.ok()) return StatusResponse(rows.status());
  JudgeReadiness(*rows, registry_);
  Result<std::map<std::string, ChunkCounts>> counts = store->Check((*store)->CountChunks());
  if (!counts.ok()) return StatusResponse(counts.status());
  const Clock::TimePoint now = clock_.Now();
  json list = json::array();
  for (const MigrationRow& row : *rows) {
    std::vector<MigrationEvent> events;
    if (row.status == MigrationStatus::kRunning) {
      Result<std::vector<MigrationEvent>> e =
          store->Check((*store)->Events(row.name, RateEventsFor(row.name, *counts)));
      if (!e.ok()) return StatusResponse(e.status());
      events = std::move(*e);
    }
    Result<json> chunks = ChunkSummary(*store, row.name, *counts);
    if (!chunks.ok()) return StatusResponse(chunks.status());
    list.push_back(RowJson(row, registry_, events, now, std::move(*chunks)));
  }
  return JsonResponse(200, {{"enabled", enabled_},
                            {"migrations", std::move(list)},
                            {"summary", Summarize(*rows, enabled_)}});
}

ApiResponse ApiHandler::Summary() const {
  Result<BorrowedStore> store = pool_.Borrow();
  if (!store.ok()) return StatusResponse(store.status());
  Result<std::vector<MigrationRow>> rows = store->Check((*store)->List());
  if (!rows.ok()) return StatusResponse(rows.status());
  JudgeReadiness(*rows, registry_);
  return JsonResponse(200, Summarize(*rows, enabled_));
}

ApiResponse ApiHandler::GetOne(const std::string& name) const {
  Result<BorrowedStore> store = pool_.Borrow();
  if (!store.ok()) return StatusResponse(store.status());
  Result<MigrationRow> row = store->Check((*store)->Get(name));
  if (!row.ok()) return StatusResponse(row.status());
  if (row->status == MigrationStatus::kPending) {  // blocked, or waiting for a prerequisite?
    Result<std::vector<MigrationRow>> rows = store->Check((*store)->List());
    if (!rows.ok()) return StatusResponse(rows.status());
    JudgeReadiness(*rows, registry_);
    for (MigrationRow& judged : *rows) {
      if (judged.name == name) row = std::move(judged);
    }
  }
  Result<std::map<std::string, ChunkCounts>> counts = store->Check((*store)->CountChunks());
  if (!counts.ok()) return StatusResponse(counts.status());
  const int limit =
      row->status == MigrationStatus::kRunning ? RateEventsFor(name, *counts) : kShownEvents;
  Result<std::vector<MigrationEvent>> events = store->Check((*store)->Events(name, limit));
  if (!events.ok()) return StatusResponse(events.status());
  Result<json> chunks = ChunkSummary(*store, name, *counts);
  if (!chunks.ok()) return StatusResponse(chunks.status());
  json j = RowJson(*row, registry_, *events, clock_.Now(), std::move(*chunks));
  json shown = json::array();
  for (size_t i = 0; i < events->size() && i < static_cast<size_t>(kShownEvents); ++i) {
    shown.push_back((*events)[i].ToJson());
  }
  j["events"] = std::move(shown);
  return JsonResponse(200, j);
}

namespace {

// A query parameter's integer in [min, max] into *out, or the 400 whose detail is `rule` (e.g.
// "limit must be 1 to 1000"), the value given and `usage`.
std::optional<ApiResponse> IntQuery(const std::string& value, int min, int max,
                                    const std::string& rule, const char* usage, int* out) {
  std::optional<int> v = IntParam(value, min, max);
  if (!v) {
    return ErrorResponse(400, "invalid query",
                         rule + ", got '" + TextExcerpt(value, 100) + "'; " + usage);
  }
  *out = *v;
  return std::nullopt;
}

// "a,b,c" -> {"a", "b", "c"}; the first item `valid` refuses, as the 400 "<rule> '<item>'".
std::optional<ApiResponse> ListQuery(const std::string& value,
                                     const std::function<bool(const std::string&)>& valid,
                                     const std::string& rule, const char* usage,
                                     std::vector<std::string>* out) {
  std::string_view rest = value;
  while (true) {
    const size_t comma = rest.find(',');
    std::string one(rest.substr(0, comma));
    if (!valid(one)) {
      return ErrorResponse(400, "invalid query",
                           rule + " '" + TextExcerpt(one, 100) + "'; " + usage);
    }
    out->push_back(std::move(one));
    if (comma == std::string_view::npos) return std::nullopt;
    rest.remove_prefix(comma + 1);
  }
}

}  // namespace

ApiResponse ApiHandler::AllEvents(const std::string& target) const {
  const char* kUsage =
      "query parameters: migration (a migration name; default all), kind (event kinds such as "
      "batch, failed, throttled, several separated by commas; default all), before (an event id: "
      "the page holds older ones; default the newest) and limit (1 to 1000, default 100)";
  std::optional<std::vector<std::pair<std::string, std::string>>> params = QueryParams(target);
  if (!params)
    return ErrorResponse(400, "invalid query", std::string("malformed %-escape; ") + kUsage);
  EventFilter filter{.migration = "", .kinds = {}, .before = 0, .limit = kChunkPageDefault};
  for (const auto& [key, value] : *params) {
    if (key == "migration") {
      if (!IsValidMigrationName(value)) {
        return ErrorResponse(
            400, "invalid query",
            "migration must be a migration name, got '" + TextExcerpt(value, 100) + "'; " + kUsage);
      }
      filter.migration = value;
    } else if (key == "kind") {
      auto word = [](const std::string& k) {
        return !k.empty() && k.size() <= 40 && std::all_of(k.begin(), k.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || c == '_';
        });
      };
      if (auto bad = ListQuery(value, word, "unknown event kind (kinds are lowercase words with _)",
                               kUsage, &filter.kinds)) {
        return *bad;
      }
    } else if (key == "before") {
      int before = 0;
      if (auto bad = IntQuery(value, 1, std::numeric_limits<int>::max(),
                              "before must be an event id (1 or more)", kUsage, &before)) {
        return *bad;
      }
      filter.before = before;
    } else if (key == "limit") {
      if (auto bad =
              IntQuery(value, 1, kChunkPageMax, "limit must be 1 to 1000", kUsage, &filter.limit)) {
        return *bad;
      }
    } else {
      return ErrorResponse(400, "invalid query",
                           "unknown query parameter '" + TextExcerpt(key, 100) + "'; " + kUsage);
    }
  }
  Result<BorrowedStore> store = pool_.Borrow();
  if (!store.ok()) return StatusResponse(store.status());
  Result<std::vector<MigrationEvent>> events = store->Check((*store)->AllEvents(filter));
  if (!events.ok()) return StatusResponse(events.status());
  json out = json::array();
  for (const MigrationEvent& e : *events) out.push_back(e.ToJson());
  // The next page: older than the last one shown, when the page was full.
  const json next = static_cast<int>(events->size()) == filter.limit && !events->empty()
                        ? json(events->back().id)
                        : json(nullptr);
  return JsonResponse(200, {{"events", std::move(out)}, {"next_before", next}});
}

ApiResponse ApiHandler::Chunks(const std::string& name, const std::string& target) const {
  const char* kUsage =
      "query parameters: status (pending, running, done or failed, several separated by "
      "commas; default all), after (a chunk number: the page starts after it; default -1) and "
      "limit (1 to 1000, default 100)";
  std::optional<std::vector<std::pair<std::string, std::string>>> params = QueryParams(target);
  if (!params)
    return ErrorResponse(400, "invalid query", std::string("malformed %-escape; ") + kUsage);
  ChunkFilter filter{.statuses = {}, .after = -1, .limit = kChunkPageDefault};
  for (const auto& [key, value] : *params) {
    if (key == "status") {
      auto known = [](const std::string& st) {
        return st == "pending" || st == "running" || st == "done" || st == "failed";
      };
      if (auto bad = ListQuery(value, known, "unknown chunk status", kUsage, &filter.statuses)) {
        return *bad;
      }
    } else if (key == "after") {
      if (auto bad = IntQuery(value, -1, std::numeric_limits<int>::max(),
                              "after must be a chunk number (-1 or more)", kUsage, &filter.after)) {
        return *bad;
      }
    } else if (key == "limit") {
      if (auto bad =
              IntQuery(value, 1, kChunkPageMax, "limit must be 1 to 1000", kUsage, &filter.limit)) {
        return *bad;
      }
    } else {
      return ErrorResponse(400, "invalid query",
                           "unknown query parameter '" + TextExcerpt(key, 100) + "'; " + kUsage);
    }
  }
  Result<BorrowedStore> store = pool_.Borrow();
  if (!store.ok()) return StatusResponse(store.status());
  Result<MigrationRow> row = store->Check((*store)->Get(name));  // 404 for an unknown name
  if (!row.ok()) return StatusResponse(row.status());
  Result<std::map<std::string, ChunkCounts>> counts = store->Check((*store)->CountChunks());
  if (!counts.ok()) return StatusResponse(counts.status());
  const int page = filter.limit;
  filter.limit = page + 1;  // one more tells whether another page follows
  Result<std::vector<Chunk>> chunks = store->Check((*store)->ListChunks(name, filter));
  if (!chunks.ok()) return StatusResponse(chunks.status());
  const bool more = static_cast<int>(chunks->size()) > page;
  if (more) chunks->pop_back();
  const auto it = counts->find(name);
  const ChunkCounts c = it == counts->end() ? ChunkCounts{} : it->second;
  json list = json::array();
  for (const Chunk& chunk : *chunks) list.push_back(ChunkJson(chunk));
  return JsonResponse(200, {{"name", name},
                            {"counts",
                             {{"pending", c.pending},
                              {"running", c.running},
                              {"done", c.done},
                              {"failed", c.failed},
                              {"total", c.total()}}},
                            {"chunks", std::move(list)},
                            {"next_after", more ? json(chunks->back().chunk) : json(nullptr)}});
}

ApiResponse ApiHandler::Metrics() const {
  Result<BorrowedStore> store = pool_.Borrow();
  if (!store.ok()) return StatusResponse(store.status());
  Result<std::vector<MigrationRow>> rows = store->Check((*store)->List());
  if (!rows.ok()) return StatusResponse(rows.status());
  JudgeReadiness(*rows, registry_);
  Result<std::map<std::string, ChunkCounts>> counts = store->Check((*store)->CountChunks());
  if (!counts.ok()) return StatusResponse(counts.status());
  std::vector<MigrationMetrics> inputs;
  for (const MigrationRow& row : *rows) {
    Result<std::vector<MigrationEvent>> events =
        store->Check((*store)->Events(row.name, kMetricsEvents));
    if (!events.ok()) return StatusResponse(events.status());
    MigrationMetrics m{row, {}, std::nullopt};
    if (const auto c = counts->find(row.name); c != counts->end()) m.chunks = c->second;
    for (const MigrationEvent& e : *events) {  // newest first
      if (e.kind != "batch" || !e.detail.is_object()) continue;
      const auto ms = e.detail.find("ms");
      if (ms != e.detail.end() && ms->is_number_integer()) {
        m.recent_batch_ms.push_back(ms->get<int64_t>());
      }
    }
    inputs.push_back(std::move(m));
  }
  ApiResponse r;
  r.content_type = kMetricsContentType;
  r.body = RenderMetrics(inputs, enabled_);
  r.headers.emplace_back("Cache-Control", "no-store");
  return r;
}

ApiResponse ApiHandler::Change(const std::string& action, const std::string& name,
                               const ApiRequest& request) const {
  if (request.body.size() > kMaxBodyBytes) {
    return ErrorResponse(413, "body too large", "request bodies are limited to 1 MiB");
  }
  switch (auth_.Check(request.authorization)) {
    case AuthOutcome::kAllowed:
      break;
    case AuthOutcome::kNotConfigured:
      return ErrorResponse(403, "changes disabled",
                           "changes through the API are disabled: set ADMIN_API_KEY for the "
                           "server (bgmigrate web or up) and send it as 'Authorization: Bearer "
                           "<key>'");
    case AuthOutcome::kMissing: {
      spdlog::warn("web: refused {} of {}: no bearer key", action, name);
      ApiResponse r = ErrorResponse(401, "missing API key",
                                    "send the header 'Authorization: Bearer <ADMIN_API_KEY>'");
      r.headers.emplace_back("WWW-Authenticate", "Bearer");
      return r;
    }
    case AuthOutcome::kInvalid: {
      spdlog::warn("web: refused {} of {}: wrong bearer key", action, name);
      ApiResponse r =
          ErrorResponse(401, "invalid API key", "the bearer key is not the server's ADMIN_API_KEY");
      r.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return r;
    }
  }

  // The body, checked before any store is asked.
  if (!BlankBody(request.body) && !request.content_type.empty() &&
      !IsJsonContentType(request.content_type)) {
    return ErrorResponse(415, "unsupported media type",
                         "the body must be JSON sent with 'Content-Type: application/json', "
                         "got Content-Type '" +
                             TextExcerpt(request.content_type, 100) + "'");
  }
  bool from_start = false;
  json args;
  std::string reason;
  if (action == "retry" && !BlankBody(request.body)) {
    json body;
    if (auto bad = ParseBody(request.body, "{\"fromStart\": true}", body)) return *bad;
    if (!body.is_object()) {
      return ErrorResponse(400, "invalid body",
                           "the body must be a JSON object such as {\"fromStart\": true}, or "
                           "empty; got " +
                               JsonExcerpt(body));
    }
    for (const auto& [key, value] : body.items()) {
      if (key != "fromStart") {
        return ErrorResponse(400, "invalid body",
                             "unknown field '" + TextExcerpt(key, 100) +
                                 "'; the body may only have fromStart (true or false)");
      }
      if (!value.is_boolean()) {
        return ErrorResponse(400, "invalid body",
                             "fromStart must be true or false, got " + JsonExcerpt(value));
      }
      from_start = value.get<bool>();
    }
  } else if (action == "skip" || (action == "cancel" && !BlankBody(request.body))) {
    // {"reason": "..."}: required for a skip (it is the record of why no row was copied).
    const bool skip = action == "skip";
    json body;
    if (BlankBody(request.body)) {
      return ErrorResponse(400, "invalid body",
                           "skip needs a reason: send {\"reason\": \"migrated by hand in 2024\"}");
    }
    if (auto bad = ParseBody(request.body, "{\"reason\": \"...\"}", body)) return *bad;
    if (!body.is_object()) {
      return ErrorResponse(
          400, "invalid body",
          "the body must be a JSON object such as {\"reason\": \"...\"}, got " + JsonExcerpt(body));
    }
    for (const auto& [key, value] : body.items()) {
      if (key != "reason") {
        return ErrorResponse(400, "invalid body",
                             "unknown field '" + TextExcerpt(key, 100) +
                                 "'; the body may only have reason (a string)");
      }
      if (!value.is_string()) {
        return ErrorResponse(400, "invalid body",
                             "reason must be a string, got " + JsonExcerpt(value));
      }
      reason = value.get<std::string>();
    }
    if (skip && reason.find_first_not_of(" \t\r\n") == std::string::npos) {
      return ErrorResponse(400, "invalid body",
                           "skip needs a reason that is not blank: say why no row needs "
                           "copying (it is kept with the migration and in its events)");
    }
    if (reason.size() > kMaxReasonBytes) {
      return ErrorResponse(400, "invalid body",
                           "reason is " + std::to_string(reason.size()) + " bytes; keep it under " +
                               std::to_string(kMaxReasonBytes));
    }
  } else if (action == "args") {
    if (auto bad = ParseBody(request.body, "{\"batchSize\": 2500}", args)) return *bad;
    if (!args.is_object()) {
      return ErrorResponse(
          400, "invalid args",
          "args must be a JSON object such as {\"batchSize\": 2500}, got " + JsonExcerpt(args));
    }
  } else if (!BlankBody(request.body)) {
    return ErrorResponse(400, "invalid body",
                         "POST " + action +
                             " takes no body; send it empty (unknown fields are "
                             "refused, not ignored)");
  }

  Result<BorrowedStore> store = pool_.Borrow();
  if (!store.ok()) return StatusResponse(store.status());
  std::string message;
  Status s;
  if (action == "retry") {
    s = store->Check((*store)->Retry(name, from_start, kApiActor));
    message = name + " will run again " +
              (from_start ? std::string("from the start") : std::string("from its saved cursor"));
  } else if (action == "pause") {
    s = store->Check((*store)->Pause(name, kApiActor));
    message = name + " paused; a running batch finishes first";
  } else if (action == "resume") {
    s = store->Check((*store)->Resume(name, kApiActor));
    message = name + " resumed";
  } else if (action == "skip") {
    s = store->Check((*store)->Skip(name, reason, kApiActor));
    message = name + " skipped: marked done without running; migrations that need it may run";
  } else if (action == "cancel") {
    s = store->Check((*store)->Cancel(name, reason, kApiActor));
    message = name + " cancelled; a running batch finishes first, the cursor is kept (retry " +
              "runs it again)";
  } else {  // args
    Result<MigrationRow> row = store->Check((*store)->Get(name));
    if (!row.ok()) return StatusResponse(row.status());
    const MigrationSpec* spec = registry_.Find(row->script);
    if (spec == nullptr) {
      return ErrorResponse(409, "unknown script",
                           "migration " + name + " runs the script '" + row->script +
                               "', which this server does not know, so its args cannot be "
                               "checked; known scripts: " +
                               registry_.ScriptNames());
    }
    if (Status v = spec->create()->Validate(args); !v.ok()) {
      return ErrorResponse(400, "invalid args", v.message());
    }
    s = store->Check((*store)->SetArgs(name, args, kApiActor));
    message = "args of " + name + " set to " + JsonExcerpt(args) +
              "; they take effect when it next starts";
  }
  if (!s.ok()) {
    spdlog::info("web: {} of {} refused: {}", action, name, s.message());
    return StatusResponse(s);
  }
  spdlog::info("web: {} of {} by {}{}", action, name, kApiActor,
               action == "retry" && from_start ? " (from the start)" : "");

  Result<MigrationRow> row = store->Check((*store)->Get(name));
  if (!row.ok()) return StatusResponse(row.status());
  Result<std::map<std::string, ChunkCounts>> counts = store->Check((*store)->CountChunks());
  if (!counts.ok()) return StatusResponse(counts.status());
  Result<json> chunks = ChunkSummary(*store, name, *counts);
  if (!chunks.ok()) return StatusResponse(chunks.status());
  return JsonResponse(
      200, {{"message", message},
            {"migration", RowJson(*row, registry_, {}, clock_.Now(), std::move(*chunks))}});
}

}  // namespace bgm
