// Maximum likelihood over strictly positive parameters, shared by the BG/NBD and
// Gamma–Gamma fitters. NLopt does the optimizing (L-BFGS with the models' analytic
// gradients); this file only adapts a model's log-likelihood to it: it optimizes the
// logarithms of the parameters so they stay positive without constraints, adds the
// optional L2 penalizer, keeps the best point seen and decides whether the fit converged.
#pragma once
#include "core/no_postgres.hpp"

#include <functional>
#include <vector>

namespace lifecycle::mle {

// The mean log-likelihood per customer at `params`, and its gradient with respect to
// them written into `gradient` (same size and order as params).
using LogLikelihood =
    std::function<double(const std::vector<double>& params, std::vector<double>& gradient)>;

struct FitOptions {
    // Adds penalizer * sum(param^2) to the mean negative log-likelihood, the convention of
    // the Python `lifetimes` package (there too the parameters are in the fitter's
    // internal, rescaled units; see each fitter).
    double penalizer = 0.0;
    int max_evaluations = 5000;
};

struct Result {
    std::vector<double> params;
    double mean_log_likelihood;  // without the penalty
    int evaluations;             // calls of the log-likelihood (L-BFGS makes ~1 per iteration)
    bool converged;              // NLopt met its tolerance and the gradient vanishes there
};

// Throws invalid_parameter for a bad penalizer or max_evaluations. Never returns a
// non-finite parameter: the log-parameters are bounded (see mle.cpp), and a fit that ends
// on a bound is reported as not converged.
Result maximize(const LogLikelihood& log_likelihood, std::vector<double> start,
                const FitOptions& options);

}  // namespace lifecycle::mle
