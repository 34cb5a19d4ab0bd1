// Ground truth: populations simulated from each purchase model (simulate.hpp, fixed seeds)
// where we know what the data cannot show — the generating parameters, who was still
// alive at the end of the calibration period T, who bought in the holdout. Each model
// must recover its parameters within sampling error, and its churn risk must rank the
// truly gone customers and the holdout non-buyers above the rest (AUC), at least as well
// as the recency rule where the theory says it must.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <functional>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "core/bgnbd.hpp"
#include "core/mbgnbd.hpp"
#include "core/pareto_nbd.hpp"
#include "simulate.hpp"

namespace bgnbd = lifecycle::bgnbd;
namespace mbgnbd = lifecycle::mbgnbd;
namespace pnbd = lifecycle::pareto_nbd;
using lifecycle::bgnbd::Customer;
using lifecycle::bgnbd::Row;

namespace {

using Vec4 = std::array<double, 4>;

// Mann–Whitney AUC: P(score of a positive > score of a negative), ties counting one half,
// from the mid-ranks of the scores.
double auc(const std::vector<double>& score, const std::vector<bool>& positive) {
    const std::size_t n = score.size();
    std::vector<std::size_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) { return score[i] < score[j]; });
    double rank_sum = 0, positives = 0;
    for (std::size_t i = 0; i < n;) {
        std::size_t j = i;
        while (j < n && score[order[j]] == score[order[i]]) ++j;
        const double mid_rank = (i + 1 + j) / 2.0;  // ranks i+1 … j share their mean
        for (std::size_t k = i; k < j; ++k)
            if (positive[order[k]]) {
                rank_sum += mid_rank;
                positives += 1;
            }
        i = j;
    }
    const double negatives = n - positives;
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives);
}

// Inverts a symmetric positive definite 4×4 matrix (Gauss–Jordan, no pivoting needed).
std::array<Vec4, 4> invert(std::array<Vec4, 4> m) {
    std::array<Vec4, 4> inv{};
    for (int i = 0; i < 4; ++i) inv[i][i] = 1;
    for (int c = 0; c < 4; ++c) {
        const double d = m[c][c];
        for (int k = 0; k < 4; ++k) {
            m[c][k] /= d;
            inv[c][k] /= d;
        }
        for (int r = 0; r < 4; ++r) {
            if (r == c) continue;
            const double f = m[r][c];
            for (int k = 0; k < 4; ++k) {
                m[r][k] -= f * m[c][k];
                inv[r][k] -= f * inv[c][k];
            }
        }
    }
    return inv;
}

// One model behind a common face.
struct Model {
    std::string name;
    simulate::Model kind;
    std::array<const char*, 4> names;
    std::function<Vec4(const std::vector<Row>&)> fit;
    // The summed log-likelihood's gradient at the parameters.
    std::function<Vec4(const Vec4&, const std::vector<Row>&)> gradient;
    std::function<double(const Vec4&, const Customer&)> p_alive;
    std::function<double(const Vec4&, const Customer&, double)> p_no_purchase;
};

const Model kBgnbd{
    "BG/NBD",
    simulate::Model::kBgnbd,
    {"r", "alpha", "a", "b"},
    [](const std::vector<Row>& rows) {
        const auto f = bgnbd::fit(rows);
        EXPECT_TRUE(f.converged);
        return Vec4{f.params.r, f.params.alpha, f.params.a, f.params.b};
    },
    [](const Vec4& p, const std::vector<Row>& rows) {
        bgnbd::Gradient g{};
        bgnbd::log_likelihood({p[0], p[1], p[2], p[3]}, rows, &g);
        return Vec4{g[0], g[1], g[2], g[3]};
    },
    [](const Vec4& p, const Customer& c) { return bgnbd::probability_alive({p[0], p[1], p[2], p[3]}, c); },
    [](const Vec4& p, const Customer& c, double h) {
        return bgnbd::probability_no_purchase({p[0], p[1], p[2], p[3]}, c, h);
    },
};

const Model kMbgnbd{
    "MBG/NBD",
    simulate::Model::kMbgnbd,
    {"r", "alpha", "a", "b"},
    [](const std::vector<Row>& rows) {
        const auto f = mbgnbd::fit(rows);
        EXPECT_TRUE(f.converged);
        return Vec4{f.params.r, f.params.alpha, f.params.a, f.params.b};
    },
    [](const Vec4& p, const std::vector<Row>& rows) {
        mbgnbd::Gradient g{};
        mbgnbd::log_likelihood({p[0], p[1], p[2], p[3]}, rows, &g);
        return Vec4{g[0], g[1], g[2], g[3]};
    },
    [](const Vec4& p, const Customer& c) { return mbgnbd::probability_alive({p[0], p[1], p[2], p[3]}, c); },
    [](const Vec4& p, const Customer& c, double h) {
        return mbgnbd::probability_no_purchase({p[0], p[1], p[2], p[3]}, c, h);
    },
};

const Model kParetoNbd{
    "Pareto/NBD",
    simulate::Model::kParetoNbd,
    {"r", "alpha", "s", "beta"},
    [](const std::vector<Row>& rows) {
        const auto f = pnbd::fit(rows);
        EXPECT_TRUE(f.converged);
        return Vec4{f.params.r, f.params.alpha, f.params.s, f.params.beta};
    },
    [](const Vec4& p, const std::vector<Row>& rows) {
        pnbd::Gradient g{};
        pnbd::log_likelihood({p[0], p[1], p[2], p[3]}, rows, &g);
        return Vec4{g[0], g[1], g[2], g[3]};
    },
    [](const Vec4& p, const Customer& c) { return pnbd::probability_alive({p[0], p[1], p[2], p[3]}, c); },
    [](const Vec4& p, const Customer& c, double h) {
        return pnbd::probability_no_purchase({p[0], p[1], p[2], p[3]}, c, h);
    },
};

// Standard errors from the observed information: the Hessian of the summed log-likelihood
// by central differences of its gradient (relative step 1e-4), inverted.
Vec4 standard_errors(const Model& model, const Vec4& at, const std::vector<Row>& rows) {
    std::array<Vec4, 4> information{};
    for (int j = 0; j < 4; ++j) {
        const double h = 1e-4 * at[j];
        Vec4 up = at, down = at;
        up[j] += h;
        down[j] -= h;
        const Vec4 gu = model.gradient(up, rows), gd = model.gradient(down, rows);
        for (int i = 0; i < 4; ++i) information[i][j] = -(gu[i] - gd[i]) / (2 * h);
    }
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < i; ++j) information[i][j] = information[j][i] = (information[i][j] + information[j][i]) / 2;
    const auto covariance = invert(information);
    Vec4 se{};
    for (int i = 0; i < 4; ++i) se[i] = std::sqrt(covariance[i][i]);
    return se;
}

struct Outcome {
    Vec4 fitted, se;
    double auc_risk_truth, auc_alive_truth, auc_recency_truth;
    double auc_risk_holdout, auc_recency_holdout;
};

// CDNOW's unit and periods: weeks, calibration periods of 39–78 weeks, a 39-week holdout,
// and churn risk = P(no purchase within the holdout's 39 weeks).
constexpr double kHoldout = 39;

Outcome run(const Model& model, const Vec4& truth, int customers, std::uint64_t seed) {
    const auto start = std::chrono::steady_clock::now();
    std::mt19937_64 rng(seed);
    const simulate::Population population{model.kind, {truth[0], truth[1], truth[2], truth[3]}, 39, 78, kHoldout, 1};
    const auto simulated = simulate::customers(population, customers, rng);
    const auto rows = simulate::rows(simulated);
    Outcome o{};
    o.fitted = model.fit(rows);
    o.se = standard_errors(model, o.fitted, bgnbd::compress(rows));

    std::vector<double> risk, gone, recency;
    std::vector<bool> dead, no_purchase;
    for (const auto& c : simulated) {
        risk.push_back(model.p_no_purchase(o.fitted, c.summary, kHoldout));
        gone.push_back(1 - model.p_alive(o.fitted, c.summary));
        recency.push_back(c.summary.T - c.summary.t_x);
        dead.push_back(!c.alive_at_T);
        no_purchase.push_back(!c.bought_in_holdout);
    }
    o.auc_risk_truth = auc(risk, dead);
    o.auc_alive_truth = auc(gone, dead);
    o.auc_recency_truth = auc(recency, dead);
    o.auc_risk_holdout = auc(risk, no_purchase);
    o.auc_recency_holdout = auc(recency, no_purchase);

    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    const double alive_share = std::count(dead.begin(), dead.end(), false) / double(customers);
    std::cout << std::fixed << std::setprecision(3) << model.name << ", " << customers << " customers, seed " << seed
              << " (" << alive_share << " alive at T), " << std::setprecision(0) << ms << " ms\n"
              << std::setprecision(3);
    for (int i = 0; i < 4; ++i)
        std::cout << "  " << model.names[i] << ": true " << truth[i] << ", fitted " << o.fitted[i] << " ± "
                  << o.se[i] << " (z = " << std::setprecision(2) << (o.fitted[i] - truth[i]) / o.se[i] << ")\n"
                  << std::setprecision(3);
    std::cout << "  AUC vs not alive at T: churn risk " << o.auc_risk_truth << ", 1 - P(alive) " << o.auc_alive_truth
              << ", recency " << o.auc_recency_truth << "\n"
              << "  AUC vs no holdout purchase: churn risk " << o.auc_risk_holdout << ", recency "
              << o.auc_recency_holdout << "\n";
    ::testing::Test::RecordProperty("auc_risk_truth", std::to_string(o.auc_risk_truth));
    ::testing::Test::RecordProperty("auc_risk_holdout", std::to_string(o.auc_risk_holdout));
    return o;
}

}  // namespace

TEST(GroundTruth, AucCountsTiesAsOneHalf) {
    EXPECT_DOUBLE_EQ(auc({1, 2, 3, 4}, {false, false, true, true}), 1.0);
    EXPECT_DOUBLE_EQ(auc({4, 3, 2, 1}, {false, false, true, true}), 0.0);
    EXPECT_DOUBLE_EQ(auc({1, 1, 1, 1}, {false, true, false, true}), 0.5);
    // Pairs (positive, negative): (2,1) win, (2,2) tie, (2,3) loss; (3,1), (3,2) win, (3,3) tie.
    EXPECT_DOUBLE_EQ(auc({1, 2, 2, 3, 3}, {false, true, false, true, false}), (1 + 0.5 + 0 + 1 + 1 + 0.5) / 6);
}

namespace {

// Each fitted parameter within 3 standard errors of the truth (12 parameters: about a 3%
// chance that one of them is not, for a seed picked blindly; the seeds below were picked
// before looking). The standard errors are the observed information's (standard_errors);
// they agree within ~25% with the spread of fits over 20 seeds (10 for Pareto/NBD; about
// what so few fits can tell), computed once with a throwaway loop over seeds 1000–1019 (Pareto/NBD:
// 1000–1009, and 4,000 customers where the test has 2,500):
//   BG/NBD, 20,000 customers: sd of the fits  r 0.004  α 0.115  a 0.054  b 0.202
//                             mean std. error  r 0.004  α 0.113  a 0.044  b 0.181
//   MBG/NBD, 20,000:          sd               r 0.024  α 0.182  a 0.040  b 0.155
//                             std. error       r 0.027  α 0.237  a 0.039  b 0.144
//   Pareto/NBD, 4,000:        sd               r 0.040  α 0.787  s 0.079  β 2.25
//                             std. error       r 0.038  α 0.641  s 0.081  β 3.19
// and the mean of the fits was within 1.7 of its own standard error of the truth for all
// twelve parameters (no bias the test would hide). So that the check can fail, the test also
// asserts the errors are small: 3 standard errors must be under `resolution` of each
// parameter, i.e. the fit would be caught recovering any parameter that far off.
void expect_recovered(const Model& model, const Vec4& truth, const Outcome& o, const Vec4& resolution) {
    for (int i = 0; i < 4; ++i) {
        EXPECT_LT(std::abs(o.fitted[i] - truth[i]), 3 * o.se[i])
            << model.name << " " << model.names[i] << ": true " << truth[i] << ", fitted " << o.fitted[i] << " ± "
            << o.se[i];
        EXPECT_LT(3 * o.se[i], resolution[i] * truth[i]) << model.name << " " << model.names[i];
    }
}

// AUC, what the theory guarantees: scoring by the posterior probability of the label is
// the best any function of (x, t_x, T) can do, recency T − t_x included (Neyman–Pearson),
// up to sampling error and the fitted parameters being close to the truth. 1 − P(alive) is
// that posterior for "not alive at T"; churn risk, P(no purchase within h), is it for "no
// purchase in the holdout" when h is the holdout's length. Over seeds 1000–1009 the model
// was ahead of recency by 0.007 (Pareto/NBD, holdout) to 0.57 (BG/NBD, alive), never
// behind, so −0.005 is slack for sampling error, not a pass for a worse score.
void expect_ranks_at_least_as_well_as_recency(const Outcome& o) {
    EXPECT_GE(o.auc_alive_truth, o.auc_recency_truth - 0.005);
    EXPECT_GE(o.auc_risk_holdout, o.auc_recency_holdout - 0.005);
    EXPECT_GT(o.auc_risk_holdout, 0.7);
}

const Vec4 kBgnbdTruth{0.243, 4.414, 0.793, 2.426};     // CDNOW, Fader, Hardie & Lee (2005)
const Vec4 kMbgnbdTruth{0.525, 6.183, 0.891, 1.614};    // CDNOW, Batislam et al. (2007)
const Vec4 kParetoNbdTruth{0.553, 10.58, 0.606, 11.67};  // CDNOW, Fader & Hardie (2005 note)

}  // namespace

TEST(GroundTruth, BgnbdRecoversItsParametersAndRanksTheDeparted) {
    const Outcome o = run(kBgnbd, kBgnbdTruth, 20000, 20261201);
    expect_recovered(kBgnbd, kBgnbdTruth, o, {0.1, 0.15, 0.25, 0.3});
    expect_ranks_at_least_as_well_as_recency(o);
    EXPECT_GT(o.auc_alive_truth, 0.9);
    // Not asserted: churn risk against "not alive at T" is only ~0.52–0.55, and recency
    // ranks the departed *below* the alive (~0.38). Under BG/NBD nobody drops out without
    // a purchase, so every one-time buyer is alive — most of them with a tiny purchase rate,
    // hence long idle and, rightly, unlikely to buy in the next 39 weeks.
}

TEST(GroundTruth, MbgnbdRecoversItsParametersAndRanksTheDeparted) {
    const Outcome o = run(kMbgnbd, kMbgnbdTruth, 20000, 20261201);
    expect_recovered(kMbgnbd, kMbgnbdTruth, o, {0.25, 0.2, 0.25, 0.5});
    expect_ranks_at_least_as_well_as_recency(o);
    EXPECT_GT(o.auc_risk_truth, 0.6);
    EXPECT_GT(o.auc_alive_truth, 0.65);
}

// Pareto/NBD's fit is much slower per customer: 2,500 customers, and β (the scale of the
// dropout rate, barely identified over 39–78 weeks) has a standard error of ~35% of
// itself: only a β off by a factor ~2 is caught (simulating with 2/β as μ's scale fails).
TEST(GroundTruth, ParetoNbdRecoversItsParametersAndRanksTheDeparted) {
    const Outcome o = run(kParetoNbd, kParetoNbdTruth, 2500, 20261201);
    expect_recovered(kParetoNbd, kParetoNbdTruth, o, {0.35, 0.3, 0.75, 1.5});
    expect_ranks_at_least_as_well_as_recency(o);
    EXPECT_GT(o.auc_risk_truth, 0.7);
    EXPECT_GT(o.auc_alive_truth, 0.7);
}
