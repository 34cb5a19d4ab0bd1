// The MBG/NBD model (Batislam, Denizel & Filiztekin 2007, "Empirical validation and
// comparison of models for customer base analysis"): BG/NBD's purchases (a Poisson
// process with rate λ ~ Gamma(r, α) while alive) and dropout (probability p ~ Beta(a, b)
// after a purchase), except that the first purchase counts too: a customer may drop out
// right after it, at time 0. So a customer who never came back is not certainly alive,
// as BG/NBD has it, and P(alive) falls with T for them as well.
//
// Customers are summarized as for BG/NBD (x, t_x, T; bgnbd::Customer), and fitted the
// same way (rows merged by bgnbd::compress, times rescaled, L-BFGS through mle.hpp).
// Everything is computed in log space.
#pragma once
#include "core/no_postgres.hpp"

#include <array>
#include <vector>

#include "core/bgnbd.hpp"
#include "core/mle.hpp"

namespace lifecycle::mbgnbd {

struct Params {
    double r;
    double alpha;
    double a;
    double b;
};

using Customer = bgnbd::Customer;
using Row = bgnbd::Row;

// Throw invalid_parameter naming the offending argument.
void validate(const Params& params);

// ∂/∂r, ∂/∂α, ∂/∂a, ∂/∂b
using Gradient = std::array<double, 4>;

// log L(r, α, a, b | x, t_x, T) with, for every x including 0,
//   L = B(a, b+x+1)/B(a, b) Γ(r+x)/Γ(r) α^r (α+T)^−(r+x)          (alive at T)
//     + B(a+1, b+x)/B(a, b) Γ(r+x)/Γ(r) α^r (α+t_x)^−(r+x)         (dropped at t_x);
// with `gradient`, also its gradient.
double log_likelihood(const Params& params, const Customer& customer, Gradient* gradient = nullptr);

// P(alive | x, t_x, T) = 1 / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x)), < 1 also when x = 0.
double probability_alive(const Params& params, const Customer& customer);

// E[Y(t) | x, t_x, T]: expected purchases in the next t time units,
//   (a+b+x)/(a−1) [1 − ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x+1; a+b+x; t/(α+T+t))] P(alive)
// (the posterior of an alive customer is λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x+1)).
// Same limits on t as bgnbd::expected_purchases.
double expected_purchases(const Params& params, const Customer& customer, double t);

// P(Y(t) = 0 | x, t_x, T) = 1 − P(alive) + P(alive) ((α+T)/(α+T+t))^(r+x).
double probability_no_purchase(const Params& params, const Customer& customer, double t);

// The weighted sum of the rows' log-likelihoods (and gradients); rows sorted by x are faster.
double log_likelihood(const Params& params, const std::vector<Row>& rows, Gradient* gradient = nullptr);

struct Fit {
    Params params;
    double log_likelihood;  // at params, without the penalty
    int evaluations;
    bool converged;
};

// Maximum likelihood, as bgnbd::fit (times rescaled so that the longest T is 10; the
// penalizer applies in that unit). Throws invalid_parameter when the data cannot identify
// the model: no customers, a single one, or no repeat buyer (then everybody seems to drop
// out at once, a/(a+b) → 1).
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options = {});

}  // namespace lifecycle::mbgnbd
