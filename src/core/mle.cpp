#include "core/mle.hpp"

#include <nlopt.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <new>
#include <stdexcept>
#include <string>

#include "core/error.hpp"
#include "core/interrupt.hpp"

namespace lifecycle::mle {
namespace {

// The fitters rescale their data so that the optimum's parameters are of order 1. Bounding
// the log-parameters to ±30 (about 1e±13) leaves room for any real optimum and keeps every
// parameter, hence the likelihood, finite when the data cannot pin the model down.
constexpr double kLogBound = 30.0;
// At a true optimum the gradient of the mean log-likelihood with respect to the
// log-parameters vanishes; L-BFGS leaves it well below this, a fit drifting towards a
// bound or stopped early does not.
constexpr double kGradientTolerance = 1e-5;

// What NLopt minimizes: the penalized mean negative log-likelihood as a function of the
// log-parameters, remembering the best point evaluated.
//
// No exception may cross NLopt's C code, and NLopt's C++ wrapper would turn ours into a
// generic failure. So an interrupt (before an evaluation, or from inside the
// log-likelihood's loop over the rows) is caught here: the objective asks NLopt to stop
// (force_stop) and remembers it, and maximize() throws Interrupted once optimize() has
// returned.
class Objective {
public:
    Objective(const LogLikelihood& log_likelihood, double penalizer, std::size_t n)
        : log_likelihood_(log_likelihood), penalizer_(penalizer), params_(n), gradient_(n) {}

    void stop_with(nlopt::opt* optimizer) { optimizer_ = optimizer; }

    double operator()(const std::vector<double>& theta, std::vector<double>& grad) {
        if (interrupted_) return std::numeric_limits<double>::infinity();
        double value = 0.0;
        try {
            check_interrupts();
            ++evaluations_;
            value = evaluate(theta, grad);
        } catch (const Interrupted&) {
            interrupted_ = true;
            optimizer_->force_stop();
            return std::numeric_limits<double>::infinity();
        }
        if (value < best_value_) {
            best_value_ = value;
            best_theta_ = theta;
        }
        return value;
    }

    // f(θ) = -ℓ(e^θ) + penalizer Σ e^{2θ}, so df/dθ_i = -p_i ∂ℓ/∂p_i + 2 penalizer p_i².
    // A non-finite ℓ becomes +∞, which makes L-BFGS's line search step back.
    double evaluate(const std::vector<double>& theta, std::vector<double>& grad) {
        for (std::size_t i = 0; i < theta.size(); ++i) params_[i] = std::exp(theta[i]);
        const double ll = log_likelihood_(params_, gradient_);
        last_log_likelihood_ = ll;
        if (!std::isfinite(ll)) return std::numeric_limits<double>::infinity();
        double value = -ll;
        for (std::size_t i = 0; i < theta.size(); ++i) {
            const double p = params_[i];
            value += penalizer_ * p * p;
            if (!grad.empty()) grad[i] = -p * gradient_[i] + 2.0 * penalizer_ * p * p;
        }
        return value;
    }

    static double call(const std::vector<double>& theta, std::vector<double>& grad, void* self) {
        return (*static_cast<Objective*>(self))(theta, grad);
    }

    int evaluations() const { return evaluations_; }
    double last_log_likelihood() const { return last_log_likelihood_; }
    bool interrupted() const { return interrupted_; }
    bool found() const { return !best_theta_.empty(); }
    const std::vector<double>& best_theta() const { return best_theta_; }

private:
    const LogLikelihood& log_likelihood_;
    double penalizer_;
    std::vector<double> params_;
    std::vector<double> gradient_;
    nlopt::opt* optimizer_ = nullptr;
    bool interrupted_ = false;
    int evaluations_ = 0;
    double best_value_ = std::numeric_limits<double>::infinity();
    double last_log_likelihood_ = 0.0;
    std::vector<double> best_theta_;
};

void validate(const FitOptions& options) {
    if (!std::isfinite(options.penalizer) || options.penalizer < 0.0)
        throw_invalid("argument \"penalizer\" must be a finite number >= 0");
    if (options.max_evaluations < 1)
        throw_invalid("argument \"max_evaluations\" must be at least 1");
}

nlopt::opt make_optimizer(std::size_t n, const FitOptions& options) {
    nlopt::opt opt(nlopt::LD_LBFGS, static_cast<unsigned>(n));
    opt.set_lower_bounds(-kLogBound);
    opt.set_upper_bounds(kLogBound);
    opt.set_ftol_rel(1e-14);
    opt.set_xtol_rel(1e-12);
    opt.set_maxeval(options.max_evaluations);
    return opt;
}

// Runs NLopt; true when it stopped because it met a tolerance. Running out of precision
// near the optimum (roundoff_limited) counts too: the gradient check decides then.
bool run(nlopt::opt& opt, std::vector<double>& theta) {
    double value = 0.0;
    try {
        const nlopt::result result = opt.optimize(theta, value);
        return result == nlopt::SUCCESS || result == nlopt::FTOL_REACHED ||
               result == nlopt::XTOL_REACHED;
    } catch (const nlopt::roundoff_limited&) {
        return true;
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::runtime_error&) {
        return false;  // NLopt's generic failure: report the best point as not converged
    }
}

// Evaluates the objective at theta (so objective.last_log_likelihood() is ℓ there).
bool at_optimum(Objective& objective, const std::vector<double>& theta) {
    std::vector<double> grad(theta.size());
    objective.evaluate(theta, grad);
    for (std::size_t i = 0; i < theta.size(); ++i) {
        if (std::abs(theta[i]) >= kLogBound - 1e-9) return false;
        if (!(std::abs(grad[i]) <= kGradientTolerance)) return false;
    }
    return true;
}

}  // namespace

Result maximize(const LogLikelihood& log_likelihood, std::vector<double> start,
                const FitOptions& options) {
    validate(options);
    const std::size_t n = start.size();
    Objective objective(log_likelihood, options.penalizer, n);
    nlopt::opt opt = make_optimizer(n, options);
    opt.set_min_objective(&Objective::call, &objective);
    objective.stop_with(&opt);

    std::vector<double> theta(n);
    std::transform(start.begin(), start.end(), theta.begin(), [](double p) { return std::log(p); });
    const bool stopped_on_tolerance = run(opt, theta);
    if (objective.interrupted()) throw Interrupted();
    if (!objective.found())
        throw_invalid("the log-likelihood is not finite at any point the optimizer tried");

    Result result;
    result.evaluations = objective.evaluations();
    // at_optimum() evaluates at the best point, which gives ℓ there; when it is not asked,
    // ℓ is evaluated here.
    std::vector<double> gradient(n);
    if (stopped_on_tolerance) {
        result.converged = at_optimum(objective, objective.best_theta());
    } else {
        result.converged = false;
        objective.evaluate(objective.best_theta(), gradient);
    }
    result.params.resize(n);
    for (std::size_t i = 0; i < n; ++i) result.params[i] = std::exp(objective.best_theta()[i]);
    result.mean_log_likelihood = objective.last_log_likelihood();
    return result;
}

}  // namespace lifecycle::mle
