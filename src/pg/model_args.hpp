// What the SQL functions of the repeat-buying models (BG/NBD, MBG/NBD, Pareto/NBD) share:
// reading a fitted model's composite value and a customer's (frequency, recency, t) from
// the arguments, checking a result is finite, turning the fit aggregates' state into core
// rows, and building a fit's composite result. Every bad argument is an ERROR naming it
// (22023), never a NaN.
#pragma once

#include <vector>

#include "core/bgnbd.hpp"
#include "core/mle.hpp"
#include "pg/fit_state.hpp"

namespace lifecycle::pg {

// Field `attno` of a model's composite value: finite, not NULL.
double model_field(HeapTupleHeader model, int attno, const char* argument);

// A four-parameter model (r, α, then a, b or s, β) from argument `arg`, validated.
template <typename Params>
Params four_parameter_model(FunctionCallInfo fcinfo, int arg) {
    HeapTupleHeader model = PG_GETARG_HEAPTUPLEHEADER(arg);
    Params params{model_field(model, 1, "model"), model_field(model, 2, "model"),
                  model_field(model, 3, "model"), model_field(model, 4, "model")};
    validate(params);  // found by argument-dependent lookup in the model's namespace
    return params;
}

// (frequency, recency, t) from arguments `first` .. `first + 2`, validated.
bgnbd::Customer customer_at(FunctionCallInfo fcinfo, int first);

// `value` as a float8 Datum; an ERROR (22003) naming `function` if it is not finite.
Datum finite_result(double value, const char* function);

// The fit aggregates' rows, identical customers merged with their counts (sorted, so any
// split of the rows among parallel workers gives the same fit), and the penalizer given
// to the aggregate.
std::vector<bgnbd::Row> state_rows(const FitState& state);
mle::FitOptions state_options(const FitState& state);

// A four-parameter fit as the composite `type` (p1..p4, log_likelihood, customers,
// evaluations, converged).
Datum four_parameter_fit(FunctionCallInfo fcinfo, const char* type, const double params[4],
                         double log_likelihood, int64 customers, int evaluations, bool converged);

}  // namespace lifecycle::pg
