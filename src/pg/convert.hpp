// Conversions between PostgreSQL values and core values, in plain C (they may ereport).
#pragma once

#include "core/calendar.hpp"
#include "core/policy.hpp"
#include "pg/postgres_headers.hpp"

namespace lifecycle::pg {

// A PostgreSQL date is already a core Day (same epoch); infinite dates are refused with
// SQLSTATE 22008 naming the argument. The core checks the supported range.
Day to_day(DateADT date, const char* argument);

// The argument as a finite float8; NaN or infinity is refused with 22023 naming it.
double finite_arg(double value, const char* argument);

// The namespace "lifecycle", where the extension lives (it is not relocatable).
Oid extension_namespace();

// A policy from lifecycle.policies by name (22023 when there is no such policy).
// Validated by the core before it is returned.
Policy lookup_policy(const char* name);

// A policy cached in a function's fn_extra, looked up again only when the name changes.
struct PolicyCache {
    bool valid;
    char name[NAMEDATALEN * 2];
    Policy policy;
};

const Policy& cached_policy(PolicyCache* cache, text* name);

}  // namespace lifecycle::pg
