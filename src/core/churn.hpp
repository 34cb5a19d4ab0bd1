// Churn over a period [start, end) (DESIGN.md, "Churn rate"), split in two steps so that
// both parallel query and Citus can divide the work:
//   1. per customer: fold their purchase days into a CustomerIdle, then classify it into
//      flags (base, churned, reactivated, new);
//   2. over customers: add the flags up into ChurnCounts.
// Both steps have a merge, so partial results from workers combine.
#pragma once
#include "core/no_postgres.hpp"

#include <cstdint>

#include "core/calendar.hpp"

namespace lifecycle {

// The longest window churn accepts: idle times are kept in 15 bits (see pack()).
constexpr std::int32_t kMaxChurnWindow = 32765;

struct ChurnPeriod {
    Day start;
    Day end;                     // exclusive
    std::int32_t inactive_days;  // stage at start inactive when d > this
    std::int32_t lapsed_days;    // stage lapsed when d > this
};

// Throws invalid_parameter: end <= start, negative, disordered or too long windows;
// date_out_of_range for days outside the supported range.
void validate(const ChurnPeriod& period);

// What step 1 keeps of one customer: how many days before start and before end they
// last bought, and whether they bought during the period. Idle times only meet windows
// of at most kMaxChurnWindow days, so they saturate at kLongAgo without changing any
// answer; kNever means no purchase. Purchases on or after end are ignored.
constexpr std::int32_t kLongAgo = kMaxChurnWindow + 1;
constexpr std::int32_t kNever = kMaxChurnWindow + 2;

struct CustomerIdle {
    std::int32_t idle_at_start = kNever;  // start - last purchase before start
    std::int32_t idle_at_end = kNever;    // end - last purchase before end
    bool bought_during = false;
};

void observe(CustomerIdle& idle, Day purchase, const ChurnPeriod& period);
void merge(CustomerIdle& into, const CustomerIdle& other);

// A customer's idle times and the period's windows in one 64-bit value, so that step 1's
// aggregate state is a by-value bigint: no allocation per customer, and a text form that
// round-trips (what Citus needs to ship partial states). Any 64-bit value unpacks to
// in-range fields; `initialized` is false for 0, the state before the first row.
struct PackedIdle {
    bool initialized;
    CustomerIdle idle;
    std::int32_t inactive_days;
    std::int32_t lapsed_days;
};

std::int64_t pack(const PackedIdle& state);
PackedIdle unpack(std::int64_t packed);

// The state of a customer's first row: the windows, and no purchase seen yet.
PackedIdle first_state(std::int32_t inactive_days, std::int32_t lapsed_days);

enum ChurnFlag : std::int32_t {
    kBase = 1,         // new, active, at_risk or inactive at start
    kChurned = 2,      // in the base and lapsed at end
    kReactivated = 4,  // inactive or lapsed at start, bought during the period
    kNew = 8,          // first purchase during the period
};

// Only the period's windows matter here: the idle times are already relative to it.
std::int32_t classify(const CustomerIdle& idle, std::int32_t inactive_days, std::int32_t lapsed_days);

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
