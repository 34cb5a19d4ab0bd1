#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/churn.hpp"
#include "core/error.hpp"

using lifecycle::ChurnCounts;
using lifecycle::ChurnPeriod;
using lifecycle::CustomerIdle;
using lifecycle::PackedIdle;
using lifecycle::Day;

namespace {

const Day kStart = lifecycle::from_ymd(2024, 3, 1);
const Day kEnd = lifecycle::from_ymd(2024, 4, 15);
const ChurnPeriod kPeriod{kStart, kEnd, 60, 90};

std::int32_t classify(const CustomerIdle& idle, const ChurnPeriod& period) {
    return lifecycle::classify(idle, period.inactive_days, period.lapsed_days);
}

std::int32_t flags_of(const std::vector<Day>& purchases, const ChurnPeriod& period = kPeriod) {
    CustomerIdle idle;
    for (Day d : purchases) lifecycle::observe(idle, d, period);
    return classify(idle, period);
}

// The brief's definition, written out directly over the purchase list.
std::int32_t brief_flags(const std::vector<Day>& purchases, const ChurnPeriod& p) {
    bool before = false, during = false;
    Day last_before_start = 0, last_before_end = 0;
    for (Day d : purchases) {
        if (d < p.start) {
            last_before_start = before ? std::max(last_before_start, d) : d;
            before = true;
        }
        if (d < p.end) last_before_end = (before || during) ? std::max(last_before_end, d) : d;
        if (d >= p.start && d < p.end) during = true;
    }
    const bool base = before && p.start - last_before_start <= p.lapsed_days;
    const bool lapsed_at_end = (before || during) && p.end - last_before_end > p.lapsed_days;
    std::int32_t flags = 0;
    if (base) flags |= lifecycle::kBase;
    if (base && lapsed_at_end) flags |= lifecycle::kChurned;
    if (before && p.start - last_before_start > p.inactive_days && during) flags |= lifecycle::kReactivated;
    if (!before && during) flags |= lifecycle::kNew;
    return flags;
}

}  // namespace

TEST(Churn, HandBuiltCustomers) {
    using lifecycle::kBase;
    using lifecycle::kChurned;
    using lifecycle::kNew;
    using lifecycle::kReactivated;
    const Day jan15 = lifecycle::from_ymd(2024, 1, 15);
    EXPECT_EQ(flags_of({lifecycle::from_ymd(2024, 1, 10), lifecycle::from_ymd(2024, 3, 5)}), kBase);
    EXPECT_EQ(flags_of({jan15}), kBase | kChurned);             // idle 91 days at end
    EXPECT_EQ(flags_of({jan15 + 1}), kBase);                    // idle 90 days at end
    EXPECT_EQ(flags_of({lifecycle::from_ymd(2023, 11, 1), lifecycle::from_ymd(2024, 3, 20)}), kReactivated);
    EXPECT_EQ(flags_of({lifecycle::from_ymd(2023, 12, 22), kEnd - 1}), kBase | kReactivated);
    EXPECT_EQ(flags_of({kStart}), kNew);                        // on the start day
    EXPECT_EQ(flags_of({kEnd}), 0);                             // on the end day: outside
    EXPECT_EQ(flags_of({lifecycle::from_ymd(2023, 6, 1)}), 0);  // lapsed, stayed away
    EXPECT_EQ(flags_of({kStart - 1, kEnd + 10}), kBase);        // later purchases ignored
    EXPECT_EQ(flags_of({}), 0);
}

// A period longer than the lapse window: a purchase during it can still end lapsed.
TEST(Churn, LongPeriodJudgesTheStageAtEnd) {
    const ChurnPeriod year{lifecycle::from_ymd(2024, 1, 1), lifecycle::from_ymd(2025, 1, 1), 60, 90};
    EXPECT_EQ(flags_of({lifecycle::from_ymd(2023, 12, 1), lifecycle::from_ymd(2024, 2, 1)}, year),
              lifecycle::kBase | lifecycle::kChurned);
}

TEST(Churn, RandomHistoriesMatchTheDefinitionAndMergeInAnyOrder) {
    std::mt19937 rng(2024);
    for (int trial = 0; trial < 3000; ++trial) {
        const ChurnPeriod period{kStart, kStart + 1 + static_cast<Day>(rng() % 200),
                                 static_cast<std::int32_t>(rng() % 80), 0};
        ChurnPeriod p = period;
        p.lapsed_days = p.inactive_days + static_cast<std::int32_t>(rng() % 60);
        std::vector<Day> purchases(rng() % 6);
        for (Day& d : purchases) d = kStart - 300 + static_cast<Day>(rng() % 600);
        if (trial % 10 == 0) purchases.push_back(kStart - 40000 - static_cast<Day>(rng() % 100000));  // saturates
        EXPECT_EQ(flags_of(purchases, p), brief_flags(purchases, p));
        // Split the purchases between two partial states: the merge gives the same answer.
        CustomerIdle left, right;
        for (std::size_t i = 0; i < purchases.size(); ++i)
            lifecycle::observe(i % 2 ? left : right, purchases[i], p);
        lifecycle::merge(left, right);
        EXPECT_EQ(classify(left, p), brief_flags(purchases, p));
        // And through the packed bigint state.
        const PackedIdle packed = lifecycle::unpack(lifecycle::pack(PackedIdle{true, left, p.inactive_days, p.lapsed_days}));
        EXPECT_EQ(lifecycle::classify(packed.idle, packed.inactive_days, packed.lapsed_days), brief_flags(purchases, p));
    }
}

TEST(Churn, PackRoundTripsEveryField) {
    std::mt19937 rng(99);
    for (int trial = 0; trial < 10000; ++trial) {
        PackedIdle s;
        s.initialized = rng() % 2;
        s.idle.idle_at_start = static_cast<std::int32_t>(rng() % (lifecycle::kNever + 1));
        s.idle.idle_at_end = static_cast<std::int32_t>(rng() % (lifecycle::kNever + 1));
        s.idle.bought_during = rng() % 2;
        s.inactive_days = static_cast<std::int32_t>(rng() % (lifecycle::kMaxChurnWindow + 1));
        s.lapsed_days = static_cast<std::int32_t>(rng() % (lifecycle::kMaxChurnWindow + 1));
        const PackedIdle back = lifecycle::unpack(lifecycle::pack(s));
        EXPECT_EQ(back.initialized, s.initialized);
        EXPECT_EQ(back.idle.idle_at_start, s.idle.idle_at_start);
        EXPECT_EQ(back.idle.idle_at_end, s.idle.idle_at_end);
        EXPECT_EQ(back.idle.bought_during, s.idle.bought_during);
        EXPECT_EQ(back.inactive_days, s.inactive_days);
        EXPECT_EQ(back.lapsed_days, s.lapsed_days);
    }
    EXPECT_FALSE(lifecycle::unpack(0).initialized);  // the aggregate's INITCOND
    // A group's first row starts from "no purchase", not from the zeros of INITCOND.
    PackedIdle first = lifecycle::unpack(lifecycle::pack(lifecycle::first_state(60, 90)));
    EXPECT_TRUE(first.initialized);
    EXPECT_EQ(first.idle.idle_at_start, lifecycle::kNever);
    EXPECT_EQ(first.idle.idle_at_end, lifecycle::kNever);
    lifecycle::observe(first.idle, kStart, kPeriod);
    EXPECT_EQ(lifecycle::classify(first.idle, 60, 90), lifecycle::kNew);
    // Any 64-bit value unpacks to fields in range.
    const PackedIdle junk = lifecycle::unpack(-1);
    EXPECT_LE(junk.idle.idle_at_start, lifecycle::kNever);
    EXPECT_LE(junk.lapsed_days, 0x7fff);
}

// Idle times beyond any window saturate without changing an answer.
TEST(Churn, VeryOldPurchasesSaturate) {
    const ChurnPeriod widest{kStart, kEnd, lifecycle::kMaxChurnWindow - 1, lifecycle::kMaxChurnWindow};
    EXPECT_EQ(flags_of({kStart - lifecycle::kMaxChurnWindow}, widest), lifecycle::kBase | lifecycle::kChurned);
    EXPECT_EQ(flags_of({kStart - lifecycle::kMaxChurnWindow - 1}, widest), 0);
    EXPECT_EQ(flags_of({kStart - 200000, kStart + 1}, widest), lifecycle::kReactivated);
    EXPECT_THROW(lifecycle::validate(ChurnPeriod{kStart, kEnd, 60, lifecycle::kMaxChurnWindow + 1}),
                 lifecycle::Error);
}

TEST(Churn, CountsAddAndMerge) {
    ChurnCounts a, b;
    lifecycle::add_flags(a, lifecycle::kBase);
    lifecycle::add_flags(a, lifecycle::kBase | lifecycle::kChurned);
    lifecycle::add_flags(b, lifecycle::kNew);
    lifecycle::add_flags(b, lifecycle::kReactivated);
    lifecycle::add_flags(b, lifecycle::kBase | lifecycle::kReactivated);
    lifecycle::add_flags(b, 0);
    lifecycle::merge(a, b);
    EXPECT_EQ(a.base, 3);
    EXPECT_EQ(a.churned, 1);
    EXPECT_EQ(a.reactivated, 2);
    EXPECT_EQ(a.new_customers, 1);
}

TEST(Churn, ImpossibleFlagsAreRefused) {
    ChurnCounts c;
    EXPECT_THROW(lifecycle::add_flags(c, lifecycle::kChurned), lifecycle::Error);
    EXPECT_THROW(lifecycle::add_flags(c, 16), lifecycle::Error);
    EXPECT_THROW(lifecycle::add_flags(c, -1), lifecycle::Error);
    EXPECT_THROW(lifecycle::add_flags(c, lifecycle::kNew | lifecycle::kBase), lifecycle::Error);
    EXPECT_EQ(c.base, 0);
}

TEST(Churn, BadPeriodsAreRefused) {
    EXPECT_THROW(lifecycle::validate(ChurnPeriod{kStart, kStart, 60, 90}), lifecycle::Error);
    EXPECT_THROW(lifecycle::validate(ChurnPeriod{kEnd, kStart, 60, 90}), lifecycle::Error);
    EXPECT_THROW(lifecycle::validate(ChurnPeriod{kStart, kEnd, -1, 90}), lifecycle::Error);
    EXPECT_THROW(lifecycle::validate(ChurnPeriod{kStart, kEnd, 95, 90}), lifecycle::Error);
    EXPECT_THROW(lifecycle::validate(ChurnPeriod{lifecycle::first_supported_day() - 1, kEnd, 60, 90}),
                 lifecycle::Error);
    EXPECT_NO_THROW(lifecycle::validate(kPeriod));
}
