// A policy holds the windows that turn a purchase history into a stage
// (DESIGN.md, "The lifecycle"). The defaults are the brief's default policy.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>

namespace lifecycle {

struct Policy {
    std::int32_t onboarding_days = 30;
    std::int32_t at_risk_days = 30;
    std::int32_t inactive_days = 60;
    std::int32_t lapsed_days = 90;
    double rhythm_factor = 2.0;            // 0 turns the rhythm rule off
    std::int32_t rhythm_min_purchases = 3;  // rhythm is trusted from this many purchases
};

// Throws invalid_parameter naming the offending field: negative windows, windows out of
// order (at_risk <= inactive <= lapsed), a negative or non-finite rhythm factor, or
// rhythm_min_purchases < 2 (the rhythm divides by n - 1).
void validate(const Policy& policy);

}  // namespace lifecycle
