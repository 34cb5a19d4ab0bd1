// The BG/NBD model of repeat buying (Fader, Hardie & Lee 2005, "Counting Your Customers
// the Easy Way"): while alive, a customer buys as a Poisson process with rate λ ~
// Gamma(r, α); after each purchase they drop out with probability p ~ Beta(a, b). A
// customer is summarized by x (repeat purchases), t_x (time from the first to the last
// purchase; 0 when x = 0) and T (time from the first purchase to the end of the
// calibration period), all in one time unit; α is in that unit too.
//
// Everything is computed in log space so that large x and T neither overflow nor lose
// the small terms (DESIGN.md, "Churn risk and value (predictive)").
#pragma once
#include "core/no_postgres.hpp"

#include <array>
#include <cstdint>
#include <vector>

#include "core/mle.hpp"

namespace lifecycle::bgnbd {

struct Params {
    double r;
    double alpha;
    double a;
    double b;
};

struct Customer {
    double x;    // repeat purchases: a whole number >= 0
    double t_x;  // recency: 0 <= t_x <= T, and 0 when x = 0
    double T;    // age: >= 0
};

// Throw invalid_parameter naming the offending argument.
void validate(const Params& params);
void validate(const Customer& customer);

// ∂/∂r, ∂/∂α, ∂/∂a, ∂/∂b
using Gradient = std::array<double, 4>;

// log L(r, α, a, b | x, t_x, T), eq. (6) of the paper; with `gradient`, also its gradient.
double log_likelihood(const Params& params, const Customer& customer, Gradient* gradient = nullptr);

// P(alive | x, t_x, T) (Fader, Hardie & Lee, "Computing P(alive) using the BG/NBD
// model", 2008); churn risk is 1 − this.
double probability_alive(const Params& params, const Customer& customer);

// E[Y(t) | x, t_x, T]: expected purchases in the next t time units (eq. (10)).
// Throws invalid_parameter for a negative t, or one longer than 10,000 (α + T), beyond
// which the hypergeometric series is not summed reliably.
double expected_purchases(const Params& params, const Customer& customer, double t);

// E[X(t)]: expected purchases of a new customer in their first t time units (eq. (7)),
// the conditional expectation at x = t_x = T = 0.
double expected_purchases_new(const Params& params, double t);

// P(Y(t) = 0 | x, t_x, T): no purchase in the next t time units. Dead customers buy
// nothing; an alive one makes none with probability E[e^{−λt}] over the posterior
// λ ~ Gamma(r+x, α+T), so this is 1 − P(alive) + P(alive) ((α+T)/(α+T+t))^(r+x).
// Throws invalid_parameter for a negative or non-finite t.
double probability_no_purchase(const Params& params, const Customer& customer, double t);

// Shared with the MBG/NBD model, whose posterior of a customer alive at T has the same
// form with another Beta parameter:
//
// E[purchases in the next t | alive at T], when λ ~ Gamma(n, α+T) and p ~ Beta(a, b_post)
// given the data: purchases come at rate λ until a dropout after one of them, so the mean
// is E[(1 − e^{−λpt}) / p] = (c/(a−1)) [1 − (1−z)^n 2F1(n, b_post; c; z)] with
// c = a + b_post − 1 and z = t/(α+T+t) (BG/NBD: n = r+x, b_post = b+x, eq. (10)).
// `base` is α + T. Throws invalid_parameter for a bad or too long t (see bgnbd.cpp).
double expected_purchases_if_alive(double n, double base, double a, double b_post, double t);

// P(no purchase in the next t | alive at T) = ((α+T)/(α+T+t))^n, and the mixture with
// P(alive) above. Throws invalid_parameter for a bad t.
double probability_no_purchase_given(double p_alive, double n, double base, double t);

// Identical customers fitted together: `weight` of them (a count, or any weight >= 0).
struct Row {
    Customer customer;
    double weight;
};

// Sorts by (x, t_x, T), merges identical customers adding their weights and drops zero
// weights. Throws invalid_parameter for a bad customer or weight.
std::vector<Row> compress(const std::vector<Row>& rows);

// compress() one customer at a time, for callers whose customers are not Rows (the
// PostgreSQL aggregates): add() validates and merges (throwing as compress() does),
// rows() returns what compress() would and leaves the Merger empty.
class Merger {
public:
    Merger();
    void add(const Customer& customer, double weight = 1.0);
    std::vector<Row> rows();

private:
    static constexpr std::size_t kPending = 16;
    void flush();
    void insert(const Row& row, std::size_t slot);
    void grow();
    std::vector<Row> table_;  // the merged rows by hash; weight 0 where empty
    std::size_t mask_;
    std::size_t distinct_ = 0;
    std::uint64_t added_ = 0;
    Row pending_[kPending];
    std::size_t pending_count_ = 0;
};

// The weighted sum of the rows' log-likelihoods (and of their gradients). Rows sorted by x,
// as compress() leaves them, are faster: the gamma functions are computed once per x.
double log_likelihood(const Params& params, const std::vector<Row>& rows, Gradient* gradient = nullptr);

// Rows prepared for evaluating their log-likelihood many times (a fit): each distinct
// time (t_x or T) is listed once, so that an evaluation takes log(α + time) once per
// distinct time rather than twice per row; customers' data often has a few hundred
// distinct times (whole days) among hundreds of thousands of rows.
struct PreparedRows {
    struct Row {
        double x;
        double weight;
        std::uint32_t t_x, T;  // indices into times
    };
    std::vector<double> times;
    std::vector<Row> rows;
};

// Rows as compress() returns them (validated; in its order, which the sums follow).
PreparedRows prepare(const std::vector<bgnbd::Row>& rows);

// log_likelihood(params, rows) of the prepared rows with every time multiplied by
// `time_scale`: the same value to the last bit as that of Rows with the times so scaled.
double log_likelihood(const Params& params, const PreparedRows& rows, double time_scale,
                      Gradient* gradient = nullptr);

struct Fit {
    Params params;
    double log_likelihood;  // at params, without the penalty
    int evaluations;
    bool converged;
};

// Maximum likelihood. The rows need not be compressed. Times are rescaled internally so
// that the longest T is 10 (as `lifetimes` does), so the penalizer applies to r, a, b and
// α in that unit. Throws invalid_parameter when the data cannot identify the model: no
// customers, a single one, or no repeat buyer. A fit that does not converge is returned
// with converged = false and finite parameters.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options = {});

// fit() of rows already merged, as compress() and Merger::rows() return them.
Fit fit_merged(const std::vector<Row>& rows, const mle::FitOptions& options = {});

}  // namespace lifecycle::bgnbd
