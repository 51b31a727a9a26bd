#include "web/bounded_http_server.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "web/api.h"

namespace bgm {
namespace {

using SteadyClock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Threads beyond the cap, so that a connection over it is refused at once even while
// `max_connections` slow ones hold theirs.
constexpr int kSpareThreads = 4;
// How often a wait for a client looks whether the server is stopping.
constexpr milliseconds kStopCheck(100);
// How long a 503 may wait to be sent, and how long a 503 or 408 then reads what the client
// still sends before closing (closing with unread bytes would reset the connection, and the
// client could lose the answer).
constexpr milliseconds kRefusalSend(100);
constexpr milliseconds kLinger(250);

// Waits until `fd` is ready for `events` (true), or `deadline` passes or `stopping` (false).
// An error or hang-up counts as ready: the recv or send that follows reports it.
template <typename Stopping>
bool WaitFor(socket_t fd, short events, SteadyClock::time_point deadline, Stopping stopping) {
  for (;;) {
    const auto left = std::chrono::ceil<milliseconds>(deadline - SteadyClock::now());
    if (left <= milliseconds(0) || stopping()) return false;
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min(left, kStopCheck).count()));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return false;
  }
}

constexpr auto kNeverStopping = [] { return false; };

bool SendAll(socket_t fd, const std::string& bytes, SteadyClock::time_point deadline) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    if (!WaitFor(fd, POLLOUT, deadline, kNeverStopping)) return false;
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

// Sends `response` (best effort), then closes without resetting: our side is shut, and what
// the client still sends is read and dropped until it closes too or kLinger passes.
void AnswerAndClose(socket_t fd, const std::string& response, milliseconds send_within) {
  if (SendAll(fd, response, SteadyClock::now() + send_within)) {
    ::shutdown(fd, SHUT_WR);
    const auto until = SteadyClock::now() + kLinger;
    char drain[4096];
    while (WaitFor(fd, POLLIN, until, kNeverStopping) && ::recv(fd, drain, sizeof drain, 0) > 0) {
    }
  }
  ::close(fd);
}

// A whole HTTP/1.1 response carrying an ErrorResponse; the connection is closed after it.
std::string ClosingErrorResponse(int status, const char* reason, const std::string& error,
                                 const std::string& detail, const std::string& extra_headers) {
  const std::string body = ErrorResponse(status, error, detail).body;
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\nX-Content-Type-Options: nosniff\r\n" + extra_headers + "\r\n" +
         body;
}

std::string Seconds(milliseconds d) {
  char text[32];
  std::snprintf(text, sizeof text, "%g s", static_cast<double>(d.count()) / 1000.0);
  return text;
}

void Address(socket_t fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage addr{};
  socklen_t len = sizeof addr;
  auto* a = reinterpret_cast<sockaddr*>(&addr);
  char host[NI_MAXHOST] = "";
  char service[NI_MAXSERV] = "0";
  if ((peer ? ::getpeername(fd, a, &len) : ::getsockname(fd, a, &len)) == 0) {
    ::getnameinfo(a, len, host, sizeof host, service, sizeof service,
                  NI_NUMERICHOST | NI_NUMERICSERV);
  }
  ip = host;
  port = std::atoi(service);
}

// One connection's socket for httplib: reads fail once the current request's deadline has
// passed or the server is stopping, and then writes fail too, so that httplib's own answer to
// the cut request is not sent; writes wait at most `write_timeout` for room each. Reads are
// buffered (httplib reads request lines a byte at a time) and the buffer carries over to the
// next request of the connection. Not thread-safe; does not own the socket.
class DeadlineStream final : public httplib::Stream {
 public:
  DeadlineStream(socket_t sock, milliseconds write_timeout, const std::atomic<socket_t>& listener)
      : sock_(sock), write_timeout_(write_timeout), listener_(listener) {}

  // Starts a request whose every byte must have arrived by `deadline`.
  void StartRequest(SteadyClock::time_point deadline) {
    deadline_ = deadline;
    cut_ = false;
  }
  // The request's reads ran out of time.
  bool timed_out() const { return cut_ && SteadyClock::now() >= deadline_; }
  bool cut() const { return cut_; }
  bool has_buffered() const { return begin_ < end_; }
  bool stopping() const { return listener_ == INVALID_SOCKET; }

  bool is_readable() const override {
    return has_buffered() ||
           (!cut_ && WaitFor(sock_, POLLIN, deadline_, [this] { return stopping(); }));
  }
  bool is_writable() const override {
    return !cut_ && WaitFor(sock_, POLLOUT, SteadyClock::now() + write_timeout_, kNeverStopping);
  }

  ssize_t read(char* ptr, size_t size) override {
    if (!has_buffered()) {
      if (!is_readable()) {
        cut_ = true;
        return -1;
      }
      ssize_t n;
      do {
        n = ::recv(sock_, buffer_, sizeof buffer_, 0);
      } while (n < 0 && errno == EINTR);
      if (n <= 0) return n;
      begin_ = 0;
      end_ = static_cast<size_t>(n);
    }
    const size_t n = std::min(size, end_ - begin_);
    std::memcpy(ptr, buffer_ + begin_, n);
    begin_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    ssize_t n;
    do {
      n = ::send(sock_, ptr, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    return n;
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    Address(sock_, /*peer=*/true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    Address(sock_, /*peer=*/false, ip, port);
  }
  socket_t socket() const override { return sock_; }

 private:
  const socket_t sock_;
  const milliseconds write_timeout_;
  const std::atomic<socket_t>& listener_;  // httplib's listening socket; invalid once stopping
  SteadyClock::time_point deadline_ = SteadyClock::now();
  bool cut_ = false;
  char buffer_[4096];
  size_t begin_ = 0;
  size_t end_ = 0;
};

}  // namespace

BoundedHttpServer::BoundedHttpServer(HttpLimits limits) : limits_(limits) {
  assert(limits_.max_connections >= 1 && limits_.request_timeout > milliseconds(0));
  new_task_queue = [threads = static_cast<size_t>(limits_.max_connections + kSpareThreads)] {
    return new httplib::ThreadPool(threads);
  };
}

bool BoundedHttpServer::process_and_close_socket(socket_t sock) {
  if (open_.fetch_add(1) >= limits_.max_connections) {
    open_.fetch_sub(1);
    AnswerAndClose(sock,
                   ClosingErrorResponse(503, "Service Unavailable", "too many connections",
                                        "the server is serving its limit of " +
                                            std::to_string(limits_.max_connections) +
                                            " connections; try again in a moment",
                                        "Retry-After: 1\r\n"),
                   kRefusalSend);
    return false;
  }
  const milliseconds write_timeout = std::chrono::duration_cast<milliseconds>(
      std::chrono::seconds(write_timeout_sec_) + std::chrono::microseconds(write_timeout_usec_));
  const milliseconds keep_alive = std::chrono::seconds(keep_alive_timeout_sec_);
  DeadlineStream stream(sock, write_timeout, svr_sock_);
  bool ok = false;
  for (size_t left = keep_alive_max_count_; left > 0; --left) {
    // Idle before a request: the keep-alive timeout; its first byte starts the request's clock.
    if (!stream.has_buffered() && !WaitFor(sock, POLLIN, SteadyClock::now() + keep_alive,
                                           [&stream] { return stream.stopping(); })) {
      break;
    }
    stream.StartRequest(SteadyClock::now() + limits_.request_timeout);
    bool closed = false;
    ok = process_request(stream, /*close_connection=*/left == 1, closed, nullptr);
    if (!ok || closed || stream.cut()) break;
  }
  if (stream.timed_out()) {
    AnswerAndClose(sock,
                   ClosingErrorResponse(408, "Request Timeout", "request timeout",
                                        "the request did not arrive whole within " +
                                            Seconds(limits_.request_timeout) +
                                            "; send its line, headers and body without pauses",
                                        ""),
                   write_timeout);
  } else {
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
  }
  open_.fetch_sub(1);
  return ok;
}

}  // namespace bgm
