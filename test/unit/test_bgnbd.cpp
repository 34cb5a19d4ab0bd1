#include <gtest/gtest.h>

#include <boost/math/special_functions/beta.hpp>
#include <boost/math/special_functions/gamma.hpp>
#include <boost/math/special_functions/hypergeometric_pFq.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <limits>
#include <map>
#include <tuple>
#include <random>
#include <vector>

#include "cdnow_summary.hpp"
#include "core/bgnbd.hpp"
#include "core/error.hpp"
#include "simulate.hpp"

using lifecycle::bgnbd::Customer;
using lifecycle::bgnbd::Gradient;
using lifecycle::bgnbd::Params;
using lifecycle::bgnbd::Row;
namespace bgnbd = lifecycle::bgnbd;

namespace {

// The values of the published per-customer checks, and the published CDNOW fit.
const Params kCheck{0.25, 4.0, 0.8, 2.5};
const Params kPublished{0.243, 4.414, 0.793, 2.426};

std::vector<Row> cdnow_rows() {
    std::vector<Row> rows;
    for (const cdnow::Customer& c : cdnow::read_summary()) rows.push_back({{c.x, c.t_x, c.T}, 1.0});
    return rows;
}

// Eq. (6) of Fader, Hardie & Lee (2005) as printed, with Boost's beta and gamma functions:
// only usable where nothing overflows.
double paper_likelihood(const Params& p, const Customer& c) {
    using boost::math::beta;
    using boost::math::tgamma;
    const double common = tgamma(p.r + c.x) * std::pow(p.alpha, p.r) / tgamma(p.r);
    double l = beta(p.a, p.b + c.x) / beta(p.a, p.b) * common / std::pow(p.alpha + c.T, p.r + c.x);
    if (c.x > 0)
        l += beta(p.a + 1, p.b + c.x - 1) / beta(p.a, p.b) * common / std::pow(p.alpha + c.t_x, p.r + c.x);
    return l;
}

// Eq. (10) as printed, with Boost's generic pFq for 2F1 (no transformation).
double paper_expected_purchases(const Params& p, const Customer& c, double t) {
    const double z = t / (p.alpha + c.T + t);
    const double f = boost::math::hypergeometric_pFq({p.r + c.x, p.b + c.x}, {p.a + p.b + c.x - 1}, z);
    const double bracket = (p.a + p.b + c.x - 1) / (p.a - 1) *
                           (1 - std::pow((p.alpha + c.T) / (p.alpha + c.T + t), p.r + c.x) * f);
    const double odds = c.x > 0 ? p.a / (p.b + c.x - 1) * std::pow((p.alpha + c.T) / (p.alpha + c.t_x), p.r + c.x) : 0;
    return bracket / (1 + odds);
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
    {0, 0, 40}, {1, 5, 40}, {2, 30.43, 38.86}, {7, 35.5, 38}, {14, 2, 3}, {200, 38, 40}, {3, 10, 10}};

}  // namespace

TEST(Bgnbd, PublishedPerCustomerLogLikelihoods) {
    EXPECT_NEAR(bgnbd::log_likelihood(kCheck, {0, 0, 40}), -0.59947382, 5e-9);
    EXPECT_NEAR(bgnbd::log_likelihood(kCheck, {200, 38, 40}), 100.7957, 5e-5);
}

TEST(Bgnbd, LogLikelihoodEqualsThePapersFormula) {
    for (const Params& p : {kCheck, kPublished, Params{2.0, 0.5, 3.0, 0.7}})
        for (const Customer& c : kCustomers) {
            if (c.x > 20) continue;  // the formula as printed overflows there
            EXPECT_NEAR(bgnbd::log_likelihood(p, c), std::log(paper_likelihood(p, c)), 1e-10)
                << "x=" << c.x << " t_x=" << c.t_x << " T=" << c.T;
        }
}

TEST(Bgnbd, GradientMatchesCentralDifferences) {
    for (const Params& p : {kCheck, kPublished, Params{2.0, 0.5, 3.0, 0.7}})
        for (const Customer& c : kCustomers) {
            Gradient g;
            bgnbd::log_likelihood(p, c, &g);
            for (int i = 0; i < 4; ++i) {
                const double h = 1e-6 * field(p, i);
                const double up = bgnbd::log_likelihood(with(p, i, field(p, i) + h), c);
                const double down = bgnbd::log_likelihood(with(p, i, field(p, i) - h), c);
                const double numeric = (up - down) / (2 * h);
                EXPECT_NEAR(g[i], numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
                    << "parameter " << i << " x=" << c.x;
            }
        }
}

TEST(Bgnbd, WeightedRowsAddUp) {
    std::vector<Row> rows;
    double expected = 0;
    Gradient expected_gradient{};
    for (std::size_t i = 0; i < kCustomers.size(); ++i) {
        const double w = 1.0 + static_cast<double>(i);
        rows.push_back({kCustomers[i], w});
        Gradient g;
        expected += w * bgnbd::log_likelihood(kCheck, kCustomers[i], &g);
        for (int k = 0; k < 4; ++k) expected_gradient[k] += w * g[k];
    }
    Gradient total;
    EXPECT_NEAR(bgnbd::log_likelihood(kCheck, rows, &total), expected, 1e-9);
    for (int k = 0; k < 4; ++k) EXPECT_NEAR(total[k], expected_gradient[k], 1e-9);
}

TEST(Bgnbd, CompressMergesIdenticalCustomers) {
    const auto rows = bgnbd::compress({{{1, 5, 40}, 1}, {{0, 0, 40}, 2}, {{1, 5, 40}, 3}, {{1, 6, 40}, 0}});
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].customer.x, 0);
    EXPECT_EQ(rows[0].weight, 2);
    EXPECT_EQ(rows[1].customer.t_x, 5);
    EXPECT_EQ(rows[1].weight, 4);
    EXPECT_THROW(bgnbd::compress({{{1, 5, 40}, -1}}), lifecycle::Error);
    EXPECT_THROW(bgnbd::compress({{{1, 5, 40}, std::nan("")}}), lifecycle::Error);
}

// compress() merges by hashing: many distinct customers (the table grows several times
// while rows are pending) must give what a plain sort-and-merge gives, whatever their order.
TEST(Bgnbd, CompressAgreesWithSortingAndMergingManyCustomers) {
    std::mt19937_64 rng(7);
    std::uniform_int_distribution<int> small(0, 40);
    std::vector<Row> rows;
    std::map<std::tuple<double, double, double>, double> expected;
    for (int i = 0; i < 60000; ++i) {
        const double x = small(rng) % 5, T = 10 + small(rng);
        const double t_x = x == 0 ? 0.0 : 1 + small(rng) % 10;
        const double w = 1 + i % 3;
        rows.push_back({{x, t_x, T}, w});
        expected[{x, t_x, T}] += w;
    }
    rows.push_back({{0, -0.0, 12}, 1});  // −0 is 0
    expected[{0, 0, 12}] += 1;
    const auto merged = bgnbd::compress(rows);
    ASSERT_EQ(merged.size(), expected.size());
    std::size_t i = 0;
    for (const auto& [key, weight] : expected) {
        EXPECT_EQ(merged[i].customer.x, std::get<0>(key));
        EXPECT_EQ(merged[i].customer.t_x, std::get<1>(key));
        EXPECT_EQ(merged[i].customer.T, std::get<2>(key));
        EXPECT_EQ(merged[i].weight, weight);
        ++i;
    }
    std::shuffle(rows.begin(), rows.end(), rng);
    const auto shuffled = bgnbd::compress(rows);
    ASSERT_EQ(shuffled.size(), merged.size());
    for (std::size_t k = 0; k < merged.size(); ++k) {
        EXPECT_EQ(shuffled[k].customer.t_x, merged[k].customer.t_x);
        EXPECT_EQ(shuffled[k].weight, merged[k].weight);
    }
}

TEST(Bgnbd, FitReproducesThePublishedCdnowFigures) {
    const auto rows = cdnow_rows();
    ASSERT_EQ(rows.size(), 2357u);
    const auto start = std::chrono::steady_clock::now();
    const bgnbd::Fit fit = bgnbd::fit(rows);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << std::setprecision(8) << "BG/NBD CDNOW fit: r=" << fit.params.r << " alpha=" << fit.params.alpha
              << " a=" << fit.params.a << " b=" << fit.params.b << " LL=" << fit.log_likelihood
              << " evaluations=" << fit.evaluations << " in " << ms << " ms\n";
    EXPECT_TRUE(fit.converged);
    EXPECT_NEAR(fit.params.r, 0.243, 0.0005);
    EXPECT_NEAR(fit.params.alpha, 4.414, 0.0005);
    EXPECT_NEAR(fit.params.a, 0.793, 0.0005);
    EXPECT_NEAR(fit.params.b, 2.426, 0.0005);
    EXPECT_NEAR(fit.log_likelihood, -9582.4, 0.05);
}

TEST(Bgnbd, FitDoesNotDependOnTheTimeUnitOrOnCompression) {
    const auto weeks = bgnbd::fit(cdnow_rows());
    std::vector<Row> days;
    for (const Row& row : bgnbd::compress(cdnow_rows()))
        days.push_back({{row.customer.x, row.customer.t_x * 7, row.customer.T * 7}, row.weight});
    const auto in_days = bgnbd::fit(days);
    EXPECT_NEAR(in_days.params.r, weeks.params.r, 1e-5);
    EXPECT_NEAR(in_days.params.alpha, weeks.params.alpha * 7, 1e-4);
    EXPECT_NEAR(in_days.params.a, weeks.params.a, 1e-5);
    EXPECT_NEAR(in_days.params.b, weeks.params.b, 1e-4);
    // The likelihood is a density in the x purchase times: each costs log 7 in days.
    double purchases = 0;
    for (const Row& row : days) purchases += row.weight * row.customer.x;
    EXPECT_NEAR(in_days.log_likelihood, weeks.log_likelihood - purchases * std::log(7.0), 1e-3);
}

// Simulated from the model itself (simulate.hpp; counting purchases, as the model does):
// the fit must recover the parameters it was simulated from.
TEST(Bgnbd, FitRecoversSimulatedParameters) {
    const Params truth{0.5, 6.0, 0.7, 2.5};
    std::mt19937_64 rng(20240601);
    const simulate::Population population{simulate::Model::kBgnbd, {truth.r, truth.alpha, truth.a, truth.b}, 20, 40, 0};
    const std::vector<Row> rows = simulate::rows(simulate::customers(population, 50000, rng));
    const auto fit = bgnbd::fit(rows);
    EXPECT_TRUE(fit.converged);
    EXPECT_NEAR(fit.params.r, truth.r, 0.1 * truth.r);
    EXPECT_NEAR(fit.params.alpha, truth.alpha, 0.15 * truth.alpha);
    EXPECT_NEAR(fit.params.a, truth.a, 0.15 * truth.a);
    EXPECT_NEAR(fit.params.b, truth.b, 0.2 * truth.b);
}

TEST(Bgnbd, PenalizerShrinksTheParameters) {
    const auto plain = bgnbd::fit(cdnow_rows());
    lifecycle::mle::FitOptions options;
    options.penalizer = 0.1;
    const auto penalized = bgnbd::fit(cdnow_rows(), options);
    EXPECT_TRUE(penalized.converged);
    EXPECT_LT(penalized.log_likelihood, plain.log_likelihood);
    EXPECT_LT(penalized.params.a + penalized.params.b, plain.params.a + plain.params.b);
    options.penalizer = -1;
    EXPECT_THROW(bgnbd::fit(cdnow_rows(), options), lifecycle::Error);
}

TEST(Bgnbd, AFitCutShortIsNotConverged) {
    lifecycle::mle::FitOptions options;
    options.max_evaluations = 3;
    const auto fit = bgnbd::fit(cdnow_rows(), options);
    EXPECT_FALSE(fit.converged);
    EXPECT_LE(fit.evaluations, 3);
    EXPECT_TRUE(std::isfinite(fit.params.r) && std::isfinite(fit.log_likelihood));
}

TEST(Bgnbd, DataThatCannotIdentifyTheModelIsAnError) {
    EXPECT_THROW(bgnbd::fit({}), lifecycle::Error);
    EXPECT_THROW(bgnbd::fit({{{0, 0, 10}, 0}}), lifecycle::Error);
    EXPECT_THROW(bgnbd::fit({{{3, 5, 10}, 1}}), lifecycle::Error);
    EXPECT_THROW(bgnbd::fit({{{0, 0, 10}, 500}, {{0, 0, 20}, 700}}), lifecycle::Error);
}

TEST(Bgnbd, ExpectedPurchasesOfThePublishedCustomer) {
    EXPECT_NEAR(bgnbd::expected_purchases(kPublished, {2, 30.43, 38.86}, 39), 1.226, 0.0005);
}

TEST(Bgnbd, ExpectedPurchasesEqualThePapersFormula) {
    for (const Params& p : {kCheck, kPublished, Params{2.0, 0.5, 3.0, 0.7}, Params{0.3, 2.0, 0.2, 0.3}})
        for (const Customer& c : kCustomers) {
            if (c.x > 20) continue;  // Boost's untransformed 2F1 would overflow
            for (double t : {0.5, 39.0, 200.0})
                EXPECT_NEAR(bgnbd::expected_purchases(p, c, t), paper_expected_purchases(p, c, t),
                            1e-9 * std::max(1.0, paper_expected_purchases(p, c, t)))
                    << "x=" << c.x << " t=" << t << " a=" << p.a;
        }
}

TEST(Bgnbd, ExpectedPurchasesAreContinuousAtAEqualsOne) {
    const Customer c{2, 30.43, 38.86};
    const double at_one = bgnbd::expected_purchases({0.243, 4.414, 1.0, 2.426}, c, 39);
    EXPECT_NEAR(at_one, bgnbd::expected_purchases({0.243, 4.414, 1.0 + 1e-7, 2.426}, c, 39), 1e-6);
    EXPECT_NEAR(at_one, bgnbd::expected_purchases({0.243, 4.414, 1.0 - 1e-7, 2.426}, c, 39), 1e-6);
}

TEST(Bgnbd, ExpectedPurchasesOfANewCustomerFollowEquationSeven) {
    for (double t : {1.0, 39.0, 78.0}) {
        const Params& p = kPublished;
        const double z = t / (p.alpha + t);
        const double eq7 = (p.a + p.b - 1) / (p.a - 1) *
                           (1 - std::pow(p.alpha / (p.alpha + t), p.r) *
                                    boost::math::hypergeometric_pFq({p.r, p.b}, {p.a + p.b - 1}, z));
        EXPECT_NEAR(bgnbd::expected_purchases_new(p, t), eq7, 1e-10);
    }
}

TEST(Bgnbd, ProbabilityAlive) {
    const Params& p = kPublished;
    EXPECT_EQ(bgnbd::probability_alive(p, {0, 0, 38}), 1.0);
    const Customer c{2, 30.43, 38.86};
    const double odds = p.a / (p.b + c.x - 1) * std::pow((p.alpha + c.T) / (p.alpha + c.t_x), p.r + c.x);
    EXPECT_NEAR(bgnbd::probability_alive(p, c), 1 / (1 + odds), 1e-12);
    EXPECT_NEAR(bgnbd::probability_alive(p, {5, 38.86, 38.86}), 1 / (1 + p.a / (p.b + 4)), 1e-12);
}

TEST(Bgnbd, LargeAndDegenerateInputsGiveFiniteAnswersOrErrors) {
    const Params& p = kPublished;
    for (const Customer& c : {Customer{10000, 38, 40}, Customer{10000, 1, 40}, Customer{1e9, 1e9, 1e9}}) {
        Gradient g;
        EXPECT_TRUE(std::isfinite(bgnbd::log_likelihood(p, c, &g)));
        for (double d : g) EXPECT_TRUE(std::isfinite(d));
        const double alive = bgnbd::probability_alive(p, c);
        EXPECT_TRUE(alive >= 0 && alive <= 1);
    }
    // A customer buying 250 times a week while alive, last seen 2 weeks ago.
    const double e = bgnbd::expected_purchases(p, {10000, 38, 40}, 39);
    EXPECT_TRUE(std::isfinite(e) && e > 0 && e < 10000) << e;
    // Seen at T: a week brings about (r + x) / (α + T) purchases, the posterior mean rate.
    const double rate = (p.r + 10000) / (p.alpha + 40);
    EXPECT_NEAR(bgnbd::expected_purchases(p, {10000, 40, 40}, 1), rate, 0.01 * rate);
    // T = 0: a customer whose first purchase ends the calibration period: likelihood 1
    // (log 0, to rounding: sid's Boost 1.92 and libm give 1.1e-16).
    EXPECT_NEAR(bgnbd::log_likelihood(p, {0, 0, 0}), 0.0, 1e-12);
    EXPECT_TRUE(std::isfinite(bgnbd::expected_purchases(p, {0, 0, 0}, 39)));
    EXPECT_EQ(bgnbd::expected_purchases(p, {2, 30.43, 38.86}, 0), 0.0);
    // The longest horizon allowed is summed in full; beyond it, and a horizon no series
    // could sum, is an error, not a NaN.
    const double longest = 1e4 * (p.alpha + 1);
    EXPECT_NEAR(bgnbd::expected_purchases(p, {0, 0, 1}, longest),
                paper_expected_purchases(p, {0, 0, 1}, longest), 1e-9 * longest);
    EXPECT_THROW(bgnbd::expected_purchases(p, {0, 0, 1}, longest * 1.001), lifecycle::Error);
    EXPECT_THROW(bgnbd::expected_purchases(p, {0, 0, 1}, 1e300), lifecycle::Error);
    EXPECT_THROW(bgnbd::expected_purchases(p, {0, 0, 1}, std::numeric_limits<double>::infinity()),
                 lifecycle::Error);
    for (const Customer& bad : {Customer{-1, 0, 10}, Customer{1.5, 2, 10}, Customer{2, 11, 10},
                                Customer{0, 3, 10}, Customer{2, 0, 10}, Customer{std::nan(""), 0, 1},
                                Customer{1, 1, std::numeric_limits<double>::infinity()}})
        EXPECT_THROW(bgnbd::log_likelihood(p, bad), lifecycle::Error) << bad.x << " " << bad.t_x;
    EXPECT_THROW(bgnbd::expected_purchases(p, {0, 0, 1}, -1), lifecycle::Error);
    EXPECT_THROW(bgnbd::probability_alive({0, 1, 1, 1}, {0, 0, 1}), lifecycle::Error);
    EXPECT_THROW(bgnbd::log_likelihood({1, 1, std::nan(""), 1}, {0, 0, 1}), lifecycle::Error);
}

// P(no purchase in (T, T+t]) as a joint probability over the data, from eq. (6): the
// alive term with α+T+t in place of α+T, the dropped term unchanged, over L.
TEST(Bgnbd, ProbabilityOfNoPurchase) {
    using boost::math::beta;
    for (const Params& p : {kCheck, kPublished})
        for (const Customer& c : kCustomers) {
            if (c.x > 20) continue;
            for (double t : {0.0, 1.0, 39.0, 500.0}) {
                const double n = p.r + c.x;
                const double alive_then = beta(p.a, p.b + c.x) * std::pow(p.alpha + c.T + t, -n);
                const double alive_now = beta(p.a, p.b + c.x) * std::pow(p.alpha + c.T, -n);
                const double dropped = c.x > 0 ? beta(p.a + 1, p.b + c.x - 1) * std::pow(p.alpha + c.t_x, -n) : 0;
                EXPECT_NEAR(bgnbd::probability_no_purchase(p, c, t), (alive_then + dropped) / (alive_now + dropped),
                            1e-12)
                    << "x=" << c.x << " t=" << t;
            }
        }
    const double none = bgnbd::probability_no_purchase(kPublished, {10000, 38, 40}, 39);
    EXPECT_TRUE(none >= 0 && none <= 1);
    EXPECT_THROW(bgnbd::probability_no_purchase(kPublished, {0, 0, 1}, -1), lifecycle::Error);
}
