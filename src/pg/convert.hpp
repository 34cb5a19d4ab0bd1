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

// The function's composite result type, blessed, after checking that it still has the
// columns (count and types) the caller fills: an extension type altered by hand would
// otherwise be written past its end. SQLSTATE 42804 when it does not.
TupleDesc result_descriptor(FunctionCallInfo fcinfo, const Oid* types, int count, const char* type_name);

// A policy from lifecycle.policies by name (22023 when there is no such policy).
// Validated by the core before it is returned.
Policy lookup_policy(const char* name);

// Policies cached in a function's fn_extra (zeroed memory), so that a query reads each
// policy it names once, even when rows alternate between a few policies.
constexpr int kCachedPolicies = 8;
constexpr int kPolicyNameMax = 127;

struct CachedPolicy {
    bool valid;
    char name[kPolicyNameMax + 1];
    Policy policy;
};

struct PolicyCache {
    CachedPolicy entry[kCachedPolicies];
    int next_victim;
};

const Policy& cached_policy(PolicyCache* cache, text* name);

}  // namespace lifecycle::pg
