// Fitting BG/NBD by maximum likelihood (declared in bgnbd.hpp).
#include <algorithm>
#include <cstdint>
#include <cmath>
#include <tuple>

#include "core/bgnbd.hpp"
#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace lifecycle::bgnbd {
namespace {

bool same_customer(const Customer& l, const Customer& r) {
    return l.x == r.x && l.t_x == r.t_x && l.T == r.T;
}

bool before(const Row& l, const Row& r) {
    return std::tie(l.customer.x, l.customer.t_x, l.customer.T) <
           std::tie(r.customer.x, r.customer.t_x, r.customer.T);
}

struct Totals {
    double weight = 0.0;
    double repeat_weight = 0.0;
    double max_T = 0.0;
};

Totals totals(const std::vector<Row>& rows) {
    Totals t;
    std::uint64_t i = 0;
    for (const Row& row : rows) {
        check_interrupts_every(i++);
        t.weight += row.weight;
        if (row.customer.x > 0.0) t.repeat_weight += row.weight;
        t.max_T = std::max(t.max_T, row.customer.T);
    }
    return t;
}

// Without repeat buyers the likelihood keeps growing as a/b → 0 (nobody has had the
// chance to drop out), and one customer cannot pin down four parameters.
void check_identifiable(const Totals& t) {
    if (t.weight == 0.0) throw_invalid("BG/NBD cannot be fitted without customers");
    if (t.weight < 2.0) throw_invalid("BG/NBD cannot be fitted to a single customer");
    if (t.repeat_weight == 0.0)
        throw_invalid("BG/NBD cannot be fitted when no customer made a repeat purchase "
                      "(every frequency is 0)");
}

}  // namespace

std::vector<Row> compress(std::vector<Row> rows) {
    std::uint64_t i = 0;
    for (const Row& row : rows) {
        check_interrupts_every(i++);
        validate(row.customer);
        if (!(std::isfinite(row.weight) && row.weight >= 0.0))
            throw_invalid("argument \"weight\" must be a finite number >= 0");
    }
    rows.erase(std::remove_if(rows.begin(), rows.end(), [](const Row& r) { return r.weight == 0.0; }),
               rows.end());
    std::sort(rows.begin(), rows.end(), before);
    check_interrupts();
    std::vector<Row> merged;
    i = 0;
    for (const Row& row : rows) {
        check_interrupts_every(i++);
        if (!merged.empty() && same_customer(merged.back().customer, row.customer))
            merged.back().weight += row.weight;
        else
            merged.push_back(row);
    }
    return merged;
}

// The optimizer works on times rescaled so that the longest T is 10, which keeps α of
// order 1 whatever the time unit; r, a and b do not depend on the unit, and α scales with
// it. The log-likelihood is reported on the caller's data, in the caller's unit.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options) {
    const std::vector<Row> data = compress(rows);
    const Totals t = totals(data);
    check_identifiable(t);
    const double scale = 10.0 / t.max_T;
    std::vector<Row> scaled = data;
    for (Row& row : scaled) {
        row.customer.t_x *= scale;
        row.customer.T *= scale;
    }
    const mle::LogLikelihood mean_log_likelihood = [&](const std::vector<double>& p,
                                                       std::vector<double>& gradient) {
        Gradient g;
        const double ll = log_likelihood(Params{p[0], p[1], p[2], p[3]}, scaled, &g);
        for (std::size_t i = 0; i < g.size(); ++i) gradient[i] = g[i] / t.weight;
        return ll / t.weight;
    };
    const mle::Result m = mle::maximize(mean_log_likelihood, {1.0, 1.0, 1.0, 1.0}, options);
    Fit result;
    result.params = Params{m.params[0], m.params[1] / scale, m.params[2], m.params[3]};
    result.log_likelihood = log_likelihood(result.params, data);
    result.evaluations = m.evaluations;
    result.converged = m.converged;
    return result;
}

}  // namespace lifecycle::bgnbd
