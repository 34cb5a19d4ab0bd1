#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <limits>
#include <vector>

#include "cdnow_summary.hpp"
#include "core/error.hpp"
#include "core/pareto_nbd.hpp"

using lifecycle::pareto_nbd::Customer;
using lifecycle::pareto_nbd::Params;
using lifecycle::pareto_nbd::Row;
namespace pnbd = lifecycle::pareto_nbd;

namespace {

// The CDNOW fit published by Fader & Hardie (2005 note; also Schmittlein et al.'s model):
// r = 0.553, α = 10.58, s = 0.606, β = 11.67, LL = −9594.98.
const Params kPublished{0.553, 10.58, 0.606, 11.67};
constexpr double kPublishedLogLikelihood = -9594.98;

std::vector<Row> cdnow_rows() {
    std::vector<Row> rows;
    for (const cdnow::Customer& c : cdnow::read_summary()) rows.push_back({{c.x, c.t_x, c.T}, 1.0});
    return rows;
}

// ∫_a^b (α+u)^−(r+x) (β+u)^−(s+1) du by composite Simpson's rule in v = log(m + u),
// m = min(α, β) (du = (m+u) dv: smooth even when m is tiny), written here independently
// of the library's series and quadrature.
double simpson_integral(const Params& p, double x, double a, double b, int intervals = 20000) {
    const double m = std::min(p.alpha, p.beta);
    const auto f = [&](double v) {
        const double u = std::exp(v) - m;
        return std::exp(v) * std::pow(p.alpha + u, -(p.r + x)) * std::pow(p.beta + u, -(p.s + 1));
    };
    const double lo = std::log(m + a), hi = std::log(m + b);
    const double h = (hi - lo) / intervals;
    double sum = f(lo) + f(hi);
    for (int i = 1; i < intervals; ++i) sum += (i % 2 ? 4 : 2) * f(lo + i * h);
    return sum * h / 3;
}

// The likelihood from its definition: Γ(r+x) α^r β^s / Γ(r) · {alive + s I}.
double direct_log_likelihood(const Params& p, const Customer& c) {
    const double front = std::lgamma(p.r + c.x) - std::lgamma(p.r) + p.r * std::log(p.alpha) +
                         p.s * std::log(p.beta);
    const double alive = std::pow(p.alpha + c.T, -(p.r + c.x)) * std::pow(p.beta + c.T, -p.s);
    return front + std::log(alive + p.s * simpson_integral(p, c.x, c.t_x, c.T));
}

double direct_probability_alive(const Params& p, const Customer& c) {
    const double alive = std::pow(p.alpha + c.T, -(p.r + c.x)) * std::pow(p.beta + c.T, -p.s);
    return alive / (alive + p.s * simpson_integral(p, c.x, c.t_x, c.T));
}

const std::vector<Params> kParams = {kPublished, {0.553, 11.67, 0.606, 10.58}, {2.0, 0.5, 3.0, 7.0},
                                     {0.3, 8.0, 1.0, 0.9}, {1.2, 3.0, 0.4, 3.0}};
const std::vector<Customer> kCustomers = {{0, 0, 40}, {1, 5, 40}, {2, 30.43, 38.86}, {7, 35.5, 38},
                                          {14, 2, 3}, {3, 10, 10}, {20, 37, 39}};

}  // namespace

TEST(ParetoNbd, LogLikelihoodAtThePublishedParameters) {
    const double ll = pnbd::log_likelihood(kPublished, cdnow_rows());
    std::cout << std::setprecision(10) << "CDNOW log-likelihood at the published parameters: " << ll << "\n";
    EXPECT_NEAR(ll, kPublishedLogLikelihood, 0.05);
}

TEST(ParetoNbd, LogLikelihoodEqualsTheDirectIntegral) {
    for (const Params& p : kParams)
        for (const Customer& c : kCustomers)
            EXPECT_NEAR(pnbd::log_likelihood(p, c), direct_log_likelihood(p, c), 1e-9)
                << "r=" << p.r << " alpha=" << p.alpha << " s=" << p.s << " beta=" << p.beta
                << " x=" << c.x << " t_x=" << c.t_x << " T=" << c.T;
}

TEST(ParetoNbd, ProbabilityAliveEqualsTheDirectIntegral) {
    for (const Params& p : kParams)
        for (const Customer& c : kCustomers)
            EXPECT_NEAR(pnbd::probability_alive(p, c), direct_probability_alive(p, c), 1e-10)
                << "alpha=" << p.alpha << " beta=" << p.beta << " x=" << c.x << " t_x=" << c.t_x;
    // A customer who bought at T is alive for sure.
    EXPECT_EQ(pnbd::probability_alive(kPublished, {3, 10, 10}), 1.0);
    // P(alive) falls as the last purchase recedes.
    EXPECT_GT(pnbd::probability_alive(kPublished, {2, 30.43, 38.86}),
              pnbd::probability_alive(kPublished, {2, 5, 38.86}));
}

TEST(ParetoNbd, ContinuousAtAlphaEqualsBeta) {
    for (const Customer& c : kCustomers)
        for (double beta : {0.5, 4.0, 11.0}) {
            const Params equal{0.55, beta, 0.6, beta};
            const double at = pnbd::log_likelihood(equal, c);
            ASSERT_TRUE(std::isfinite(at));
            for (double d : {-1e-7, 1e-7}) {
                const Params near{0.55, beta + d, 0.6, beta};
                EXPECT_NEAR(pnbd::log_likelihood(near, c), at, 1e-6) << "x=" << c.x << " d=" << d;
                EXPECT_NEAR(pnbd::probability_alive(near, c), pnbd::probability_alive(equal, c), 1e-7);
            }
            EXPECT_NEAR(at, direct_log_likelihood(equal, c), 1e-9);
        }
}

TEST(ParetoNbd, RecencyEqualToT) {
    const Customer c{4, 20, 20};
    const double n = kPublished.r + c.x;
    const double expected = std::lgamma(n) - std::lgamma(kPublished.r) + kPublished.r * std::log(kPublished.alpha) +
                            kPublished.s * std::log(kPublished.beta) - n * std::log(kPublished.alpha + 20) -
                            kPublished.s * std::log(kPublished.beta + 20);
    EXPECT_NEAR(pnbd::log_likelihood(kPublished, c), expected, 1e-10);
    // and the limit from below
    EXPECT_NEAR(pnbd::log_likelihood(kPublished, {4, 20 - 1e-9, 20}), expected, 1e-8);
    EXPECT_NEAR(pnbd::probability_alive(kPublished, {4, 20 - 1e-9, 20}), 1.0, 1e-8);
}

TEST(ParetoNbd, ThousandsOfPurchasesStayFinite) {
    for (const Params& p : kParams)
        for (const Customer& c : {Customer{5000, 38, 39}, Customer{5000, 20, 39}, Customer{5000, 1, 39},
                                  Customer{100000, 300, 520}}) {
            const double ll = pnbd::log_likelihood(p, c);
            const double pa = pnbd::probability_alive(p, c);
            const double e = pnbd::expected_purchases(p, c, 39);
            const double p0 = pnbd::probability_no_purchase(p, c, 39);
            EXPECT_TRUE(std::isfinite(ll)) << c.x << " " << c.t_x;
            EXPECT_TRUE(pa >= 0 && pa <= 1) << pa;
            EXPECT_TRUE(std::isfinite(e) && e >= 0) << e;
            EXPECT_TRUE(p0 >= 0 && p0 <= 1) << p0;
        }
    // A heavy buyer who was seen at the very end is alive and keeps buying at their rate.
    // (At t_x = 38.9 they would not be: at about 100 purchases a week, 0.1 week without one
    // is e^−10 likely alive, against about μ/λ ≈ 1e-4 for having died in between.)
    const Customer heavy{5000, 38.999, 39};
    EXPECT_GT(pnbd::probability_alive(kPublished, heavy), 0.99);
    EXPECT_NEAR(pnbd::expected_purchases(kPublished, heavy, 1), 5000.553 / (10.58 + 39), 2.0);
    // One who stopped long ago is dead.
    EXPECT_LT(pnbd::probability_alive(kPublished, {5000, 20, 39}), 1e-100);
    // The cancellation-free α < β branch against the direct sum where it still fits in doubles.
    const Customer c{150, 30, 39};
    EXPECT_NEAR(pnbd::log_likelihood(kPublished, c), direct_log_likelihood(kPublished, c), 1e-7);
}

TEST(ParetoNbd, ExtremeRatiosOfAlphaAndBetaUseTheQuadrature) {
    // z = |α − β| / (max + t_x) above 0.99: the direct integral, not the series.
    for (const Params& p : {Params{0.5, 1000.0, 0.6, 0.01}, Params{0.5, 0.01, 0.6, 1000.0}})
        for (const Customer& c : kCustomers) {
            EXPECT_NEAR(pnbd::log_likelihood(p, c), direct_log_likelihood(p, c), 1e-8) << c.x;
            EXPECT_NEAR(pnbd::probability_alive(p, c), direct_probability_alive(p, c), 1e-9);
        }
}

TEST(ParetoNbd, ExpectedPurchases) {
    // (r+x)/(α+T) ∫_0^t ((β+T)/(β+T+u))^s du · P(alive), the integral by Simpson's rule.
    for (const Params& p : {kPublished, Params{2.0, 0.5, 3.0, 7.0}, Params{0.3, 8.0, 1.0, 0.9}})
        for (const Customer& c : kCustomers) {
            const double t = 39, h = t / 20000;
            const auto f = [&](double u) { return std::pow((p.beta + c.T) / (p.beta + c.T + u), p.s); };
            double sum = f(0) + f(t);
            for (int i = 1; i < 20000; ++i) sum += (i % 2 ? 4 : 2) * f(i * h);
            const double expected = (p.r + c.x) / (p.alpha + c.T) * sum * h / 3 * direct_probability_alive(p, c);
            EXPECT_NEAR(pnbd::expected_purchases(p, c, t), expected, 1e-9 * std::max(1.0, expected));
        }
    // continuous at s = 1
    const Customer c{2, 30.43, 38.86};
    EXPECT_NEAR(pnbd::expected_purchases({0.5, 10, 1.0, 11}, c, 39),
                pnbd::expected_purchases({0.5, 10, 1.0 + 1e-9, 11}, c, 39), 1e-8);
    EXPECT_EQ(pnbd::expected_purchases(kPublished, c, 0), 0.0);
}

TEST(ParetoNbd, ProbabilityOfNoPurchase) {
    // 1 − PA + PA · [ (α'/(α'+t))^{r+x} (β'/(β'+t))^s + s α'^{r+x} β'^s ∫_T^{T+t} ... ],
    // α' = α+T, β' = β+T: dying within (T, T+t] before buying counts as no purchase.
    for (const Params& p : kParams)
        for (const Customer& c : kCustomers) {
            const double t = 39, n = p.r + c.x, a = p.alpha + c.T, b = p.beta + c.T;
            const double pa = direct_probability_alive(p, c);
            const double survive = std::pow(a / (a + t), n) * std::pow(b / (b + t), p.s);
            const double die_first = p.s * std::pow(a, n) * std::pow(b, p.s) * simpson_integral(p, c.x, c.T, c.T + t);
            const double expected = 1 - pa + pa * (survive + die_first);
            const double got = pnbd::probability_no_purchase(p, c, t);
            EXPECT_NEAR(got, expected, 1e-9) << "x=" << c.x << " T=" << c.T;
            EXPECT_GT(got, 1 - pa + pa * survive - 1e-12);
        }
    EXPECT_EQ(pnbd::probability_no_purchase(kPublished, {2, 30, 38}, 0), 1.0);
    // Over a long horizon a customer buys or dies: no purchase tends to P(die before buying).
    EXPECT_LT(pnbd::probability_no_purchase(kPublished, {20, 37, 39}, 1),
              pnbd::probability_no_purchase(kPublished, {0, 0, 39}, 1));
}

TEST(ParetoNbd, FitReproducesThePublishedCdnowFigures) {
    const auto start = std::chrono::steady_clock::now();
    const pnbd::Fit fit = pnbd::fit(cdnow_rows());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << std::setprecision(10) << "Pareto/NBD on CDNOW: r=" << fit.params.r << " alpha=" << fit.params.alpha
              << " s=" << fit.params.s << " beta=" << fit.params.beta << " LL=" << fit.log_likelihood
              << " evaluations=" << fit.evaluations << " converged=" << fit.converged << " in " << ms << " ms\n";
    EXPECT_TRUE(fit.converged);
    EXPECT_NEAR(fit.params.r, 0.553, 0.02);
    EXPECT_NEAR(fit.params.alpha, 10.58, 0.02);
    EXPECT_NEAR(fit.params.s, 0.606, 0.02);
    EXPECT_NEAR(fit.params.beta, 11.67, 0.02);
    EXPECT_GE(fit.log_likelihood, kPublishedLogLikelihood - 0.01);
}

TEST(ParetoNbd, FitDoesNotDependOnTheTimeUnit) {
    std::vector<Row> days = cdnow_rows();
    for (Row& row : days) {
        row.customer.t_x *= 7;
        row.customer.T *= 7;
    }
    const pnbd::Fit weeks = pnbd::fit(cdnow_rows()), in_days = pnbd::fit(days);
    EXPECT_NEAR(in_days.params.r, weeks.params.r, 1e-5);
    EXPECT_NEAR(in_days.params.alpha / 7, weeks.params.alpha, 1e-4);
    EXPECT_NEAR(in_days.params.s, weeks.params.s, 1e-5);
    EXPECT_NEAR(in_days.params.beta / 7, weeks.params.beta, 1e-4);
}

TEST(ParetoNbd, BadInputIsAnErrorNamingTheArgument) {
    const auto message = [](auto f) {
        try {
            f();
        } catch (const lifecycle::Error& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    EXPECT_NE(message([] { pnbd::probability_alive({0.5, 1, 0, 1}, {0, 0, 1}); }).find("\"s\""), std::string::npos);
    EXPECT_NE(message([] { pnbd::log_likelihood({0.5, 1, 1, -1}, {0, 0, 1}); }).find("\"beta\""), std::string::npos);
    EXPECT_NE(message([] { pnbd::expected_purchases(kPublished, {0, 0, 1}, -1); }).find("\"horizon\""), std::string::npos);
    EXPECT_THROW(pnbd::probability_no_purchase(kPublished, {0, 0, 1}, std::nan("")), lifecycle::Error);
    EXPECT_THROW(pnbd::log_likelihood(kPublished, {3, 50, 40}), lifecycle::Error);
    EXPECT_THROW(pnbd::fit({}), lifecycle::Error);
    EXPECT_THROW(pnbd::fit({{{3, 5, 10}, 1}}), lifecycle::Error);
    EXPECT_THROW(pnbd::fit({{{0, 0, 10}, 500}, {{0, 0, 20}, 700}}), lifecycle::Error);
}
