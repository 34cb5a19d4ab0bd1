#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <utility>
#include <random>
#include <vector>

#include "core/churn.hpp"
#include "core/error.hpp"
#include "core/stage.hpp"

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

namespace {

// The brief's churn definitions through the stage classifier (stage.hpp): the stage at
// start judged from the purchases before start with as_of = start, the stage at end from
// the purchases before end with as_of = end.
std::int32_t flags_via_stages(const std::vector<Day>& purchases, const ChurnPeriod& p, const lifecycle::Policy& policy) {
    auto stage_at = [&](Day as_of) -> lifecycle::Stage {
        long n = 0;
        Day first = 0, last = 0;
        for (Day d : purchases)
            if (d < as_of) {
                first = n ? std::min(first, d) : d;
                last = n ? std::max(last, d) : d;
                ++n;
            }
        return n ? lifecycle::classify(lifecycle::History{first, last, n}, as_of, policy)
                 : lifecycle::stage_without_purchases();
    };
    using lifecycle::Stage;
    const Stage at_start = stage_at(p.start), at_end = stage_at(p.end);
    bool during = false;
    for (Day d : purchases) during = during || (d >= p.start && d < p.end);
    const bool base = at_start == Stage::new_customer || at_start == Stage::active ||
                      at_start == Stage::at_risk || at_start == Stage::inactive;
    std::int32_t flags = 0;
    if (base) flags |= lifecycle::kBase;
    if (base && at_end == Stage::lapsed) flags |= lifecycle::kChurned;
    if ((at_start == Stage::inactive || at_start == Stage::lapsed) && during) flags |= lifecycle::kReactivated;
    if (at_start == Stage::prospect && during) flags |= lifecycle::kNew;
    return flags;
}

std::int32_t flags_via_parts(const std::vector<std::vector<Day>>& parts, const ChurnPeriod& p) {
    CustomerIdle total;
    for (const auto& part : parts) {
        CustomerIdle partial;
        for (Day d : part) lifecycle::observe(partial, d, p);
        lifecycle::merge(total, partial);
    }
    return lifecycle::classify(total, p.inactive_days, p.lapsed_days);
}

}  // namespace

// One customer per flag, at the edges of the period and of the windows (60/90).
TEST(Churn, EachFlagAtTheEdges) {
    using lifecycle::kBase;
    using lifecycle::kChurned;
    using lifecycle::kNew;
    using lifecycle::kReactivated;
    // Base: idle exactly 90 days at start (inactive, not lapsed); 91 days: lapsed, not base.
    EXPECT_EQ(flags_of({kStart - 90}) & kBase, kBase);
    EXPECT_EQ(flags_of({kStart - 91}) & kBase, 0);
    EXPECT_EQ(flags_of({kStart - 1}), kBase);
    // Churned: no purchase in the period and end - last > 90. The period is 45 days, so a
    // base customer who last bought s days before start is idle s + 45 days at end.
    EXPECT_EQ(flags_of({kStart - 45}), kBase);             // idle 90 at end
    EXPECT_EQ(flags_of({kStart - 46}), kBase | kChurned);  // idle 91 at end
    // A purchase on the start day or the day before end keeps a base customer.
    EXPECT_EQ(flags_of({kStart - 80, kStart}), kBase | kReactivated);
    EXPECT_EQ(flags_of({kStart - 50, kStart}), kBase);
    EXPECT_EQ(flags_of({kStart - 50, kEnd - 1}), kBase);
    // A purchase on the end day is outside the period: the customer churns anyway.
    EXPECT_EQ(flags_of({kStart - 50, kEnd}), kBase | kChurned);
    // Reactivated: idle > 60 at start and a purchase in [start, end).
    EXPECT_EQ(flags_of({kStart - 60, kStart + 3}), kBase);
    EXPECT_EQ(flags_of({kStart - 61, kStart + 3}), kBase | kReactivated);
    EXPECT_EQ(flags_of({kStart - 91, kStart + 3}), kReactivated);  // lapsed at start: not in the base
    EXPECT_EQ(flags_of({kStart - 91, kEnd - 1}), kReactivated);
    EXPECT_EQ(flags_of({kStart - 91, kEnd}), 0);
    // New: the first purchase ever in [start, end).
    EXPECT_EQ(flags_of({kStart}), kNew);
    EXPECT_EQ(flags_of({kEnd - 1}), kNew);
    EXPECT_EQ(flags_of({kEnd - 1, kStart, kStart + 5}), kNew);
    EXPECT_EQ(flags_of({kEnd, kEnd + 1}), 0);
    // The order of purchases does not matter.
    EXPECT_EQ(flags_of({kStart + 3, kStart - 61}), kBase | kReactivated);
}

// The packed-bigint path and the plain-struct path agree from the first row on.
TEST(Churn, PackedStateFoldsLikeThePlainOne) {
    std::mt19937 rng(8);
    for (int trial = 0; trial < 2000; ++trial) {
        ChurnPeriod p{kStart, kStart + 1 + static_cast<Day>(rng() % 100), static_cast<std::int32_t>(rng() % 70), 0};
        p.lapsed_days = p.inactive_days + static_cast<std::int32_t>(rng() % 70);
        std::int64_t state = 0;  // INITCOND
        CustomerIdle plain;
        const int n = static_cast<int>(rng() % 5);
        std::vector<Day> purchases;
        for (int i = 0; i < n; ++i) {
            const Day d = kStart - 200 + static_cast<Day>(rng() % 400);
            purchases.push_back(d);
            PackedIdle s = lifecycle::unpack(state);
            if (!s.initialized) s = lifecycle::first_state(p.inactive_days, p.lapsed_days);
            lifecycle::observe(s.idle, d, p);
            state = lifecycle::pack(s);
            lifecycle::observe(plain, d, p);
        }
        const PackedIdle s = lifecycle::unpack(state);
        if (n == 0) {
            EXPECT_FALSE(s.initialized);
            continue;
        }
        EXPECT_EQ(s.inactive_days, p.inactive_days);
        EXPECT_EQ(s.lapsed_days, p.lapsed_days);
        EXPECT_EQ(lifecycle::classify(s.idle, s.inactive_days, s.lapsed_days), brief_flags(purchases, p));
        EXPECT_EQ(lifecycle::classify(plain, p.inactive_days, p.lapsed_days), brief_flags(purchases, p));
    }
}

// Against the stage classifier, with random policies (the rhythm and onboarding rules must
// not change which customers are in the base, churned or reactivated), and with each
// history split into up to 4 random parts merged in random order.
TEST(Churn, RandomHistoriesMatchTheStagesAndAnySplit) {
    std::mt19937 rng(31337);
    int seen[16] = {};
    for (int trial = 0; trial < 20000; ++trial) {
        lifecycle::Policy policy;
        policy.onboarding_days = static_cast<std::int32_t>(rng() % 100);
        policy.at_risk_days = static_cast<std::int32_t>(rng() % 50);
        policy.inactive_days = policy.at_risk_days + static_cast<std::int32_t>(rng() % 50);
        policy.lapsed_days = policy.inactive_days + static_cast<std::int32_t>(rng() % 60);
        policy.rhythm_factor = (rng() % 10) / 4.0;
        policy.rhythm_min_purchases = 2 + static_cast<std::int32_t>(rng() % 3);
        const ChurnPeriod p{kStart, kStart + 1 + static_cast<Day>(rng() % 200), policy.inactive_days,
                            policy.lapsed_days};
        lifecycle::validate(p);
        std::vector<Day> purchases(rng() % 7);
        for (Day& d : purchases) d = kStart - 250 + static_cast<Day>(rng() % 500);
        const std::int32_t expected = flags_via_stages(purchases, p, policy);
        ++seen[expected];
        ASSERT_EQ(flags_of(purchases, p), expected);
        ASSERT_EQ(brief_flags(purchases, p), expected);
        std::vector<std::vector<Day>> parts(1 + rng() % 4);
        for (Day d : purchases) parts[rng() % parts.size()].push_back(d);
        std::shuffle(parts.begin(), parts.end(), rng);
        ASSERT_EQ(flags_via_parts(parts, p), expected);
    }
    // Every possible combination of flags came up, and no other.
    const std::set<int> possible = {0, lifecycle::kBase, lifecycle::kBase | lifecycle::kChurned,
                                    lifecycle::kReactivated, lifecycle::kBase | lifecycle::kReactivated,
                                    lifecycle::kBase | lifecycle::kChurned | lifecycle::kReactivated,
                                    lifecycle::kNew};
    for (int flags = 0; flags < 16; ++flags)
        EXPECT_EQ(seen[flags] > 0, possible.count(flags) == 1) << "flags " << flags << " seen " << seen[flags];
}

// add_flags accepts exactly the combinations a customer can have (see the test above) and
// counts each flag; anything else is refused without touching the counts.
TEST(Churn, AddFlagsAcceptsExactlyThePossibleCombinations) {
    const std::set<int> possible = {0, 1, 3, 4, 5, 7, 8};
    for (int flags = -3; flags < 40; ++flags) {
        ChurnCounts c;
        if (possible.count(flags)) {
            ASSERT_NO_THROW(lifecycle::add_flags(c, flags)) << flags;
            EXPECT_EQ(c.base, (flags & 1) ? 1 : 0);
            EXPECT_EQ(c.churned, (flags & 2) ? 1 : 0);
            EXPECT_EQ(c.reactivated, (flags & 4) ? 1 : 0);
            EXPECT_EQ(c.new_customers, (flags & 8) ? 1 : 0);
        } else {
            try {
                lifecycle::add_flags(c, flags);
                ADD_FAILURE() << "accepted impossible flags " << flags;
            } catch (const lifecycle::Error& e) {
                EXPECT_EQ(e.kind(), lifecycle::ErrorKind::invalid_parameter);
                EXPECT_NE(std::string(e.what()).find("\"status\""), std::string::npos) << e.what();
            }
            EXPECT_EQ(c.base + c.churned + c.reactivated + c.new_customers, 0);
        }
    }
}

// Counting in parts and merging gives the counts of one pass, whatever the split.
TEST(Churn, CountsMergeLikeOnePass) {
    std::mt19937 rng(5);
    const int possible[] = {0, 1, 3, 4, 5, 7, 8};
    for (int trial = 0; trial < 200; ++trial) {
        std::vector<int> flags(rng() % 300);
        for (int& f : flags) f = possible[rng() % 7];
        ChurnCounts whole;
        std::int64_t expect[4] = {};
        for (int f : flags) {
            lifecycle::add_flags(whole, f);
            for (int bit = 0; bit < 4; ++bit) expect[bit] += (f >> bit) & 1;
        }
        EXPECT_EQ(whole.base, expect[0]);
        EXPECT_EQ(whole.churned, expect[1]);
        EXPECT_EQ(whole.reactivated, expect[2]);
        EXPECT_EQ(whole.new_customers, expect[3]);
        std::vector<ChurnCounts> parts(1 + rng() % 5);
        for (int f : flags) lifecycle::add_flags(parts[rng() % parts.size()], f);
        ChurnCounts merged;
        for (const ChurnCounts& part : parts) lifecycle::merge(merged, part);
        EXPECT_EQ(merged.base, whole.base);
        EXPECT_EQ(merged.churned, whole.churned);
        EXPECT_EQ(merged.reactivated, whole.reactivated);
        EXPECT_EQ(merged.new_customers, whole.new_customers);
    }
}

TEST(Churn, PeriodErrorsNameTheArgument) {
    auto message = [](const ChurnPeriod& p) -> std::pair<std::string, lifecycle::ErrorKind> {
        try {
            lifecycle::validate(p);
        } catch (const lifecycle::Error& e) {
            return {e.what(), e.kind()};
        }
        return {"", lifecycle::ErrorKind::invalid_parameter};
    };
    using lifecycle::ErrorKind;
    auto m = message(ChurnPeriod{kStart, kStart, 60, 90});
    EXPECT_NE(m.first.find("\"period_end\""), std::string::npos) << m.first;
    EXPECT_EQ(m.second, ErrorKind::invalid_parameter);
    m = message(ChurnPeriod{kStart, kEnd, -1, 90});
    EXPECT_NE(m.first.find("\"inactive_days\""), std::string::npos) << m.first;
    m = message(ChurnPeriod{kStart, kEnd, 0, -1});
    EXPECT_NE(m.first.find("\"lapsed_days\""), std::string::npos) << m.first;
    m = message(ChurnPeriod{kStart, kEnd, 91, 90});
    EXPECT_NE(m.first.find("\"inactive_days\""), std::string::npos) << m.first;
    m = message(ChurnPeriod{lifecycle::first_supported_day() - 1, kEnd, 60, 90});
    EXPECT_NE(m.first.find("\"period_start\""), std::string::npos) << m.first;
    EXPECT_EQ(m.second, ErrorKind::date_out_of_range);
    m = message(ChurnPeriod{kStart, lifecycle::last_supported_day() + 1, 60, 90});
    EXPECT_NE(m.first.find("\"period_end\""), std::string::npos) << m.first;
    EXPECT_EQ(m.second, ErrorKind::date_out_of_range);
    EXPECT_EQ(message(ChurnPeriod{kStart, kStart + 1, 0, 0}).first, "");
    EXPECT_EQ(message(ChurnPeriod{kStart, kEnd, lifecycle::kMaxChurnWindow, lifecycle::kMaxChurnWindow}).first, "");
    // A purchase before the supported range is refused as a date; one on or after end is
    // ignored before any check.
    CustomerIdle idle;
    EXPECT_THROW(lifecycle::observe(idle, lifecycle::first_supported_day() - 1, kPeriod), lifecycle::Error);
    EXPECT_NO_THROW(lifecycle::observe(idle, kEnd, kPeriod));
}
