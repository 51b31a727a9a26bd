// ColumnType: a ClickHouse column type as `system.columns` reports it ("Nullable(String)",
// "DateTime64(3, 'UTC')", "Map(LowCardinality(String), UInt64)", ...), parsed into a tree, and
// EncodeText, which writes a value given as Postgres text into RowBinary by that type. This is
// how a copy follows whatever schema its target really has: types are read from the server,
// never assumed. Pure functions; thread-safe.
//
//   Result<ColumnType> type = ParseColumnType("Nullable(Decimal(18, 4))");
//   Status s = EncodeText(writer, *type, "12.3400");   // or std::nullopt for SQL NULL
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "clickhouse/row_binary.h"
#include "common/status.h"

namespace bgm {

struct ColumnType {
  enum class Kind {
    kString,
    kFixedString,  // size
    kInt,          // bits, is_signed
    kFloat,        // bits
    kDecimal,      // precision, scale
    kBool,
    kUuid,
    kDate,            // days since 1970 as UInt16
    kDate32,          // days since 1970 as Int32
    kDateTime,        // seconds as UInt32; timezone optional
    kDateTime64,      // precision (0-9) ticks as Int64; timezone optional
    kEnum,            // bits (8 or 16), enum_values
    kNullable,        // args[0]
    kLowCardinality,  // args[0], encoded as args[0]
    kArray,           // args[0]
    kMap,             // args[0] key, args[1] value
  };
  Kind kind = Kind::kString;
  std::string name;  // as the server wrote it, for messages
  int bits = 0;
  bool is_signed = false;
  int precision = 0;
  int scale = 0;
  size_t size = 0;
  std::string timezone;
  std::vector<std::pair<std::string, int>> enum_values;
  std::vector<ColumnType> args;

  bool nullable() const { return kind == Kind::kNullable; }
};

// kInvalidArgument naming the type and what this bgmigrate cannot write (Tuple, Int128, ...).
Result<ColumnType> ParseColumnType(std::string_view text);

// Writes `text` (a Postgres value's text form; std::nullopt for SQL NULL) as `type`:
//  - String as is; FixedString(N) padded with zero bytes (longer is refused);
//  - integers (a Postgres boolean's t/f as 1/0), Float32/64 (NaN and Infinity too), Decimal(P, S)
//  (more than P digits or more
//    than S decimals refused: round in the SELECT), Bool from t/f/true/false/1/0, UUID;
//  - Date/Date32/DateTime/DateTime64(p) from a date or timestamp text (no zone = UTC, an
//    offset honoured), refused outside what the type holds;
//  - Enum8/16 by name; Array(T) from a Postgres array ({a,"b c",NULL}) or a JSON array;
//    Map(K, V) from a JSON object (a string value as is, any other JSON value as compact text,
//    JSON null as NULL into a Nullable value type and as the text null into a String one);
//  - NULL only into Nullable(T), and as the empty value into Array and Map (which ClickHouse
//    cannot make Nullable); LowCardinality(T) as T.
// On error (kInvalidArgument, saying what and why) the writer may hold a partial value: the
// caller discards the row's bytes.
Status EncodeText(RowBinaryWriter& w, const ColumnType& type, std::optional<std::string_view> text);

// The stand-in for Map(K, V) on servers without Map (ClickHouse 18.16): a Nested column `m`
// whose `m.key` Array(K) and `m.value` Array(V) are written from one JSON object, as two
// consecutive columns of the INSERT: all keys, then all values (in the object's key order,
// which is sorted). NULL writes the empty map. Values as for a Map.
Status EncodeTextAsKeyValueArrays(RowBinaryWriter& w, const ColumnType& keys,
                                  const ColumnType& values, std::optional<std::string_view> text);

}  // namespace bgm
