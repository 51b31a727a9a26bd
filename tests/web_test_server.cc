// bgm_web_test_server: the web server alone, for the browser tests (tests/e2e) until
// `bgmigrate web` serves it. Reads the same environment as bgmigrate (DATABASE_URL,
// ADMIN_API_KEY, BGMIGRATE_BIND, BGMIGRATE_PORT, LANGFUSE_ENABLE_BACKGROUND_MIGRATIONS,
// BGMIGRATE_LEASE_SECONDS), applies the Postgres schema, registers the built-in background
// migrations, prints "listening on PORT" on stdout once it accepts requests and serves until
// SIGTERM or SIGINT. Exit 0 after a signal, 1 on any error (written to stderr).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <stop_token>
#include <thread>

#include "common/embedded_file.h"
#include "common/logging.h"
#include "core/config.h"
#include "core/pg_control_store.h"
#include "core/registry.h"
#include "migrations/file_registry.h"
#include "schema/schema_runner.h"
#include "web/server.h"

namespace {

int Fail(const bgm::Status& s) {
  std::fprintf(stderr, "bgm_web_test_server: %s\n", s.message().c_str());
  return 1;
}

}  // namespace

int main() {
  // SIGINT/SIGTERM are blocked in every thread and taken by one waiter, which requests a stop.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::stop_source stop;
  std::jthread waiter([&](std::stop_token st) {
    while (!st.stop_requested()) {
      timespec timeout{0, 100 * 1000 * 1000};
      const int sig = sigtimedwait(&signals, nullptr, &timeout);
      if (sig == SIGINT || sig == SIGTERM) {
        stop.request_stop();
        return;
      }
    }
  });

  bgm::Result<bgm::Config> config = bgm::LoadConfig([](const char* n) { return std::getenv(n); });
  if (!config.ok()) return Fail(config.status());
  bgm::InitLogging(config->log_format, spdlog::level::info);
  if (config->database_url.empty()) {
    return Fail(bgm::InvalidArgument("DATABASE_URL is not set"));
  }

  {
    bgm::Result<bgm::PgConnection> conn = bgm::PgConnection::Connect(config->database_url);
    if (!conn.ok()) return Fail(conn.status());
    bgm::Result<int> applied = bgm::ApplyPostgresSchema(*conn, bgm::PostgresSchemaFiles());
    if (!applied.ok()) return Fail(applied.status());
  }
  const bgm::Config& c = *config;
  const bgm::ControlStoreFactory factory =
      [&c]() -> bgm::Result<std::unique_ptr<bgm::ControlStore>> {
    bgm::Result<std::unique_ptr<bgm::PgControlStore>> s =
        bgm::PgControlStore::Open(c.database_url, c.lease);
    if (!s.ok()) return s.status();
    return std::unique_ptr<bgm::ControlStore>(std::move(*s));
  };
  // The migrations of BGMIGRATE_MIGRATIONS_DIR (the example application's, as the tests set it).
  bgm::Result<bgm::Registry> registry =
      bgm::LoadRegistry(c.migrations_dirs, bgm::BuiltinRegistry());
  if (!registry.ok()) return Fail(registry.status());
  {
    bgm::Result<std::unique_ptr<bgm::ControlStore>> store = factory();
    if (!store.ok()) return Fail(store.status());
    for (const bgm::MigrationSpec& spec : registry->specs()) {
      bgm::Result<bool> r = (*store)->Register(spec.name, spec.name);
      if (!r.ok()) return Fail(r.status());
    }
  }

  bgm::WebOptions options;
  options.bind = c.bind;
  options.port = c.port;
  options.admin_api_key = c.admin_api_key;
  options.enabled = c.background_migrations_enabled;
  options.factory = factory;
  options.registry = &*registry;
  bgm::Status s = bgm::RunWebServer(options, stop.get_token(), [](int port) {
    std::printf("listening on %d\n", port);
    std::fflush(stdout);
  });
  waiter.request_stop();
  return s.ok() ? 0 : Fail(s);
}
