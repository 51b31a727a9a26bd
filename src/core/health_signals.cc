#include "core/health_signals.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <functional>

#include "clickhouse/clickhouse_client.h"
#include "clickhouse/client_factory.h"
#include "postgres/pg_connection.h"

namespace bgm {
namespace {

std::string Trimmed(std::string_view s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) {
    s.remove_suffix(1);
  }
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  return std::string(s);
}

std::string QuotedLiteral(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// The connections of one set of signals, opened at the first read and again after an error.
class Connections {
 public:
  explicit Connections(const MigrationEnv& env) : env_(env) {}

  Result<PgConnection*> Postgres() {
    if (!pg_) {
      Result<PgConnection> c = PgConnection::Connect(env_.database_url);
      if (!c.ok()) return c.status();
      pg_.emplace(std::move(*c));
    }
    return &*pg_;
  }
  Result<ClickHouseClient*> ClickHouse() {
    if (!ch_) {
      Result<std::unique_ptr<ClickHouseClient>> c =
          OpenClickHouseClient({.url = env_.clickhouse_url,
                                .user = env_.clickhouse_user,
                                .password = env_.clickhouse_password,
                                .database = env_.clickhouse_db});
      if (!c.ok()) return c.status();
      ch_ = std::move(*c);
    }
    return ch_.get();
  }
  // One number from Postgres (`sql` returns one row and column; NULL: nullopt).
  Result<std::optional<double>> PgNumber(const std::string& name, const std::string& sql,
                                         const std::vector<PgParam>& params = {}) {
    Result<PgConnection*> conn = Postgres();
    if (!conn.ok()) return conn.status();
    Result<PgResult> r = (*conn)->Exec(sql, params);
    if (!r.ok()) {
      pg_.reset();
      return r.status();
    }
    if (r->rows() == 0 || r->IsNull(0, 0)) return std::optional<double>();
    if (r->columns() != 1 || r->rows() != 1) {
      return InvalidArgument(name + " returned " + std::to_string(r->rows()) + " rows of " +
                             std::to_string(r->columns()) +
                             " columns; it must return one number (one row, one column)");
    }
    return ProbeValue(name, r->Get(0, 0));
  }
  // One number from ClickHouse (`sql` without a FORMAT clause).
  Result<std::optional<double>> ChNumber(const std::string& name, const std::string& sql) {
    Result<ClickHouseClient*> ch = ClickHouse();
    if (!ch.ok()) return ch.status();
    Result<std::string> text = (*ch)->Query(sql + " FORMAT TabSeparated");
    if (!text.ok()) return text.status();
    return ProbeValue(name, *text);
  }

 private:
  const MigrationEnv env_;
  std::optional<PgConnection> pg_;
  std::unique_ptr<ClickHouseClient> ch_;
};

// A signal read by a function over the shared connections.
class FunctionSignal final : public HealthSignal {
 public:
  using Reader = std::function<Result<std::optional<double>>()>;
  FunctionSignal(std::string signal, std::string what, double threshold, Reader read)
      : signal_(std::move(signal)),
        what_(std::move(what)),
        threshold_(threshold),
        read_(std::move(read)) {}
  std::string signal() const override { return signal_; }
  std::string what() const override { return what_; }
  double threshold() const override { return threshold_; }
  Result<std::optional<double>> Read() override { return read_(); }

 private:
  const std::string signal_, what_;
  const double threshold_;
  const Reader read_;
};

// ClickHouse memory: the threshold is the setting, or 80% of the server's memory when it
// reports it (read once); without either the signal does not apply.
class ClickHouseMemorySignal final : public HealthSignal {
 public:
  ClickHouseMemorySignal(std::shared_ptr<Connections> conns, std::optional<double> bytes)
      : conns_(std::move(conns)), threshold_(bytes.value_or(0)), auto_(!bytes.has_value()) {}
  std::string signal() const override { return "clickhouse_memory"; }
  std::string what() const override { return "memory used by ClickHouse's queries and merges"; }
  double threshold() const override { return threshold_; }
  Result<std::optional<double>> Read() override {
    if (auto_) {
      Result<std::optional<double>> total = conns_->ChNumber(
          "OSMemoryTotal",
          "SELECT max(value) FROM system.asynchronous_metrics WHERE metric = 'OSMemoryTotal'");
      // An outage is waited out; a server without the table (the embedded engine) or the
      // metric (18.16) does not report its memory.
      if (!total.ok() && IsRetriable(total.status().code())) return total.status();
      auto_ = false;
      threshold_ = total.ok() ? total->value_or(0) * 0.8 : 0;
      if (threshold_ <= 0) {
        spdlog::info(
            "[Background Migration] ClickHouse does not report its memory "
            "(OSMemoryTotal); the memory signal is off unless "
            "BGMIGRATE_THROTTLE_CLICKHOUSE_MEMORY_BYTES is set");
      }
    }
    if (threshold_ <= 0) return std::optional<double>();
    return conns_->ChNumber(
        "MemoryTracking", "SELECT max(value) FROM system.metrics WHERE metric = 'MemoryTracking'");
  }

 private:
  std::shared_ptr<Connections> conns_;
  double threshold_;
  bool auto_;
};

// Postgres vacuums on the migration's tables: the tables are resolved to oids at the first read
// (named ones with to_regclass, those of a query from its plan).
class PostgresVacuumSignal final : public HealthSignal {
 public:
  PostgresVacuumSignal(std::shared_ptr<Connections> conns, const HealthTargets& targets,
                       double threshold)
      : conns_(std::move(conns)),
        tables_(targets.postgres_tables),
        relations_of_(targets.postgres_relations_of),
        threshold_(threshold) {}
  std::string signal() const override { return "postgres_vacuums"; }
  std::string what() const override { return "vacuums running on " + Names(); }
  double threshold() const override { return threshold_; }
  Result<std::optional<double>> Read() override {
    if (!resolved_) BGM_RETURN_IF_ERROR(Resolve());
    if (oids_ == "{}") return std::optional<double>();
    return conns_->PgNumber("postgres_vacuums",
                            "SELECT count(*)::float8 FROM pg_stat_progress_vacuum "
                            "WHERE datname = current_database() AND relid = ANY($1::oid[])",
                            {oids_});
  }

 private:
  std::string Names() const {
    std::string out;
    for (const std::string& t : tables_) out += (out.empty() ? "" : ", ") + t;
    return out.empty() ? "its Postgres tables" : out;
  }
  Status Resolve() {
    Result<PgConnection*> conn = conns_->Postgres();
    if (!conn.ok()) return conn.status();
    if (!relations_of_.empty()) {
      // The plan names every table the query reads, views and CTEs resolved.
      Result<PgResult> plan =
          (*conn)->Exec("EXPLAIN (VERBOSE, FORMAT JSON) SELECT * FROM (" + relations_of_ + ") q");
      if (!plan.ok()) return plan.status().WithContext("finding the tables of the copy's SELECT");
      std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& j) {
        if (j.is_object()) {
          if (j.contains("Relation Name") && j.contains("Schema")) {
            const std::string t =
                j["Schema"].get<std::string>() + "." + j["Relation Name"].get<std::string>();
            if (std::find(tables_.begin(), tables_.end(), t) == tables_.end()) {
              tables_.push_back(t);
            }
          }
          for (const auto& [k, v] : j.items()) walk(v);
        } else if (j.is_array()) {
          for (const nlohmann::json& v : j) walk(v);
        }
      };
      try {
        walk(nlohmann::json::parse(plan->Get(0, 0)));
      } catch (const nlohmann::json::exception& e) {
        return Internal(std::string("unreadable EXPLAIN output: ") + e.what());
      }
    }
    std::string oids;
    for (const std::string& t : tables_) {
      Result<PgResult> r = (*conn)->Exec("SELECT to_regclass($1)::oid", {t});
      if (!r.ok()) return r.status();
      if (!r->IsNull(0, 0)) oids += (oids.empty() ? "" : ",") + std::string(r->Get(0, 0));
    }
    oids_ = "{" + oids + "}";
    resolved_ = true;
    return Status::Ok();
  }

  std::shared_ptr<Connections> conns_;
  std::vector<std::string> tables_;
  const std::string relations_of_;
  const double threshold_;
  bool resolved_ = false;
  std::string oids_;
};

}  // namespace

Result<std::optional<double>> ProbeValue(const std::string& probe, std::string_view text) {
  const std::string v = Trimmed(text);
  if (v.empty() || v == "\\N") return std::optional<double>();
  char* end = nullptr;
  const double d = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !std::isfinite(d)) {
    return InvalidArgument(probe + " returned '" + v.substr(0, 80) +
                           "'; it must return one number, e.g. SELECT count(*) FROM ...");
  }
  return std::optional<double>(d);
}

std::vector<std::unique_ptr<HealthSignal>> MakeHealthSignals(const ThrottleSettings& settings,
                                                             const MigrationEnv& env,
                                                             const HealthTargets& targets) {
  auto conns = std::make_shared<Connections>(env);
  std::vector<std::unique_ptr<HealthSignal>> out;
  auto add = [&](std::string signal, std::string what, double threshold,
                 FunctionSignal::Reader read) {
    if (threshold > 0) {
      out.push_back(std::make_unique<FunctionSignal>(std::move(signal), std::move(what), threshold,
                                                     std::move(read)));
    }
  };
  if (!targets.clickhouse_tables.empty() && !env.clickhouse_url.empty()) {
    for (const std::string& table : targets.clickhouse_tables) {
      add("clickhouse_parts", "active parts in the busiest partition of " + table,
          settings.clickhouse_parts, [conns, table] {
            return conns->ChNumber(
                "clickhouse_parts",
                "SELECT max(c) FROM (SELECT count() AS c FROM system.parts WHERE database = "
                "currentDatabase() AND table = " +
                    QuotedLiteral(table) + " AND active GROUP BY partition_id)");
          });
    }
    add("clickhouse_merges", "merges in progress in ClickHouse", settings.clickhouse_merges,
        [conns] {
          return conns->ChNumber("clickhouse_merges", "SELECT count() FROM system.merges");
        });
    if (!settings.clickhouse_memory_bytes || *settings.clickhouse_memory_bytes > 0) {
      out.push_back(
          std::make_unique<ClickHouseMemorySignal>(conns, settings.clickhouse_memory_bytes));
    }
  }
  if (!targets.postgres_tables.empty() || !targets.postgres_relations_of.empty()) {
    add("postgres_replication_lag_seconds", "replication lag of Postgres's replicas (seconds)",
        settings.postgres_replication_lag_seconds, [conns] {
          return conns->PgNumber("postgres_replication_lag_seconds",
                                 "SELECT max(EXTRACT(EPOCH FROM replay_lag))::float8 "
                                 "FROM pg_stat_replication");
        });
    add("postgres_transaction_seconds", "age of the oldest open transaction in Postgres (seconds)",
        settings.postgres_transaction_seconds, [conns] {
          return conns->PgNumber(
              "postgres_transaction_seconds",
              "SELECT COALESCE(max(EXTRACT(EPOCH FROM now() - xact_start)), 0)::float8 "
              "FROM pg_stat_activity WHERE datname = current_database() "
              "AND xact_start IS NOT NULL AND pid <> pg_backend_pid() "
              "AND backend_type = 'client backend' AND application_name NOT LIKE 'bgmigrate%'");
        });
    if (settings.postgres_vacuums > 0) {
      out.push_back(
          std::make_unique<PostgresVacuumSignal>(conns, targets, settings.postgres_vacuums));
    }
  }
  for (const HealthProbe& p : targets.probes) {
    const std::string name = "probe " + p.name;
    if (p.database == "clickhouse") {
      add("probe:" + p.name, p.name + " (probe on ClickHouse)", p.threshold,
          [conns, p, name] { return conns->ChNumber(name, p.query); });
    } else {
      add("probe:" + p.name, p.name + " (probe on Postgres)", p.threshold,
          [conns, p, name] { return conns->PgNumber(name, p.query); });
    }
  }
  return out;
}

}  // namespace bgm
