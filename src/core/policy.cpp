#include "core/policy.hpp"

#include <cmath>
#include <string>

#include "core/error.hpp"

namespace lifecycle {

namespace {

void require_non_negative(std::int32_t value, const char* field) {
    if (value < 0)
        throw_invalid(std::string("policy field \"") + field + "\" must not be negative, got " +
                      std::to_string(value));
}

void require_order(std::int32_t lower, const char* lower_name, std::int32_t upper,
                   const char* upper_name) {
    if (lower > upper)
        throw_invalid(std::string("policy field \"") + lower_name + "\" (" +
                      std::to_string(lower) + ") must not exceed \"" + upper_name + "\" (" +
                      std::to_string(upper) + ")");
}

}  // namespace

void validate(const Policy& policy) {
    require_non_negative(policy.onboarding_days, "onboarding_days");
    require_non_negative(policy.at_risk_days, "at_risk_days");
    require_non_negative(policy.inactive_days, "inactive_days");
    require_non_negative(policy.lapsed_days, "lapsed_days");
    require_order(policy.at_risk_days, "at_risk_days", policy.inactive_days, "inactive_days");
    require_order(policy.inactive_days, "inactive_days", policy.lapsed_days, "lapsed_days");
    if (!std::isfinite(policy.rhythm_factor) || policy.rhythm_factor < 0)
        throw_invalid("policy field \"rhythm_factor\" must be a finite number >= 0");
    if (policy.rhythm_min_purchases < 2)
        throw_invalid("policy field \"rhythm_min_purchases\" must be at least 2, got " +
                      std::to_string(policy.rhythm_min_purchases));
}

}  // namespace lifecycle
