#include "testing/process.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "clickhouse/embedded_client.h"
#include "testing/example_app.h"

namespace bgm::testing {
namespace {
std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

ChildProcess::ChildProcess(const std::string& binary, const std::vector<std::string>& args,
                           const std::map<std::string, std::string>& env) {
  static std::atomic<int> counter{0};
  const std::string base =
      "/tmp/bgm_child_" + std::to_string(getpid()) + "_" + std::to_string(counter++);
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  // An embedded ClickHouse data path can be open in one process only: hand it to the child (this
  // process's clients open it again on their next call, after the child is gone).
  ReleaseEmbeddedClickHouse();
  const std::string schema_dir = ExampleSchemaDir();
  const std::string migrations_dir = ExampleMigrationsDir();
  pid_ = fork();
  if (pid_ == 0) {
    // The example application's schema, unless the test (or its caller) names another.
    setenv("BGMIGRATE_SCHEMA_DIR", schema_dir.c_str(), 0);
    setenv("BGMIGRATE_MIGRATIONS_DIR", migrations_dir.c_str(), 0);
    for (const auto& [k, v] : env) setenv(k.c_str(), v.c_str(), 1);
    if (!freopen(out_path_.c_str(), "w", stdout) || !freopen(err_path_.c_str(), "w", stderr)) {
      _exit(127);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(binary.c_str(), argv.data());
    _exit(127);
  }
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  unlink(out_path_.c_str());
  unlink(err_path_.c_str());
}

void ChildProcess::Signal(int sig) {
  if (pid_ > 0 && !reaped_) kill(pid_, sig);
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds timeout) {
  if (reaped_) return exit_code_;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    struct rusage usage {};
    const pid_t r = wait4(pid_, &status, WNOHANG, &usage);
    if (r == pid_) {
      reaped_ = true;
      max_rss_kib_ = usage.ru_maxrss;
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string ChildProcess::Stdout() const { return ReadFile(out_path_); }
std::string ChildProcess::Stderr() const { return ReadFile(err_path_); }

ProcessResult RunProcess(const std::string& binary, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env,
                         std::chrono::milliseconds timeout) {
  ChildProcess child(binary, args, env);
  ProcessResult result;
  std::optional<int> code = child.Wait(timeout);
  result.exit_code = code.value_or(-2);
  result.out = child.Stdout();
  result.err = child.Stderr();
  return result;
}

}  // namespace bgm::testing
