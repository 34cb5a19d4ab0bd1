#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.hpp"
#include "core/logistic.hpp"

namespace logistic = lifecycle::logistic;
using logistic::Row;

namespace {

// A uniform in (0, 1) and a standard normal from mt19937_64's raw output, so the data are
// the same on every standard library (std::normal_distribution is not specified).
double uniform(std::mt19937_64& rng) { return (static_cast<double>(rng() >> 11) + 0.5) * 0x1.0p-53; }
double normal(std::mt19937_64& rng) {
    const double u = uniform(rng);
    const double v = uniform(rng);
    return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
}

// Rows with outcome ~ Bernoulli(logistic(b0 + b1·x1 + b2·x2)): x1 ~ N(0, 1), x2 ~ 10 + 3·N(0, 1)
// (off-centre and wide, so standardization matters), x3 ∈ {0, 1} with P 0.3.
std::vector<Row> simulate(std::size_t n, const std::vector<double>& beta, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    std::vector<Row> rows;
    for (std::size_t i = 0; i < n; ++i) {
        const std::vector<double> x = {normal(rng), 10.0 + 3.0 * normal(rng), uniform(rng) < 0.3 ? 1.0 : 0.0};
        double eta = beta[0];
        for (std::size_t j = 0; j < x.size(); ++j) eta += beta[j + 1] * x[j];
        const bool y = uniform(rng) < 1.0 / (1.0 + std::exp(-eta));
        rows.push_back({y, x, 1.0});
    }
    return rows;
}

// Expects an invalid_parameter Error whose message contains `text`.
template <typename Call>
void expect_invalid(Call&& call, const std::string& text) {
    try {
        call();
        ADD_FAILURE() << "no error; expected one containing: " << text;
    } catch (const lifecycle::Error& e) {
        EXPECT_EQ(e.kind(), lifecycle::ErrorKind::invalid_parameter);
        EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
}

// a/b: true/false counts at x = 0; c/d at x = 1.
std::vector<Row> two_groups(int a, int b, int c, int d) {
    std::vector<Row> rows;
    for (int i = 0; i < a; ++i) rows.push_back({true, {0.0}, 1.0});
    for (int i = 0; i < b; ++i) rows.push_back({false, {0.0}, 1.0});
    for (int i = 0; i < c; ++i) rows.push_back({true, {1.0}, 1.0});
    for (int i = 0; i < d; ++i) rows.push_back({false, {1.0}, 1.0});
    return rows;
}

}  // namespace

// The true coefficients within 4 standard errors. The standard errors come from the
// inverse Fisher information at the truth, computed here by hand (3 + 1 parameters).
TEST(Logistic, RecoversSimulatedCoefficients) {
    const std::vector<double> truth = {-2.0, 0.8, 0.15, -0.6};
    const std::vector<Row> rows = simulate(20000, truth, 20261201);
    const logistic::Fit fit = logistic::fit(rows);
    ASSERT_TRUE(fit.converged);
    ASSERT_EQ(fit.coefficients.size(), 4u);
    // Fisher information I = Σ p(1-p) x xᵀ (x with a leading 1).
    double info[4][4] = {};
    for (const Row& r : rows) {
        const double x[4] = {1.0, r.features[0], r.features[1], r.features[2]};
        double eta = 0;
        for (int j = 0; j < 4; ++j) eta += truth[j] * x[j];
        const double p = 1.0 / (1.0 + std::exp(-eta));
        for (int a = 0; a < 4; ++a)
            for (int b = 0; b < 4; ++b) info[a][b] += p * (1 - p) * x[a] * x[b];
    }
    // Invert by Gauss–Jordan.
    double inv[4][4] = {};
    for (int i = 0; i < 4; ++i) inv[i][i] = 1.0;
    for (int c = 0; c < 4; ++c) {
        const double pivot = info[c][c];
        for (int j = 0; j < 4; ++j) info[c][j] /= pivot, inv[c][j] /= pivot;
        for (int r = 0; r < 4; ++r) {
            if (r == c) continue;
            const double f = info[r][c];
            for (int j = 0; j < 4; ++j) info[r][j] -= f * info[c][j], inv[r][j] -= f * inv[c][j];
        }
    }
    for (int j = 0; j < 4; ++j) {
        const double se = std::sqrt(inv[j][j]);
        EXPECT_NEAR(fit.coefficients[j], truth[j], 4 * se) << "coefficient " << j << " se " << se;
    }
    // The gradient of the log-likelihood vanishes at the fit (the score equations):
    // Σ (y − p) x = 0 for the intercept and each feature, on the original scale.
    double score_eq[4] = {};
    for (const Row& r : rows) {
        const double p = logistic::score(fit.coefficients, r.features);
        const double x[4] = {1.0, r.features[0], r.features[1], r.features[2]};
        for (int j = 0; j < 4; ++j) score_eq[j] += ((r.outcome ? 1.0 : 0.0) - p) * x[j];
    }
    for (int j = 0; j < 4; ++j) EXPECT_LT(std::abs(score_eq[j]) / rows.size(), 1e-5) << j;
}

// One binary feature: the MLE is the observed log odds in each group, so the intercept is
// log(a/b) and the slope the log odds ratio log((c/d)/(a/b)); the log-likelihood is
// Σ n log(n / group size).
TEST(Logistic, SingleBinaryFeatureIsTheLogOddsRatio) {
    const int a = 30, b = 70, c = 45, d = 15;
    const logistic::Fit fit = logistic::fit(two_groups(a, b, c, d));
    ASSERT_TRUE(fit.converged);
    EXPECT_NEAR(fit.coefficients[0], std::log(30.0 / 70.0), 1e-6);
    EXPECT_NEAR(fit.coefficients[1], std::log((45.0 / 15.0) / (30.0 / 70.0)), 1e-6);
    const double ll = a * std::log(0.3) + b * std::log(0.7) + c * std::log(0.75) + d * std::log(0.25);
    EXPECT_NEAR(fit.log_likelihood, ll, 1e-9);
    EXPECT_NEAR(logistic::score(fit.coefficients, {0.0}), 0.3, 1e-7);
    EXPECT_NEAR(logistic::score(fit.coefficients, {1.0}), 0.75, 1e-7);
}

// Weights are counts: the same fit as repeating the rows.
TEST(Logistic, WeightsAreCounts) {
    const std::vector<Row> weighted = {{true, {0.0}, 30}, {false, {0.0}, 70}, {true, {1.0}, 45}, {false, {1.0}, 15}};
    const logistic::Fit w = logistic::fit(weighted);
    const logistic::Fit r = logistic::fit(two_groups(30, 70, 45, 15));
    EXPECT_EQ(w.coefficients, r.coefficients);
    EXPECT_EQ(w.log_likelihood, r.log_likelihood);
}

// No features: the intercept is the log odds of the mean outcome.
TEST(Logistic, InterceptOnly) {
    std::vector<Row> rows;
    for (int i = 0; i < 40; ++i) rows.push_back({i < 10, {}, 1.0});
    const logistic::Fit fit = logistic::fit(rows);
    ASSERT_EQ(fit.coefficients.size(), 1u);
    EXPECT_NEAR(fit.coefficients[0], std::log(10.0 / 30.0), 1e-7);
}

// The order of the rows does not change a single bit of the fit.
TEST(Logistic, OrderDoesNotMatter) {
    std::vector<Row> rows = simulate(3000, {0.5, -1.0, 0.1, 0.4}, 7);
    const logistic::Fit first = logistic::fit(rows);
    std::mt19937_64 rng(99);
    std::shuffle(rows.begin(), rows.end(), rng);
    const logistic::Fit second = logistic::fit(rows);
    EXPECT_EQ(first.coefficients, second.coefficients);
    EXPECT_EQ(first.log_likelihood, second.log_likelihood);
    EXPECT_EQ(first.evaluations, second.evaluations);
}

// The coefficients do not depend on the features' unit (standardization), and a constant
// feature gets 0.
TEST(Logistic, ScaleAndConstantFeature) {
    std::vector<Row> rows = simulate(3000, {0.5, -1.0, 0.1, 0.4}, 11);
    const logistic::Fit base = logistic::fit(rows);
    for (Row& r : rows) {
        r.features[1] *= 1000.0;
        r.features.push_back(42.0);
    }
    const logistic::Fit scaled = logistic::fit(rows);
    ASSERT_EQ(scaled.coefficients.size(), 5u);
    EXPECT_NEAR(scaled.coefficients[0], base.coefficients[0], 1e-6);
    EXPECT_NEAR(scaled.coefficients[1], base.coefficients[1], 1e-6);
    EXPECT_NEAR(scaled.coefficients[2] * 1000.0, base.coefficients[2], 1e-6);
    EXPECT_NEAR(scaled.coefficients[3], base.coefficients[3], 1e-6);
    EXPECT_EQ(scaled.coefficients[4], 0.0);
    EXPECT_NEAR(scaled.log_likelihood, base.log_likelihood, 1e-7);
}

// The penalty shrinks the (standardized) slope towards 0 and leaves a fit that still
// satisfies its own optimality condition: the mean (y − p)·z = 2·penalizer·β_std.
TEST(Logistic, PenaltyShrinks) {
    const std::vector<Row> rows = two_groups(30, 70, 45, 15);
    const logistic::Fit plain = logistic::fit(rows);
    lifecycle::mle::FitOptions options;
    options.penalizer = 0.05;
    const logistic::Fit shrunk = logistic::fit(rows, options);
    ASSERT_TRUE(shrunk.converged);
    EXPECT_GT(shrunk.coefficients[1], 0.0);
    EXPECT_LT(shrunk.coefficients[1], plain.coefficients[1]);
    EXPECT_LT(shrunk.log_likelihood, plain.log_likelihood);
    const double n = 160, mean = 60.0 / n, sd = std::sqrt(mean * (1 - mean));
    double g0 = 0, g1 = 0;
    for (const Row& r : rows) {
        const double res = (r.outcome ? 1.0 : 0.0) - logistic::score(shrunk.coefficients, r.features);
        g0 += res / n;
        g1 += res * (r.features[0] - mean) / sd / n;
    }
    EXPECT_NEAR(g0, 0.0, 1e-6);
    EXPECT_NEAR(g1, 2 * 0.05 * shrunk.coefficients[1] * sd, 1e-6);
}

// Perfect separation: finite with a penalty; without one, not converged yet finite.
TEST(Logistic, PerfectSeparation) {
    std::vector<Row> rows;
    for (int i = 0; i < 20; ++i) rows.push_back({i >= 10, {static_cast<double>(i)}, 1.0});
    lifecycle::mle::FitOptions options;
    options.penalizer = 0.01;
    const logistic::Fit penalized = logistic::fit(rows, options);
    EXPECT_TRUE(penalized.converged);
    EXPECT_GT(penalized.coefficients[1], 0.0);
    EXPECT_TRUE(std::isfinite(penalized.coefficients[0]));
    const logistic::Fit plain = logistic::fit(rows);
    EXPECT_FALSE(plain.converged);
    for (double c : plain.coefficients) EXPECT_TRUE(std::isfinite(c));
    EXPECT_TRUE(std::isfinite(plain.log_likelihood));
    // Quasi-complete: one tied row at the boundary.
    rows.push_back({false, {10.0}, 1.0});
    EXPECT_FALSE(logistic::fit(rows).converged);
}

TEST(Logistic, Errors) {
    expect_invalid([] { logistic::fit(std::vector<Row>{}); }, "argument \"features\"");
    expect_invalid([] { logistic::fit({{true, {1.0, 2.0}, 1}, {false, {1.0}, 1}}); },
                   "argument \"features\" must have the same length in every row");
    expect_invalid([] { logistic::fit({{true, {1.0}, 1}, {false, {std::nan("")}, 1}}); },
                   "argument \"features\" must be finite");
    expect_invalid([] { logistic::fit({{true, {1.0}, 1}, {false, {HUGE_VAL}, 1}}); },
                   "argument \"features\" must be finite");
    expect_invalid([] { logistic::fit({{true, {1.0}, 1}, {true, {2.0}, 1}}); },
                   "argument \"outcome\" is true in every row");
    expect_invalid([] { logistic::fit({{false, {1.0}, 1}, {false, {2.0}, 1}}); },
                   "argument \"outcome\" is false in every row");
    expect_invalid([] { logistic::fit({{true, {1.0}, -1}, {false, {2.0}, 1}}); }, "argument \"weight\"");
    expect_invalid([] { logistic::fit({{true, {1.0}, 0}, {false, {2.0}, 0}}); }, "argument \"weight\"");
    lifecycle::mle::FitOptions options;
    options.penalizer = -1;
    expect_invalid([&] { logistic::fit(two_groups(1, 1, 1, 1), options); }, "argument \"penalizer\"");
    expect_invalid([] { logistic::score({1.0, 2.0}, {1.0, 2.0}); }, "argument \"features\" must have 1");
    expect_invalid([] { logistic::score({}, {}); }, "argument \"model\"");
    expect_invalid([] { logistic::score({1.0, 2.0}, {std::nan("")}); }, "argument \"features\" must be finite");
    expect_invalid([] { logistic::score({1.0, HUGE_VAL}, {1.0}); }, "argument \"model\"");
}

TEST(Logistic, ScoreIsStable) {
    EXPECT_DOUBLE_EQ(logistic::score({0.0, 1.0}, {0.0}), 0.5);
    EXPECT_DOUBLE_EQ(logistic::score({0.0, 1.0}, {std::log(3.0)}), 0.75);
    EXPECT_GT(logistic::score({0.0, 1.0}, {-700.0}), 0.0);  // e^-700, not 0/∞
    EXPECT_EQ(logistic::score({0.0, 1.0}, {800.0}), 1.0);
}

// The flat layout (what the PostgreSQL aggregate passes) gives the same fit as the rows.
TEST(Logistic, FlatTableIsTheSameFit) {
    const std::vector<Row> rows = simulate(2000, {0.5, -1.0, 0.1, 0.4}, 5);
    std::vector<double> values;
    for (const Row& r : rows) {
        values.push_back(r.outcome ? 1.0 : 0.0);
        values.insert(values.end(), r.features.begin(), r.features.end());
    }
    const logistic::Fit flat = logistic::fit(logistic::Table{rows.size(), 3, values.data(), nullptr});
    const logistic::Fit from_rows = logistic::fit(rows);
    EXPECT_EQ(flat.coefficients, from_rows.coefficients);
    EXPECT_EQ(flat.log_likelihood, from_rows.log_likelihood);
    values[0] = 0.5;
    expect_invalid([&] { logistic::fit(logistic::Table{rows.size(), 3, values.data(), nullptr}); },
                   "argument \"outcome\" must be 0 or 1");
    expect_invalid([&] { logistic::fit(logistic::Table{0, 3, values.data(), nullptr}); },
                   "argument \"features\"");
}
