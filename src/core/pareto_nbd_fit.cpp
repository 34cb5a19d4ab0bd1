// Fitting Pareto/NBD by maximum likelihood (declared in pareto_nbd.hpp), as bgnbd_fit.cpp
// fits BG/NBD: merged rows, rescaled times, NLopt's L-BFGS through mle::maximize.
#include <algorithm>
#include <cstdint>
#include <limits>

#include "core/error.hpp"
#include "core/interrupt.hpp"
#include "core/repeat_buying.hpp"
#include "core/pareto_nbd.hpp"

namespace lifecycle::pareto_nbd {
// As bgnbd::fit: the optimizer sees times rescaled so that the longest T is 10; r and s
// do not depend on the time unit, α and β scale with it. The log-likelihood is reported
// on the caller's data, in the caller's unit.
constexpr double kMaxParameter = 1e6;
constexpr int kMaxEvaluations = 500;

Fit fit(const std::vector<Row>& rows, const mle::FitOptions& options) {
    const std::vector<Row> data = compress(rows);
    const repeat_buying::Totals t = repeat_buying::totals(data);
    repeat_buying::check_identifiable(t, "Pareto/NBD");
    const double scale = 10.0 / t.max_T;
    std::vector<Row> scaled = data;
    for (Row& row : scaled) {
        row.customer.t_x *= scale;
        row.customer.T *= scale;
    }
    const mle::LogLikelihood mean_log_likelihood = [&](const std::vector<double>& p,
                                                       std::vector<double>& gradient) {
        // Data with no heterogeneity or no dropout to see (everyone buying like clockwork)
        // drives the parameters towards infinity, where the series and the quadrature get
        // slow without the likelihood changing: the search is kept below kMaxParameter
        // (in the rescaled units, where real fits are of order 1-100) and reported as not
        // converged, as BG/NBD's fit is there.
        for (const double v : p)
            if (!(v < kMaxParameter)) return std::numeric_limits<double>::quiet_NaN();
        Gradient g;
        double ll = 0.0;
        try {
            ll = log_likelihood(Params{p[0], p[1], p[2], p[3]}, scaled, &g);
        } catch (const Error&) {
            // A series Boost could not sum at a point the line search tried: no exception
            // may cross NLopt, and a non-finite value makes the search step back.
            return std::numeric_limits<double>::quiet_NaN();
        }
        for (std::size_t i = 0; i < g.size(); ++i) gradient[i] = g[i] / t.weight;
        return ll / t.weight;
    };
    // Each evaluation costs nine likelihood sums (a central-difference gradient): fits that
    // need more than a few hundred evaluations are not converging anyway.
    mle::FitOptions bounded = options;
    bounded.max_evaluations = std::min(options.max_evaluations, kMaxEvaluations);
    const mle::Result m = mle::maximize(mean_log_likelihood, {1.0, 1.0, 1.0, 1.0}, bounded);
    Fit result;
    result.params = Params{m.params[0], m.params[1] / scale, m.params[2], m.params[3] / scale};
    result.log_likelihood = log_likelihood(result.params, data);
    result.evaluations = m.evaluations;
    result.converged = m.converged;
    return result;
}

}  // namespace lifecycle::pareto_nbd
