// RowBinaryWriter: appends values in ClickHouse's RowBinary format (little-endian, strings as
// LEB128 length + bytes) to a caller-owned std::string, plus the exact decimal parser and the
// timestamp ranges the encoders need (timestamps' text is read by common/timestamp.h). A writer is
// a cheap view over the caller's buffer: not thread-safe, the buffer must outlive it, and the
// caller decides when to hand the bytes to the transport and clear the buffer.
//
//   std::string chunk;
//   RowBinaryWriter w(chunk);
//   w.WriteString(id); w.WriteNull(); BGM_RETURN_IF_ERROR(w.WriteDecimal64("-12.3456", 4));
//
// Types that 18.16 lacks (DateTime64, Map, Bool) are still written here, for current servers;
// a Nullable(T) value is WriteNull(), or WriteNotNull() followed by the T.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "common/status.h"

namespace bgm {

// A 128-bit signed integer (GCC's __int128; __extension__ keeps -Wpedantic quiet), for
// Decimal128 and UUID halves.
__extension__ typedef __int128 Int128;

class RowBinaryWriter {
 public:
  explicit RowBinaryWriter(std::string& out) : out_(&out) {}

  void WriteUInt8(uint8_t v) { out_->push_back(static_cast<char>(v)); }
  void WriteUInt16(uint16_t v) { WriteLittleEndian(v, 2); }
  void WriteUInt32(uint32_t v) { WriteLittleEndian(v, 4); }
  void WriteUInt64(uint64_t v) { WriteLittleEndian(v, 8); }
  void WriteInt8(int8_t v) { WriteUInt8(static_cast<uint8_t>(v)); }
  void WriteInt16(int16_t v) { WriteUInt16(static_cast<uint16_t>(v)); }
  void WriteInt32(int32_t v) { WriteUInt32(static_cast<uint32_t>(v)); }
  void WriteInt64(int64_t v) { WriteUInt64(static_cast<uint64_t>(v)); }
  void WriteFloat32(float v);
  void WriteFloat64(double v);
  // Bool (and UInt8 used as a flag): 1 or 0.
  void WriteBool(bool v) { WriteUInt8(v ? 1 : 0); }

  // Unsigned LEB128, as used for string and array lengths: 300 -> "\xac\x02".
  void WriteVarUInt(uint64_t v);
  // String: varint length, then the bytes as they are (any bytes, NUL included).
  void WriteString(std::string_view v);
  // String holding `json` without the whitespace outside its strings (common/json_compact.h):
  // its compact length, then its compact bytes, with no copy in between.
  void WriteJsonCompact(std::string_view json);

  // The Nullable marker that precedes a value: WriteNull() alone is NULL; WriteNotNull() must be
  // followed by the value.
  void WriteNull() { WriteUInt8(1); }
  void WriteNotNull() { WriteUInt8(0); }

  // DateTime: seconds since the epoch as UInt32.
  void WriteDateTime(uint32_t seconds_since_epoch) { WriteUInt32(seconds_since_epoch); }
  // DateTime64(3): milliseconds since the epoch as Int64 (not in 18.16).
  void WriteDateTime64_3(int64_t millis_since_epoch) { WriteInt64(millis_since_epoch); }

  // Decimal64(scale) from decimal text such as "-12.3456" (see ParseDecimal64). On error nothing
  // is appended and kInvalidArgument says why.
  Status WriteDecimal64(std::string_view text, int scale);

  // Array(String): varint element count, then each string.
  void WriteArrayString(std::span<const std::string_view> values);
  // Map(String, String): varint pair count, then key, value, key, value... (not in 18.16).
  void WriteMapStringString(std::span<const std::pair<std::string_view, std::string_view>> pairs);

  std::string& buffer() { return *out_; }

 private:
  void WriteLittleEndian(uint64_t v, int bytes);

  std::string* out_;
};

// The unscaled Int64 of a Decimal64(scale) (0 <= scale <= 18) for decimal text, exactly: no
// floating point. Accepts an optional sign, digits with an optional '.', and an optional
// exponent ("1.5e-3"), as ClickHouse's own text parser does. kInvalidArgument for garbage,
// NaN/Infinity, non-zero digits beyond `scale` (ClickHouse refuses those too rather than round),
// and values of more than 18 significant digits (Decimal64's precision).
//   ParseDecimal64("-12.3456", 4) == -123456
Result<int64_t> ParseDecimal64(std::string_view text, int scale);

// The unscaled value of a Decimal(precision, scale) (precision 1-38) for decimal text, by the
// rules of ParseDecimal64; `type_name` names the type in messages.
Result<Int128> ParseDecimal(std::string_view text, int precision, int scale,
                            std::string_view type_name);

// The instants a ClickHouse timestamp column holds as they are, in milliseconds since
// 1970-01-01 UTC; outside them a server clamps or wraps the value, so an encoder must refuse it.
struct TimestampRange {
  const char* type;  // "DateTime"
  int64_t min_ms, max_ms;
  const char* text;  // the range for messages
  bool Holds(int64_t ms) const { return ms >= min_ms && ms <= max_ms; }
};
// UInt32 seconds (the fraction is dropped, so all of 06:28:15 fits).
inline constexpr TimestampRange kDateTimeRange{"DateTime", 0, 4'294'967'295'999,
                                               "1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC"};
// The documented range of DateTime64 on servers 22.8 and later (every server we write
// DateTime64 to, see ClickHouseDialect::has_datetime64); the newest hold more (0000-9999), the
// rest clamp silently.
inline constexpr TimestampRange kDateTime64_3Range{
    "DateTime64(3)", -2'208'988'800'000, 10'413'791'999'999,
    "1900-01-01 00:00:00.000 to 2299-12-31 23:59:59.999 UTC"};

}  // namespace bgm
