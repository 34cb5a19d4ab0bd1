// Churn aggregates, in two steps (see core/churn.hpp):
//   churn_status(order_date, period_start, period_end, ...)  per customer -> integer flags
//   churn_rate(flags), churn_counts(flags)                   over customers
// Both transition states are ordinary SQL arrays (integer[] and bigint[]) updated in
// place, with combine functions: parallel query splits them, and so does Citus, which
// ships such states between nodes as text.
#include "core/churn.hpp"
#include "pg/convert.hpp"
#include "pg/guard.hpp"

using lifecycle::ChurnCounts;
using lifecycle::ChurnPeriod;
using lifecycle::CustomerDays;

namespace {

// churn_status state, integer[8]: {initialized, start, end, inactive_days, lapsed_days,
// first, last_before_start, last_before_end}.
constexpr int kStatusLength = 8;
// churn_rate / churn_counts state, bigint[4]: {base, churned, reactivated, new}.
constexpr int kCountsLength = 4;

// The state array of argument `argno`, checked (it can come from a user's hand), and
// copied unless the aggregate owns it and may change it in place.
ArrayType* state_array(FunctionCallInfo fcinfo, int argno, Oid element, int length) {
    ArrayType* array = AggCheckCallContext(fcinfo, nullptr) ? PG_GETARG_ARRAYTYPE_P(argno)
                                                            : PG_GETARG_ARRAYTYPE_P_COPY(argno);
    if (ARR_NDIM(array) != 1 || ARR_DIMS(array)[0] != length || ARR_HASNULL(array) ||
        ARR_ELEMTYPE(array) != element)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"state\" is not a lifecycle churn state: expected %d "
                               "non-NULL elements", length)));
    return array;
}

struct StatusState {
    int32 initialized, start, end, inactive_days, lapsed_days, first, last_before_start, last_before_end;
};
static_assert(sizeof(StatusState) == kStatusLength * sizeof(int32), "integer[8] layout");

StatusState* status_of(ArrayType* array) { return reinterpret_cast<StatusState*>(ARR_DATA_PTR(array)); }

ChurnPeriod period_of(const StatusState* s) {
    return ChurnPeriod{s->start, s->end, s->inactive_days, s->lapsed_days};
}

CustomerDays days_of(const StatusState* s) {
    return CustomerDays{s->first, s->last_before_start, s->last_before_end};
}

void store_days(StatusState* s, const CustomerDays& days) {
    s->first = days.first;
    s->last_before_start = days.last_before_start;
    s->last_before_end = days.last_before_end;
}

void start_state(StatusState* s, const ChurnPeriod& period) {
    lifecycle::validate(period);
    s->initialized = 1;
    s->start = period.start;
    s->end = period.end;
    s->inactive_days = period.inactive_days;
    s->lapsed_days = period.lapsed_days;
    store_days(s, CustomerDays{});
}

// Where a customer's first row finds the windows: its arguments or a named policy.
using WindowsSource = void (*)(FunctionCallInfo fcinfo, int32* inactive_days, int32* lapsed_days);

// The shared transition: args (state, order_date, period_start, period_end, ...). The
// period and windows are read on the group's first row only.
Datum status_step(FunctionCallInfo fcinfo, WindowsSource windows) {
    ArrayType* array = state_array(fcinfo, 0, INT4OID, kStatusLength);
    StatusState* s = status_of(array);
    if (!s->initialized) {
        int32 inactive_days, lapsed_days;
        windows(fcinfo, &inactive_days, &lapsed_days);
        start_state(s, ChurnPeriod{lifecycle::pg::to_day(PG_GETARG_DATEADT(2), "period_start"),
                                   lifecycle::pg::to_day(PG_GETARG_DATEADT(3), "period_end"),
                                   inactive_days, lapsed_days});
    }
    CustomerDays days = days_of(s);
    lifecycle::observe(days, lifecycle::pg::to_day(PG_GETARG_DATEADT(1), "order_date"), period_of(s));
    store_days(s, days);
    PG_RETURN_ARRAYTYPE_P(array);
}

void windows_from_arguments(FunctionCallInfo fcinfo, int32* inactive_days, int32* lapsed_days) {
    *inactive_days = PG_GETARG_INT32(4);
    *lapsed_days = PG_GETARG_INT32(5);
}

// The windows of a named policy, cached per call site.
void windows_of_policy(FunctionCallInfo fcinfo, text* name, int32* inactive_days, int32* lapsed_days) {
    if (fcinfo->flinfo->fn_extra == nullptr)
        fcinfo->flinfo->fn_extra =
            MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(lifecycle::pg::PolicyCache));
    const lifecycle::Policy& policy = lifecycle::pg::cached_policy(
        static_cast<lifecycle::pg::PolicyCache*>(fcinfo->flinfo->fn_extra), name);
    *inactive_days = policy.inactive_days;
    *lapsed_days = policy.lapsed_days;
}

void windows_from_policy_argument(FunctionCallInfo fcinfo, int32* inactive_days, int32* lapsed_days) {
    windows_of_policy(fcinfo, PG_GETARG_TEXT_PP(4), inactive_days, lapsed_days);
}

void windows_from_default_policy(FunctionCallInfo fcinfo, int32* inactive_days, int32* lapsed_days) {
    windows_of_policy(fcinfo, cstring_to_text("default"), inactive_days, lapsed_days);
}

bool same_period(const StatusState* a, const StatusState* b) {
    return a->start == b->start && a->end == b->end && a->inactive_days == b->inactive_days &&
           a->lapsed_days == b->lapsed_days;
}

struct CountsState {
    int64 base, churned, reactivated, new_customers;
};
static_assert(sizeof(CountsState) == kCountsLength * sizeof(int64), "bigint[4] layout");

CountsState* counts_of(ArrayType* array) { return reinterpret_cast<CountsState*>(ARR_DATA_PTR(array)); }

ChurnCounts read_counts(const CountsState* s) {
    return ChurnCounts{s->base, s->churned, s->reactivated, s->new_customers};
}

void store_counts(CountsState* s, const ChurnCounts& counts) {
    s->base = counts.base;
    s->churned = counts.churned;
    s->reactivated = counts.reactivated;
    s->new_customers = counts.new_customers;
}

}  // namespace

// churn_status(order_date, period_start, period_end, inactive_days, lapsed_days)
LIFECYCLE_FUNCTION(lifecycle_churn_status_transfn) {
    return status_step(fcinfo, windows_from_arguments);
}

// churn_status(order_date, period_start, period_end, policy text)
LIFECYCLE_FUNCTION(lifecycle_churn_status_policy_transfn) {
    return status_step(fcinfo, windows_from_policy_argument);
}

// churn_status(order_date, period_start, period_end): the "default" policy
LIFECYCLE_FUNCTION(lifecycle_churn_status_default_transfn) {
    return status_step(fcinfo, windows_from_default_policy);
}

LIFECYCLE_FUNCTION(lifecycle_churn_status_combine) {
    ArrayType* into = state_array(fcinfo, 0, INT4OID, kStatusLength);
    ArrayType* other = state_array(fcinfo, 1, INT4OID, kStatusLength);
    StatusState* a = status_of(into);
    const StatusState* b = status_of(other);
    if (!b->initialized) PG_RETURN_ARRAYTYPE_P(into);
    if (!a->initialized) {
        *a = *b;
        PG_RETURN_ARRAYTYPE_P(into);
    }
    if (!same_period(a, b))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("churn_status: partial states of different periods cannot be combined")));
    CustomerDays days = days_of(a);
    lifecycle::merge(days, days_of(b));
    store_days(a, days);
    PG_RETURN_ARRAYTYPE_P(into);
}

LIFECYCLE_FUNCTION(lifecycle_churn_status_final) {
    ArrayType* array = state_array(fcinfo, 0, INT4OID, kStatusLength);
    const StatusState* s = status_of(array);
    if (!s->initialized) PG_RETURN_NULL();
    const ChurnPeriod period = period_of(s);
    lifecycle::validate(period);  // the state may have come from outside
    PG_RETURN_INT32(lifecycle::classify(days_of(s), period));
}

LIFECYCLE_FUNCTION(lifecycle_churn_counts_transfn) {
    ArrayType* array = state_array(fcinfo, 0, INT8OID, kCountsLength);
    ChurnCounts counts = read_counts(counts_of(array));
    lifecycle::add_flags(counts, PG_GETARG_INT32(1));
    store_counts(counts_of(array), counts);
    PG_RETURN_ARRAYTYPE_P(array);
}

LIFECYCLE_FUNCTION(lifecycle_churn_counts_combine) {
    ArrayType* into = state_array(fcinfo, 0, INT8OID, kCountsLength);
    ArrayType* other = state_array(fcinfo, 1, INT8OID, kCountsLength);
    ChurnCounts counts = read_counts(counts_of(into));
    lifecycle::merge(counts, read_counts(counts_of(other)));
    store_counts(counts_of(into), counts);
    PG_RETURN_ARRAYTYPE_P(into);
}

LIFECYCLE_FUNCTION(lifecycle_churn_rate_final) {
    ArrayType* array = state_array(fcinfo, 0, INT8OID, kCountsLength);
    const ChurnCounts counts = read_counts(counts_of(array));
    if (counts.base <= 0) PG_RETURN_NULL();
    PG_RETURN_FLOAT8(static_cast<double>(counts.churned) / static_cast<double>(counts.base));
}

// churn_counts -> lifecycle.churn_counts (base, churned, retained, reactivated, new,
// churn_rate, retention)
LIFECYCLE_FUNCTION(lifecycle_churn_counts_final) {
    ArrayType* array = state_array(fcinfo, 0, INT8OID, kCountsLength);
    const ChurnCounts counts = read_counts(counts_of(array));
    static const Oid columns[] = {INT8OID, INT8OID, INT8OID, INT8OID, INT8OID, FLOAT8OID, FLOAT8OID};
    TupleDesc desc = lifecycle::pg::result_descriptor(fcinfo, columns, 7, "lifecycle.churn_counts");
    Datum values[7];
    bool nulls[7] = {false, false, false, false, false, counts.base <= 0, counts.base <= 0};
    values[0] = Int64GetDatum(counts.base);
    values[1] = Int64GetDatum(counts.churned);
    values[2] = Int64GetDatum(counts.base - counts.churned);
    values[3] = Int64GetDatum(counts.reactivated);
    values[4] = Int64GetDatum(counts.new_customers);
    if (counts.base > 0) {
        const double rate = static_cast<double>(counts.churned) / static_cast<double>(counts.base);
        values[5] = Float8GetDatum(rate);
        values[6] = Float8GetDatum(1.0 - rate);
    }
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
