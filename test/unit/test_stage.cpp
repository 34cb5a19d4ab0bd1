#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>

#include "core/error.hpp"
#include "core/stage.hpp"

using lifecycle::Day;
using lifecycle::History;
using lifecycle::Policy;
using lifecycle::Stage;

namespace {

const Day kFirst = lifecycle::from_ymd(2024, 1, 1);

Stage stage(Day first, Day last, long n, Day as_of, const Policy& policy = Policy()) {
    return lifecycle::classify(History{first, last, n}, as_of, policy);
}

lifecycle::ErrorKind error_of(Day first, Day last, long n, Day as_of) {
    try {
        stage(first, last, n, as_of);
    } catch (const lifecycle::Error& e) {
        return e.kind();
    }
    ADD_FAILURE() << "no error";
    return lifecycle::ErrorKind::invalid_parameter;
}

}  // namespace

TEST(Stage, NamesMatchTheSqlEnum) {
    const char* names[] = {"prospect", "new", "active", "at_risk", "inactive", "lapsed"};
    for (int i = 0; i < lifecycle::kStageCount; ++i)
        EXPECT_STREQ(lifecycle::stage_name(static_cast<Stage>(i)), names[i]);
    EXPECT_EQ(lifecycle::stage_without_purchases(), Stage::prospect);
}

// Rules 2-4 with the default windows 30/60/90, at and one day past each boundary. The
// customer is old (first purchase long ago) and has 2 purchases (no rhythm).
TEST(Stage, IdleWindowsAtTheirBoundaries) {
    const Day last = kFirst + 200;
    EXPECT_EQ(stage(kFirst, last, 2, last + 0), Stage::active);
    EXPECT_EQ(stage(kFirst, last, 2, last + 30), Stage::active);
    EXPECT_EQ(stage(kFirst, last, 2, last + 31), Stage::at_risk);
    EXPECT_EQ(stage(kFirst, last, 2, last + 60), Stage::at_risk);
    EXPECT_EQ(stage(kFirst, last, 2, last + 61), Stage::inactive);
    EXPECT_EQ(stage(kFirst, last, 2, last + 90), Stage::inactive);
    EXPECT_EQ(stage(kFirst, last, 2, last + 91), Stage::lapsed);
    EXPECT_EQ(stage(kFirst, last, 2, last + 100000), Stage::lapsed);
}

// Rule 5: new while as_of - first <= 30, unless an idle rule came first.
TEST(Stage, OnboardingWindow) {
    EXPECT_EQ(stage(kFirst, kFirst, 1, kFirst), Stage::new_customer);
    EXPECT_EQ(stage(kFirst, kFirst + 20, 2, kFirst + 30), Stage::new_customer);
    EXPECT_EQ(stage(kFirst, kFirst + 20, 2, kFirst + 31), Stage::active);
    // Idle for 31 days at day 31: at_risk comes before new.
    EXPECT_EQ(stage(kFirst, kFirst, 1, kFirst + 31), Stage::at_risk);
    // A new customer overdue against a rhythm stays new (rule 5 before rule 6).
    EXPECT_EQ(stage(kFirst, kFirst + 2, 3, kFirst + 20), Stage::new_customer);
}

// Rule 6: 4 purchases over 60 days (every 20 days), factor 2: at risk when d > 40.
TEST(Stage, Rhythm) {
    const Day last = kFirst + 60;
    EXPECT_EQ(stage(kFirst, last, 4, last + 25), Stage::active);
    EXPECT_EQ(stage(kFirst, last, 4, last + 30), Stage::active);  // d = 30: not yet at_risk by rule 4
    Policy loose;
    loose.at_risk_days = 50;
    EXPECT_EQ(stage(kFirst, last, 4, last + 40, loose), Stage::active);   // d = 40 = 2 x 20
    EXPECT_EQ(stage(kFirst, last, 4, last + 41, loose), Stage::at_risk);  // d = 41 > 40
    // Below rhythm_min_purchases the rhythm is not trusted.
    Policy strict;
    strict.rhythm_min_purchases = 5;
    strict.at_risk_days = 50;
    EXPECT_EQ(stage(kFirst, last, 4, last + 41, strict), Stage::active);
    // Factor 0 turns it off.
    Policy off = loose;
    off.rhythm_factor = 0;
    EXPECT_EQ(stage(kFirst, last, 4, last + 45, off), Stage::active);
    // All purchases on one day with n >= 3: any idle day is overdue.
    EXPECT_EQ(stage(kFirst, kFirst, 3, kFirst + 31 + 1, loose), Stage::at_risk);
}

// The formula is evaluated as written: factor * span / (n - 1), compared with d.
TEST(Stage, RhythmFormulaWithFractions) {
    Policy p;
    p.onboarding_days = 0;
    p.at_risk_days = 1000;
    p.inactive_days = 1000;
    p.lapsed_days = 1000;
    p.rhythm_factor = 1.5;
    // span 10 over 3 gaps: 1.5 * 10 / 3 = 5.0 exactly
    EXPECT_EQ(stage(kFirst, kFirst + 10, 4, kFirst + 10 + 5, p), Stage::active);
    EXPECT_EQ(stage(kFirst, kFirst + 10, 4, kFirst + 10 + 6, p), Stage::at_risk);
    // span 7 over 3 gaps, factor 1.5: 3.5
    EXPECT_EQ(stage(kFirst, kFirst + 7, 4, kFirst + 7 + 3, p), Stage::active);
    EXPECT_EQ(stage(kFirst, kFirst + 7, 4, kFirst + 7 + 4, p), Stage::at_risk);
}

TEST(Stage, ImpossibleInput) {
    EXPECT_EQ(error_of(kFirst, kFirst + 10, 2, kFirst + 5), lifecycle::ErrorKind::invalid_parameter);  // after as_of
    EXPECT_EQ(error_of(kFirst + 10, kFirst, 2, kFirst + 20), lifecycle::ErrorKind::invalid_parameter);  // last < first
    EXPECT_EQ(error_of(kFirst, kFirst, 0, kFirst + 20), lifecycle::ErrorKind::invalid_parameter);       // n < 1
    EXPECT_EQ(error_of(kFirst, kFirst, -3, kFirst + 20), lifecycle::ErrorKind::invalid_parameter);
    EXPECT_EQ(error_of(lifecycle::first_supported_day() - 1, kFirst, 1, kFirst),
              lifecycle::ErrorKind::date_out_of_range);
    EXPECT_EQ(error_of(kFirst, kFirst, 1, lifecycle::last_supported_day() + 1),
              lifecycle::ErrorKind::date_out_of_range);
    try {
        stage(kFirst, kFirst + 10, 2, kFirst + 5);
    } catch (const lifecycle::Error& e) {
        EXPECT_NE(std::string(e.what()).find("\"as_of\""), std::string::npos) << e.what();
    }
}

namespace {

// A policy with every window different, so that no rule can pass by using another's.
Policy distinct_windows() {
    Policy p;
    p.onboarding_days = 7;
    p.at_risk_days = 10;
    p.inactive_days = 20;
    p.lapsed_days = 40;
    p.rhythm_factor = 3.0;
    p.rhythm_min_purchases = 4;
    return p;
}

// The brief's seven rules, written out in order (n = 0 is rule 1, before any date check).
Stage brief_stage(Day first, Day last, long n, Day as_of, const Policy& p) {
    if (n == 0) return Stage::prospect;                      // 1
    const long d = static_cast<long>(as_of) - last;
    if (d > p.lapsed_days) return Stage::lapsed;              // 2
    if (d > p.inactive_days) return Stage::inactive;          // 3
    if (d > p.at_risk_days) return Stage::at_risk;            // 4
    if (static_cast<long>(as_of) - first <= p.onboarding_days) return Stage::new_customer;  // 5
    if (n >= p.rhythm_min_purchases && p.rhythm_factor > 0 &&
        static_cast<double>(d) > p.rhythm_factor * static_cast<double>(last - first) / static_cast<double>(n - 1))
        return Stage::at_risk;                                 // 6
    return Stage::active;                                      // 7
}

}  // namespace

// Each rule with a non-default policy, at d == window and d == window + 1.
TEST(Stage, EachRuleAtItsBoundaryWithDistinctWindows) {
    const Policy p = distinct_windows();
    const Day first = kFirst, last = kFirst + 100;  // old customer; 2 purchases: no rhythm
    // Rule 2: lapsed when d > 40.
    EXPECT_EQ(stage(first, last, 2, last + 40, p), Stage::inactive);
    EXPECT_EQ(stage(first, last, 2, last + 41, p), Stage::lapsed);
    // Rule 3: inactive when d > 20.
    EXPECT_EQ(stage(first, last, 2, last + 20, p), Stage::at_risk);
    EXPECT_EQ(stage(first, last, 2, last + 21, p), Stage::inactive);
    // Rule 4: at_risk when d > 10.
    EXPECT_EQ(stage(first, last, 2, last + 10, p), Stage::active);
    EXPECT_EQ(stage(first, last, 2, last + 11, p), Stage::at_risk);
    // Rule 5: new while as_of - first <= 7.
    EXPECT_EQ(stage(first, first + 3, 2, first + 7, p), Stage::new_customer);
    EXPECT_EQ(stage(first, first + 3, 2, first + 8, p), Stage::active);
    // Rule 6: 4 purchases over 30 days, gap 10, factor 3: overdue when d > 30 ... but rule 4
    // fires at d > 10 first, so widen the idle windows to reach it.
    Policy wide = p;
    wide.at_risk_days = 50;
    wide.inactive_days = 60;
    wide.lapsed_days = 70;
    EXPECT_EQ(stage(first, first + 30, 4, first + 30 + 30, wide), Stage::active);
    EXPECT_EQ(stage(first, first + 30, 4, first + 30 + 31, wide), Stage::at_risk);
    // Rule 1.
    EXPECT_EQ(lifecycle::stage_without_purchases(), Stage::prospect);
}

// Rule 6 is trusted only from rhythm_min_purchases purchases: below it, at it, above it.
TEST(Stage, RhythmMinPurchases) {
    Policy p;
    p.at_risk_days = 50;
    p.inactive_days = 60;
    p.lapsed_days = 70;
    p.rhythm_min_purchases = 4;
    // span 60; with n purchases the gap is 60 / (n - 1); d = 45 exceeds 2 x gap for n >= 4.
    const Day last = kFirst + 60;
    EXPECT_EQ(stage(kFirst, last, 3, last + 45, p), Stage::active);   // n = 3 < 4 (and 2 x 30 = 60 >= 45)
    EXPECT_EQ(stage(kFirst, last, 4, last + 45, p), Stage::at_risk);  // n = 4 = min: 2 x 20 = 40 < 45
    EXPECT_EQ(stage(kFirst, last, 5, last + 45, p), Stage::at_risk);  // n = 5 > min: 2 x 15 = 30
    // Below the minimum even a hopeless rhythm does not count.
    p.rhythm_min_purchases = 6;
    EXPECT_EQ(stage(kFirst, last, 5, last + 45, p), Stage::active);
    EXPECT_EQ(stage(kFirst, last, 6, last + 45, p), Stage::at_risk);  // 2 x 12 = 24
    // With the default minimum (3): n = 2 never uses rhythm, n = 3 does.
    Policy def;
    def.at_risk_days = 50;
    def.inactive_days = 60;
    def.lapsed_days = 70;
    EXPECT_EQ(stage(kFirst, kFirst + 10, 2, kFirst + 10 + 45, def), Stage::active);
    EXPECT_EQ(stage(kFirst, kFirst + 10, 3, kFirst + 10 + 45, def), Stage::at_risk);  // 2 x 5 = 10
    // span 20 over n = 3: gap 10, overdue when d > 20 (the first purchase is 40+ days old).
    EXPECT_EQ(stage(kFirst, kFirst + 20, 3, kFirst + 20 + 20, def), Stage::active);   // d = 20, not > 20
    EXPECT_EQ(stage(kFirst, kFirst + 20, 3, kFirst + 20 + 21, def), Stage::at_risk);
    // rhythm_factor 0 turns the rule off whatever the history.
    def.rhythm_factor = 0;
    EXPECT_EQ(stage(kFirst, kFirst + 10, 3, kFirst + 10 + 45, def), Stage::active);
    EXPECT_EQ(stage(kFirst, kFirst, 100, kFirst + 40, def), Stage::active);
}

// The order of the rules: an idle rule wins over onboarding even when the first purchase is
// recent by the onboarding window.
TEST(Stage, RuleOrder) {
    Policy p;
    p.onboarding_days = 500;
    EXPECT_EQ(stage(kFirst, kFirst, 1, kFirst + 91, p), Stage::lapsed);
    EXPECT_EQ(stage(kFirst, kFirst, 1, kFirst + 61, p), Stage::inactive);
    EXPECT_EQ(stage(kFirst, kFirst, 1, kFirst + 31, p), Stage::at_risk);
    EXPECT_EQ(stage(kFirst, kFirst, 1, kFirst + 30, p), Stage::new_customer);
    // All windows zero: any idle day is lapsed, a purchase today is new (onboarding 0).
    Policy zero;
    zero.onboarding_days = zero.at_risk_days = zero.inactive_days = zero.lapsed_days = 0;
    EXPECT_EQ(stage(kFirst, kFirst, 1, kFirst, zero), Stage::new_customer);
    EXPECT_EQ(stage(kFirst, kFirst + 5, 2, kFirst + 5, zero), Stage::active);
    EXPECT_EQ(stage(kFirst, kFirst + 5, 2, kFirst + 6, zero), Stage::lapsed);
}

// Extreme but valid input: the whole supported range and a huge purchase count.
TEST(Stage, ExtremesDoNotOverflow) {
    const Day lo = lifecycle::first_supported_day(), hi = lifecycle::last_supported_day();
    EXPECT_EQ(stage(lo, lo, 1, hi), Stage::lapsed);
    EXPECT_EQ(stage(lo, hi, 1000000000000000000L, hi), Stage::active);
    EXPECT_EQ(stage(lo, hi - 31, 3, hi), Stage::at_risk);
    EXPECT_EQ(stage(hi, hi, 1, hi), Stage::new_customer);
    Policy p;
    p.at_risk_days = p.inactive_days = p.lapsed_days = INT32_MAX;
    EXPECT_EQ(stage(lo, lo, 1, hi, p), Stage::active);
}

// Random histories and random valid policies against the rules written out above.
TEST(Stage, RandomHistoriesFollowTheSevenRules) {
    std::mt19937 rng(7);
    long by_stage[lifecycle::kStageCount] = {};
    for (int trial = 0; trial < 200000; ++trial) {
        Policy p;
        p.onboarding_days = static_cast<std::int32_t>(rng() % 60);
        p.at_risk_days = static_cast<std::int32_t>(rng() % 60);
        p.inactive_days = p.at_risk_days + static_cast<std::int32_t>(rng() % 40);
        p.lapsed_days = p.inactive_days + static_cast<std::int32_t>(rng() % 40);
        p.rhythm_factor = (rng() % 4 == 0) ? 0.0 : (rng() % 40) / 8.0;
        p.rhythm_min_purchases = 2 + static_cast<std::int32_t>(rng() % 5);
        lifecycle::validate(p);
        const Day first = kFirst + static_cast<Day>(rng() % 100);
        const Day last = first + static_cast<Day>(rng() % 150);
        const long n = (last == first ? 1 : 2) + static_cast<long>(rng() % 8);
        const Day as_of = last + static_cast<Day>(rng() % 160);
        const Stage got = stage(first, last, n, as_of, p);
        ASSERT_EQ(got, brief_stage(first, last, n, as_of, p))
            << "first+" << first - kFirst << " last+" << last - kFirst << " n=" << n << " as_of+"
            << as_of - kFirst << " policy " << p.onboarding_days << "/" << p.at_risk_days << "/"
            << p.inactive_days << "/" << p.lapsed_days << " x" << p.rhythm_factor << " min "
            << p.rhythm_min_purchases;
        ++by_stage[static_cast<int>(got)];
    }
    // Every stage but prospect was reached, so every rule was exercised.
    for (int s = 1; s < lifecycle::kStageCount; ++s) EXPECT_GT(by_stage[s], 1000) << lifecycle::stage_name(static_cast<Stage>(s));
}

TEST(Stage, ErrorsNameTheArgument) {
    auto message = [](Day first, Day last, long n, Day as_of) -> std::string {
        try {
            stage(first, last, n, as_of);
        } catch (const lifecycle::Error& e) {
            return e.what();
        }
        return "";
    };
    EXPECT_NE(message(kFirst + 10, kFirst, 2, kFirst + 20).find("\"last\""), std::string::npos);
    EXPECT_NE(message(kFirst, kFirst, 0, kFirst + 20).find("\"n\""), std::string::npos);
    EXPECT_NE(message(lifecycle::first_supported_day() - 1, kFirst, 1, kFirst).find("\"first\""),
              std::string::npos);
    EXPECT_NE(message(kFirst, kFirst, 1, lifecycle::last_supported_day() + 1).find("\"as_of\""),
              std::string::npos);
    // A purchase on as_of itself is fine; one day later is not.
    EXPECT_EQ(message(kFirst, kFirst + 5, 2, kFirst + 5), "");
    EXPECT_NE(message(kFirst, kFirst + 6, 2, kFirst + 5), "");
}

// next_change() against a day-by-day walk: the first later day whose stage differs.
TEST(Stage, NextChangeIsTheFirstDayTheStageDiffers) {
    std::mt19937 random(20261122);
    int checked = 0, with_change = 0;
    for (int trial = 0; trial < 3000; ++trial) {
        Policy policy;
        policy.onboarding_days = static_cast<std::int32_t>(random() % 40);
        policy.at_risk_days = static_cast<std::int32_t>(random() % 40);
        policy.inactive_days = policy.at_risk_days + static_cast<std::int32_t>(random() % 30);
        policy.lapsed_days = policy.inactive_days + static_cast<std::int32_t>(random() % 30);
        policy.rhythm_factor = (random() % 4) * 0.75;
        policy.rhythm_min_purchases = 2 + static_cast<std::int32_t>(random() % 3);
        const Day first = kFirst + static_cast<Day>(random() % 100);
        const Day last = first + static_cast<Day>(random() % 60);
        const long n = last == first ? 1 : 1 + static_cast<long>(random() % 6);
        const Day as_of = last + static_cast<Day>(random() % 150);
        const History history{first, last, n};
        Day expected = 0;
        const Stage now = lifecycle::classify(history, as_of, policy);
        for (Day d = as_of + 1; d <= as_of + 400; ++d)
            if (lifecycle::classify(history, d, policy) != now) {
                expected = d;
                break;
            }
        const auto got = lifecycle::next_change(history, as_of, policy);
        if (expected == 0) {
            EXPECT_FALSE(got.has_value()) << "trial " << trial;
        } else {
            ASSERT_TRUE(got.has_value()) << "trial " << trial;
            EXPECT_EQ(*got, expected) << "trial " << trial;
            ++with_change;
        }
        ++checked;
    }
    EXPECT_EQ(checked, 3000);
    EXPECT_GT(with_change, 500);   // the walk found changes often enough to test something
}

TEST(Stage, NextChangeOfTheDefaultPolicy) {
    const Policy policy;
    // Bought once on kFirst: new for 30 days, then at_risk on day 31, inactive on 61,
    // lapsed on 91, and then nothing more.
    const History once{kFirst, kFirst, 1};
    EXPECT_EQ(*lifecycle::next_change(once, kFirst, policy), kFirst + 31);
    EXPECT_EQ(*lifecycle::next_change(once, kFirst + 31, policy), kFirst + 61);
    EXPECT_EQ(*lifecycle::next_change(once, kFirst + 61, policy), kFirst + 91);
    EXPECT_FALSE(lifecycle::next_change(once, kFirst + 91, policy).has_value());
    EXPECT_THROW(lifecycle::next_change(once, kFirst - 1, policy), lifecycle::Error);
    // Near the end of the calendar: no day after 9999-12-31.
    const Day end = lifecycle::last_supported_day();
    EXPECT_FALSE(lifecycle::next_change(History{end - 5, end - 5, 1}, end - 5, policy).has_value());
}
