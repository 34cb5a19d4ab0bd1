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
    if (period.lapsed_days > kMaxChurnWindow)
        throw_invalid("argument \"lapsed_days\" must be at most " + std::to_string(kMaxChurnWindow) +
                      " days for churn");
}

namespace {

std::int32_t saturated_gap(Day later, Day earlier) {
    const std::int64_t gap = static_cast<std::int64_t>(later) - earlier;
    return gap > kLongAgo ? kLongAgo : static_cast<std::int32_t>(gap);
}

void keep_min(std::int32_t& kept, std::int32_t candidate) {
    if (candidate < kept) kept = candidate;
}

}  // namespace

void observe(CustomerIdle& idle, Day purchase, const ChurnPeriod& period) {
    if (purchase >= period.end) return;
    check_day(purchase, "order_date");
    keep_min(idle.idle_at_end, saturated_gap(period.end, purchase));
    if (purchase < period.start)
        keep_min(idle.idle_at_start, saturated_gap(period.start, purchase));
    else
        idle.bought_during = true;
}

void merge(CustomerIdle& into, const CustomerIdle& other) {
    keep_min(into.idle_at_start, other.idle_at_start);
    keep_min(into.idle_at_end, other.idle_at_end);
    into.bought_during = into.bought_during || other.bought_during;
}

// Layout, from bit 0: idle_at_end (15), bought_during (1), idle_at_start (15),
// inactive_days (15), lapsed_days (15), initialized (1).
namespace {
constexpr std::uint64_t kField = 0x7fff;
}

std::int64_t pack(const PackedIdle& s) {
    const std::uint64_t bits = (static_cast<std::uint64_t>(s.idle.idle_at_end) & kField) |
                               (static_cast<std::uint64_t>(s.idle.bought_during) << 15) |
                               ((static_cast<std::uint64_t>(s.idle.idle_at_start) & kField) << 16) |
                               ((static_cast<std::uint64_t>(s.inactive_days) & kField) << 31) |
                               ((static_cast<std::uint64_t>(s.lapsed_days) & kField) << 46) |
                               (static_cast<std::uint64_t>(s.initialized) << 61);
    return static_cast<std::int64_t>(bits);
}

PackedIdle unpack(std::int64_t packed) {
    const std::uint64_t bits = static_cast<std::uint64_t>(packed);
    PackedIdle s;
    s.idle.idle_at_end = static_cast<std::int32_t>(bits & kField);
    s.idle.bought_during = (bits >> 15) & 1;
    s.idle.idle_at_start = static_cast<std::int32_t>((bits >> 16) & kField);
    s.inactive_days = static_cast<std::int32_t>((bits >> 31) & kField);
    s.lapsed_days = static_cast<std::int32_t>((bits >> 46) & kField);
    s.initialized = (bits >> 61) & 1;
    return s;
}

PackedIdle first_state(std::int32_t inactive_days, std::int32_t lapsed_days) {
    return PackedIdle{true, CustomerIdle{}, inactive_days, lapsed_days};
}

std::int32_t classify(const CustomerIdle& idle, std::int32_t inactive_days, std::int32_t lapsed_days) {
    const bool bought_before = idle.idle_at_start != kNever;
    std::int32_t flags = 0;
    if (bought_before) {
        if (idle.idle_at_start <= lapsed_days) {
            flags |= kBase;
            if (idle.idle_at_end > lapsed_days) flags |= kChurned;
        }
        if (idle.idle_at_start > inactive_days && idle.bought_during) flags |= kReactivated;
    } else if (idle.bought_during) {
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
