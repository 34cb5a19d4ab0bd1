#include <gtest/gtest.h>

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
