#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <string>

#include "core/calendar.hpp"
#include "core/error.hpp"

using lifecycle::Day;

TEST(Calendar, EpochIsPostgresEpoch) {
    EXPECT_EQ(lifecycle::from_ymd(2000, 1, 1), 0);
    EXPECT_EQ(lifecycle::from_ymd(2000, 1, 2), 1);
    EXPECT_EQ(lifecycle::from_ymd(1999, 12, 31), -1);
    // 2000 is a leap year (divisible by 400): 366 days.
    EXPECT_EQ(lifecycle::from_ymd(2001, 1, 1), 366);
}

TEST(Calendar, LeapYears) {
    EXPECT_EQ(lifecycle::from_ymd(2024, 3, 1) - lifecycle::from_ymd(2024, 2, 28), 2);
    EXPECT_EQ(lifecycle::from_ymd(2023, 3, 1) - lifecycle::from_ymd(2023, 2, 28), 1);
    // 1900 is not a leap year (divisible by 100, not by 400).
    EXPECT_EQ(lifecycle::from_ymd(1900, 3, 1) - lifecycle::from_ymd(1900, 2, 28), 1);
    EXPECT_THROW(lifecycle::from_ymd(1900, 2, 29), lifecycle::Error);
    EXPECT_EQ(lifecycle::to_iso(lifecycle::from_ymd(2024, 2, 29)), "2024-02-29");
}

TEST(Calendar, RoundTripsEveryDayOfAYear) {
    for (Day d = lifecycle::from_ymd(2023, 12, 1); d < lifecycle::from_ymd(2025, 2, 1); ++d)
        EXPECT_EQ(lifecycle::from_gregorian(lifecycle::to_gregorian(d)), d);
}

TEST(Calendar, AddMonthsClampsToMonthEnd) {
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(2024, 1, 31), 1)), "2024-02-29");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(2023, 1, 31), 1)), "2023-02-28");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(2024, 2, 29), 12)), "2025-02-28");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(2024, 3, 15), -3)), "2023-12-15");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(2024, 12, 10), 1)), "2025-01-10");
}

TEST(Calendar, SupportedRange) {
    EXPECT_EQ(lifecycle::to_iso(lifecycle::first_supported_day()), "1400-01-01");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::last_supported_day()), "9999-12-31");
    EXPECT_NO_THROW(lifecycle::check_day(lifecycle::first_supported_day(), "x"));
    EXPECT_NO_THROW(lifecycle::check_day(lifecycle::last_supported_day(), "x"));
    try {
        lifecycle::check_day(lifecycle::last_supported_day() + 1, "as_of");
        FAIL() << "expected a date_out_of_range error";
    } catch (const lifecycle::Error& e) {
        EXPECT_EQ(e.kind(), lifecycle::ErrorKind::date_out_of_range);
        EXPECT_NE(std::string(e.what()).find("\"as_of\""), std::string::npos);
    }
    EXPECT_THROW(lifecycle::check_day(lifecycle::first_supported_day() - 1, "x"), lifecycle::Error);
    EXPECT_THROW(lifecycle::add_months(lifecycle::from_ymd(9999, 12, 1), 1), lifecycle::Error);
}

namespace {

// An independent calendar (Gregorian rules written out here, not Boost's): days since
// 2000-01-01, counted by hand from year and month lengths.
bool is_leap(long y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int month_length(long y, int m) {
    static const int lengths[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : lengths[m - 1];
}

long reference_days(long y, int m, int d) {
    long days = 0;
    if (y >= 2000)
        for (long yy = 2000; yy < y; ++yy) days += is_leap(yy) ? 366 : 365;
    else
        for (long yy = y; yy < 2000; ++yy) days -= is_leap(yy) ? 366 : 365;
    for (int mm = 1; mm < m; ++mm) days += month_length(y, mm);
    return days + d - 1;
}

template <typename F>
lifecycle::ErrorKind kind_thrown(F&& f) {
    try {
        f();
    } catch (const lifecycle::Error& e) {
        return e.kind();
    } catch (...) {
        ADD_FAILURE() << "not a lifecycle::Error";
        return lifecycle::ErrorKind::invalid_parameter;
    }
    ADD_FAILURE() << "nothing thrown";
    return lifecycle::ErrorKind::invalid_parameter;
}

}  // namespace

TEST(Calendar, LeapDaysOfCenturies) {
    EXPECT_EQ(lifecycle::to_iso(lifecycle::from_ymd(2000, 2, 29)), "2000-02-29");  // divisible by 400
    EXPECT_EQ(lifecycle::from_ymd(2000, 2, 29), 59);
    EXPECT_EQ(lifecycle::from_ymd(2000, 3, 1), 60);
    EXPECT_EQ(lifecycle::to_iso(lifecycle::from_ymd(1600, 2, 29)), "1600-02-29");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::from_ymd(1900, 2, 28) + 1), "1900-03-01");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::from_ymd(2100, 2, 28) + 1), "2100-03-01");
    for (int year : {1900, 2100, 2023, 1700})
        EXPECT_EQ(kind_thrown([&] { lifecycle::from_ymd(year, 2, 29); }),
                  lifecycle::ErrorKind::date_out_of_range)
            << year;
}

// Every day of the supported range, against the hand-counted calendar: from_ymd, and the
// day numbers run on without a gap or a repeat from 1400-01-01 to 9999-12-31.
TEST(Calendar, EveryDayOfTheRangeMatchesAnIndependentCalendar) {
    long expected = reference_days(1400, 1, 1);
    EXPECT_EQ(lifecycle::first_supported_day(), expected);
    EXPECT_EQ(lifecycle::last_supported_day(), reference_days(9999, 12, 31));
    long mismatches = 0;
    for (long y = 1400; y <= 9999; ++y)
        for (int m = 1; m <= 12; ++m)
            for (int d = 1; d <= month_length(y, m); ++d, ++expected)
                if (lifecycle::from_ymd(static_cast<int>(y), m, d) != expected && ++mismatches <= 5)
                    ADD_FAILURE() << y << "-" << m << "-" << d << ": " << lifecycle::from_ymd(y, m, d)
                                  << " != " << expected;
    EXPECT_EQ(mismatches, 0);
    EXPECT_EQ(expected - 1, lifecycle::last_supported_day());
}

TEST(Calendar, IsoTextOfSampledDays) {
    std::mt19937 rng(1400);
    std::uniform_int_distribution<Day> pick(lifecycle::first_supported_day(), lifecycle::last_supported_day());
    for (int i = 0; i < 20000; ++i) {
        const Day day = pick(rng);
        const std::string iso = lifecycle::to_iso(day);
        ASSERT_EQ(iso.size(), 10u) << iso;
        const int y = std::stoi(iso.substr(0, 4)), m = std::stoi(iso.substr(5, 2)), d = std::stoi(iso.substr(8, 2));
        EXPECT_EQ(reference_days(y, m, d), day) << iso;
    }
}

// add_months against its definition: the same day of month `months` later, clamped to the
// month's end, computed here from year/month arithmetic and the hand-counted calendar.
TEST(Calendar, AddMonthsMatchesItsDefinition) {
    std::mt19937 rng(31);
    for (int i = 0; i < 20000; ++i) {
        const long y = 1500 + static_cast<long>(rng() % 8000);
        const int m = 1 + static_cast<int>(rng() % 12);
        const int d = 1 + static_cast<int>(rng() % month_length(y, m));
        const int months = static_cast<int>(rng() % 2401) - 1200;
        const long index = y * 12 + (m - 1) + months;
        const long ry = index / 12;
        const int rm = static_cast<int>(index % 12) + 1;
        const int rd = std::min(d, month_length(ry, rm));
        EXPECT_EQ(lifecycle::add_months(static_cast<Day>(reference_days(y, m, d)), months),
                  reference_days(ry, rm, rd))
            << y << "-" << m << "-" << d << " + " << months << " months";
    }
    const Day jan31 = lifecycle::from_ymd(2024, 1, 31);
    EXPECT_EQ(lifecycle::add_months(jan31, 0), jan31);
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(jan31, 3)), "2024-04-30");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(2024, 3, 31), -1)), "2024-02-29");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(2000, 1, 31), 1)), "2000-02-29");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(1900, 1, 31), 1)), "1900-02-28");
}

TEST(Calendar, RangeErrorsAreDateOutOfRange) {
    using lifecycle::ErrorKind;
    const Day first = lifecycle::first_supported_day(), last = lifecycle::last_supported_day();
    EXPECT_EQ(kind_thrown([&] { lifecycle::check_day(first - 1, "x"); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::to_gregorian(last + 1); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::to_iso(first - 1); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::to_iso(std::numeric_limits<Day>::max()); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::to_iso(std::numeric_limits<Day>::min()); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::from_ymd(1399, 12, 31); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::from_ymd(10000, 1, 1); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::from_ymd(2024, 13, 1); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::from_ymd(2024, 4, 31); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::from_ymd(2024, 1, 0); }), ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::add_months(lifecycle::from_ymd(9999, 12, 1), 1); }),
              ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::add_months(lifecycle::from_ymd(1400, 1, 31), -1); }),
              ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::add_months(first, std::numeric_limits<int>::min()); }),
              ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::add_months(last, std::numeric_limits<int>::max()); }),
              ErrorKind::date_out_of_range);
    EXPECT_EQ(kind_thrown([&] { lifecycle::add_months(last + 1, 0); }), ErrorKind::date_out_of_range);
    // The edges themselves are fine.
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(9999, 11, 30), 1)), "9999-12-30");
    EXPECT_EQ(lifecycle::to_iso(lifecycle::add_months(lifecycle::from_ymd(1400, 2, 28), -1)), "1400-01-28");
}
