#include "core/gamma_gamma.hpp"

#include <boost/math/special_functions/digamma.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

#include "core/argument_checks.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace lifecycle::gamma_gamma {
namespace {

void check_repeat_buyer(const Customer& c) {
    require_purchase_count(c.x);
    if (c.x == 0.0) throw_invalid("argument \"frequency\" must be > 0 for the Gamma-Gamma likelihood");
    require_positive(c.zbar, "monetary_value");
}

// The parts of log f that depend on the parameters and x only, computed once per distinct x
// in a fit.
struct XTerms {
    double x;
    double log_front;  // log Γ(px+q) − log Γ(px) − log Γ(q) + q log γ
    Gradient front_gradient;
};

XTerms x_terms(const Params& p, double x) {
    using boost::math::digamma;
    const double px = p.p * x;
    return XTerms{x,
                  std::lgamma(px + p.q) - std::lgamma(px) - std::lgamma(p.q) + p.q * std::log(p.gamma),
                  {x * (digamma(px + p.q) - digamma(px)), digamma(px + p.q) - digamma(p.q) + std::log(p.gamma),
                   p.q / p.gamma}};
}

// f = Γ(px+q)/(Γ(px)Γ(q)) γ^q x^{px} zbar^{px−1} / (γ + x·zbar)^{px+q}. The powers are
// regrouped as −log zbar − q log(γ + x·zbar) − px log(1 + γ/(x·zbar)) so that large x does
// not subtract huge logarithms from each other.
double row_log_likelihood(const Params& p, const XTerms& xt, double zbar, Gradient* gradient) {
    const double total = xt.x * zbar;
    const double log1p_ratio = std::log1p(p.gamma / total);
    if (gradient) {
        *gradient = xt.front_gradient;
        (*gradient)[0] -= xt.x * log1p_ratio;
        (*gradient)[1] -= std::log(p.gamma + total);
        (*gradient)[2] -= (p.p * xt.x + p.q) / (p.gamma + total);
    }
    return xt.log_front - std::log(zbar) - p.q * std::log(p.gamma + total) - p.p * xt.x * log1p_ratio;
}

double weighted_log_likelihood(const Params& p, const std::vector<Row>& rows, Gradient* gradient) {
    if (gradient) gradient->fill(0.0);
    XTerms xt{};
    bool have_terms = false;
    double total = 0.0;
    Gradient g{};
    std::uint64_t seen = 0;
    for (const Row& row : rows) {
        check_interrupts_every(seen++);
        if (!have_terms || row.customer.x != xt.x) xt = x_terms(p, row.customer.x);
        have_terms = true;
        total += row.weight * row_log_likelihood(p, xt, row.customer.zbar, gradient ? &g : nullptr);
        if (gradient)
            for (std::size_t i = 0; i < g.size(); ++i) (*gradient)[i] += row.weight * g[i];
    }
    return total;
}

// The repeat buyers with a positive weight, sorted by x (for x_terms), checked.
std::vector<Row> repeat_buyers(const std::vector<Row>& rows) {
    std::vector<Row> kept;
    std::uint64_t i = 0;
    for (const Row& row : rows) {
        check_interrupts_every(i++);
        require_purchase_count(row.customer.x);
        if (!(std::isfinite(row.weight) && row.weight >= 0.0))
            throw_invalid("argument \"weight\" must be a finite number >= 0");
        if (row.customer.x == 0.0 || row.weight == 0.0) continue;
        check_repeat_buyer(row.customer);
        kept.push_back(row);
    }
    std::sort(kept.begin(), kept.end(),
              [](const Row& l, const Row& r) { return l.customer.x < r.customer.x; });
    return kept;
}

}  // namespace

void validate(const Params& p) {
    require_positive(p.p, "p");
    require_positive(p.q, "q");
    require_positive(p.gamma, "gamma");
}

double log_likelihood(const Params& params, const Customer& customer, Gradient* gradient) {
    validate(params);
    check_repeat_buyer(customer);
    return row_log_likelihood(params, x_terms(params, customer.x), customer.zbar, gradient);
}

// The posterior of the customer's ν is Gamma(q + px, γ + x·zbar), and a transaction's mean
// is p/ν, whose expectation is finite only when q + px > 1.
double expected_average_value(const Params& params, const Customer& customer) {
    validate(params);
    require_purchase_count(customer.x);
    if (customer.x > 0.0 && !(std::isfinite(customer.zbar) && customer.zbar >= 0.0))
        throw_invalid("argument \"monetary_value\" must be a finite number >= 0");
    const double shape = params.q + params.p * customer.x;
    if (!(shape > 1.0))
        throw_invalid(customer.x == 0.0
                          ? "the Gamma-Gamma model needs q > 1 for a finite expected value of a "
                            "customer without repeat purchases (q = " + std::to_string(params.q) + ")"
                          : "the Gamma-Gamma model needs q + p * frequency > 1 for a finite "
                            "expected value");
    const double zbar = customer.x > 0.0 ? customer.zbar : 0.0;
    return params.p * (params.gamma + customer.x * zbar) / (shape - 1.0);
}

// Spend is rescaled so that the weighted mean zbar is 1: p and q are unit-free and γ scales
// with the currency, so this keeps γ of order 1. The log-likelihood is reported on the
// caller's values.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options) {
    const std::vector<Row> data = repeat_buyers(rows);
    double weight = 0.0, spend = 0.0;
    check_interrupts();
    for (const Row& row : data) {
        weight += row.weight;
        spend += row.weight * row.customer.zbar;
    }
    if (weight == 0.0) throw_invalid("Gamma-Gamma cannot be fitted without a repeat buyer");
    if (weight < 2.0) throw_invalid("Gamma-Gamma cannot be fitted to a single repeat buyer");
    const double scale = weight / spend;
    std::vector<Row> scaled = data;
    for (Row& row : scaled) row.customer.zbar *= scale;
    const mle::LogLikelihood mean_log_likelihood = [&](const std::vector<double>& p,
                                                       std::vector<double>& gradient) {
        Gradient g;
        const double ll = weighted_log_likelihood(Params{p[0], p[1], p[2]}, scaled, &g);
        for (std::size_t i = 0; i < g.size(); ++i) gradient[i] = g[i] / weight;
        return ll / weight;
    };
    const mle::Result m = mle::maximize(mean_log_likelihood, {1.0, 1.0, 1.0}, options);
    Fit result;
    result.params = Params{m.params[0], m.params[1], m.params[2] / scale};
    result.log_likelihood = weighted_log_likelihood(result.params, data, nullptr);
    result.evaluations = m.evaluations;
    result.converged = m.converged;
    return result;
}

}  // namespace lifecycle::gamma_gamma
