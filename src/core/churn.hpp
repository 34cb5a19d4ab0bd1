// Churn over a period [start, end) (DESIGN.md, "Churn rate"), split in two steps so that
// both parallel query and Citus can divide the work:
//   1. per customer: fold their purchase days into CustomerDays, then classify it into
//      flags (base, churned, reactivated, new);
//   2. over customers: add the flags up into ChurnCounts.
// Both steps have a merge, so partial results from workers combine.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>
#include <limits>

#include "core/calendar.hpp"

namespace lifecycle {

struct ChurnPeriod {
    Day start;
    Day end;                     // exclusive
    std::int32_t inactive_days;  // stage at start inactive when d > this
    std::int32_t lapsed_days;    // stage lapsed when d > this
};

// Throws invalid_parameter: end <= start, negative or disordered windows;
// date_out_of_range for days outside the supported range.
void validate(const ChurnPeriod& period);

constexpr Day kNoDay = std::numeric_limits<Day>::min();

// What step 1 keeps of one customer's purchases before `end` (later ones are ignored).
struct CustomerDays {
    Day first = kNoDay;              // first purchase before end
    Day last_before_start = kNoDay;  // last purchase before start
    Day last_before_end = kNoDay;    // last purchase before end
};

void observe(CustomerDays& days, Day purchase, const ChurnPeriod& period);
void merge(CustomerDays& into, const CustomerDays& other);

enum ChurnFlag : std::int32_t {
    kBase = 1,         // new, active, at_risk or inactive at start
    kChurned = 2,      // in the base and lapsed at end
    kReactivated = 4,  // inactive or lapsed at start, bought during the period
    kNew = 8,          // first purchase during the period
};

std::int32_t classify(const CustomerDays& days, const ChurnPeriod& period);

struct ChurnCounts {
    std::int64_t base = 0;
    std::int64_t churned = 0;
    std::int64_t reactivated = 0;
    std::int64_t new_customers = 0;
};

// Throws invalid_parameter for flags that no customer can have (e.g. churned outside the base).
void add_flags(ChurnCounts& counts, std::int32_t flags);
void merge(ChurnCounts& into, const ChurnCounts& other);

}  // namespace lifecycle
