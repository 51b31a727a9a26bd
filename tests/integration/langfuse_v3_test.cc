// The Langfuse v3 migration set (migration-sets/langfuse-v3/) on Langfuse v3's own table shapes
// (tests/fixtures/langfuse-v3/: its Postgres tables, "modelParameters" and enum types
// included, and its ClickHouse tables as its migrations leave them), on both engines. A seeded
// set with every edge case the issue lists is backfilled and copied, and each column is
// compared with what Langfuse's own mapping writes (its converters, JSON.stringify and
// ClickHouse's JSONEachRow parsing); each deliberate difference is named where it is asserted.
#include <gtest/gtest.h>
#include <httplib.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "migrations/file_registry.h"
#include "schema/application_schema.h"
#include "schema/clickhouse_schema.h"
#include "schema/schema_runner.h"
#include "testing/private_servers.h"
#include "testing/process.h"
#include "testing/recording_context.h"
#include "testing/test_clickhouse.h"
#include "testing/test_database.h"

namespace bgm {
namespace {

using testing::RecordingContext;

const std::string kFixture = std::string(BGM_SOURCE_DIR) + "/tests/fixtures/langfuse-v3";
const std::string kSet = std::string(BGM_SOURCE_DIR) + "/migration-sets/langfuse-v3";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The rows of `sql` as `a|b` lines, NULL as NULL.
std::string Column(PgConnection& conn, const std::string& sql) {
  Result<PgResult> r = conn.Exec(sql);
  EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
  std::string out;
  for (int i = 0; r.ok() && i < r->rows(); ++i) {
    for (int j = 0; j < r->columns(); ++j) {
      out += (j ? "|" : "") + (r->IsNull(i, j) ? std::string("NULL") : std::string(r->Get(i, j)));
    }
    out += "\n";
  }
  return out;
}

class LangfuseV3Test : public ::testing::Test {
 protected:
  LangfuseV3Test() : pg_(/*apply_schema=*/false) {}

  void SetUp() override {
    ASSERT_TRUE(pg_.ok());
    ASSERT_TRUE(ch_.ok());
    conn_.emplace(pg_.Connect());
    // Langfuse's tables, then bgmigrate's control tables beside them.
    Status s = conn_->RunScript(ReadFile(kFixture + "/postgres.sql"));
    ASSERT_TRUE(s.ok()) << s.ToString();
    Result<int> control = ApplyPostgresSchema(*conn_, PostgresSchemaFiles());
    ASSERT_TRUE(control.ok()) << control.status().ToString();
    Result<ApplicationSchema> app = ApplicationSchema::Load(kFixture + "/schema");
    ASSERT_TRUE(app.ok()) << app.status().ToString();
    Result<int> applied = ApplyClickHouseSchema(*conn_, ch_.client(), ch_.dialect(), ch_.database(),
                                                app->clickhouse());
    ASSERT_TRUE(applied.ok()) << applied.status().ToString();
    Result<Registry> registry = LoadRegistry({kSet}, Registry({}));
    ASSERT_TRUE(registry.ok()) << registry.status().ToString();
    registry_.emplace(std::move(*registry));
  }

  void Pg(const std::string& sql) {
    Status s = conn_->RunScript(sql);
    ASSERT_TRUE(s.ok()) << s.ToString();
  }
  std::string PgText(const std::string& sql) { return Column(*conn_, sql); }
  std::string ChText(const std::string& sql) {
    Result<std::string> r = ch_.client().Query(sql + " FORMAT TabSeparated");
    EXPECT_TRUE(r.ok()) << sql << ": " << r.status().ToString();
    return r.ok() ? *r : "";
  }
  // A map column as sorted key=value pairs joined with ';' (the engines store and print maps
  // differently: Map, or the Nested stand-in on 18.16). `value` turns a value into text.
  std::string MapText(const std::string& col, const std::string& value = "v") {
    const bool modern = ch_.dialect().modern();
    const std::string keys = modern ? "mapKeys(" + col + ")" : col + ".key";
    const std::string values = modern ? "mapValues(" + col + ")" : col + ".value";
    return "arrayStringConcat(arraySort(arrayMap((k, v) -> concat(k, '=', " + value + "), " + keys +
           ", " + values + ")), ';')";
  }
  // A timestamp as text with its milliseconds where the engine keeps them (DateTime64(3)); 18.16
  // has DateTime, which keeps seconds.
  std::string Ms(const std::string& text) {
    return ch_.dialect().modern() ? text : text.substr(0, text.find('.'));
  }

  Status Run(const std::string& name, nlohmann::json args = nlohmann::json::object()) {
    const MigrationSpec* spec = registry_->Find(name);
    if (spec == nullptr) return NotFound(name);
    std::unique_ptr<BackgroundMigration> m = spec->create();
    RecordingContext ctx(Env(), std::move(args));
    ctx.set_name(name);
    BGM_RETURN_IF_ERROR(m->Validate(ctx.args()));
    return m->Run(ctx);
  }
  MigrationEnv Env() {
    MigrationEnv env;
    env.database_url = pg_.url();
    env.clickhouse_url = ch_.url();
    env.clickhouse_db = ch_.database();
    return env;
  }

  // Two projects, two prompts (one with a version beyond UInt16), the legacy model prices.
  void SeedCatalog() {
    Pg(R"sql(
      INSERT INTO projects (id, name) VALUES ('p1', 'one'), ('p2', 'two');
      INSERT INTO prompts (id, project_id, created_by, name, version, prompt) VALUES
        ('pr1', 'p1', 'u', 'qa', 3, '"Answer"'), ('pr2', 'p1', 'u', 'big', 70000, '"x"');
      INSERT INTO models (id, project_id, model_name, match_pattern, start_date, input_price,
                          output_price, total_price, unit) VALUES
        ('m_global', NULL, 'gpt-4', '(?i)^gpt-4$', NULL, 0.00003, 0.00006, NULL, 'TOKENS'),
        ('m_p1', 'p1', 'gpt-4', '(?i)^gpt-4$', '2024-01-01', 0.00001, 0.00002, NULL, 'TOKENS'),
        ('m_later', 'p1', 'gpt-4', '(?i)^gpt-4$', '2030-01-01', 1, 1, NULL, 'TOKENS'),
        ('m_embed', NULL, 'embed', '(?i)^embed$', NULL, NULL, NULL, 0.0000001, 'TOKENS');
    )sql");
  }

  testing::TestDatabase pg_;
  testing::TestClickHouse ch_;
  std::optional<PgConnection> conn_;
  std::optional<Registry> registry_;
};

TEST_F(LangfuseV3Test, TheSetLoadsWithLangfusesNamesAndOrder) {
  std::string names;
  for (const MigrationSpec& s : registry_->specs()) names += s.name + "\n";
  EXPECT_EQ(names,
            "20241024_1216_add_generations_cost_backfill\n"
            "20241024_1730_migrate_traces_from_pg_to_ch\n"
            "20241024_1737_migrate_observations_from_pg_to_ch\n"
            "20241024_1738_migrate_scores_from_pg_to_ch\n");
  EXPECT_EQ(registry_->Find("20241024_1737_migrate_observations_from_pg_to_ch")->prerequisites,
            std::vector<std::string>{"20241024_1216_add_generations_cost_backfill"});
}

TEST_F(LangfuseV3Test, TracesAreWrittenAsLangfusesCopyWritesThem) {
  SeedCatalog();
  Pg(R"sql(
    INSERT INTO traces (id, "timestamp", name, project_id, metadata, user_id, release, version,
                        public, bookmarked, input, output, session_id, tags, created_at,
                        updated_at) VALUES
      ('t1', '2024-03-05 10:11:12.345', 'chat', 'p1',
       '{"env": "prod", "flag": true, "nested": {"b": 1, "a": [1, 2]}, "none": null, "s": "x y",
         "i": 12, "f": 1.50, "e": 1e21}',
       'u1', 'r1', 'v1', true, false, '{"q": "hi there", "k": [1, 2]}', '"plain string"', 's1',
       '{a,b}', '2024-03-05 10:11:13.000', '2024-03-06 00:00:00.000'),
      ('t2', '2024-03-05 11:00:00.000', NULL, 'p1', '"just text"', NULL, NULL, NULL, false,
       true, '0', 'false', NULL, NULL, '2024-03-05 11:00:01.000', '2024-03-05 11:00:01.000'),
      ('t3', '2024-04-01 00:00:00.000', 'three', 'p2', '[1, "a"]', NULL, NULL, NULL, false,
       false, '""', 'null', NULL, '{}', '2024-04-01 00:00:01.000', '2024-04-01 00:00:01.000'),
      ('t4', '2024-04-02 00:00:00.000', 'four', 'p2', '42', NULL, NULL, NULL, false, false,
       '{}', '[]', NULL, '{}', '2024-04-02 00:00:01.000', '2024-04-02 00:00:01.000'),
      ('t5', '2024-04-03 00:00:00.000', 'five', 'p2', 'null', NULL, NULL, NULL, false, false,
       NULL, NULL, NULL, '{}', '2024-04-03 00:00:01.000', '2024-04-03 00:00:01.000'),
      ('t6', '2024-04-04 00:00:00.000', 'six', 'p2', 'false', NULL, NULL, NULL, false, false,
       '{"price": 1.50, "big": 12345678901234567890}', '{"10": 1, "2": 2, "b": 3}', NULL, '{}',
       '2024-04-04 00:00:01.000', '2024-04-04 00:00:01.000'),
      ('t7', '2024-04-05 00:00:00.000', 'seven', 'p2', NULL, NULL, NULL, NULL, false, false,
       NULL, NULL, NULL, '{}', '2024-04-05 00:00:01.000', '2024-04-05 00:00:01.000');
  )sql");
  Status s = Run("20241024_1730_migrate_traces_from_pg_to_ch");
  ASSERT_TRUE(s.ok()) << s.ToString();

  EXPECT_EQ(
      ChText("SELECT id, toString(timestamp), name, ifNull(user_id, 'NULL'), "
             "ifNull(release, 'NULL'), ifNull(version, 'NULL'), project_id, environment, "
             "toUInt8(public), toUInt8(bookmarked), arrayStringConcat(tags, ','), "
             "ifNull(session_id, 'NULL'), toString(created_at), toString(updated_at), "
             "toString(event_ts), is_deleted FROM traces ORDER BY id"),
      "t1\t" + Ms("2024-03-05 10:11:12.345") + "\tchat\tu1\tr1\tv1\tp1\tdefault\t1\t0\ta,b\ts1\t" +
          Ms("2024-03-05 10:11:13.000") + "\t" + Ms("2024-03-06 00:00:00.000") + "\t" +
          Ms("2024-03-05 10:11:12.345") +
          "\t0\n"
          // A NULL name is '' and NULL tags are [] (Langfuse: the same).
          "t2\t" +
          Ms("2024-03-05 11:00:00.000") + "\t\tNULL\tNULL\tNULL\tp1\tdefault\t0\t1\t\tNULL\t" +
          Ms("2024-03-05 11:00:01.000") + "\t" + Ms("2024-03-05 11:00:01.000") + "\t" +
          Ms("2024-03-05 11:00:00.000") + "\t0\n" + "t3\t" + Ms("2024-04-01 00:00:00.000") +
          "\tthree\tNULL\tNULL\tNULL\tp2\tdefault\t0\t0\t\tNULL\t" + Ms("2024-04-01 00:00:01.000") +
          "\t" + Ms("2024-04-01 00:00:01.000") + "\t" + Ms("2024-04-01 00:00:00.000") + "\t0\n" +
          "t4\t" + Ms("2024-04-02 00:00:00.000") +
          "\tfour\tNULL\tNULL\tNULL\tp2\tdefault\t0\t0\t\tNULL\t" + Ms("2024-04-02 00:00:01.000") +
          "\t" + Ms("2024-04-02 00:00:01.000") + "\t" + Ms("2024-04-02 00:00:00.000") + "\t0\n" +
          "t5\t" + Ms("2024-04-03 00:00:00.000") +
          "\tfive\tNULL\tNULL\tNULL\tp2\tdefault\t0\t0\t\tNULL\t" + Ms("2024-04-03 00:00:01.000") +
          "\t" + Ms("2024-04-03 00:00:01.000") + "\t" + Ms("2024-04-03 00:00:00.000") + "\t0\n" +
          "t6\t" + Ms("2024-04-04 00:00:00.000") +
          "\tsix\tNULL\tNULL\tNULL\tp2\tdefault\t0\t0\t\tNULL\t" + Ms("2024-04-04 00:00:01.000") +
          "\t" + Ms("2024-04-04 00:00:01.000") + "\t" + Ms("2024-04-04 00:00:00.000") + "\t0\n" +
          "t7\t" + Ms("2024-04-05 00:00:00.000") +
          "\tseven\tNULL\tNULL\tNULL\tp2\tdefault\t0\t0\t\tNULL\t" + Ms("2024-04-05 00:00:01.000") +
          "\t" + Ms("2024-04-05 00:00:01.000") + "\t" + Ms("2024-04-05 00:00:00.000") + "\t0\n");

  // Metadata: an object's values as text (a string as is, true as 'true', a number as
  // JavaScript prints it (1.50 as 1.5, 1e21 as 1e+21), a nested value as compact JSON, null as
  // '' as Langfuse's copy stores it); a top-level string or array is
  // wrapped as {"metadata": ...}; JSON null and SQL NULL are the empty map. DELIBERATE DIFFERENCE:
  // a top-level number or boolean (t4, t6) is wrapped too; Langfuse's copy fails its whole batch on
  // them ("expected '{'").
  EXPECT_EQ(ChText("SELECT id, " + MapText("metadata") + " FROM traces ORDER BY id"),
            "t1\te=1e+21;env=prod;f=1.5;flag=true;i=12;nested={\"a\":[1,2],\"b\":1};none=;s=x y\n"
            "t2\tmetadata=just text\n"
            "t3\tmetadata=[1,\"a\"]\n"
            "t4\tmetadata=42\n"
            "t5\t\n"
            "t6\tmetadata=false\n"
            "t7\t\n");

  // Input and output as compact JSON in jsonb's key order (Langfuse: JSON.stringify of the
  // same, the same text here); SQL NULL and JSON null are NULL. DELIBERATE DIFFERENCES:
  //  - 0, false and "" (t2, t3) are kept as such; Langfuse's copy writes NULL for any value
  //    JavaScript counts as false, losing them.
  //  - numbers are written as stored (t6: 1.50 and 12345678901234567890); Langfuse's pass
  //    through JavaScript doubles writes 1.5 and 12345678901234567000.
  //  - keys keep jsonb's order (t6 output: "2", "b", "10"); JavaScript moves integer-like keys
  //    first ("2", "10", "b"). Both are the same JSON object.
  EXPECT_EQ(ChText("SELECT id, ifNull(input, 'NULL'), ifNull(output, 'NULL') FROM traces "
                   "ORDER BY id"),
            "t1\t{\"k\":[1,2],\"q\":\"hi there\"}\t\"plain string\"\n"
            "t2\t0\tfalse\n"
            "t3\t\"\"\tNULL\n"
            "t4\t{}\t[]\n"
            "t5\tNULL\tNULL\n"
            "t6\t{\"big\":12345678901234567890,\"price\":1.50}\t{\"2\":2,\"b\":3,\"10\":1}\n"
            "t7\tNULL\tNULL\n");
}

TEST_F(LangfuseV3Test, ObservationsArePricedAndWrittenAsLangfusesBackfillAndCopyDo) {
  SeedCatalog();
  Pg(R"sql(
    INSERT INTO observations (id, trace_id, project_id, type, name, start_time, end_time,
                              completion_start_time, metadata, level, status_message, version,
                              model, internal_model, unit, "modelParameters", input, output,
                              prompt_tokens, completion_tokens, total_tokens, input_cost,
                              output_cost, total_cost, prompt_id, created_at, updated_at) VALUES
      ('o1', 't1', 'p1', 'GENERATION', 'llm', '2024-03-05 10:00:00.000',
       '2024-03-05 10:00:02.500', '2024-03-05 10:00:01.000', '{"k": "v"}', 'DEFAULT', NULL, 'v2',
       'gpt-4-0613', 'gpt-4', 'TOKENS', '{"temperature": 0.7, "max_tokens": 100}',
       '{"messages": [{"role": "user", "content": "hi"}]}', '"answer"', 100, 50, 150, NULL, NULL,
       NULL, 'pr1', '2024-03-05 10:00:03.000', '2024-03-05 10:00:03.000'),
      ('o2', NULL, 'p1', 'SPAN', NULL, '2024-03-05 11:00:00.000', NULL, NULL, '7', 'ERROR', 'boom',
       NULL, NULL, NULL, NULL, 'null', 'false', NULL, -5, 0, -5, NULL, NULL, NULL, NULL,
       '2024-03-05 11:00:01.000', '2024-03-05 11:00:01.000'),
      ('o3', 't3', 'p2', 'GENERATION', 'priced', '2024-04-01 00:00:00.000', NULL, NULL, NULL,
       'WARNING', NULL, NULL, 'gpt-4', 'gpt-4', 'TOKENS', '{}', NULL, NULL, 10, 10, 20,
       0.1234567890129, NULL, 0.5, 'pr2', '2024-04-01 00:00:01.000', '2024-04-01 00:00:01.000'),
      ('o4', 't3', 'p2', 'EMBEDDING', 'embed', '2024-04-02 00:00:00.000', NULL, NULL, NULL,
       'DEBUG', NULL, NULL, 'embed', 'embed', 'TOKENS', NULL, NULL, NULL, 0, 0, 1000, NULL, NULL,
       NULL, NULL, '2024-04-02 00:00:01.000', '2024-04-02 00:00:01.000');
  )sql");
  // Batches of 2 keys: the backfill's batches are contiguous over the key.
  Status s = Run("20241024_1216_add_generations_cost_backfill", {{"batchSize", 2}});
  ASSERT_TRUE(s.ok()) << s.ToString();
  // o1: the project's own gpt-4 price started before it wins over the global one and over the
  // project's later one; o2 is not priced (no model, no cost); o3's provided costs are its
  // calculated ones, the global gpt-4 its model (p2 has none of its own); o4: total price x
  // total tokens, no input or output price.
  EXPECT_EQ(
      PgText("SELECT id, calculated_input_cost::float8, calculated_output_cost::float8, "
             "calculated_total_cost::float8, internal_model_id FROM observations ORDER BY id"),
      "o1|0.001|0.001|0.002|m_p1\n"
      "o2|NULL|NULL|NULL|NULL\n"
      "o3|0.1234567890129|NULL|0.5|m_global\n"
      "o4|NULL|NULL|0.0001|m_embed\n");

  s = Run("20241024_1737_migrate_observations_from_pg_to_ch");
  ASSERT_TRUE(s.ok()) << s.ToString();
  // A NULL trace_id and name are ''; enums as their names; `model` is the provided model name.
  EXPECT_EQ(ChText("SELECT id, trace_id, project_id, environment, type, "
                   "ifNull(parent_observation_id, 'NULL'), toString(start_time), "
                   "ifNull(toString(end_time), 'NULL'), "
                   "ifNull(toString(completion_start_time), 'NULL'), name, level, "
                   "ifNull(status_message, 'NULL'), ifNull(version, 'NULL'), "
                   "ifNull(provided_model_name, 'NULL'), ifNull(internal_model_id, 'NULL'), "
                   "toString(event_ts) FROM observations ORDER BY id"),
            "o1\tt1\tp1\tdefault\tGENERATION\tNULL\t" + Ms("2024-03-05 10:00:00.000") + "\t" +
                Ms("2024-03-05 10:00:02.500") + "\t" + Ms("2024-03-05 10:00:01.000") +
                "\tllm\tDEFAULT\tNULL\tv2\tgpt-4-0613\tm_p1\t" + Ms("2024-03-05 10:00:00.000") +
                "\n"
                "o2\t\tp1\tdefault\tSPAN\tNULL\t" +
                Ms("2024-03-05 11:00:00.000") + "\tNULL\tNULL\t\tERROR\tboom\tNULL\tNULL\tNULL\t" +
                Ms("2024-03-05 11:00:00.000") +
                "\n"
                "o3\tt3\tp2\tdefault\tGENERATION\tNULL\t" +
                Ms("2024-04-01 00:00:00.000") +
                "\tNULL\tNULL\tpriced\tWARNING\tNULL\tNULL\tgpt-4\tm_global\t" +
                Ms("2024-04-01 00:00:00.000") +
                "\n"
                "o4\tt3\tp2\tdefault\tEMBEDDING\tNULL\t" +
                Ms("2024-04-02 00:00:00.000") +
                "\tNULL\tNULL\tembed\tDEBUG\tNULL\tNULL\tembed\tm_embed\t" +
                Ms("2024-04-02 00:00:00.000") + "\n");
  // "modelParameters", input and output as compact JSON; JSON null is NULL. DELIBERATE
  // DIFFERENCE: o2's input false is kept (Langfuse: NULL), as for traces.
  EXPECT_EQ(ChText("SELECT id, ifNull(model_parameters, 'NULL'), ifNull(input, 'NULL'), "
                   "ifNull(output, 'NULL'), " +
                   MapText("metadata") + " FROM observations ORDER BY id"),
            "o1\t{\"max_tokens\":100,\"temperature\":0.7}\t{\"messages\":[{\"role\":\"user\","
            "\"content\":\"hi\"}]}\t\"answer\"\tk=v\n"
            "o2\tNULL\tfalse\tNULL\tmetadata=7\n"
            "o3\t{}\tNULL\tNULL\t\n"
            "o4\tNULL\tNULL\tNULL\t\n");
  // Usage: provided usage is empty; usage has input/output/total from the token counts, a
  // negative count 0 (Langfuse writes null, which ClickHouse stores as 0). Costs: every key
  // present, 0 for NULL (Langfuse: null, stored as 0), cut (not rounded) to 12 decimals as
  // ClickHouse cuts Langfuse's value; total_cost the calculated total.
  const std::string dec = "toString(toFloat64(v))";
  EXPECT_EQ(ChText("SELECT id, " + MapText("provided_usage_details", "toString(v)") + ", " +
                   MapText("usage_details", "toString(v)") + ", " +
                   MapText("provided_cost_details", dec) + ", " + MapText("cost_details", dec) +
                   ", ifNull(toString(toFloat64(total_cost)), 'NULL') FROM observations "
                   "ORDER BY id"),
            "o1\t\tinput=100;output=50;total=150\tinput=0;output=0;total=0\t"
            "input=0.001;output=0.001;total=0.002\t0.002\n"
            "o2\t\tinput=0;output=0;total=0\tinput=0;output=0;total=0\t"
            "input=0;output=0;total=0\tNULL\n"
            "o3\t\tinput=10;output=10;total=20\tinput=0.123456789012;output=0;total=0.5\t"
            "input=0.123456789012;output=0;total=0.5\t0.5\n"
            "o4\t\tinput=0;output=0;total=1000\tinput=0;output=0;total=0\t"
            "input=0;output=0;total=0.0001\t0.0001\n");
  // The prompt's name and version from prompts. DELIBERATE DIFFERENCE: a version beyond
  // UInt16 (o3's 70000) is NULL; Langfuse's copy sends 70000 to a UInt16 column.
  EXPECT_EQ(ChText("SELECT id, ifNull(prompt_id, 'NULL'), ifNull(prompt_name, 'NULL'), "
                   "ifNull(toString(prompt_version), 'NULL'), arrayStringConcat(tool_calls, ','), "
                   "ifNull(usage_pricing_tier_id, 'NULL') FROM observations ORDER BY id"),
            "o1\tpr1\tqa\t3\t\tNULL\n"
            "o2\tNULL\tNULL\tNULL\t\tNULL\n"
            "o3\tpr2\tbig\tNULL\t\tNULL\n"
            "o4\tNULL\tNULL\tNULL\t\tNULL\n");
}

TEST_F(LangfuseV3Test, ScoresAreWrittenAsLangfusesCopyWritesThem) {
  SeedCatalog();
  Pg(R"sql(
    INSERT INTO scores (id, "timestamp", name, value, observation_id, trace_id, comment, source,
                        project_id, author_user_id, config_id, data_type, string_value,
                        created_at, updated_at, queue_id) VALUES
      ('s1', '2024-03-05 10:00:00.000', 'quality', 0.9, 'o1', 't1', 'good', 'API', 'p1', NULL,
       NULL, 'NUMERIC', NULL, '2024-03-05 10:00:01.000', '2024-03-05 10:00:02.000', NULL),
      ('s2', '2024-03-05 11:00:00.000', 'label', NULL, NULL, 't1', NULL, 'ANNOTATION', 'p1',
       'user1', 'c1', 'CATEGORICAL', 'yes', '2024-03-05 11:00:01.000',
       '2024-03-05 11:00:01.000', 'q1'),
      ('s3', '2024-03-05 12:00:00.000', 'odd', 'NaN', NULL, 't2', NULL, 'EVAL', 'p1', NULL, NULL,
       'NUMERIC', NULL, '2024-03-05 12:00:01.000', '2024-03-05 12:00:01.000', NULL),
      ('s4', '2024-03-05 13:00:00.000', 'note', NULL, NULL, 't2', NULL, 'API', 'p1', NULL, NULL,
       'TEXT', 'free text', '2024-03-05 13:00:01.000', '2024-03-05 13:00:01.000', NULL);
  )sql");
  Status s = Run("20241024_1738_migrate_scores_from_pg_to_ch");
  ASSERT_TRUE(s.ok()) << s.ToString();
  // A missing value (s2, s4) and NaN (s3) are 0, as Langfuse's null is stored; trace_id is
  // Nullable(String) in Langfuse's ClickHouse; metadata, the run and session ids and the
  // ingestion columns are their defaults.
  EXPECT_EQ(
      ChText("SELECT id, toString(timestamp), project_id, environment, "
             "ifNull(trace_id, 'NULL'), ifNull(observation_id, 'NULL'), name, value, "
             "source, ifNull(comment, 'NULL'), ifNull(author_user_id, 'NULL'), "
             "ifNull(config_id, 'NULL'), data_type, ifNull(string_value, 'NULL'), "
             "ifNull(queue_id, 'NULL'), toString(event_ts), " +
             MapText("metadata") +
             ", ifNull(session_id, 'NULL'), ifNull(dataset_run_id, 'NULL'), "
             "long_string_value, ingestion_sdk_name FROM scores ORDER BY id"),
      "s1\t" + Ms("2024-03-05 10:00:00.000") +
          "\tp1\tdefault\tt1\to1\tquality\t0.9\tAPI\tgood\tNULL\tNULL\tNUMERIC\tNULL\tNULL\t" +
          Ms("2024-03-05 10:00:00.000") + "\t\tNULL\tNULL\t\tunknown\n" + "s2\t" +
          Ms("2024-03-05 11:00:00.000") +
          "\tp1\tdefault\tt1\tNULL\tlabel\t0\tANNOTATION\tNULL\tuser1\tc1\tCATEGORICAL\tyes"
          "\tq1\t" +
          Ms("2024-03-05 11:00:00.000") + "\t\tNULL\tNULL\t\tunknown\n" + "s3\t" +
          Ms("2024-03-05 12:00:00.000") +
          "\tp1\tdefault\tt2\tNULL\todd\t0\tEVAL\tNULL\tNULL\tNULL\tNUMERIC\tNULL\tNULL\t" +
          Ms("2024-03-05 12:00:00.000") + "\t\tNULL\tNULL\t\tunknown\n" + "s4\t" +
          Ms("2024-03-05 13:00:00.000") +
          "\tp1\tdefault\tt2\tNULL\tnote\t0\tAPI\tNULL\tNULL\tNULL\tTEXT\tfree "
          "text\tNULL\t" +
          Ms("2024-03-05 13:00:00.000") + "\t\tNULL\tNULL\t\tunknown\n");
}

}  // namespace
}  // namespace bgm

namespace bgm {
namespace {

constexpr const char* kOurs =
    "('20241024_1216_add_generations_cost_backfill', '20241024_1730_migrate_traces_from_pg_to_ch', "
    "'20241024_1737_migrate_observations_from_pg_to_ch', "
    "'20241024_1738_migrate_scores_from_pg_to_ch')";

// A Langfuse v3 deployment's database as it is (its tables, its own background_migrations with
// the rows its migrations and worker left), bgmigrate pointed at it with the documented
// environment: its control tables go into a schema of their own, Langfuse's table keeps its
// shape and every row bgmigrate does not own, what Langfuse finished is not run again, and
// the rest finishes and shows finished the way Langfuse's UI reads it.
// Langfuse's tables and its own background_migrations with its rows (the fixture), `seed`, and
// Langfuse's ClickHouse tables.
void SetUpDeployment(PgConnection& conn, testing::TestClickHouse& ch, const std::string& seed) {
  ASSERT_TRUE(conn.RunScript(ReadFile(kFixture + "/postgres.sql")).ok());
  ASSERT_TRUE(conn.RunScript(ReadFile(kFixture + "/control.sql")).ok());
  Status seeded = conn.RunScript(seed);
  ASSERT_TRUE(seeded.ok()) << seeded.ToString();
  Result<ApplicationSchema> app = ApplicationSchema::Load(kFixture + "/schema");
  ASSERT_TRUE(app.ok()) << app.status().ToString();
  Result<int> applied =
      ApplyClickHouseSchema(conn, ch.client(), ch.dialect(), ch.database(), app->clickhouse());
  ASSERT_TRUE(applied.ok()) << applied.status().ToString();
}

// The documented environment (docs/langfuse.md).
std::map<std::string, std::string> DeploymentEnv(const testing::TestDatabase& pg,
                                                 testing::TestClickHouse& ch) {
  return {{"DATABASE_URL", pg.url()},       {"CLICKHOUSE_URL", ch.url()},
          {"CLICKHOUSE_DB", ch.database()}, {"BGMIGRATE_MIGRATIONS_DIR", kSet},
          {"BGMIGRATE_SCHEMA_DIR", ""},     {"BGMIGRATE_CONTROL_SCHEMA", "bgmigrate"},
          {"BGMIGRATE_POLL_SECONDS", "0.2"}};
}

TEST(LangfuseV3DeploymentTest, BgmigrateFinishesTheCopiesAndLangfusesTableShowsThemFinished) {
  testing::TestDatabase pg(/*apply_schema=*/false);
  testing::TestClickHouse ch;
  ASSERT_TRUE(pg.ok());
  ASSERT_TRUE(ch.ok());
  if (testing::TestClickHouseIsEmbedded()) {
    GTEST_SKIP() << "one embedded data directory belongs to one process: the test and its "
                    "worker cannot share it (the copies run on the embedded engine above)";
  }
  PgConnection conn = pg.Connect();
  SetUpDeployment(conn, ch, R"sql(
      INSERT INTO projects (id, name) VALUES ('p1', 'one');
      INSERT INTO models (id, project_id, model_name, match_pattern, input_price, output_price,
                          unit) VALUES ('m1', NULL, 'gpt-4', 'gpt-4', 0.00003, 0.00006, 'TOKENS');
      INSERT INTO traces (id, "timestamp", project_id, metadata, created_at)
      SELECT 't' || g, timestamp '2024-03-05' + g * interval '1 minute', 'p1',
             '{"k": "v"}', timestamp '2024-03-05' + g * interval '1 minute'
      FROM generate_series(1, 300) g;
      INSERT INTO observations (id, trace_id, project_id, type, start_time, metadata,
                                internal_model, unit, prompt_tokens, created_at)
      SELECT 'o' || g, 't' || g, 'p1', 'GENERATION', timestamp '2024-03-05' + g * interval '1 s',
             CASE WHEN g = 7 THEN '7'::jsonb END, 'gpt-4', 'TOKENS', 10, timestamp '2024-03-05'
      FROM generate_series(1, 200) g;
      INSERT INTO scores (id, name, value, trace_id, source, project_id)
      SELECT 's' || g, 'q', g, 't' || g, 'API', 'p1' FROM generate_series(1, 50) g;
  )sql");
  if (HasFatalFailure()) return;

  const std::string shape = R"sql(
      SELECT string_agg(column_name || ' ' || data_type || ' ' || is_nullable || ' ' ||
                        coalesce(column_default, '-'), ', ' ORDER BY ordinal_position),
             (SELECT string_agg(indexdef, '; ' ORDER BY indexname) FROM pg_indexes
              WHERE schemaname = 'public' AND tablename = 'background_migrations')
      FROM information_schema.columns
      WHERE table_schema = 'public' AND table_name = 'background_migrations')sql";
  const std::string others = std::string("SELECT t::text FROM public.background_migrations t ") +
                             "WHERE name NOT IN " + kOurs + " ORDER BY name";
  const std::string scores_row =
      "SELECT t::text FROM public.background_migrations t WHERE script = "
      "'migrateScoresFromPostgresToClickhouse'";
  const std::string shape_before = Column(conn, shape);
  const std::string others_before = Column(conn, others);
  const std::string scores_before = Column(conn, scores_row);
  ASSERT_EQ(others_before.size() > 0, true);

  std::map<std::string, std::string> env = DeploymentEnv(pg, ch);
  // Without its own schema bgmigrate refuses Langfuse's table and writes nothing.
  env.erase("BGMIGRATE_CONTROL_SCHEMA");
  testing::ProcessResult refused = testing::RunProcess(BGM_BINARY, {"migrate"}, env);
  EXPECT_EQ(refused.exit_code, 2) << refused.err;
  EXPECT_NE(refused.err.find("set BGMIGRATE_CONTROL_SCHEMA=bgmigrate"), std::string::npos)
      << refused.err;
  EXPECT_EQ(Column(conn, "SELECT count(*) FROM pg_namespace WHERE nspname = 'bgmigrate'"), "0\n");

  env["BGMIGRATE_CONTROL_SCHEMA"] = "bgmigrate";
  testing::ProcessResult migrate = testing::RunProcess(BGM_BINARY, {"migrate"}, env);
  ASSERT_EQ(migrate.exit_code, 0) << migrate.err;
  EXPECT_EQ(Column(conn,
                   "SELECT to_regclass('bgmigrate.background_migrations') IS NOT NULL, "
                   "to_regclass('bgmigrate.background_migration_chunks') IS NOT NULL"),
            "t|t\n");
  // What Langfuse's own worker finished is skipped, saying so.
  testing::ProcessResult listed = testing::RunProcess(BGM_BINARY, {"list", "--json"}, env);
  ASSERT_EQ(listed.exit_code, 0) << listed.err;
  std::map<std::string, nlohmann::json> rows;
  for (const nlohmann::json& r : nlohmann::json::parse(listed.out)) rows[r["name"]] = r;
  ASSERT_EQ(rows.size(), 4u) << listed.out;
  EXPECT_EQ(rows["20241024_1738_migrate_scores_from_pg_to_ch"]["status"], "skipped");
  EXPECT_EQ(rows["20241024_1738_migrate_scores_from_pg_to_ch"]["skipped_reason"],
            "finished by the application's own worker at 2024-11-01 12:00:00 UTC");
  EXPECT_EQ(rows["20241024_1730_migrate_traces_from_pg_to_ch"]["status"], "pending");

  testing::ProcessResult worker = testing::RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"},
                                                      env, std::chrono::seconds(120));
  ASSERT_EQ(worker.exit_code, 0) << worker.err.substr(
      worker.err.size() > 3000 ? worker.err.size() - 3000 : 0);
  // Langfuse's rows of the three copies bgmigrate ran show them finished (the failure of the
  // observations copy cleared), unlocked; their state (Langfuse's cursor) is left as it was.
  EXPECT_EQ(Column(conn, std::string("SELECT name, finished_at > now() AT TIME ZONE 'UTC' - "
                                     "interval '5 minutes', failed_at, failed_reason, worker_id, "
                                     "locked_at, state::text FROM public.background_migrations "
                                     "WHERE name IN ") +
                             kOurs + " AND script <> 'migrateScoresFromPostgresToClickhouse' " +
                             "ORDER BY name"),
            "20241024_1216_add_generations_cost_backfill|t|NULL|NULL|NULL|NULL|{}\n"
            "20241024_1730_migrate_traces_from_pg_to_ch|t|NULL|NULL|NULL|NULL|"
            "{\"maxDate\": \"2024-03-05T10:30:00.000Z\"}\n"
            "20241024_1737_migrate_observations_from_pg_to_ch|t|NULL|NULL|NULL|NULL|"
            "{\"maxDate\": \"2024-04-01T00:00:00.000Z\"}\n");
  EXPECT_EQ(Column(conn, scores_row), scores_before) << "Langfuse finished it: untouched";
  EXPECT_EQ(Column(conn, others), others_before) << "rows of other scripts are untouched";
  EXPECT_EQ(Column(conn, shape), shape_before) << "Langfuse's table keeps its shape";
  // The copies landed every row (the observation whose metadata 7 failed Langfuse's batch too)
  // and the backfill priced them; verify compares them.
  EXPECT_EQ(ch.Scalar("SELECT toString(count()) FROM traces FINAL") + " " +
                ch.Scalar("SELECT toString(count()) FROM observations FINAL") + " " +
                ch.Scalar("SELECT toString(countIf(total_cost > 0)) FROM observations FINAL"),
            "300 200 200");
  EXPECT_EQ(ch.Scalar("SELECT toString(count()) FROM scores"), "0")
      << "Langfuse finished the scores copy: bgmigrate did not run it";
  testing::ProcessResult verify = testing::RunProcess(
      BGM_BINARY, {"verify", "20241024_1737_migrate_observations_from_pg_to_ch"}, env);
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_NE(verify.out.find("MATCH"), std::string::npos) << verify.out;

  // The UI's server over the same environment: its page, and its API with the four.
  env["BGMIGRATE_PORT"] = std::to_string(testing::FreeLoopbackPort());
  testing::ChildProcess web(BGM_BINARY, {"web"}, env);
  httplib::Client client("127.0.0.1", std::stoi(env["BGMIGRATE_PORT"]));
  client.set_connection_timeout(std::chrono::seconds(1));
  auto list = client.Get("/api/background-migrations");
  for (int i = 0; i < 100 && !list; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    list = client.Get("/api/background-migrations");
  }
  ASSERT_TRUE(list) << web.Stderr();
  ASSERT_EQ(list->status, 200) << list->body;
  std::string statuses;
  const nlohmann::json body = nlohmann::json::parse(list->body);
  for (const nlohmann::json& m : body["migrations"]) {
    statuses += m["name"].get<std::string>() + " " + m["status"].get<std::string>() + "\n";
  }
  EXPECT_EQ(statuses,
            "20241024_1216_add_generations_cost_backfill finished\n"
            "20241024_1730_migrate_traces_from_pg_to_ch finished\n"
            "20241024_1737_migrate_observations_from_pg_to_ch finished\n"
            "20241024_1738_migrate_scores_from_pg_to_ch skipped\n");
  httplib::Result page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
}

// A copy that fails here fails Langfuse's row too (failed_at, failed_reason, the lock
// released); `retry` clears the failure there; while the copy runs again Langfuse's row is
// locked by bgmigrate (so a Langfuse worker left running skips it), and once it finishes the
// row is finished and unlocked.
TEST(LangfuseV3DeploymentTest, AFailureShowsInLangfusesRowAndRetryClearsIt) {
  testing::TestDatabase pg(/*apply_schema=*/false);
  testing::TestClickHouse ch;
  ASSERT_TRUE(pg.ok());
  ASSERT_TRUE(ch.ok());
  if (testing::TestClickHouseIsEmbedded()) GTEST_SKIP() << "a worker process of its own";
  PgConnection conn = pg.Connect();
  // o100's calculated cost does not fit Decimal64(12) (no model, no provided cost: the backfill
  // leaves it as it is).
  SetUpDeployment(conn, ch, R"sql(
      INSERT INTO projects (id, name) VALUES ('p1', 'one');
      INSERT INTO observations (id, trace_id, project_id, type, start_time, created_at,
                                calculated_total_cost)
      SELECT 'o' || lpad(g::text, 3, '0'), 't', 'p1', 'SPAN',
             timestamp '2024-03-05' + g * interval '1 s', timestamp '2024-03-05' + g * interval '1 s',
             CASE WHEN g = 100 THEN 2000000 END
      FROM generate_series(1, 300) g;
  )sql");
  if (HasFatalFailure()) return;
  std::map<std::string, std::string> env = DeploymentEnv(pg, ch);
  const std::string name = "20241024_1737_migrate_observations_from_pg_to_ch";
  const std::string row =
      "SELECT finished_at IS NOT NULL, failed_at IS NOT NULL, failed_reason, worker_id, "
      "locked_at IS NOT NULL FROM public.background_migrations WHERE name = '" +
      name + "'";
  ASSERT_EQ(testing::RunProcess(BGM_BINARY, {"migrate"}, env).exit_code, 0);
  testing::ProcessResult failed = testing::RunProcess(BGM_BINARY, {"worker", "--exit-when-idle"},
                                                      env, std::chrono::seconds(120));
  EXPECT_EQ(failed.exit_code, 1) << "a migration failed";
  Result<PgResult> ours = conn.Exec(
      "SELECT failed_reason FROM bgmigrate.background_migrations WHERE name = $1", {name});
  ASSERT_TRUE(ours.ok() && ours->rows() == 1 && !ours->IsNull(0, 0)) << failed.err;
  const std::string reason(ours->Get(0, 0));
  EXPECT_NE(reason.find("2000000"), std::string::npos) << reason;
  // Langfuse's row says failed, with bgmigrate's reason (its earlier failure replaced).
  EXPECT_EQ(Column(conn, row), "f|t|" + reason + "|NULL|f\n");

  ASSERT_TRUE(conn.Run("UPDATE observations SET calculated_total_cost = 2 WHERE id = 'o100'").ok());
  ASSERT_EQ(testing::RunProcess(BGM_BINARY, {"retry", name}, env).exit_code, 0);
  EXPECT_EQ(Column(conn, row), "f|f|NULL|NULL|f\n") << "retry clears the failure there too";
  // Slowed down so that it is seen running.
  ASSERT_EQ(testing::RunProcess(BGM_BINARY,
                                {"set-args", name, R"({"batchSize": 20, "pauseMs": 200})"}, env)
                .exit_code,
            0);
  testing::ChildProcess worker(BGM_BINARY, {"worker", "--exit-when-idle"}, env);
  std::string locked;
  for (int i = 0; i < 200; ++i) {
    locked = Column(conn,
                    "SELECT worker_id LIKE 'bgmigrate:%', locked_at > now() AT TIME ZONE 'UTC' - "
                    "interval '1 minute' FROM public.background_migrations WHERE name = '" +
                        name + "'");
    if (locked == "t|t\n") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(locked, "t|t\n") << "Langfuse's row is locked by bgmigrate while it runs";
  const std::optional<int> code = worker.Wait(std::chrono::seconds(120));
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0) << worker.Stderr();
  EXPECT_EQ(Column(conn, row), "t|f|NULL|NULL|f\n");
  EXPECT_EQ(ch.Scalar("SELECT toString(count()) FROM observations FINAL"), "300");
}

}  // namespace
}  // namespace bgm
