#include <gtest/gtest.h>

#include <cmath>
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
