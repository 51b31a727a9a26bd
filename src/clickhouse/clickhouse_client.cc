#include "clickhouse/clickhouse_client.h"

#include <sys/socket.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <mutex>

#include "clickhouse/node_list.h"
#include "common/logging.h"

namespace bgm {
namespace {

constexpr size_t kUploadBufferBytes = 256 * 1024;    // curl's read-callback buffer
constexpr size_t kGzipInputBytes = 256 * 1024;       // uncompressed bytes per source Read
constexpr int kGzipLevel = 1;                        // fast: the link is usually not the limit
constexpr size_t kSmallResponseBytes = 1024 * 1024;  // Execute/Insert keep at most this much
constexpr size_t kTailBytes = 64 * 1024;             // kept past the cap to find exceptions
constexpr const char* kUserAgent = "bgmigrate/0.1";

using SteadyClock = std::chrono::steady_clock;

std::atomic<int64_t> g_stall_ms{30000};

std::string SecondsText(std::chrono::milliseconds d) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", static_cast<double>(d.count()) / 1000.0);
  return buf;
}

Status CurlGlobalInit() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) {
    return Internal(std::string("libcurl could not initialise: ") + curl_easy_strerror(result));
  }
  return Status::Ok();
}

struct CurlUrlDeleter {
  void operator()(CURLU* u) const noexcept { curl_url_cleanup(u); }
};
using CurlUrlPtr = std::unique_ptr<CURLU, CurlUrlDeleter>;

// One part of a parsed URL ("" when absent).
std::string UrlPart(CURLU* u, CURLUPart part, unsigned int flags = 0) {
  char* value = nullptr;
  if (curl_url_get(u, part, &value, flags) != CURLUE_OK || value == nullptr) return "";
  std::string out(value);
  curl_free(value);
  return out;
}

// Percent-encodes everything but RFC 3986 unreserved characters.
std::string UrlEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0x0F]);
    }
  }
  return out;
}

bool IsSettingName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

bool HasLineBreak(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    auto lower = [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; };
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n')) {
    s.remove_suffix(1);
  }
  return s;
}

// Compresses what an InsertSource yields into a gzip stream, on demand, in bounded memory.
class GzipDeflater {
 public:
  GzipDeflater() : input_(kGzipInputBytes) {}
  GzipDeflater(const GzipDeflater&) = delete;
  GzipDeflater& operator=(const GzipDeflater&) = delete;
  ~GzipDeflater() {
    if (initialized_) deflateEnd(&z_);
  }

  Status Init() {
    // windowBits 15 + 16: a gzip header and trailer rather than a zlib one.
    if (deflateInit2(&z_, kGzipLevel, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
      return Internal("zlib could not initialise gzip compression");
    }
    initialized_ = true;
    return Status::Ok();
  }

  // Fills `out` with up to `capacity` compressed bytes; 0 when the stream is complete.
  Result<size_t> Read(InsertSource& source, char* out, size_t capacity) {
    if (finished_) return size_t{0};
    const uInt cap = static_cast<uInt>(std::min<size_t>(capacity, UINT_MAX));
    z_.next_out = reinterpret_cast<Bytef*>(out);
    z_.avail_out = cap;
    while (z_.avail_out > 0) {
      if (z_.avail_in == 0 && !input_done_) {
        // Hand over what is compressed so far before blocking on the source again.
        if (z_.avail_out < cap) break;
        Result<size_t> n = source.Read(input_.data(), input_.size());
        if (!n.ok()) return n.status();
        if (*n > input_.size()) return Internal("insert source returned more bytes than asked");
        if (*n == 0) input_done_ = true;
        z_.next_in = reinterpret_cast<Bytef*>(input_.data());
        z_.avail_in = static_cast<uInt>(*n);
      }
      const int rc = deflate(&z_, input_done_ ? Z_FINISH : Z_NO_FLUSH);
      if (rc == Z_STREAM_END) {
        finished_ = true;
        break;
      }
      if (rc != Z_OK && rc != Z_BUF_ERROR) {
        return Internal("gzip compression failed (zlib error " + std::to_string(rc) + ")");
      }
    }
    return static_cast<size_t>(cap - z_.avail_out);
  }

 private:
  z_stream z_{};
  std::vector<char> input_;
  bool initialized_ = false;
  bool input_done_ = false;
  bool finished_ = false;
};

// Makes every close of a connection abortive (RST instead of FIN). ClickHouse 18.16 takes a FIN
// in the middle of a chunked request body as the end of the body and stores the rows received so
// far, so an insert aborted by its source (or by a timeout) would commit a truncated batch; a RST
// makes the server fail the insert instead. Measured on 18.16: 1000 rows then FIN -> 1000 rows
// stored, then RST -> 0. Closing an idle keep-alive connection this way is harmless.
int AbortiveCloseSocket(void* /*clientp*/, curl_socket_t fd, curlsocktype purpose) {
  if (purpose == CURLSOCKTYPE_IPCXN) {
    struct linger abortive {};
    abortive.l_onoff = 1;
    abortive.l_linger = 0;
    if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &abortive, sizeof abortive) != 0) {
      return CURL_SOCKOPT_ERROR;
    }
  }
  return CURL_SOCKOPT_OK;
}

// State shared with the libcurl callbacks for one exchange.
struct Request {
  InsertSource* source = nullptr;
  GzipDeflater* gzip = nullptr;
  Status source_status;   // why the source stopped the upload
  Status callback_error;  // an exception caught inside a callback
  std::string* response = nullptr;
  size_t max_response_bytes = 0;
  bool overflowed = false;
  std::string tail;  // the last bytes past max_response_bytes
  std::optional<int> exception_code;
  std::string exception_tag;
  char error_buffer[CURL_ERROR_SIZE] = {};
  // A connection was made or reused for the request (or its body was read): from then on the
  // node may have seen some of it.
  bool connected = false;
  // Stall detection: the last time a byte moved (or our own source handed over data), and the
  // check that runs after half the stall timeout of silence (null: no check).
  std::chrono::milliseconds stall{0};
  std::function<Status()> check_alive;
  SteadyClock::time_point last_activity = SteadyClock::now();
  curl_off_t last_up = 0, last_down = 0;
  Status stalled;  // why the check failed
};

int XferInfoCallback(void* userdata, curl_off_t /*dltotal*/, curl_off_t dlnow,
                     curl_off_t /*ultotal*/, curl_off_t ulnow) {
  auto* r = static_cast<Request*>(userdata);
  const auto now = SteadyClock::now();
  if (dlnow != r->last_down || ulnow != r->last_up) {
    r->last_down = dlnow;
    r->last_up = ulnow;
    r->last_activity = now;
    return 0;
  }
  if (!r->check_alive || now - r->last_activity < r->stall / 2) return 0;
  try {
    Status alive = r->check_alive();
    if (alive.ok()) {
      r->last_activity = SteadyClock::now();
      return 0;
    }
    r->stalled = std::move(alive);
  } catch (const std::exception& e) {
    r->stalled = Internal(std::string("the stall check failed: ") + e.what());
  }
  return 1;  // abort the transfer: CURLE_ABORTED_BY_CALLBACK
}

// Called once a connection is established or reused, before the request is sent on it.
int PrereqCallback(void* userdata, char* /*primary_ip*/, char* /*local_ip*/, int /*primary_port*/,
                   int /*local_port*/) {
  static_cast<Request*>(userdata)->connected = true;
  return CURL_PREREQFUNC_OK;
}

size_t ReadCallback(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* r = static_cast<Request*>(userdata);
  r->connected = true;
  const size_t capacity = size * nitems;
  try {
    Result<size_t> n = r->gzip != nullptr ? r->gzip->Read(*r->source, buffer, capacity)
                                          : r->source->Read(buffer, capacity);
    if (!n.ok()) {
      r->source_status = n.status();
      return CURL_READFUNC_ABORT;
    }
    if (*n > capacity) {
      r->source_status = Internal("insert source returned more bytes than asked");
      return CURL_READFUNC_ABORT;
    }
    r->last_activity = SteadyClock::now();  // time spent waiting on our source is not a stall
    return *n;
  } catch (const std::exception& e) {
    r->callback_error = Internal(std::string("insert source threw: ") + e.what());
    return CURL_READFUNC_ABORT;
  }
}

size_t WriteCallback(char* data, size_t size, size_t nmemb, void* userdata) {
  auto* r = static_cast<Request*>(userdata);
  const size_t n = size * nmemb;
  r->last_activity = SteadyClock::now();
  try {
    std::string& out = *r->response;
    const size_t room = r->max_response_bytes - std::min(r->max_response_bytes, out.size());
    const size_t keep = std::min(room, n);
    out.append(data, keep);
    if (keep < n) {
      r->overflowed = true;
      r->tail.append(data + keep, n - keep);
      if (r->tail.size() > 2 * kTailBytes) r->tail.erase(0, r->tail.size() - kTailBytes);
    }
    return n;
  } catch (const std::exception& e) {
    r->callback_error =
        Internal(std::string("could not buffer the ClickHouse response: ") + e.what());
    return CURL_WRITEFUNC_ERROR;
  }
}

size_t HeaderCallback(char* buffer, size_t size, size_t nitems, void* userdata) {
  auto* r = static_cast<Request*>(userdata);
  const size_t n = size * nitems;
  r->last_activity = SteadyClock::now();
  std::string_view line(buffer, n);
  if (line.starts_with("HTTP/")) {  // a new response (e.g. after "100 Continue")
    r->exception_code.reset();
    r->exception_tag.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  const std::string_view name = Trim(line.substr(0, colon));
  const std::string_view value = Trim(line.substr(colon + 1));
  if (EqualsIgnoreCase(name, "X-ClickHouse-Exception-Code")) {
    int code = 0;
    bool digits = !value.empty();
    for (char c : value) {
      if (c < '0' || c > '9' || code > 100000000) {
        digits = false;
        break;
      }
      code = code * 10 + (c - '0');
    }
    if (digits) r->exception_code = code;
  } else if (EqualsIgnoreCase(name, "X-ClickHouse-Exception-Tag")) {
    try {
      r->exception_tag = std::string(value);
    } catch (const std::exception&) {
      return 0;  // out of memory: fail the transfer
    }
  }
  return n;
}

// The node where every client of one CLICKHOUSE_URL in this process sends its next request, so
// that a client opened after a move (a copy's next attempt, another thread) does not go back to
// a node found unreachable. Kept for the life of the process: one entry per URL text.
std::shared_ptr<std::atomic<size_t>> SharedCurrentNode(const std::string& url) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<std::atomic<size_t>>> by_url;
  std::lock_guard<std::mutex> lock(mu);
  std::shared_ptr<std::atomic<size_t>>& current = by_url[url];
  if (current == nullptr) current = std::make_shared<std::atomic<size_t>>(0);
  return current;
}

}  // namespace

void SetDefaultClickHouseStallTimeout(std::chrono::milliseconds stall) {
  g_stall_ms = stall.count();
}

std::chrono::milliseconds DefaultClickHouseStallTimeout() {
  return std::chrono::milliseconds(g_stall_ms.load());
}

Result<std::unique_ptr<HttpClickHouseClient>> HttpClickHouseClient::Create(
    ClickHouseHttpConfig config) {
  BGM_RETURN_IF_ERROR(CurlGlobalInit());
  if (config.url.empty()) {
    return InvalidArgument("no ClickHouse URL: set CLICKHOUSE_URL, e.g. http://127.0.0.1:8123");
  }
  if (config.connect_timeout.count() <= 0 || config.total_timeout.count() <= 0 ||
      config.stall_timeout.count() < 0) {
    return InvalidArgument("ClickHouse timeouts must be positive");
  }
  Result<std::vector<std::string>> listed = SplitClickHouseUrl(config.url);
  if (!listed.ok()) return listed.status();
  std::vector<Node> nodes;
  for (size_t i = 0; i < listed->size(); ++i) {
    // The URL is never echoed in these errors: it may carry a password.
    const std::string which = listed->size() == 1
                                  ? "CLICKHOUSE_URL"
                                  : "node " + std::to_string(i + 1) + " of " +
                                        std::to_string(listed->size()) + " in CLICKHOUSE_URL";
    CurlUrlPtr url(curl_url());
    if (url == nullptr) return Internal("libcurl could not allocate a URL");
    if (CURLUcode rc =
            curl_url_set(url.get(), CURLUPART_URL, (*listed)[i].c_str(), CURLU_NON_SUPPORT_SCHEME);
        rc != CURLUE_OK) {
      return InvalidArgument(which + " is not a valid URL (" + curl_url_strerror(rc) +
                             "); expected e.g. http://127.0.0.1:8123");
    }
    const std::string scheme = UrlPart(url.get(), CURLUPART_SCHEME);
    if (scheme != "http" && scheme != "https") {
      return InvalidArgument(which +
                             " must start with http:// or https:// (the HTTP port, 8123 by "
                             "default), not " +
                             scheme + "://");
    }
    Node node;
    node.user =
        config.user.empty() ? UrlPart(url.get(), CURLUPART_USER, CURLU_URLDECODE) : config.user;
    node.password = config.password.empty()
                        ? UrlPart(url.get(), CURLUPART_PASSWORD, CURLU_URLDECODE)
                        : config.password;
    if (HasLineBreak(node.user) || HasLineBreak(node.password)) {
      return InvalidArgument("CLICKHOUSE_USER or CLICKHOUSE_PASSWORD contains a line break");
    }
    node.base_query = UrlPart(url.get(), CURLUPART_QUERY);
    curl_url_set(url.get(), CURLUPART_USER, nullptr, 0);
    curl_url_set(url.get(), CURLUPART_PASSWORD, nullptr, 0);
    curl_url_set(url.get(), CURLUPART_OPTIONS, nullptr, 0);
    curl_url_set(url.get(), CURLUPART_QUERY, nullptr, 0);
    curl_url_set(url.get(), CURLUPART_FRAGMENT, nullptr, 0);
    node.base_url = UrlPart(url.get(), CURLUPART_URL);
    std::string path = UrlPart(url.get(), CURLUPART_PATH);
    if (path.empty() || path.back() != '/') path += '/';
    path += "ping";
    curl_url_set(url.get(), CURLUPART_PATH, path.c_str(), 0);
    node.ping_url = UrlPart(url.get(), CURLUPART_URL);
    nodes.push_back(std::move(node));
  }

  CurlPtr curl(curl_easy_init());
  if (curl == nullptr) return Internal("libcurl could not allocate a handle");
  std::shared_ptr<std::atomic<size_t>> shared_current = SharedCurrentNode(config.url);
  return std::unique_ptr<HttpClickHouseClient>(new HttpClickHouseClient(
      std::move(config), std::move(curl), std::move(nodes), std::move(shared_current)));
}

HttpClickHouseClient::HttpClickHouseClient(ClickHouseHttpConfig config, CurlPtr curl,
                                           std::vector<Node> nodes,
                                           std::shared_ptr<std::atomic<size_t>> shared_current)
    : config_(std::move(config)),
      curl_(std::move(curl)),
      nodes_(std::move(nodes)),
      shared_current_(std::move(shared_current)),
      current_(shared_current_->load() % nodes_.size()) {}

void HttpClickHouseClient::MoveTo(size_t index) {
  current_ = index;
  shared_current_->store(index);
  ++failovers_;
}

HttpClickHouseClient::~HttpClickHouseClient() = default;

Result<std::string> HttpClickHouseClient::BuildUrl(const Node& node, const Settings& settings,
                                                   const UrlParams& extra) const {
  std::string query = node.base_query;
  auto add = [&query](std::string_view name, std::string_view value) {
    if (!query.empty()) query += '&';
    query += UrlEncode(name);
    query += '=';
    query += UrlEncode(value);
  };
  if (!config_.database.empty()) add("database", config_.database);
  for (const auto& [name, value] : settings) {
    if (!IsSettingName(name)) {
      return InvalidArgument("\"" + name + "\" is not a ClickHouse setting name");
    }
    if (name == "query" || name == "database" || name == "user" || name == "password") {
      return InvalidArgument("\"" + name + "\" cannot be passed as a setting; the client sets it");
    }
    add(name, value);
  }
  for (const auto& [name, value] : extra) add(name, value);
  return query.empty() ? node.base_url : node.base_url + "?" + query;
}

Status HttpClickHouseClient::Perform(const Settings& settings, const UrlParams& extra,
                                     InsertSource* body, std::string* response,
                                     size_t max_response_bytes, bool check_tail) {
  std::vector<std::string> failures;  // "ClickHouse at <node>: <what failed>", in order tried
  current_ = shared_current_->load() % nodes_.size();
  for (size_t tried = 0; tried < nodes_.size(); ++tried) {
    const size_t index = (current_ + tried) % nodes_.size();
    const Node& node = nodes_[index];
    std::string url = node.ping_url;
    if (body != nullptr) {
      Result<std::string> built = BuildUrl(node, settings, extra);
      if (!built.ok()) return built.status();
      url = std::move(*built);
    }
    std::optional<std::string> unreachable;
    bool stalled = false;
    Status status = PerformOn(node, url, body, response, max_response_bytes, check_tail,
                              &unreachable, &stalled);
    if (!unreachable.has_value() || nodes_.size() == 1) {
      if (index != current_) {
        spdlog::warn("ClickHouse: requests now go to {} (node {} of {} in CLICKHOUSE_URL)",
                     node.base_url, index + 1, nodes_.size());
        MoveTo(index);
      }
      if (stalled && nodes_.size() > 1) {
        const size_t next = (index + 1) % nodes_.size();
        spdlog::warn(
            "ClickHouse at {} stalled and did not answer /ping; later requests go to {} (node {} "
            "of {} in CLICKHOUSE_URL)",
            node.base_url, nodes_[next].base_url, next + 1, nodes_.size());
        MoveTo(next);
      }
      return status;
    }
    failures.push_back("ClickHouse at " + node.base_url + ": " + *unreachable);
    if (tried + 1 < nodes_.size()) {
      spdlog::warn(
          "ClickHouse at {} is unreachable ({}); trying the next node in "
          "CLICKHOUSE_URL, {}",
          node.base_url, *unreachable, nodes_[(index + 1) % nodes_.size()].base_url);
    }
  }
  std::string message = "could not connect to any of the " + std::to_string(nodes_.size()) +
                        " ClickHouse nodes in CLICKHOUSE_URL: ";
  for (size_t i = 0; i < failures.size(); ++i) {
    message += (i > 0 ? "; " : "") + failures[i];
  }
  message += "; check CLICKHOUSE_URL and that the servers are running";
  return Scrubbed(Unavailable(std::move(message)));
}

Status HttpClickHouseClient::PerformOn(const Node& node, const std::string& url, InsertSource* body,
                                       std::string* response, size_t max_response_bytes,
                                       bool check_tail, std::optional<std::string>* unreachable,
                                       bool* stalled) {
  CURL* curl = curl_.get();
  curl_easy_reset(curl);  // keeps the live connection, so it is reused

  Request request;
  request.source = body;
  request.response = response;
  request.max_response_bytes = max_response_bytes;
  request.stall = config_.stall_timeout;
  if (config_.stall_timeout.count() > 0 && body != nullptr) {
    request.check_alive = [this, &node] { return PingWithin(node, config_.stall_timeout / 2); };
  }
  response->clear();

  std::optional<GzipDeflater> gzip;
  CurlSlistPtr headers;
  auto add_header = [&headers](const std::string& h) {
    curl_slist* next = curl_slist_append(headers.get(), h.c_str());
    if (next == nullptr) return false;
    (void)headers.release();  // `next` is the same list, now one longer
    headers.reset(next);
    return true;
  };
  bool headers_ok = true;
  if (!node.user.empty()) headers_ok &= add_header("X-ClickHouse-User: " + node.user);
  if (!node.password.empty()) headers_ok &= add_header("X-ClickHouse-Key: " + node.password);
  if (body != nullptr) {
    headers_ok &= add_header("Transfer-Encoding: chunked");
    headers_ok &= add_header("Expect:");  // no 100-continue round trip
    headers_ok &= add_header("Content-Type: application/octet-stream");
    if (config_.gzip_requests) {
      gzip.emplace();
      BGM_RETURN_IF_ERROR(gzip->Init());
      request.gzip = &*gzip;
      headers_ok &= add_header("Content-Encoding: gzip");
    }
  }
  if (!headers_ok) return Internal("libcurl could not allocate request headers");

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, request.error_buffer);
  curl_easy_setopt(curl, CURLOPT_SOCKOPTFUNCTION, &AbortiveCloseSocket);
  curl_easy_setopt(curl, CURLOPT_PREREQFUNCTION, &PrereqCallback);
  curl_easy_setopt(curl, CURLOPT_PREREQDATA, &request);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(config_.connect_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.total_timeout.count()));
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &WriteCallback);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &request);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &HeaderCallback);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &request);
  if (request.check_alive) {
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, &XferInfoCallback);
    curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &request);
  }
  if (body != nullptr) {
    curl_easy_setopt(curl, CURLOPT_POST, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, &ReadCallback);
    curl_easy_setopt(curl, CURLOPT_READDATA, &request);
    curl_easy_setopt(curl, CURLOPT_UPLOAD_BUFFERSIZE, static_cast<long>(kUploadBufferBytes));
  } else {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  }

  const CURLcode rc = curl_easy_perform(curl);
  // Nothing of this request may outlive it inside the reused handle.
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);

  long new_connections = 0;
  if (curl_easy_getinfo(curl, CURLINFO_NUM_CONNECTS, &new_connections) == CURLE_OK &&
      new_connections > 0) {
    connections_opened_ += static_cast<uint64_t>(new_connections);
  }
  long http_status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http_status);
  if (!request.callback_error.ok()) return request.callback_error;
  if (!request.stalled.ok()) {
    *stalled = true;
    return Scrubbed(Unavailable(
        "ClickHouse at " + node.base_url + " stalled: no bytes moved for " +
        SecondsText(config_.stall_timeout / 2) + " s and it did not answer /ping within " +
        SecondsText(config_.stall_timeout / 2) + " s (BGMIGRATE_CLICKHOUSE_STALL_SECONDS=" +
        SecondsText(config_.stall_timeout) + "): " + request.stalled.message() +
        "; is the server stopped, its disk full or the network dropping packets? The outcome "
        "of a write is unknown"));
  }
  const std::string_view head = *response;
  const std::string_view tail = request.overflowed ? std::string_view(request.tail) : head;
  const bool success = http_status >= 200 && http_status < 300;
  if (rc != CURLE_OK) {
    if (!request.source_status.ok()) return request.source_status;
    if (http_status >= 300) {
      // The server refused the request before the upload finished and closed the connection:
      // its answer is the real error.
      Status server = StatusFromClickHouseResponse(http_status, request.exception_code,
                                                   request.exception_tag, head, false);
      if (ClickHouseErrorCode(server).has_value()) return Scrubbed(std::move(server));
    }
    if (!request.connected &&
        (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
         rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT)) {
      std::string detail =
          request.error_buffer[0] != '\0' ? request.error_buffer : curl_easy_strerror(rc);
      if (rc == CURLE_OPERATION_TIMEDOUT) {
        const auto limit = std::min(config_.connect_timeout, config_.total_timeout);
        detail = "no connection within " + std::to_string(limit.count()) + " ms: " + detail;
      }
      *unreachable = std::move(detail);
    }
    return StatusFromCurl(node, rc, request.error_buffer, request.connected);
  }
  return Scrubbed(StatusFromClickHouseResponse(http_status, request.exception_code,
                                               request.exception_tag, success ? tail : head,
                                               check_tail));
}

Status HttpClickHouseClient::StatusFromCurl(const Node& node, int curl_code,
                                            const char* error_buffer, bool connected) const {
  const auto rc = static_cast<CURLcode>(curl_code);
  std::string detail = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc);
  std::string where = "ClickHouse at " + node.base_url;
  // A kept-alive connection that dies before any byte of the answer makes libcurl try the
  // request again on a new one: that attempt's failure to connect, or its failure to rewind a
  // body it cannot replay (ours are streamed), comes back after the request was sent.
  const bool sent_then_lost =
      connected && (rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_COULDNT_RESOLVE_PROXY ||
                    rc == CURLE_COULDNT_CONNECT || rc == CURLE_SEND_FAIL_REWIND);
  if (sent_then_lost) {
    return Scrubbed(Unavailable("connection to " + where + " failed: " + detail +
                                "; the outcome of a write is unknown"));
  }
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
      return Scrubbed(Unavailable("could not connect to " + where + ": " + detail +
                                  "; check CLICKHOUSE_URL and that the server is running"));
    case CURLE_OPERATION_TIMEDOUT: {
      if (!connected) {
        return Scrubbed(Unavailable("could not connect to " + where + " within " +
                                    std::to_string(config_.connect_timeout.count()) +
                                    " ms: " + detail));
      }
      return Scrubbed(Status(StatusCode::kDeadlineExceeded,
                             "request to " + where + " timed out after " +
                                 std::to_string(config_.total_timeout.count()) + " ms (" + detail +
                                 "); the outcome of a write is unknown"));
    }
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return Scrubbed(Unavailable("connection to " + where + " failed: " + detail +
                                  "; the outcome of a write is unknown"));
    case CURLE_WEIRD_SERVER_REPLY:
      return Scrubbed(
          FailedPrecondition(where + " did not answer HTTP (" + detail +
                             "); does CLICKHOUSE_URL point at the HTTP port (8123 by default)?"));
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
      return Scrubbed(InvalidArgument("bad CLICKHOUSE_URL: " + detail));
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return Scrubbed(FailedPrecondition("TLS with " + where + " failed: " + detail));
    default:
      return Scrubbed(Internal("request to " + where + " failed: " + detail + " (curl error " +
                               std::to_string(curl_code) + ")"));
  }
}

Status HttpClickHouseClient::Scrubbed(Status status) const {
  if (status.ok()) return status;
  std::string msg = status.message();
  bool changed = false;
  for (const Node& node : nodes_) {
    const std::string& password = node.password;
    if (password.empty()) continue;
    for (size_t pos = msg.find(password); pos != std::string::npos;
         pos = msg.find(password, pos + 3)) {
      msg.replace(pos, password.size(), "***");
      changed = true;
    }
  }
  return changed ? Status(status.code(), std::move(msg)) : status;
}

Status HttpClickHouseClient::PingWithin(const Node& node, std::chrono::milliseconds timeout) {
  if (probe_curl_ == nullptr) probe_curl_.reset(curl_easy_init());
  CURL* curl = probe_curl_.get();
  if (curl == nullptr) return Internal("libcurl could not allocate a handle");
  curl_easy_reset(curl);
  std::string body;
  char error_buffer[CURL_ERROR_SIZE] = {};
  const long ms = std::max<long>(1, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_URL, node.ping_url.c_str());
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, ms);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, ms);
  curl_easy_setopt(
      curl, CURLOPT_WRITEFUNCTION,
      +[](char* data, size_t size, size_t nmemb, void* userdata) -> size_t {
        auto* out = static_cast<std::string*>(userdata);
        if (out->size() < 4096) out->append(data, std::min<size_t>(size * nmemb, 4096));
        return size * nmemb;
      });
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, nullptr);
  if (rc != CURLE_OK) {
    return Unavailable(std::string("/ping: ") +
                       (error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(rc)));
  }
  if (Trim(body) != "Ok.") return Unavailable("/ping answered \"" + body.substr(0, 100) + "\"");
  return Status::Ok();
}

Result<std::string> HttpClickHouseClient::Query(std::string_view sql, const Settings& settings) {
  StringInsertSource body(sql);
  std::string response;
  BGM_RETURN_IF_ERROR(Perform(settings, {}, &body, &response, std::numeric_limits<size_t>::max(),
                              /*check_tail=*/true));
  return response;
}

Status HttpClickHouseClient::Execute(std::string_view sql, const Settings& settings) {
  StringInsertSource body(sql);
  std::string response;
  return Perform(settings, {}, &body, &response, kSmallResponseBytes, /*check_tail=*/true);
}

Status HttpClickHouseClient::Insert(std::string_view insert_query, InsertSource& source,
                                    const Settings& settings) {
  if (insert_query.empty()) return InvalidArgument("empty insert query");
  std::string response;
  return Perform(settings, {{"query", std::string(insert_query)}}, &source, &response,
                 kSmallResponseBytes, /*check_tail=*/true);
}

Result<std::string> HttpClickHouseClient::Version() {
  Result<std::string> body = Query("SELECT version() FORMAT TabSeparated");
  if (!body.ok()) return body.status();
  std::string version(Trim(*body));
  if (version.empty()) return Internal("ClickHouse returned an empty version");
  return version;
}

Status HttpClickHouseClient::Ping() {
  std::string response;
  BGM_RETURN_IF_ERROR(Perform({}, {}, nullptr, &response, 4096, /*check_tail=*/false));
  if (Trim(response) != "Ok.") {
    return Unavailable(endpoint() + " answered its health check with \"" +
                       std::string(Trim(response).substr(0, 100)) +
                       "\" instead of \"Ok.\"; is CLICKHOUSE_URL a ClickHouse server?");
  }
  return Status::Ok();
}

}  // namespace bgm
