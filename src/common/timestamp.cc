#include "common/timestamp.h"

#include <chrono>

namespace bgm {
namespace {

constexpr int64_t kMsPerDay = 86'400'000;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Reads the text left to right; each Take* consumes only on success.
class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  // Exactly `n` digits as a number.
  bool TakeFixed(size_t n, int& out) {
    if (s_.size() - pos_ < n) return false;
    int v = 0;
    for (size_t i = 0; i < n; ++i) {
      if (!IsDigit(s_[pos_ + i])) return false;
      v = v * 10 + (s_[pos_ + i] - '0');
    }
    pos_ += n;
    out = v;
    return true;
  }
  bool TakeChar(char c) {
    if (pos_ == s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  // Any run of digits (possibly empty).
  std::string_view TakeDigits() {
    const size_t start = pos_;
    while (pos_ < s_.size() && IsDigit(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }
  bool AtEnd() const { return pos_ == s_.size(); }
  bool NextIs(char c) const { return pos_ < s_.size() && s_[pos_] == c; }
  bool NextIsDigit() const { return pos_ < s_.size() && IsDigit(s_[pos_]); }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// `text` for an error message: quoted, and cut when long (it may be arbitrary input).
std::string Quoted(std::string_view text) {
  constexpr size_t kMax = 64;
  std::string out = "\"";
  out.append(text.substr(0, kMax));
  if (text.size() > kMax) out += "...";
  out += "\"";
  return out;
}

// Reads the zone after a time: Z, ±HH, ±HH:MM, ±HHMM, ±HH:MM:SS. Seconds east of UTC.
bool TakeZone(Scanner& s, int& offset_seconds, bool& out_of_range) {
  offset_seconds = 0;
  if (s.TakeChar('Z')) return true;
  int sign = 0;
  if (s.TakeChar('+')) {
    sign = 1;
  } else if (s.TakeChar('-')) {
    sign = -1;
  } else {
    return true;  // no zone
  }
  int hours = 0, minutes = 0, seconds = 0;
  if (!s.TakeFixed(2, hours)) return false;
  if (s.TakeChar(':')) {
    if (!s.TakeFixed(2, minutes)) return false;
    if (s.TakeChar(':') && !s.TakeFixed(2, seconds)) return false;
  } else if (s.NextIsDigit() && !s.TakeFixed(2, minutes)) {
    return false;
  }
  out_of_range = hours > 15 || minutes > 59 || seconds > 59;
  offset_seconds = sign * (hours * 3600 + minutes * 60 + seconds);
  return true;
}

struct Civil {
  int year;
  unsigned month, day;
  int64_t ms_of_day;
};

Civil ToCivil(int64_t millis) {
  int64_t days = millis / kMsPerDay;
  int64_t rem = millis % kMsPerDay;
  if (rem < 0) {
    rem += kMsPerDay;
    --days;
  }
  const std::chrono::year_month_day ymd{
      std::chrono::sys_days{std::chrono::days{static_cast<int>(days)}}};
  return {static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()),
          static_cast<unsigned>(ymd.day()), rem};
}

void PutDigits(char* p, int width, int64_t v) {
  for (int i = width - 1; i >= 0; --i) {
    p[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// Writes "YYYY-MM-DD?HH:MM:SS.mmm" (23 bytes) with `sep` between date and time.
void PutTimestamp(char* buf, int64_t millis, char sep) {
  const Civil c = ToCivil(millis);
  PutDigits(buf, 4, c.year);
  buf[4] = '-';
  PutDigits(buf + 5, 2, c.month);
  buf[7] = '-';
  PutDigits(buf + 8, 2, c.day);
  buf[10] = sep;
  PutDigits(buf + 11, 2, c.ms_of_day / 3'600'000);
  buf[13] = ':';
  PutDigits(buf + 14, 2, c.ms_of_day / 60'000 % 60);
  buf[16] = ':';
  PutDigits(buf + 17, 2, c.ms_of_day / 1000 % 60);
  buf[19] = '.';
  PutDigits(buf + 20, 3, c.ms_of_day % 1000);
}

}  // namespace

Result<Instant> ParseTimestamp(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return InvalidArgument("timestamp " + Quoted(text) + " " + std::string(why) +
                           "; accepted forms: 2024-05-03, 2024-05-03 10:00:00.123, "
                           "2024-05-03T10:00:00Z, 2024-05-03T10:00:00+05:00");
  };
  Scanner s(text);
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!s.TakeFixed(4, year) || !s.TakeChar('-') || !s.TakeFixed(2, month) || !s.TakeChar('-') ||
      !s.TakeFixed(2, day)) {
    return bad("does not start with a date YYYY-MM-DD");
  }
  int32_t nanos = 0;
  int offset_seconds = 0;
  bool offset_out_of_range = false;
  if (!s.AtEnd()) {
    if (!s.TakeChar('T') && !s.TakeChar(' ')) return bad("has text after the date");
    if (!s.TakeFixed(2, hour) || !s.TakeChar(':') || !s.TakeFixed(2, minute)) {
      return bad("has a malformed time of day (HH:MM[:SS[.fraction]])");
    }
    if (s.TakeChar(':')) {
      if (!s.TakeFixed(2, second)) return bad("has malformed seconds");
      if (s.TakeChar('.')) {
        const std::string_view frac = s.TakeDigits();
        if (frac.empty() || frac.size() > 9) return bad("must have 1 to 9 fractional digits");
        for (size_t i = 0; i < 9; ++i) {
          nanos = nanos * 10 + (i < frac.size() ? frac[i] - '0' : 0);
        }
      }
    }
    if (!TakeZone(s, offset_seconds, offset_out_of_range)) {
      return bad("has a malformed zone (Z, +HH, +HH:MM, +HHMM)");
    }
    if (!s.AtEnd()) return bad("has unexpected trailing text");
  }
  if (year < 1) return bad("has a year outside 0001-9999");
  const std::chrono::year_month_day date{std::chrono::year{year},
                                         std::chrono::month{static_cast<unsigned>(month)},
                                         std::chrono::day{static_cast<unsigned>(day)}};
  if (!date.ok()) return bad("is not a date on the calendar");
  if (hour > 23 || minute > 59 || second > 59) return bad("is not a time of day");
  if (offset_out_of_range) return bad("has a zone offset beyond 15:59:59");
  const int64_t days = std::chrono::sys_days(date).time_since_epoch().count();
  const int64_t seconds =
      days * 86400 + int64_t{hour} * 3600 + minute * 60 + second - int64_t{offset_seconds};
  return Instant{seconds, nanos};
}

Result<int64_t> ParseTimestampMillis(std::string_view text) {
  Result<Instant> t = ParseTimestamp(text);
  if (!t.ok()) return t.status();
  return t->seconds * 1000 + t->nanos / 1000000;
}

std::string FormatIsoTimestamp(int64_t millis) {
  char buf[24];
  PutTimestamp(buf, millis, 'T');
  buf[23] = 'Z';
  return std::string(buf, sizeof buf);
}

void AppendPostgresTimestamp(std::string& out, int64_t millis) {
  char buf[23];
  PutTimestamp(buf, millis, ' ');
  out.append(buf, sizeof buf);
}

std::string FormatPostgresTimestamp(int64_t millis) {
  std::string out;
  AppendPostgresTimestamp(out, millis);
  return out;
}

}  // namespace bgm
