// The Gamma–Gamma model of spend per transaction (Fader & Hardie 2013, "The Gamma-Gamma
// Model of Monetary Value"): a customer's transaction values are Gamma(p, ν) with
// ν ~ Gamma(q, γ) across customers, independent of their purchase counts. A repeat buyer
// is summarized by x (repeat purchases) and zbar (their mean value, the first purchase
// excluded, as in the `lifetimes` summary); γ is in the currency's unit.
#pragma once
#include "core/no_postgres.hpp"

#include <array>
#include <vector>

#include "core/mle.hpp"

namespace lifecycle::gamma_gamma {

struct Params {
    double p;
    double q;
    double gamma;
};

struct Customer {
    double x;     // repeat purchases: a whole number >= 0
    double zbar;  // mean value of those purchases
};

// Throws invalid_parameter naming the offending argument.
void validate(const Params& params);

// ∂/∂p, ∂/∂q, ∂/∂γ
using Gradient = std::array<double, 3>;

// log f(zbar | x; p, q, γ), the density of a repeat buyer's mean value; with `gradient`,
// also its gradient. Needs x >= 1 and zbar > 0.
double log_likelihood(const Params& params, const Customer& customer, Gradient* gradient = nullptr);

// E[value of a transaction | x, zbar] = p (γ + x·zbar) / (p·x + q − 1); for x = 0 (zbar
// ignored) the population mean p·γ / (q − 1). Throws invalid_parameter when that mean is
// infinite (q + p·x <= 1, e.g. q <= 1 for a customer without repeat purchases) or zbar < 0.
double expected_average_value(const Params& params, const Customer& customer);

struct Row {
    Customer customer;
    double weight;  // number of such customers, >= 0
};

struct Fit {
    Params params;
    double log_likelihood;  // at params, over the repeat buyers, without the penalty
    int evaluations;
    bool converged;
};

// Maximum likelihood over the repeat buyers. Rows with x = 0 carry no information about
// spend and are skipped (their zbar is not looked at); every other row needs zbar > 0.
// Values are rescaled internally so that the weighted mean zbar is 1, so the penalizer
// applies to p, q and γ in that unit. Throws invalid_parameter with fewer than two repeat
// buyers. A fit that does not converge is returned with converged = false.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options = {});

}  // namespace lifecycle::gamma_gamma
