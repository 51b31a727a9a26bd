// RowBinary encoding: exact bytes for every writer, exact decimal and timestamp parsing.
#include "clickhouse/row_binary.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace bgm {
namespace {

using namespace std::string_literals;

// Bytes written by `fn` into a fresh buffer.
template <typename Fn>
std::string Bytes(Fn fn) {
  std::string out;
  RowBinaryWriter w(out);
  fn(w);
  return out;
}

TEST(RowBinaryWriterTest, UnsignedIntegersAreLittleEndian) {
  EXPECT_EQ(Bytes([](auto& w) { w.WriteUInt8(0xAB); }), "\xab"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteUInt16(0x0102); }), "\x02\x01"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteUInt32(0x01020304); }), "\x04\x03\x02\x01"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteUInt64(0x0102030405060708ULL); }),
            "\x08\x07\x06\x05\x04\x03\x02\x01"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteUInt64(std::numeric_limits<uint64_t>::max()); }),
            std::string(8, '\xff'));
}

TEST(RowBinaryWriterTest, SignedIntegersAreTwosComplementLittleEndian) {
  EXPECT_EQ(Bytes([](auto& w) { w.WriteInt8(-1); }), "\xff"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteInt16(-2); }), "\xfe\xff"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteInt32(-123456); }), "\xc0\x1d\xfe\xff"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteInt64(-123456); }), "\xc0\x1d\xfe\xff\xff\xff\xff\xff"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteInt64(std::numeric_limits<int64_t>::min()); }),
            "\x00\x00\x00\x00\x00\x00\x00\x80"s);
}

TEST(RowBinaryWriterTest, FloatsAreIeeeLittleEndian) {
  EXPECT_EQ(Bytes([](auto& w) { w.WriteFloat32(1.0f); }), "\x00\x00\x80\x3f"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteFloat64(1.0); }), "\x00\x00\x00\x00\x00\x00\xf0\x3f"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteFloat64(-2.5); }), "\x00\x00\x00\x00\x00\x00\x04\xc0"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteFloat64(std::numeric_limits<double>::infinity()); }),
            "\x00\x00\x00\x00\x00\x00\xf0\x7f"s);
}

TEST(RowBinaryWriterTest, VarUIntIsLeb128) {
  EXPECT_EQ(Bytes([](auto& w) { w.WriteVarUInt(0); }), "\x00"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteVarUInt(127); }), "\x7f"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteVarUInt(128); }), "\x80\x01"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteVarUInt(300); }), "\xac\x02"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteVarUInt(64ULL << 20); }), "\x80\x80\x80\x20"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteVarUInt(std::numeric_limits<uint64_t>::max()); }),
            "\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"s);
}

TEST(RowBinaryWriterTest, StringsAreLengthPrefixedRawBytes) {
  EXPECT_EQ(Bytes([](auto& w) { w.WriteString("ab"); }),
            "\x02"
            "ab"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteString(""); }), "\x00"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteString("a\0\t\n\\b"s); }),
            "\x06"
            "a\0\t\n\\b"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteString("h\xc3\xa9"); }), "\x03h\xc3\xa9"s);
  const std::string big(300, 'x');
  EXPECT_EQ(Bytes([&](auto& w) { w.WriteString(big); }), "\xac\x02"s + big);
}

TEST(RowBinaryWriterTest, NullableMarkersPrecedeTheValue) {
  EXPECT_EQ(Bytes([](auto& w) { w.WriteNull(); }), "\x01"s);
  EXPECT_EQ(Bytes([](auto& w) {
              w.WriteNotNull();
              w.WriteString("x");
            }),
            "\x00\x01x"s);
}

TEST(RowBinaryWriterTest, BoolIsOneByte) {
  EXPECT_EQ(Bytes([](auto& w) { w.WriteBool(true); }), "\x01"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteBool(false); }), "\x00"s);
}

TEST(RowBinaryWriterTest, DateTimeIsUInt32SecondsAndDateTime64IsInt64Millis) {
  // 2024-05-03 10:00:00 UTC = 1714730400
  EXPECT_EQ(Bytes([](auto& w) { w.WriteDateTime(1714730400u); }), "\xa0\xb5\x34\x66"s);
  // 1714730400123 ms = 0x0000018F3DE5797B
  EXPECT_EQ(Bytes([](auto& w) { w.WriteDateTime64_3(1714730400123LL); }),
            "\x7b\x79\xe5\x3d\x8f\x01\x00\x00"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteDateTime64_3(-1); }), std::string(8, '\xff'));
}

TEST(RowBinaryWriterTest, ArrayOfStringsIsCountThenStrings) {
  std::vector<std::string_view> values = {"a", "", "bc"};
  EXPECT_EQ(Bytes([&](auto& w) { w.WriteArrayString(values); }),
            "\x03\x01"
            "a\x00\x02"
            "bc"s);
  EXPECT_EQ(Bytes([](auto& w) { w.WriteArrayString({}); }), "\x00"s);
}

TEST(RowBinaryWriterTest, MapOfStringsIsCountThenKeyValuePairs) {
  std::vector<std::pair<std::string_view, std::string_view>> pairs = {{"k", "v"}, {"", "xy"}};
  EXPECT_EQ(Bytes([&](auto& w) { w.WriteMapStringString(pairs); }), "\x02\x01k\x01v\x00\x02xy"s);
}

TEST(RowBinaryWriterTest, WritesAppendToTheCallersBuffer) {
  std::string out = "prefix";
  RowBinaryWriter w(out);
  w.WriteUInt8(1);
  w.WriteString("z");
  EXPECT_EQ(out, "prefix\x01\x01z"s);
  EXPECT_EQ(&w.buffer(), &out);
}

TEST(RowBinaryWriterTest, Decimal64IsTheUnscaledInt64) {
  EXPECT_EQ(Bytes([](auto& w) { ASSERT_TRUE(w.WriteDecimal64("-12.3456", 4).ok()); }),
            "\xc0\x1d\xfe\xff\xff\xff\xff\xff"s);  // -123456
  EXPECT_EQ(Bytes([](auto& w) { ASSERT_TRUE(w.WriteDecimal64("1.5", 4).ok()); }),
            "\x98\x3a\x00\x00\x00\x00\x00\x00"s);  // 15000
}

TEST(RowBinaryWriterTest, Decimal64ErrorAppendsNothing) {
  std::string out;
  RowBinaryWriter w(out);
  Status s = w.WriteDecimal64("12abc", 4);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(out.empty());
}

TEST(ParseDecimal64Test, ExactValues) {
  struct Case {
    const char* text;
    int scale;
    int64_t want;
  };
  const Case cases[] = {
      {"-12.3456", 4, -123456},
      {"12.3456", 4, 123456},
      {"+3", 4, 30000},
      {"0", 4, 0},
      {"-0", 4, 0},
      {"-0.0000", 4, 0},
      {".5", 4, 5000},
      {"5.", 4, 50000},
      {"1.50000", 4, 15000},  // trailing zeros beyond the scale lose nothing
      {"00000000000000000001.5", 4, 15000},
      {"1.5e-3", 4, 15},
      {"1.23456e1", 4, 123456},
      {"1e2", 4, 1000000},
      {"12", 0, 12},
      {"0.000000000001", 12, 1},  // Langfuse's Decimal64(12) costs
      {"123456.789012345678", 12, 123456789012345678},
      {"99999999999999.9999", 4, 999999999999999999},  // 18 digits: the maximum
      {"-99999999999999.9999", 4, -999999999999999999},
      {"0.1", 18, 100000000000000000},
  };
  for (const Case& c : cases) {
    Result<int64_t> r = ParseDecimal64(c.text, c.scale);
    ASSERT_TRUE(r.ok()) << c.text << ": " << r.status().ToString();
    EXPECT_EQ(*r, c.want) << c.text << " scale " << c.scale;
  }
}

TEST(ParseDecimal64Test, RejectsGarbageOverflowAndLostDigits) {
  struct Case {
    const char* text;
    int scale;
    const char* why;  // part of the message
  };
  const Case cases[] = {
      {"", 4, "not a number"},
      {"-", 4, "not a number"},
      {".", 4, "not a number"},
      {"abc", 4, "not a number"},
      {"12abc", 4, "not a number"},
      {" 7", 4, "not a number"},
      {"7 ", 4, "not a number"},
      {"1.2.3", 4, "not a number"},
      {"NaN", 4, "not a number"},
      {"Infinity", 4, "not a number"},
      {"1e", 4, "exponent"},
      {"1e+", 4, "exponent"},
      {"1e1234567", 4, "exponent"},
      {"1.23456", 4, "more than 4 fractional digits"},
      {"1.2345e-1", 4, "more than 4 fractional digits"},
      {"0.5", 0, "more than 0 fractional digits"},
      {"999999999999999.9999", 4, "more than 18 significant digits"},  // 19 digits
      {"1e15", 4, "more than 18 significant digits"},
      {"9223372036854775807", 0, "more than 18 significant digits"},
  };
  for (const Case& c : cases) {
    Result<int64_t> r = ParseDecimal64(c.text, c.scale);
    ASSERT_FALSE(r.ok()) << "accepted \"" << c.text << "\"";
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.text;
    EXPECT_NE(r.status().message().find(c.why), std::string::npos)
        << c.text << ": " << r.status().message();
  }
}

TEST(ParseDecimal64Test, RejectsScaleOutsideDecimal64) {
  EXPECT_EQ(ParseDecimal64("1", -1).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseDecimal64("1", 19).status().code(), StatusCode::kInvalidArgument);
}

TEST(ParseDecimal64Test, LongGarbageIsCutInTheMessage) {
  const std::string garbage(10000, 'x');
  Result<int64_t> r = ParseDecimal64(garbage, 2);
  ASSERT_FALSE(r.ok());
  EXPECT_LT(r.status().message().size(), 300u);
}

}  // namespace
}  // namespace bgm
