// Customer lifetime value from the two predictive models: BG/NBD for how many purchases,
// Gamma–Gamma for how much each is worth (DESIGN.md, "Churn risk and value (predictive)").
#pragma once
#include "core/no_postgres.hpp"

#include "core/bgnbd.hpp"
#include "core/gamma_gamma.hpp"

namespace lifecycle {

// `length` time units (the BG/NBD unit) cut into `steps` equal steps; each step's value is
// discounted by (1 + discount_rate)^i, i = 1 … steps, i.e. at its end.
struct ClvHorizon {
    double length;
    int steps;
    double discount_rate;  // per step
};

// Σ_i (E[Y(iΔ)] − E[Y((i−1)Δ)]) · E[order value] / (1 + rate)^i with Δ = length/steps, the
// discrete sum of the Python `lifetimes` package (which fixes the step at one month).
// Throws invalid_parameter for a bad horizon or customer, and where the expected order
// value is infinite (Gamma–Gamma q <= 1 for a customer without repeat purchases).
double customer_lifetime_value(const bgnbd::Params& purchases, const gamma_gamma::Params& spend,
                               const bgnbd::Customer& customer, double zbar,
                               const ClvHorizon& horizon);

}  // namespace lifecycle
