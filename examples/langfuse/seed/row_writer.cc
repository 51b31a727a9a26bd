#include "seed/row_writer.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <chrono>
#include <cmath>
#include <iterator>

#include "common/timestamp.h"
#include "postgres/pg_copy.h"
#include "seed/catalog.h"

namespace bgm {
namespace {

// Streams of SeedRandom::ForRow: one per kind of row, so tables are independent.
constexpr uint64_t kTraceKeyStream = 1;
constexpr uint64_t kTraceStream = 2;
constexpr uint64_t kObservationStream = 3;
constexpr uint64_t kScoreStream = 4;
constexpr uint64_t kCorpusStream = 5;

constexpr int64_t kMsPerHour = 3'600'000;
constexpr int64_t kMsPerDay = 24 * kMsPerHour;

// Milliseconds since the epoch of a UTC midnight.
constexpr int64_t MidnightMs(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days(std::chrono::year(y) / m / d).time_since_epoch().count() * kMsPerDay;
}

// Timestamps spread over 18 months, so that monthly partitions get several months.
constexpr int64_t kRangeStartMs = MidnightMs(2023, 6, 1);
constexpr int64_t kRangeEndMs = MidnightMs(2024, 12, 1);
constexpr int64_t kSharedCreatedAtMs = MidnightMs(2024, 5, 2) + 12 * kMsPerHour;

void PutDigits(char* p, int width, int64_t v) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

void AppendInt(std::string& out, int64_t v) {
  char buf[24];
  const std::to_chars_result r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

// `units` / 10^decimals as a decimal: (12345, 4) -> "1.2345", (-5, 2) -> "-0.05".
void AppendDecimal(std::string& out, int64_t units, int decimals) {
  if (units < 0) {
    out.push_back('-');
    units = -units;
  }
  int64_t scale = 1;
  for (int i = 0; i < decimals; ++i) scale *= 10;
  AppendInt(out, units / scale);
  if (decimals > 0) {
    out.push_back('.');
    char buf[19];
    PutDigits(buf, decimals, units % scale);
    out.append(buf, static_cast<size_t>(decimals));
  }
}

void AppendHex(std::string& out, uint64_t v, int digits) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (4 * i)) & 0xf]);
}

void Tab(std::string& out) { out.push_back('\t'); }
void Null(std::string& out) { out.append(kCopyNull); }
void Text(std::string& out, std::string_view v) { AppendCopyText(out, v); }
void Bool(std::string& out, bool v) { out.push_back(v ? 't' : 'f'); }

// Writes JSON text, escaped for a COPY text field, into `out` and counts its length as JSON
// (which is what Postgres prints for jsonb in this canonical spacing: `{"a": 1, "b": [2, 3]}`).
class JsonCopy {
 public:
  explicit JsonCopy(std::string& out) : out_(out) {}

  // Punctuation, keys and literals that need no escaping at all.
  void Raw(std::string_view s) {
    assert(s.find_first_of("\\\t\n\r") == std::string_view::npos);
    out_.append(s);
    len_ += s.size();
  }
  // A newline between tokens (pretty-printed JSON).
  void Newline() {
    out_.append("\\n");
    len_ += 1;
  }
  void Str(std::string_view s) {
    out_.push_back('"');
    StrBody(s);
    out_.push_back('"');
    len_ += 2;
  }
  // The inside of a JSON string: `"`, `\` and control characters escaped, then COPY-escaped.
  void StrBody(std::string_view s) {
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"':
          Esc("\\\\\"");
          break;
        case '\\':
          Esc("\\\\\\\\");
          break;
        case '\n':
          Esc("\\\\n");
          break;
        case '\t':
          Esc("\\\\t");
          break;
        case '\r':
          Esc("\\\\r");
          break;
        case '\b':
          Esc("\\\\b");
          break;
        case '\f':
          Esc("\\\\f");
          break;
        default:
          if (c < 0x20) {
            out_.append("\\\\u00");
            AppendHex(out_, c, 2);
            len_ += 6;
          } else {
            out_.push_back(ch);
            len_ += 1;
          }
      }
    }
  }
  void Int(int64_t v) {
    const size_t before = out_.size();
    AppendInt(out_, v);
    len_ += out_.size() - before;
  }
  void Decimal(int64_t units, int decimals) {
    const size_t before = out_.size();
    AppendDecimal(out_, units, decimals);
    len_ += out_.size() - before;
  }
  void Blob(const SeedCorpus& corpus, size_t json_bytes, SeedRandom& rng) {
    len_ += corpus.AppendBlob(out_, json_bytes, rng);
  }
  size_t len() const { return len_; }

 private:
  // An escape of JSON length 2 (e.g. `\n`), written COPY-escaped.
  void Esc(std::string_view copy_form) {
    out_.append(copy_form);
    len_ += 2;
  }
  std::string& out_;
  size_t len_ = 0;
};

template <typename T, size_t N>
const T& Pick(const T (&items)[N], SeedRandom& rng) {
  return items[rng.Below(N)];
}

// Mostly these; sometimes one of the rest.
template <size_t N>
std::string_view PickSkewed(const std::string_view (&items)[N], size_t common, SeedRandom& rng) {
  return rng.Chance(850) ? items[rng.Below(common)] : items[rng.Below(N)];
}

constexpr std::string_view kWords[] = {
    "the",       "model",       "answer",    "question",  "context",    "document",    "retrieval",
    "token",     "user",        "assistant", "please",    "summarize",  "following",   "data",
    "report",    "revenue",     "quarter",   "customer",  "support",    "ticket",      "error",
    "request",   "response",    "latency",   "prompt",    "system",     "function",    "call",
    "result",    "value",       "analysis",  "sentiment", "translate",  "into",        "and",
    "of",        "to",          "in",        "is",        "for",        "with",        "on",
    "that",      "this",        "by",        "from",      "as",         "an",          "be",
    "are",       "was",         "it",        "or",        "not",        "can",         "will",
    "we",        "you",         "they",      "our",       "your",       "their",       "migration",
    "database",  "cluster",     "shard",     "replica",   "query",      "index",       "partition",
    "timestamp", "observation", "trace",     "score",     "evaluation", "generation",  "span",
    "event",     "pipeline",    "embedding", "vector",    "search",     "ranking",     "chunk",
    "source",    "citation",    "policy",    "refund",    "invoice",    "shipping",    "delivery",
    "password",  "account",     "settings",  "weather",   "forecast",   "temperature", "Berlin",
    "London",    "Tokyo",       "2024",      "42",        "3.14",       "JSON",        "SQL",
    "API",       "HTTP",        "OK",
};

// Everything a naive migration gets wrong: CJK, emoji (with modifiers, ZWJ sequences, flags),
// right-to-left scripts, combining marks, quotes, backslashes, control characters.
constexpr std::string_view kSpecialWords[] = {
    "你好世界",
    "数据迁移",
    "東京都",
    "こんにちは",
    "한국어",
    "🚀",
    "😀",
    "👍🏽",
    "👨‍👩‍👧",
    "🇩🇪",
    "مرحبا بالعالم",
    "שלום עולם",
    "e\u0301",                  // e + combining acute accent
    "n\u0303o",                 // n + combining tilde
    "Z\u0351\u0346a\u0364lgo",  // stacked combining marks
    "café",
    "naïve",
    "Zürich",
    "\"quoted\"",
    "C:\\Users\\langfuse\\file.txt",
    "line1\nline2",
    "col1\tcol2",
    "crlf\r\n",
    "{\"json\": \"inside a string\"}",
    "back\\slash",
    "literal \\n not a newline",
    "'single quotes'",
    "<b>html</b> &amp;",
    "100%",
    "$HOME",
    "bell\x07",
    "\u00a0nbsp",
    "zero\u200bwidth",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "Ω≈ç√∫",
    "\\N",
};

constexpr std::string_view kTraceNames[] = {
    "chat",
    "rag-pipeline",
    "qa",
    "summarize-document",
    "support-bot",
    "agent-run",
    "embedding-batch",
    // rarer
    "チャット",
    "多语言翻译",
    "🤖 agent",
    "تحليل المشاعر",
    "שאלה ותשובה",
    "cafe\u0301-recommendation",
    "name with\ttab",
    "multi\nline name",
    "quote \"name\"",
    "back\\slash",
};
constexpr size_t kCommonTraceNames = 7;

constexpr std::string_view kObservationNames[] = {
    "llm-call",
    "retrieve-documents",
    "rerank",
    "embed-query",
    "tool-call",
    "parse-output",
    "guardrail-check",
    // rarer
    "🔎 search",
    "翻訳",
    "حساب التكلفة",
    "step\t2",
    "end\r\nof line",
    "\"quoted\"",
};
constexpr size_t kCommonObservationNames = 7;

constexpr std::string_view kUserIds[] = {
    "alice@example.com", "用户-42",         "ユーザー太郎", "😀-user", "o'brien",
    "back\\slash\\user", "user with space", "المستخدم",     "",
};

constexpr std::string_view kTags[] = {
    "production", "staging",    "rag",         "eval",       "experiment-42",
    "chat,bot",   "say \"hi\"", "back\\slash", "with space", "{braces}",
    "NULL",       "ünïcødé",    "标签",        "🚀 launch",   "עברית",
};

constexpr std::string_view kMetadataStrings[] = {
    "free-form metadata",
    "metadata as a string with \"quotes\", a \\backslash and 中文",
    "multi\nline\tmetadata",
    "",
};

constexpr std::string_view kCustomerNames[] = {
    "ACME Corp",   "Société Générale",   "株式会社テスト", "Müller & Söhne",
    "شركة المثال", "O'Reilly \"Media\"", "😀 Emoji Inc",
};

constexpr std::string_view kNotes[] = {
    "retry after 429",
    "path C:\\temp\\out.json",
    "line1\nline2",
    "tab\tseparated",
    "quote \" inside",
    "ok ✅",
    "unicode escape \u00e9 and \u2028 separator",
};

constexpr std::string_view kSystemPrompts[] = {
    "You are a helpful assistant.",
    "You are a helpful assistant. Answer in the user's language.",
    "Answer using only the context below.\n\nContext:",
    "Réponds en français, s'il te plaît.",
    "あなたは親切なアシスタントです。",
};

constexpr std::string_view kLocales[] = {"en-US", "de-DE", "ja-JP", "ar-EG", "he-IL", "fr-FR"};

constexpr std::string_view kStatusMessages[] = {
    "Rate limit exceeded (429); retrying in 20s",
    "Error: context length exceeded\nmax 128000 tokens",
    "Timeout after 30s\tupstream=openai",
    "Guardrail: blocked \"unsafe\" content",
    "内容被过滤",
};

constexpr std::string_view kScoreComments[] = {
    "Looks good",
    "Hallucinated the refund policy.\nSee ticket #123.",
    "Answer was correct but too long\t(3 paragraphs)",
    "Perfekt, danke! 👍",
    "الإجابة صحيحة",
    "\"quoted\" comment with \\backslash",
};

constexpr std::string_view kNumericScores[] = {"accuracy", "relevance", "helpfulness",
                                               "hallucination", "正确性"};
constexpr std::string_view kCategoricalScores[] = {"sentiment", "category", "tone"};
constexpr std::string_view kCategories[] = {"positive", "negative", "neutral",
                                            "😀 happy",  "مختلط",    "needs \"review\""};
constexpr std::string_view kBooleanScores[] = {"is_correct", "user-thumbs-up", "toxic"};

// A Postgres array element: quoted when it would not read back as itself.
std::string ArrayElement(std::string_view v) {
  bool quote =
      v.empty() || (v.size() == 4 && (v[0] == 'N' || v[0] == 'n') && (v[1] == 'U' || v[1] == 'u') &&
                    (v[2] == 'L' || v[2] == 'l') && (v[3] == 'L' || v[3] == 'l'));
  for (char c : v) {
    if (c == '{' || c == '}' || c == ',' || c == '"' || c == '\\' || c == ' ' || c == '\t' ||
        c == '\n' || c == '\r') {
      quote = true;
    }
  }
  if (!quote) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

}  // namespace

std::string_view SeedTableName(SeedTable table) {
  switch (table) {
    case SeedTable::kTraces:
      return "traces";
    case SeedTable::kObservations:
      return "observations";
    case SeedTable::kScores:
      return "scores";
  }
  return "?";
}

std::string_view SeedCopySql(SeedTable table) {
  switch (table) {
    case SeedTable::kTraces:
      return "COPY traces (id, external_id, \"timestamp\", name, user_id, metadata, release, "
             "version, project_id, public, bookmarked, tags, input, output, session_id, "
             "created_at, updated_at) FROM STDIN";
    case SeedTable::kObservations:
      return "COPY observations (id, trace_id, project_id, type, start_time, end_time, "
             "completion_start_time, name, metadata, parent_observation_id, level, "
             "status_message, version, model, model_parameters, input, output, prompt_tokens, "
             "completion_tokens, total_tokens, unit, input_cost, output_cost, total_cost, "
             "prompt_id, created_at, updated_at) FROM STDIN";
    case SeedTable::kScores:
      return "COPY scores (id, \"timestamp\", project_id, name, value, source, author_user_id, "
             "comment, trace_id, observation_id, config_id, string_value, queue_id, data_type, "
             "created_at, updated_at) FROM STDIN";
  }
  return "";
}

SeedCorpus::SeedCorpus(uint64_t seed) {
  constexpr size_t kCorpusJsonBytes = 512 * 1024;
  SeedRandom rng = SeedRandom::ForRow(seed, kCorpusStream, 0);
  // Two dozen sentences recur, as instructions, boilerplate and retrieved chunks do in LLM
  // inputs, so that Postgres' pglz compresses most toasted values (by about 30 %) instead of
  // giving up on them (it keeps a compression only when it saves 25 %), as for real payloads.
  constexpr size_t kSentences = 24;
  std::vector<std::vector<std::string_view>> sentences(kSentences);
  for (size_t i = 0; i < kSentences; ++i) {
    std::vector<std::string_view> words;
    const int64_t n = rng.Between(4, 14);
    for (int64_t k = 0; k < n; ++k) words.push_back(Pick(kWords, rng));
    // Every special word is in some sentence, so every blob of 1 KB or more holds several.
    for (size_t k = i; k < std::size(kSpecialWords); k += kSentences) {
      words.insert(words.begin() + static_cast<ptrdiff_t>(rng.Below(words.size() + 1)),
                   kSpecialWords[k]);
    }
    for (size_t k = 0; k < words.size(); ++k) {
      const uint64_t sep = rng.Below(100);
      sentences[i].push_back(words[k]);
      sentences[i].push_back(k + 1 < words.size() ? (sep < 92 ? " " : ", ")
                                                  : (sep < 80 ? ". " : "\n"));
    }
  }
  copy_text_.reserve(kCorpusJsonBytes + kCorpusJsonBytes / 4);
  JsonCopy w(copy_text_);
  while (w.len() < kCorpusJsonBytes) {
    const std::vector<std::string_view>& sentence = sentences[rng.Below(sentences.size())];
    for (size_t k = 0; k < sentence.size(); k += 2) {
      copy_off_.push_back(static_cast<uint32_t>(copy_text_.size()));
      json_off_.push_back(static_cast<uint32_t>(w.len()));
      w.StrBody(sentence[k]);
      w.StrBody(sentence[k + 1]);
    }
  }
  copy_off_.push_back(static_cast<uint32_t>(copy_text_.size()));
  json_off_.push_back(static_cast<uint32_t>(w.len()));
}

size_t SeedCorpus::AppendBlob(std::string& out, size_t json_bytes, SeedRandom& rng) const {
  const size_t words = copy_off_.size() - 1;
  size_t written = 0;
  while (written < json_bytes) {
    const size_t begin = rng.Below(words);
    const uint64_t want_end = uint64_t{json_off_[begin]} + (json_bytes - written);
    const auto it = std::lower_bound(json_off_.begin() + static_cast<ptrdiff_t>(begin) + 1,
                                     json_off_.end(), want_end);
    const size_t end = it == json_off_.end() ? words : static_cast<size_t>(it - json_off_.begin());
    out.append(copy_text_, copy_off_[begin], copy_off_[end] - copy_off_[begin]);
    written += json_off_[end] - json_off_[begin];
  }
  return written;
}

SeedRowWriter::SeedRowWriter(const SeedOptions& opts, const SeedCorpus& corpus)
    : opts_(opts), corpus_(corpus), blob_bytes_(static_cast<size_t>(opts.blob_bytes)) {
  const std::string seed = std::to_string(opts.random_seed);
  id_prefix_ = {"tr-s" + seed + "-", "ob-s" + seed + "-", "sc-s" + seed + "-"};
  for (int p = 1; p <= opts.projects; ++p) project_ids_.push_back(SeedProjectId(p));
  for (std::string_view tag : kTags) tag_elements_.push_back(ArrayElement(tag));
  const int64_t counts[3] = {opts.traces, opts.observations, opts.scores};
  for (size_t t = 0; t < 3; ++t) {
    shared_rows_[t] = std::llround(opts.same_created_at_fraction * static_cast<double>(counts[t]));
  }
  scratch_.reserve(4096);
}

void SeedRowWriter::Append(SeedTable table, std::string& out, int64_t index) {
  switch (table) {
    case SeedTable::kTraces:
      AppendTrace(out, index);
      break;
    case SeedTable::kObservations:
      AppendObservation(out, index);
      break;
    case SeedTable::kScores:
      AppendScore(out, index);
      break;
  }
}

SeedRowWriter::TraceKey SeedRowWriter::TraceAt(int64_t trace) const {
  SeedRandom rng = SeedRandom::ForRow(opts_.random_seed, kTraceKeyStream, trace);
  // Few projects hold most traces, as in a real instance.
  const double u = rng.Unit();
  const int project = 1 + std::min(opts_.projects - 1,
                                   static_cast<int>(u * u * static_cast<double>(opts_.projects)));
  // Rows advance through the range in id order (ingestion order), each jittered by up to three
  // rows' worth of time; the last one still ends before kRangeEndMs.
  const double span = static_cast<double>(kRangeEndMs - kRangeStartMs);
  const double per_row = span / static_cast<double>(opts_.traces + 3);
  int64_t ts = kRangeStartMs + static_cast<int64_t>(static_cast<double>(trace) * per_row) +
               static_cast<int64_t>(rng.Below(static_cast<uint64_t>(per_row * 3) + 1));
  ts = std::min(ts, kRangeEndMs - 1);
  return {project, ts};
}

int64_t SeedRowWriter::FirstObservationOf(int64_t trace) const {
  // Observation i belongs to trace i * traces / observations (both <= 1e9: no overflow).
  return (trace * opts_.observations + opts_.traces - 1) / opts_.traces;
}

int64_t SeedRowWriter::CreatedAt(int64_t index, int64_t shared_rows, int64_t event_ms,
                                 SeedRandom& rng) const {
  // Always drawn, so that a row's other columns do not depend on the fraction.
  const uint64_t r = rng.Below(1000);
  const uint64_t delay_draw = rng.Next();
  if (index < shared_rows) return kSharedCreatedAtMs;
  int64_t delay;
  if (r < 800) {
    delay = 20 + static_cast<int64_t>(delay_draw % 3000);  // ingested within seconds
  } else if (r < 950) {
    delay = 3000 + static_cast<int64_t>(delay_draw % 600'000);
  } else {
    delay = 600'000 + static_cast<int64_t>(delay_draw % (3 * kMsPerDay));  // late batch upload
  }
  const int64_t created = event_ms + delay;
  return created == kSharedCreatedAtMs ? created + 1 : created;
}

void SeedRowWriter::AppendUpdatedAt(std::string& out, int64_t created_ms, SeedRandom& rng) const {
  const uint64_t r = rng.Below(1000);
  const int64_t later = static_cast<int64_t>(rng.Below(2 * kMsPerDay));
  AppendPostgresTimestamp(out, r < 700 ? created_ms : created_ms + 1 + later);
}

void SeedRowWriter::AppendId(std::string& out, SeedTable table, int64_t index) const {
  out.append(id_prefix_[static_cast<size_t>(table)]);
  char buf[10];
  PutDigits(buf, 10, index);
  out.append(buf, sizeof buf);
}

void SeedRowWriter::AppendMetadata(std::string& out, SeedRandom& rng) {
  const uint64_t r = rng.Below(1000);
  if (r < 80) return Null(out);  // 8 % SQL NULL
  JsonCopy w(out);
  if (r < 120) return w.Str(Pick(kMetadataStrings, rng));  // 4 % a JSON string
  if (r < 150) {                                           // 3 % an array
    w.Raw("[\"alpha\", ");
    w.Int(rng.Between(-5, 100));
    w.Raw(", null, {\"k\": ");
    w.Str(Pick(kNotes, rng));
    w.Raw("}, true, []]");
    return;
  }
  if (r < 170) {  // 2 % a number
    if (rng.Chance(500)) return w.Int(rng.Between(-1000, 100000));
    return w.Decimal(rng.Between(-100000, 100000), 3);
  }
  if (r < 175) return w.Raw(rng.Chance(500) ? "true" : "false");  // 0.5 % a boolean
  if (r < 180) return w.Raw("null");                              // 0.5 % JSON null
  // 82 % an object; some pretty-printed (raw newlines between tokens).
  const bool pretty = rng.Chance(50);
  bool first = true;
  auto key = [&](std::string_view k) {
    w.Raw(first ? "{" : ",");
    if (pretty) {
      w.Newline();
      w.Raw("  ");
    } else if (!first) {
      w.Raw(" ");
    }
    first = false;
    w.Str(k);
    w.Raw(": ");
  };
  static constexpr std::string_view kEnvs[] = {"production", "staging", "development"};
  key("environment");
  w.Str(Pick(kEnvs, rng));
  if (rng.Chance(600)) {
    key("sdk");
    w.Raw(rng.Chance(500) ? R"({"name": "langfuse-python", "version": "2.36.1"})"
                          : R"({"name": "langfuse-js", "version": "3.10.0"})");
  }
  if (rng.Chance(400)) {
    key("customer");
    w.Raw("{\"id\": \"cus_");
    w.Int(rng.Between(1, 99999));
    w.Raw("\", \"plan\": ");
    w.Raw(rng.Chance(300) ? "\"enterprise\"" : "\"free\"");
    w.Raw(", \"name\": ");
    w.Str(Pick(kCustomerNames, rng));
    w.Raw("}");
  }
  if (rng.Chance(400)) {
    key("request");
    w.Raw("{\"retries\": ");
    w.Int(rng.Between(0, 3));
    w.Raw(", \"latency_ms\": ");
    w.Decimal(rng.Between(1, 300000), 1);
    w.Raw(", \"cached\": ");
    w.Raw(rng.Chance(200) ? "true" : "false");
    w.Raw(", \"headers\": {\"x-request-id\": \"");
    scratch_.clear();
    AppendHex(scratch_, rng.Next(), 16);
    w.Raw(scratch_);
    w.Raw("\"}}");
  }
  if (rng.Chance(200)) {
    key("experiment");
    w.Raw("[\"a\", \"b\", ");
    w.Int(rng.Between(1, 9));
    w.Raw("]");
  }
  if (rng.Chance(250)) {
    key("note");
    w.Str(Pick(kNotes, rng));
  }
  if (rng.Chance(100)) {
    key("nested");
    w.Raw(R"({"level1": {"level2": {"level3": [1, {"deep": null}, "x"]}}})");
  }
  if (rng.Chance(50)) {
    key("empty");
    w.Raw("{}");
    key("emptyList");
    w.Raw("[]");
  }
  if (rng.Chance(100)) {
    key("ユーザー属性");
    w.Raw("{\"言語\": \"日本語\", \"emoji\": \"🎌\"}");
  }
  if (pretty) w.Newline();
  w.Raw("}");
}

void SeedRowWriter::AppendTags(std::string& out, SeedRandom& rng) {
  if (rng.Chance(450)) {
    out.append("{}");
    return;
  }
  const size_t n = 1 + rng.Below(5);
  const size_t start = rng.Below(std::size(kTags));
  scratch_.clear();
  scratch_.push_back('{');
  for (size_t j = 0; j < n; ++j) {
    if (j > 0) scratch_.push_back(',');
    scratch_.append(tag_elements_[(start + j) % tag_elements_.size()]);
  }
  scratch_.push_back('}');
  Text(out, scratch_);
}

void SeedRowWriter::AppendBlobJson(std::string& out, Json kind, SeedRandom& rng) {
  // The part after the blob goes to scratch_ first, so that its length is known.
  scratch_.clear();
  JsonCopy head(out);
  JsonCopy tail(scratch_);
  switch (kind) {
    case Json::kChat:
      head.Raw(R"({"messages": [{"role": "system", "content": )");
      head.Str(Pick(kSystemPrompts, rng));
      head.Raw(R"(}, {"role": "user", "content": ")");
      tail.Raw(R"("}], "session": {"locale": )");
      tail.Str(Pick(kLocales, rng));
      tail.Raw(", \"turn\": ");
      tail.Int(rng.Between(1, 20));
      tail.Raw("}}");
      break;
    case Json::kText:
      head.Raw("\"");
      tail.Raw("\"");
      break;
    case Json::kContentParts:
      head.Raw(R"([{"type": "text", "text": ")");
      tail.Raw(R"("}, {"type": "image_url", "image_url": {"url": "https://example.com/img/)");
      tail.Int(rng.Between(1, 1000));
      tail.Raw(R"(.png", "detail": null}}])");
      break;
    case Json::kToolCall:
      head.Raw(R"({"query": ")");
      tail.Raw(
          R"(", "filters": {"tags": ["a", "b"], "range": {"from": "2024-01-01", "to": null}, "limit": )");
      tail.Int(rng.Between(1, 100));
      tail.Raw(R"(, "exact": false}, "escapes": )");
      tail.Str("quote \" backslash \\ newline \n tab \t done");
      tail.Raw("}");
      break;
    case Json::kAssistant:
      head.Raw(R"({"role": "assistant", "content": ")");
      tail.Raw("\"}");
      break;
    case Json::kCompletion:
      head.Raw(R"({"choices": [{"index": 0, "message": {"role": "assistant", "content": ")");
      tail.Raw(R"(", "tool_calls": []}, "finish_reason": "stop"}], "usage": {"prompt_tokens": )");
      tail.Int(rng.Between(1, 4000));
      tail.Raw(", \"completion_tokens\": ");
      tail.Int(rng.Between(1, 1000));
      tail.Raw("}}");
      break;
    case Json::kLabel:
      head.Raw(R"({"score": )");
      head.Decimal(rng.Between(0, 1000), 3);
      head.Raw(R"(, "label": ")");
      tail.Raw("\"}");
      break;
  }
  const size_t fixed = head.len() + tail.len();
  head.Blob(corpus_, blob_bytes_ > fixed ? blob_bytes_ - fixed : 0, rng);
  out.append(scratch_);
}

void SeedRowWriter::AppendTrace(std::string& out, int64_t i) {
  const TraceKey key = TraceAt(i);
  SeedRandom rng = SeedRandom::ForRow(opts_.random_seed, kTraceStream, i);
  AppendId(out, SeedTable::kTraces, i);
  Tab(out);
  if (rng.Chance(100)) {  // external_id
    out.append("ext-");
    AppendHex(out, rng.Next(), 16);
  } else {
    Null(out);
  }
  Tab(out);
  AppendPostgresTimestamp(out, key.timestamp_ms);
  Tab(out);
  if (rng.Chance(30)) {
    Null(out);
  } else {
    Text(out, PickSkewed(kTraceNames, kCommonTraceNames, rng));
  }
  Tab(out);
  const uint64_t user = rng.Below(1000);  // user_id
  if (user < 250) {
    Null(out);
  } else if (user < 900) {
    out.append("user-");
    AppendInt(out, rng.Between(1, 5000));
  } else {
    Text(out, Pick(kUserIds, rng));
  }
  Tab(out);
  AppendMetadata(out, rng);
  Tab(out);
  if (rng.Chance(600)) {  // release
    Null(out);
  } else {
    out.append("v1.");
    AppendInt(out, rng.Between(0, 19));
    out.push_back('.');
    AppendInt(out, rng.Between(0, 9));
  }
  Tab(out);
  static constexpr std::string_view kVersions[] = {"1", "2", "v2-beta", "2024-01-15.1"};
  if (rng.Chance(700)) {
    Null(out);
  } else {
    Text(out, Pick(kVersions, rng));
  }
  Tab(out);
  out.append(project_ids_[static_cast<size_t>(key.project - 1)]);
  Tab(out);
  Bool(out, rng.Chance(20));  // public
  Tab(out);
  Bool(out, rng.Chance(10));  // bookmarked
  Tab(out);
  AppendTags(out, rng);
  Tab(out);
  const uint64_t in = rng.Below(1000);
  if (in < 40) {
    Null(out);
  } else if (in < 50) {
    out.append("null");  // JSON null, not SQL NULL
  } else {
    AppendBlobJson(out,
                   in < 550   ? Json::kChat
                   : in < 750 ? Json::kText
                   : in < 850 ? Json::kContentParts
                              : Json::kToolCall,
                   rng);
  }
  Tab(out);
  const uint64_t res = rng.Below(1000);
  if (res < 100) {
    Null(out);
  } else {
    AppendBlobJson(out,
                   res < 450   ? Json::kAssistant
                   : res < 750 ? Json::kText
                   : res < 900 ? Json::kCompletion
                               : Json::kLabel,
                   rng);
  }
  Tab(out);
  const uint64_t session = rng.Below(1000);
  if (session < 400) {
    Null(out);
  } else if (session < 950) {
    out.append("session-");
    AppendInt(out, i / 4);  // a few traces per session
  } else {
    out.append("セッション-");
    AppendInt(out, i / 4);
  }
  Tab(out);
  const int64_t created = CreatedAt(i, shared_rows_[0], key.timestamp_ms, rng);
  AppendPostgresTimestamp(out, created);
  Tab(out);
  AppendUpdatedAt(out, created, rng);
  out.push_back('\n');
}

void SeedRowWriter::AppendObservation(std::string& out, int64_t i) {
  const int64_t trace = i * opts_.traces / opts_.observations;
  const int64_t first = FirstObservationOf(trace);
  const int64_t nth = i - first;
  const TraceKey key = TraceAt(trace);
  SeedRandom rng = SeedRandom::ForRow(opts_.random_seed, kObservationStream, i);

  AppendId(out, SeedTable::kObservations, i);
  Tab(out);
  AppendId(out, SeedTable::kTraces, trace);
  Tab(out);
  out.append(project_ids_[static_cast<size_t>(key.project - 1)]);
  Tab(out);
  const uint64_t type_draw = rng.Below(1000);
  enum class Type { kGeneration, kSpan, kEvent };
  const Type type = type_draw < 500   ? Type::kGeneration
                    : type_draw < 850 ? Type::kSpan
                                      : Type::kEvent;
  out.append(type == Type::kGeneration ? "GENERATION" : type == Type::kSpan ? "SPAN" : "EVENT");
  Tab(out);
  const int64_t start = key.timestamp_ms + nth * 1200 + static_cast<int64_t>(rng.Below(1000));
  AppendPostgresTimestamp(out, start);
  Tab(out);
  const int64_t duration = 5 + static_cast<int64_t>(rng.Below(20'000));
  if (type == Type::kEvent || rng.Chance(30)) {  // events have no end; some spans never ended
    Null(out);
  } else {
    AppendPostgresTimestamp(out, start + duration);
  }
  Tab(out);
  if (type == Type::kGeneration && rng.Chance(600)) {  // completion_start_time
    AppendPostgresTimestamp(
        out, start + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(duration))));
  } else {
    Null(out);
  }
  Tab(out);
  if (rng.Chance(30)) {
    Null(out);
  } else {
    Text(out, PickSkewed(kObservationNames, kCommonObservationNames, rng));
  }
  Tab(out);
  AppendMetadata(out, rng);
  Tab(out);
  if (nth > 0 && rng.Chance(600)) {  // parent_observation_id: the trace's root or the previous
    AppendId(out, SeedTable::kObservations, rng.Chance(500) ? first : i - 1);
  } else {
    Null(out);
  }
  Tab(out);
  const uint64_t level = rng.Below(1000);
  out.append(level < 900 ? "DEFAULT" : level < 940 ? "DEBUG" : level < 980 ? "WARNING" : "ERROR");
  Tab(out);
  if (level >= 940) {
    Text(out, Pick(kStatusMessages, rng));
  } else {
    Null(out);
  }
  Tab(out);
  if (rng.Chance(800)) {  // version
    Null(out);
  } else {
    out.append("v");
    AppendInt(out, rng.Between(1, 5));
  }
  Tab(out);

  // model, model_parameters
  const SeedModelName* model = nullptr;
  if (type == Type::kGeneration) {
    int64_t draw = static_cast<int64_t>(rng.Below(1000));
    for (const SeedModelName& m : SeedModelNames()) {
      model = &m;
      if ((draw -= m.per_mille) < 0) break;
    }
  }
  if (model == nullptr || model->null) {
    Null(out);
    Tab(out);
    Null(out);
  } else {
    Text(out, model->name);
    Tab(out);
    const uint64_t params = rng.Below(1000);
    JsonCopy w(out);
    if (params < 200) {
      Null(out);
    } else if (params < 800) {
      w.Raw("{\"temperature\": ");
      w.Decimal(rng.Between(0, 20), 1);
      w.Raw(", \"max_tokens\": ");
      w.Int(rng.Between(16, 4096));
      w.Raw("}");
    } else {  // strings, as older SDKs sent them
      w.Raw(R"({"temperature": "0.2", "stop": [)");
      w.Str("\n\nHuman:");
      w.Raw(R"(], "stream": true})");
    }
  }
  Tab(out);

  // input, output
  const uint64_t in = rng.Below(1000);
  const uint64_t res = rng.Below(1000);
  switch (type) {
    case Type::kGeneration:
      if (in < 30) {
        Null(out);
      } else {
        AppendBlobJson(out,
                       in < 600   ? Json::kChat
                       : in < 800 ? Json::kContentParts
                                  : Json::kText,
                       rng);
      }
      Tab(out);
      if (res < 60) {
        Null(out);
      } else {
        AppendBlobJson(out,
                       res < 500   ? Json::kAssistant
                       : res < 800 ? Json::kCompletion
                                   : Json::kText,
                       rng);
      }
      break;
    case Type::kSpan:
      if (in < 150) {
        Null(out);
      } else {
        AppendBlobJson(out, in < 700 ? Json::kToolCall : Json::kText, rng);
      }
      Tab(out);
      if (res < 200) {
        Null(out);
      } else {
        AppendBlobJson(out, res < 700 ? Json::kLabel : Json::kText, rng);
      }
      break;
    case Type::kEvent:
      if (in < 300) {
        Null(out);
      } else {
        AppendBlobJson(out, in < 700 ? Json::kText : Json::kLabel, rng);
      }
      Tab(out);
      if (res < 900) {
        Null(out);
      } else {
        AppendBlobJson(out, Json::kText, rng);
      }
      break;
  }
  Tab(out);

  // prompt_tokens, completion_tokens, total_tokens, unit
  int64_t prompt_tokens = 0, completion_tokens = 0, total_tokens = 0;
  if (model != nullptr) {
    prompt_tokens = rng.Between(5, 4000);
    completion_tokens = model->embedding ? 0 : rng.Between(1, 1500);
    total_tokens = prompt_tokens + completion_tokens;
    const uint64_t odd = rng.Below(1000);
    if (odd < 10) {  // buggy SDKs reported negative counts
      completion_tokens = -rng.Between(1, 100);
      total_tokens = prompt_tokens + completion_tokens;
    } else if (odd < 15) {
      prompt_tokens = -1;
      total_tokens = -1 + completion_tokens;
    } else if (odd < 60) {  // only a total
      prompt_tokens = 0;
      completion_tokens = 0;
    }
  }
  AppendInt(out, prompt_tokens);
  Tab(out);
  AppendInt(out, completion_tokens);
  Tab(out);
  AppendInt(out, total_tokens);
  Tab(out);
  if (model == nullptr || (model->null && rng.Chance(500))) {
    Null(out);
  } else if (!model->null && rng.Chance(50)) {  // older SDKs sent no unit
    Null(out);
  } else {
    out.append(model->null ? std::string_view("TOKENS") : model->unit);
  }
  Tab(out);

  // input_cost, output_cost, total_cost: provided by the user for some generations
  const uint64_t cost = model != nullptr ? rng.Below(1000) : 1000;
  if (cost < 80) {
    const int64_t in_nanos = rng.Between(0, 5'000'000);
    const int64_t out_nanos = rng.Between(0, 5'000'000);
    AppendDecimal(out, in_nanos, 9);
    Tab(out);
    AppendDecimal(out, out_nanos, 9);
    Tab(out);
    AppendDecimal(out, in_nanos + out_nanos, 9);
  } else if (cost < 100) {
    Null(out);
    Tab(out);
    Null(out);
    Tab(out);
    AppendDecimal(out, rng.Between(0, 10'000'000), 9);
  } else {
    Null(out);
    Tab(out);
    Null(out);
    Tab(out);
    Null(out);
  }
  Tab(out);
  if (type == Type::kGeneration && rng.Chance(300)) {  // prompt_id, a prompt of the same project
    out.append(SeedPromptId(key.project, rng.Below(SeedPrompts().size())));
  } else {
    Null(out);
  }
  Tab(out);
  const int64_t created = CreatedAt(i, shared_rows_[1], start, rng);
  AppendPostgresTimestamp(out, created);
  Tab(out);
  AppendUpdatedAt(out, created, rng);
  out.push_back('\n');
}

void SeedRowWriter::AppendScore(std::string& out, int64_t i) {
  SeedRandom rng = SeedRandom::ForRow(opts_.random_seed, kScoreStream, i);
  // Scores follow their traces in time: score i rates a trace near i * traces / scores.
  const int64_t spread = std::max<int64_t>(1, 2 * opts_.traces / opts_.scores);
  const int64_t trace = std::min(
      opts_.traces - 1, i * opts_.traces / opts_.scores +
                            static_cast<int64_t>(rng.Below(static_cast<uint64_t>(spread))));
  const TraceKey key = TraceAt(trace);
  const int64_t timestamp =
      key.timestamp_ms + 1000 + static_cast<int64_t>(rng.Below(7 * kMsPerDay));

  AppendId(out, SeedTable::kScores, i);
  Tab(out);
  AppendPostgresTimestamp(out, timestamp);
  Tab(out);
  out.append(project_ids_[static_cast<size_t>(key.project - 1)]);
  Tab(out);
  const uint64_t type_draw = rng.Below(1000);
  std::string_view data_type;
  std::string_view name;
  if (type_draw < 600) {
    data_type = "NUMERIC";
    name = Pick(kNumericScores, rng);
  } else if (type_draw < 850) {
    data_type = "CATEGORICAL";
    name = Pick(kCategoricalScores, rng);
  } else {
    data_type = "BOOLEAN";
    name = Pick(kBooleanScores, rng);
  }
  Text(out, name);
  Tab(out);
  // value and string_value by data type
  const size_t category = rng.Below(std::size(kCategories));
  const bool flag = rng.Chance(700);
  const uint64_t value_draw = rng.Below(1000);
  if (data_type == "NUMERIC") {
    if (value_draw < 950) {
      AppendDecimal(out, rng.Between(0, 10000), 4);
    } else {
      AppendDecimal(out, rng.Between(-500, 100000), 2);  // outside [0, 1]
    }
  } else if (data_type == "CATEGORICAL") {
    if (value_draw < 600) {
      Null(out);
    } else {
      AppendInt(out, static_cast<int64_t>(category));
    }
  } else {
    out.push_back(flag ? '1' : '0');
  }
  Tab(out);
  const uint64_t source = rng.Below(1000);
  const bool annotation = source >= 550 && source < 800;
  out.append(source < 550 ? "API" : annotation ? "ANNOTATION" : "EVAL");
  Tab(out);
  if (annotation) {  // author_user_id
    out.append("annotator-");
    AppendInt(out, rng.Between(1, 20));
  } else {
    Null(out);
  }
  Tab(out);
  if (rng.Chance(700)) {  // comment
    Null(out);
  } else {
    Text(out, Pick(kScoreComments, rng));
  }
  Tab(out);
  AppendId(out, SeedTable::kTraces, trace);
  Tab(out);
  const int64_t first = opts_.observations > 0 ? FirstObservationOf(trace) : 0;
  const int64_t count = opts_.observations > 0 ? FirstObservationOf(trace + 1) - first : 0;
  if (count > 0 && rng.Chance(300)) {  // observation_id, one of the trace's
    AppendId(out, SeedTable::kObservations,
             first + static_cast<int64_t>(rng.Below(static_cast<uint64_t>(count))));
  } else {
    Null(out);
  }
  Tab(out);
  if (data_type != "NUMERIC" && rng.Chance(500)) {  // config_id
    out.append("config-");
    Text(out, name);
  } else {
    Null(out);
  }
  Tab(out);
  if (data_type == "CATEGORICAL") {  // string_value
    Text(out, kCategories[category]);
  } else if (data_type == "BOOLEAN") {
    out.append(flag ? "True" : "False");
  } else {
    Null(out);
  }
  Tab(out);
  if (annotation && rng.Chance(300)) {  // queue_id
    out.append("queue-1");
  } else {
    Null(out);
  }
  Tab(out);
  out.append(data_type);
  Tab(out);
  const int64_t created = CreatedAt(i, shared_rows_[2], timestamp, rng);
  AppendPostgresTimestamp(out, created);
  Tab(out);
  AppendUpdatedAt(out, created, rng);
  out.push_back('\n');
}

}  // namespace bgm
