#include "clickhouse/column_type.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/timestamp.h"

namespace bgm {
namespace {

using Kind = ColumnType::Kind;

// `text` quoted and cut for a message (values may be arbitrary input).
std::string Shown(std::string_view text) {
  constexpr size_t kMax = 80;
  std::string out = "\"";
  out.append(text.substr(0, kMax));
  if (text.size() > kMax) out += "...";
  return out + "\"";
}

Status Refused(const ColumnType& t, std::string_view text, const std::string& why) {
  return InvalidArgument(Shown(text) + " cannot be written as " + t.name + ": " + why);
}

// Recursive-descent reader of a type string.
class TypeParser {
 public:
  explicit TypeParser(std::string_view text) : s_(text) {}

  Result<ColumnType> Type() {
    Space();
    const size_t start = pos_;
    std::string word;
    while (pos_ < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[pos_])) != 0)) {
      word += s_[pos_++];
    }
    if (word.empty()) return Bad("expected a type name");
    ColumnType t;
    if (word == "String") {
      t.kind = Kind::kString;
    } else if (word == "FixedString") {
      t.kind = Kind::kFixedString;
      Result<int64_t> n = OneNumberArg();
      if (!n.ok()) return n.status();
      if (*n < 1) return Bad("FixedString needs a size of at least 1");
      t.size = static_cast<size_t>(*n);
    } else if (word.starts_with("UInt") || word.starts_with("Int")) {
      t.kind = Kind::kInt;
      t.is_signed = word.starts_with("Int");
      const std::string_view bits(word.data() + (t.is_signed ? 3 : 4));
      if (bits == "8") {
        t.bits = 8;
      } else if (bits == "16") {
        t.bits = 16;
      } else if (bits == "32") {
        t.bits = 32;
      } else if (bits == "64") {
        t.bits = 64;
      } else {
        return Unsupported(word);
      }
    } else if (word == "Float32" || word == "Float64") {
      t.kind = Kind::kFloat;
      t.bits = word == "Float32" ? 32 : 64;
    } else if (word == "Decimal") {
      t.kind = Kind::kDecimal;
      if (!Take('(')) return Bad("Decimal needs (precision, scale)");
      Result<int64_t> p = Number();
      if (!p.ok()) return p.status();
      if (!Take(',')) return Bad("Decimal needs (precision, scale)");
      Result<int64_t> sc = Number();
      if (!sc.ok()) return sc.status();
      if (!Take(')')) return Bad("expected ')'");
      t.precision = static_cast<int>(*p);
      t.scale = static_cast<int>(*sc);
    } else if (word == "Decimal32" || word == "Decimal64" || word == "Decimal128") {
      t.kind = Kind::kDecimal;
      t.precision = word == "Decimal32" ? 9 : word == "Decimal64" ? 18 : 38;
      Result<int64_t> sc = OneNumberArg();
      if (!sc.ok()) return sc.status();
      t.scale = static_cast<int>(*sc);
    } else if (word == "Bool") {
      t.kind = Kind::kBool;
    } else if (word == "UUID") {
      t.kind = Kind::kUuid;
    } else if (word == "Date") {
      t.kind = Kind::kDate;
    } else if (word == "Date32") {
      t.kind = Kind::kDate32;
    } else if (word == "DateTime") {
      t.kind = Kind::kDateTime;
      if (Take('(')) {
        Result<std::string> tz = Quoted();
        if (!tz.ok()) return tz.status();
        t.timezone = *tz;
        if (!Take(')')) return Bad("expected ')'");
      }
    } else if (word == "DateTime64") {
      t.kind = Kind::kDateTime64;
      if (!Take('(')) return Bad("DateTime64 needs a precision");
      Result<int64_t> p = Number();
      if (!p.ok()) return p.status();
      t.precision = static_cast<int>(*p);
      if (Take(',')) {
        Result<std::string> tz = Quoted();
        if (!tz.ok()) return tz.status();
        t.timezone = *tz;
      }
      if (!Take(')')) return Bad("expected ')'");
    } else if (word == "Enum8" || word == "Enum16") {
      t.kind = Kind::kEnum;
      t.bits = word == "Enum8" ? 8 : 16;
      if (!Take('(')) return Bad("an Enum needs its values");
      do {
        Result<std::string> name = Quoted();
        if (!name.ok()) return name.status();
        if (!Take('=')) return Bad("expected '=' in an Enum");
        Result<int64_t> v = Number(/*allow_sign=*/true);
        if (!v.ok()) return v.status();
        t.enum_values.emplace_back(*name, static_cast<int>(*v));
      } while (Take(','));
      if (!Take(')')) return Bad("expected ')'");
    } else if (word == "Nullable" || word == "LowCardinality" || word == "Array") {
      t.kind = word == "Nullable"         ? Kind::kNullable
               : word == "LowCardinality" ? Kind::kLowCardinality
                                          : Kind::kArray;
      if (!Take('(')) return Bad(word + " needs a type argument");
      Result<ColumnType> inner = Type();
      if (!inner.ok()) return inner.status();
      t.args.push_back(std::move(*inner));
      if (!Take(')')) return Bad("expected ')'");
    } else if (word == "Map") {
      t.kind = Kind::kMap;
      if (!Take('(')) return Bad("Map needs (key, value)");
      Result<ColumnType> key = Type();
      if (!key.ok()) return key.status();
      if (!Take(',')) return Bad("Map needs (key, value)");
      Result<ColumnType> value = Type();
      if (!value.ok()) return value.status();
      if (!Take(')')) return Bad("expected ')'");
      t.args.push_back(std::move(*key));
      t.args.push_back(std::move(*value));
    } else {
      return Unsupported(word);
    }
    t.name = std::string(s_.substr(start, pos_ - start));
    const size_t first = t.name.find_first_not_of(' ');
    t.name.erase(0, first == std::string::npos ? t.name.size() : first);
    return t;
  }

  bool AtEnd() {
    Space();
    return pos_ == s_.size();
  }
  Status Bad(const std::string& why) const {
    return InvalidArgument("ClickHouse type " + Shown(s_) + " cannot be read: " + why);
  }

 private:
  Status Unsupported(const std::string& word) const {
    return InvalidArgument("ClickHouse type " + Shown(s_) + ": " + word +
                           " columns are not supported by bgmigrate's copies; use String, "
                           "(U)Int8-64, Float, Decimal, Bool, UUID, Date, DateTime(64), Enum, "
                           "Nullable, LowCardinality, Array or Map, or leave the column to its "
                           "default");
  }
  void Space() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  bool Take(char c) {
    Space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  Result<int64_t> Number(bool allow_sign = false) {
    Space();
    int64_t v = 0;
    const char* begin = s_.data() + pos_;
    if (!allow_sign && pos_ < s_.size() && s_[pos_] == '-') return Bad("expected a number");
    auto [end, ec] = std::from_chars(begin, s_.data() + s_.size(), v);
    if (ec != std::errc()) return Bad("expected a number");
    pos_ += static_cast<size_t>(end - begin);
    return v;
  }
  Result<int64_t> OneNumberArg() {
    if (!Take('(')) return Bad("expected '('");
    Result<int64_t> n = Number();
    if (!n.ok()) return n;
    if (!Take(')')) return Bad("expected ')'");
    return n;
  }
  Result<std::string> Quoted() {
    Space();
    if (pos_ >= s_.size() || s_[pos_] != '\'') return Bad("expected a quoted string");
    ++pos_;
    std::string out;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '\\' && pos_ < s_.size()) {
        out += s_[pos_++];
      } else if (c == '\'') {
        if (pos_ < s_.size() && s_[pos_] == '\'') {
          out += '\'';
          ++pos_;
        } else {
          return out;
        }
      } else {
        out += c;
      }
    }
    return Bad("a quoted string does not end");
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Status EncodeInt(RowBinaryWriter& w, const ColumnType& t, std::string_view text) {
  if (text == "t" || text == "f") text = text == "t" ? "1" : "0";  // a Postgres boolean
  const char* end = text.data() + text.size();
  if (t.is_signed) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end) return Refused(t, text, "not an integer in range");
    const int64_t lo =
        t.bits == 64 ? std::numeric_limits<int64_t>::min() : -(int64_t{1} << (t.bits - 1));
    const int64_t hi =
        t.bits == 64 ? std::numeric_limits<int64_t>::max() : (int64_t{1} << (t.bits - 1)) - 1;
    if (v < lo || v > hi) return Refused(t, text, "out of range");
    switch (t.bits) {
      case 8:
        w.WriteInt8(static_cast<int8_t>(v));
        break;
      case 16:
        w.WriteInt16(static_cast<int16_t>(v));
        break;
      case 32:
        w.WriteInt32(static_cast<int32_t>(v));
        break;
      default:
        w.WriteInt64(v);
        break;
    }
    return Status::Ok();
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || p != end) {
    return Refused(t, text, text.starts_with("-") ? "negative" : "not an integer in range");
  }
  if (t.bits < 64 && v > (uint64_t{1} << t.bits) - 1) return Refused(t, text, "out of range");
  switch (t.bits) {
    case 8:
      w.WriteUInt8(static_cast<uint8_t>(v));
      break;
    case 16:
      w.WriteUInt16(static_cast<uint16_t>(v));
      break;
    case 32:
      w.WriteUInt32(static_cast<uint32_t>(v));
      break;
    default:
      w.WriteUInt64(v);
      break;
  }
  return Status::Ok();
}

Status EncodeFloat(RowBinaryWriter& w, const ColumnType& t, std::string_view text) {
  double v = 0;
  if (text == "NaN") {
    v = std::numeric_limits<double>::quiet_NaN();
  } else if (text == "Infinity") {
    v = std::numeric_limits<double>::infinity();
  } else if (text == "-Infinity") {
    v = -std::numeric_limits<double>::infinity();
  } else {
    const char* end = text.data() + text.size();
    auto [p, ec] = std::from_chars(text.data(), end, v);
    if (ec != std::errc() || p != end) return Refused(t, text, "not a number");
  }
  if (t.bits == 32) {
    if (std::isfinite(v) && std::fabs(v) > std::numeric_limits<float>::max()) {
      return Refused(t, text, "out of Float32's range");
    }
    w.WriteFloat32(static_cast<float>(v));
  } else {
    w.WriteFloat64(v);
  }
  return Status::Ok();
}

Status EncodeDecimal(RowBinaryWriter& w, const ColumnType& t, std::string_view text) {
  Result<Int128> v = ParseDecimal(text, t.precision, t.scale, t.name);
  if (!v.ok()) return v.status();
  if (t.precision <= 9) {
    w.WriteInt32(static_cast<int32_t>(*v));
  } else if (t.precision <= 18) {
    w.WriteInt64(static_cast<int64_t>(*v));
  } else {
    w.WriteUInt64(static_cast<uint64_t>(*v));  // two's complement, low half first
    w.WriteUInt64(static_cast<uint64_t>(*v >> 64));
  }
  return Status::Ok();
}

Status EncodeUuid(RowBinaryWriter& w, const ColumnType& t, std::string_view text) {
  if (text.size() != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' ||
      text[23] != '-') {
    return Refused(t, text, "not a UUID like 123e4567-e89b-12d3-a456-426614174000");
  }
  uint64_t halves[2] = {0, 0};
  int nibbles = 0;
  for (char c : text) {
    if (c == '-') continue;
    int v = 0;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      v = c - 'A' + 10;
    } else {
      return Refused(t, text, "not a UUID (a character that is not hexadecimal)");
    }
    uint64_t& half = halves[nibbles / 16];
    half = (half << 4) | static_cast<uint64_t>(v);
    ++nibbles;
  }
  // RowBinary UUID: the first 8 bytes as a little-endian UInt64, then the last 8.
  w.WriteUInt64(halves[0]);
  w.WriteUInt64(halves[1]);
  return Status::Ok();
}

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

Status EncodeTime(RowBinaryWriter& w, const ColumnType& t, std::string_view text) {
  Result<Instant> at = ParseTimestamp(text);
  if (!at.ok()) return Refused(t, text, at.status().message());
  switch (t.kind) {
    case Kind::kDate:
    case Kind::kDate32: {
      const int64_t days = FloorDiv(at->seconds, 86400);
      // Date: 1970-01-01 to 2149-06-06; Date32: 1900-01-01 to 2299-12-31.
      if (t.kind == Kind::kDate) {
        if (days < 0 || days > 65535) {
          return Refused(t, text, "outside what Date holds (1970-01-01 to 2149-06-06)");
        }
        w.WriteUInt16(static_cast<uint16_t>(days));
      } else {
        if (days < -25567 || days > 120529) {
          return Refused(t, text, "outside what Date32 holds (1900-01-01 to 2299-12-31)");
        }
        w.WriteInt32(static_cast<int32_t>(days));
      }
      return Status::Ok();
    }
    case Kind::kDateTime:
      if (at->seconds < 0 || at->seconds > 4294967295LL) {
        return Refused(t, text,
                       "outside what DateTime holds (1970-01-01 00:00:00 to 2106-02-07 06:28:15 "
                       "UTC)");
      }
      w.WriteUInt32(static_cast<uint32_t>(at->seconds));  // a fraction is cut, as the type does
      return Status::Ok();
    default: {  // kDateTime64
      // Current servers hold 1900-01-01 to 2299-12-31 23:59:59.999999999 UTC.
      if (at->seconds < -2208988800LL || at->seconds > 10413791999LL) {
        return Refused(t, text,
                       "outside what DateTime64 holds (1900-01-01 to 2299-12-31 23:59:59 UTC)");
      }
      int64_t scale = 1;
      for (int i = 0; i < t.precision; ++i) scale *= 10;
      int64_t ticks_per_nano_div = 1;
      for (int i = t.precision; i < 9; ++i) ticks_per_nano_div *= 10;
      w.WriteInt64(at->seconds * scale + at->nanos / ticks_per_nano_div);
      return Status::Ok();
    }
  }
}

// A JSON value as the text a Postgres column of it would hold: a string as is, null as NULL,
// anything else as compact JSON.
std::optional<std::string> TextOf(const nlohmann::json& v) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The elements of a Postgres array literal: {a,"b c",NULL,{1,2}} (nested arrays stay literals).
Result<std::vector<std::optional<std::string>>> PostgresArrayElements(const ColumnType& t,
                                                                      std::string_view text) {
  std::vector<std::optional<std::string>> out;
  if (text.size() < 2 || text.front() != '{' || text.back() != '}') {
    return Refused(t, text, "not a Postgres array ({a,b}) or a JSON array ([\"a\",\"b\"])");
  }
  std::string_view s = text.substr(1, text.size() - 2);
  size_t i = 0;
  if (s.empty()) return out;
  for (;;) {
    if (i < s.size() && s[i] == '"') {
      std::string v;
      ++i;
      // Runs between escapes are appended whole.
      while (i < s.size() && s[i] != '"') {
        const size_t run = std::min(s.find_first_of("\"\\", i), s.size());
        v.append(s.substr(i, run - i));
        i = run;
        if (i < s.size() && s[i] == '\\') {
          if (i + 1 == s.size()) return Refused(t, text, "a quoted element does not end");
          v += s[i + 1];
          i += 2;
        }
      }
      if (i >= s.size()) return Refused(t, text, "a quoted element does not end");
      ++i;
      out.emplace_back(std::move(v));
    } else if (i < s.size() && s[i] == '{') {
      int depth = 0;
      const size_t start = i;
      bool quoted = false;
      for (; i < s.size(); ++i) {
        if (s[i] == '\\') {
          ++i;
        } else if (s[i] == '"') {
          quoted = !quoted;
        } else if (!quoted && s[i] == '{') {
          ++depth;
        } else if (!quoted && s[i] == '}' && --depth == 0) {
          ++i;
          break;
        }
      }
      if (depth != 0) return Refused(t, text, "a nested array does not end");
      out.emplace_back(std::string(s.substr(start, i - start)));
    } else {
      const size_t end = std::min(s.find(',', i), s.size());
      const std::string_view v = s.substr(i, end - i);
      if (v.empty()) return Refused(t, text, "an element is empty");
      if (v.size() == 4 && (v == "NULL" || v == "null")) {
        out.emplace_back(std::nullopt);
      } else {
        out.emplace_back(std::string(v));
      }
      i = end;
    }
    if (i == s.size()) return out;
    if (s[i] != ',') return Refused(t, text, "expected ',' between elements");
    ++i;
  }
}

Status Encode(RowBinaryWriter& w, const ColumnType& t, std::optional<std::string_view> text);

Status EncodeArray(RowBinaryWriter& w, const ColumnType& t, std::string_view text) {
  std::vector<std::optional<std::string>> elements;
  if (!text.empty() && text.front() == '[') {
    nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_array()) return Refused(t, text, "not a valid JSON array");
    for (const nlohmann::json& e : j) elements.push_back(TextOf(e));
  } else {
    Result<std::vector<std::optional<std::string>>> e = PostgresArrayElements(t, text);
    if (!e.ok()) return e.status();
    elements = std::move(*e);
  }
  w.WriteVarUInt(elements.size());
  for (size_t i = 0; i < elements.size(); ++i) {
    const std::optional<std::string>& e = elements[i];
    Status s = Encode(w, t.args[0], e ? std::optional<std::string_view>(*e) : std::nullopt);
    if (!s.ok()) return s.WithContext("element " + std::to_string(i + 1) + " of " + Shown(text));
  }
  return Status::Ok();
}

Result<nlohmann::json> MapObject(const ColumnType& t, std::string_view text) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return Refused(t, text, "not a JSON object ({\"key\": value, ...})");
  }
  return j;
}

// A map value: JSON null is NULL for a Nullable value type and its own text, `null`, for a
// String one (as any other JSON value that is not a string); other types refuse it.
Status EncodeMapValue(RowBinaryWriter& w, const ColumnType& t, const nlohmann::json& value) {
  const ColumnType* inner = &t;
  while (inner->kind == Kind::kLowCardinality) inner = &inner->args[0];
  if (value.is_null() && inner->kind == Kind::kString) return Encode(w, t, "null");
  const std::optional<std::string> v = TextOf(value);
  return Encode(w, t, v ? std::optional<std::string_view>(*v) : std::nullopt);
}

Status EncodeMap(RowBinaryWriter& w, const ColumnType& t, std::string_view text) {
  Result<nlohmann::json> j = MapObject(t, text);
  if (!j.ok()) return j.status();
  w.WriteVarUInt(j->size());
  for (const auto& [key, value] : j->items()) {
    Status s = Encode(w, t.args[0], key);
    if (s.ok()) s = EncodeMapValue(w, t.args[1], value);
    if (!s.ok()) return s.WithContext("key " + Shown(key) + " of the map");
  }
  return Status::Ok();
}

Status Encode(RowBinaryWriter& w, const ColumnType& t, std::optional<std::string_view> text) {
  if (t.kind == Kind::kNullable) {
    if (!text) {
      w.WriteNull();
      return Status::Ok();
    }
    w.WriteNotNull();
    return Encode(w, t.args[0], text);
  }
  if (t.kind == Kind::kLowCardinality) return Encode(w, t.args[0], text);
  if (!text && (t.kind == Kind::kArray || t.kind == Kind::kMap)) {
    w.WriteVarUInt(0);  // ClickHouse has no Nullable(Array) or Nullable(Map): NULL is empty
    return Status::Ok();
  }
  if (!text) {
    return InvalidArgument("NULL cannot be written as " + t.name +
                           ", which is not Nullable; give a value in the SELECT (coalesce) or "
                           "make the column Nullable");
  }
  const std::string_view v = *text;
  switch (t.kind) {
    case Kind::kString:
      w.WriteString(v);
      return Status::Ok();
    case Kind::kFixedString:
      if (v.size() > t.size) {
        return Refused(t, v,
                       std::to_string(v.size()) + " bytes do not fit " + std::to_string(t.size));
      }
      w.buffer().append(v);
      w.buffer().append(t.size - v.size(), '\0');
      return Status::Ok();
    case Kind::kInt:
      return EncodeInt(w, t, v);
    case Kind::kFloat:
      return EncodeFloat(w, t, v);
    case Kind::kDecimal:
      return EncodeDecimal(w, t, v);
    case Kind::kBool:
      if (v == "t" || v == "true" || v == "1") {
        w.WriteBool(true);
      } else if (v == "f" || v == "false" || v == "0") {
        w.WriteBool(false);
      } else {
        return Refused(t, v, "not a boolean (t, f, true, false, 1, 0)");
      }
      return Status::Ok();
    case Kind::kUuid:
      return EncodeUuid(w, t, v);
    case Kind::kDate:
    case Kind::kDate32:
    case Kind::kDateTime:
    case Kind::kDateTime64:
      return EncodeTime(w, t, v);
    case Kind::kEnum:
      for (const auto& [name, value] : t.enum_values) {
        if (name != v) continue;
        if (t.bits == 8) {
          w.WriteInt8(static_cast<int8_t>(value));
        } else {
          w.WriteInt16(static_cast<int16_t>(value));
        }
        return Status::Ok();
      }
      return Refused(t, v, "not one of the enum's names");
    case Kind::kArray:
      return EncodeArray(w, t, v);
    case Kind::kMap:
      return EncodeMap(w, t, v);
    case Kind::kNullable:
    case Kind::kLowCardinality:
      break;
  }
  return Internal("unreachable column kind");
}

}  // namespace

Result<ColumnType> ParseColumnType(std::string_view text) {
  TypeParser p(text);
  Result<ColumnType> t = p.Type();
  if (!t.ok()) return t;
  if (!p.AtEnd()) return p.Bad("unexpected text after the type");
  return t;
}

Status EncodeText(RowBinaryWriter& w, const ColumnType& type,
                  std::optional<std::string_view> text) {
  return Encode(w, type, text);
}

Status EncodeTextAsKeyValueArrays(RowBinaryWriter& w, const ColumnType& keys,
                                  const ColumnType& values, std::optional<std::string_view> text) {
  if (keys.kind != Kind::kArray || values.kind != Kind::kArray) {
    return InvalidArgument("a Nested key/value pair needs two Array columns, got " + keys.name +
                           " and " + values.name);
  }
  if (!text) {  // NULL: the empty map
    w.WriteVarUInt(0);
    w.WriteVarUInt(0);
    return Status::Ok();
  }
  ColumnType map;
  map.kind = Kind::kMap;
  map.name = "Nested(key " + keys.args[0].name + ", value " + values.args[0].name + ")";
  Result<nlohmann::json> j = MapObject(map, *text);
  if (!j.ok()) return j.status();
  w.WriteVarUInt(j->size());
  for (const auto& [key, value] : j->items()) {
    BGM_RETURN_IF_ERROR(Encode(w, keys.args[0], key).WithContext("key " + Shown(key)));
  }
  w.WriteVarUInt(j->size());
  for (const auto& [key, value] : j->items()) {
    BGM_RETURN_IF_ERROR(
        EncodeMapValue(w, values.args[0], value).WithContext("value of key " + Shown(key)));
  }
  return Status::Ok();
}

}  // namespace bgm
