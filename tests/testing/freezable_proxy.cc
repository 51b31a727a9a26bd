#include "testing/freezable_proxy.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace bgm::testing {
namespace {

constexpr size_t kMaxPending = 1 << 20;  // bytes buffered per direction before reading stops

// Closes a socket once.
struct Fd {
  explicit Fd(int f = -1) : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
  int fd;
};

// One forwarded connection: client <-> server, with what each side has yet to receive.
struct Link {
  Fd client, server;
  std::string to_server, to_client;
  bool client_eof = false, server_eof = false;
};

void SetNonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

int ConnectLoopback(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  SetNonblocking(fd);
  return fd;
}

// Reads what `from` has into `pending`; false on EOF or error.
bool Pull(int from, std::string& pending) {
  char buf[64 * 1024];
  const ssize_t n = recv(from, buf, sizeof buf, 0);
  if (n > 0) {
    pending.append(buf, static_cast<size_t>(n));
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EINTR);
}

// Writes what `to` accepts of `pending`; false on error.
bool Push(int to, std::string& pending) {
  const ssize_t n = send(to, pending.data(), pending.size(), MSG_NOSIGNAL);
  if (n > 0) {
    pending.erase(0, static_cast<size_t>(n));
    return true;
  }
  return n < 0 && (errno == EAGAIN || errno == EINTR);
}

}  // namespace

FreezableProxy::FreezableProxy(int target_port) : target_port_(target_port) {
  listen_fd_ = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(listen_fd_, 64) != 0 ||
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "FreezableProxy could not listen: " << std::strerror(errno);
    return;
  }
  SetNonblocking(listen_fd_);
  port_ = ntohs(addr.sin_port);
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
}

FreezableProxy::~FreezableProxy() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
  if (listen_fd_ >= 0) close(listen_fd_);
}

void FreezableProxy::Run(std::stop_token stop) {
  std::vector<std::unique_ptr<Link>> links;
  while (!stop.stop_requested()) {
    if (frozen_) {
      // Nothing is read, written or accepted; the sockets stay open.
      poll(nullptr, 0, 100);
      continue;
    }
    std::vector<pollfd> fds;
    fds.push_back({listen_fd_, POLLIN, 0});
    for (const auto& l : links) {
      short c = 0, s = 0;
      if (!l->client_eof && l->to_server.size() < kMaxPending) c |= POLLIN;
      if (!l->server_eof && l->to_client.size() < kMaxPending) s |= POLLIN;
      if (!l->to_client.empty()) c |= POLLOUT;
      if (!l->to_server.empty()) s |= POLLOUT;
      fds.push_back({l->client.fd, c, 0});
      fds.push_back({l->server.fd, s, 0});
    }
    if (poll(fds.data(), fds.size(), 100) <= 0) continue;
    if (frozen_) continue;  // frozen while polling: move nothing
    for (size_t i = 0; i < links.size(); ++i) {
      Link& l = *links[i];
      const pollfd& c = fds[1 + 2 * i];
      const pollfd& s = fds[2 + 2 * i];
      bool ok = true;
      if (c.revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!Pull(l.client.fd, l.to_server)) l.client_eof = true;
      }
      if (s.revents & (POLLIN | POLLHUP | POLLERR)) {
        if (!Pull(l.server.fd, l.to_client)) l.server_eof = true;
      }
      if (!l.to_server.empty()) ok &= Push(l.server.fd, l.to_server);
      if (!l.to_client.empty()) ok &= Push(l.client.fd, l.to_client);
      // A side that ended: pass the end on once its data is delivered.
      if (!ok || (l.client_eof && l.to_server.empty()) || (l.server_eof && l.to_client.empty())) {
        links[i].reset();
      }
    }
    std::erase(links, nullptr);
    if (fds[0].revents & POLLIN) {
      const int client = accept(listen_fd_, nullptr, nullptr);
      if (client >= 0) {
        SetNonblocking(client);
        const int server = ConnectLoopback(target_port_);
        if (server < 0) {
          close(client);
        } else {
          auto link = std::make_unique<Link>();
          link->client.fd = client;
          link->server.fd = server;
          links.push_back(std::move(link));
          ++connections_;
        }
      }
    }
  }
}

}  // namespace bgm::testing
