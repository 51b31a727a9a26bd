#include "core/args.h"

#include <cmath>
#include <regex>

namespace bgm {

ArgsSchema& ArgsSchema::Int(std::string key, int64_t min, int64_t max) {
  args_.push_back({std::move(key), Kind::kInt, static_cast<double>(min),
                   static_cast<double>(max), {}});
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
                           args.dump());
  }
  for (const auto& [key, value] : args.items()) {
    const Arg* arg = nullptr;
    for (const Arg& a : args_) {
      if (a.key == key) arg = &a;
    }
    if (arg == nullptr) {
      return InvalidArgument("unknown arg '" + key + "' (value " + value.dump() +
                             "); accepted args: " + KnownKeys());
    }
    const std::string got = ", got " + value.dump();
    switch (arg->kind) {
      case Kind::kInt: {
        const bool integral = value.is_number_integer() ||
                              (value.is_number_float() &&
                               std::trunc(value.get<double>()) == value.get<double>());
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
          return InvalidArgument(key + " must be a number in [" + std::to_string(arg->min) +
                                 ", " + std::to_string(arg->max) + "]" + got);
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
        if (!value.is_string() || !std::regex_match(value.get<std::string>(), kTs)) {
          return InvalidArgument(key + " must be a timestamp like \"2024-05-03\" or "
                                 "\"2024-05-03T10:00:00Z\"" + got);
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
