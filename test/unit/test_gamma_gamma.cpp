#include <gtest/gtest.h>

#include <boost/math/special_functions/gamma.hpp>

#include <chrono>
#include <cmath>
#include <iomanip>
#include <iostream>
#include <limits>
#include <vector>

#include "cdnow_summary.hpp"
#include "core/error.hpp"
#include "core/gamma_gamma.hpp"

using lifecycle::gamma_gamma::Customer;
using lifecycle::gamma_gamma::Gradient;
using lifecycle::gamma_gamma::Params;
using lifecycle::gamma_gamma::Row;
namespace gg = lifecycle::gamma_gamma;

namespace {

const Params kPublished{6.25, 3.74, 15.44};

// All 2,357 CDNOW customers; the fitter itself leaves out the 1,411 without repeat purchases.
std::vector<Row> cdnow_rows() {
    std::vector<Row> rows;
    for (const cdnow::Customer& c : cdnow::read_summary()) rows.push_back({{c.x, c.zbar}, 1.0});
    return rows;
}

// Fader & Hardie (2013), eq. (4) as printed: Γ(px+q)/(Γ(px)Γ(q)) γ^q x^{px} zbar^{px−1} /
// (γ + x zbar)^{px+q}, in plain arithmetic (small x only).
double note_density(const Params& p, const Customer& c) {
    using boost::math::tgamma;
    const double px = p.p * c.x;
    return tgamma(px + p.q) / (tgamma(px) * tgamma(p.q)) * std::pow(p.gamma, p.q) * std::pow(c.x, px) *
           std::pow(c.zbar, px - 1) / std::pow(p.gamma + c.x * c.zbar, px + p.q);
}

Params with(Params p, int i, double value) {
    double* fields[] = {&p.p, &p.q, &p.gamma};
    *fields[i] = value;
    return p;
}

double field(const Params& p, int i) {
    const double fields[] = {p.p, p.q, p.gamma};
    return fields[i];
}

const std::vector<Customer> kCustomers = {{1, 22.35}, {2, 5.5}, {5, 80.0}, {14, 41.2}, {1, 0.01}};

}  // namespace

TEST(GammaGamma, LogLikelihoodEqualsTheNotesFormula) {
    for (const Params& p : {kPublished, Params{1.5, 0.8, 2.0}})
        for (const Customer& c : kCustomers)
            EXPECT_NEAR(gg::log_likelihood(p, c), std::log(note_density(p, c)), 1e-10)
                << "x=" << c.x << " zbar=" << c.zbar;
}

TEST(GammaGamma, GradientMatchesCentralDifferences) {
    for (const Params& p : {kPublished, Params{1.5, 0.8, 2.0}})
        for (const Customer& c : kCustomers) {
            Gradient g;
            gg::log_likelihood(p, c, &g);
            for (int i = 0; i < 3; ++i) {
                const double h = 1e-6 * field(p, i);
                const double numeric = (gg::log_likelihood(with(p, i, field(p, i) + h), c) -
                                        gg::log_likelihood(with(p, i, field(p, i) - h), c)) /
                                       (2 * h);
                EXPECT_NEAR(g[i], numeric, 1e-6 * std::max(1.0, std::abs(numeric)))
                    << "parameter " << i << " x=" << c.x;
            }
        }
}

TEST(GammaGamma, FitReproducesThePublishedCdnowFigures) {
    const auto rows = cdnow_rows();
    ASSERT_EQ(rows.size(), 2357u);
    const auto start = std::chrono::steady_clock::now();
    const gg::Fit fit = gg::fit(rows);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    std::cout << std::setprecision(8) << "Gamma-Gamma CDNOW fit: p=" << fit.params.p << " q=" << fit.params.q
              << " gamma=" << fit.params.gamma << " LL=" << fit.log_likelihood
              << " evaluations=" << fit.evaluations << " in " << ms << " ms\n";
    EXPECT_TRUE(fit.converged);
    EXPECT_NEAR(fit.params.p, 6.25, 0.01);
    EXPECT_NEAR(fit.params.q, 3.74, 0.01);
    EXPECT_NEAR(fit.params.gamma, 15.44, 0.01);
    // The exact optimum (data/README.md).
    EXPECT_NEAR(fit.params.p, 6.2488, 0.0005);
    EXPECT_NEAR(fit.params.q, 3.7446, 0.0005);
    EXPECT_NEAR(fit.params.gamma, 15.4477, 0.0005);
    EXPECT_NEAR(fit.log_likelihood, -4055.92, 0.01);
}

TEST(GammaGamma, FitOfRepeatBuyersOnlyIsTheSame) {
    std::vector<Row> repeat;
    for (const Row& row : cdnow_rows())
        if (row.customer.x > 0) repeat.push_back(row);
    ASSERT_EQ(repeat.size(), 946u);
    const auto all = gg::fit(cdnow_rows());
    const auto only = gg::fit(repeat);
    EXPECT_DOUBLE_EQ(all.log_likelihood, only.log_likelihood);
    EXPECT_DOUBLE_EQ(all.params.q, only.params.q);
}

TEST(GammaGamma, FitDoesNotDependOnTheCurrency) {
    std::vector<Row> cents;
    for (const Row& row : cdnow_rows()) cents.push_back({{row.customer.x, row.customer.zbar * 100}, 1});
    const auto dollars = gg::fit(cdnow_rows());
    const auto in_cents = gg::fit(cents);
    EXPECT_NEAR(in_cents.params.p, dollars.params.p, 1e-4);
    EXPECT_NEAR(in_cents.params.q, dollars.params.q, 1e-4);
    EXPECT_NEAR(in_cents.params.gamma, dollars.params.gamma * 100, 1e-2);
}

TEST(GammaGamma, PenalizerAndShortFits) {
    lifecycle::mle::FitOptions options;
    options.penalizer = 0.01;
    const auto penalized = gg::fit(cdnow_rows(), options);
    EXPECT_LT(penalized.log_likelihood, gg::fit(cdnow_rows()).log_likelihood);
    EXPECT_LT(penalized.params.p, 6.2488);
    options = {};
    options.max_evaluations = 2;
    const auto short_fit = gg::fit(cdnow_rows(), options);
    EXPECT_FALSE(short_fit.converged);
    EXPECT_TRUE(std::isfinite(short_fit.log_likelihood));
}

TEST(GammaGamma, ExpectedAverageValue) {
    const Params& p = kPublished;
    // Population mean p γ / (q − 1) for a customer without repeat purchases.
    EXPECT_NEAR(gg::expected_average_value(p, {0, 0}), 6.25 * 15.44 / 2.74, 1e-12);
    // A weighted mean of the population mean and the customer's own zbar.
    const double w = p.p * 2 / (p.p * 2 + p.q - 1);
    EXPECT_NEAR(gg::expected_average_value(p, {2, 22.35}), (1 - w) * 6.25 * 15.44 / 2.74 + w * 22.35, 1e-12);
    EXPECT_NEAR(gg::expected_average_value(p, {2, 0}), (1 - w) * 6.25 * 15.44 / 2.74, 1e-12);
}

TEST(GammaGamma, LargeAndDegenerateInputsGiveFiniteAnswersOrErrors) {
    const Params& p = kPublished;
    Gradient g;
    EXPECT_TRUE(std::isfinite(gg::log_likelihood(p, {10000, 35.0}, &g)));
    for (double d : g) EXPECT_TRUE(std::isfinite(d));
    EXPECT_NEAR(gg::expected_average_value(p, {10000, 35.0}), 35.0, 0.01);
    // q <= 1: no finite mean for a customer without repeat purchases.
    EXPECT_THROW(gg::expected_average_value({6.25, 1.0, 15.44}, {0, 0}), lifecycle::Error);
    EXPECT_THROW(gg::expected_average_value({6.25, 0.5, 15.44}, {0, 0}), lifecycle::Error);
    EXPECT_THROW(gg::expected_average_value({0.1, 0.5, 15.44}, {2, 10}), lifecycle::Error);
    EXPECT_NEAR(gg::expected_average_value({6.25, 0.5, 15.44}, {1, 10}), 6.25 * 25.44 / 5.75, 1e-12);
    // Negative or missing spend.
    EXPECT_THROW(gg::expected_average_value(p, {2, -5}), lifecycle::Error);
    EXPECT_THROW(gg::expected_average_value(p, {2, std::nan("")}), lifecycle::Error);
    EXPECT_THROW(gg::log_likelihood(p, {2, -5}), lifecycle::Error);
    EXPECT_THROW(gg::log_likelihood(p, {2, 0}), lifecycle::Error);
    EXPECT_THROW(gg::log_likelihood(p, {0, 5}), lifecycle::Error);
    EXPECT_THROW(gg::log_likelihood(p, {1.5, 5}), lifecycle::Error);
    EXPECT_THROW(gg::log_likelihood({6.25, -1, 15.44}, {1, 5}), lifecycle::Error);
    EXPECT_THROW(gg::log_likelihood({6.25, 3.74, std::numeric_limits<double>::infinity()}, {1, 5}),
                 lifecycle::Error);
}

TEST(GammaGamma, DataThatCannotIdentifyTheModelIsAnError) {
    EXPECT_THROW(gg::fit({}), lifecycle::Error);
    EXPECT_THROW(gg::fit({{{0, 0}, 100}}), lifecycle::Error);       // no repeat buyer
    EXPECT_THROW(gg::fit({{{0, 0}, 100}, {{3, 20}, 1}}), lifecycle::Error);  // one
    EXPECT_THROW(gg::fit({{{3, 20}, 1}, {{2, -4}, 1}}), lifecycle::Error);   // negative spend
    EXPECT_THROW(gg::fit({{{3, 20}, 1}, {{2, 0}, 1}}), lifecycle::Error);    // zero spend
    EXPECT_THROW(gg::fit({{{3, 20}, -1}, {{2, 5}, 1}}), lifecycle::Error);   // negative weight
}
