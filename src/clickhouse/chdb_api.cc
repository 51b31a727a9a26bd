#include "clickhouse/chdb_api.h"

#include <dlfcn.h>
#include <sys/stat.h>

#include <cstdlib>
#include <mutex>

#ifndef BGM_DEFAULT_CHDB_LIBRARY
#define BGM_DEFAULT_CHDB_LIBRARY "third_party/chdb/libchdb.so"
#endif

namespace bgm {
namespace {

constexpr const char* kFetchAdvice =
    "run scripts/fetch-chdb.sh (it installs chDB 26.7 from npm into third_party/chdb/), or set "
    "BGMIGRATE_CHDB_LIBRARY to the path of a libchdb.so";

template <typename Fn>
bool Resolve(void* handle, const char* name, Fn*& out, std::string& missing) {
  out = reinterpret_cast<Fn*>(dlsym(handle, name));
  if (out == nullptr) {
    if (!missing.empty()) missing += ", ";
    missing += name;
  }
  return out != nullptr;
}

Result<const ChdbApi*> Load() {
  const std::string path = ChdbLibraryPath();
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return FailedPrecondition(
        "the embedded ClickHouse engine needs chDB's libchdb.so, which is "
        "not at " +
        path + ": " + kFetchAdvice);
  }
#if defined(__SANITIZE_ADDRESS__)
  // Measured: an ASan process dies with SEGV at address 0 while loading libchdb.so 26.7 (the
  // prebuilt engine brings its own allocator and runtime). Refuse instead of crashing.
  return FailedPrecondition(
      "this bgmigrate is built with AddressSanitizer, which cannot host "
      "the embedded ClickHouse engine (" +
      path +
      "); use a build without "
      "-DBGM_SANITIZE=ON, or a ClickHouse server (CLICKHOUSE_URL=http://...)");
#endif
  // RTLD_LOCAL: chDB's many symbols stay out of the global namespace.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = dlerror();
    return FailedPrecondition("could not load " + path + " (" + (err ? err : "unknown error") +
                              "): " + kFetchAdvice);
  }
  auto api = std::make_unique<ChdbApi>();
  api->library_path = path;
  std::string missing;
  Resolve(handle, "chdb_version", api->version, missing);
  Resolve(handle, "chdb_set_signal_handlers_enabled", api->set_signal_handlers_enabled, missing);
  Resolve(handle, "chdb_connect", api->connect, missing);
  Resolve(handle, "chdb_close_conn", api->close_conn, missing);
  Resolve(handle, "chdb_query_n", api->query_n, missing);
  Resolve(handle, "chdb_stream_insert_n", api->stream_insert_n, missing);
  Resolve(handle, "chdb_stream_append", api->stream_append, missing);
  Resolve(handle, "chdb_stream_done", api->stream_done, missing);
  Resolve(handle, "chdb_stream_cancel_insert", api->stream_cancel_insert, missing);
  Resolve(handle, "chdb_stream_insert_error", api->stream_insert_error, missing);
  Resolve(handle, "chdb_destroy_insert_stream", api->destroy_insert_stream, missing);
  Resolve(handle, "chdb_result_buffer", api->result_buffer, missing);
  Resolve(handle, "chdb_result_length", api->result_length, missing);
  Resolve(handle, "chdb_result_error", api->result_error, missing);
  Resolve(handle, "chdb_destroy_query_result", api->destroy_query_result, missing);
  if (!missing.empty()) {
    dlclose(handle);
    return FailedPrecondition(path + " lacks chDB functions bgmigrate needs (" + missing +
                              "); it is not chDB 26.7 or newer: " + kFetchAdvice);
  }
  return api.release();  // never unloaded: engine threads may outlive any owner
}

}  // namespace

std::string ChdbLibraryPath() {
  const char* env = std::getenv("BGMIGRATE_CHDB_LIBRARY");
  if (env != nullptr && *env != '\0') return env;
  return BGM_DEFAULT_CHDB_LIBRARY;
}

Result<const ChdbApi*> LoadChdbLibrary() {
  static std::mutex mu;
  static const ChdbApi* loaded = nullptr;
  std::lock_guard<std::mutex> lock(mu);
  if (loaded != nullptr) return loaded;
  Result<const ChdbApi*> api = Load();
  if (api.ok()) loaded = *api;
  return api;
}

}  // namespace bgm
