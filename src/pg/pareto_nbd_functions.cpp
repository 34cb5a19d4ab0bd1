// Pareto/NBD in SQL: the fit's final function (the aggregate shares BG/NBD's transition,
// combine, serialize and deserialize functions and state, src/pg/fit_state.hpp) and the
// scores of one customer. A fitted model is passed as its composite value
// (lifecycle.pareto_nbd_model); every argument is checked and a bad one is an ERROR naming
// it (22023), never a NaN.
#include "core/pareto_nbd.hpp"
#include "pg/convert.hpp"
#include "pg/model_args.hpp"
#include "pg/guard.hpp"

namespace pnbd = lifecycle::pareto_nbd;

using lifecycle::pg::customer_at;
using lifecycle::pg::finite_result;
using lifecycle::pg::FitState;
using lifecycle::pg::four_parameter_model;

// -> lifecycle.pareto_nbd_model (r, alpha, s, beta, log_likelihood, customers, evaluations, converged)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_fit_final) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const FitState* state = reinterpret_cast<FitState*>(PG_GETARG_POINTER(0));
    // merges and sorts: any split of the rows, one answer
    const pnbd::Fit fit = pnbd::fit(lifecycle::pg::state_rows(*state), lifecycle::pg::state_options(*state));
    const double params[4] = {fit.params.r, fit.params.alpha, fit.params.s, fit.params.beta};
    PG_RETURN_DATUM(lifecycle::pg::four_parameter_fit(fcinfo, "lifecycle.pareto_nbd_model", params,
                                                      fit.log_likelihood, state->count,
                                                      fit.evaluations, fit.converged));
}

// p_alive(model, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_p_alive) {
    const pnbd::Params params = four_parameter_model<pnbd::Params>(fcinfo, 0);
    return finite_result(pnbd::probability_alive(params, customer_at(fcinfo, 1)), "p_alive");
}

// expected_purchases(model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_expected_purchases) {
    const pnbd::Params params = four_parameter_model<pnbd::Params>(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(pnbd::expected_purchases(params, customer_at(fcinfo, 2), horizon),
                         "expected_purchases");
}

// probability_no_purchase(model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_pareto_nbd_probability_no_purchase) {
    const pnbd::Params params = four_parameter_model<pnbd::Params>(fcinfo, 0);
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
