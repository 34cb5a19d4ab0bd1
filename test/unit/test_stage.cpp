#include <gtest/gtest.h>

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
