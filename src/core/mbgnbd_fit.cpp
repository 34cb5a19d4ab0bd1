// Fitting MBG/NBD by maximum likelihood (declared in mbgnbd.hpp), as bgnbd_fit.cpp does.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/mbgnbd.hpp"

namespace lifecycle::mbgnbd {
namespace {

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

// Without repeat buyers the likelihood keeps growing as a/(a+b) → 1 (everybody dropped
// out right after the first purchase), and one customer cannot pin down four parameters.
// With every T = 0 nothing was observed at all.
void check_identifiable(const Totals& t) {
    if (t.weight == 0.0) throw_invalid("MBG/NBD cannot be fitted without customers");
    if (t.weight < 2.0) throw_invalid("MBG/NBD cannot be fitted to a single customer");
    if (t.repeat_weight == 0.0)
        throw_invalid("MBG/NBD cannot be fitted when no customer made a repeat purchase "
                      "(every frequency is 0)");
}

}  // namespace

// The optimizer works on times rescaled so that the longest T is 10; α scales back.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options) {
    const std::vector<Row> data = bgnbd::compress(rows);
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

}  // namespace lifecycle::mbgnbd
