// Logistic regression by penalized maximum likelihood: P(outcome | x) = 1 / (1 + e^{-η}),
// η = β0 + Σ βj·xj. Used to calibrate a score (say a model's P(no purchase) beside
// recency, frequency and age) against what a holdout observed.
#pragma once
#include "core/no_postgres.hpp"

#include <cstddef>
#include <vector>

#include "core/mle.hpp"

namespace lifecycle::logistic {

struct Row {
    bool outcome;
    std::vector<double> features;  // the same length in every row; may be empty
    double weight = 1.0;           // number of such rows, finite and >= 0
};

struct Fit {
    std::vector<double> coefficients;  // intercept first, then one per feature, original scale
    double log_likelihood;             // Σ weight·log P(outcome), without the penalty
    int evaluations;
    bool converged;
};

// Maximizes the mean log-likelihood minus penalizer·Σ βj² over the non-intercept
// coefficients. The features are standardized internally (weighted mean 0, sd 1), so the
// penalty applies to the standardized coefficients βj·sd_j (scale-free, as glmnet's); the
// coefficients are returned on the features' own scale. A constant feature gets the
// coefficient 0 (the intercept already carries it). Rows are sorted and identical rows
// merged first, so any order or split of the same rows gives the same fit.
//
// Throws invalid_parameter naming the argument for: no rows, rows with different feature
// counts, a non-finite feature, a bad weight, and one outcome in every row. Under perfect
// separation the penalty keeps the fit finite; without it the fit is returned with
// converged = false and finite (bounded) coefficients.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options = {});

// The same rows in one flat, row-major array: `count` rows of `features + 1` doubles each,
// the outcome (0 or 1) first, then the features; `weights` (count of them) or nullptr for
// weight 1 everywhere. Avoids a heap allocation per row for large fits (the PostgreSQL
// aggregate keeps its rows this way).
struct Table {
    std::size_t count;
    std::size_t features;
    const double* values;
    const double* weights;
};
Fit fit(const Table& table, const mle::FitOptions& options = {});

// P(outcome) for `features` under `coefficients` (intercept first). Throws
// invalid_parameter when the lengths disagree or a value is not finite.
double score(const std::vector<double>& coefficients, const std::vector<double>& features);

// The same from plain arrays (coefficient_count = feature_count + 1).
double score(const double* coefficients, std::size_t coefficient_count, const double* features,
             std::size_t feature_count);

}  // namespace lifecycle::logistic
