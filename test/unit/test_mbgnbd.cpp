#include <gtest/gtest.h>

#include <boost/math/quadrature/tanh_sinh.hpp>
#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/hypergeometric_pFq.hpp>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <limits>
#include <random>
#include <vector>

#include "cdnow_summary.hpp"
#include "core/error.hpp"
#include "core/mbgnbd.hpp"
#include "simulate.hpp"

using lifecycle::mbgnbd::Customer;
using lifecycle::mbgnbd::Gradient;
using lifecycle::mbgnbd::Params;
using lifecycle::mbgnbd::Row;
namespace mbgnbd = lifecycle::mbgnbd;

namespace {

// The MBG/NBD fit of the CDNOW sample as published (r, α, a, b).
const Params kPublished{0.525, 6.183, 0.891, 1.614};

std::vector<Row> cdnow_rows() {
    std::vector<Row> rows;
    for (const cdnow::Customer& c : cdnow::read_summary()) rows.push_back({{c.x, c.t_x, c.T}, 1.0});
    return rows;
}

// The two terms of the likelihood, written out from the model with plain doubles and
// Boost's beta and gamma functions: alive at T after surviving the x + 1 purchases (the
// first one included), or dropped out right after the last one (at 0 when x = 0).
struct PaperTerms {
    double alive;
    double dropped;
};

PaperTerms paper_terms(const Params& p, const Customer& c, double extra_time = 0) {
    using boost::math::beta;
    using boost::math::tgamma;
    const double common = tgamma(p.r + c.x) * std::pow(p.alpha, p.r) / tgamma(p.r) / beta(p.a, p.b);
    return {beta(p.a, p.b + c.x + 1) * common / std::pow(p.alpha + c.T + extra_time, p.r + c.x),
            beta(p.a + 1, p.b + c.x) * common / std::pow(p.alpha + c.t_x, p.r + c.x)};
}

double paper_likelihood(const Params& p, const Customer& c) {
    const PaperTerms t = paper_terms(p, c);
    return t.alive + t.dropped;
}

// The conditional expectation as printed (untransformed 2F1 by Boost's generic pFq).
double paper_expected_purchases(const Params& p, const Customer& c, double t) {
    const double z = t / (p.alpha + c.T + t);
    const double f = boost::math::hypergeometric_pFq({p.r + c.x, p.b + c.x + 1}, {p.a + p.b + c.x}, z);
    const double bracket = (p.a + p.b + c.x) / (p.a - 1) *
                           (1 - std::pow((p.alpha + c.T) / (p.alpha + c.T + t), p.r + c.x) * f);
    const double odds = p.a / (p.b + c.x) * std::pow((p.alpha + c.T) / (p.alpha + c.t_x), p.r + c.x);
    return bracket / (1 + odds);
}

// The same expectation by quadrature, from the model rather than the formula: an alive
// customer's posterior is λ ~ Gamma(r+x, α+T), p ~ Beta(a, b+x+1); given p, purchases come
// until a dropout, E[Y | λ, p] = (1 − e^{−λpt})/p, whose mean over λ is
// (1 − ((α+T)/(α+T+pt))^(r+x))/p; integrated over p and weighted by P(alive).
double integrated_expected_purchases(const Params& p, const Customer& c, double t) {
    const double n = p.r + c.x, base = p.alpha + c.T, b_post = p.b + c.x + 1;
    const double log_beta = std::log(boost::math::beta(p.a, b_post));
    auto integrand = [&](double q) {
        const double density = std::exp((p.a - 1) * std::log(q) + (b_post - 1) * std::log1p(-q) - log_beta);
        return density * (-std::expm1(-n * std::log1p(q * t / base))) / q;
    };
    boost::math::quadrature::tanh_sinh<double> integrator;
    const double if_alive = integrator.integrate(integrand, 0.0, 1.0);
    const PaperTerms terms = paper_terms(p, c);
    return if_alive * terms.alive / (terms.alive + terms.dropped);
}

Params with(Params p, int i, double value) {
    double* fields[] = {&p.r, &p.alpha, &p.a, &p.b};
    *fields[i] = value;
    return p;
}

double field(const Params& p, int i) {
    const double fields[] = {p.r, p.alpha, p.a, p.b};
    return fields[i];
}

const std::vector<Customer> kCustomers = {
    {0, 0, 40}, {1, 5, 40}, {2, 30.43, 38.86}, {7, 35.5, 38}, {14, 2, 3}, {200, 38, 40}, {3, 10, 10}, {0, 0, 0}};

const std::vector<Params> kParams = {kPublished, Params{0.25, 4.0, 0.8, 2.5}, Params{2.0, 0.5, 3.0, 0.7}};

}  // namespace

TEST(Mbgnbd, LogLikelihoodEqualsTheModelsFormula) {
    for (const Params& p : kParams)
        for (const Customer& c : kCustomers) {
            if (c.x > 20) continue;  // the formula as written overflows there
            EXPECT_NEAR(mbgnbd::log_likelihood(p, c), std::log(paper_likelihood(p, c)), 1e-10)
                << "x=" << c.x << " t_x=" << c.t_x << " T=" << c.T;
        }
}

TEST(Mbgnbd, GradientMatchesCentralDifferences) {
    for (const Params& p : kParams)
        for (const Customer& c : kCustomers) {
            Gradient g;
            mbgnbd::log_likelihood(p, c, &g);
            for (int i = 0; i < 4; ++i) {
                const double h = 1e-6 * field(p, i);
                const double up = mbgnbd::log_likelihood(with(p, i, field(p, i) + h), c);
                const double down = mbgnbd::log_likelihood(with(p, i, field(p, i) - h), c);
                const double numeric = (up - down) / (2 * h);
                EXPECT_NEAR(g[i], numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
                    << "parameter " << i << " x=" << c.x;
            }
        }
}

TEST(Mbgnbd, WeightedRowsAddUp) {
    std::vector<Row> rows;
    double expected = 0;
    for (std::size_t i = 0; i < kCustomers.size(); ++i) {
        const double w = 1.0 + static_cast<double>(i);
        rows.push_back({kCustomers[i], w});
        expected += w * mbgnbd::log_likelihood(kPublished, kCustomers[i]);
    }
    EXPECT_NEAR(mbgnbd::log_likelihood(kPublished, rows), expected, 1e-9);
}

TEST(Mbgnbd, LogLikelihoodAtThePublishedParameters) {
    double ll = 0;
    for (const Row& row : cdnow_rows()) ll += std::log(paper_likelihood(kPublished, row.customer));
    EXPECT_NEAR(mbgnbd::log_likelihood(kPublished, cdnow_rows()), ll, 1e-6);
    EXPECT_NEAR(ll, -9582.13, 0.1);
}

TEST(Mbgnbd, FitReproducesThePublishedCdnowFigures) {
    const auto rows = cdnow_rows();
    ASSERT_EQ(rows.size(), 2357u);
    const auto start = std::chrono::steady_clock::now();
    const mbgnbd::Fit fit = mbgnbd::fit(rows);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << std::setprecision(8) << "MBG/NBD CDNOW fit: r=" << fit.params.r << " alpha=" << fit.params.alpha
              << " a=" << fit.params.a << " b=" << fit.params.b << " LL=" << fit.log_likelihood
              << " evaluations=" << fit.evaluations << " in " << ms << " ms\n";
    EXPECT_TRUE(fit.converged);
    EXPECT_NEAR(fit.params.r, kPublished.r, 0.01);
    EXPECT_NEAR(fit.params.alpha, kPublished.alpha, 0.01);
    EXPECT_NEAR(fit.params.a, kPublished.a, 0.01);
    EXPECT_NEAR(fit.params.b, kPublished.b, 0.01);
    // The maximum is at least as high as the published point.
    EXPECT_GE(fit.log_likelihood, mbgnbd::log_likelihood(kPublished, rows) - 1e-6);
}

TEST(Mbgnbd, FitDoesNotDependOnTheTimeUnit) {
    const auto weeks = mbgnbd::fit(cdnow_rows());
    std::vector<Row> days;
    for (const Row& row : cdnow_rows())
        days.push_back({{row.customer.x, row.customer.t_x * 7, row.customer.T * 7}, row.weight});
    const auto in_days = mbgnbd::fit(days);
    EXPECT_NEAR(in_days.params.r, weeks.params.r, 1e-4);
    EXPECT_NEAR(in_days.params.alpha, weeks.params.alpha * 7, 1e-3);
    EXPECT_NEAR(in_days.params.a, weeks.params.a, 1e-4);
    EXPECT_NEAR(in_days.params.b, weeks.params.b, 1e-3);
}

// Simulated from the model's story (simulate.hpp), with the dropout after the first
// purchase (at time 0) too: the fit must recover the parameters it was simulated from.
TEST(Mbgnbd, FitRecoversSimulatedParameters) {
    const Params truth{0.5, 6.0, 0.7, 2.5};
    std::mt19937_64 rng(20240602);
    const simulate::Population population{simulate::Model::kMbgnbd, {truth.r, truth.alpha, truth.a, truth.b}, 20, 40, 0};
    const std::vector<Row> rows = simulate::rows(simulate::customers(population, 50000, rng));
    const auto fit = mbgnbd::fit(rows);
    EXPECT_TRUE(fit.converged);
    EXPECT_NEAR(fit.params.r, truth.r, 0.1 * truth.r);
    EXPECT_NEAR(fit.params.alpha, truth.alpha, 0.15 * truth.alpha);
    EXPECT_NEAR(fit.params.a, truth.a, 0.15 * truth.a);
    EXPECT_NEAR(fit.params.b, truth.b, 0.2 * truth.b);
}

TEST(Mbgnbd, DataThatCannotIdentifyTheModelIsAnError) {
    EXPECT_THROW(mbgnbd::fit({}), lifecycle::Error);
    EXPECT_THROW(mbgnbd::fit({{{0, 0, 10}, 0}}), lifecycle::Error);
    EXPECT_THROW(mbgnbd::fit({{{3, 5, 10}, 1}}), lifecycle::Error);
    EXPECT_THROW(mbgnbd::fit({{{0, 0, 10}, 500}, {{0, 0, 20}, 700}}), lifecycle::Error);
    lifecycle::mle::FitOptions options;
    options.penalizer = -1;
    EXPECT_THROW(mbgnbd::fit(cdnow_rows(), options), lifecycle::Error);
}

TEST(Mbgnbd, ProbabilityAlive) {
    const Params& p = kPublished;
    for (const Customer& c : kCustomers) {
        if (c.x > 20) continue;
        const PaperTerms t = paper_terms(p, c);
        EXPECT_NEAR(mbgnbd::probability_alive(p, c), t.alive / (t.alive + t.dropped), 1e-12) << "x=" << c.x;
    }
    // A one-time buyer is not certainly alive, and less so the longer ago they bought.
    const double recent = mbgnbd::probability_alive(p, {0, 0, 1});
    const double long_ago = mbgnbd::probability_alive(p, {0, 0, 38});
    EXPECT_LT(recent, 1.0);
    EXPECT_LT(long_ago, recent);
    EXPECT_NEAR(long_ago, 1 / (1 + p.a / p.b * std::pow((p.alpha + 38) / p.alpha, p.r)), 1e-12);
    // At T = 0 only the dropout at the first purchase counts: P(alive) = E[1 − p] = b/(a+b).
    EXPECT_NEAR(mbgnbd::probability_alive(p, {0, 0, 0}), p.b / (p.a + p.b), 1e-12);
}

TEST(Mbgnbd, ProbabilityOfNoPurchaseIsAJointProbabilityOverTheData) {
    // P(no purchase in (T, T+t] and the data) / P(data): the alive term with α+T+t in
    // place of α+T, the dropped term unchanged.
    for (const Params& p : kParams)
        for (const Customer& c : kCustomers) {
            if (c.x > 20) continue;
            for (double t : {0.0, 1.0, 39.0, 500.0}) {
                const PaperTerms now = paper_terms(p, c), later = paper_terms(p, c, t);
                const double expected = (later.alive + later.dropped) / (now.alive + now.dropped);
                EXPECT_NEAR(mbgnbd::probability_no_purchase(p, c, t), expected, 1e-12)
                    << "x=" << c.x << " t=" << t;
            }
        }
    EXPECT_THROW(mbgnbd::probability_no_purchase(kPublished, {0, 0, 1}, -1), lifecycle::Error);
    EXPECT_THROW(mbgnbd::probability_no_purchase(kPublished, {0, 0, 1}, std::nan("")), lifecycle::Error);
}

TEST(Mbgnbd, ExpectedPurchasesEqualTheFormulaAndTheIntegral) {
    for (const Params& p : kParams)
        for (const Customer& c : kCustomers) {
            if (c.x > 20) continue;
            for (double t : {0.5, 39.0, 200.0}) {
                const double e = mbgnbd::expected_purchases(p, c, t);
                EXPECT_NEAR(e, paper_expected_purchases(p, c, t), 1e-9 * std::max(1.0, e))
                    << "x=" << c.x << " t=" << t << " a=" << p.a;
                EXPECT_NEAR(e, integrated_expected_purchases(p, c, t), 1e-7 * std::max(1.0, e))
                    << "x=" << c.x << " t=" << t << " a=" << p.a;
            }
        }
    EXPECT_EQ(mbgnbd::expected_purchases(kPublished, {2, 30.43, 38.86}, 0), 0.0);
    EXPECT_THROW(mbgnbd::expected_purchases(kPublished, {0, 0, 1}, -1), lifecycle::Error);
    EXPECT_THROW(mbgnbd::expected_purchases(kPublished, {0, 0, 1}, 1e300), lifecycle::Error);
}

TEST(Mbgnbd, LargeAndDegenerateInputsGiveFiniteAnswersOrErrors) {
    const Params& p = kPublished;
    for (const Customer& c : {Customer{5000, 38, 40}, Customer{5000, 1, 40}, Customer{1e9, 1e9, 1e9}}) {
        Gradient g;
        EXPECT_TRUE(std::isfinite(mbgnbd::log_likelihood(p, c, &g)));
        for (double d : g) EXPECT_TRUE(std::isfinite(d));
        const double alive = mbgnbd::probability_alive(p, c);
        EXPECT_TRUE(alive >= 0 && alive <= 1);
        const double none = mbgnbd::probability_no_purchase(p, c, 39);
        EXPECT_TRUE(none >= 0 && none <= 1);
    }
    const double e = mbgnbd::expected_purchases(p, {5000, 38, 40}, 39);
    EXPECT_TRUE(std::isfinite(e) && e > 0 && e < 5000) << e;
    const double rate = (p.r + 5000) / (p.alpha + 40);
    EXPECT_NEAR(mbgnbd::expected_purchases(p, {5000, 40, 40}, 1), rate, 0.01 * rate);
    for (const Customer& bad : {Customer{-1, 0, 10}, Customer{1.5, 2, 10}, Customer{2, 11, 10},
                                Customer{0, 3, 10}, Customer{2, 0, 10}, Customer{std::nan(""), 0, 1}})
        EXPECT_THROW(mbgnbd::log_likelihood(p, bad), lifecycle::Error) << bad.x << " " << bad.t_x;
    EXPECT_THROW(mbgnbd::probability_alive({0, 1, 1, 1}, {0, 0, 1}), lifecycle::Error);
    EXPECT_THROW(mbgnbd::log_likelihood({1, 1, std::nan(""), 1}, {0, 0, 1}), lifecycle::Error);
}
