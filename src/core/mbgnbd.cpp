#include "core/mbgnbd.hpp"

#include <boost/math/special_functions/digamma.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/argument_checks.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace lifecycle::mbgnbd {
namespace {

void add_scaled(Gradient& into, const Gradient& g, double weight) {
    for (std::size_t i = 0; i < into.size(); ++i) into[i] += weight * g[i];
}

// The parts of log L that depend on the parameters and x only (computed once per x).
struct XTerms {
    double x;
    double log_front;    // log[Γ(r+x) α^r / Γ(r)] + log[B(a, b+x+1) / B(a, b)]
    double log_dropout;  // log[a / (b+x)] = log[B(a+1, b+x) / B(a, b+x+1)]
    Gradient front_gradient;
};

XTerms x_terms(const Params& p, double x) {
    using boost::math::digamma;
    const double ab = p.a + p.b;
    XTerms t;
    t.x = x;
    t.log_front = std::lgamma(p.r + x) - std::lgamma(p.r) + p.r * std::log(p.alpha) + std::lgamma(ab) +
                  std::lgamma(p.b + x + 1.0) - std::lgamma(p.b) - std::lgamma(ab + x + 1.0);
    t.log_dropout = std::log(p.a) - std::log(p.b + x);
    t.front_gradient = {digamma(p.r + x) - digamma(p.r) + std::log(p.alpha), p.r / p.alpha,
                        digamma(ab) - digamma(ab + x + 1.0),
                        digamma(ab) + digamma(p.b + x + 1.0) - digamma(p.b) - digamma(ab + x + 1.0)};
    return t;
}

// L = front · [(α+T)^−(r+x) + a/(b+x) (α+t_x)^−(r+x)], summed by log-sum-exp: for large x
// both terms underflow while their ratio stays moderate.
double row_log_likelihood(const Params& p, const XTerms& xt, const Customer& c, Gradient* gradient) {
    const double n = p.r + xt.x;
    const double alive = -n * std::log(p.alpha + c.T);
    const double dropped = xt.log_dropout - n * std::log(p.alpha + c.t_x);
    const double top = std::max(alive, dropped);
    const double e_alive = std::exp(alive - top), e_dropped = std::exp(dropped - top);
    const double sum = e_alive + e_dropped;
    if (gradient) {
        *gradient = xt.front_gradient;
        const double s_alive = e_alive / sum, s_dropped = e_dropped / sum;
        add_scaled(*gradient, {-std::log(p.alpha + c.T), -n / (p.alpha + c.T), 0, 0}, s_alive);
        add_scaled(*gradient,
                   {-std::log(p.alpha + c.t_x), -n / (p.alpha + c.t_x), 1.0 / p.a, -1.0 / (p.b + xt.x)},
                   s_dropped);
    }
    return xt.log_front + top + std::log(sum);
}

}  // namespace

void validate(const Params& p) {
    require_positive(p.r, "r");
    require_positive(p.alpha, "alpha");
    require_positive(p.a, "a");
    require_positive(p.b, "b");
}

double log_likelihood(const Params& params, const Customer& customer, Gradient* gradient) {
    validate(params);
    bgnbd::validate(customer);
    return row_log_likelihood(params, x_terms(params, customer.x), customer, gradient);
}

double log_likelihood(const Params& params, const std::vector<Row>& rows, Gradient* gradient) {
    validate(params);
    if (gradient) gradient->fill(0.0);
    XTerms xt{};
    bool have_terms = false;
    double total = 0.0;
    Gradient g{};
    std::uint64_t i = 0;
    for (const Row& row : rows) {
        check_interrupts_every(i++);
        bgnbd::validate(row.customer);
        if (!have_terms || row.customer.x != xt.x) xt = x_terms(params, row.customer.x);
        have_terms = true;
        total += row.weight * row_log_likelihood(params, xt, row.customer, gradient ? &g : nullptr);
        if (gradient) add_scaled(*gradient, g, row.weight);
    }
    return total;
}

// The posterior odds "dropped out after the last purchase (or at 0)" : "alive".
double probability_alive(const Params& params, const Customer& customer) {
    validate(params);
    bgnbd::validate(customer);
    const double n = params.r + customer.x;
    const double log_odds = std::log(params.a) - std::log(params.b + customer.x) +
                            n * std::log1p((customer.T - customer.t_x) / (params.alpha + customer.t_x));
    // 1 / (1 + e^L), written so that neither branch overflows.
    return log_odds > 0.0 ? std::exp(-log_odds) / (1.0 + std::exp(-log_odds))
                          : 1.0 / (1.0 + std::exp(log_odds));
}

double expected_purchases(const Params& params, const Customer& customer, double t) {
    const double p_alive = probability_alive(params, customer);
    return p_alive * bgnbd::expected_purchases_if_alive(params.r + customer.x, params.alpha + customer.T,
                                                        params.a, params.b + customer.x + 1.0, t);
}

double probability_no_purchase(const Params& params, const Customer& customer, double t) {
    const double p_alive = probability_alive(params, customer);
    return bgnbd::probability_no_purchase_given(p_alive, params.r + customer.x, params.alpha + customer.T, t);
}

}  // namespace lifecycle::mbgnbd
