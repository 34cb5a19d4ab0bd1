// Fitting MBG/NBD by maximum likelihood (declared in mbgnbd.hpp), as bgnbd_fit.cpp does.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/repeat_buying.hpp"
#include "core/mbgnbd.hpp"

namespace lifecycle::mbgnbd {
// The optimizer works on times rescaled so that the longest T is 10; α scales back.
Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options) {
    const std::vector<Row> data = bgnbd::compress(rows);
    const repeat_buying::Totals t = repeat_buying::totals(data);
    repeat_buying::check_identifiable(t, "MBG/NBD");
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
