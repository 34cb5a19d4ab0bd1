// The Pareto/NBD model of repeat buying (Schmittlein, Morrison & Colombo 1987, "Counting
// Your Customers: Who Are They and What Will They Do Next?"): while alive, a customer buys
// as a Poisson process with rate λ ~ Gamma(r, α); their lifetime is exponential with rate
// μ ~ Gamma(s, β), λ and μ independent. A customer is summarized as for BG/NBD by x
// (repeat purchases), t_x (time of the last purchase, from the first) and T (time from the
// first purchase to the end of the calibration period); α and β are in that time unit.
//
// The likelihood is the sum of two positive terms (Fader & Hardie 2005, "A Note on
// Deriving the Pareto/NBD Model and Related Expressions", eqs. 22-23), computed in log
// space so that frequencies in the thousands neither overflow nor underflow; see
// pareto_nbd.cpp for the derivation and for how the Gauss hypergeometric function is
// evaluated.
#pragma once
#include "core/no_postgres.hpp"

#include <array>
#include <vector>

#include "core/bgnbd.hpp"
#include "core/mle.hpp"

namespace lifecycle::pareto_nbd {

struct Params {
    double r;
    double alpha;
    double s;
    double beta;
};

// The same customer summary, checks, rows and merging as BG/NBD (the fit aggregates share
// their state): x a whole number >= 0, 0 <= t_x <= T, t_x = 0 exactly when x = 0.
using Customer = bgnbd::Customer;
using Row = bgnbd::Row;
using bgnbd::compress;
using bgnbd::validate;

// Throws invalid_parameter naming the offending parameter.
void validate(const Params& params);

// ∂/∂r, ∂/∂α, ∂/∂s, ∂/∂β
using Gradient = std::array<double, 4>;

// log L(r, α, s, β | x, t_x, T).
double log_likelihood(const Params& params, const Customer& customer);

// The weighted sum of the rows' log-likelihoods. With `gradient`, also its gradient, by
// central differences (see pareto_nbd.cpp).
double log_likelihood(const Params& params, const std::vector<Row>& rows, Gradient* gradient = nullptr);

// P(alive at T | x, t_x, T); churn risk is 1 − this.
double probability_alive(const Params& params, const Customer& customer);

// E[Y(t) | x, t_x, T]: expected purchases in the next t time units (any s > 0).
double expected_purchases(const Params& params, const Customer& customer, double t);

// P(Y(t) = 0 | x, t_x, T): no purchase in the next t time units, whether the customer is
// dead at T, stays alive without buying, or drops out before buying.
double probability_no_purchase(const Params& params, const Customer& customer, double t);

struct Fit {
    Params params;
    double log_likelihood;  // at params, without the penalty
    int evaluations;
    bool converged;
};

// Maximum likelihood, as bgnbd::fit: rows merged by compress(), times rescaled so that
// the longest T is 10 (the penalizer applies to r, s and to α, β in that unit). Throws
// invalid_parameter without customers, with a single one, or without a repeat buyer.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options = {});

}  // namespace lifecycle::pareto_nbd
