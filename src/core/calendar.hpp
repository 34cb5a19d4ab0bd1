// Days as the core counts them: whole days since 2000-01-01, PostgreSQL's date epoch,
// so a PostgreSQL date converts with no arithmetic. Boost.Date_Time supplies the
// calendar (leap years, months); it covers 1400-01-01 .. 9999-12-31, and so does the core.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>
#include <string>

#include <boost/date_time/gregorian/gregorian_types.hpp>

namespace lifecycle {

using Day = std::int32_t;

Day first_supported_day();  // 1400-01-01
Day last_supported_day();   // 9999-12-31

// Throws date_out_of_range naming `argument` unless `day` is in the supported range.
void check_day(Day day, const char* argument);

boost::gregorian::date to_gregorian(Day day);
Day from_gregorian(const boost::gregorian::date& date);
Day from_ymd(int year, int month, int day);
std::string to_iso(Day day);

// The same day of month `months` later (clamped to the month's end, as PostgreSQL's
// date + interval does); throws date_out_of_range when it leaves the supported range.
Day add_months(Day day, int months);

}  // namespace lifecycle
