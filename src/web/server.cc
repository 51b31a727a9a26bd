#include "web/server.h"

#include <httplib.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "common/logging.h"
#include "web/api.h"
#include "web/bounded_http_server.h"
#include "web/store_pool.h"

namespace bgm {
namespace {

// Keep-alive connections are closed after this idle time; it also bounds how long a stop waits
// for an idle browser connection.
constexpr time_t kKeepAliveSeconds = 2;

// "127.0.0.1:3030", "[::1]:3030".
std::string HostPort(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Status BindError(const std::string& host, int port, int err) {
  const std::string where = "port " + std::to_string(port) + " on " + host;
  switch (err) {
    case EADDRINUSE:
      return Unavailable(where + " is in use; set BGMIGRATE_PORT to a free port (0 picks one)");
    case EACCES:
      return Unavailable(where +
                         " needs privileges this process lacks (ports below 1024 need "
                         "root); set BGMIGRATE_PORT to a port of 1024 or more");
    case EADDRNOTAVAIL:
      return Unavailable(host +
                         " is not an address of this machine; set BGMIGRATE_BIND to one "
                         "of its addresses (127.0.0.1 by default)");
    default:
      return Unavailable("could not listen on " + where +
                         (err != 0 ? std::string(" (") + std::strerror(err) + ")" : "") +
                         "; check BGMIGRATE_BIND and BGMIGRATE_PORT");
  }
}

void Reply(const ApiResponse& in, httplib::Response& out) {
  out.status = in.status;
  for (const auto& [k, v] : in.headers) out.set_header(k, v);
  out.set_content(in.body, in.content_type);
}

std::string ShortError(int status) {
  switch (status) {
    case 400:
      return "bad request";
    case 404:
      return "not found";
    case 405:
      return "method not allowed";
    case 413:
      return "body too large";
    case 414:
      return "URI too long";
    default:
      return "request failed";
  }
}

std::string ErrorDetail(int status) {
  switch (status) {
    case 413:
      return "request bodies are limited to 1 MiB";
    case 414:
      return "the request target is too long";
    case 404:
      return "there is no endpoint at this path; the API is under "
             "/api/background-migrations, the UI at /";
    default:
      return "the request could not be read as HTTP/1.1 (a malformed or unsupported request "
             "line, method or header); the API answers GET, POST and PUT with JSON bodies";
  }
}

ApiRequest ApiRequestFrom(const httplib::Request& req, std::string body) {
  ApiRequest in;
  in.method = req.method;
  in.target = req.target;
  in.authorization = req.get_header_value("Authorization");
  in.content_type = req.get_header_value("Content-Type");
  in.body = std::move(body);
  return in;
}

bool IsChunked(const httplib::Request& req) {
  std::string te = req.get_header_value("Transfer-Encoding");
  for (char& c : te) c = c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c;
  return te.find("chunked") != std::string::npos;
}

}  // namespace

Status RunWebServer(const WebOptions& options, std::stop_token stop,
                    std::function<void(int port)> on_listening) {
  if (options.registry == nullptr || !options.factory) {
    return InvalidArgument("RunWebServer needs a registry and a control-store factory");
  }
  if (options.max_connections < 1 || options.request_timeout <= std::chrono::milliseconds(0)) {
    return InvalidArgument(
        "RunWebServer needs max_connections >= 1 and a positive request_timeout");
  }
  StorePool pool(options.factory);
  SystemClock clock;
  const ApiHandler api({options.admin_api_key, options.enabled, options.registry}, pool, clock);

  BoundedHttpServer server({options.max_connections, options.request_timeout});
  server.set_payload_max_length(kMaxBodyBytes);
  server.set_keep_alive_timeout(kKeepAliveSeconds);
  // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which would let a second
  // server (or another program) bind the same port silently and take part of the requests.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  server.set_default_headers({
      {"X-Content-Type-Options", "nosniff"},
      {"X-Frame-Options", "DENY"},
      {"Referrer-Policy", "no-referrer"},
      {"Content-Security-Policy",
       "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"},
  });

  const auto handle = [&api](const httplib::Request& req, httplib::Response& res) {
    Reply(api.Handle(ApiRequestFrom(req, "")), res);
  };
  // Methods that may carry a body read it here, not through httplib, so that the 1 MiB limit
  // holds for chunked bodies too: httplib 0.11 enforces payload_max_length only against a
  // Content-Length and would buffer a chunked body of any size.
  const auto handle_with_body = [&api](const httplib::Request& req, httplib::Response& res,
                                       const httplib::ContentReader& content_reader) {
    const auto refuse = [&res](const ApiResponse& r) {
      Reply(r, res);
      res.set_header("Connection", "close");  // the rest of the body is left unread
    };
    // Neither a Content-Length nor chunked: no body (RFC 9112 6.3), e.g. `curl -X POST URL`.
    // httplib would wait for the connection to close and answer 400 after its read timeout.
    if (!req.has_header("Content-Length") && !IsChunked(req)) {
      Reply(api.Handle(ApiRequestFrom(req, "")), res);
      return;
    }
    if (req.is_multipart_form_data()) {  // httplib would parse it as form parts
      refuse(ErrorResponse(415, "unsupported media type",
                           "the body must be JSON sent with 'Content-Type: application/json', "
                           "got a multipart/form-data body"));
      return;
    }
    std::string body;
    bool too_large = false;
    const bool read = content_reader([&](const char* data, size_t size) {
      if (body.size() + size > kMaxBodyBytes) {
        too_large = true;
        return false;
      }
      body.append(data, size);
      return true;
    });
    // httplib refuses (and discards) a Content-Length over the limit itself, with 413.
    if (too_large || res.status == 413) {
      refuse(ErrorResponse(413, "body too large", "request bodies are limited to 1 MiB"));
      return;
    }
    if (!read) {
      refuse(ErrorResponse(400, "bad request",
                           "the request body could not be read: it ended before its "
                           "Content-Length, or its chunked encoding is malformed"));
      return;
    }
    Reply(api.Handle(ApiRequestFrom(req, std::move(body))), res);
  };
  // Every method and path goes to the ApiHandler, which does its own routing.
  server.Get(".*", handle);
  server.Options(".*", handle);
  server.Post(".*", handle_with_body);
  server.Put(".*", handle_with_body);
  server.Patch(".*", handle_with_body);
  server.Delete(".*", handle_with_body);
  // Errors httplib answers itself (413 oversized body, 400 unreadable request) become JSON;
  // responses that already have a body are left alone.
  server.set_error_handler(
      httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        ApiResponse r = ErrorResponse(res.status, ShortError(res.status), ErrorDetail(res.status));
        res.set_content(r.body, r.content_type);
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          if (ep) std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {  // logged below, answered with a 500
        }
        spdlog::error("web: {} request failed: {}", req.method, what);
        Reply(ErrorResponse(500, "internal error",
                            "the server failed unexpectedly; its log has the details"),
              res);
      });

  errno = 0;
  int port = options.port;
  if (port == 0) {
    port = server.bind_to_any_port(options.bind);
    if (port < 0) return BindError(options.bind, 0, errno);
  } else if (!server.bind_to_port(options.bind, port)) {
    return BindError(options.bind, port, errno);
  }

  std::mutex mu;
  std::condition_variable_any cv;
  bool done = false;  // guarded by mu: listen_after_bind() returned
  std::jthread listener([&] {
    server.listen_after_bind();
    std::lock_guard lock(mu);
    done = true;
    cv.notify_all();
  });
  const auto finished = [&] {
    std::lock_guard lock(mu);
    return done;
  };
  // listen_after_bind() sets is_running() before it accepts; stop() only works after that.
  while (!server.is_running() && !finished()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (!finished()) {
    spdlog::info("Web UI listening on http://{}", HostPort(options.bind, port));
    if (on_listening) on_listening(port);
    std::unique_lock lock(mu);
    cv.wait(lock, stop, [&] { return done; });
  }
  const bool failed = finished() && !stop.stop_requested();
  server.stop();
  listener.join();
  if (failed) {
    return Unavailable("the web server on " + HostPort(options.bind, port) +
                       " stopped unexpectedly; check BGMIGRATE_BIND and BGMIGRATE_PORT");
  }
  spdlog::info("Web UI on {} stopped", HostPort(options.bind, port));
  return Status::Ok();
}

}  // namespace bgm
