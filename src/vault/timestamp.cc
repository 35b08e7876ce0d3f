#include <fmt/format.h>

#include <charconv>
#include <ctime>
#include <limits>

#include "credentials/credential.h"
#include "credentials/errors.h"

namespace credentials {

std::string format_timestamp(Timestamp t) {
  using namespace std::chrono;
  const auto seconds = floor<std::chrono::seconds>(t);
  const auto micros = static_cast<unsigned>((t - seconds).count());
  // The date and time of day are worked out once per second and thread:
  // every audit event carries a time, and gmtime_r with its formatting was
  // half a microsecond of each read.
  thread_local std::int64_t cached_second = std::numeric_limits<std::int64_t>::min();
  thread_local char date_time[20] = {};  // YYYY-MM-DDTHH:MM:SS
  const std::int64_t second = seconds.time_since_epoch().count();
  if (second != cached_second) {
    const std::time_t tt = static_cast<std::time_t>(second);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    if (tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {  // not four digits: not kept
      return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                         tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, micros);
    }
    fmt::format_to_n(date_time, 19, "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    cached_second = second;
  }
  std::string out(date_time, 19);
  out.resize(27);
  out[19] = '.';
  unsigned rest = micros;
  for (int i = 25; i >= 20; --i, rest /= 10) out[i] = static_cast<char>('0' + rest % 10);
  out[26] = 'Z';
  return out;
}

Timestamp parse_timestamp(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+00:00]; a naive time is UTC (the Python
  // version wrote datetime.utcnow().isoformat()).
  auto fail = [&]() -> Timestamp {
    throw InvalidArgumentError("invalid timestamp: expected ISO-8601 UTC, e.g. 2026-01-31T12:00:00Z");
  };
  auto number = [&](std::size_t pos, std::size_t len) {
    int value = 0;
    if (pos + len > text.size()) fail();
    auto [end, ec] = std::from_chars(text.data() + pos, text.data() + pos + len, value);
    if (ec != std::errc() || end != text.data() + pos + len) fail();
    return value;
  };
  if (text.size() < 19 || text[4] != '-' || text[7] != '-' || (text[10] != 'T' && text[10] != ' ') ||
      text[13] != ':' || text[16] != ':') {
    fail();
  }
  std::tm tm{};
  tm.tm_year = number(0, 4) - 1900;
  tm.tm_mon = number(5, 2) - 1;
  tm.tm_mday = number(8, 2);
  tm.tm_hour = number(11, 2);
  tm.tm_min = number(14, 2);
  tm.tm_sec = number(17, 2);
  if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 ||
      tm.tm_min > 59 || tm.tm_sec > 60) {
    fail();
  }
  std::size_t pos = 19;
  long micros = 0;
  if (pos < text.size() && text[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') {
      if (digits < 6) micros = micros * 10 + (text[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) fail();
    for (; digits < 6; ++digits) micros *= 10;
  }
  const std::string_view zone = text.substr(pos);
  if (!zone.empty() && zone != "Z" && zone != "+00:00") fail();
  const std::time_t seconds = timegm(&tm);
  return Timestamp(std::chrono::seconds(seconds) + std::chrono::microseconds(micros));
}

}  // namespace credentials
