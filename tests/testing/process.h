// Child processes of the bgmigrate binary for integration tests: spawn with an environment,
// signal, wait with a deadline, capture output. Not thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bgm::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

class ChildProcess {
 public:
  // Starts `binary args...` with the current environment plus `env` (which wins), and
  // BGMIGRATE_SCHEMA_DIR=ExampleSchemaDir() when neither names it. Output goes
  // to files under /tmp, readable with Output(). Closes this process's embedded ClickHouse
  // engine first, so a child may open the same data path (see ReleaseEmbeddedClickHouse); do not
  // use ClickHouse from the test while an embedded child runs.
  ChildProcess(const std::string& binary, const std::vector<std::string>& args,
               const std::map<std::string, std::string>& env);
  ~ChildProcess();  // kills the child if it still runs
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits up to `timeout`; std::nullopt when still running.
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Stdout() const;
  // Peak resident set size of the exited child in KiB (getrusage via wait4); 0 before exit.
  long max_rss_kib() const { return max_rss_kib_; }
  std::string Stderr() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  long max_rss_kib_ = 0;
  std::string out_path_, err_path_;
};

// Runs to completion (at most `timeout`) and returns exit code and output.
ProcessResult RunProcess(const std::string& binary, const std::vector<std::string>& args,
                         const std::map<std::string, std::string>& env,
                         std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace bgm::testing
