// ClickHouse column types read from system.columns, and Postgres text encoded into RowBinary by
// them: every supported type with NULLs, extremes and the values it must refuse.
#include "clickhouse/column_type.h"

#include <gtest/gtest.h>

namespace bgm {
namespace {

std::string Hex(const std::string& bytes) {
  static const char* kDigits = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

// The RowBinary of `text` as `type`, in hex; "error: <message>" when refused.
std::string Encoded(const std::string& type, std::optional<std::string_view> text) {
  Result<ColumnType> t = ParseColumnType(type);
  if (!t.ok()) return "type error: " + t.status().message();
  std::string out;
  RowBinaryWriter w(out);
  Status s = EncodeText(w, *t, text);
  return s.ok() ? Hex(out) : "error: " + s.message();
}

TEST(ColumnTypeTest, ParsesTheTypesServersReport) {
  Result<ColumnType> t = ParseColumnType("Map(LowCardinality(String), Nullable(Decimal(18, 4)))");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->kind, ColumnType::Kind::kMap);
  EXPECT_EQ(t->args[0].kind, ColumnType::Kind::kLowCardinality);
  EXPECT_EQ(t->args[1].args[0].precision, 18);
  EXPECT_EQ(t->args[1].args[0].scale, 4);
  EXPECT_EQ(t->args[1].name, "Nullable(Decimal(18, 4))");
  Result<ColumnType> dt = ParseColumnType("DateTime64(6, 'Europe/Berlin')");
  ASSERT_TRUE(dt.ok());
  EXPECT_EQ(dt->precision, 6);
  EXPECT_EQ(dt->timezone, "Europe/Berlin");
  Result<ColumnType> e = ParseColumnType("Enum8('a' = 1, 'it''s' = -2, 'b\\'c' = 3)");
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  EXPECT_EQ(e->enum_values,
            (std::vector<std::pair<std::string, int>>{{"a", 1}, {"it's", -2}, {"b'c", 3}}));
}

TEST(ColumnTypeTest, RefusesTypesItCannotWriteNamingThem) {
  EXPECT_EQ(ParseColumnType("Tuple(String, UInt8)").status().message(),
            "ClickHouse type \"Tuple(String, UInt8)\": Tuple columns are not supported by "
            "bgmigrate's copies; use String, (U)Int8-64, Float, Decimal, Bool, UUID, Date, "
            "DateTime(64), Enum, Nullable, LowCardinality, Array or Map, or leave the column to "
            "its default");
  EXPECT_EQ(ParseColumnType("Int128").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseColumnType("Nullable(String").status().message(),
            "ClickHouse type \"Nullable(String\" cannot be read: expected ')'");
  EXPECT_EQ(ParseColumnType("String extra").status().message(),
            "ClickHouse type \"String extra\" cannot be read: unexpected text after the type");
}

TEST(ColumnTypeTest, StringsAndNullables) {
  EXPECT_EQ(Encoded("String", "héllo"), "0668c3a96c6c6f");
  EXPECT_EQ(Encoded("String", ""), "00");
  EXPECT_EQ(Encoded("Nullable(String)", std::nullopt), "01");
  EXPECT_EQ(Encoded("Nullable(String)", "a"), "000161");
  EXPECT_EQ(Encoded("LowCardinality(Nullable(String))", "a"), "000161");
  EXPECT_EQ(Encoded("FixedString(4)", "ab"), "61620000");
  EXPECT_EQ(Encoded("FixedString(2)", "abc"),
            "error: \"abc\" cannot be written as FixedString(2): 3 bytes do not fit 2");
  EXPECT_EQ(Encoded("String", std::nullopt),
            "error: NULL cannot be written as String, which is not Nullable; give a value in the "
            "SELECT (coalesce) or make the column Nullable");
}

TEST(ColumnTypeTest, IntegersAtTheirLimitsAndBeyond) {
  EXPECT_EQ(Encoded("UInt8", "255"), "ff");
  EXPECT_EQ(Encoded("UInt8", "t"), "01");  // a Postgres boolean into a ClickHouse flag
  EXPECT_EQ(Encoded("UInt8", "256"), "error: \"256\" cannot be written as UInt8: out of range");
  EXPECT_EQ(Encoded("UInt32", "-1"), "error: \"-1\" cannot be written as UInt32: negative");
  EXPECT_EQ(Encoded("Int8", "-128"), "80");
  EXPECT_EQ(Encoded("Int16", "-2"), "feff");
  EXPECT_EQ(Encoded("Int64", "-9223372036854775808"), "0000000000000080");
  EXPECT_EQ(Encoded("Int64", "9223372036854775808"),
            "error: \"9223372036854775808\" cannot be written as Int64: not an integer in range");
  EXPECT_EQ(Encoded("UInt64", "18446744073709551615"), "ffffffffffffffff");
  EXPECT_EQ(Encoded("Int32", "1.5"),
            "error: \"1.5\" cannot be written as Int32: not an integer in range");
}

TEST(ColumnTypeTest, FloatsDecimalsBoolsAndUuids) {
  EXPECT_EQ(Encoded("Float64", "1.5"), "000000000000f83f");
  EXPECT_EQ(Encoded("Float64", "-Infinity"), "000000000000f0ff");
  EXPECT_EQ(Encoded("Float32", "0.25"), "0000803e");
  EXPECT_EQ(Encoded("Float32", "1e300"),
            "error: \"1e300\" cannot be written as Float32: out of Float32's range");
  EXPECT_EQ(Encoded("Decimal(9, 2)", "-1.5"), "6affffff");              // -150 as Int32
  EXPECT_EQ(Encoded("Decimal(18, 4)", "12.3400"), "08e2010000000000");  // 123400 as Int64
  EXPECT_EQ(Encoded("Decimal128(2)", "-1"), "9cffffffffffffffffffffffffffffff");
  EXPECT_EQ(Encoded("Decimal(38, 0)", "99999999999999999999999999999999999999"),
            "ffffffff3f228a097ac4865aa84c3b4b");
  EXPECT_EQ(Encoded("Decimal(9, 2)", "0.123"),
            "error: decimal \"0.123\" has more than 2 fractional digits; it does not fit "
            "Decimal(9, 2) without rounding");
  EXPECT_EQ(Encoded("Decimal(4, 0)", "12345"),
            "error: decimal \"12345\" does not fit Decimal(4, 0): more than 4 significant digits");
  EXPECT_EQ(Encoded("Bool", "t"), "01");
  EXPECT_EQ(Encoded("Bool", "false"), "00");
  EXPECT_EQ(Encoded("Bool", "yes"),
            "error: \"yes\" cannot be written as Bool: not a boolean (t, f, true, false, 1, 0)");
  EXPECT_EQ(Encoded("UUID", "123e4567-e89b-12d3-a456-426614174000"),
            "d3129be867453e12"
            "00401714664256a4");
  EXPECT_EQ(Encoded("UUID", "123e4567e89b12d3a456426614174000"),
            "error: \"123e4567e89b12d3a456426614174000\" cannot be written as UUID: not a UUID "
            "like 123e4567-e89b-12d3-a456-426614174000");
}

TEST(ColumnTypeTest, DatesAndTimesHonourOffsetsAndRanges) {
  EXPECT_EQ(Encoded("Date", "1970-01-02"), "0100");
  EXPECT_EQ(Encoded("Date", "2149-06-06"), "ffff");
  EXPECT_EQ(Encoded("Date", "1969-12-31"),
            "error: \"1969-12-31\" cannot be written as Date: outside what Date holds "
            "(1970-01-01 to 2149-06-06)");
  EXPECT_EQ(Encoded("Date32", "1900-01-01"), "219cffff");  // -25567
  EXPECT_EQ(Encoded("DateTime", "1970-01-01 00:00:01.9"), "01000000");
  EXPECT_EQ(Encoded("DateTime('UTC')", "1970-01-01 05:00:00+05:00"), "00000000");
  EXPECT_EQ(Encoded("DateTime", "2106-02-07 06:28:16"),
            "error: \"2106-02-07 06:28:16\" cannot be written as DateTime: outside what DateTime "
            "holds (1970-01-01 00:00:00 to 2106-02-07 06:28:15 UTC)");
  EXPECT_EQ(Encoded("DateTime64(3)", "1970-01-01 00:00:01.5"), "dc05000000000000");
  EXPECT_EQ(Encoded("DateTime64(6, 'UTC')", "1969-12-31 23:59:59.999999"), "ffffffffffffffff");
  EXPECT_EQ(Encoded("DateTime64(9)", "1970-01-01 00:00:00.000000001"), "0100000000000000");
  EXPECT_EQ(Encoded("DateTime64(3)", "1899-12-31 23:59:59"),
            "error: \"1899-12-31 23:59:59\" cannot be written as DateTime64(3): outside what "
            "DateTime64 holds (1900-01-01 to 2299-12-31 23:59:59 UTC)");
  EXPECT_EQ(Encoded("DateTime", "infinity").substr(0, 56),
            "error: \"infinity\" cannot be written as DateTime: timesta");
}

TEST(ColumnTypeTest, EnumsArraysAndMaps) {
  EXPECT_EQ(Encoded("Enum8('TRACE' = 1, 'SPAN' = 2)", "SPAN"), "02");
  EXPECT_EQ(Encoded("Enum16('a' = 1000)", "a"), "e803");
  EXPECT_EQ(Encoded("Enum8('a' = 1)", "b"),
            "error: \"b\" cannot be written as Enum8('a' = 1): not one of the enum's names");
  // A Postgres array with quoting, an escaped quote and NULL.
  EXPECT_EQ(Encoded("Array(Nullable(String))", R"({a,"b,c","d\"e",NULL})"),
            "04"
            "000161"
            "0003622c63"
            "0003642265"
            "01");
  EXPECT_EQ(Encoded("Array(Int32)", "{}"), "00");
  EXPECT_EQ(Encoded("Array(Array(UInt8))", "{{1,2},{3}}"),
            "02"
            "020102"
            "0103");
  EXPECT_EQ(Encoded("Array(String)", R"(["x", 1, {"k": true}])"),
            "03"
            "0178"
            "0131"
            "0a7b226b223a747275657d");
  EXPECT_EQ(Encoded("Array(UInt8)", "{1,300}"),
            "error: element 2 of \"{1,300}\": \"300\" cannot be written as UInt8: out of range");
  EXPECT_EQ(Encoded("Array(String)", "{a,b"),
            "error: \"{a,b\" cannot be written as Array(String): not a Postgres array ({a,b}) or "
            "a JSON array ([\"a\",\"b\"])");
  EXPECT_EQ(Encoded("Array(String)", "[1,"),
            "error: \"[1,\" cannot be written as Array(String): not a valid JSON array");
  // Escaped backslashes and quotes inside longer runs; a quote or backslash left open.
  EXPECT_EQ(Encoded("Array(String)", R"({"ab\\cd\"ef",x})"),
            "02"
            "08"
            "61625c6364226566"
            "0178");
  EXPECT_EQ(Encoded("Array(String)", R"({"abc})"),
            "error: \"{\"abc}\" cannot be written as Array(String): a quoted element does not end");
  EXPECT_EQ(Encoded("Array(String)", R"({"abc\})"),
            "error: \"{\"abc\\}\" cannot be written as Array(String): a quoted element does not "
            "end");
  EXPECT_EQ(Encoded("Map(String, UInt64)", R"({"in": 10, "out": 2})"),
            "02"
            "02696e"
            "0a00000000000000"
            "036f7574"
            "0200000000000000");
  EXPECT_EQ(Encoded("Map(String, Nullable(String))", R"({"a": null, "b": {"c": 1}})"),
            "02"
            "0161"
            "01"
            "0162"
            "00077b2263223a317d");
  EXPECT_EQ(Encoded("Map(String, UInt64)", R"({"in": -1})"),
            "error: key \"in\" of the map: \"-1\" cannot be written as UInt64: negative");
  EXPECT_EQ(Encoded("Map(String, String)", "[1]"),
            "error: \"[1]\" cannot be written as Map(String, String): not a JSON object "
            "({\"key\": value, ...})");
}

TEST(ColumnTypeTest, NullIsTheEmptyArrayOrMapWhichClickHouseCannotMakeNullable) {
  EXPECT_EQ(Encoded("Array(String)", std::nullopt), "00");
  EXPECT_EQ(Encoded("Map(String, String)", std::nullopt), "00");
  // A JSON null value is NULL into a Nullable value type, its text `null` into a String, and
  // refused by any other type.
  EXPECT_EQ(Encoded("Map(String, String)", R"({"a": null})"),
            "01"
            "0161"
            "046e756c6c");
  EXPECT_EQ(Encoded("Map(String, LowCardinality(String))", R"({"a": null})"),
            "01"
            "0161"
            "046e756c6c");
  EXPECT_EQ(Encoded("Map(String, UInt8)", R"({"a": null})"),
            "error: key \"a\" of the map: NULL cannot be written as UInt8, which is not Nullable; "
            "give a value in the SELECT (coalesce) or make the column Nullable");
}

std::string KeyValueArrays(const std::string& keys, const std::string& values,
                           std::optional<std::string_view> text) {
  Result<ColumnType> k = ParseColumnType(keys);
  Result<ColumnType> v = ParseColumnType(values);
  if (!k.ok() || !v.ok()) return "type error";
  std::string out;
  RowBinaryWriter w(out);
  Status s = EncodeTextAsKeyValueArrays(w, *k, *v, text);
  return s.ok() ? Hex(out) : "error: " + s.message();
}

TEST(ColumnTypeTest, NestedKeyValueStandInWritesAllKeysThenAllValues) {
  // Keys in the object's sorted order, then the values in the same order.
  EXPECT_EQ(KeyValueArrays("Array(String)", "Array(UInt64)", R"({"out": 2, "in": 10})"),
            "02"
            "02696e"
            "036f7574"
            "02"
            "0a00000000000000"
            "0200000000000000");
  EXPECT_EQ(KeyValueArrays("Array(String)", "Array(String)", std::nullopt), "0000");
  EXPECT_EQ(KeyValueArrays("Array(String)", "Array(String)", R"({"a": {"b": [1]}, "n": null})"),
            "02"
            "0161"
            "016e"
            "02"
            "097b2262223a5b315d7d"
            "046e756c6c");
  EXPECT_EQ(KeyValueArrays("Array(String)", "Array(UInt8)", R"({"a": 300})"),
            "error: value of key \"a\": \"300\" cannot be written as UInt8: out of range");
  EXPECT_EQ(KeyValueArrays("Array(String)", "Array(String)", "[1]"),
            "error: \"[1]\" cannot be written as Nested(key String, value String): not a JSON "
            "object ({\"key\": value, ...})");
  EXPECT_EQ(KeyValueArrays("String", "Array(String)", "{}"),
            "error: a Nested key/value pair needs two Array columns, got String and "
            "Array(String)");
}

}  // namespace
}  // namespace bgm
