// Churn aggregates, in two steps (see core/churn.hpp):
//   churn_status(order_date, period_start, period_end, ...)  per customer -> integer flags
//   churn_rate(flags), churn_counts(flags)                   over customers
// Step 1's state is a by-value bigint (core pack()); step 2's an ordinary bigint[] updated
// in place. Both have combine functions: parallel query splits them, and so does Citus,
// which ships such states between nodes as text.
#include "core/churn.hpp"
#include "pg/convert.hpp"
#include "pg/guard.hpp"

using lifecycle::ChurnCounts;
using lifecycle::ChurnPeriod;
using lifecycle::PackedIdle;

namespace {

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

// Where a customer's rows find the windows: the arguments or a named policy.
using WindowsSource = void (*)(FunctionCallInfo fcinfo, int32* inactive_days, int32* lapsed_days);

// The shared transition: args (state bigint, order_date, period_start, period_end, ...).
// The period is the same on every row of a group (as documented); it and the windows
// are checked on the group's first row. Later rows cannot break anything if it is not:
// observe() only subtracts a purchase from a later day and saturates.
Datum status_step(FunctionCallInfo fcinfo, WindowsSource windows) {
    PackedIdle state = lifecycle::unpack(PG_GETARG_INT64(0));
    const ChurnPeriod period{lifecycle::pg::to_day(PG_GETARG_DATEADT(2), "period_start"),
                             lifecycle::pg::to_day(PG_GETARG_DATEADT(3), "period_end"), 0, 0};
    if (!state.initialized) {
        int32 inactive_days, lapsed_days;
        windows(fcinfo, &inactive_days, &lapsed_days);
        lifecycle::validate(ChurnPeriod{period.start, period.end, inactive_days, lapsed_days});
        state = lifecycle::first_state(inactive_days, lapsed_days);
    }
    lifecycle::observe(state.idle, lifecycle::pg::to_day(PG_GETARG_DATEADT(1), "order_date"), period);
    PG_RETURN_INT64(lifecycle::pack(state));
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
    PackedIdle into = lifecycle::unpack(PG_GETARG_INT64(0));
    const PackedIdle other = lifecycle::unpack(PG_GETARG_INT64(1));
    if (!other.initialized) PG_RETURN_INT64(lifecycle::pack(into));
    if (!into.initialized) PG_RETURN_INT64(lifecycle::pack(other));
    if (into.inactive_days != other.inactive_days || into.lapsed_days != other.lapsed_days)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("churn_status: partial states with different windows cannot be combined")));
    lifecycle::merge(into.idle, other.idle);
    PG_RETURN_INT64(lifecycle::pack(into));
}

LIFECYCLE_FUNCTION(lifecycle_churn_status_final) {
    const PackedIdle state = lifecycle::unpack(PG_GETARG_INT64(0));
    if (!state.initialized) PG_RETURN_NULL();
    PG_RETURN_INT32(lifecycle::classify(state.idle, state.inactive_days, state.lapsed_days));
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
