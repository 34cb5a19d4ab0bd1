// Checks of numeric model arguments shared by the predictive models (BG/NBD,
// Gamma-Gamma, lifetime value). Each throws invalid_parameter naming the argument.
#pragma once
#include "core/no_postgres.hpp"

namespace lifecycle {

// Beyond this, counts and times are surely in the wrong unit, and BG/NBD's
// (r + x)·log(α + T) starts to lose the digits the log-likelihood needs.
constexpr double kMaxModelValue = 1e9;

// A finite number > 0.
void require_positive(double value, const char* name);

// A purchase count ("frequency"): a whole number between 0 and kMaxModelValue.
void require_purchase_count(double x);

}  // namespace lifecycle
