#include "core/stage.hpp"

#include <string>

#include "core/error.hpp"

namespace lifecycle {

const char* stage_name(Stage stage) {
    switch (stage) {
        case Stage::prospect: return "prospect";
        case Stage::new_customer: return "new";
        case Stage::active: return "active";
        case Stage::at_risk: return "at_risk";
        case Stage::inactive: return "inactive";
        case Stage::lapsed: return "lapsed";
    }
    return "?";
}

namespace {

void check_history(const History& history, Day as_of) {
    check_day(history.first, "first");
    check_day(history.last, "last");
    check_day(as_of, "as_of");
    if (history.purchases < 1)
        throw_invalid("argument \"n\" must be at least 1 when purchase dates are given, got " +
                      std::to_string(history.purchases));
    if (history.last < history.first)
        throw_invalid("argument \"last\" (" + to_iso(history.last) +
                      ") is before argument \"first\" (" + to_iso(history.first) + ")");
    if (history.last > as_of)
        throw_invalid("argument \"last\" (" + to_iso(history.last) +
                      ") is after argument \"as_of\" (" + to_iso(as_of) +
                      "): a purchase after as_of");
}

// Rule 6: overdue against the customer's own purchase rhythm. Evaluated literally as
// d > factor * (last - first) / (n - 1), the brief's formula, in double precision.
bool overdue_for_rhythm(const History& history, std::int64_t days_since, const Policy& policy) {
    if (policy.rhythm_factor <= 0 || history.purchases < policy.rhythm_min_purchases)
        return false;
    const double span = static_cast<double>(history.last - history.first);
    const double expected_gap =
        policy.rhythm_factor * span / static_cast<double>(history.purchases - 1);
    return static_cast<double>(days_since) > expected_gap;
}

}  // namespace

Stage classify(const History& history, Day as_of, const Policy& policy) {
    check_history(history, as_of);
    const std::int64_t days_since = static_cast<std::int64_t>(as_of) - history.last;
    if (days_since > policy.lapsed_days) return Stage::lapsed;
    if (days_since > policy.inactive_days) return Stage::inactive;
    if (days_since > policy.at_risk_days) return Stage::at_risk;
    if (static_cast<std::int64_t>(as_of) - history.first <= policy.onboarding_days)
        return Stage::new_customer;
    if (overdue_for_rhythm(history, days_since, policy)) return Stage::at_risk;
    return Stage::active;
}

}  // namespace lifecycle
