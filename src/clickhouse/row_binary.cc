#include "clickhouse/row_binary.h"

#include <algorithm>
#include <bit>
#include <string>

#include "common/json_compact.h"

namespace bgm {
namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// `text` for an error message: quoted, and cut when it is long (it may be arbitrary input).
std::string Quoted(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "\"";
  out.append(text.substr(0, kMax));
  if (text.size() > kMax) out += "...";
  out += "\"";
  return out;
}

std::string_view TakeDigits(std::string_view* s) {
  size_t n = 0;
  while (n < s->size() && IsDigit((*s)[n])) ++n;
  std::string_view digits = s->substr(0, n);
  s->remove_prefix(n);
  return digits;
}

bool TakeChar(std::string_view* s, char c) {
  if (s->empty() || s->front() != c) return false;
  s->remove_prefix(1);
  return true;
}

}  // namespace

void RowBinaryWriter::WriteLittleEndian(uint64_t v, int bytes) {
  char buf[8];
  for (int i = 0; i < bytes; ++i) {
    buf[i] = static_cast<char>(static_cast<uint8_t>(v >> (8 * i)));
  }
  out_->append(buf, static_cast<size_t>(bytes));
}

void RowBinaryWriter::WriteFloat32(float v) { WriteUInt32(std::bit_cast<uint32_t>(v)); }

void RowBinaryWriter::WriteFloat64(double v) { WriteUInt64(std::bit_cast<uint64_t>(v)); }

void RowBinaryWriter::WriteVarUInt(uint64_t v) {
  while (v >= 0x80) {
    out_->push_back(static_cast<char>(static_cast<uint8_t>(v | 0x80)));
    v >>= 7;
  }
  out_->push_back(static_cast<char>(static_cast<uint8_t>(v)));
}

void RowBinaryWriter::WriteString(std::string_view v) {
  WriteVarUInt(v.size());
  out_->append(v);
}

void RowBinaryWriter::WriteJsonCompact(std::string_view json) {
  WriteVarUInt(JsonCompactor().Add(json, nullptr));
  JsonCompactor().Add(json, out_);
}

Status RowBinaryWriter::WriteDecimal64(std::string_view text, int scale) {
  Result<int64_t> value = ParseDecimal64(text, scale);
  if (!value.ok()) return value.status();
  WriteInt64(*value);
  return Status::Ok();
}

void RowBinaryWriter::WriteArrayString(std::span<const std::string_view> values) {
  WriteVarUInt(values.size());
  for (std::string_view v : values) WriteString(v);
}

void RowBinaryWriter::WriteMapStringString(
    std::span<const std::pair<std::string_view, std::string_view>> pairs) {
  WriteVarUInt(pairs.size());
  for (const auto& [key, value] : pairs) {
    WriteString(key);
    WriteString(value);
  }
}

Result<Int128> ParseDecimal(std::string_view text, int precision, int scale,
                            std::string_view type_name) {
  const std::string type(type_name);
  if (precision < 1 || precision > 38 || scale < 0 || scale > precision) {
    return InvalidArgument(type + ": precision must be 1-38 and scale 0-precision");
  }
  std::string_view s = text;
  bool negative = false;
  if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  std::string_view int_digits = TakeDigits(&s);
  std::string_view frac_digits;
  if (TakeChar(&s, '.')) frac_digits = TakeDigits(&s);
  if (int_digits.empty() && frac_digits.empty()) {
    return InvalidArgument("decimal " + Quoted(text) + " is not a number");
  }
  long exponent = 0;
  if (!s.empty() && (s.front() == 'e' || s.front() == 'E')) {
    s.remove_prefix(1);
    bool exp_negative = false;
    if (!s.empty() && (s.front() == '-' || s.front() == '+')) {
      exp_negative = s.front() == '-';
      s.remove_prefix(1);
    }
    std::string_view exp_digits = TakeDigits(&s);
    if (exp_digits.empty() || exp_digits.size() > 6) {
      return InvalidArgument("decimal " + Quoted(text) + " has a malformed exponent");
    }
    for (char c : exp_digits) exponent = exponent * 10 + (c - '0');
    if (exp_negative) exponent = -exponent;
  }
  if (!s.empty()) return InvalidArgument("decimal " + Quoted(text) + " is not a number");

  // value * 10^scale == digits * 10^shift
  std::string digits(int_digits);
  digits += frac_digits;
  long shift = static_cast<long>(scale) - static_cast<long>(frac_digits.size()) + exponent;
  if (shift < 0) {
    const size_t drop = std::min(digits.size(), static_cast<size_t>(-shift));
    if (digits.find_first_not_of('0', digits.size() - drop) != std::string::npos) {
      return InvalidArgument("decimal " + Quoted(text) + " has more than " + std::to_string(scale) +
                             " fractional digits; it does not fit " + type + " without rounding");
    }
    digits.resize(digits.size() - drop);
    shift = 0;
  }
  const size_t first = digits.find_first_not_of('0');
  if (first == std::string::npos) return Int128{0};
  digits.erase(0, first);
  if (static_cast<long>(digits.size()) + shift > precision) {
    return InvalidArgument("decimal " + Quoted(text) + " does not fit " + type + ": more than " +
                           std::to_string(precision) + " significant digits");
  }
  Int128 value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  for (long i = 0; i < shift; ++i) value *= 10;
  return negative ? -value : value;
}

Result<int64_t> ParseDecimal64(std::string_view text, int scale) {
  if (scale < 0 || scale > 18) {
    return InvalidArgument("Decimal64 scale must be between 0 and 18, got " +
                           std::to_string(scale));
  }
  Result<Int128> v = ParseDecimal(text, 18, scale, "Decimal64(" + std::to_string(scale) + ")");
  if (!v.ok()) return v.status();
  return static_cast<int64_t>(*v);
}

}  // namespace bgm
