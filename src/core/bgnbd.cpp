#include "core/bgnbd.hpp"

#include <boost/math/special_functions/digamma.hpp>
// Boost 1.74's hypergeometric_pFq.hpp uses lgamma and expm1 without including their
// definitions: without these two lines the object (and the extension's .so) is left with
// undefined symbols.
#include <boost/math/special_functions/expm1.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/hypergeometric_pFq.hpp>

#include <cmath>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>

#include "core/argument_checks.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace lifecycle::bgnbd {
namespace {

void add_scaled(Gradient& into, const Gradient& g, double weight) {
    for (std::size_t i = 0; i < into.size(); ++i) into[i] += weight * g[i];
}

// The parts of log L that depend on the parameters and x only, so that a fit computes the
// gamma and digamma functions once per distinct x rather than once per customer.
struct XTerms {
    double x;
    double log_front;    // log[Γ(r+x) α^r / Γ(r)] + log[B(a, b+x) / B(a, b)]
    double log_dropout;  // log[a / (b+x−1)]: the weight of "dropped out after the last purchase"
    double dropout_a, dropout_b;  // its derivatives 1/a and −1/(b+x−1)
    Gradient front_gradient;
};

XTerms x_terms(const Params& p, double x) {
    using boost::math::digamma;
    const double ab = p.a + p.b;
    XTerms t;
    t.x = x;
    t.log_front = std::lgamma(p.r + x) - std::lgamma(p.r) + p.r * std::log(p.alpha) +
                  std::lgamma(ab) + std::lgamma(p.b + x) - std::lgamma(p.b) - std::lgamma(ab + x);
    t.log_dropout = x > 0.0 ? std::log(p.a) - std::log(p.b + x - 1.0) : 0.0;
    t.dropout_a = 1.0 / p.a;
    t.dropout_b = -1.0 / (p.b + x - 1.0);
    t.front_gradient = {digamma(p.r + x) - digamma(p.r) + std::log(p.alpha), p.r / p.alpha,
                        digamma(ab) - digamma(ab + x),
                        digamma(ab) + digamma(p.b + x) - digamma(p.b) - digamma(ab + x)};
    return t;
}

// log(α+T) and α+T, and the same for t_x: what a row needs of its times. A fit computes
// them once per distinct time and evaluation (Prepared below), not once per row.
struct RowTimes {
    double log_T, base_T;      // log(α+T), α+T
    double log_t_x, base_t_x;  // log(α+t_x), α+t_x
};

RowTimes row_times(const Params& p, const Customer& c) {
    return {std::log(p.alpha + c.T), p.alpha + c.T, std::log(p.alpha + c.t_x), p.alpha + c.t_x};
}

// L = front · [(α+T)^−(r+x) + δ(x>0) a/(b+x−1) (α+t_x)^−(r+x)]: the customer is alive at T,
// or dropped out right after the last purchase. The sum is taken by log-sum-exp, since
// for large x both terms underflow while their ratio stays moderate; the larger term's
// exponential is e^0 = 1, so only the other one is computed.
double row_log_likelihood(const Params& p, const XTerms& xt, const RowTimes& tm, Gradient* gradient) {
    const double n = p.r + xt.x;
    const double alive = -n * tm.log_T;
    if (gradient) *gradient = xt.front_gradient;
    if (xt.x == 0.0) {
        if (gradient) add_scaled(*gradient, {-tm.log_T, -n / tm.base_T, 0, 0}, 1.0);
        return xt.log_front + alive;
    }
    const double dropped = xt.log_dropout - n * tm.log_t_x;
    double top, e_alive, e_dropped;
    if (alive < dropped) {  // top = std::max(alive, dropped)
        top = dropped;
        e_alive = std::exp(alive - top);
        e_dropped = 1.0;
    } else {
        top = alive;
        e_alive = 1.0;
        e_dropped = std::exp(dropped - top);
    }
    const double sum = e_alive + e_dropped;
    if (gradient) {
        const double s_alive = e_alive / sum, s_dropped = e_dropped / sum;
        add_scaled(*gradient, {-tm.log_T, -n / tm.base_T, 0, 0}, s_alive);
        add_scaled(*gradient, {-tm.log_t_x, -n / tm.base_t_x, xt.dropout_a, xt.dropout_b}, s_dropped);
    }
    return xt.log_front + top + std::log(sum);
}

// log of the odds "dropped out after the last purchase" : "alive", given the data.
double log_odds_dead(const Params& p, const Customer& c) {
    const double n = p.r + c.x;
    return std::log(p.a) - std::log(p.b + c.x - 1.0) + n * std::log1p((c.T - c.t_x) / (p.alpha + c.t_x));
}

// (1 − e^{eL}) / e, which tends to −L as e → 0 (a = 1 in the expectation below).
double one_minus_power_over(double e, double log_base) {
    return e == 0.0 ? -log_base : -std::expm1(e * log_base) / e;
}

// The longest horizon, in multiples of α + T. The 3F2 series below shrinks like z^n with
// 1 − z = (α+T)/(α+T+t) ≥ 1e-4 here, so it is summed to full precision well within the
// million terms Boost allows (z^n ≈ e^−100 by then); longer horizons would leave its
// accuracy to chance. α is the time scale of the purchase rates (a mean rate is r/α), so
// 10,000 α lies far beyond any planning horizon.
constexpr double kMaxHorizon = 1e4;

// 3F2(A+1, a, 1; c+1, 2; z), summed by Boost's generic pFq: a few dozen terms for the
// usual horizons. Boost's errors (none expected within kMaxHorizon) become ours.
double hypergeometric_3f2(double a1, double a2, double b1, double z) {
    try {
        return boost::math::hypergeometric_pFq({a1, a2, 1.0}, {b1, 2.0}, z);
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        throw_invalid(std::string("the series of the expected purchases failed: ") + e.what());
    }
}

}  // namespace

void validate(const Params& p) {
    require_positive(p.r, "r");
    require_positive(p.alpha, "alpha");
    require_positive(p.a, "a");
    require_positive(p.b, "b");
}

void validate(const Customer& c) {
    require_purchase_count(c.x);
    if (!(std::isfinite(c.T) && c.T >= 0.0 && c.T <= kMaxModelValue))
        throw_invalid("argument \"T\" must be a number between 0 and 1e9");
    if (!(std::isfinite(c.t_x) && c.t_x >= 0.0 && c.t_x <= c.T))
        throw_invalid("argument \"recency\" must be between 0 and T");
    if (c.x == 0.0 && c.t_x != 0.0)
        throw_invalid("argument \"recency\" must be 0 when \"frequency\" is 0");
    if (c.x > 0.0 && c.t_x == 0.0)
        throw_invalid("argument \"recency\" must be > 0 when \"frequency\" is > 0 "
                      "(a repeat purchase comes after the first)");
}

double log_likelihood(const Params& params, const Customer& customer, Gradient* gradient) {
    validate(params);
    validate(customer);
    return row_log_likelihood(params, x_terms(params, customer.x), row_times(params, customer), gradient);
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
        validate(row.customer);
        if (!have_terms || row.customer.x != xt.x) xt = x_terms(params, row.customer.x);
        have_terms = true;
        total += row.weight *
                 row_log_likelihood(params, xt, row_times(params, row.customer), gradient ? &g : nullptr);
        if (gradient) add_scaled(*gradient, g, row.weight);
    }
    return total;
}

namespace {

// (α + time, log(α + time)) for each of the prepared rows' distinct times.
struct TimeTerms {
    std::vector<double> base, log_base;
};

TimeTerms time_terms(const Params& params, const PreparedRows& rows, double time_scale) {
    TimeTerms tt;
    tt.base.resize(rows.times.size());
    tt.log_base.resize(rows.times.size());
    for (std::size_t k = 0; k < rows.times.size(); ++k) {
        check_interrupts_every(k);
        tt.base[k] = params.alpha + rows.times[k] * time_scale;
        tt.log_base[k] = std::log(tt.base[k]);
    }
    return tt;
}

}  // namespace

// As the loop over Rows above, the same operations in the same order (so the same sums to
// the last bit), with the logs of the times looked up.
double log_likelihood(const Params& params, const PreparedRows& rows, double time_scale,
                      Gradient* gradient) {
    validate(params);
    if (gradient) gradient->fill(0.0);
    const TimeTerms tt = time_terms(params, rows, time_scale);
    XTerms xt{};
    bool have_terms = false;
    double total = 0.0;
    Gradient g{};
    for (std::size_t i = 0; i < rows.rows.size(); ++i) {
        check_interrupts_every(i);
        const PreparedRows::Row& row = rows.rows[i];
        if (!have_terms || row.x != xt.x) xt = x_terms(params, row.x);
        have_terms = true;
        const RowTimes tm{tt.log_base[row.T], tt.base[row.T], tt.log_base[row.t_x], tt.base[row.t_x]};
        total += row.weight * row_log_likelihood(params, xt, tm, gradient ? &g : nullptr);
        if (gradient) add_scaled(*gradient, g, row.weight);
    }
    return total;
}

// A customer without a repeat purchase cannot have dropped out in this model (dropping out
// happens right after a purchase), so they are alive for sure.
double probability_alive(const Params& params, const Customer& customer) {
    validate(params);
    validate(customer);
    if (customer.x == 0.0) return 1.0;
    const double log_odds = log_odds_dead(params, customer);
    // 1 / (1 + e^L), written so that neither branch overflows.
    return log_odds > 0.0 ? std::exp(-log_odds) / (1.0 + std::exp(-log_odds))
                          : 1.0 / (1.0 + std::exp(log_odds));
}

// Eq. (10): (c/(a−1)) [1 − (1−z)^{r+x} 2F1(r+x, b+x; c; z)] · P(alive), with c = a+b+x−1 and
// z = t/(α+T+t). As written, 2F1 grows like (1−z)^−(r+x), overflowing for large x, and the
// bracket cancels to 0/0 as a → 1. Euler's transformation turns (1−z)^{r+x} 2F1(...) into
// (1−z)^{a−1} 2F1(A, a−1; c; z) with A = c−(r+x) = a+b−1−r, whose series is 1 + (a−1) G with
// c·G = A z 3F2(A+1, a, 1; c+1, 2; z). Hence
//   E = [c (1 − (1−z)^{a−1})/(a−1) − (1−z)^{a−1} A z 3F2(...)] · P(alive),
// a short series of moderate terms, with no division by a − 1 or by c.
double expected_purchases_if_alive(double n, double base, double a, double b_post, double t) {
    if (!(std::isfinite(t) && t >= 0.0)) throw_invalid("argument \"t\" must be a finite number >= 0");
    if (t == 0.0) return 0.0;
    if (t > kMaxHorizon * base)
        throw_invalid("argument \"t\" must be at most 10000 times alpha + T (" +
                      std::to_string(kMaxHorizon * base) + " here)");
    const double log_one_minus_z = -std::log1p(t / base);
    const double z = t / (base + t);
    const double e = a - 1.0;
    const double c = a + b_post - 1.0;
    const double A = c - n;
    const double series = hypergeometric_3f2(A + 1.0, a, c + 1.0, z);
    return c * one_minus_power_over(e, log_one_minus_z) - std::exp(e * log_one_minus_z) * A * z * series;
}

double expected_purchases(const Params& params, const Customer& customer, double t) {
    const double p_alive = probability_alive(params, customer);
    const double if_alive = expected_purchases_if_alive(params.r + customer.x, params.alpha + customer.T,
                                                        params.a, params.b + customer.x, t);
    return if_alive * p_alive;
}

double probability_no_purchase_given(double p_alive, double n, double base, double t) {
    if (!(std::isfinite(t) && t >= 0.0)) throw_invalid("argument \"t\" must be a finite number >= 0");
    // 1 − P(alive) (1 − q) with q = (1 + t/base)^−n; 1 − q by expm1, exact for small t.
    const double buys_if_alive = -std::expm1(-n * std::log1p(t / base));
    return 1.0 - p_alive * buys_if_alive;
}

double probability_no_purchase(const Params& params, const Customer& customer, double t) {
    const double p_alive = probability_alive(params, customer);
    return probability_no_purchase_given(p_alive, params.r + customer.x, params.alpha + customer.T, t);
}

double expected_purchases_new(const Params& params, double t) {
    return expected_purchases(params, Customer{0.0, 0.0, 0.0}, t);
}

}  // namespace lifecycle::bgnbd
