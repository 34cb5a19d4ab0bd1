#include "core/calendar.hpp"

#include "core/error.hpp"

#include <boost/date_time/gregorian/gregorian.hpp>

namespace lifecycle {

namespace {

const boost::gregorian::date& epoch() {
    static const boost::gregorian::date value(2000, 1, 1);
    return value;
}

}  // namespace

Day from_gregorian(const boost::gregorian::date& date) {
    return static_cast<Day>((date - epoch()).days());
}

Day first_supported_day() {
    static const Day value = from_gregorian(boost::gregorian::date(1400, 1, 1));
    return value;
}

Day last_supported_day() {
    static const Day value = from_gregorian(boost::gregorian::date(9999, 12, 31));
    return value;
}

void check_day(Day day, const char* argument) {
    if (day < first_supported_day() || day > last_supported_day())
        throw_date_out_of_range(std::string("argument \"") + argument +
                                "\" is out of range: lifecycle supports dates from "
                                "1400-01-01 to 9999-12-31");
}

boost::gregorian::date to_gregorian(Day day) {
    check_day(day, "day");
    return epoch() + boost::gregorian::date_duration(day);
}

Day from_ymd(int year, int month, int day) {
    try {
        return from_gregorian(boost::gregorian::date(year, month, day));
    } catch (const std::out_of_range& e) {
        throw_date_out_of_range(std::string("invalid calendar date: ") + e.what());
    }
}

std::string to_iso(Day day) {
    return boost::gregorian::to_iso_extended_string(to_gregorian(day));
}

Day add_months(Day day, int months) {
    const boost::gregorian::date start = to_gregorian(day);
    long month_index = static_cast<long>(start.year()) * 12 + (start.month() - 1) + months;
    long year = month_index / 12;
    int month = static_cast<int>(month_index % 12) + 1;
    if (year < 1400 || year > 9999)
        throw_date_out_of_range("add_months: result is out of range (1400-01-01 to 9999-12-31)");
    int last = boost::gregorian::gregorian_calendar::end_of_month_day(
        static_cast<unsigned short>(year), static_cast<unsigned short>(month));
    const int start_day = start.day();
    const int dom = start_day < last ? start_day : last;
    return from_ymd(static_cast<int>(year), month, dom);
}

}  // namespace lifecycle
