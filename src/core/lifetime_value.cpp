#include "core/lifetime_value.hpp"

#include <cmath>

#include "core/argument_checks.hpp"
#include "core/error.hpp"

namespace lifecycle {
namespace {

// One expected-purchases series per step: enough for daily steps over a century.
constexpr int kMaxSteps = 100000;

void validate(const ClvHorizon& h) {
    require_positive(h.length, "horizon");
    if (h.steps < 1 || h.steps > kMaxSteps)
        throw_invalid("argument \"steps\" must be between 1 and 100000");
    if (!(std::isfinite(h.discount_rate) && h.discount_rate >= 0.0))
        throw_invalid("argument \"discount_rate\" must be a finite number >= 0");
}

}  // namespace

double customer_lifetime_value(const bgnbd::Params& purchases, const gamma_gamma::Params& spend,
                               const bgnbd::Customer& customer, double zbar,
                               const ClvHorizon& horizon) {
    validate(horizon);
    const double value = gamma_gamma::expected_average_value(spend, {customer.x, zbar});
    const double step = horizon.length / horizon.steps;
    double total = 0.0, previous = 0.0, discount = 1.0;
    for (int i = 1; i <= horizon.steps; ++i) {
        const double cumulative = bgnbd::expected_purchases(purchases, customer, i * step);
        discount /= 1.0 + horizon.discount_rate;
        total += (cumulative - previous) * value * discount;
        previous = cumulative;
    }
    return total;
}

}  // namespace lifecycle
