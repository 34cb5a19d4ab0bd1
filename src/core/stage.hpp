// The lifecycle stage of one customer (DESIGN.md, "Stages, checked in this order").
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>
#include <optional>

#include "core/calendar.hpp"
#include "core/policy.hpp"

namespace lifecycle {

// The order is the SQL enum's order (lifecycle.stage), so the two convert by index.
enum class Stage : std::uint8_t { prospect, new_customer, active, at_risk, inactive, lapsed };
constexpr int kStageCount = 6;

const char* stage_name(Stage stage);

// A purchase history: first and last purchase day and the number of purchases.
struct History {
    Day first;
    Day last;
    std::int64_t purchases;
};

// The stage of a customer with no purchase yet.
inline Stage stage_without_purchases() { return Stage::prospect; }

// The stage of `history` on `as_of` under `policy` (which the caller has validated).
// Throws invalid_parameter / date_out_of_range for impossible input: a purchase after
// as_of, last < first, purchases < 1, a day out of the supported range.
Stage classify(const History& history, Day as_of, const Policy& policy);

// The first day after `as_of` on which the stage differs from the stage on `as_of`, if
// nothing is bought meanwhile: when the stage engine must look at the customer again.
// None when the stage never changes again (lapsed) or the day is past 9999-12-31.
// Same argument checks as classify().
std::optional<Day> next_change(const History& history, Day as_of, const Policy& policy);

}  // namespace lifecycle
