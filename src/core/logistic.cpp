#include "core/logistic.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace lifecycle::logistic {
namespace {

// The rows after checking, sorting and merging, features standardized, in one flat
// row-major array (n × k) for the likelihood's inner loop.
struct Data {
    std::size_t n = 0;
    std::size_t k = 0;
    std::vector<double> z;       // standardized features
    std::vector<double> y;       // 1 or 0
    std::vector<double> w;       // weights
    double total_weight = 0.0;
    std::vector<double> mean;    // per feature
    std::vector<double> sd;      // per feature; 0 for a constant feature
};

std::string row_name(std::size_t i) { return "row " + std::to_string(i + 1); }

std::size_t width(const Table& t) { return t.features + 1; }
const double* row_of(const Table& t, std::size_t i) { return t.values + i * width(t); }

void validate(const Table& t) {
    if (t.count == 0) throw_invalid("argument \"features\": a logistic fit needs at least one row");
    for (std::size_t i = 0; i < t.count; ++i) {
        check_interrupts_every(i);
        const double* row = row_of(t, i);
        if (row[0] != 0.0 && row[0] != 1.0)
            throw_invalid("argument \"outcome\" must be 0 or 1: " + row_name(i) + " is not");
        for (std::size_t j = 1; j <= t.features; ++j)
            if (!std::isfinite(row[j]))
                throw_invalid("argument \"features\" must be finite numbers: feature " +
                              std::to_string(j) + " of " + row_name(i) + " is not");
        const double w = t.weights ? t.weights[i] : 1.0;
        if (!(std::isfinite(w) && w >= 0.0)) throw_invalid("argument \"weight\" must be a finite number >= 0");
    }
}

// Features first, then the outcome: the order in which the rows are summed.
bool before(const Table& t, std::size_t l, std::size_t r) {
    const double* a = row_of(t, l);
    const double* b = row_of(t, r);
    for (std::size_t j = 1; j <= t.features; ++j)
        if (a[j] != b[j]) return a[j] < b[j];
    return a[0] < b[0];
}

bool same_row(const Table& t, std::size_t l, std::size_t r) {
    const double* a = row_of(t, l);
    const double* b = row_of(t, r);
    for (std::size_t j = 0; j <= t.features; ++j)
        if (a[j] != b[j]) return false;
    return true;
}

// Sorted by (features, outcome), identical rows merged: the likelihood then sums in an
// order that does not depend on how the rows arrived. The features are copied raw into
// d.z here and standardized by standardize().
Data compress(const Table& t) {
    std::vector<std::size_t> order;
    order.reserve(t.count);
    for (std::size_t i = 0; i < t.count; ++i)
        if (!t.weights || t.weights[i] > 0.0) order.push_back(i);
    std::sort(order.begin(), order.end(), [&](std::size_t l, std::size_t r) { return before(t, l, r); });
    check_interrupts();
    Data d;
    d.k = t.features;
    for (std::size_t n = 0; n < order.size(); ++n) {
        check_interrupts_every(n);
        const std::size_t i = order[n];
        const double w = t.weights ? t.weights[i] : 1.0;
        if (n > 0 && same_row(t, order[n - 1], i)) {
            d.w.back() += w;
            continue;
        }
        const double* row = row_of(t, i);
        d.y.push_back(row[0]);
        d.w.push_back(w);
        d.z.insert(d.z.end(), row + 1, row + 1 + t.features);
    }
    d.n = d.y.size();
    if (d.n == 0) throw_invalid("argument \"weight\": a logistic fit needs a row of positive weight");
    return d;
}

void check_both_outcomes(const Data& d) {
    bool any_true = false;
    bool any_false = false;
    for (double y : d.y) (y == 1.0 ? any_true : any_false) = true;
    if (!any_false)
        throw_invalid("argument \"outcome\" is true in every row: a logistic fit needs both outcomes");
    if (!any_true)
        throw_invalid("argument \"outcome\" is false in every row: a logistic fit needs both outcomes");
}

// Weighted mean 0 and sd 1 per feature, in place.
void standardize(Data& d) {
    d.mean.assign(d.k, 0.0);
    d.sd.assign(d.k, 0.0);
    d.total_weight = 0.0;
    for (std::size_t i = 0; i < d.n; ++i) {
        check_interrupts_every(i);
        d.total_weight += d.w[i];
        for (std::size_t j = 0; j < d.k; ++j) d.mean[j] += d.w[i] * d.z[i * d.k + j];
    }
    for (double& m : d.mean) m /= d.total_weight;
    for (std::size_t i = 0; i < d.n; ++i) {
        check_interrupts_every(i);
        for (std::size_t j = 0; j < d.k; ++j) {
            const double c = d.z[i * d.k + j] - d.mean[j];
            d.sd[j] += d.w[i] * c * c;
        }
    }
    for (std::size_t j = 0; j < d.k; ++j) {
        d.sd[j] = std::sqrt(d.sd[j] / d.total_weight);
        // Constant up to rounding: no information beyond the intercept's.
        if (!(d.sd[j] > 1e-12 * std::max(1.0, std::abs(d.mean[j])))) d.sd[j] = 0.0;
    }
    for (std::size_t i = 0; i < d.n; ++i) {
        check_interrupts_every(i);
        for (std::size_t j = 0; j < d.k; ++j) {
            double& z = d.z[i * d.k + j];
            z = d.sd[j] > 0.0 ? (z - d.mean[j]) / d.sd[j] : 0.0;
        }
    }
}

// log(1 + e^η), without overflow.
double log1p_exp(double eta) { return std::max(eta, 0.0) + std::log1p(std::exp(-std::abs(eta))); }

double sigmoid(double eta) {
    if (eta >= 0.0) return 1.0 / (1.0 + std::exp(-eta));
    const double e = std::exp(eta);
    return e / (1.0 + e);
}

// The mean log-likelihood at the standardized coefficients `beta` (intercept first) and,
// when `gradient` is given, its gradient with respect to them.
double mean_log_likelihood(const Data& d, const std::vector<double>& beta, std::vector<double>* gradient) {
    if (gradient) gradient->assign(d.k + 1, 0.0);
    double sum = 0.0;
    for (std::size_t i = 0; i < d.n; ++i) {
        check_interrupts_every(i);
        const double* z = &d.z[i * d.k];
        double eta = beta[0];
        for (std::size_t j = 0; j < d.k; ++j) eta += beta[j + 1] * z[j];
        sum += d.w[i] * (d.y[i] * eta - log1p_exp(eta));
        if (gradient) {
            const double r = d.w[i] * (d.y[i] - sigmoid(eta));
            (*gradient)[0] += r;
            for (std::size_t j = 0; j < d.k; ++j) (*gradient)[j + 1] += r * z[j];
        }
    }
    if (gradient)
        for (double& g : *gradient) g /= d.total_weight;
    return sum / d.total_weight;
}

// mle::maximize works on positive parameters through their logarithms. A coefficient is
// unbounded in sign, so we hand it p = e^β: the optimizer's variable log p is then β
// itself, and its bounds (±30) bound the standardized coefficients, which keeps a
// diverging fit (separation, no penalty) finite and marks it not converged. The penalty
// is ours (on β, not on p), so maximize() gets penalizer 0.
mle::Result optimize(const Data& d, double penalizer, int max_evaluations) {
    std::vector<double> beta(d.k + 1);
    std::vector<double> grad_beta;
    const mle::LogLikelihood objective = [&](const std::vector<double>& p, std::vector<double>& grad) {
        for (std::size_t j = 0; j <= d.k; ++j) beta[j] = std::log(p[j]);
        double value = mean_log_likelihood(d, beta, &grad_beta);
        for (std::size_t j = 1; j <= d.k; ++j) {
            value -= penalizer * beta[j] * beta[j];
            grad_beta[j] -= 2.0 * penalizer * beta[j];
        }
        for (std::size_t j = 0; j <= d.k; ++j) grad[j] = grad_beta[j] / p[j];  // dℓ/dp = dℓ/dβ / p
        return value;
    };
    // Start at the intercept-only fit: the log odds of the weighted mean outcome.
    double positive = 0.0;
    for (std::size_t i = 0; i < d.n; ++i) positive += d.w[i] * d.y[i];
    const double mean_outcome = positive / d.total_weight;
    std::vector<double> start(d.k + 1, 1.0);
    start[0] = mean_outcome / (1.0 - mean_outcome);  // e^{logit}
    mle::FitOptions inner;
    inner.penalizer = 0.0;
    inner.max_evaluations = max_evaluations;
    return mle::maximize(objective, start, inner);
}

}  // namespace

Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options) {
    if (rows.empty()) throw_invalid("argument \"features\": a logistic fit needs at least one row");
    const std::size_t k = rows.front().features.size();
    std::vector<double> values;
    std::vector<double> weights;
    values.reserve(rows.size() * (k + 1));
    weights.reserve(rows.size());
    for (std::size_t i = 0; i < rows.size(); ++i) {
        check_interrupts_every(i);
        const Row& row = rows[i];
        if (row.features.size() != k)
            throw_invalid("argument \"features\" must have the same length in every row: " +
                          row_name(0) + " has " + std::to_string(k) + ", " + row_name(i) +
                          " has " + std::to_string(row.features.size()));
        values.push_back(row.outcome ? 1.0 : 0.0);
        values.insert(values.end(), row.features.begin(), row.features.end());
        weights.push_back(row.weight);
    }
    return fit(Table{rows.size(), k, values.data(), weights.data()}, options);
}

Fit fit(const Table& table, const mle::FitOptions& options) {
    if (!std::isfinite(options.penalizer) || options.penalizer < 0.0)
        throw_invalid("argument \"penalizer\" must be a finite number >= 0");
    validate(table);
    Data d = compress(table);
    check_both_outcomes(d);
    standardize(d);
    const mle::Result result = optimize(d, options.penalizer, options.max_evaluations);

    std::vector<double> beta(d.k + 1);
    for (std::size_t j = 0; j <= d.k; ++j) beta[j] = std::log(result.params[j]);
    Fit fit;
    fit.coefficients.assign(d.k + 1, 0.0);
    fit.coefficients[0] = beta[0];
    for (std::size_t j = 0; j < d.k; ++j) {
        if (d.sd[j] == 0.0) continue;  // constant feature: coefficient 0
        fit.coefficients[j + 1] = beta[j + 1] / d.sd[j];
        fit.coefficients[0] -= beta[j + 1] * d.mean[j] / d.sd[j];
    }
    fit.log_likelihood = mean_log_likelihood(d, beta, nullptr) * d.total_weight;
    fit.evaluations = result.evaluations;
    fit.converged = result.converged;
    return fit;
}

double score(const double* coefficients, std::size_t coefficient_count, const double* features,
             std::size_t feature_count) {
    if (coefficient_count == 0) throw_invalid("argument \"model\" has no coefficients");
    if (coefficient_count != feature_count + 1)
        throw_invalid("argument \"features\" must have " + std::to_string(coefficient_count - 1) +
                      " elements, one per coefficient after the intercept, got " +
                      std::to_string(feature_count));
    double eta = coefficients[0];
    if (!std::isfinite(eta)) throw_invalid("argument \"model\" has a non-finite coefficient");
    for (std::size_t j = 0; j < feature_count; ++j) {
        if (!std::isfinite(coefficients[j + 1]))
            throw_invalid("argument \"model\" has a non-finite coefficient");
        if (!std::isfinite(features[j]))
            throw_invalid("argument \"features\" must be finite numbers: feature " +
                          std::to_string(j + 1) + " is not");
        eta += coefficients[j + 1] * features[j];
    }
    if (!std::isfinite(eta)) throw_invalid("argument \"features\" overflow the linear predictor");
    return sigmoid(eta);
}

double score(const std::vector<double>& coefficients, const std::vector<double>& features) {
    return score(coefficients.data(), coefficients.size(), features.data(), features.size());
}

}  // namespace lifecycle::logistic
