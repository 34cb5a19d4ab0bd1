#include "core/stage.hpp"

#include <algorithm>
#include <array>
#include <cmath>
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

namespace lifecycle {

// Each rule of classify() compares the day with one threshold, so the stage can only
// change on the day after a threshold: the end of onboarding, the three windows after
// the last purchase and the rhythm's expected gap. The first of those days on which the
// stage differs is the answer.
std::optional<Day> next_change(const History& history, Day as_of, const Policy& policy) {
    const Stage now = classify(history, as_of, policy);
    const std::int64_t last = history.last;
    std::array<std::int64_t, 5> candidates = {
        static_cast<std::int64_t>(history.first) + policy.onboarding_days + 1,
        last + policy.at_risk_days + 1, last + policy.inactive_days + 1,
        last + policy.lapsed_days + 1, -1};
    if (policy.rhythm_factor > 0 && history.purchases >= policy.rhythm_min_purchases) {
        const double gap = policy.rhythm_factor * static_cast<double>(history.last - history.first) /
                           static_cast<double>(history.purchases - 1);
        if (gap < static_cast<double>(policy.lapsed_days))
            candidates[4] = last + static_cast<std::int64_t>(std::floor(gap)) + 1;
    }
    std::sort(candidates.begin(), candidates.end());
    for (std::int64_t day : candidates) {
        if (day <= as_of) continue;
        if (day > last_supported_day()) break;
        if (classify(history, static_cast<Day>(day), policy) != now) return static_cast<Day>(day);
    }
    return std::nullopt;
}

}  // namespace lifecycle
