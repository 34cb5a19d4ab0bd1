// MBG/NBD in SQL: the final function of mbgnbd_fit (the aggregate shares bgnbd_fit's
// transition, combine, serialize and deserialize functions and their state,
// pg/fit_state.hpp), its scores for one customer, and probability_no_purchase for both
// MBG/NBD and BG/NBD. Every argument is checked; a bad one is an ERROR naming it (22023),
// never a NaN.
#include "core/bgnbd.hpp"
#include "core/mbgnbd.hpp"
#include "pg/convert.hpp"
#include "pg/model_args.hpp"
#include "pg/guard.hpp"

namespace bgnbd = lifecycle::bgnbd;
namespace mbgnbd = lifecycle::mbgnbd;

using lifecycle::pg::customer_at;
using lifecycle::pg::finite_result;
using lifecycle::pg::FitState;
using lifecycle::pg::four_parameter_model;

// -> lifecycle.mbgnbd_model (r, alpha, a, b, log_likelihood, customers, evaluations, converged)
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_fit_final) {
    if (PG_ARGISNULL(0)) PG_RETURN_NULL();
    const FitState* state = reinterpret_cast<FitState*>(PG_GETARG_POINTER(0));
    const mbgnbd::Fit fit = mbgnbd::fit(lifecycle::pg::state_rows(*state), lifecycle::pg::state_options(*state));
    const double params[4] = {fit.params.r, fit.params.alpha, fit.params.a, fit.params.b};
    PG_RETURN_DATUM(lifecycle::pg::four_parameter_fit(fcinfo, "lifecycle.mbgnbd_model", params,
                                                      fit.log_likelihood, state->count,
                                                      fit.evaluations, fit.converged));
}

// p_alive(mbgnbd_model, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_p_alive) {
    const auto params = four_parameter_model<mbgnbd::Params>(fcinfo, 0);
    return finite_result(mbgnbd::probability_alive(params, customer_at(fcinfo, 1)), "p_alive");
}

// expected_purchases(mbgnbd_model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_expected_purchases) {
    const auto params = four_parameter_model<mbgnbd::Params>(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(mbgnbd::expected_purchases(params, customer_at(fcinfo, 2), horizon),
                         "expected_purchases");
}

// probability_no_purchase(mbgnbd_model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_mbgnbd_probability_no_purchase) {
    const auto params = four_parameter_model<mbgnbd::Params>(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(mbgnbd::probability_no_purchase(params, customer_at(fcinfo, 2), horizon),
                         "probability_no_purchase");
}

// probability_no_purchase(bgnbd_model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_bgnbd_probability_no_purchase) {
    const auto params = four_parameter_model<bgnbd::Params>(fcinfo, 0);
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
