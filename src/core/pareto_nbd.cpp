#include "core/pareto_nbd.hpp"

// Boost 1.74's hypergeometric_pFq.hpp uses lgamma and expm1 without including their
// definitions (see bgnbd.cpp).
#include <boost/math/special_functions/expm1.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/hypergeometric_pFq.hpp>
#include <boost/math/quadrature/gauss_kronrod.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "core/argument_checks.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"

// The likelihood. Given λ and μ, a customer with x purchases, the last at t_x, observed
// to T, is either alive at T (density λ^x e^{−λT} · e^{−μT}) or died at some τ in (t_x, T]
// (λ^x e^{−λτ} · μ e^{−μτ} dτ). Mixing over λ ~ Gamma(r, α), μ ~ Gamma(s, β), with
// E[λ^x e^{−λτ}] = Γ(r+x) α^r / (Γ(r) (α+τ)^{r+x}) and E[μ e^{−μτ}] = s β^s / (β+τ)^{s+1}:
//
//   L = Γ(r+x) α^r β^s / Γ(r) · { (α+T)^−(r+x) (β+T)^−s + s I(t_x, T) },
//   I(a, b) = ∫_a^b (α+u)^−(r+x) (β+u)^−(s+1) du,
//
// which is Fader & Hardie's eq. (22) with their A_0 = (r+s+x) I(t_x, T). Their eq. (23)
// gives I through the tail G(τ) = ∫_τ^∞ (α+u)^−(r+x) (β+u)^−(s+1) du, I = G(t_x) − G(T):
// with n = r+x, c = r+s+x, for α ≥ β (expanding (β+u)^−(s+1) = (α+u)^−(s+1) (1−z_u)^−(s+1)
// in powers of z_u = (α−β)/(α+u) and integrating term by term)
//
//   c G(τ) = 2F1(c, s+1; c+1; z) / (α+τ)^c,          z = (α−β)/(α+τ),
//
// and for α < β, symmetrically, c G(τ) = 2F1(c, n; c+1; z) / (β+τ)^c, z = (β−α)/(β+τ).
// Both arguments lie in [0, 1), and at α = β, z = 0 and 2F1 = 1: G(τ) = (α+τ)^−c / c, no
// special case needed. As printed, though, the α < β series has parameter n = r+x and
// grows like (1−z)^−n: with x in the thousands it overflows (the NaNs reported of other
// implementations). Euler's transformation 2F1(a, b; c; z) = (1−z)^{c−a−b} 2F1(c−a, c−b;
// c; z) turns both into series in 2F1(1, ·; c+1; z), whose terms are positive and shrink
// at least like z^k, with the large factor taken out exactly, in logs:
//
//   α ≥ β:  c G(τ) = (α+τ)^−n (β+τ)^−s 2F1(1, n; c+1; z)
//   α < β:  c G(τ) = (α+τ)^{1−n} (β+τ)^−(s+1) 2F1(1, s+1; c+1; z)
//
// (1 − z is (β+τ)/(α+τ), resp. (α+τ)/(β+τ)). Boost 1.74 has no dedicated 2F1; its
// generic hypergeometric_pFq sums these series. Near z = 1 (one of α, β tiny against the
// other plus τ) the series needs ~37/(1−z) terms, so above kSeriesLimit, and when
// G(t_x) − G(T) would cancel to a few digits (T − t_x tiny), I is integrated directly by
// adaptive Gauss-Kronrod quadrature instead (the integrand is positive and smooth).

namespace lifecycle::pareto_nbd {
namespace {

constexpr double kSeriesLimit = 0.99;
// G(t_x) − G(T) is taken from the series when G(T) / G(t_x) < e^−kMinLogGap, i.e. at most
// a few digits cancel.
constexpr double kMinLogGap = 1e-4;
constexpr double kNegativeInfinity = -std::numeric_limits<double>::infinity();

double log_add_exp(double a, double b) {
    if (a == kNegativeInfinity) return b;
    if (b == kNegativeInfinity) return a;
    const double top = std::max(a, b);
    return top + std::log1p(std::exp(std::min(a, b) - top));
}

// log 2F1(1, b; c; z) for 0 <= z <= kSeriesLimit, b > 0, c > b: a series of positive terms.
double log_hypergeometric_2f1(double b, double c, double z) {
    if (z == 0.0) return 0.0;
    try {
        return std::log(boost::math::hypergeometric_pFq({1.0, b}, {c}, z));
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        throw_invalid(std::string("the hypergeometric series of the Pareto/NBD likelihood failed: ") + e.what());
    }
}

// log G(τ) (see the top of the file), n = r + x.
double log_tail(const Params& p, double n, double tau) {
    const double c = n + p.s;
    if (p.alpha >= p.beta) {
        const double z = (p.alpha - p.beta) / (p.alpha + tau);
        return -n * std::log(p.alpha + tau) - p.s * std::log(p.beta + tau) +
               log_hypergeometric_2f1(n, c + 1.0, z) - std::log(c);
    }
    const double z = (p.beta - p.alpha) / (p.beta + tau);
    return (1.0 - n) * std::log(p.alpha + tau) - (p.s + 1.0) * std::log(p.beta + tau) +
           log_hypergeometric_2f1(p.s + 1.0, c + 1.0, z) - std::log(c);
}

// log I(a, b) by quadrature. With u = (α+a) e^y − α the integrand becomes
// (α+a)^{1−n} (β+a)^−(s+1) · e^{−(n−1)y} ((β+u)/(β+a))^−(s+1), y in [0, log((α+b)/(α+a))]:
// the power decay of large n turns into an exponential one over a short range.
double log_integral_by_quadrature(const Params& p, double n, double a, double b) {
    const double A = p.alpha + a, B = p.beta + a;
    const double Y = std::log1p((b - a) / A);
    const auto f = [&](double y) {
        const double u_minus_a = A * std::expm1(y);
        return std::exp(-(n - 1.0) * y - (p.s + 1.0) * std::log1p(u_minus_a / B));
    };
    // Boost's error estimate (Gauss against Kronrod) is pessimistic: the Kronrod sum is far
    // more accurate than the tolerance asked, and asking for much less than 1e-9 only makes
    // the bisection run to its depth on rounding noise.
    const double q = boost::math::quadrature::gauss_kronrod<double, 31>::integrate(f, 0.0, Y, 10, 1e-9);
    return std::log(q) + (1.0 - n) * std::log(A) - (p.s + 1.0) * std::log(B);
}

// log I(a, b), a <= b; −∞ when a = b. `tail(τ)` is log_tail(p, n, τ), possibly cached.
template <class Tail>
double log_integral(const Params& p, double n, double a, double b, const Tail& tail) {
    if (!(b > a)) return kNegativeInfinity;
    const double z = std::abs(p.alpha - p.beta) / (std::max(p.alpha, p.beta) + a);
    if (z <= kSeriesLimit) {
        const double upper = tail(a), lower = tail(b);
        if (upper - lower > kMinLogGap) return upper + std::log(-std::expm1(lower - upper));
    }
    return log_integral_by_quadrature(p, n, a, b);
}

// log[Γ(r+x) α^r β^s / Γ(r)], the same for every customer with this x.
double log_front(const Params& p, double x) {
    return std::lgamma(p.r + x) - std::lgamma(p.r) + p.r * std::log(p.alpha) + p.s * std::log(p.beta);
}

// The two terms of the braces, in logs: alive at T, and died in (t_x, T] (−∞ at t_x = T).
struct Terms {
    double alive;
    double died;
};

template <class Tail>
Terms terms(const Params& p, const Customer& c, double T, const Tail& tail) {
    const double n = p.r + c.x;
    const double alive = -n * std::log(p.alpha + T) - p.s * std::log(p.beta + T);
    const double I = log_integral(p, n, c.t_x, T, tail);
    return {alive, I == kNegativeInfinity ? I : std::log(p.s) + I};
}

Terms terms(const Params& p, const Customer& c, double T) {
    const double n = p.r + c.x;
    return terms(p, c, T, [&](double tau) { return log_tail(p, n, tau); });
}

double check_horizon(const Customer& c, double t) {
    if (!(std::isfinite(t) && t >= 0.0 && c.T + t <= 2.0 * kMaxModelValue))
        throw_invalid("argument \"horizon\" must be a number between 0 and 1e9");
    return t;
}

// (1 − e^{eL}) / e, which tends to −L as e → 0.
double one_minus_power_over(double e, double log_base) {
    return e == 0.0 ? -log_base : -std::expm1(e * log_base) / e;
}

}  // namespace

void validate(const Params& p) {
    require_positive(p.r, "r");
    require_positive(p.alpha, "alpha");
    require_positive(p.s, "s");
    require_positive(p.beta, "beta");
}

double log_likelihood(const Params& params, const Customer& customer) {
    validate(params);
    validate(customer);
    const Terms t = terms(params, customer, customer.T);
    return log_front(params, customer.x) + log_add_exp(t.alive, t.died);
}

namespace {

// The tails G(τ) depend on x and τ only, and customers share them: everyone with x = 0
// has t_x = 0, and T and t_x take few values in data kept by day. So they are computed
// once per distinct (x, τ) and evaluation; rows sorted by x (as compress() leaves them)
// keep the cache to one x at a time.
double sum_log_likelihood(const Params& params, const std::vector<Row>& rows) {
    validate(params);
    double total = 0.0, front = 0.0, front_x = -1.0;
    std::unordered_map<double, double> tails;
    const auto tail = [&](double tau) {
        const auto found = tails.find(tau);
        if (found != tails.end()) return found->second;
        const double value = log_tail(params, params.r + front_x, tau);
        tails.emplace(tau, value);
        return value;
    };
    std::uint64_t i = 0;
    for (const Row& row : rows) {
        check_interrupts_every(i++);
        validate(row.customer);
        if (row.customer.x != front_x) {
            front_x = row.customer.x;
            front = log_front(params, front_x);
            tails.clear();
        }
        const Terms t = terms(params, row.customer, row.customer.T, tail);
        total += row.weight * (front + log_add_exp(t.alive, t.died));
    }
    return total;
}

}  // namespace

// The gradient is taken by central differences, not analytically: the derivatives of 2F1
// with respect to its parameters have no short closed form. A relative step of 1e-5
// (about the cube root of the double epsilon) leaves an error of order 1e-10 relative,
// far below the tolerance the fitter asks of the gradient (mle.cpp), at 9 evaluations
// per gradient.
double log_likelihood(const Params& params, const std::vector<Row>& rows, Gradient* gradient) {
    const double value = sum_log_likelihood(params, rows);
    if (gradient) {
        constexpr double kStep = 1e-5;
        for (int i = 0; i < 4; ++i) {
            Params up = params, down = params;
            double* fields_up[] = {&up.r, &up.alpha, &up.s, &up.beta};
            double* fields_down[] = {&down.r, &down.alpha, &down.s, &down.beta};
            const double h = kStep * *fields_up[i];
            *fields_up[i] += h;
            *fields_down[i] -= h;
            (*gradient)[i] = (sum_log_likelihood(up, rows) - sum_log_likelihood(down, rows)) /
                             (*fields_up[i] - *fields_down[i]);
        }
    }
    return value;
}

// P(alive | data) = alive term / both terms = 1 / (1 + s I / [(α+T)^−(r+x) (β+T)^−s]).
double probability_alive(const Params& params, const Customer& customer) {
    validate(params);
    validate(customer);
    const Terms t = terms(params, customer, customer.T);
    if (t.died == kNegativeInfinity) return 1.0;
    const double log_odds = t.died - t.alive;
    return log_odds > 0.0 ? std::exp(-log_odds) / (1.0 + std::exp(-log_odds))
                          : 1.0 / (1.0 + std::exp(log_odds));
}

// Alive at T, the posterior of (λ, μ) is Gamma(r+x, α+T) × Gamma(s, β+T) (the alive term
// factorizes), the remaining lifetime is exponential(μ) by memorylessness, and
// E[Y(t) | λ, μ, alive] = λ ∫_0^t e^{−μu} du. Hence
//   E = (r+x)/(α+T) · ∫_0^t ((β+T)/(β+T+u))^s du · P(alive)
//     = (r+x)(β+T) / ((α+T)(s−1)) · [1 − ((β+T)/(β+T+t))^{s−1}] · P(alive),
// which holds for every s > 0 (for s < 1 both factors are negative) and tends to
// (r+x)(β+T)/(α+T) · log((β+T+t)/(β+T)) · P(alive) at s = 1; it is computed as such.
double expected_purchases(const Params& params, const Customer& customer, double t) {
    check_horizon(customer, t);
    const double p_alive = probability_alive(params, customer);
    if (t == 0.0) return 0.0;
    const double n = params.r + customer.x;
    const double log_base = -std::log1p(t / (params.beta + customer.T));
    return n / (params.alpha + customer.T) * (params.beta + customer.T) *
           one_minus_power_over(params.s - 1.0, log_base) * p_alive;
}

// No purchase in (T, T+t]: dead at T (1 − PA), or alive at T and then, with λ, μ given,
// either surviving to T+t without buying, e^{−(λ+μ)t}, or dying at T+v (density
// μ e^{−μv}) before buying, ∫_0^t μ e^{−(λ+μ)v} dv = μ/(λ+μ) (1 − e^{−(λ+μ)t}). The second
// part is easily forgotten: P(Y(t)=0) = 1 − PA + PA·((α+T)/(α+T+t))^{r+x}((β+T)/(β+T+t))^s
// counts only the survivors. Averaged over the posterior given alive, it is
//   s (α+T)^{r+x} (β+T)^s ∫_T^{T+t} (α+u)^−(r+x) (β+u)^−(s+1) du,
// and altogether P(Y(t) = 0 | x, t_x, T) = L(x, t_x, T+t) / L(x, t_x, T): observing x
// purchases, the last at t_x, and none in (T, T+t] is observing (x, t_x, T+t). That ratio
// is what is computed, in logs (the common factor Γ(r+x) α^r β^s / Γ(r) cancels).
double probability_no_purchase(const Params& params, const Customer& customer, double t) {
    check_horizon(customer, t);
    validate(params);
    validate(customer);
    if (t == 0.0) return 1.0;
    const Terms now = terms(params, customer, customer.T);
    const Terms later = terms(params, customer, customer.T + t);
    const double log_ratio = log_add_exp(later.alive, later.died) - log_add_exp(now.alive, now.died);
    return std::min(1.0, std::exp(log_ratio));
}

}  // namespace lifecycle::pareto_nbd
