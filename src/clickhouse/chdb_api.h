// ChdbApi: the few C functions of chDB's libchdb.so (ClickHouse as an in-process library) that
// the embedded transport calls, resolved at run time with dlopen/dlsym so bgmigrate builds and
// runs without the library. Declarations are our own, written from chDB's documented C API
// (chdb.h of chDB 26.7); only opaque handles are used, never a chDB struct layout.
//
// Thread-safe: LoadChdbLibrary() loads once per process (later calls return the same table);
// the library is never unloaded.
//
//   Result<const ChdbApi*> api = LoadChdbLibrary();
//   chdb_connection* conn = (*api)->connect(argc, argv);
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

extern "C" {
// Opaque handles, as chDB declares them: a pointer to a struct holding one internal pointer.
struct bgm_chdb_result;
struct bgm_chdb_connection_s;
struct bgm_chdb_insert_stream_s;
}

namespace bgm {

using ChdbResult = bgm_chdb_result;                  // chdb_result
using ChdbConnection = bgm_chdb_connection_s*;       // chdb_connection
using ChdbInsertStream = bgm_chdb_insert_stream_s*;  // chdb_insert_stream
inline constexpr int kChdbSuccess = 0;               // CHDBSuccess (chdb_state)

struct ChdbApi {
  std::string library_path;  // the file that was loaded
  const char* (*version)();
  // Call before connect with 0: chDB then installs no signal handlers (bgmigrate keeps its own
  // SIGINT/SIGTERM handling).
  void (*set_signal_handlers_enabled)(int enabled);
  // argv as for clickhouse-local: argv[0] a program name, then "--path=<dir>". Returns a pointer
  // to a connection, or NULL (chDB prints the reason to stderr).
  ChdbConnection* (*connect)(int argc, char** argv);
  void (*close_conn)(ChdbConnection* conn);
  ChdbResult* (*query_n)(ChdbConnection conn, const char* query, size_t query_len,
                         const char* format, size_t format_len);
  // The insert statement without FORMAT, the input format apart. Never NULL: check
  // stream_insert_error.
  ChdbInsertStream (*stream_insert_n)(ChdbConnection conn, const char* query, size_t query_len,
                                      const char* format, size_t format_len);
  int (*stream_append)(ChdbInsertStream stream, const void* data, size_t len);  // chdb_state
  ChdbResult* (*stream_done)(ChdbInsertStream stream);
  void (*stream_cancel_insert)(ChdbInsertStream stream);
  const char* (*stream_insert_error)(ChdbInsertStream stream);
  void (*destroy_insert_stream)(ChdbInsertStream stream);
  char* (*result_buffer)(ChdbResult* result);
  size_t (*result_length)(ChdbResult* result);
  const char* (*result_error)(ChdbResult* result);  // NULL when the statement succeeded
  void (*destroy_query_result)(ChdbResult* result);
};

// The library to load: $BGMIGRATE_CHDB_LIBRARY if set, else where scripts/fetch-chdb.sh puts
// it (third_party/chdb/libchdb.so in the source tree this binary was built from).
std::string ChdbLibraryPath();

// Loads the library and resolves every function once. kFailedPrecondition when the file is
// missing or is not a usable libchdb.so, with the fix (run scripts/fetch-chdb.sh or set
// BGMIGRATE_CHDB_LIBRARY).
Result<const ChdbApi*> LoadChdbLibrary();

// RAII owners of chDB handles: nothing else calls chdb_destroy_query_result /
// chdb_destroy_insert_stream. `api` must be the loaded table.
struct ChdbResultDeleter {
  const ChdbApi* api;
  void operator()(ChdbResult* r) const noexcept {
    if (r != nullptr) api->destroy_query_result(r);
  }
};
using ChdbResultPtr = std::unique_ptr<ChdbResult, ChdbResultDeleter>;

}  // namespace bgm
