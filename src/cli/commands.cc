#include "cli/commands.h"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <stop_token>
#include <thread>

#include "common/clock.h"
#include "common/logging.h"
#include "core/config.h"
#include "core/manager.h"
#include "core/pg_control_store.h"
#include "core/registry.h"
#include "core/summary.h"
#include "schema/schema_runner.h"

namespace bgm {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int Fail(const Status& s) {
  std::fprintf(stderr, "bgmigrate: %s\n", s.message().c_str());
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ||
                 s.code() == StatusCode::kFailedPrecondition
             ? kExitUsage
             : kExitFailed;
}

std::string ConfigHelp() {
  std::string out = "\nEnvironment:\n";
  for (const SettingDoc& d : SettingDocs()) {
    char line[512];
    std::snprintf(line, sizeof line, "  %-40s %-16s %s\n", d.name, d.default_value, d.meaning);
    out += line;
  }
  return out;
}

// Blocks SIGINT/SIGTERM in every thread and turns them into a stop request.
class SignalStop {
 public:
  SignalStop() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    waiter_ = std::jthread([this](std::stop_token st) {
      while (!st.stop_requested()) {
        timespec timeout{0, 200 * 1000 * 1000};
        const int sig = sigtimedwait(&set_, nullptr, &timeout);
        if (sig == SIGINT || sig == SIGTERM) {
          spdlog::info("Received {}; finishing the current batch and releasing the lock",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
          source_.request_stop();
          return;
        }
      }
    });
  }
  std::stop_token token() const { return source_.get_token(); }

 private:
  sigset_t set_;
  std::stop_source source_;
  std::jthread waiter_;
};

Result<std::unique_ptr<PgControlStore>> OpenStore(const Config& config) {
  return PgControlStore::Open(config.database_url, config.lease);
}

Status ApplySchema(const Config& config) {
  Result<PgConnection> conn = PgConnection::Connect(config.database_url);
  if (!conn.ok()) return conn.status();
  Result<int> applied = ApplyPostgresSchema(*conn, PostgresSchemaFiles());
  return applied.ok() ? Status::Ok() : applied.status();
}

MigrationEnv EnvFrom(const Config& c) {
  return MigrationEnv{c.database_url, c.clickhouse_url, c.clickhouse_user, c.clickhouse_password,
                      c.clickhouse_db};
}

int CmdWorker(const Config& config, bool exit_when_idle) {
  SignalStop signals;
  if (Status s = ApplySchema(config); !s.ok()) return Fail(s);
  SystemClock clock;
  ManagerOptions options{config.worker_id, config.lease, config.poll,
                         config.background_migrations_enabled, exit_when_idle};
  Manager manager(
      options, BuiltinRegistry(),
      [&config]() -> Result<std::unique_ptr<ControlStore>> {
        Result<std::unique_ptr<PgControlStore>> s = OpenStore(config);
        if (!s.ok()) return s.status();
        return std::unique_ptr<ControlStore>(std::move(*s));
      },
      clock, EnvFrom(config));
  if (Status s = manager.RegisterAll(); !s.ok()) return Fail(s);
  if (Status s = manager.Run(signals.token()); !s.ok()) return Fail(s);
  if (exit_when_idle && !signals.token().stop_requested() && config.background_migrations_enabled) {
    Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
    if (!store.ok()) return Fail(store.status());
    Result<std::vector<MigrationRow>> rows = (*store)->List();
    if (!rows.ok()) return Fail(rows.status());
    for (const MigrationRow& row : *rows) {
      if (row.status == MigrationStatus::kFailed) return kExitFailed;
    }
  }
  return kExitOk;
}

int CmdMigrate(const Config& config) {
  if (Status s = ApplySchema(config); !s.ok()) return Fail(s);
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  for (const MigrationSpec& spec : BuiltinRegistry().specs()) {
    Result<bool> r = (*store)->Register(spec.name, spec.name);
    if (!r.ok()) return Fail(r.status());
  }
  std::printf("Fast migrations applied; %zu background migrations registered\n",
              BuiltinRegistry().specs().size());
  return kExitOk;
}

std::string Cell(const std::optional<std::string>& v) { return v ? *v : "-"; }

int CmdList(const Config& config, bool json) {
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Result<std::vector<MigrationRow>> rows = (*store)->List();
  if (!rows.ok()) return Fail(rows.status());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const MigrationRow& row : *rows) out.push_back(row.ToJson());
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-50s %-9s %12s  %-24s %s\n", "NAME", "STATUS", "ROWS", "WORKER", "DETAIL");
  for (const MigrationRow& row : *rows) {
    std::string detail = row.failed_reason.value_or("");
    if (row.status == MigrationStatus::kFinished) detail = "finished " + Cell(row.finished_at);
    std::printf("%-50s %-9s %12lld  %-24s %s\n", row.name.c_str(), MigrationStatusName(row.status),
                static_cast<long long>(row.rows_processed), Cell(row.worker_id).c_str(),
                detail.c_str());
  }
  return kExitOk;
}

int CmdStatus(const Config& config, bool json) {
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Result<std::vector<MigrationRow>> rows = (*store)->List();
  if (!rows.ok()) return Fail(rows.status());
  const nlohmann::json summary = Summarize(*rows, config.background_migrations_enabled);
  if (json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << summary["status"].get<std::string>() << "\n";
    for (const auto& [k, v] : summary["counts"].items()) std::cout << "  " << k << ": " << v << "\n";
  }
  return kExitOk;
}

std::string Actor() {
  const char* user = std::getenv("USER");
  return std::string("cli:") + (user ? user : "unknown");
}

int CmdRetry(const Config& config, const std::string& name, bool from_start) {
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  if (Status s = (*store)->Retry(name, from_start, Actor()); !s.ok()) return Fail(s);
  std::printf("%s will run again %s\n", name.c_str(),
              from_start ? "from the start" : "from its saved cursor");
  return kExitOk;
}

int CmdSetArgs(const Config& config, const std::string& name, const std::string& text) {
  nlohmann::json args = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (args.is_discarded()) {
    return Fail(InvalidArgument("'" + text + "' is not valid JSON; example: bgmigrate set-args " +
                                name + " '{\"batchSize\": 2500}'"));
  }
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Result<MigrationRow> row = (*store)->Get(name);
  if (!row.ok()) return Fail(row.status());
  const MigrationSpec* spec = BuiltinRegistry().Find(row->script);
  if (spec == nullptr) {
    return Fail(InvalidArgument("migration " + name + " has the unknown script '" + row->script +
                                "'; its args cannot be checked"));
  }
  if (!args.is_object()) {
    return Fail(InvalidArgument("args must be a JSON object such as {\"batchSize\": 2500}, got " +
                                args.dump()));
  }
  if (Status v = spec->create()->Validate(args); !v.ok()) {
    return Fail(v.WithContext("invalid args for " + name));
  }
  if (Status s = (*store)->SetArgs(name, args, Actor()); !s.ok()) return Fail(s);
  std::printf("args of %s set to %s; they take effect when it next starts\n", name.c_str(),
              args.dump().c_str());
  return kExitOk;
}

int CmdPause(const Config& config, const std::string& name, bool pause) {
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Status s = pause ? (*store)->Pause(name, Actor()) : (*store)->Resume(name, Actor());
  if (!s.ok()) return Fail(s);
  std::printf("%s %s\n", name.c_str(), pause ? "paused" : "resumed");
  return kExitOk;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app("bgmigrate: zero-downtime data migrations for Postgres + ClickHouse",
               "bgmigrate");
  app.require_subcommand(1);
  app.footer(ConfigHelp());

  bool exit_when_idle = false;
  bool json = false;
  bool from_start = false;
  std::string name, args_text;

  CLI::App* worker = app.add_subcommand("worker", "Run background migrations until stopped");
  worker->add_flag("--exit-when-idle", exit_when_idle,
                   "Exit once no migration is pending or running (exit 1 if any failed)");
  CLI::App* migrate =
      app.add_subcommand("migrate", "Apply fast migrations, register background ones, exit");
  CLI::App* list = app.add_subcommand("list", "List background migrations");
  list->add_flag("--json", json, "JSON output");
  CLI::App* status = app.add_subcommand("status", "FINISHED | ACTIVE | FAILED | DISABLED");
  status->add_flag("--json", json, "JSON output");
  CLI::App* retry = app.add_subcommand("retry", "Run a failed migration again");
  retry->add_option("name", name, "Migration name")->required();
  retry->add_flag("--from-start", from_start, "Forget the saved cursor and start over");
  CLI::App* set_args = app.add_subcommand("set-args", "Replace a migration's args");
  set_args->add_option("name", name, "Migration name")->required();
  set_args->add_option("json", args_text, "Args as a JSON object, e.g. '{\"batchSize\": 2500}'")
      ->required();
  CLI::App* pause = app.add_subcommand("pause", "Pause a migration (a running one stops after "
                                                "its current batch)");
  pause->add_option("name", name, "Migration name")->required();
  CLI::App* resume = app.add_subcommand("resume", "Resume a paused migration");
  resume->add_option("name", name, "Migration name")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "bgmigrate: %s\nRun 'bgmigrate --help' for usage.\n", e.what());
    return kExitUsage;
  }

  Result<Config> config = LoadConfig([](const char* n) { return std::getenv(n); });
  if (!config.ok()) return Fail(config.status());
  InitLogging(config->log_format, spdlog::level::info);
  if (config->database_url.empty()) {
    return Fail(InvalidArgument(
        "DATABASE_URL is not set; e.g. export DATABASE_URL=postgresql://user@127.0.0.1:5432/db "
        "(scripts/services.sh env prints it for the local services)"));
  }

  if (worker->parsed()) return CmdWorker(*config, exit_when_idle);
  if (migrate->parsed()) return CmdMigrate(*config);
  if (list->parsed()) return CmdList(*config, json);
  if (status->parsed()) return CmdStatus(*config, json);
  if (retry->parsed()) return CmdRetry(*config, name, from_start);
  if (set_args->parsed()) return CmdSetArgs(*config, name, args_text);
  if (pause->parsed()) return CmdPause(*config, name, true);
  if (resume->parsed()) return CmdPause(*config, name, false);
  return kExitUsage;
}

}  // namespace bgm
