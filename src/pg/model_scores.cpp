// Scores of the predictive models for one customer: P(alive), expected purchases,
// expected order value, lifetime value, and the per-customer BG/NBD log-likelihood.
// A fitted model is passed as its composite value (lifecycle.bgnbd_model,
// lifecycle.gamma_gamma_model); every argument is checked and a bad one is an ERROR
// naming it (22023), never a NaN.
#include <cmath>

#include "core/bgnbd.hpp"
#include "core/gamma_gamma.hpp"
#include "core/lifetime_value.hpp"
#include "pg/convert.hpp"
#include "pg/guard.hpp"
#include "pg/model_args.hpp"

namespace bgnbd = lifecycle::bgnbd;
namespace gamma_gamma = lifecycle::gamma_gamma;

namespace {

using lifecycle::pg::customer_at;
using lifecycle::pg::finite_result;
using lifecycle::pg::model_field;


bgnbd::Params bgnbd_model(FunctionCallInfo fcinfo, int arg) {
    return lifecycle::pg::four_parameter_model<bgnbd::Params>(fcinfo, arg);
}

gamma_gamma::Params gamma_gamma_model(FunctionCallInfo fcinfo, int arg, const char* argument) {
    HeapTupleHeader model = PG_GETARG_HEAPTUPLEHEADER(arg);
    gamma_gamma::Params params{model_field(model, 1, argument), model_field(model, 2, argument),
                               model_field(model, 3, argument)};
    gamma_gamma::validate(params);
    return params;
}



}  // namespace

// p_alive(model, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_p_alive) {
    const bgnbd::Params params = bgnbd_model(fcinfo, 0);
    return finite_result(bgnbd::probability_alive(params, customer_at(fcinfo, 1)), "p_alive");
}

// expected_purchases(model, horizon, frequency, recency, t)
LIFECYCLE_FUNCTION(lifecycle_expected_purchases) {
    const bgnbd::Params params = bgnbd_model(fcinfo, 0);
    const double horizon = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "horizon");
    return finite_result(bgnbd::expected_purchases(params, customer_at(fcinfo, 2), horizon),
                         "expected_purchases");
}

// expected_order_value(model, frequency, monetary_value)
LIFECYCLE_FUNCTION(lifecycle_expected_order_value) {
    const gamma_gamma::Params params = gamma_gamma_model(fcinfo, 0, "model");
    const gamma_gamma::Customer customer{
        lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "frequency"),
        lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(2), "monetary_value")};
    return finite_result(gamma_gamma::expected_average_value(params, customer), "expected_order_value");
}

// customer_lifetime_value(purchases, spend, frequency, recency, t, monetary_value,
//                         horizon, steps, discount_rate)
LIFECYCLE_FUNCTION(lifecycle_customer_lifetime_value) {
    const bgnbd::Params purchases = bgnbd_model(fcinfo, 0);
    const gamma_gamma::Params spend = gamma_gamma_model(fcinfo, 1, "spend");
    const bgnbd::Customer customer = customer_at(fcinfo, 2);
    const double zbar = lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(5), "monetary_value");
    const lifecycle::ClvHorizon horizon{lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(6), "horizon"),
                                        PG_GETARG_INT32(7),
                                        lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(8), "discount_rate")};
    return finite_result(lifecycle::customer_lifetime_value(purchases, spend, customer, zbar, horizon),
                         "customer_lifetime_value");
}

// bgnbd_log_likelihood(r, alpha, a, b, frequency, recency, t): eq. (6) for one customer.
LIFECYCLE_FUNCTION(lifecycle_bgnbd_log_likelihood) {
    const bgnbd::Params params{lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(0), "r"),
                               lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(1), "alpha"),
                               lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(2), "a"),
                               lifecycle::pg::finite_arg(PG_GETARG_FLOAT8(3), "b")};
    bgnbd::validate(params);
    return finite_result(bgnbd::log_likelihood(params, customer_at(fcinfo, 4)), "bgnbd_log_likelihood");
}
