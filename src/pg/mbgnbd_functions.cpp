// MBG/NBD in SQL: the final function of mbgnbd_fit (the aggregate shares bgnbd_fit's
// transition, combine, serialize and deserialize functions and their state,
// pg/fit_state.hpp), its scores for one customer, and probability_no_purchase for both
// MBG/NBD and BG/NBD. Every argument is checked; a bad one is an ERROR naming it (22023),
// never a NaN.
#include <cmath>
#include <vector>

#include "core/bgnbd.hpp"
#include "core/interrupt.hpp"
#include "core/mbgnbd.hpp"
#include "pg/convert.hpp"
#include "pg/fit_state.hpp"
#include "pg/guard.hpp"

namespace bgnbd = lifecycle::bgnbd;
namespace mbgnbd = lifecycle::mbgnbd;

namespace {

using lifecycle::pg::FitState;

// The rows of the state in their order; the core merges identical customers in a fixed
// order, so any split of the rows among parallel workers gives the same fit.
mbgnbd::Fit fit_mbgnbd(const FitState& state) {
    std::vector<mbgnbd::Row> rows;
    rows.reserve(static_cast<size_t>(state.count));
    for (int64 i = 0; i < state.count; ++i) {
        lifecycle::check_interrupts_every(static_cast<uint64>(i));
        const double* v = state.rows[i].v;
        rows.push_back({{v[0], v[1], v[2]}, 1.0});
    }
    lifecycle::mle::FitOptions options;
    options.penalizer = state.penalizer > 0 ? state.penalizer : 0;
    return mbgnbd::fit(rows, options);
}

double model_field(HeapTupleHeader model, int attno) {
    bool isnull = false;
    Datum value = GetAttributeByNum(model, static_cast<AttrNumber>(attno), &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"model\" has a NULL parameter")));
    return lifecycle::pg::finite_arg(DatumGetFloat8(value), "model");
}

// (r, alpha, a, b): the first four fields of mbgnbd_model and of bgnbd_model.
template <typename Params>
Params model_params(FunctionCallInfo fcinfo, int arg) {
    HeapTupleHeader model = PG_GETARG_HEAPTUPLEHEADER(arg);
    Params params{model_field(model, 1), model_field(model, 2), model_field(model, 3), model_field(model, 4)};
    return params;
}

// (frequency, recency, t) from arguments `first` .. `first + 2`.
bgnbd::Customer customer_at(FunctionCallInfo fcinfo, int first) {
    bgnbd::Customer customer{lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(first), "frequency"),
                             lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(first + 1), "recency"),
                             lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(first + 2), "t")};
    bgnbd::validate(customer);
    return customer;
}

Datum finite_result(double value, const char* function) {
    if (!std::isfinite(value))
        ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                        errmsg("%s: the result is not a finite number for these arguments", function)));
    return Float8GetDatum(value);
}

}  // namespace

// -> lifecycle.mbgnbd_model (r, alpha, a, b, log_likelihood, customers, evaluations, converged)
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_fit_final) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const FitState* state = reinterpret_cast<FitState*>(PG_GETARG_POINTER(0));
    static const Oid columns[] = {FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
                                  INT8OID,   INT4OID,   BOOLOID};
    TupleDesc desc = lifecycle::pg::result_descriptor(fcinfo, columns, 8, "lifecycle.mbgnbd_model");
    const mbgnbd::Fit fit = fit_mbgnbd(*state);
    Datum values[8] = {Float8GetDatum(fit.params.r), Float8GetDatum(fit.params.alpha),
                       Float8GetDatum(fit.params.a), Float8GetDatum(fit.params.b),
                       Float8GetDatum(fit.log_likelihood), Int64GetDatum(state->count),
                       Int32GetDatum(fit.evaluations), BoolGetDatum(fit.converged)};
    bool nulls[8] = {false, false, false, false, false, false, false, false};
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

// p_alive(mbgnbd_model, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_p_alive) {
    const auto params = model_params<mbgnbd::Params>(fcinfo, 0);
    return finite_result(mbgnbd::probability_alive(params, customer_at(fcinfo, 1)), "p_alive");
}

// expected_purchases(mbgnbd_model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_expected_purchases) {
    const auto params = model_params<mbgnbd::Params>(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(mbgnbd::expected_purchases(params, customer_at(fcinfo, 2), horizon),
                         "expected_purchases");
}

// probability_no_purchase(mbgnbd_model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_probability_no_purchase) {
    const auto params = model_params<mbgnbd::Params>(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(mbgnbd::probability_no_purchase(params, customer_at(fcinfo, 2), horizon),
                         "probability_no_purchase");
}

// probability_no_purchase(bgnbd_model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_bgnbd_probability_no_purchase) {
    const auto params = model_params<bgnbd::Params>(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(bgnbd::probability_no_purchase(params, customer_at(fcinfo, 2), horizon),
                         "probability_no_purchase");
}

// mbgnbd_log_likelihood(r, alpha, a, b, frequency, recency, t): one customer.
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_log_likelihood) {
    const mbgnbd::Params params{lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(0), "r"),
                                lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "alpha"),
                                lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(2), "a"),
                                lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(3), "b")};
    return finite_result(mbgnbd::log_likelihood(params, customer_at(fcinfo, 4)), "mbgnbd_log_likelihood");
}
