// Pareto/NBD in SQL: the fit's final function (the aggregate shares BG/NBD's transition,
// combine, serialize and deserialize functions and state, src/pg/fit_state.hpp) and the
// scores of one customer. A fitted model is passed as its composite value
// (lifecycle.pareto_nbd_model); every argument is checked and a bad one is an ERROR naming
// it (22023), never a NaN.
#include <cmath>
#include <vector>

#include "core/interrupt.hpp"
#include "core/pareto_nbd.hpp"
#include "pg/convert.hpp"
#include "pg/fit_state.hpp"
#include "pg/guard.hpp"

namespace pnbd = lifecycle::pareto_nbd;

namespace {

using lifecycle::pg::FitState;

pnbd::Fit fit_pareto_nbd(const FitState& state) {
    std::vector<pnbd::Row> rows;
    rows.reserve(static_cast<size_t>(state.count));
    for (int64 i = 0; i < state.count; ++i) {
        lifecycle::check_interrupts_every(static_cast<uint64>(i));
        const double* v = state.rows[i].v;
        rows.push_back({{v[0], v[1], v[2]}, 1.0});
    }
    lifecycle::mle::FitOptions options;
    options.penalizer = state.penalizer > 0 ? state.penalizer : 0;
    return pnbd::fit(rows, options);  // merges and sorts: any split of the rows, one answer
}

double model_field(HeapTupleHeader model, int attno) {
    bool isnull = false;
    Datum value = GetAttributeByNum(model, static_cast<AttrNumber>(attno), &isnull);
    if (isnull)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("argument \"model\" has a NULL parameter")));
    return lifecycle::pg::finite_arg(DatumGetFloat8(value), "model");
}

pnbd::Params model_at(FunctionCallInfo fcinfo, int arg) {
    HeapTupleHeader model = PG_GETARG_HEAPTUPLEHEADER(arg);
    pnbd::Params params{model_field(model, 1), model_field(model, 2), model_field(model, 3),
                        model_field(model, 4)};
    pnbd::validate(params);
    return params;
}

// (frequency, recency, t) from arguments `first` .. `first + 2`.
pnbd::Customer customer_at(FunctionCallInfo fcinfo, int first) {
    pnbd::Customer customer{lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(first), "frequency"),
                            lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(first + 1), "recency"),
                            lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(first + 2), "t")};
    pnbd::validate(customer);
    return customer;
}

Datum finite_result(double value, const char* function) {
    if (!std::isfinite(value))
        ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                        errmsg("%s: the result is not a finite number for these arguments", function)));
    return Float8GetDatum(value);
}

}  // namespace

// -> lifecycle.pareto_nbd_model (r, alpha, s, beta, log_likelihood, customers, evaluations, converged)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_fit_final) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const FitState* state = reinterpret_cast<FitState*>(PG_GETARG_POINTER(0));
    static const Oid columns[] = {FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
                                  INT8OID,   INT4OID,   BOOLOID};
    TupleDesc desc = lifecycle::pg::result_descriptor(fcinfo, columns, 8, "lifecycle.pareto_nbd_model");
    const pnbd::Fit fit = fit_pareto_nbd(*state);
    Datum values[8] = {Float8GetDatum(fit.params.r), Float8GetDatum(fit.params.alpha),
                       Float8GetDatum(fit.params.s), Float8GetDatum(fit.params.beta),
                       Float8GetDatum(fit.log_likelihood), Int64GetDatum(state->count),
                       Int32GetDatum(fit.evaluations), BoolGetDatum(fit.converged)};
    bool nulls[8] = {false, false, false, false, false, false, false, false};
    PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

// p_alive(model, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_p_alive) {
    const pnbd::Params params = model_at(fcinfo, 0);
    return finite_result(pnbd::probability_alive(params, customer_at(fcinfo, 1)), "p_alive");
}

// expected_purchases(model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_expected_purchases) {
    const pnbd::Params params = model_at(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(pnbd::expected_purchases(params, customer_at(fcinfo, 2), horizon),
                         "expected_purchases");
}

// probability_no_purchase(model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_probability_no_purchase) {
    const pnbd::Params params = model_at(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(pnbd::probability_no_purchase(params, customer_at(fcinfo, 2), horizon),
                         "probability_no_purchase");
}

// pareto_nbd_log_likelihood(r, alpha, s, beta, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_log_likelihood) {
    const pnbd::Params params{lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(0), "r"),
                              lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "alpha"),
                              lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(2), "s"),
                              lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(3), "beta")};
    pnbd::validate(params);
    return finite_result(pnbd::log_likelihood(params, customer_at(fcinfo, 4)), "pareto_nbd_log_likelihood");
}
