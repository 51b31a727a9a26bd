#include "cli/commands.h"

#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string_view>
#include <thread>

#include "cli/signal_stop.h"
#include "clickhouse/client_factory.h"
#include "clickhouse/node_list.h"
#include "common/clock.h"
#include "common/logging.h"
#include "core/args.h"
#include "core/chunk_summary.h"
#include "core/config.h"
#include "core/file_checksums.h"
#include "core/manager.h"
#include "core/pg_control_store.h"
#include "core/readiness.h"
#include "core/registry.h"
#include "core/summary.h"
#include "core/upgrade_gate.h"
#include "migrations/file_check.h"
#include "migrations/file_copy.h"
#include "migrations/file_registry.h"
#include "migrations/verify.h"
#include "schema/application_schema.h"
#include "schema/clickhouse_schema.h"
#include "schema/schema_runner.h"
#include "web/server.h"

namespace bgm {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

// The longest name the CLI passes on, as the API's (a longer one is no migration's name), and
// the most of an error message printed: messages quote user input, cut (see Shown).
constexpr size_t kMaxNameBytes = 200;
constexpr size_t kMaxMessageBytes = 4000;

// What the user typed, for a message: at most 200 bytes, marked "... (N bytes)" when cut.
std::string Shown(const std::string& text) { return TextExcerpt(text, 200); }

int Fail(const Status& s) {
  std::fprintf(stderr, "bgmigrate: %s\n", TextExcerpt(s.message(), kMaxMessageBytes).c_str());
  return s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kNotFound ||
                 s.code() == StatusCode::kFailedPrecondition
             ? kExitUsage
             : kExitFailed;
}

std::string ConfigHelp() {
  std::string out = "\nEnvironment:\n";
  for (const SettingDoc& d : SettingDocs()) {
    char line[512];
    std::snprintf(line, sizeof line, "  %-44s %-16s %s\n", d.name, d.default_value, d.meaning);
    out += line;
  }
  return out;
}

Result<std::unique_ptr<PgControlStore>> OpenStore(const Config& config) {
  Result<std::unique_ptr<PgControlStore>> store =
      PgControlStore::Open(config.database_url, config.lease);
  if (!store.ok() || config.application_scripts.empty()) return store;
  BGM_RETURN_IF_ERROR((*store)->UseApplicationLedger(config.application_scripts));
  return store;
}

// A client for CLICKHOUSE_URL (a server or the embedded engine) bound to `database` ("" for
// none).
Result<std::unique_ptr<ClickHouseClient>> OpenClickHouse(const Config& config,
                                                         const std::string& database) {
  return OpenClickHouseClient({.url = config.clickhouse_url,
                               .user = config.clickhouse_user,
                               .password = config.clickhouse_password,
                               .database = database});
}

// The fast migrations: bgmigrate's control tables (the control tables are needed by every
// command) and the application's files from BGMIGRATE_SCHEMA_DIR, Postgres then ClickHouse
// (when configured and the application has ClickHouse files). Everything is
// checked before anything is written: the files' names and versions, the ClickHouse files'
// placeholders and applied checksums, then (in ApplyPostgresSchema) the Postgres checksums and
// the control tables' shape. One advisory lock is held throughout. A file that requires
// background migrations not finished yet stops the files from it on (Postgres ones: the
// ClickHouse files too): *held says which and why; the rest of start-up goes on, so that the
// workers can finish them.
Status ApplySchema(const Config& config, std::string* held) {
  Result<ApplicationSchema> app = ApplicationSchema::Load(config.schema_dir);
  if (!app.ok()) return app.status();
  Result<PgConnection> conn = PgConnection::Connect(config.database_url);
  if (!conn.ok()) return conn.status();
  Result<PgAdvisoryLock> lock = PgAdvisoryLock::Acquire(*conn, kSchemaLockKey);
  if (!lock.ok()) return lock.status();

  const bool clickhouse = config.auto_clickhouse_migration && !config.clickhouse_url.empty() &&
                          !app->clickhouse().empty();
  std::unique_ptr<ClickHouseClient> admin;
  std::optional<ClickHouseDialect> dialect;
  if (clickhouse) {
    Result<std::unique_ptr<ClickHouseClient>> opened = OpenClickHouse(config, "");
    if (!opened.ok()) return opened.status();
    admin = std::move(*opened);
    const ClickHouseCluster cluster{config.clickhouse_cluster_enabled,
                                    config.clickhouse_cluster_name};
    Result<ClickHouseDialect> detected = DetectDialect(*admin, cluster);
    if (!detected.ok()) return detected.status().WithContext("connecting to ClickHouse");
    dialect = std::move(*detected);
    BGM_RETURN_IF_ERROR(
        CheckClickHouseSchema(*admin, *dialect, config.clickhouse_db, app->clickhouse()));
  }
  if (config.auto_postgres_migration) {
    if (!config.control_schema.empty()) {  // the search path of every connection starts there
      BGM_RETURN_IF_ERROR(
          conn->Run("CREATE SCHEMA IF NOT EXISTS " + QuoteIdent(config.control_schema)));
    }
    Result<int> applied = ApplyPostgresSchema(*conn, PostgresSchemaFiles(), app->postgres(), held);
    if (!applied.ok()) return applied.status();
  }
  if (!clickhouse || !held->empty()) return Status::Ok();
  BGM_RETURN_IF_ERROR(EnsureClickHouseDatabase(*admin, *dialect, config.clickhouse_db));
  Result<std::unique_ptr<ClickHouseClient>> client = OpenClickHouse(config, config.clickhouse_db);
  if (!client.ok()) return client.status();
  Result<int> applied = ApplyClickHouseSchema(*conn, **client, *dialect, config.clickhouse_db,
                                              app->clickhouse(), held);
  return applied.ok() ? Status::Ok() : applied.status();
}

MigrationEnv EnvFrom(const Config& c) {
  return MigrationEnv{c.database_url, c.clickhouse_url, c.clickhouse_user, c.clickhouse_password,
                      c.clickhouse_db};
}

ControlStoreFactory StoreFactory(const Config& config) {
  return [&config]() -> Result<std::unique_ptr<ControlStore>> {
    Result<std::unique_ptr<PgControlStore>> s = OpenStore(config);
    if (!s.ok()) return s.status();
    return std::unique_ptr<ControlStore>(std::move(*s));
  };
}

// Refuses migration files changed under started migrations; records the others' checksums.
Status CheckFileChecksums(const Config& config, const Registry& registry) {
  Result<PgConnection> conn = PgConnection::Connect(config.database_url);
  if (!conn.ok()) return conn.status();
  return AdoptFileChecksums(*conn, registry);
}

// `worker`, `web` and `up`: fast migrations, registration, then the worker loop and/or the web
// server until SIGINT/SIGTERM.
int CmdServe(const Config& config, const Registry& registry, bool run_worker, bool run_web,
             bool exit_when_idle) {
  SignalStop signals(config.shutdown_timeout);
  std::string held;  // logged by ApplySchema; the workers may finish what it waits for
  if (Status s = ApplySchema(config, &held); !s.ok()) return Fail(s);
  if (Status s = CheckFileChecksums(config, registry); !s.ok()) return Fail(s);
  SystemClock clock;
  ManagerOptions options;
  options.worker_id = config.worker_id;
  options.lease = config.lease;
  options.poll = config.poll;
  options.enabled = config.background_migrations_enabled;
  options.exit_when_idle = exit_when_idle && !run_web;
  options.outage_budget = config.outage_budget;
  options.throttle = config.throttle;
  Manager manager(options, registry, StoreFactory(config), clock, EnvFrom(config));
  if (Status s = manager.RegisterAll(); !s.ok()) return Fail(s);

  std::stop_source all;
  std::stop_callback on_signal(signals.token(), [&all] { all.request_stop(); });
  Status worker_status;
  std::jthread worker;
  if (run_worker) {
    worker = std::jthread([&] { worker_status = manager.Run(all.get_token()); });
  }
  Status web_status;
  if (run_web) {
    WebOptions web{.bind = config.bind,
                   .port = config.port,
                   .admin_api_key = config.admin_api_key,
                   .enabled = config.background_migrations_enabled,
                   .factory = StoreFactory(config),
                   .registry = &registry};
    web_status = RunWebServer(web, all.get_token());
    all.request_stop();  // the web server ended (stop, or it could not bind): stop the worker too
  }
  if (worker.joinable()) worker.join();
  if (!web_status.ok()) return Fail(web_status);
  if (!worker_status.ok()) return Fail(worker_status);
  if (run_worker && exit_when_idle && !signals.token().stop_requested() &&
      config.background_migrations_enabled) {
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

int CmdMigrate(const Config& config, const Registry& registry) {
  std::string held;
  if (Status s = ApplySchema(config, &held); !s.ok()) return Fail(s);
  if (Status s = CheckFileChecksums(config, registry); !s.ok()) return Fail(s);
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  for (const MigrationSpec& spec : registry.specs()) {
    Result<bool> r = (*store)->Register(spec.name, spec.name);
    if (!r.ok()) return Fail(r.status());
  }
  if (Status s = (*store)->AdoptApplicationRows(); !s.ok()) return Fail(s);
  if (!held.empty()) {
    // The background migrations are registered, so that workers can finish what it waits for.
    std::fprintf(stderr, "bgmigrate: %s\n", held.c_str());
    return kExitFailed;
  }
  std::printf("Fast migrations applied; %zu background migrations registered\n",
              registry.specs().size());
  return kExitOk;
}

std::string Cell(const std::optional<std::string>& v) { return v ? *v : "-"; }

int CmdList(const Config& config, const Registry& registry, bool json) {
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Result<std::vector<MigrationRow>> rows = (*store)->List();
  if (!rows.ok()) return Fail(rows.status());
  JudgeReadiness(*rows, registry);
  Result<std::map<std::string, ChunkCounts>> chunks = (*store)->CountChunks();
  if (!chunks.ok()) return Fail(chunks.status());
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const MigrationRow& row : *rows) {
      nlohmann::json j = row.ToJson();
      j["chunks"] = nullptr;
      if (const auto c = chunks->find(row.name); c != chunks->end()) {
        std::vector<Chunk> active;
        if (c->second.running + c->second.failed > 0) {
          Result<std::vector<Chunk>> listed = (*store)->ListChunks(row.name, ActiveChunksFilter());
          if (!listed.ok()) return Fail(listed.status());
          active = std::move(*listed);
        }
        j["chunks"] = ChunkSummaryJson(c->second, active);
      }
      out.push_back(std::move(j));
    }
    std::cout << out.dump(2) << "\n";
    return kExitOk;
  }
  std::printf("%-50s %-9s %12s  %-24s %s\n", "NAME", "STATUS", "ROWS", "WORKER", "DETAIL");
  for (const MigrationRow& row : *rows) {
    std::string detail = row.failed_reason.value_or("");
    if (row.status == MigrationStatus::kFinished) detail = "finished " + Cell(row.finished_at);
    if (row.status == MigrationStatus::kSkipped) {
      detail = "skipped " + Cell(row.finished_at) + ": " + row.skipped_reason.value_or("");
    }
    if (row.status == MigrationStatus::kCancelled) {
      detail = "cancelled " + Cell(row.cancelled_at) + "; retry runs it again from its cursor";
    }
    if (row.status == MigrationStatus::kWaiting) {
      detail = "since " + Cell(row.waiting_since) + ", next try " + Cell(row.next_attempt_at) +
               ": " + row.waiting_reason.value_or("");
    }
    if (row.status == MigrationStatus::kThrottled) {
      detail = "since " + Cell(row.throttled_since) + ": " + ThrottleText(row);
    }
    if (row.blocked_by) {
      detail = "blocked by " + *row.blocked_by + " (" + row.blocked_by_status.value_or("") +
               "): retry or resume it";
    }
    if (row.waits_for) {
      detail = "waits for " + *row.waits_for + " (" + row.waits_for_status.value_or("") + ")";
    }
    if (row.gate) detail = "gated: runs once " + *row.gate + "=true for the workers";
    if (row.unknown_reason) detail = *row.unknown_reason;
    if (const auto c = chunks->find(row.name); c != chunks->end()) {
      detail = ChunkSummaryText(c->second) + (detail.empty() ? "" : "; " + detail);
    }
    std::printf("%-50s %-9s %12lld  %-24s %s\n", row.name.c_str(), MigrationStatusName(row.status),
                static_cast<long long>(row.rows_processed), Cell(row.worker_id).c_str(),
                detail.c_str());
  }
  return kExitOk;
}

// `gate`: exit 0 only when every named migration (default: all registered) has finished.
int CmdGate(const Config& config, const Registry& registry, const std::vector<std::string>& names) {
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Result<std::vector<MigrationRow>> rows = (*store)->List();
  if (!rows.ok()) return Fail(rows.status());
  Result<std::vector<GateEntry>> gate = JudgeGate(std::move(*rows), registry, names);
  if (!gate.ok()) return Fail(gate.status());
  size_t open = 0;
  for (const GateEntry& e : *gate) {
    if (e.finished) continue;
    ++open;
    std::printf("%s: %s\n", e.name.c_str(), e.why.c_str());
  }
  if (open > 0) {
    std::printf("gate: closed: %zu of %zu background migrations have not finished\n", open,
                gate->size());
    return kExitFailed;
  }
  std::printf("gate: open: all %zu background migrations have finished\n", gate->size());
  return kExitOk;
}

int CmdStatus(const Config& config, const Registry& registry, bool json) {
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Result<std::vector<MigrationRow>> rows = (*store)->List();
  if (!rows.ok()) return Fail(rows.status());
  JudgeReadiness(*rows, registry);
  const nlohmann::json summary = Summarize(*rows, config.background_migrations_enabled);
  if (json) {
    std::cout << summary.dump(2) << "\n";
  } else {
    std::cout << summary["status"].get<std::string>() << "\n";
    for (const auto& [k, v] : summary["counts"].items())
      std::cout << "  " << k << ": " << v << "\n";
    Result<std::map<std::string, ChunkCounts>> chunks = (*store)->CountChunks();
    if (!chunks.ok()) return Fail(chunks.status());
    for (const MigrationRow& row : *rows) {
      const auto c = chunks->find(row.name);
      if (c == chunks->end() || IsDone(row.status)) continue;
      std::cout << "  " << row.name << ": " << ChunkSummaryText(c->second) << "\n";
    }
  }
  return kExitOk;
}

// kNotFound before any store is asked when `name` is too long to be a migration's name (the
// store's own "no background migration named ..." would quote it whole).
Status CheckName(const std::string& name) {
  if (name.size() <= kMaxNameBytes) return Status::Ok();
  return NotFound("no background migration named '" + Shown(name) + "': names are at most " +
                  std::to_string(kMaxNameBytes) + " bytes; `bgmigrate list` shows the known ones");
}

std::string Actor() {
  const char* user = std::getenv("USER");
  return std::string("cli:") + (user ? user : "unknown");
}

int CmdRetry(const Config& config, const Registry& registry, const std::string& name,
             bool from_start) {
  if (Status s = CheckName(name); !s.ok()) return Fail(s);
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  if (Status s = (*store)->Retry(name, from_start, Actor()); !s.ok()) return Fail(s);
  // From the start, a migration file's current content is adopted (see AdoptFileChecksums).
  if (const MigrationSpec* spec = registry.Find(name); spec != nullptr && from_start) {
    Result<PgConnection> conn = PgConnection::Connect(config.database_url);
    if (!conn.ok()) return Fail(conn.status());
    if (Status s = AdoptFileChecksum(*conn, *spec); !s.ok()) return Fail(s);
  }
  std::printf("%s will run again %s\n", name.c_str(),
              from_start ? "from the start" : "from its saved cursor");
  return kExitOk;
}

int CmdSetArgs(const Config& config, const Registry& registry, const std::string& name,
               const std::string& text) {
  if (Status s = CheckName(name); !s.ok()) return Fail(s);
  nlohmann::json args = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (args.is_discarded()) {
    return Fail(InvalidArgument("'" + Shown(text) +
                                "' is not valid JSON; example: bgmigrate set-args " + name +
                                " '{\"batchSize\": 2500}'"));
  }
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Result<MigrationRow> row = (*store)->Get(name);
  if (!row.ok()) return Fail(row.status());
  const MigrationSpec* spec = registry.Find(row->script);
  if (spec == nullptr) {
    return Fail(InvalidArgument("migration " + name + " has the unknown script '" + row->script +
                                "'; its args cannot be checked"));
  }
  if (!args.is_object()) {
    return Fail(InvalidArgument("args must be a JSON object such as {\"batchSize\": 2500}, got " +
                                JsonExcerpt(args)));
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
  if (Status s = CheckName(name); !s.ok()) return Fail(s);
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Status s = pause ? (*store)->Pause(name, Actor()) : (*store)->Resume(name, Actor());
  if (!s.ok()) return Fail(s);
  std::printf("%s %s\n", name.c_str(), pause ? "paused" : "resumed");
  return kExitOk;
}

// `skip NAME --reason TEXT` and `cancel NAME [--reason TEXT]`.
int CmdSkipOrCancel(const Config& config, const std::string& name, bool skip,
                    const std::string& reason) {
  if (Status s = CheckName(name); !s.ok()) return Fail(s);
  if (skip && reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(InvalidArgument("skip needs --reason: say why no row of " + name +
                                " needs running, e.g. bgmigrate skip " + name +
                                " --reason 'copied by hand in 2024'"));
  }
  Result<std::unique_ptr<PgControlStore>> store = OpenStore(config);
  if (!store.ok()) return Fail(store.status());
  Status s = skip ? (*store)->Skip(name, reason, Actor()) : (*store)->Cancel(name, reason, Actor());
  if (!s.ok()) return Fail(s);
  if (skip) {
    std::printf("%s skipped: marked done without running; migrations that need it may run\n",
                name.c_str());
  } else {
    std::printf(
        "%s cancelled; a running batch finishes first, the cursor is kept (bgmigrate retry %s "
        "runs it again)\n",
        name.c_str(), name.c_str());
  }
  return kExitOk;
}

// "host:port" of a node's URL, without its scheme, credentials or path (never printed).
std::string NodeHostPort(std::string_view url) {
  if (size_t scheme = url.find("://"); scheme != std::string_view::npos) {
    url.remove_prefix(scheme + 3);
  }
  url = url.substr(0, url.find('/'));
  if (size_t at = url.rfind('@'); at != std::string_view::npos) url.remove_prefix(at + 1);
  return std::string(url);
}

// `verify`: every failure to verify (bad name or args, a database unreachable) exits 2, so 1
// always means "the target differs".
int CmdVerify(const Config& config, const std::string& name, bool json, VerifyOptions options) {
  auto fail = [](const Status& s) {
    std::fprintf(stderr, "bgmigrate: %s\n", TextExcerpt(s.message(), kMaxMessageBytes).c_str());
    return kExitUsage;
  };
  LoadedRegistry loaded = LoadRegistryFiles(config.migrations_dirs, BuiltinRegistry());
  if (!loaded.problems.empty()) {
    std::string message = "the migration files have problems:";
    for (const FileProblem& p : loaded.problems) message += "\n  " + p.ToString();
    return fail(InvalidArgument(message));
  }
  const MigrationFile* file = nullptr;
  std::string copies;
  for (const MigrationFile& f : loaded.files) {
    if (f.kind != MigrationKind::kPostgresToClickHouse) continue;
    copies += (copies.empty() ? "" : ", ") + f.name;
    if (f.name == name) file = &f;
  }
  if (file == nullptr) {
    return fail(InvalidArgument(
        "verify compares the copies only: " +
        (copies.empty() ? std::string("no postgres_to_clickhouse file is registered") : copies) +
        "; got '" + Shown(name) + "'"));
  }
  Result<PgConnection> pg = PgConnection::Connect(config.database_url);
  if (!pg.ok()) return fail(pg.status());
  Result<std::unique_ptr<ClickHouseClient>> ch = OpenClickHouse(config, config.clickhouse_db);
  if (!ch.ok()) return fail(ch.status());
  Result<nlohmann::json> stored = StoredArgs(*pg, name);
  if (!stored.ok()) return fail(stored.status());
  FileCopyMatch match = MatchFileCopy(*file, *pg, ch->get());
  if (!match.problems.empty()) {
    std::string message = "the migration file does not match the databases:";
    for (const FileProblem& p : match.problems) message += "\n  " + p.ToString();
    return fail(InvalidArgument(message));
  }
  const CopyPlan plan = std::move(match.plan);
  MigrationFile with_kind_args = *file;
  with_kind_args.args = FileCopyArgs(*file);
  options.args = with_kind_args.Defaults();
  for (const auto& [k, v] : stored->items()) options.args[k] = v;
  // With the cluster on, each node CLICKHOUSE_URL lists (the replicas) is read on its own:
  // replication is asynchronous, so one replica may hold what another does not yet.
  std::vector<std::string> nodes = {config.clickhouse_url};
  if (config.clickhouse_cluster_enabled) {
    Result<std::vector<std::string>> listed = SplitClickHouseUrl(config.clickhouse_url);
    if (!listed.ok()) return fail(listed.status());
    nodes = *listed;
  }
  if (nodes.size() == 1) {
    Result<VerifyReport> report = VerifyPlan(plan, *pg, **ch, options);
    if (!report.ok()) return fail(report.status().WithContext("verifying " + name));
    if (json) {
      std::cout << report->ToJson().dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                << "\n";
    } else {
      std::cout << report->ToText();
    }
    return report->match() ? kExitOk : kExitFailed;
  }
  bool all_match = true;
  nlohmann::json replicas = nlohmann::json::array();
  for (size_t i = 0; i < nodes.size(); ++i) {
    const std::string label = "replica " + std::to_string(i + 1) + " of " +
                              std::to_string(nodes.size()) + " (" + NodeHostPort(nodes[i]) + ")";
    Config one = config;
    one.clickhouse_url = nodes[i];
    Result<std::unique_ptr<ClickHouseClient>> node = OpenClickHouse(one, config.clickhouse_db);
    if (!node.ok()) return fail(node.status().WithContext(label));
    Result<VerifyReport> report = VerifyPlan(plan, *pg, **node, options);
    if (!report.ok())
      return fail(report.status().WithContext("verifying " + name + " on " + label));
    all_match = all_match && report->match();
    if (json) {
      nlohmann::json j = report->ToJson();
      j["replica"] = label;
      replicas.push_back(std::move(j));
    } else {
      std::cout << "== " << label << "\n" << report->ToText();
    }
  }
  if (json) {
    std::cout << nlohmann::json{{"match", all_match}, {"replicas", replicas}}.dump(
                     2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
  } else {
    std::cout << (all_match ? "every replica matches\n" : "a replica differs (above)\n");
  }
  return all_match ? kExitOk : kExitFailed;
}

// `check`: every problem of the files, then (when they are valid and Postgres answers) their
// tables, keys and statements, without running or changing anything.
int CmdCheck(const Config& config, const std::vector<std::string>& dirs) {
  LoadedRegistry loaded = LoadRegistryFiles(dirs, BuiltinRegistry());
  std::vector<FileProblem> problems = loaded.problems;
  std::vector<std::string> notes;
  if (problems.empty()) {
    FileCheckReport report =
        CheckFilesAgainstDatabases(loaded.files, config.database_url,
                                   {config.clickhouse_url, config.clickhouse_user,
                                    config.clickhouse_password, config.clickhouse_db});
    problems = std::move(report.problems);
    notes = std::move(report.notes);
  }
  for (const FileProblem& p : problems) std::fprintf(stderr, "%s\n", p.ToString().c_str());
  for (const std::string& n : notes) std::fprintf(stderr, "note: %s\n", n.c_str());
  std::string folders;
  for (const std::string& d : dirs) folders += (folders.empty() ? "" : ", ") + d;
  if (!problems.empty()) {
    std::fprintf(stderr, "check: %zu %s in %s\n", problems.size(),
                 problems.size() == 1 ? "problem" : "problems", folders.c_str());
    return kExitUsage;
  }
  std::printf("check: %zu migration %s in %s\n", loaded.files.size(),
              loaded.files.size() == 1 ? "file is valid" : "files are valid",
              folders.empty() ? "(no folder)" : folders.c_str());
  return kExitOk;
}

}  // namespace

int RunCli(int argc, char** argv) {
  CLI::App app("bgmigrate: zero-downtime data migrations for Postgres + ClickHouse", "bgmigrate");
  app.require_subcommand(1);
  app.footer(ConfigHelp());

  bool exit_when_idle = false;
  bool json = false;
  bool from_start = false;
  std::string name, args_text;

  CLI::App* worker = app.add_subcommand("worker", "Run background migrations until stopped");
  worker->add_flag("--exit-when-idle", exit_when_idle,
                   "Exit once no migration is pending or running (exit 1 if any failed)");
  CLI::App* web = app.add_subcommand(
      "web",
      "Apply fast migrations, register background ones, serve the UI, JSON API and /metrics");
  CLI::App* up =
      app.add_subcommand("up", "web and worker in one process: the single-machine default");
  CLI::App* migrate =
      app.add_subcommand("migrate", "Apply fast migrations, register background ones, exit");
  CLI::App* list = app.add_subcommand("list", "List background migrations");
  list->add_flag("--json", json, "JSON output");
  CLI::App* status = app.add_subcommand("status", "FINISHED | ACTIVE | FAILED | DISABLED");
  status->add_flag("--json", json, "JSON output");
  std::vector<std::string> gate_names;
  CLI::App* gate = app.add_subcommand(
      "gate", "Exit 0 only when the named background migrations (default: all) have finished");
  gate->add_option("names", gate_names, "Migration names");
  CLI::App* retry = app.add_subcommand("retry", "Run a failed migration again");
  retry->add_option("name", name, "Migration name")->required();
  retry->add_flag("--from-start", from_start, "Forget the saved cursor and start over");
  CLI::App* set_args = app.add_subcommand("set-args", "Replace a migration's args");
  set_args->add_option("name", name, "Migration name")->required();
  set_args->add_option("json", args_text, "Args as a JSON object, e.g. '{\"batchSize\": 2500}'")
      ->required();
  CLI::App* pause = app.add_subcommand("pause",
                                       "Pause a migration (a running one stops after "
                                       "its current batch)");
  pause->add_option("name", name, "Migration name")->required();
  CLI::App* resume = app.add_subcommand("resume", "Resume a paused migration");
  resume->add_option("name", name, "Migration name")->required();
  std::string reason;
  CLI::App* skip = app.add_subcommand(
      "skip", "Mark a migration done without running it (e.g. its data was migrated another way)");
  skip->add_option("name", name, "Migration name")->required();
  skip->add_option("--reason", reason, "Why it needs no run (kept with it and in its events)")
      ->required();
  CLI::App* cancel = app.add_subcommand(
      "cancel",
      "Cancel a migration: a running one stops after its current batch; its cursor is kept for "
      "retry");
  cancel->add_option("name", name, "Migration name")->required();
  cancel->add_option("--reason", reason, "Why (kept in its events)");
  CLI::App* verify = app.add_subcommand(
      "verify",
      "Compare a copy's source and target: counts and key hashes per month, and the content "
      "of sampled (or all) rows value by value (exit 1 if they differ, 2 if it cannot tell)");
  verify->add_option("name", name, "Copy migration name (a built-in or a copy file)")->required();
  verify->add_flag("--json", json, "JSON output");
  VerifyOptions verify_opts;
  verify
      ->add_option("--sample", verify_opts.sample,
                   "Rows compared by content, picked at random in the migration's window")
      ->capture_default_str();
  verify->add_flag("--full", verify_opts.full,
                   "Compare the content of every row (streamed in chunks)");

  std::vector<std::string> check_dirs;
  CLI::App* check = app.add_subcommand(
      "check", "Validate migration files without running anything (exit 2 listing every problem)");
  check->add_option("dirs", check_dirs,
                    "Folders of migration files (default: BGMIGRATE_MIGRATIONS_DIR)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    std::cout << app.help();
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    // CLI11 says only "A subcommand is required" for a mistyped command: name it.
    if (argc > 1 && argv[1][0] != '-' && app.get_subcommands().empty()) {
      std::string known;
      for (const CLI::App* sub : app.get_subcommands({})) {
        known += (known.empty() ? "" : ", ") + sub->get_name();
      }
      std::fprintf(stderr,
                   "bgmigrate: unknown command '%s'; the commands are %s\n"
                   "Run 'bgmigrate --help' for usage.\n",
                   Shown(argv[1]).c_str(), known.c_str());
      return kExitUsage;
    }
    // CLI11 quotes unexpected arguments whole.
    std::fprintf(stderr, "bgmigrate: %s\nRun 'bgmigrate --help' for usage.\n",
                 TextExcerpt(e.what(), 400).c_str());
    return kExitUsage;
  }

  Result<Config> config = LoadConfig([](const char* n) { return std::getenv(n); });
  if (!config.ok()) return Fail(config.status());
  InitLogging(config->log_format, spdlog::level::info);
  SetDefaultPgTimeouts({config->pg_connect_timeout, config->pg_read_timeout});
  SetDefaultClickHouseStallTimeout(config->clickhouse_stall);
  if (check->parsed()) {
    return CmdCheck(*config, check_dirs.empty() ? config->migrations_dirs : check_dirs);
  }
  if (config->database_url.empty()) {
    return Fail(InvalidArgument(
        "DATABASE_URL is not set; e.g. export DATABASE_URL=postgresql://user@127.0.0.1:5432/db "
        "(scripts/services.sh env prints it for the local services)"));
  }

  const auto dispatch = [&]() -> int {
    if (verify->parsed()) return CmdVerify(*config, name, json, verify_opts);
    // Every other command works on the registered migrations: the built-ins plus the files of
    // BGMIGRATE_MIGRATIONS_DIR, all valid or none (exit 2 listing every problem).
    Result<Registry> registry = LoadRegistry(config->migrations_dirs, BuiltinRegistry());
    if (!registry.ok()) return Fail(registry.status());
    for (const MigrationSpec& spec : registry->specs()) {
      if (!spec.application_script.empty()) {
        config->application_scripts.emplace_back(spec.name, spec.application_script);
      }
    }
    if (worker->parsed()) return CmdServe(*config, *registry, true, false, exit_when_idle);
    if (web->parsed()) return CmdServe(*config, *registry, false, true, false);
    if (up->parsed()) return CmdServe(*config, *registry, true, true, false);
    if (migrate->parsed()) return CmdMigrate(*config, *registry);
    if (list->parsed()) return CmdList(*config, *registry, json);
    if (status->parsed()) return CmdStatus(*config, *registry, json);
    if (gate->parsed()) return CmdGate(*config, *registry, gate_names);
    if (retry->parsed()) return CmdRetry(*config, *registry, name, from_start);
    if (set_args->parsed()) return CmdSetArgs(*config, *registry, name, args_text);
    if (pause->parsed()) return CmdPause(*config, name, true);
    if (resume->parsed()) return CmdPause(*config, name, false);
    if (skip->parsed()) return CmdSkipOrCancel(*config, name, true, reason);
    if (cancel->parsed()) return CmdSkipOrCancel(*config, name, false, reason);
    return kExitUsage;
  };
  const int code = dispatch();
  // The embedded ClickHouse engine (if this command opened one) closes cleanly and frees its
  // data directory before the process exits.
  ReleaseEmbeddedClickHouse();
  return code;
}

}  // namespace bgm
