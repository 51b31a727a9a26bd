#include "core/args.h"

#include <cmath>

#include "common/timestamp.h"

namespace bgm {
namespace {

// `text` cut to at most `max_bytes` bytes at a UTF-8 character boundary, marked when cut.
std::string Truncated(std::string text, size_t max_bytes) {
  if (text.size() <= max_bytes) return text;
  const size_t total = text.size();
  size_t cut = max_bytes;
  // Back up to the first byte of a UTF-8 character.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  text.resize(cut);
  return text + "... (" + std::to_string(total) + " bytes)";
}

std::string Dump(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A key for "unknown arg '...'": escaped like a JSON string, without the quotes.
std::string KeyExcerpt(const std::string& key) {
  const std::string quoted = Dump(nlohmann::json(key));
  return Truncated(quoted.substr(1, quoted.size() - 2), 100);
}

}  // namespace

std::string JsonExcerpt(const nlohmann::json& value, size_t max_bytes) {
  return Truncated(Dump(value), max_bytes);
}

std::string TextExcerpt(std::string text, size_t max_bytes) {
  return Truncated(std::move(text), max_bytes);
}

ArgsSchema& ArgsSchema::Int(std::string key, int64_t min, int64_t max) {
  args_.push_back(
      {std::move(key), Kind::kInt, static_cast<double>(min), static_cast<double>(max), {}});
  return *this;
}
ArgsSchema& ArgsSchema::Number(std::string key, double min, double max) {
  args_.push_back({std::move(key), Kind::kNumber, min, max, {}});
  return *this;
}
ArgsSchema& ArgsSchema::OneOf(std::string key, std::vector<std::string> values) {
  args_.push_back({std::move(key), Kind::kOneOf, 0, 0, std::move(values)});
  return *this;
}
ArgsSchema& ArgsSchema::Timestamp(std::string key) {
  args_.push_back({std::move(key), Kind::kTimestamp, 0, 0, {}});
  return *this;
}

std::string ArgsSchema::KnownKeys() const {
  std::string out;
  for (const Arg& a : args_) {
    if (!out.empty()) out += ", ";
    out += a.key;
  }
  return out.empty() ? "(none)" : out;
}

Status ArgsSchema::Validate(const nlohmann::json& args) const {
  if (!args.is_object()) {
    return InvalidArgument("args must be a JSON object such as {\"batchSize\": 2500}, got " +
                           JsonExcerpt(args));
  }
  for (const auto& [key, value] : args.items()) {
    const Arg* arg = nullptr;
    for (const Arg& a : args_) {
      if (a.key == key) arg = &a;
    }
    if (arg == nullptr) {
      return InvalidArgument("unknown arg '" + KeyExcerpt(key) + "' (value " + JsonExcerpt(value) +
                             "); accepted args: " + KnownKeys());
    }
    const std::string got = ", got " + JsonExcerpt(value);
    switch (arg->kind) {
      case Kind::kInt: {
        const bool integral =
            value.is_number_integer() ||
            (value.is_number_float() && std::trunc(value.get<double>()) == value.get<double>());
        if (!integral || value.get<double>() < arg->min || value.get<double>() > arg->max) {
          return InvalidArgument(key + " must be an integer in [" +
                                 std::to_string(static_cast<int64_t>(arg->min)) + ", " +
                                 std::to_string(static_cast<int64_t>(arg->max)) + "]" + got);
        }
        break;
      }
      case Kind::kNumber:
        if (!value.is_number() || value.get<double>() < arg->min ||
            value.get<double>() > arg->max) {
          return InvalidArgument(key + " must be a number in [" + Dump(arg->min) + ", " +
                                 Dump(arg->max) + "]" + got);
        }
        break;
      case Kind::kOneOf: {
        bool ok = value.is_string();
        if (ok) {
          ok = false;
          for (const std::string& v : arg->values) ok = ok || v == value.get<std::string>();
        }
        if (!ok) {
          std::string list;
          for (const std::string& v : arg->values) list += (list.empty() ? "" : ", ") + v;
          return InvalidArgument(key + " must be one of " + list + got);
        }
        break;
      }
      case Kind::kTimestamp: {
        Result<std::optional<int64_t>> t = TimestampArg(args, key.c_str());
        if (!t.ok()) return t.status();
        break;
      }
    }
  }
  return Status::Ok();
}

Result<std::optional<int64_t>> TimestampArg(const nlohmann::json& args, const char* key) {
  if (!args.is_object() || !args.contains(key)) return std::optional<int64_t>();
  const nlohmann::json& value = args[key];
  if (value.is_string()) {
    if (Result<int64_t> t = ParseTimestampMillis(value.get<std::string>()); t.ok()) {
      return std::optional<int64_t>(*t);
    }
  }
  return InvalidArgument(std::string(key) +
                         " must be a date or time that exists, like \"2024-05-03\" or "
                         "\"2024-05-03T10:00:00Z\", got " +
                         JsonExcerpt(value));
}

int64_t IntArg(const nlohmann::json& args, const char* key, int64_t fallback) {
  if (!args.is_object() || !args.contains(key) || !args[key].is_number()) return fallback;
  return static_cast<int64_t>(args[key].get<double>());
}

double NumberArg(const nlohmann::json& args, const char* key, double fallback) {
  if (!args.is_object() || !args.contains(key) || !args[key].is_number()) return fallback;
  return args[key].get<double>();
}

std::string StringArg(const nlohmann::json& args, const char* key, const std::string& fallback) {
  if (!args.is_object() || !args.contains(key) || !args[key].is_string()) return fallback;
  return args[key].get<std::string>();
}

}  // namespace bgm
