#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>

#include "core/error.hpp"
#include "core/policy.hpp"

namespace {

// The message of the invalid_parameter error `policy` raises, or "" if valid.
std::string complaint(const lifecycle::Policy& policy) {
    try {
        lifecycle::validate(policy);
        return "";
    } catch (const lifecycle::Error& e) {
        EXPECT_EQ(e.kind(), lifecycle::ErrorKind::invalid_parameter);
        return e.what();
    }
}

lifecycle::Policy with(const std::function<void(lifecycle::Policy&)>& change) {
    lifecycle::Policy policy;
    change(policy);
    return policy;
}

}  // namespace

TEST(Policy, DefaultsAreTheBriefs) {
    lifecycle::Policy p;
    EXPECT_EQ(p.onboarding_days, 30);
    EXPECT_EQ(p.at_risk_days, 30);
    EXPECT_EQ(p.inactive_days, 60);
    EXPECT_EQ(p.lapsed_days, 90);
    EXPECT_DOUBLE_EQ(p.rhythm_factor, 2.0);
    EXPECT_EQ(p.rhythm_min_purchases, 3);
    EXPECT_EQ(complaint(p), "");
}

TEST(Policy, EachInvalidFieldIsNamed) {
    struct Case {
        std::function<void(lifecycle::Policy&)> change;
        const char* field;
    } cases[] = {
        {[](lifecycle::Policy& p) { p.onboarding_days = -1; }, "onboarding_days"},
        {[](lifecycle::Policy& p) { p.at_risk_days = -1; }, "at_risk_days"},
        {[](lifecycle::Policy& p) { p.inactive_days = -1; }, "inactive_days"},
        {[](lifecycle::Policy& p) { p.lapsed_days = -1; }, "lapsed_days"},
        {[](lifecycle::Policy& p) { p.at_risk_days = 61; }, "at_risk_days"},
        {[](lifecycle::Policy& p) { p.inactive_days = 91; }, "inactive_days"},
        {[](lifecycle::Policy& p) { p.rhythm_factor = -0.5; }, "rhythm_factor"},
        {[](lifecycle::Policy& p) { p.rhythm_factor = std::nan(""); }, "rhythm_factor"},
        {[](lifecycle::Policy& p) { p.rhythm_factor = HUGE_VAL; }, "rhythm_factor"},
        {[](lifecycle::Policy& p) { p.rhythm_min_purchases = 1; }, "rhythm_min_purchases"},
    };
    for (const Case& c : cases) {
        const std::string message = complaint(with(c.change));
        EXPECT_NE(message.find(std::string("\"") + c.field + "\""), std::string::npos)
            << "field " << c.field << ", message: " << message;
    }
}

TEST(Policy, EqualWindowsAndZeroAreAllowed) {
    EXPECT_EQ(complaint(with([](lifecycle::Policy& p) {
                  p.onboarding_days = 0;
                  p.at_risk_days = p.inactive_days = p.lapsed_days = 0;
                  p.rhythm_factor = 0;
              })),
              "");
}

// Every field, alone, at the first invalid value and at the last valid one; the error is
// invalid_parameter and names the field (complaint() checks the kind).
TEST(Policy, EachFieldAtItsLimit) {
    struct Case {
        std::function<void(lifecycle::Policy&)> valid, invalid;
        const char* field;
    } cases[] = {
        {[](lifecycle::Policy& p) { p.onboarding_days = 0; }, [](lifecycle::Policy& p) { p.onboarding_days = -1; },
         "onboarding_days"},
        {[](lifecycle::Policy& p) { p.at_risk_days = 0; }, [](lifecycle::Policy& p) { p.at_risk_days = -1; },
         "at_risk_days"},
        {[](lifecycle::Policy& p) { p.at_risk_days = 60; }, [](lifecycle::Policy& p) { p.at_risk_days = 61; },
         "at_risk_days"},
        {[](lifecycle::Policy& p) { p.inactive_days = 90; }, [](lifecycle::Policy& p) { p.inactive_days = 91; },
         "inactive_days"},
        {[](lifecycle::Policy& p) { p.inactive_days = 30; }, [](lifecycle::Policy& p) { p.inactive_days = 29; },
         "inactive_days"},
        {[](lifecycle::Policy& p) { p.lapsed_days = 60; }, [](lifecycle::Policy& p) { p.lapsed_days = 59; },
         "lapsed_days"},
        {[](lifecycle::Policy& p) { p.rhythm_factor = 0; }, [](lifecycle::Policy& p) { p.rhythm_factor = -1e-9; },
         "rhythm_factor"},
        {[](lifecycle::Policy& p) { p.rhythm_factor = 1e300; },
         [](lifecycle::Policy& p) { p.rhythm_factor = -HUGE_VAL; }, "rhythm_factor"},
        {[](lifecycle::Policy& p) { p.rhythm_min_purchases = 2; },
         [](lifecycle::Policy& p) { p.rhythm_min_purchases = 1; }, "rhythm_min_purchases"},
        {[](lifecycle::Policy& p) { p.rhythm_min_purchases = 2; },
         [](lifecycle::Policy& p) { p.rhythm_min_purchases = INT32_MIN; }, "rhythm_min_purchases"},
    };
    for (const Case& c : cases) {
        EXPECT_EQ(complaint(with(c.valid)), "") << c.field;
        const std::string message = complaint(with(c.invalid));
        EXPECT_NE(message, "") << c.field << " accepted an invalid value";
        EXPECT_NE(message.find(std::string("\"") + c.field + "\""), std::string::npos)
            << "field " << c.field << ", message: " << message;
    }
}

// The onboarding window is independent of the idle windows (it may exceed lapsed_days).
TEST(Policy, OnboardingIsNotOrderedAgainstTheIdleWindows) {
    EXPECT_EQ(complaint(with([](lifecycle::Policy& p) { p.onboarding_days = 1000; })), "");
    EXPECT_EQ(complaint(with([](lifecycle::Policy& p) {
                  p.at_risk_days = 7;
                  p.inactive_days = 7;
                  p.lapsed_days = 400;
              })),
              "");
    EXPECT_NE(complaint(with([](lifecycle::Policy& p) { p.lapsed_days = INT32_MIN; })), "");
}
