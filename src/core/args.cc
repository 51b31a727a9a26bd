#include "core/args.h"

#include <cmath>
#include <regex>

namespace bgm {
namespace {

bool IsLeapYear(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

// Whether `text` (already shaped like kTimestamp) names a real moment: Postgres refuses
// "2024-02-30" or "25:00" only when the copy's first query runs, far from the args.
bool IsCalendarTimestamp(const std::string& text) {
  const auto num = [&](size_t pos) { return std::stoi(text.substr(pos, 2)); };
  const int year = std::stoi(text.substr(0, 4));
  const int month = num(5);
  const int day = num(8);
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  if (day > kDays[month - 1] + (month == 2 && IsLeapYear(year) ? 1 : 0)) return false;
  if (text.size() > 10 && (text[10] == 'T' || text[10] == ' ')) {
    if (num(11) > 23 || num(14) > 59) return false;
    if (text.size() > 16 && text[16] == ':' && num(17) > 59) return false;
  }
  // A zone offset "+05:30" / "-0800": Postgres accepts up to 15:59.
  if (const size_t zone = text.find_first_of("+-", 10); zone != std::string::npos) {
    if (num(zone + 1) > 15 || num(text.size() - 2) > 59) return false;
  }
  return true;
}

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
        static const std::regex kTs(
            R"(^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$)");
        if (!value.is_string() || !std::regex_match(value.get<std::string>(), kTs) ||
            !IsCalendarTimestamp(value.get<std::string>())) {
          return InvalidArgument(key +
                                 " must be a date or time that exists, like \"2024-05-03\" or "
                                 "\"2024-05-03T10:00:00Z\"" +
                                 got);
        }
        break;
      }
    }
  }
  return Status::Ok();
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
