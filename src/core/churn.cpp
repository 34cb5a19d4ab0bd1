#include "core/churn.hpp"

#include <string>

#include "core/error.hpp"

namespace lifecycle {

void validate(const ChurnPeriod& period) {
    check_day(period.start, "period_start");
    check_day(period.end, "period_end");
    if (period.end <= period.start)
        throw_invalid("argument \"period_end\" (" + to_iso(period.end) +
                      ") must be after \"period_start\" (" + to_iso(period.start) + ")");
    if (period.inactive_days < 0) throw_invalid("argument \"inactive_days\" must not be negative");
    if (period.lapsed_days < 0) throw_invalid("argument \"lapsed_days\" must not be negative");
    if (period.inactive_days > period.lapsed_days)
        throw_invalid("argument \"inactive_days\" must not exceed \"lapsed_days\"");
}

namespace {

void keep_max(Day& kept, Day candidate) {
    if (candidate > kept) kept = candidate;
}

void keep_min(Day& kept, Day candidate) {
    if (candidate != kNoDay && (kept == kNoDay || candidate < kept)) kept = candidate;
}

}  // namespace

void observe(CustomerDays& days, Day purchase, const ChurnPeriod& period) {
    if (purchase >= period.end) return;
    check_day(purchase, "order_date");
    keep_min(days.first, purchase);
    keep_max(days.last_before_end, purchase);
    if (purchase < period.start) keep_max(days.last_before_start, purchase);
}

void merge(CustomerDays& into, const CustomerDays& other) {
    keep_min(into.first, other.first);
    keep_max(into.last_before_start, other.last_before_start);
    keep_max(into.last_before_end, other.last_before_end);
}

std::int32_t classify(const CustomerDays& days, const ChurnPeriod& period) {
    const bool bought_before = days.last_before_start != kNoDay;
    const bool bought_during = days.last_before_end >= period.start;
    std::int32_t flags = 0;
    if (bought_before) {
        const std::int64_t idle_at_start = static_cast<std::int64_t>(period.start) - days.last_before_start;
        const std::int64_t idle_at_end = static_cast<std::int64_t>(period.end) - days.last_before_end;
        if (idle_at_start <= period.lapsed_days) {
            flags |= kBase;
            if (idle_at_end > period.lapsed_days) flags |= kChurned;
        }
        if (idle_at_start > period.inactive_days && bought_during) flags |= kReactivated;
    } else if (bought_during) {
        flags |= kNew;
    }
    return flags;
}

void add_flags(ChurnCounts& counts, std::int32_t flags) {
    const bool valid = (flags & ~(kBase | kChurned | kReactivated | kNew)) == 0 &&
                       (!(flags & kChurned) || (flags & kBase)) &&
                       !((flags & kNew) && (flags & (kBase | kReactivated)));
    if (!valid)
        throw_invalid("argument \"status\" (" + std::to_string(flags) +
                      ") is not a churn status produced by lifecycle.churn_status");
    counts.base += (flags & kBase) != 0;
    counts.churned += (flags & kChurned) != 0;
    counts.reactivated += (flags & kReactivated) != 0;
    counts.new_customers += (flags & kNew) != 0;
}

void merge(ChurnCounts& into, const ChurnCounts& other) {
    into.base += other.base;
    into.churned += other.churned;
    into.reactivated += other.reactivated;
    into.new_customers += other.new_customers;
}

}  // namespace lifecycle
